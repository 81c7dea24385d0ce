import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';
import type { Database, Queryable } from '../database/types.ts';
import type { Scope } from '../store/apiKeys.ts';
import { hashPassword, verifyPassword } from '../users/users.ts';
import { audit, runAs, type Actor } from './audit.ts';
import { AuthFailure } from './authFailure.ts';
import { LoginThrottle, type LoginLimits } from './loginThrottle.ts';
import type { TwoFactor } from './twoFactor.ts';

/**
 * Password logins and their sessions (seed 001's user_sessions and Redis session keys,
 * docs/SECURITY.md). A login opens a session family: a session token (`tss_…`, short-lived, used
 * as `Authorization: Bearer`) and a refresh token (`tsr_…`), 256 random bits each, stored only as
 * SHA-256 digests. A refresh uses up its refresh token and gives the family a new pair; a used
 * refresh token presented again revokes the whole family. PostgreSQL is the truth and is read on
 * every request (one indexed lookup, like API keys), so a revocation holds at once; Redis gets
 * seed 001's `session:{digest}` and `refresh_token:{digest}` with the deployment's prefix and
 * expiring with the tokens, for other readers of the layout, and loses them on revocation.
 */
export interface SessionSettings {
  /** How long a session token is valid. */
  ttlMs: number;
  /** How long after the login a family can be refreshed (the session's whole life). */
  refreshTtlMs: number;
  login: LoginLimits;
}

export interface SessionIdentity {
  sessionId: string;
  familyId: string;
  userId: string;
  scopes: Scope[];
}

export interface Tokens {
  sessionToken: string;
  refreshToken: string;
  sessionId: string;
  userId: string;
  scopes: Scope[];
  expiresAt: Date;
  refreshExpiresAt: Date;
}

export interface SessionListing {
  id: string;
  familyId: string;
  scopes: Scope[];
  createdAt: Date;
  expiresAt: Date;
  refreshExpiresAt: Date | null;
  lastAccessed: Date;
  ipAddress: string | null;
  userAgent: string | null;
}

/** Where the Redis copies go (seed 001's layout); best effort: PostgreSQL decides. */
export interface SessionMirror {
  put(key: string, value: Record<string, unknown>, ttlMs: number): Promise<void>;
  drop(keys: string[]): Promise<void>;
}

export function redisMirror(redis: Redis | Cluster, prefix: string): SessionMirror {
  const ready = () => redis.status === 'ready';
  return {
    async put(key, value, ttlMs) {
      if (ready() && ttlMs > 0) await redis.set(prefix + key, JSON.stringify(value), 'PX', Math.ceil(ttlMs)).catch(() => undefined);
    },
    async drop(keys) {
      // One DEL per key: in a Redis Cluster the keys live on different masters.
      if (ready()) await Promise.all(keys.map((k) => redis.del(prefix + k).catch(() => undefined)));
    },
  };
}

const SESSION = /^tss_[A-Za-z0-9_-]{43}$/;
const REFRESH = /^tsr_[A-Za-z0-9_-]{43}$/;
export const isSessionToken = (token: string) => token.startsWith('tss_');
const digest = (token: string) => createHash('sha256').update(token).digest('hex');
const newToken = (kind: 'tss' | 'tsr') => `${kind}_${randomBytes(32).toString('base64url')}`;
const sessionKey = (hash: string) => `session:${hash}`;
const refreshKey = (hash: string) => `refresh_token:${hash}`;
/** last_accessed is written at most this often per session (a request is not a write). */
const ACCESS_WRITE_MS = 60_000;
const KNOWN_ADDRESS_DAYS = 30;
/**
 * Whether the user logged in from this client address lately (an IPv6 address by its /64, as the
 * limits count it): $1 the user, $2 the address.
 */
const KNOWN_ADDRESS = `EXISTS (SELECT 1 FROM user_sessions s WHERE s.user_id = $1 AND s.created_at > now() - ${KNOWN_ADDRESS_DAYS} * interval '1 day'
  AND s.ip_address <<= network(set_masklen($2::inet, CASE WHEN family($2::inet) = 6 THEN 64 ELSE 32 END)))`;
/**
 * Every change of a user's sessions (a login, a refresh, a revocation) first locks the user's
 * row, so they take turns: a revocation's UPDATE then sees every session a refresh or a login
 * made before it, and none is made after it unseen.
 */
const LOCK_USER = `SELECT 1 FROM users WHERE id = $1 FOR NO KEY UPDATE`;
type RevokeReason = 'logout' | 'logout_all' | 'refresh_reused' | 'user_disabled' | 'admin';

/**
 * A hash of a password nobody knows, with the same argon2id parameters as every user's: a login
 * for an account that does not exist (or has no password) checks against it, so it takes as long
 * as one that does.
 */
