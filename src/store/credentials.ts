import type { Database, Queryable } from '../database/types.ts';
import { keyIdSql, keyringOf, SealError, type Keyring, type KeyringSource } from '../security/keyring.ts';
import { audit } from '../security/audit.ts';
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
/** JSON with every object's keys sorted: the same text for the config as sent and as jsonb gives it back. */
const canonical = (v: unknown): string =>
  Array.isArray(v) ? `[${v.map(canonical).join(',')}]`
    : v !== null && typeof v === 'object' ? `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`).join(',')}}`
    : JSON.stringify(v);

/**
 * What a value is sealed with besides its key: the row, the column, and everything the engine
 * acts on with it (owner, exchange, config). A value moved to another row or column, or a row
 * whose owner, exchange or config was changed in the database, does not open.
 */
interface Binding { id: string; userId: string | null; exchange: string; config: unknown }
const associated = (b: Binding, column: 'api_key' | 'api_secret') =>
  JSON.stringify(['tradestore:exchange_connections', b.id, column, b.userId, b.exchange, canonical(b.config)]);
const bindingOf = (r: { id: string; user_id: string | null; exchange: string; config: unknown }): Binding => ({ id: String(r.id), userId: r.user_id, exchange: r.exchange, config: r.config });

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
  private readonly keys: () => Keyring | null;
  private readonly keyring: () => Keyring;

  constructor(private readonly db: Database, keys: KeyringSource) {
    ({ optional: this.keys, required: this.keyring } = keyringOf(keys, 'credentials'));
  }

  private seal(k: Keyring, b: Binding, apiKey: string, apiSecret: string): [Buffer, Buffer] {
    return [k.seal(Buffer.from(apiKey, 'utf8'), associated(b, 'api_key')), k.seal(Buffer.from(apiSecret, 'utf8'), associated(b, 'api_secret'))];
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
      const config = JSON.parse(JSON.stringify(input.config ?? {})) as Record<string, unknown>;
      const [key, secret] = this.seal(k, { id: next!.id, userId: input.userId ?? null, exchange: input.exchange, config }, input.apiKey, input.apiSecret);
      const { rows } = await tx.query<Row>(
        `INSERT INTO exchange_connections (id, user_id, exchange, api_key_encrypted, api_secret_encrypted, encryption_key_id, config)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING ${COLUMNS}`,
        [next!.id, input.userId ?? null, input.exchange, key, secret, k.current, JSON.stringify(config)],
      );
      const added = toCredential(rows[0]!);
      await audit(tx, { action: 'credential.add', resourceType: 'credential', resourceId: added.id, userId: added.userId, new: { exchange: added.exchange, keyId: added.keyId, config: added.config } });
      return added;
    });
  }

  /** Credentials without their secrets, newest first; a user's only when `userId` is given. */
  async list(filter: { userId?: string } = {}): Promise<Credential[]> {
    const { rows } = await this.db.query<Row>(
      `SELECT ${COLUMNS} FROM exchange_connections WHERE ($1::text IS NULL OR user_id = $1) ORDER BY exchange_connections.id DESC`,
      [filter.userId ?? null],
    );
    return rows.map(toCredential);
  }

  async remove(id: string): Promise<void> {
    await this.db.transaction(async (tx) => {
      const { rows } = await tx.query<Row>(`DELETE FROM exchange_connections WHERE id = $1::bigint RETURNING ${COLUMNS}`, [idOf(id)]);
      if (!rows[0]) throw new NotFoundError('credential', id);
      const c = toCredential(rows[0]);
      await audit(tx, { action: 'credential.remove', resourceType: 'credential', resourceId: c.id, userId: c.userId, old: { exchange: c.exchange, keyId: c.keyId, config: c.config } });
    });
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
    const [apiKey, apiSecret] = openRow(k, r);
    return { id: String(r.id), exchange: r.exchange, config: r.config, apiKey: apiKey.toString('utf8'), apiSecret: apiSecret.toString('utf8') };
  }

  /**
   * How many credentials each key seals (the keyring's keys with none included), counted by the
   * key each stored value names, not only the row's encryption_key_id: a row whose values name a
   * key counts for it, whatever its column says.
   */
  async keyUsage(): Promise<{ keyId: string; credentials: number; inKeyring: boolean; current: boolean }[]> {
    const { rows } = await this.db.query<{ k: string; n: string }>(
      `SELECT k, count(DISTINCT id)::text AS n FROM exchange_connections,
              LATERAL (VALUES (encryption_key_id), (${keyIdSql('api_key_encrypted')}), (${keyIdSql('api_secret_encrypted')})) AS v(k)
        GROUP BY 1`,
    );
    const counts = new Map(rows.map((r) => [r.k, Number(r.n)]));
    const k = this.keys();
    const ids = [...new Set([...(k?.ids() ?? []), ...counts.keys()])].sort();
    return ids.map((keyId) => ({ keyId, credentials: counts.get(keyId) ?? 0, inKeyring: k?.ids().includes(keyId) ?? false, current: k?.current === keyId }));
  }

  /**
   * Re-seals every credential under the current key, `batchSize` at a time, each batch in its own
   * transaction (rows another transaction holds are skipped and taken in a later batch): an
   * interrupted run loses nothing and the next run goes on from where it stopped. A row whose
   * values do not open is not touched; the run stops with the reason.
   */
  async rotate(options: { batchSize?: number; onProgress?: (p: RotationProgress) => void; maxBatches?: number } = {}): Promise<RotationProgress & { failed: { id: string; reason: string }[] }> {
    const k = this.keyring();
    const batchSize = options.batchSize ?? 100;
    let rotated = 0;
    let after = '0';
    const failed: { id: string; reason: string }[] = [];
    for (let batch = 0; options.maxBatches === undefined || batch < options.maxBatches; batch++) {
      const done = await this.db.transaction(async (tx) => rotateBatch(tx, k, batchSize, after));
      rotated += done.rotated;
      failed.push(...done.failed);
      const remaining = await this.remaining(k);
      options.onProgress?.({ rotated, remaining });
      if (done.last === null || remaining === 0) return { rotated, remaining, failed };
      after = done.last;
    }
    return { rotated, remaining: await this.remaining(k), failed };
  }

  private async remaining(k: Keyring): Promise<number> {
    const { rows } = await this.db.query<{ n: string }>(`SELECT count(*)::text AS n FROM exchange_connections WHERE ${STALE}`, [k.current]);
    return Number(rows[0]!.n);
  }
}

/** A credential not (wholly) under the current key ($1): by its column or by the key either value names. */
const STALE = `(encryption_key_id <> $1 OR ${keyIdSql('api_key_encrypted')} <> $1 OR ${keyIdSql('api_secret_encrypted')} <> $1)`;

/** Both values of a row, opened; a SealError names the row. */
function openRow(k: Keyring, r: { id: string; user_id: string | null; exchange: string; config: unknown; api_key_encrypted: Uint8Array; api_secret_encrypted: Uint8Array }): [Buffer, Buffer] {
  const b = bindingOf(r);
  try {
    return [k.open(r.api_key_encrypted, associated(b, 'api_key')), k.open(r.api_secret_encrypted, associated(b, 'api_secret'))];
  } catch (error) {
    if (error instanceof SealError) throw new SealError(`credential ${b.id}: ${error.message}`);
    throw error;
  }
}

/**
 * Re-seals the next rows after id `after` that are not under the current key. A row whose values
 * do not open is left as it is and reported; the run goes on past it.
 */
async function rotateBatch(tx: Queryable, k: Keyring, batchSize: number, after: string): Promise<{ rotated: number; failed: { id: string; reason: string }[]; last: string | null }> {
  const { rows } = await tx.query<{ id: string; user_id: string | null; exchange: string; config: unknown; api_key_encrypted: Buffer; api_secret_encrypted: Buffer }>(
    `SELECT id::text, user_id, exchange, config, api_key_encrypted, api_secret_encrypted FROM exchange_connections
      WHERE ${STALE} AND exchange_connections.id > $3::bigint ORDER BY exchange_connections.id LIMIT $2 FOR UPDATE SKIP LOCKED`,
    [k.current, batchSize, after],
  );
  if (!rows.length) return { rotated: 0, failed: [], last: null };
  const failed: { id: string; reason: string }[] = [];
  const sealed = rows.flatMap((r) => {
    try {
      const [key, secret] = openRow(k, r);
      const b = bindingOf(r);
      return [[r.id, k.seal(key, associated(b, 'api_key')), k.seal(secret, associated(b, 'api_secret'))] as const];
    } catch (error) {
      if (!(error instanceof SealError)) throw error;
      failed.push({ id: r.id, reason: error.message });
      return [];
    }
  });
  const last = rows.at(-1)!.id;
  if (!sealed.length) return { rotated: 0, failed, last };
  await tx.query(
    `UPDATE exchange_connections c SET api_key_encrypted = u.k, api_secret_encrypted = u.s, encryption_key_id = $4, updated_at = now()
       FROM unnest($1::bigint[], $2::bytea[], $3::bytea[]) AS u(id, k, s) WHERE c.id = u.id`,
    [sealed.map((s) => s[0]), sealed.map((s) => s[1]), sealed.map((s) => s[2]), k.current],
  );
  const byId = new Map(rows.map((r) => [r.id, r]));
  for (const [id] of sealed) {
    const r = byId.get(id)!;
    await audit(tx, { action: 'credential.rotate', resourceType: 'credential', resourceId: id, userId: r.user_id, old: { keyId: k.keyOf(r.api_key_encrypted) }, new: { keyId: k.current } });
  }
  return { rotated: sealed.length, failed, last };
}

function idOf(id: string): string {
  if (!/^[0-9]{1,18}$/.test(id)) throw new InvalidArgumentError('id', 'must be a credential id (a positive integer)');
  return id;
}
