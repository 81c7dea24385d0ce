import type { Database, Queryable } from '../database/types.ts';
import type { Keyring } from '../security/keyring.ts';
import { InvalidArgumentError, NotFoundError } from './errors.ts';

/**
 * Exchange connections (seed 001) and broker credentials (seed 004) in exchange_connections,
 * their API key and secret sealed with AES-256-GCM under the keyring's current key (docs/SECURITY.md).
 * Each value has its own nonce and names its key; the row's id and the column are its associated
 * data, so a value copied to another row or column does not open. Nothing here returns a secret
 * except `reveal`, for the trading engine's own process; no HTTP route calls it.
 */
export interface Credential {
  id: string;
  /** The owner (seed 001's exchange connections); null for a deployment's broker credentials (seed 004). */
  userId: string | null;
  exchange: string;
  keyId: string;
  isActive: boolean;
  config: Record<string, unknown>;
  createdAt: string;
  updatedAt: string;
}

export interface Revealed {
  id: string;
  exchange: string;
  apiKey: string;
  apiSecret: string;
  config: Record<string, unknown>;
}

export interface RotationProgress {
  /** Credentials re-sealed under the current key by this run. */
  rotated: number;
  /** Still under another key (0 when the run finished). */
  remaining: number;
}

const EXCHANGE = /^[A-Za-z0-9_.-]{1,50}$/;
const associated = (id: string, column: 'api_key' | 'api_secret') => `tradestore:exchange_connections:${id}:${column}`;

interface Row {
  id: string; user_id: string | null; exchange: string; encryption_key_id: string; is_active: boolean; config: Record<string, unknown>;
  created_at: Date; updated_at: Date;
}
const toCredential = (r: Row): Credential => ({
  id: String(r.id), userId: r.user_id, exchange: r.exchange, keyId: r.encryption_key_id, isActive: r.is_active, config: r.config,
  createdAt: r.created_at.toISOString(), updatedAt: r.updated_at.toISOString(),
});
const COLUMNS = 'id::text, user_id, exchange, encryption_key_id, is_active, config, created_at, updated_at';

export class CredentialRepository {
  constructor(private readonly db: Database, private readonly keys: Keyring | null) {}

  private keyring(): Keyring {
    if (!this.keys) throw new InvalidArgumentError('TRADESTORE_KEYRING', 'is not set: credentials are encrypted under its keys (docs/SECURITY.md)');
    return this.keys;
  }

  private seal(k: Keyring, id: string, apiKey: string, apiSecret: string): [Buffer, Buffer] {
    return [k.seal(Buffer.from(apiKey, 'utf8'), associated(id, 'api_key')), k.seal(Buffer.from(apiSecret, 'utf8'), associated(id, 'api_secret'))];
  }

  /** Stores a credential sealed under the current key; returns it without its secrets. */
  async add(input: { userId?: string | null; exchange: string; apiKey: string; apiSecret: string; config?: Record<string, unknown> }): Promise<Credential> {
    const k = this.keyring();
    if (!EXCHANGE.test(input.exchange)) throw new InvalidArgumentError('exchange', 'must be 1-50 letters, digits, _ . or -');
    for (const [name, value] of [['apiKey', input.apiKey], ['apiSecret', input.apiSecret]] as const) {
      if (typeof value !== 'string' || value.length === 0 || value.length > 4096) throw new InvalidArgumentError(name, 'must be 1-4096 characters');
    }
    return this.db.transaction(async (tx) => {
      if (input.userId) {
        const { rows } = await tx.query('SELECT 1 FROM users WHERE id = $1', [input.userId]);
        if (!rows.length) throw new NotFoundError('user', input.userId);
      }
      // The id first: it is part of what the values are sealed with.
      const { rows: [next] } = await tx.query<{ id: string }>(`SELECT nextval(pg_get_serial_sequence('exchange_connections', 'id'))::text AS id`);
      const [key, secret] = this.seal(k, next!.id, input.apiKey, input.apiSecret);
      const { rows } = await tx.query<Row>(
        `INSERT INTO exchange_connections (id, user_id, exchange, api_key_encrypted, api_secret_encrypted, encryption_key_id, config)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING ${COLUMNS}`,
        [next!.id, input.userId ?? null, input.exchange, key, secret, k.current, JSON.stringify(input.config ?? {})],
      );
      return toCredential(rows[0]!);
    });
  }

  /** Credentials without their secrets, newest first; a user's only when `userId` is given. */
  async list(filter: { userId?: string } = {}): Promise<Credential[]> {
    const { rows } = await this.db.query<Row>(
      `SELECT ${COLUMNS} FROM exchange_connections WHERE ($1::text IS NULL OR user_id = $1) ORDER BY id DESC`,
      [filter.userId ?? null],
    );
    return rows.map(toCredential);
  }

