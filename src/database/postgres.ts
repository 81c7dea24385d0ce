import pg from 'pg';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import copyStreams from 'pg-copy-streams';
import { copyStatement, encodeCopyPieces } from './copyText.ts';
import { detectCapabilities } from './capabilities.ts';
import type { Capabilities, CopyValue, Database, Queryable, QueryResult } from './types.ts';

const DATE_OID = 1082;
const NUMERIC_ARRAY_OID = 1231;
const TEXT_ARRAY_OID = 1009;

/**
 * NUMERIC and INT8 already arrive as strings in `pg`, but NUMERIC[] would be parsed with
 * parseFloat: it is parsed as a text array instead, so every element stays an exact string.
 * DATE is kept as 'YYYY-MM-DD' rather than a Date at local midnight.
 */
const builtinParser = pg.types.getTypeParser as (oid: number, format?: 'text' | 'binary') => (value: string) => unknown;
const typeParsers = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (oid === DATE_OID) return (value: string) => value;
    return builtinParser(oid === NUMERIC_ARRAY_OID ? TEXT_ARRAY_OID : oid, format);
  },
} as pg.CustomTypesConfig;

export interface PostgresOptions {
  url: string;
  /** Pool size; the ingest worker and the API share it. */
  max?: number;
  applicationName?: string;
}

class ClientQueryable implements Queryable {
  constructor(protected readonly client: pg.PoolClient | pg.Pool) {}

  async query<R>(sql: string, params: readonly unknown[] = []): Promise<QueryResult<R>> {
    const result = await this.client.query(sql, params as unknown[]);
    return { rows: result.rows as R[], rowCount: result.rowCount ?? result.rows.length };
  }

  async exec(sql: string): Promise<void> {
    await this.client.query(sql);
  }

  async copyFrom(table: string, columns: readonly string[], rows: Iterable<readonly CopyValue[]>): Promise<number> {
    // Encoded piece by piece as the server takes them, so it inserts while the rest is encoded.
    const iterator = rows[Symbol.iterator]();
    const first = iterator.next();
    if (first.done) return 0;
    const counted = { count: 0 };
    const all: Iterable<readonly CopyValue[]> = { [Symbol.iterator]: () => (function* () { yield first.value; yield* { [Symbol.iterator]: () => iterator }; })() };
    const run = async (client: pg.PoolClient) => {
      const stream = client.query(copyStreams.from(copyStatement(table, columns)));
      await pipeline(Readable.from(encodeCopyPieces(columns.length, all, counted)), stream);
      return Number(stream.rowCount ?? counted.count);
    };
    if (this.client instanceof pg.Pool) return withClient(this.client, run);
    return run(this.client as pg.PoolClient);
  }

  async copyIn(table: string, columns: readonly string[], options: string, data: Uint8Array): Promise<number> {
    const run = async (client: pg.PoolClient) => {
      const stream = client.query(copyStreams.from(`${copyStatement(table, columns)} WITH (${options})`));
      await pipeline(Readable.from([data]), stream);
      return Number(stream.rowCount ?? 0);
    };
    if (this.client instanceof pg.Pool) return withClient(this.client, run);
    return run(this.client as pg.PoolClient);
  }

  async copyTo(query: string, options: string, write: (chunk: Uint8Array) => unknown): Promise<number> {
    const run = async (client: pg.PoolClient) => {
      const stream = client.query(copyStreams.to(`COPY (${query}) TO STDOUT WITH (${options})`));
      for await (const chunk of stream as AsyncIterable<Buffer>) await write(chunk);
      return Number(stream.rowCount ?? 0);
    };
    if (this.client instanceof pg.Pool) return withClient(this.client, run);
    return run(this.client as pg.PoolClient);
  }
}

export class PostgresDatabase extends ClientQueryable implements Database {
  readonly backend = 'postgres' as const;
  #capabilities!: Capabilities;

  private constructor(private readonly pool: pg.Pool) {
    super(pool);
  }

  poolUsage(): { size: number; idle: number; waiting: number; max: number } {
    return { size: this.pool.totalCount, idle: this.pool.idleCount, waiting: this.pool.waitingCount, max: this.pool.options.max ?? 10 };
  }

  static async open(options: PostgresOptions): Promise<PostgresDatabase> {
    const pool = new pg.Pool({
      connectionString: options.url,
      max: options.max ?? 10,
      application_name: options.applicationName ?? 'tradestore',
      // Every session works in UTC, so timestamps and buckets never follow the host's zone.
      options: '-c TimeZone=UTC',
      types: typeParsers,
      connectionTimeoutMillis: 10_000,
    });
    // An idle client losing its server must not crash the process; the next query reports it.
    pool.on('error', () => {});
    const db = new PostgresDatabase(pool);
    try {
      await db.refreshCapabilities();
    } catch (error) {
      await pool.end().catch(() => {});
      throw new Error(`cannot connect to PostgreSQL at ${redactUrl(options.url)}: ${(error as Error).message}`, {
        cause: error,
      });
    }
    return db;
  }

  get capabilities(): Capabilities {
    return this.#capabilities;
  }

  async refreshCapabilities(): Promise<Capabilities> {
    this.#capabilities = await detectCapabilities(this, 'postgres');
    return this.#capabilities;
  }

  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    return withClient(this.pool, async (client) => {
      await client.query('BEGIN');
      try {
        const result = await fn(new ClientQueryable(client));
        await client.query('COMMIT');
        return result;
      } catch (error) {
        await client.query('ROLLBACK').catch(() => {});
        throw error;
      }
    });
  }

  session<T>(fn: (session: Queryable) => Promise<T>): Promise<T> {
    return withClient(this.pool, (client) => fn(new ClientQueryable(client)));
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}

/**
 * Runs `fn` on one pooled connection. A connection that loses its server between two queries
 * emits 'error' on the client, which would crash the process unheard; here it is caught, the
 * running work fails through its next query, and the connection is destroyed, not reused.
 */
async function withClient<T>(pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  const onError = (error: Error) => {
    broken = error;
  };
  client.on('error', onError);
  try {
    return await fn(client);
  } catch (error) {
    // A statement the server refused (it has a SQLSTATE) leaves a usable connection; anything
    // else (a reset socket, a timeout) may leave it dead or mid-transaction.
    const code = (error as { code?: unknown }).code;
    if (!(typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code))) broken ??= error as Error;
    throw error;
  } finally {
    client.off('error', onError);
    client.release(broken);
  }
}

/** postgres://user:secret@host/db → postgres://user:***@host/db, for messages and logs. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '(unparseable DATABASE_URL)';
  }
}
