import type { Connection } from '../database/types.ts';
import { quoteIdent } from '../database/copyText.ts';

/**
 * The seeds' retention, compression, aggregate-refresh and archive policies, in one place.
 * Where seeds disagree on a retention, the longest wins (keeping data is recoverable, dropping
 * it is not); docs/SCHEMA.md lists each conflict. With TimescaleDB these become the database's
 * own policies; without it (or where nothing runs its jobs) the service's maintenance carries
 * them out (see maintenance.ts).
 */
export interface RetentionRule {
  table: string;
  /** Column compared with the age. */
  column: string;
  /** PostgreSQL interval: rows older than this are removed. */
  keep: string;
  /** The rule only applies to rows matching this fixed predicate (e.g. closed positions). */
  where?: string;
  seeds: string;
}

export interface CompressionRule {
  table: string;
  after: string;
  segmentBy: readonly string[];
  orderBy: string;
  seeds: string;
}

export interface AggregateRule {
  view: string;
  startOffset: string;
  endOffset: string;
  schedule: string;
  seeds: string;
}

export interface ArchiveRule {
  table: string;
  archive: string;
  column: string;
  after: string;
  where: string;
  seeds: string;
}

/**
 * The schema's time-series tables and their time columns: the hypertables where TimescaleDB is
 * installed (the migrations' create_hypertable calls), plain tables elsewhere. Exports filter on
 * these columns, and time-series backups (tradestore backup --since) hold these tables.
 */
export const TIME_SERIES: Readonly<Record<string, string>> = {
  trades: 'executed_at',
  balance_history: 'created_at',
  audit_log: 'created_at',
  ohlcv_1m: 'open_time',
  ohlcv_5m: 'open_time',
  ohlcv_15m: 'open_time',
  ohlcv_1h: 'open_time',
  ohlcv_4h: 'open_time',
  ohlcv_1d: 'open_time',
  market_data: 'timestamp',
  market_trades: 'time',
  order_book_snapshots: 'timestamp',
  order_history: 'timestamp',
  trades_executed: 'executed_at',
  performance_metrics: 'time',
  portfolio_snapshots: 'snapshot_time',
  strategy_performance: 'timestamp',
  risk_events: 'triggered_at',
  system_logs: 'timestamp',
  api_usage: 'timestamp',
  backtest_trades: 'entry_time',
  predictions: 'timestamp',
  technical_indicators: 'timestamp',
};

export const RETENTION: readonly RetentionRule[] = [
  { table: 'trades', column: 'executed_at', keep: '2 years', seeds: '000' },
  { table: 'balance_history', column: 'created_at', keep: '7 years', seeds: '000' },
  { table: 'audit_log', column: 'created_at', keep: '1 year', seeds: '000' },
  // 001: 1m candles 2 years, 5m+ 5 years; 003: 2 years; 004 ohlc_candles: 2 years.
  { table: 'market_data', column: 'timestamp', keep: '5 years', seeds: '001, 002, 003, 004' },
  // 001 and 003: 30 days; 004: 7 days.
  { table: 'order_book_snapshots', column: 'timestamp', keep: '30 days', seeds: '001, 003, 004' },
  // 001 trades: 1 year; 003 trades: 90 days; 004 tick_data: 30 days.
  { table: 'market_trades', column: 'time', keep: '1 year', seeds: '001, 003, 004' },
  // 001 executed_orders: 7 years (compliance); 004 order_history: 5 years.
  { table: 'order_history', column: 'timestamp', keep: '7 years', seeds: '001, 004' },
  { table: 'trades_executed', column: 'executed_at', keep: '7 years', seeds: '001' },
  { table: 'performance_metrics', column: 'time', keep: '5 years', seeds: '001' },
  { table: 'risk_events', column: 'triggered_at', keep: '7 years', seeds: '001' },
  // 001 and 003: 1 year; 002: 30 days.
  { table: 'system_logs', column: 'timestamp', keep: '1 year', seeds: '001, 002, 003' },
  { table: 'api_usage', column: 'timestamp', keep: '6 months', seeds: '003' },
  // Plain tables: always carried out by the service.
  { table: 'user_sessions', column: 'created_at', keep: '30 days', seeds: '001' },
  { table: 'positions', column: 'closed_at', keep: '7 years', where: "status = 'closed'", seeds: '001' },
  // tradestore's own exactly-once ledger: redeliveries happen within minutes.
  { table: 'ingest_applied', column: 'applied_at', keep: '7 days', seeds: '—' },
  // Identities of trades and fills: as long as the longest-kept of their tables (trades_executed).
  { table: 'ingest_identities', column: 'occurred_at', keep: '7 years', seeds: '—' },
  { table: 'maintenance_runs', column: 'started_at', keep: '90 days', seeds: '—' },
];

