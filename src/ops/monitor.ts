import { statfs } from 'node:fs/promises';
import type { Bus } from '../bus/types.ts';
import type { Database, Queryable } from '../database/types.ts';
import { failingJobs } from '../service/health.ts';

/**
 * What an operator watches in the database (seed 000's health checks, seed 002's
 * DatabaseMetrics, seed 003's health queries), read in one pass: table sizes with hypertables'
 * chunks and compression, connections and the service's pool, long-running queries and
 * transactions, lock waits, statements from pg_stat_statements, database and disk size,
 * replication, background jobs, and ingest.
 */
export interface DatabaseReport {
  at: string;
  backend: 'postgres' | 'embedded';
  serverVersion: string;
  timescaledb: string | null;
  database: { name: string; sizeBytes: number };
  /** The filesystem that holds the data, where this process can see it (an embedded directory, a local server's data directory). */
  disk: { path: string; totalBytes: number; freeBytes: number; usedPercent: number } | null;
  tables: TableSize[];
  /** Client connections to this database (max is the server's max_connections, shared by all its databases). */
  connections: {
    total: number;
    active: number;
    idle: number;
    idleInTransaction: number;
    max: number;
    /** The service's own pool (a server only): connections open, idle, clients waiting for one, and the most it opens. */
    pool: PoolUsage | null;
  };
  /** Queries running, and transactions open, in this database for longer than the threshold. */
  longRunning: LongRunning[];
  /** Sessions of this database waiting for a lock, with the sessions that hold it. */
  lockWaits: LockWait[];
  statements: Statements;
  replication: Replica[];
  jobs: Job[];
  ingest: { lag: number; pending: number; deadLetters: number; lastDeadLetterAt: string | null; lastCommitAt: string | null } | null;
}

export interface PoolUsage {
  size: number;
  idle: number;
  waiting: number;
  max: number;
}

export interface TableSize {
  name: string;
  kind: 'table' | 'hypertable';
  /** Read from the catalog's page counts, because another session held the table exclusively (data only; no index or TOAST figures). */
  estimated: boolean;
  rowsEstimate: number;
  totalBytes: number;
  dataBytes: number;
  indexBytes: number;
  toastBytes: number;
  /** Hypertables: chunks, compressed chunks, and the bytes of the compressed chunks before and after. */
  chunks: number | null;
  compressedChunks: number | null;
  beforeCompressionBytes: number | null;
  afterCompressionBytes: number | null;
  /** before / after, where chunks are compressed. */
  compressionRatio: number | null;
}

export interface LongRunning {
  pid: number;
  state: string;
  /** How long the current query has run (active sessions), in seconds. */
  querySeconds: number | null;
  /** How long the transaction has been open, in seconds. */
  transactionSeconds: number | null;
  query: string;
}

export interface LockWait {
  pid: number;
  blockedBy: number[];
  waitingSeconds: number;
  query: string;
}

export interface StatementStat {
  query: string;
  calls: number;
  meanMs: number;
  totalMs: number;
  rows: number;
}

export type Statements =
  | { available: true; slowest: StatementStat[]; mostFrequent: StatementStat[] }
  | { available: false; hint: string };

export interface Replica {
  name: string;
  clientAddress: string | null;
  state: string;
  replayLagSeconds: number | null;
  replayLagBytes: number | null;
}

export interface Job {
  job: string;
  lastRunAt: string | null;
  lastResult: string | null;
  failures: number;
  /** Failing: its last runs failed (health.ts's rule). */
  failing: boolean;
}

export interface ReportOptions {
  /** Queries and transactions older than this are long-running (ms; default 1000, seed 002's slow query). */
  longRunningMs?: number;
  /** The service's pool, when the report is made inside the service. */
  pool?: PoolUsage | null;
  bus?: Bus | null;
  /** The entry stream whose committed offsets say when ingest last committed. */
  stream?: string;
}

const QUERY_TEXT = 300;
const seconds = (v: string | number | null | undefined) => (v === null || v === undefined ? null : Math.round(Number(v) * 1000) / 1000);

