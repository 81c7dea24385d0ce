import type { Connection } from '../database/types.ts';
import { quoteIdent } from '../database/copyText.ts';
import { AGGREGATES, ARCHIVES, RETENTION, isHypertable } from './lifecycle.ts';

/**
 * The lifecycle work that the database cannot do by itself: on plain PostgreSQL (no
 * TimescaleDB) and wherever no job scheduler runs (the embedded database). Where TimescaleDB is
 * installed its policy jobs are run directly (`CALL run_job`), so both modes carry out the same
 * configuration. The service runs these as scheduled jobs (maintenanceJobs.ts).
 */
export interface MaintenanceOptions {
  /** Ages are measured from this moment (default: now). */
  asOf?: Date;
  /** Rows deleted or moved per statement, so one pass never holds a huge transaction. */
  batchSize?: number;
}

const POLICY_PROCS = ['policy_retention', 'policy_compression', 'policy_refresh_continuous_aggregate'];

/** Runs TimescaleDB's policy jobs once, for a database whose scheduler does not run them. */
export async function runTimescaleJobs(db: Connection): Promise<number[]> {
  const { rows } = await db.query<{ job_id: string }>(
    `SELECT job_id::text AS job_id FROM timescaledb_information.jobs WHERE proc_name = ANY($1::text[]) ORDER BY job_id`,
    [POLICY_PROCS],
  );
  const ran: number[] = [];
  for (const { job_id } of rows) {
    await db.query('CALL run_job($1::integer)', [Number(job_id)]);
    ran.push(Number(job_id));
  }
  return ran;
}

/** Refreshes the aggregate views. On plain PostgreSQL they are materialized views. */
export async function refreshAggregates(db: Connection): Promise<string[]> {
  const refreshed: string[] = [];
  for (const rule of AGGREGATES) {
    const { rows } = await db.query<{ populated: boolean; cagg: boolean }>(
      `SELECT c.relispopulated AS populated,
              EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb')
                AND c.relkind = 'v' AS cagg
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND c.relname = $1`,
      [rule.view],
    );
    const view = rows[0];
    if (!view) continue;
    if (view.cagg) {
      // A continuous aggregate: refresh its whole range up to the policy's end offset.
      await db.query('CALL refresh_continuous_aggregate($1::regclass, NULL, now() - $2::interval)', [rule.view, rule.endOffset]);
    } else {
      // CONCURRENTLY keeps the view readable, but needs it populated once already.
      await db.exec(`REFRESH MATERIALIZED VIEW ${view.populated ? 'CONCURRENTLY ' : ''}${quoteIdent(rule.view)}`);
    }
    refreshed.push(rule.view);
  }
  return refreshed;
}

async function deleteOlderThan(
  db: Connection,
  rule: (typeof RETENTION)[number],
  asOf: Date,
  batchSize: number,
): Promise<number> {
  const table = quoteIdent(rule.table);
  const column = quoteIdent(rule.column);
  const extra = rule.where ? ` AND (${rule.where})` : '';
  let total = 0;
  for (;;) {
    const { rowCount } = await db.query(
      `DELETE FROM ${table} WHERE ctid = ANY (ARRAY(
         SELECT ctid FROM ${table} WHERE ${column} < $1::timestamptz - $2::interval${extra} LIMIT $3))`,
      [asOf, rule.keep, batchSize],
    );
    total += rowCount;
    if (rowCount < batchSize) return total;
  }
}

/** Deletes rows past their retention from every table that no database policy covers. */
export async function enforceRetention(db: Connection, options: MaintenanceOptions = {}): Promise<Record<string, number>> {
  const asOf = options.asOf ?? new Date();
  const batchSize = options.batchSize ?? 10_000;
  const deleted: Record<string, number> = {};
  for (const rule of RETENTION) {
    const { rows } = await db.query<{ r: string | null }>('SELECT to_regclass($1)::text AS r', [`public.${rule.table}`]);
    if (!rows[0]?.r) continue;
    // Hypertables drop whole chunks through their retention policy instead.
    if (!rule.where && (await isHypertable(db, rule.table))) continue;
    deleted[rule.table] = await deleteOlderThan(db, rule, asOf, batchSize);
  }
  return deleted;
}

/** Moves old rows to their archive table (seed 002's trades_archive), in batches. */
export async function archiveOldRows(db: Connection, options: MaintenanceOptions = {}): Promise<Record<string, number>> {
  const asOf = options.asOf ?? new Date();
  const batchSize = options.batchSize ?? 10_000;
  const archived: Record<string, number> = {};
  for (const rule of ARCHIVES) {
    const table = quoteIdent(rule.table);
    let total = 0;
    for (;;) {
      const { rowCount } = await db.query(
        `WITH moved AS (
           DELETE FROM ${table} WHERE id IN (
             SELECT id FROM ${table} WHERE ${quoteIdent(rule.column)} < $1::timestamptz - $2::interval AND (${rule.where})
             LIMIT $3)
           RETURNING *)
         INSERT INTO ${quoteIdent(rule.archive)} SELECT * FROM moved`,
        [asOf, rule.after, batchSize],
      );
      total += rowCount;
      if (rowCount < batchSize) break;
    }
    archived[rule.table] = total;
  }
  return archived;
}
