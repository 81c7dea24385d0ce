import { AsyncLocalStorage } from 'node:async_hooks';
import { isIP } from 'node:net';
import type { Queryable } from '../database/types.ts';

/**
 * The audit trail (seed 000's audit_log, docs/SECURITY.md): who changed what, with the old and
 * new values, secrets redacted, written in the same transaction as the change. Who acts is taken
 * from the context the caller runs in: the API sets it for each request with a key (the key, its
 * user, the client address and user agent), the CLI for the whole command (the operating-system
 * user); anything else is 'library'.
 */
export interface Actor {
  /** `key:<id>` (an API key), `cli:<os user>`, or `library`. */
  who: string;
  ip?: string | null;
  userAgent?: string | null;
}

const context = new AsyncLocalStorage<Actor>();

/** From here on in this asynchronous context (a request's handler, a command), changes are `actor`'s. */
export const actAs = (actor: Actor): void => context.enterWith(actor);
/** Runs `fn` with changes attributed to `actor`. */
export const runAs = <T>(actor: Actor, fn: () => T): T => context.run(actor, fn);
export const currentActor = (): Actor => context.getStore() ?? { who: 'library' };

/**
 * Field names whose values are never written to the trail, compared without case, `-` and `_`:
 * a name that is one of these words, or ends with one (`apiSecret`, `x-api-key`, `refresh_token`).
 */
const SECRET_WORDS = [
  'secret', 'password', 'passwd', 'passphrase', 'token', 'apikey', 'accesskey', 'privatekey', 'keyhash', 'encrypted', 'authorization', 'auth',
  'cookie', 'pin', 'otp', 'totp', 'mnemonic', 'seed', 'signature', 'credential', 'credentials',
];
export const isSecretName = (name: string): boolean => {
  const n = name.toLowerCase().replace(/[-_\s]/g, '');
  return SECRET_WORDS.some((w) => n === w || n.endsWith(w)) || /^(apikey|secret|password|token)\d*$/.test(n.replace(/v\d+$/, ''));
};

/** A copy of `value` with every secret-named field's value replaced by '[redacted]'. */
export function redact(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(redact);
  if (value instanceof Date) return value.toISOString();
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value as Record<string, unknown>).map(([k, v]) => [k, isSecretName(k) ? '[redacted]' : redact(v)]));
  }
  return value;
}

/** A client address PostgreSQL's inet takes: an IPv6 zone (`fe80::1%eth0`) is dropped. */
export function inetOf(address: string | undefined | null): string | null {
  if (!address) return null;
  const plain = address.split('%')[0]!;
  return isIP(plain) ? plain : null;
}

export interface Change {
  /** What was done: `credential.add`, `api_key.revoke`, `risk_limit.set`, … */
  action: string;
  resourceType: string;
  resourceId: string | null;
  /** The user the resource belongs to (their audit rows are theirs under row-level security). */
  userId: string | null;
  old?: unknown;
  new?: unknown;
}

/** The audit_log row of a change, as SQL parameters $1… for an INSERT (see `audit`). */
export function auditParams(change: Change): unknown[] {
  const actor = currentActor();
  return [
    change.userId, change.action.slice(0, 100), change.resourceType.slice(0, 50), change.resourceId?.slice(0, 255) ?? null,
    change.old === undefined ? null : JSON.stringify(redact(change.old)), change.new === undefined ? null : JSON.stringify(redact(change.new)),
    actor.ip ?? null, actor.userAgent?.slice(0, 500) ?? null, actor.who.slice(0, 200),
  ];
}

/** audit_log's columns in the order of auditParams, for an INSERT that takes them (audit, or a data-modifying CTE). */
export const AUDIT_COLUMNS = 'user_id, action, resource_type, resource_id, old_values, new_values, ip_address, user_agent, actor';
const AUDIT_INSERT = `INSERT INTO audit_log (${AUDIT_COLUMNS})
  VALUES ($1, $2, $3, $4, $5::jsonb, $6::jsonb, $7::inet, $8, $9)`;

/** Writes the change's audit row with `q`: call it inside the change's own transaction. */
export async function audit(q: Queryable, change: Change): Promise<void> {
  await q.query(AUDIT_INSERT, auditParams(change));
}