export async function databaseReport(db: Database, options: ReportOptions = {}): Promise<DatabaseReport> {
  const longRunningMs = options.longRunningMs ?? 1000;
  const [database, tables, connections, longRunning, lockWaits, statements, replication, jobs, ingest] = await Promise.all([
    db.query<{ name: string; size: string }>('SELECT current_database() AS name, pg_database_size(current_database())::text AS size'),
    tableSizes(db),
    db.query<{ total: string; active: string; idle: string; idle_tx: string; max: string }>(
      `SELECT count(*)::text AS total, count(*) FILTER (WHERE state = 'active')::text AS active, count(*) FILTER (WHERE state = 'idle')::text AS idle,
              count(*) FILTER (WHERE state LIKE 'idle in transaction%')::text AS idle_tx, current_setting('max_connections') AS max
         FROM pg_stat_activity WHERE backend_type = 'client backend' AND datname = current_database()`,
    ),
    db.query<{ pid: number; state: string; query_s: string | null; xact_s: string | null; query: string }>(
      `SELECT pid, coalesce(state, '') AS state, left(query, ${QUERY_TEXT}) AS query,
              CASE WHEN state = 'active' THEN extract(epoch FROM clock_timestamp() - query_start)::text END AS query_s,
              extract(epoch FROM clock_timestamp() - xact_start)::text AS xact_s
         FROM pg_stat_activity
        WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() AND datname = current_database()
          AND ((state = 'active' AND clock_timestamp() - query_start > $1 * interval '1 millisecond')
               OR clock_timestamp() - xact_start > $1 * interval '1 millisecond')
        ORDER BY least(query_start, xact_start)`,
      [longRunningMs],
    ),
    db.query<{ pid: number; blocked_by: number[]; wait_s: string; query: string }>(
      `SELECT a.pid, pg_blocking_pids(a.pid) AS blocked_by, extract(epoch FROM clock_timestamp() - min(l.waitstart))::text AS wait_s,
              left(a.query, ${QUERY_TEXT}) AS query
         FROM pg_stat_activity a JOIN pg_locks l ON l.pid = a.pid AND NOT l.granted
        WHERE a.datname = current_database()
        GROUP BY a.pid, a.query ORDER BY min(l.waitstart)`,
    ),
    statementStats(db),
    replicas(db),
    backgroundJobs(db),
    ingestState(db, options),
  ]);
  const c = connections.rows[0]!;
  return {
    at: new Date().toISOString(),
    backend: db.backend,
    serverVersion: db.capabilities.serverVersion,
    timescaledb: db.capabilities.timescaledb,
    database: { name: database.rows[0]!.name, sizeBytes: Number(database.rows[0]!.size) },
    disk: await diskOf(db),
    tables,
    connections: {
      total: Number(c.total),
      active: Number(c.active),
      idle: Number(c.idle),
      idleInTransaction: Number(c.idle_tx),
      max: Number(c.max),
      pool: options.pool ?? null,
    },
    longRunning: longRunning.rows.map((r) => ({ pid: Number(r.pid), state: r.state, querySeconds: seconds(r.query_s), transactionSeconds: seconds(r.xact_s), query: r.query })),
    lockWaits: lockWaits.rows.map((r) => ({ pid: Number(r.pid), blockedBy: (r.blocked_by ?? []).map(Number), waitingSeconds: seconds(r.wait_s) ?? 0, query: r.query })),
    statements,
    replication,
    jobs,
    ingest,
  };
}

/** Waited for at most this long per table: a table another session holds exclusively is estimated, not waited for. */
const SIZE_LOCK_TIMEOUT_MS = 200;

/**
 * Every table of the schema, largest first; a hypertable with its chunks (TimescaleDB's own
 * sizes). Reading a size takes a share lock on the table: under a short lock_timeout, one table
 * at a time, so a table that another session holds exclusively (a migration, a chunk being
 * compressed) is reported from the catalog's page counts (`estimated`) instead of stopping the
 * whole report.
 */
async function tableSizes(db: Database): Promise<TableSize[]> {
  return db.transaction(async (tx) => {
    await tx.query(`SELECT set_config('lock_timeout', '${SIZE_LOCK_TIMEOUT_MS}ms', true)`);
    const hypertables = db.capabilities.timescaledb
      ? (await tx.query<{ name: string }>(`SELECT hypertable_name AS name FROM timescaledb_information.hypertables WHERE hypertable_schema = 'public'`)).rows.map((r) => r.name)
      : [];
    const { rows: relations } = await tx.query<{ name: string; oid: string }>(
      `SELECT c.relname AS name, c.oid::text AS oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'm') ORDER BY 1`,
    );
    const isHyper = new Set(hypertables);
    const sizes: TableSize[] = [];
    // Each table by its oid (a regclass accepts one), whatever its name.
    for (const { name, oid: relation } of relations) {
      await tx.query('SAVEPOINT size');
      try {
        sizes.push(isHyper.has(name) ? await hypertableSize(tx, name, relation) : await plainSize(tx, name, relation));
        await tx.query('RELEASE SAVEPOINT size');
      } catch (error) {
        await tx.query('ROLLBACK TO SAVEPOINT size');
        if ((error as { code?: string }).code !== '55P03') throw error;
        sizes.push(await estimatedSize(tx, name, relation, isHyper.has(name)));
      }
    }
    return sizes.sort((a, b) => b.totalBytes - a.totalBytes || a.name.localeCompare(b.name));
  });
}