let decoy: Promise<string> | null = null;
const decoyHash = () => (decoy ??= hashPassword(randomBytes(32).toString('base64url')));

export interface LoginInput {
  email: string;
  password: string;
  code?: string | undefined;
  recoveryCode?: string | undefined;
  /** At most the user's own scopes; all of them when not given. */
  scopes?: Scope[] | undefined;
}

export interface Client {
  /** Counted for login limits (an IPv6 address by its /64). */
  address: string;
  ip: string | null;
  userAgent: string | null;
}

export class SessionRepository {
  readonly throttle: LoginThrottle;

  constructor(
    private readonly db: Database,
    readonly settings: SessionSettings,
    private readonly twoFactor: TwoFactor,
    private readonly mirror: SessionMirror | null = null,
    /** Replaced by tests to count password checks. */
    private readonly passwords: { verify(hash: string, password: string): Promise<boolean> } = { verify: verifyPassword },
  ) {
    this.throttle = new LoginThrottle(db, settings.login);
  }

  /**
   * A password login (and a second factor for a user who has one). Every failure is the same 401,
   * whether the account exists, has no password, is disabled, or the password or code is wrong;
   * the password is checked (against a decoy hash when there is no user) in every case.
   */
  async login(input: LoginInput, client: Client): Promise<Tokens> {
    const { rows } = await this.db.query<{ id: string; password_hash: string | null; is_active: boolean; two_factor_enabled: boolean; scopes: Scope[] }>(
      `SELECT u.id, u.password_hash, u.is_active, u.two_factor_enabled, u.scopes FROM users u WHERE u.email = $1`, [input.email]);
    const user = rows[0];
    await this.throttle.attempt(input.email, client.address, user ? await this.knownAddress(user.id, client) : false);
    const hash = user?.password_hash ?? (await decoyHash());
    const passwordOk = await this.passwords.verify(hash, input.password).catch(() => false);
    const ok = passwordOk && user !== undefined && user.password_hash !== null && user.is_active;
    const refused = () =>
      new AuthFailure(401, 'invalid_credentials', 'email, password or two-factor code is wrong (a user with two-factor authentication sends code or recoveryCode)');
    if (!ok) throw refused();
    const scopes = input.scopes ?? user.scopes;
    const beyond = scopes.filter((s) => !user.scopes.includes(s));
    if (beyond.length) throw new AuthFailure(403, 'scope_not_allowed', `this user's sessions may have the scopes ${user.scopes.join(', ')}; not ${beyond.join(', ')}`);
    const actor: Actor = { who: `user:${user.id}`, ip: client.ip, userAgent: client.userAgent };
    const tokens = await runAs(actor, () => this.db.transaction(async (tx) => {
      await tx.query(LOCK_USER, [user.id]);
      if (user.two_factor_enabled && !(await this.twoFactor.check(tx, user.id, input))) return null;
      const opened = await this.open(tx, user.id, scopes, randomUUID(), new Date(Date.now() + this.settings.refreshTtlMs), client);
      await tx.query(`UPDATE users SET last_login = now() WHERE id = $1`, [user.id]);
      await audit(tx, { action: 'session.login', resourceType: 'session', resourceId: opened.sessionId, userId: user.id, new: { scopes, twoFactor: user.two_factor_enabled } });
      return opened;
    }));
    if (!tokens) throw refused();
    await this.throttle.succeeded(input.email, client.address);
    await this.mirrorTokens(tokens);
    return tokens;
  }

  /**
   * The user's password asked again (before two-factor authentication changes), under the same
   * login limits as a login; then `then` (a second-factor change), counted in the same attempt:
   * a wrong code counts as a failed login too.
   */
  async confirmPassword<T>(userId: string, password: string, client: Client, then: () => Promise<T> = async () => undefined as T): Promise<T> {
    return this.limitedCheck(userId, client, async () => {
      const { rows } = await this.db.query<{ password_hash: string | null }>(`SELECT password_hash FROM users WHERE id = $1`, [userId]);
      const hash = rows[0]?.password_hash;
      if (!hash || !(await this.passwords.verify(hash, password).catch(() => false))) throw new AuthFailure(401, 'invalid_credentials', 'the password is wrong');
      return then();
    });
  }

  /**
   * Runs a second-factor check (`fn`, which throws when the code is wrong) under the login limits:
   * a wrong code counts as a failed login, so codes cannot be guessed faster than passwords.
   */
  async limitedCheck<T>(userId: string, client: Client, fn: () => Promise<T>): Promise<T> {
    const { rows } = await this.db.query<{ email: string }>(`SELECT email FROM users WHERE id = $1`, [userId]);
    const email = rows[0]?.email ?? `id:${userId}`;
    await this.throttle.attempt(email, client.address, await this.knownAddress(userId, client));
    const result = await fn();
    await this.throttle.succeeded(email, client.address);
    return result;
  }

