import { audit } from '../security/audit.ts';
import argon2 from 'argon2';
import type { Database } from '../database/types.ts';
import type { Scope } from '../store/apiKeys.ts';

export class UserInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UserInputError';
  }
}

export interface NewUser {
  id: string;
  email: string;
  /** Hashed with argon2id; without one the user can only use API keys. */
  password?: string | undefined;
  firstName?: string | undefined;
  lastName?: string | undefined;
  /** What the user's sessions may do (read and trade when not given); API keys carry their own. */
  scopes?: Scope[] | undefined;
}

export interface CreatedUser {
  id: string;
  email: string;
  hasPassword: boolean;
  scopes: Scope[];
  createdAt: Date;
}

const ID = /^[A-Za-z0-9][A-Za-z0-9_.@:-]{0,254}$/;
// Deliberately simple: one @, something on each side, a dot in the domain, no spaces.
const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

export function validateNewUser(user: NewUser): void {
  if (!ID.test(user.id)) {
    throw new UserInputError('id must be 1-255 characters: letters, digits and _ . @ : - (starting with a letter or digit)');
  }
  if (user.email.length > 255 || !EMAIL.test(user.email)) throw new UserInputError(`email is not a valid address: ${JSON.stringify(user.email)}`);
  if (user.password !== undefined && user.password.length < 8) throw new UserInputError('password must have at least 8 characters');
}

export function hashPassword(password: string): Promise<string> {
  // argon2id with the library's defaults (64 MiB, 3 passes, parallelism 4).
  return argon2.hash(password, { type: argon2.argon2id });
}

export function verifyPassword(hash: string, password: string): Promise<boolean> {
  return argon2.verify(hash, password);
}

export async function createUser(db: Database, user: NewUser): Promise<CreatedUser> {
  validateNewUser(user);
  const passwordHash = user.password === undefined ? null : await hashPassword(user.password);
  try {
    const row = await db.transaction(async (tx) => {
      const { rows } = await tx.query<{ id: string; email: string; scopes: Scope[]; created_at: Date }>(
        `INSERT INTO users (id, email, password_hash, first_name, last_name, scopes)
         VALUES ($1, $2, $3, $4, $5, coalesce($6::text[], '{read,trade}')) RETURNING id, email, scopes, created_at`,
        [user.id, user.email, passwordHash, user.firstName ?? null, user.lastName ?? null, user.scopes ?? null],
      );
      // The audit row: never the password (nor its hash).
      await audit(tx, { action: 'user.create', resourceType: 'user', resourceId: user.id, userId: user.id, new: { email: user.email, firstName: user.firstName ?? null, lastName: user.lastName ?? null, scopes: rows[0]!.scopes, passwordSet: passwordHash !== null } });
      return rows[0]!;
    });
    return { id: row.id, email: row.email, hasPassword: passwordHash !== null, scopes: row.scopes, createdAt: row.created_at };
  } catch (error) {
    const e = error as { code?: string; constraint?: string };
    if (e.code === '23505') {
      throw new UserInputError(
        e.constraint === 'users_email_key' ? `a user with email ${user.email} already exists` : `a user with id ${user.id} already exists`,
      );
    }
    throw error;
  }
}

/**
 * Sets a user's password (argon2id) and ends every session they have: whoever held one logs in
 * again with the new password. Audited without the password.
 */
export async function setPassword(db: Database, userId: string, password: string): Promise<{ sessionsRevoked: number }> {
  if (password.length < 8) throw new UserInputError('password must have at least 8 characters');
  const hash = await hashPassword(password);
  return db.transaction(async (tx) => {
    const { rows } = await tx.query<{ had: boolean }>(
      `UPDATE users u SET password_hash = $2, updated_at = now() FROM (SELECT password_hash IS NOT NULL AS had FROM users WHERE id = $1 FOR UPDATE) o
        WHERE u.id = $1 RETURNING o.had`, [userId, hash]);
    if (!rows[0]) throw new UserInputError(`unknown user ${JSON.stringify(userId)}`);
    // The user's row is locked above: a refresh or a login waits, and this UPDATE sees every session made before.
    const revoked = await tx.query(`UPDATE user_sessions SET revoked_at = now(), revoked_reason = 'admin' WHERE user_id = $1 AND revoked_at IS NULL`, [userId]);
    await audit(tx, { action: 'user.password', resourceType: 'user', resourceId: userId, userId, old: { passwordSet: rows[0].had }, new: { passwordSet: true, sessionsRevoked: revoked.rowCount } });
    return { sessionsRevoked: revoked.rowCount };
  });
}

export interface UserListing {
  id: string;
  email: string;
  hasPassword: boolean;
  isActive: boolean;
  twoFactor: boolean;
  createdAt: Date;
  lastLogin: Date | null;
  /** API keys that are neither revoked nor expired. */
  activeKeys: number;
}

/** Every user, oldest first: never a password hash. */
export async function listUsers(db: Database): Promise<UserListing[]> {
  const { rows } = await db.query<{ id: string; email: string; has_password: boolean; is_active: boolean; two_factor_enabled: boolean; created_at: Date; last_login: Date | null; keys: string }>(
    `SELECT u.id, u.email, u.password_hash IS NOT NULL AS has_password, u.is_active, u.two_factor_enabled, u.created_at, u.last_login,
            (SELECT count(*) FROM api_keys k WHERE k.user_id = u.id AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > now()))::text AS keys
       FROM users u ORDER BY u.created_at, u.id`,
  );
  return rows.map((r) => ({
    id: r.id, email: r.email, hasPassword: r.has_password, isActive: r.is_active, twoFactor: r.two_factor_enabled, createdAt: r.created_at, lastLogin: r.last_login,
    activeKeys: Number(r.keys),
  }));
}