const emptyHypertable = { chunks: null, compressedChunks: null, beforeCompressionBytes: null, afterCompressionBytes: null, compressionRatio: null };

async function plainSize(tx: Queryable, name: string, relation: string): Promise<TableSize> {
  const { rows } = await tx.query<{ rows: string; total: string; data: string; index: string; toast: string }>(
    `SELECT greatest(c.reltuples, 0)::bigint::text AS rows, pg_total_relation_size(c.oid)::text AS total, pg_relation_size(c.oid)::text AS data,
            pg_indexes_size(c.oid)::text AS index, coalesce(pg_total_relation_size(nullif(c.reltoastrelid, 0)), 0)::text AS toast
       FROM pg_class c WHERE c.oid = $1::regclass`,
    [relation],
  );
  const r = rows[0]!;
  return { name, kind: 'table', estimated: false, rowsEstimate: Number(r.rows), totalBytes: Number(r.total), dataBytes: Number(r.data), indexBytes: Number(r.index), toastBytes: Number(r.toast), ...emptyHypertable };
}

async function hypertableSize(tx: Queryable, name: string, relation: string): Promise<TableSize> {
  const { rows } = await tx.query<Record<string, string | null>>(
    `SELECT s.table_bytes::text AS data, s.index_bytes::text AS index, s.toast_bytes::text AS toast, s.total_bytes::text AS total,
            (SELECT count(*) FROM show_chunks($1::regclass))::text AS chunks, c.number_compressed_chunks::text AS compressed,
            c.before_compression_total_bytes::text AS before, c.after_compression_total_bytes::text AS after, approximate_row_count($1::regclass)::text AS rows
       FROM hypertable_detailed_size($1::regclass) s LEFT JOIN hypertable_compression_stats($1::regclass) c ON true`,
    [relation],
  );
  const r = rows[0]!;
  const before = r.before === null ? null : Number(r.before);
  const after = r.after === null ? null : Number(r.after);
  return {
    name,
    kind: 'hypertable',
    estimated: false,
    rowsEstimate: Math.max(0, Number(r.rows ?? 0)),
    totalBytes: Number(r.total ?? 0),
    dataBytes: Number(r.data ?? 0),
    indexBytes: Number(r.index ?? 0),
    toastBytes: Number(r.toast ?? 0),
    chunks: Number(r.chunks ?? 0),
    compressedChunks: Number(r.compressed ?? 0),
    beforeCompressionBytes: before,
    afterCompressionBytes: after,
    compressionRatio: before !== null && after ? Math.round((before / after) * 100) / 100 : null,
  };
}

/** From the catalog alone (pages as of the last VACUUM or ANALYZE), which takes no lock on the table. */
async function estimatedSize(tx: Queryable, name: string, relation: string, hypertable: boolean): Promise<TableSize> {
  const { rows } = await tx.query<{ rows: string; bytes: string }>(
    hypertable
      ? `SELECT coalesce(sum(greatest(c.reltuples, 0)), 0)::bigint::text AS rows, (coalesce(sum(c.relpages), 0) * current_setting('block_size')::bigint)::text AS bytes
           FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = $1::regclass`
      : `SELECT greatest(reltuples, 0)::bigint::text AS rows, (relpages::bigint * current_setting('block_size')::bigint)::text AS bytes FROM pg_class WHERE oid = $1::regclass`,
    [relation],
  );
  const bytes = Number(rows[0]?.bytes ?? 0);
  return { name, kind: hypertable ? 'hypertable' : 'table', estimated: true, rowsEstimate: Number(rows[0]?.rows ?? 0), totalBytes: bytes, dataBytes: bytes, indexBytes: 0, toastBytes: 0, ...emptyHypertable };
}

async function statementStats(db: Database): Promise<Statements> {
  if (!db.capabilities.pgStatStatements) {
    return {
      available: false,
      hint: "pg_stat_statements is not installed: add it to shared_preload_libraries in postgresql.conf, restart the server, and run CREATE EXTENSION pg_stat_statements in this database",
    };
  }
  const read = (order: string) =>
    db.query<{ query: string; calls: string; mean: string; total: string; rows: string }>(
      `SELECT left(query, ${QUERY_TEXT}) AS query, calls::text, mean_exec_time::text AS mean, total_exec_time::text AS total, rows::text
         FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
        ORDER BY ${order} DESC LIMIT 10`,
    );
  const [slowest, frequent] = await Promise.all([read('mean_exec_time'), read('calls')]);
  const stat = (r: { query: string; calls: string; mean: string; total: string; rows: string }): StatementStat => ({
    query: r.query,
    calls: Number(r.calls),
    meanMs: Math.round(Number(r.mean) * 1000) / 1000,
    totalMs: Math.round(Number(r.total) * 1000) / 1000,
    rows: Number(r.rows),
  });
  return { available: true, slowest: slowest.rows.map(stat), mostFrequent: frequent.rows.map(stat) };
}