export const COMPRESSION: readonly CompressionRule[] = [
  { table: 'trades', after: '30 days', segmentBy: ['market'], orderBy: 'executed_at DESC', seeds: '000' },
  { table: 'ohlcv_1m', after: '7 days', segmentBy: ['market'], orderBy: 'open_time DESC', seeds: '000' },
  // 002/003: 7 days; 004 ohlc_candles: 30 days.
  { table: 'market_data', after: '7 days', segmentBy: ['exchange', 'symbol', 'timeframe'], orderBy: 'timestamp DESC', seeds: '002, 003, 004' },
  { table: 'market_trades', after: '7 days', segmentBy: ['exchange', 'symbol'], orderBy: 'time DESC', seeds: '004' },
  { table: 'order_book_snapshots', after: '1 day', segmentBy: ['exchange', 'symbol'], orderBy: 'timestamp DESC', seeds: '004' },
];

export const AGGREGATES: readonly AggregateRule[] = [
  // Seed 000 asks for start 2 hours / end 1 hour; TimescaleDB refuses a window shorter than two
  // buckets ("policy refresh window too small"), so the start is 3 hours.
  { view: 'trades_hourly_summary', startOffset: '3 hours', endOffset: '1 hour', schedule: '1 hour', seeds: '000' },
  { view: 'daily_ohlcv', startOffset: '1 month', endOffset: '1 hour', schedule: '1 hour', seeds: '003' },
];

export const ARCHIVES: readonly ArchiveRule[] = [
  {
    table: 'strategy_trades',
    archive: 'strategy_trades_archive',
    column: 'entry_time',
    after: '2 years',
    where: "status IN ('closed', 'cancelled')",
    seeds: '002',
  },
];

export interface LifecycleReport {
  /** 'timescaledb': policies live in the database; 'service': maintenance.ts carries them out. */
  mode: 'timescaledb' | 'service';
  applied: string[];
  serviceEnforced: string[];
}

async function exists(db: Connection, relation: string): Promise<boolean> {
  const { rows } = await db.query<{ r: string | null }>('SELECT to_regclass($1)::text AS r', [`public.${relation}`]);
  return Boolean(rows[0]?.r);
}

export async function isHypertable(db: Connection, table: string): Promise<boolean> {
  if (!db.capabilities.timescaledb) return false;
  const { rows } = await db.query(
    `SELECT 1 FROM timescaledb_information.hypertables WHERE hypertable_schema = 'public' AND hypertable_name = $1`,
    [table],
  );
  return rows.length > 0;
}

/** Interval equality in the database's terms ('30 days' = '1 month' is false, '7 days' = '1 week' true). */
async function sameInterval(db: Connection, a: unknown, b: string): Promise<boolean> {
  if (a === null || a === undefined) return false;
  const { rows } = await db.query<{ same: boolean }>('SELECT $1::interval = $2::interval AS same', [String(a), b]);
  return Boolean(rows[0]?.same);
}

interface JobRow {
  job_id: string;
  config: Record<string, unknown>;
}

async function jobFor(db: Connection, proc: string, relation: string): Promise<JobRow | undefined> {
  const { rows } = await db.query<JobRow>(
    `SELECT job_id::text AS job_id, config FROM timescaledb_information.jobs
      WHERE proc_name = $1 AND hypertable_schema = 'public' AND hypertable_name = $2`,
    [proc, relation],
  );
  return rows[0];
}

