import { hostname } from 'node:os';
import { withCapabilities, type Capabilities, type Connection, type Database } from '../database/types.ts';
import { archiveOldRows, enforceRetention, refreshAggregates, runTimescaleJobs } from './maintenance.ts';
import { takeSnapshots } from '../store/portfolioSnapshots.ts';
import { writeDailyMetrics } from '../store/dailyMetrics.ts';
import { backfillPredictions } from '../store/models.ts';

/**
 * The lifecycle work the service carries out itself, as named jobs with a schedule. A job runs
 * only where the database does not do the same work (TimescaleDB's policies run by its own
 * scheduler where one runs). Every run is recorded in maintenance_runs, and all runs happen
 * under one advisory lock, so with several service instances exactly one does the work.
 */
export interface MaintenanceJob {
  name: string;
  description: string;
  /** How often it runs (ms). */
  everyMs: number;
  applies: (caps: Capabilities) => boolean;
  /** `everyMs`: the interval it runs at (its own, or the one configured). */
  run: (db: Connection, asOf: Date, everyMs: number) => Promise<Record<string, unknown>>;
}

const HOUR = 3_600_000;

export const MAINTENANCE_JOBS: readonly MaintenanceJob[] = [
  {
    name: 'policies',
    description: "runs TimescaleDB's retention, compression and aggregate-refresh policies where no TimescaleDB scheduler runs them (the embedded database)",
    everyMs: HOUR,
    applies: (caps) => caps.timescaledb !== null && !caps.jobScheduler,
    run: async (db) => ({ jobsRun: await runTimescaleJobs(db) }),
  },
  {
    name: 'aggregates',
    description: 'refreshes the aggregate views (trades_hourly_summary, daily_ohlcv) on PostgreSQL without TimescaleDB',
    everyMs: HOUR,
    applies: (caps) => caps.timescaledb === null,
    run: async (db) => ({ refreshed: await refreshAggregates(db) }),
  },
  {
    name: 'retention',
    description: 'deletes rows past their retention from the tables no database policy covers',
    everyMs: HOUR,
    applies: () => true,
    run: async (db, asOf) => ({ deleted: await enforceRetention(db, { asOf }) }),
  },
  {
    name: 'archive',
    description: 'moves closed strategy round trips older than two years to strategy_trades_archive',
    everyMs: 24 * HOUR,
    applies: () => true,
    run: async (db, asOf) => ({ archived: await archiveOldRows(db, { asOf }) }),
  },
  {
    name: 'snapshots',
    description:
      "builds a portfolio snapshot of every strategy with an initial capital and every user with an exchange account, and each strategy's missing day-end snapshots of the last 7 days; removes its own intra-day snapshots after 7 days (TRADESTORE_SNAPSHOT_INTERVAL_MS)",
    everyMs: 60_000,
    applies: () => true,
    run: async (db, asOf, everyMs) => takeSnapshots(db, asOf, { intervalMs: everyMs }),
  },
  {
    name: 'strategy-metrics',
    description: "writes each strategy's strategy_metrics row and strategy_performance point for every finished UTC day of the last 7 that has none",
    everyMs: HOUR,
    applies: () => true,
    run: async (db, asOf) => writeDailyMetrics(db, asOf),
  },
  {
    name: 'predictions',
    description: "fills in the actual value and error of the predictions whose moment has passed (last 7 days), from the stored candles",
    everyMs: 5 * 60_000,
    applies: () => true,
    run: async (db, asOf) => ({ filled: await backfillPredictions(db, asOf) }),
  },
  {
    name: 'sessions',
    description: 'deletes user sessions whose session and refresh tokens have both expired, and login failure counts whose window and lock are over',
    everyMs: HOUR,
    applies: () => true,
    run: async (db, asOf) => {
      const sessions = await db.query('DELETE FROM user_sessions WHERE greatest(expires_at, refresh_expires_at) < $1', [asOf]);
      const failures = await db.query('DELETE FROM login_failures WHERE greatest(window_ends, locked_until) < $1', [asOf]);
      return { expired: sessions.rowCount, loginFailures: failures.rowCount };
    },
  },
];

export const jobNames = () => MAINTENANCE_JOBS.map((j) => j.name);

/** The jobs' intervals that configuration sets (TRADESTORE_SNAPSHOT_INTERVAL_MS). */
export const configuredIntervals = (config: { snapshotIntervalMs: number }): Partial<Record<string, number>> => ({ snapshots: config.snapshotIntervalMs });

/** pg_try_advisory_lock key: one maintenance runner per database. */
const MAINTENANCE_LOCK_KEY = 7_265_738_776_103;

export interface JobRun {
  job: string;
  status: 'ok' | 'failed' | 'skipped';
  startedAt: Date;
  finishedAt: Date | null;
  detail: Record<string, unknown> | null;
  error: string | null;
}

export interface RunOptions {
  /** Only this job (default: every job that applies). */
  job?: string;
  /** Run even if the job ran within its interval. */
  force?: boolean;
  asOf?: Date;
  runner?: string;
  /** A job's interval instead of its default (ms); 0 keeps the schedule from running it. */
  intervals?: Partial<Record<string, number>>;
}