  private async knownAddress(userId: string, client: Client): Promise<boolean> {
    if (!client.ip) return false;
    const { rows } = await this.db.query<{ known: boolean }>(`SELECT ${KNOWN_ADDRESS} AS known`, [userId, client.ip]);
    return rows[0]?.known ?? false;
  }

  /**
   * A new pair for a refresh token. The token is used up; presented again, it revokes every
   * session of its family (two clients hold it: one of them stole it).
   */
  async refresh(refreshToken: string, client: Client): Promise<Tokens> {
    const invalid = () => new AuthFailure(401, 'invalid_refresh_token', 'the refresh token is not valid (unknown, expired, revoked or used): log in again');
    if (!REFRESH.test(refreshToken)) throw invalid();
    const outcome = await this.db.transaction(async (tx) => {
      const owner = await tx.query<{ user_id: string }>(`SELECT user_id FROM user_sessions WHERE refresh_hash = $1`, [digest(refreshToken)]);
      if (!owner.rows[0]) return null;
      await tx.query(LOCK_USER, [owner.rows[0].user_id]);
      const { rows } = await tx.query<{ id: string; user_id: string; family_id: string; scopes: Scope[]; refreshed: boolean; revoked: boolean; expired: boolean; refresh_expires_at: Date; user_scopes: Scope[]; active: boolean }>(
        `SELECT s.id::text, s.user_id, s.family_id::text, s.scopes, s.refreshed_at IS NOT NULL AS refreshed, s.revoked_at IS NOT NULL AS revoked,
                s.refresh_expires_at <= now() AS expired, s.refresh_expires_at, u.scopes AS user_scopes, u.is_active AS active
           FROM user_sessions s JOIN users u ON u.id = s.user_id WHERE s.refresh_hash = $1 FOR UPDATE OF s`,
        [digest(refreshToken)],
      );
      const row = rows[0];
      if (!row) return null;
      const actor: Actor = { who: `session:${row.id}`, ip: client.ip, userAgent: client.userAgent };
      if (row.refreshed) {
        const revoked = await runAs(actor, () => this.revokeWhere(tx, 'family_id = $1::uuid', [row.family_id], 'refresh_reused', row.user_id, row.family_id));
        return { kind: 'reused', keys: revoked.keys } as const;
      }
      if (row.revoked || row.expired || !row.active) return null;
      await tx.query(`UPDATE user_sessions SET refreshed_at = now(), revoked_at = now(), revoked_reason = 'refreshed' WHERE id = $1::bigint`, [row.id]);
      const scopes = row.scopes.filter((s) => row.user_scopes.includes(s));
      const opened = await this.open(tx, row.user_id, scopes, row.family_id, row.refresh_expires_at, client);
      await runAs(actor, () => audit(tx, { action: 'session.refresh', resourceType: 'session', resourceId: opened.sessionId, userId: row.user_id, old: { session: row.id }, new: { scopes } }));
      return { kind: 'opened', opened, old: digest(refreshToken) } as const;
    });
    if (!outcome) throw invalid();
    if (outcome.kind === 'reused') {
      await this.mirror?.drop(outcome.keys);
      throw new AuthFailure(401, 'refresh_token_reused', 'the refresh token was used before: every session of this login is revoked; log in again');
    }
    await this.mirror?.drop([refreshKey(outcome.old)]);
    await this.mirrorTokens(outcome.opened);
    return outcome.opened;
  }

  /** The session behind a token, or null when it is malformed, unknown, expired or revoked, or its user is disabled. */
  async verify(token: string): Promise<SessionIdentity | null> {
    if (!SESSION.test(token)) return null;
    const hash = digest(token);
    const { rows } = await this.db.query<{ id: string; family_id: string; user_id: string; scopes: Scope[]; stale: boolean; expires_at: Date }>(
      `SELECT s.id::text, s.family_id::text, s.user_id, ARRAY(SELECT unnest(s.scopes) INTERSECT SELECT unnest(u.scopes) ORDER BY 1) AS scopes,
              s.last_accessed < now() - $2 * interval '1 millisecond' AS stale, s.expires_at
         FROM user_sessions s JOIN users u ON u.id = s.user_id
        WHERE s.token_hash = $1 AND s.revoked_at IS NULL AND s.expires_at > now() AND u.is_active`,
      [hash, ACCESS_WRITE_MS],
    );
    const row = rows[0];
    if (!row) return null;
    if (row.stale) {
      await this.db.query(`UPDATE user_sessions SET last_accessed = now() WHERE id = $1::bigint`, [row.id]);
      await this.mirror?.put(sessionKey(hash), { user_id: row.user_id, expires_at: row.expires_at.toISOString(), last_accessed: new Date().toISOString() }, row.expires_at.getTime() - Date.now());
    }
    return { sessionId: row.id, familyId: row.family_id, userId: row.user_id, scopes: row.scopes };
  }

