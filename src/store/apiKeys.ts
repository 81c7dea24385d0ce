import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Queryable } from '../database/types.ts';
import { InvalidArgumentError, NotFoundError } from './errors.ts';

export const SCOPES = ['read', 'trade', 'admin'] as const;
export type Scope = (typeof SCOPES)[number];

export interface ApiKeyIdentity {
  keyId: string;
  userId: string;
  scopes: Scope[];
}

export interface CreatedKey extends ApiKeyIdentity {
  /** The key itself: shown once, never stored. */
  key: string;
  prefix: string;
}

/**
 * Keys look like `ts_<prefix>_<secret>`: the prefix finds the row, the SHA-256 of the whole key
 * is what is stored. A key carries 192 random bits, so a fast hash is enough (unlike passwords,
 * which get argon2id); it keeps authentication to one indexed lookup per request.
 */
const KEY_FORMAT = /^ts_([0-9a-f]{12})_([A-Za-z0-9_-]{32})$/;
const hashKey = (key: string) => createHash('sha256').update(key).digest('hex');

export function parseScopes(value: string): Scope[] {
  const scopes = [...new Set(value.split(',').map((s) => s.trim()).filter(Boolean))];
  const bad = scopes.filter((s) => !(SCOPES as readonly string[]).includes(s));
  if (scopes.length === 0 || bad.length) throw new InvalidArgumentError('scopes', `must be a comma-separated list of ${SCOPES.join(', ')}${bad.length ? `; got ${bad.join(', ')}` : ''}`);
  return scopes as Scope[];
}

export class ApiKeyRepository {
  constructor(private readonly db: Queryable) {}

  async create(userId: string, scopes: Scope[], name = 'api key', expiresAt?: Date): Promise<CreatedKey> {
    const user = await this.db.query(`SELECT 1 FROM users WHERE id = $1`, [userId]);
    if (!user.rows.length) throw new NotFoundError('user', userId);
    const prefix = randomBytes(6).toString('hex');
    const key = `ts_${prefix}_${randomBytes(24).toString('base64url')}`;
    const { rows } = await this.db.query<{ id: string }>(
      `INSERT INTO api_keys (user_id, name, key_prefix, key_hash, permissions, expires_at) VALUES ($1, $2, $3, $4, $5::text[], $6) RETURNING id::text`,
      [userId, name, prefix, hashKey(key), scopes, expiresAt ?? null],
    );
    return { key, prefix, keyId: rows[0]!.id, userId, scopes };
  }

  /** The identity behind a key, or null when it is malformed, unknown, revoked or expired. */
  async verify(key: string): Promise<ApiKeyIdentity | null> {
    const match = KEY_FORMAT.exec(key);
    if (!match) return null;
    const { rows } = await this.db.query<{ id: string; user_id: string; key_hash: string; permissions: Scope[] }>(
      `SELECT k.id::text, k.user_id, k.key_hash, k.permissions
         FROM api_keys k JOIN users u ON u.id = k.user_id
        WHERE k.key_prefix = $1 AND k.is_active AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > now()) AND u.is_active`,
      [match[1]],
    );
    const wanted = Buffer.from(hashKey(key), 'hex');
    const row = rows.find((r) => r.key_hash.length === 64 && timingSafeEqual(Buffer.from(r.key_hash, 'hex'), wanted));
    return row ? { keyId: row.id, userId: row.user_id, scopes: row.permissions } : null;
  }

  async revoke(keyId: string): Promise<void> {
    const { rowCount } = await this.db.query(`UPDATE api_keys SET revoked_at = now(), is_active = false WHERE id = $1::bigint`, [keyId]);
    if (!rowCount) throw new NotFoundError('user', keyId);
  }
}
