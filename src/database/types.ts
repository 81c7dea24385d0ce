/**
 * The one small interface the rest of tradestore talks to. Two adapters implement it:
 * `postgres.ts` (a server, through `pg`) and `embedded.ts` (PGlite with TimescaleDB, in-process).
 *
 * Both return NUMERIC and BIGINT values as strings, never JS numbers: money stays exact.
 */

export type Row = Record<string, unknown>;

export interface QueryResult<R = Row> {
  rows: R[];
  /** Rows affected by INSERT/UPDATE/DELETE/COPY, or rows returned by SELECT. */
  rowCount: number;
}

/** A value that bulk load accepts for one column. Dates are written as UTC ISO strings. */
export type CopyValue = string | number | bigint | boolean | Date | null | undefined;

export interface Queryable {
  /** One statement; every value is a bind parameter ($1, $2, …). */
  query<R = Row>(sql: string, params?: readonly unknown[]): Promise<QueryResult<R>>;
  /** A script of several statements without parameters (migrations, maintenance). */
  exec(sql: string): Promise<void>;
  /**
   * Bulk load through COPY FROM STDIN. `table` and `columns` must be plain identifiers that
   * come from the code, never from input; they are checked and quoted.
   */
  copyFrom(table: string, columns: readonly string[], rows: Iterable<readonly CopyValue[]>): Promise<number>;
  /**
   * Streams `COPY (query) TO STDOUT WITH (options)` to `write`, chunk by chunk, each awaited
   * (backpressure); returns the rows copied. `query` and `options` come from the code (values
   * quoted with `literal()`), never from input. A server streams as it reads; the embedded
   * database produces a statement's whole output first, so callers bound it by slicing the query.
   */
  copyTo(query: string, options: string, write: (chunk: Uint8Array) => unknown): Promise<number>;
  /**
   * Loads `data`, text in the format `options` names (e.g. `FORMAT csv, HEADER true`), with
   * `COPY table (columns) FROM STDIN`; returns the rows loaded. `table` and `columns` come from the
   * code or the catalog (checked and quoted).
   */
  copyIn(table: string, columns: readonly string[], options: string, data: Uint8Array): Promise<number>;
}

export interface Capabilities {
  /** 'postgres' for a server reached through DATABASE_URL, 'embedded' for PGlite. */
  backend: 'postgres' | 'embedded';
  /** server_version, e.g. "15.20". */
  serverVersion: string;
  /** server_version_num, e.g. 150020. */
  serverVersionNum: number;
  /** Installed TimescaleDB version, or null when the extension is not installed. */
  timescaledb: string | null;
  /** TimescaleDB could be installed (listed in pg_available_extensions). */
  timescaledbAvailable: boolean;
  /** A background job scheduler runs the database's own policies (TimescaleDB workers). */
  jobScheduler: boolean;
  /** pg_stat_statements is installed and loaded, so slow statements can be read. */
  pgStatStatements: boolean;
  /** Row-level security can be enforced: the server has it and a non-bypassing role can be used. */
  rowLevelSecurity: boolean;
}

/** A Queryable that knows the server's capabilities: a database, or one of its sessions or transactions. */
export interface Connection extends Queryable {
  readonly capabilities: Capabilities;
}

export function withCapabilities(q: Queryable, capabilities: Capabilities): Connection {
  return {
    query: <R = Row>(sql: string, params?: readonly unknown[]) => q.query<R>(sql, params),
    exec: (sql: string) => q.exec(sql),
    copyFrom: (table, columns, rows) => q.copyFrom(table, columns, rows),
    copyTo: (query, options, write) => q.copyTo(query, options, write),
    copyIn: (table, columns, options, data) => q.copyIn(table, columns, options, data),
    capabilities,
  };
}

export interface Database extends Queryable {
  readonly backend: 'postgres' | 'embedded';
  /** Detected at connect; refreshed by `refreshCapabilities()` (after migrations install extensions). */
  readonly capabilities: Capabilities;
  refreshCapabilities(): Promise<Capabilities>;
  /** A server's connection pool: connections open, idle, clients waiting for one, and the most it opens. */
  poolUsage?(): { size: number; idle: number; waiting: number; max: number };
  /** Runs `fn` in one transaction on one connection; commits when it resolves, rolls back when it throws. */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  /**
   * Runs `fn` on one connection, outside a transaction (each statement commits on its own), for
   * work that holds a session-level advisory lock or cannot run in a transaction block.
   */
  session<T>(fn: (session: Queryable) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}
