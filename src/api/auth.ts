import { actAs, inetOf } from '../security/audit.ts';
import { createHash } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ApiKeyRepository, Scope } from '../store/apiKeys.ts';
import { isSessionToken, type SessionRepository } from '../security/sessions.ts';
import { ApiError } from './errors.ts';
import type { ScopedReads, Store } from '../store/store.ts';

/** Who a request acts as: an API key, or a session of a password login (docs/SECURITY.md). */
export interface Identity {
  userId: string;
  scopes: Scope[];
  /** The API key's id; null for a session. */
  keyId: string | null;
  /** The session's id and its login's family; null for an API key. */
  sessionId: string | null;
  familyId: string | null;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** The caller's identity, when the request carried a valid API key or session token. */
    identity: Identity | null;
  }
}

/**
 * X-API-Key, or Binance's X-MBX-APIKEY, or Authorization: Bearer with an API key (ts_…) or a
 * session token (tss_…); other bearer tokens (the metrics token) are neither.
 */
function presentedKey(request: FastifyRequest): string | null {
  const h = request.headers;
  const bearer = typeof h.authorization === 'string' && /^Bearer (tss?_.+)$/i.exec(h.authorization)?.[1];
  const key = h['x-api-key'] ?? h['x-mbx-apikey'] ?? bearer;
  return typeof key === 'string' && key !== '' ? key : null;
}

async function identify(key: string, keys: ApiKeyRepository, sessions: SessionRepository): Promise<Identity | null> {
  if (isSessionToken(key)) {
    const s = await sessions.verify(key);
    return s && { userId: s.userId, scopes: s.scopes, keyId: null, sessionId: s.sessionId, familyId: s.familyId };
  }
  const k = await keys.verify(key);
  return k && { userId: k.userId, scopes: k.scopes, keyId: k.keyId, sessionId: null, familyId: null };
}

export interface AuthOptions {
  /** Invalid keys presented from one client address per window before it is refused (429) without a lookup. */
  failureLimit: number;
  windowMs: number;
}

/**
 * The address a client is counted under: an IPv4 address as it is, an IPv6 address by its /64
 * (one host holds a whole /64 and could rotate through it).
 */
export function clientAddress(ip: string): string {
  if (!ip.includes(':')) return ip;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  if (mapped) return mapped[1]!;
  const [head = '', tail = ''] = ip.split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const groups = ip.includes('::') ? [...left, ...Array(Math.max(0, 8 - left.length - right.length)).fill('0'), ...right] : left;
  return `${groups.slice(0, 4).map((g) => g.toLowerCase().replace(/^0+(?=.)/, '')).join(':')}::/64`;
}

/**
 * Routes that take no credentials of their own: an expired token a client sends with every
 * request (as HTTP clients set up with a bearer do) must not stop it from logging in or refreshing.
 */
const NO_CREDENTIALS_NEEDED = new Set(['/v1/auth/login', '/v1/auth/refresh']);

/** Keys verified lately (by SHA-256): they are not counted against their address again for a while. */
const GOOD_KEYS_TTL_MS = 60_000;

/**
 * Resolves the caller's key on every request, before the per-user rate limit (which counts per
 * user). A key not verified lately is counted against its client address before it is looked up
 * (so concurrent tries are counted too): past `failureLimit` in a window, the address is refused
 * with 429 before any lookup, whatever the key and whatever the path. A key that verifies is
 * remembered for a minute, so a client using its valid key is not counted on every request.
 */
export function registerAuth(app: FastifyInstance, keys: ApiKeyRepository, sessions: SessionRepository, options: AuthOptions): void {
  app.decorateRequest('identity', null);
  const attempts = app.createRateLimit({
    keyGenerator: (request) => `auth-attempts:${clientAddress(request.ip)}`,
    max: options.failureLimit,
    timeWindow: options.windowMs,
    // No path is exempt (the global limiter lets /health and /docs through).
    allowList: () => false,
  });
  /** Until when each recently verified key (by digest) is not counted. */
  const good = new Map<string, number>();
  app.addHook('onRequest', async (request) => {
    const key = presentedKey(request);
    if (key === null) return;
    const digest = createHash('sha256').update(key).digest('hex');
    if ((good.get(digest) ?? 0) < Date.now()) {
      const counted = await attempts(request);
      if (!counted.isAllowed && counted.isExceeded) {
        throw new ApiError(429, 'too_many_invalid_keys', `too many invalid API keys from this address: at most ${options.failureLimit} per ${Math.round(options.windowMs / 1000)} s; retry after ${Math.max(1, counted.ttlInSeconds)} s`);
      }
    }
    // Verified each time (a revoked key stops working at once); only the counting is skipped.
    const identity = await identify(key, keys, sessions);
    if (!identity && NO_CREDENTIALS_NEEDED.has(request.routeOptions.url ?? '')) return;
    if (!identity) {
      good.delete(digest);
      throw isSessionToken(key)
        ? new ApiError(401, 'invalid_session', 'the session token is not valid (unknown, expired or revoked): refresh it or log in again')
        : new ApiError(401, 'invalid_api_key', 'the API key is not valid (unknown, revoked or expired)');
    }
    if (good.size > 10_000) good.delete(good.keys().next().value!);
    good.set(digest, Date.now() + GOOD_KEYS_TTL_MS);
    request.identity = identity;
  });
  // An operation that documents a security requirement refuses a caller without credentials
  // before its parameters are validated: such a caller learns nothing of what the route takes.
  app.addHook('preValidation', async (request) => {
    const schema = request.routeOptions.schema as { security?: unknown[] } | undefined;
    if (schema?.security?.length && !request.identity) throw credentialsRequired();
  });
}

const credentialsRequired = () =>
  new ApiError(401, 'api_key_required', 'this endpoint needs an API key (header X-API-Key) or a session token (Authorization: Bearer tss_…)');

/** The caller's identity (an API key or a session), which must carry `scope` (any scope when none is named). */
export function requireScope(request: FastifyRequest, scope?: Scope): Identity {
  const identity = request.identity;
  if (!identity) throw credentialsRequired();
  if (scope && !identity.scopes.includes(scope)) throw new ApiError(403, 'scope_required', `this endpoint needs an API key or session with the ${scope} scope`);
  // What the handler changes from here on is this key's or session's doing (the audit trail).
  const { ip, userAgent } = clientOf(request);
  actAs({ who: identity.keyId !== null ? `key:${identity.keyId}` : `session:${identity.sessionId}`, ip, userAgent });
  return identity;
}

/**
 * The caller (with `scope`) and the repositories that read as it under row-level security: an
 * admin reads every row through the admin reader; anyone else only their user's, with `owner`
 * set for the repositories' own filters.
 */
export function readerOf(request: FastifyRequest, store: Pick<Store, 'readsAs'>, scope: Scope = 'read'): ScopedReads & { owner: string | undefined } {
  const identity = requireScope(request, scope);
  const admin = identity.scopes.includes('admin');
  return { ...store.readsAs({ userId: identity.userId, admin }), owner: admin ? undefined : identity.userId };
}

/** The request's client, as the audit trail and sessions record it. */
export function clientOf(request: FastifyRequest): { ip: string | null; userAgent: string | null; address: string } {
  const agent = request.headers['user-agent'];
  return { ip: inetOf(request.ip), userAgent: typeof agent === 'string' ? agent.slice(0, 500) : null, address: clientAddress(request.ip) };
}