  /** Ends the family a session belongs to (logout). */
  async logout(session: SessionIdentity): Promise<number> {
    const revoked = await this.db.transaction((tx) => this.revokeWhere(tx, 'family_id = $1::uuid', [session.familyId], 'logout', session.userId, session.familyId));
    await this.mirror?.drop(revoked.keys);
    return revoked.count;
  }

  /** Ends every session of a user (log out everywhere); returns how many were live. */
  async logoutAll(userId: string, reason: 'logout_all' | 'user_disabled' | 'admin' = 'logout_all'): Promise<number> {
    const revoked = await this.db.transaction((tx) => this.revokeWhere(tx, 'user_id = $1', [userId], reason, userId, null));
    await this.mirror?.drop(revoked.keys);
    return revoked.count;
  }

  /** A user's live sessions (never a token or its digest), newest first. */
  async list(userId: string): Promise<SessionListing[]> {
    const { rows } = await this.db.query<{ id: string; family_id: string; scopes: Scope[]; created_at: Date; expires_at: Date; refresh_expires_at: Date | null; last_accessed: Date; ip_address: string | null; user_agent: string | null }>(
      `SELECT id::text, family_id::text, scopes, created_at, expires_at, refresh_expires_at, last_accessed, host(ip_address) AS ip_address, user_agent
         FROM user_sessions WHERE user_id = $1 AND revoked_at IS NULL AND greatest(expires_at, refresh_expires_at) > now() ORDER BY id DESC`,
      [userId],
    );
    return rows.map((r) => ({
      id: r.id, familyId: r.family_id, scopes: r.scopes, createdAt: r.created_at, expiresAt: r.expires_at, refreshExpiresAt: r.refresh_expires_at,
      lastAccessed: r.last_accessed, ipAddress: r.ip_address, userAgent: r.user_agent,
    }));
  }

  private async open(tx: Queryable, userId: string, scopes: Scope[], familyId: string, refreshExpiresAt: Date, client: Client): Promise<Tokens> {
    const sessionToken = newToken('tss');
    const refreshToken = newToken('tsr');
    const expiresAt = new Date(Math.min(Date.now() + this.settings.ttlMs, refreshExpiresAt.getTime()));
    const { rows } = await tx.query<{ id: string }>(
      `INSERT INTO user_sessions (user_id, token_hash, refresh_hash, family_id, scopes, expires_at, refresh_expires_at, ip_address, user_agent)
       VALUES ($1, $2, $3, $4::uuid, $5::text[], $6, $7, $8::inet, $9) RETURNING id::text`,
      [userId, digest(sessionToken), digest(refreshToken), familyId, scopes, expiresAt, refreshExpiresAt, client.ip, client.userAgent?.slice(0, 500) ?? null],
    );
    return { sessionToken, refreshToken, sessionId: rows[0]!.id, userId, scopes, expiresAt, refreshExpiresAt };
  }

  /** Revokes the live sessions `where` picks, with one audit row; returns their Redis keys. */
  private async revokeWhere(tx: Queryable, where: string, params: unknown[], reason: RevokeReason, userId: string, familyId: string | null): Promise<{ keys: string[]; count: number }> {
    await tx.query(LOCK_USER, [userId]);
    const { rows } = await tx.query<{ id: string; token_hash: string; refresh_hash: string | null }>(
      `UPDATE user_sessions SET revoked_at = now(), revoked_reason = $${params.length + 1}
        WHERE ${where} AND revoked_at IS NULL RETURNING id::text, token_hash, refresh_hash`,
      [...params, reason],
    );
    await audit(tx, {
      action: `session.${reason === 'refresh_reused' ? 'refresh_reused' : reason === 'logout' ? 'logout' : 'revoke_all'}`,
      resourceType: 'session', resourceId: familyId, userId, new: { revoked: rows.length, reason },
    });
    return { keys: rows.flatMap((r) => [sessionKey(r.token_hash), ...(r.refresh_hash ? [refreshKey(r.refresh_hash)] : [])]), count: rows.length };
  }

  private async mirrorTokens(t: Tokens): Promise<void> {
    if (!this.mirror) return;
    const now = new Date().toISOString();
    await this.mirror.put(sessionKey(digest(t.sessionToken)), { user_id: t.userId, expires_at: t.expiresAt.toISOString(), last_accessed: now }, t.expiresAt.getTime() - Date.now());
    await this.mirror.put(refreshKey(digest(t.refreshToken)), { user_id: t.userId, expires_at: t.refreshExpiresAt.toISOString() }, t.refreshExpiresAt.getTime() - Date.now());
  }
}