  async remove(id: string): Promise<void> {
    const { rowCount } = await this.db.query('DELETE FROM exchange_connections WHERE id = $1::bigint', [idOf(id)]);
    if (!rowCount) throw new NotFoundError('credential', id);
  }

  /** The secrets of one credential, for the trading engine's own process. */
  async reveal(id: string): Promise<Revealed> {
    const k = this.keyring();
    const { rows } = await this.db.query<Row & { api_key_encrypted: Buffer; api_secret_encrypted: Buffer }>(
      `SELECT ${COLUMNS}, api_key_encrypted, api_secret_encrypted FROM exchange_connections WHERE id = $1::bigint`,
      [idOf(id)],
    );
    const r = rows[0];
    if (!r) throw new NotFoundError('credential', id);
    return {
      id: String(r.id), exchange: r.exchange, config: r.config,
      apiKey: k.open(r.api_key_encrypted, associated(String(r.id), 'api_key')).toString('utf8'),
      apiSecret: k.open(r.api_secret_encrypted, associated(String(r.id), 'api_secret')).toString('utf8'),
    };
  }

  /** How many credentials each key id seals (the keyring's keys with none included). */
  async keyUsage(): Promise<{ keyId: string; credentials: number; inKeyring: boolean; current: boolean }[]> {
    const { rows } = await this.db.query<{ k: string; n: string }>(`SELECT encryption_key_id AS k, count(*)::text AS n FROM exchange_connections GROUP BY 1`);
    const counts = new Map(rows.map((r) => [r.k, Number(r.n)]));
    const ids = [...new Set([...(this.keys?.ids() ?? []), ...counts.keys()])].sort();
    return ids.map((keyId) => ({ keyId, credentials: counts.get(keyId) ?? 0, inKeyring: this.keys?.ids().includes(keyId) ?? false, current: this.keys?.current === keyId }));
  }

  /**
   * Re-seals every credential under the current key, `batchSize` at a time, each batch in its own
   * transaction (rows another transaction holds are skipped and taken in a later batch): an
   * interrupted run loses nothing and the next run goes on from where it stopped. A row whose
   * values do not open is not touched; the run stops with the reason.
   */
  async rotate(options: { batchSize?: number; onProgress?: (p: RotationProgress) => void; maxBatches?: number } = {}): Promise<RotationProgress> {
    const k = this.keyring();
    const batchSize = options.batchSize ?? 100;
    let rotated = 0;
    for (let batch = 0; options.maxBatches === undefined || batch < options.maxBatches; batch++) {
      const moved = await this.db.transaction(async (tx) => rotateBatch(tx, k, batchSize));
      rotated += moved;
      const remaining = await this.remaining(k);
      options.onProgress?.({ rotated, remaining });
      if (moved === 0 || remaining === 0) return { rotated, remaining };
    }
    return { rotated, remaining: await this.remaining(k) };
  }

  private async remaining(k: Keyring): Promise<number> {
    const { rows } = await this.db.query<{ n: string }>(`SELECT count(*)::text AS n FROM exchange_connections WHERE encryption_key_id <> $1`, [k.current]);
    return Number(rows[0]!.n);
  }
}

async function rotateBatch(tx: Queryable, k: Keyring, batchSize: number): Promise<number> {
  const { rows } = await tx.query<{ id: string; api_key_encrypted: Buffer; api_secret_encrypted: Buffer }>(
    `SELECT id::text, api_key_encrypted, api_secret_encrypted FROM exchange_connections
      WHERE encryption_key_id <> $1 ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED`,
    [k.current, batchSize],
  );
  if (!rows.length) return 0;
  const sealed = rows.map((r) => {
    const key = k.seal(k.open(r.api_key_encrypted, associated(r.id, 'api_key')), associated(r.id, 'api_key'));
    const secret = k.seal(k.open(r.api_secret_encrypted, associated(r.id, 'api_secret')), associated(r.id, 'api_secret'));
    return [r.id, key, secret] as const;
  });
  await tx.query(
    `UPDATE exchange_connections c SET api_key_encrypted = u.k, api_secret_encrypted = u.s, encryption_key_id = $4, updated_at = now()
       FROM unnest($1::bigint[], $2::bytea[], $3::bytea[]) AS u(id, k, s) WHERE c.id = u.id`,
    [sealed.map((s) => s[0]), sealed.map((s) => s[1]), sealed.map((s) => s[2]), k.current],
  );
  return rows.length;
}

function idOf(id: string): string {
  if (!/^[0-9]{1,18}$/.test(id)) throw new InvalidArgumentError('id', 'must be a credential id (a positive integer)');
  return id;
}
