import { AUDIT_COLUMNS, auditParams } from '../security/audit.ts';
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

export interface ApiKeyListing {
  id: string;
  userId: string;
  name: string;
  /** The key's public prefix (ts_<prefix>_…), to tell keys apart; the secret is never stored. */
  prefix: string;
  scopes: Scope[];
  createdAt: Date;
  expiresAt: Date | null;
  lastUsedAt: Date | null;
  revokedAt: Date | null;
  status: 'active' | 'revoked' | 'expired';
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
    // The key and its audit row in one statement (one transaction).
    const change = auditParams({ action: 'api_key.create', resourceType: 'api_key', resourceId: null, userId, new: { name, prefix, scopes, expiresAt: expiresAt ?? null } });
    const { rows } = await this.db.query<{ id: string }>(
      `WITH k AS (INSERT INTO api_keys (user_id, name, key_prefix, key_hash, permissions, expires_at) VALUES ($1, $2, $3, $4, $5::text[], $6) RETURNING id),
            a AS (INSERT INTO audit_log (${AUDIT_COLUMNS})
                  SELECT $7, $8, $9, coalesce($10::text, k.id::text), $11::jsonb, $12::jsonb, $13::inet, $14, $15 FROM k)
       SELECT id::text FROM k`,
      [userId, name, prefix, hashKey(key), scopes, expiresAt ?? null, ...change],
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

  /**
   * Revokes a key; returns when it was revoked, and whether that was now or before. Unknown ids
   * are a NotFoundError ("unknown API key").
   */
  async revoke(keyId: string): Promise<{ revokedAt: Date; already: boolean }> {
    if (!/^[1-9][0-9]{0,17}$/.test(keyId)) throw new NotFoundError('API key', keyId);
    const change = auditParams({ action: 'api_key.revoke', resourceType: 'api_key', resourceId: keyId, userId: null });
    const { rows } = await this.db.query<{ revoked_at: Date; already: boolean }>(
      // Only a key not revoked yet is changed (and audited); a revoked one is read as it is. The
      // UPDATE's WHERE is re-checked on the row a concurrent revoke left, so only one of two wins.
      `WITH u AS (UPDATE api_keys k SET revoked_at = now(), is_active = false
                    WHERE k.id = $1::bigint AND k.revoked_at IS NULL
                  RETURNING k.user_id, k.key_prefix, k.revoked_at, false AS already),
            r AS (SELECT * FROM u
                  UNION ALL
                  SELECT k.user_id, k.key_prefix, k.revoked_at, true FROM api_keys k WHERE k.id = $1::bigint AND NOT EXISTS (SELECT 1 FROM u)),
            a AS (INSERT INTO audit_log (${AUDIT_COLUMNS})
                  SELECT coalesce($2::text, r.user_id), $3, $4, $5, coalesce($6::jsonb, jsonb_build_object('prefix', r.key_prefix, 'revoked', r.already)),
                         coalesce($7::jsonb, jsonb_build_object('prefix', r.key_prefix, 'revoked', true)), $8::inet, $9, $10 FROM r WHERE NOT r.already)
       SELECT revoked_at, already FROM r`,
      [keyId, ...change],
    );
    if (!rows.length) throw new NotFoundError('API key', keyId);
    if (rows[0]!.revoked_at === null) {
      // Revoked by a concurrent call after this statement's snapshot: read when, now.
      const again = await this.db.query<{ revoked_at: Date }>(`SELECT revoked_at FROM api_keys WHERE id = $1::bigint`, [keyId]);
      return { revokedAt: again.rows[0]!.revoked_at, already: true };
    }
    return { revokedAt: rows[0]!.revoked_at, already: rows[0]!.already };
  }

  /** Every key (of one user, or all), newest first: never the key or its hash. */
  async list(userId?: string): Promise<ApiKeyListing[]> {
    const { rows } = await this.db.query<{ id: string; user_id: string; name: string; key_prefix: string; permissions: Scope[]; created_at: Date; expires_at: Date | null; last_used_at: Date | null; revoked_at: Date | null }>(
      `SELECT id::text, user_id, name, key_prefix, permissions, created_at, expires_at, last_used_at, revoked_at
         FROM api_keys WHERE $1::text IS NULL OR user_id = $1 ORDER BY id DESC`,
      [userId ?? null],
    );
    const now = Date.now();
    return rows.map((r) => ({
      id: r.id, userId: r.user_id, name: r.name, prefix: `ts_${r.key_prefix}_…`, scopes: r.permissions, createdAt: r.created_at, expiresAt: r.expires_at,
      lastUsedAt: r.last_used_at, revokedAt: r.revoked_at,
      status: r.revoked_at ? 'revoked' : r.expires_at && r.expires_at.getTime() <= now ? 'expired' : 'active',
    }));
  }
}