async function replicas(db: Database): Promise<Replica[]> {
  const { rows } = await db.query<{ name: string; addr: string | null; state: string; lag_s: string | null; lag_bytes: string | null }>(
    `SELECT application_name AS name, client_addr::text AS addr, state, extract(epoch FROM replay_lag)::text AS lag_s,
            (CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn) END)::text AS lag_bytes
       FROM pg_stat_replication ORDER BY application_name`,
  );
  return rows.map((r) => ({ name: r.name, clientAddress: r.addr, state: r.state, replayLagSeconds: seconds(r.lag_s), replayLagBytes: r.lag_bytes === null ? null : Number(r.lag_bytes) }));
}

/** TimescaleDB's jobs with their last run; without its scheduler, the service's maintenance jobs. */
async function backgroundJobs(db: Database): Promise<Job[]> {
  const failing = new Set((await failingJobs(db)).map((j) => j.job));
  if (db.capabilities.timescaledb && db.capabilities.jobScheduler) {
    const { rows } = await db.query<{ job: string; last_run: Date | null; result: string | null; failures: string | null }>(
      `SELECT j.proc_name || ' ' || coalesce(j.hypertable_name, '') || ' (job ' || j.job_id || ')' AS job, s.last_run_started_at AS last_run,
              s.last_run_status AS result, s.total_failures::text AS failures
         FROM timescaledb_information.jobs j LEFT JOIN timescaledb_information.job_stats s USING (job_id)
        ORDER BY j.job_id`,
    );
    return rows.map((r) => {
      const job = r.job.replace(/ +\(/, ' (');
      return { job, lastRunAt: r.last_run?.toISOString() ?? null, lastResult: r.result, failures: Number(r.failures ?? 0), failing: failing.has(job) };
    });
  }
  const { rows: exists } = await db.query<{ t: string | null }>(`SELECT to_regclass('public.maintenance_runs')::text AS t`);
  if (!exists[0]?.t) return [];
  const { rows } = await db.query<{ job: string; last_run: Date; result: string; failures: string }>(
    `SELECT DISTINCT ON (job) job, started_at AS last_run, status AS result,
            (SELECT count(*) FROM maintenance_runs f WHERE f.job = r.job AND f.status = 'failed')::text AS failures
       FROM maintenance_runs r WHERE status <> 'skipped' ORDER BY job, started_at DESC`,
  );
  return rows.map((r) => ({ job: `maintenance ${r.job}`, lastRunAt: r.last_run.toISOString(), lastResult: r.result, failures: Number(r.failures), failing: failing.has(`maintenance ${r.job}`) }));
}

async function ingestState(db: Database, options: ReportOptions): Promise<DatabaseReport['ingest']> {
  if (!options.bus) return null;
  const [stats, committed] = await Promise.all([
    options.bus.stats(),
    db.query<{ at: Date | null }>(`SELECT max(updated_at) AS at FROM ingest_offsets WHERE $1::text IS NULL OR stream = $1`, [options.stream ?? null]),
  ]);
  return {
    lag: stats.lag,
    pending: stats.lag + stats.listLength,
    deadLetters: stats.deadLetters,
    lastDeadLetterAt: stats.lastDeadLetterAt === null ? null : new Date(stats.lastDeadLetterAt).toISOString(),
    lastCommitAt: committed.rows[0]?.at?.toISOString() ?? null,
  };
}

/** The filesystem of the data: an embedded directory, or a server's data directory when it is on this machine and readable. */
async function diskOf(db: Database): Promise<DatabaseReport['disk']> {
  let path: string | null = null;
  if (db.backend === 'embedded') path = (db as { dataDir?: string }).dataDir ?? null;
  else {
    // data_directory is shown only to superusers and pg_read_all_settings, and is this machine's
    // only when the server is reached over a Unix socket or the loopback.
    const { rows } = await db
      .query<{ dir: string | null }>(
        `SELECT CASE WHEN inet_server_addr() IS NULL OR inet_server_addr() <<= inet '127.0.0.0/8' OR inet_server_addr() = inet '::1'
                     THEN current_setting('data_directory', true) END AS dir`,
      )
      .catch(() => ({ rows: [{ dir: null }] }));
    path = rows[0]?.dir ?? null;
  }
  if (!path || path.startsWith('memory://')) return null;
  try {
    const s = await statfs(path);
    const total = s.blocks * s.bsize;
    const free = s.bavail * s.bsize;
    return { path, totalBytes: total, freeBytes: free, usedPercent: total ? Math.round(((total - free) / total) * 1000) / 10 : 0 };
  } catch {
    return null;
  }
}