/** A job is due a little early rather than a whole tick late: timers drift by milliseconds. */
const DUE_SLACK = 0.05;

export class MaintenanceBusyError extends Error {
  constructor() {
    super('another tradestore instance is running maintenance on this database right now; try again when it is done');
    this.name = 'MaintenanceBusyError';
  }
}

/**
 * Runs the due jobs (or the named one) under the maintenance lock, recording each run. Returns
 * what each did; a job that fails is recorded and does not stop the others. Throws
 * MaintenanceBusyError when another instance holds the lock.
 */
export async function runMaintenanceJobs(db: Database, options: RunOptions = {}): Promise<JobRun[]> {
  if (options.job && !jobNames().includes(options.job)) throw new Error(`unknown maintenance job ${JSON.stringify(options.job)} (jobs: ${jobNames().join(', ')})`);
  const runner = options.runner ?? `${hostname()}-${process.pid}`;
  return db.session(async (session) => {
    const { rows } = await session.query<{ locked: boolean }>('SELECT pg_try_advisory_lock($1) AS locked', [MAINTENANCE_LOCK_KEY]);
    if (!rows[0]?.locked) throw new MaintenanceBusyError();
    try {
      const conn = withCapabilities(session, db.capabilities);
      const last = await lastRuns(conn);
      const runs: JobRun[] = [];
      for (const job of MAINTENANCE_JOBS) {
        if (options.job ? job.name !== options.job : !job.applies(db.capabilities)) continue;
        const previous = last.get(job.name);
        const asOf = options.asOf ?? new Date();
        const everyMs = options.intervals?.[job.name] ?? job.everyMs;
        if (!options.job && everyMs === 0) continue;
        if (!options.force && !options.job && previous && asOf.getTime() - previous.startedAt.getTime() < everyMs * (1 - DUE_SLACK)) continue;
        runs.push(await runOne(conn, job, asOf, runner, everyMs));
      }
      return runs;
    } finally {
      await session.query('SELECT pg_advisory_unlock($1)', [MAINTENANCE_LOCK_KEY]).catch(() => {});
    }
  });
}

async function runOne(db: Connection, job: MaintenanceJob, asOf: Date, runner: string, everyMs: number): Promise<JobRun> {
  const startedAt = new Date();
  const { rows } = await db.query<{ id: string }>(
    `INSERT INTO maintenance_runs (job, started_at, status, runner) VALUES ($1, $2, 'running', $3) RETURNING id::text`,
    [job.name, startedAt, runner],
  );
  const id = rows[0]!.id;
  let detail: Record<string, unknown> | null = null;
  let error: string | null = null;
  try {
    detail = await job.run(db, asOf, everyMs);
  } catch (e) {
    error = (e as Error).message;
  }
  const finishedAt = new Date();
  await db.query(`UPDATE maintenance_runs SET finished_at = $2, status = $3, detail = $4::jsonb, error = $5 WHERE id = $1::bigint`, [
    id,
    finishedAt,
    error ? 'failed' : 'ok',
    detail ? JSON.stringify(detail) : null,
    error,
  ]);
  return { job: job.name, status: error ? 'failed' : 'ok', startedAt, finishedAt, detail, error };
}

async function lastRuns(db: Connection): Promise<Map<string, JobRun>> {
  const { rows } = await db.query<{ job: string; status: JobRun['status']; started_at: Date; finished_at: Date | null; detail: Record<string, unknown> | null; error: string | null }>(
    `SELECT DISTINCT ON (job) job, status, started_at, finished_at, detail, error
       FROM maintenance_runs WHERE status <> 'running' ORDER BY job, started_at DESC`,
  );
  return new Map(rows.map((r) => [r.job, { job: r.job, status: r.status, startedAt: r.started_at, finishedAt: r.finished_at, detail: r.detail, error: r.error }]));
}

export interface JobStatus {
  job: string;
  description: string;
  /** False where the database does this work itself. */
  applies: boolean;
  everyMs: number;
  last: JobRun | null;
  /** When the scheduler will run it next (null when it does not apply). */
  nextDueAt: Date | null;
}

/** Each job with its last run and when it is due, for `tradestore maintenance status`. */
export async function maintenanceStatus(db: Database, intervals: Partial<Record<string, number>> = {}): Promise<JobStatus[]> {
  const last = await lastRuns(db);
  return MAINTENANCE_JOBS.map((job) => {
    const run = last.get(job.name) ?? null;
    const everyMs = intervals[job.name] ?? job.everyMs;
    // A job whose interval is 0 is not run by the schedule.
    const applies = job.applies(db.capabilities) && everyMs > 0;
    return {
      job: job.name,
      description: job.description,
      applies,
      everyMs,
      last: run,
      nextDueAt: applies ? new Date(run ? run.startedAt.getTime() + everyMs : Date.now()) : null,
    };
  });
}