async function isContinuousAggregate(db: Connection, view: string): Promise<boolean> {
  if (!db.capabilities.timescaledb) return false;
  const { rows } = await db.query(
    `SELECT 1 FROM timescaledb_information.continuous_aggregates WHERE view_schema = 'public' AND view_name = $1`,
    [view],
  );
  return rows.length > 0;
}

/**
 * Makes the database's TimescaleDB policies match the configuration above. Idempotent: a policy
 * that already matches is left alone, one that differs is replaced. Tables that do not exist
 * (a partial migration) are skipped.
 */
export async function applyLifecycle(db: Connection): Promise<LifecycleReport> {
  const report: LifecycleReport = { mode: db.capabilities.timescaledb ? 'timescaledb' : 'service', applied: [], serviceEnforced: [] };
  for (const rule of RETENTION) {
    if (!(await exists(db, rule.table))) continue;
    if (!rule.where && (await isHypertable(db, rule.table))) {
      const job = await jobFor(db, 'policy_retention', rule.table);
      if (!job || !(await sameInterval(db, job.config.drop_after, rule.keep))) {
        await db.query('SELECT remove_retention_policy($1::regclass, if_exists => true)', [rule.table]);
        await db.query('SELECT add_retention_policy($1::regclass, drop_after => $2::interval)', [rule.table, rule.keep]);
      }
      report.applied.push(`retention ${rule.table} ${rule.keep}`);
    } else {
      report.serviceEnforced.push(`retention ${rule.table} ${rule.keep}`);
    }
  }
  for (const rule of COMPRESSION) {
    if (!(await exists(db, rule.table)) || !(await isHypertable(db, rule.table))) continue;
    const { rows } = await db.query<{ compression_enabled: boolean }>(
      `SELECT compression_enabled FROM timescaledb_information.hypertables WHERE hypertable_schema = 'public' AND hypertable_name = $1`,
      [rule.table],
    );
    if (!rows[0]?.compression_enabled) {
      // DDL cannot take bind parameters; every name here comes from the fixed list above.
      const segmentBy = rule.segmentBy.map(quoteIdent).join(', ');
      const [column, direction] = rule.orderBy.split(' ');
      const orderBy = `${quoteIdent(column!)} ${direction === 'ASC' ? 'ASC' : 'DESC'}`;
      await db.exec(
        `ALTER TABLE ${quoteIdent(rule.table)} SET (timescaledb.compress, ` +
          `timescaledb.compress_segmentby = '${segmentBy}', timescaledb.compress_orderby = '${orderBy}')`,
      );
    }
    const job = await jobFor(db, 'policy_compression', rule.table);
    if (!job || !(await sameInterval(db, job.config.compress_after, rule.after))) {
      await db.query('SELECT remove_compression_policy($1::regclass, if_exists => true)', [rule.table]);
      await db.query('SELECT add_compression_policy($1::regclass, compress_after => $2::interval)', [rule.table, rule.after]);
    }
    report.applied.push(`compression ${rule.table} after ${rule.after}`);
  }
  for (const rule of AGGREGATES) {
    if (!(await exists(db, rule.view))) continue;
    if (await isContinuousAggregate(db, rule.view)) {
      // The jobs view lists a continuous aggregate's policy under the view's own name.
      const job = await jobFor(db, 'policy_refresh_continuous_aggregate', rule.view);
      const same =
        job &&
        (await sameInterval(db, job.config.start_offset, rule.startOffset)) &&
        (await sameInterval(db, job.config.end_offset, rule.endOffset));
      if (!same) {
        await db.query('SELECT remove_continuous_aggregate_policy($1::regclass, if_exists => true)', [rule.view]);
        await db.query(
          `SELECT add_continuous_aggregate_policy($1::regclass, start_offset => $2::interval,
                  end_offset => $3::interval, schedule_interval => $4::interval)`,
          [rule.view, rule.startOffset, rule.endOffset, rule.schedule],
        );
      }
      report.applied.push(`refresh ${rule.view} every ${rule.schedule}`);
    } else {
      report.serviceEnforced.push(`refresh ${rule.view} every ${rule.schedule}`);
    }
  }
  for (const rule of ARCHIVES) {
    if (await exists(db, rule.table)) report.serviceEnforced.push(`archive ${rule.table} after ${rule.after}`);
  }
  return report;
}
