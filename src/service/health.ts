import type { Bus, BusStats } from '../bus/types.ts';
import type { Database } from '../database/types.ts';
import type { IngestWorker } from '../ingest/worker.ts';

/**
 * /health: 200 "healthy" only while the service actually does its work; otherwise 503
 * "degraded" with the causes. Causes are phrased for anyone (no addresses, no SQL); the errors
 * behind them are in `detail`, shown only to callers with the admin scope.
 */
export interface Health {
  status: 'healthy' | 'degraded';
  causes: string[];
  database: { ok: boolean; backend: string };
  /** The bus: its shard count, the live workers, and the entries waiting in its streams. */
  bus: { ok: boolean; kind: string; shards: number; workers: number | null; lag: number | null };
  ingest: {
    running: boolean;
    eventsPerSecond: number;
    eventsApplied: number;
    deadLettered: number;
    /** Entries waiting to be applied: in the shards, the entry stream and the seed's list. */
    waiting: number;
    lastCommitAt: string | null;
  } | null;
  /**
   * The API's use of Redis, when the service serves the API on a Redis bus: with Redis away, reads
   * come from PostgreSQL uncached and rate limits are counted in each process.
   */
  api: { cache: 'redis' | 'bypassed'; rateLimits: 'redis' | 'in process' } | null;
  /** Background jobs (TimescaleDB's, or the service's maintenance) whose recent runs keep failing. */
  failingJobs: { job: string; failures: number; lastRunAt: string | null }[];
  detail?: Record<string, string>;
}

export interface HealthOptions {
  /** Degraded when entries wait and nothing has committed for this long (ms). */
  stallMs: number;
  /** Include the errors behind the causes (admin callers only). */
  detail?: boolean;
  /** The service serves the API (its Redis use is reported). */
  api?: boolean;
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    promise,
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/**
 * A TimescaleDB job keeps failing when its last run failed and so did an earlier one. Where no
 * TimescaleDB scheduler runs, the service's own maintenance runs (maintenance_runs) count.
 */
export async function failingJobs(db: Database): Promise<Health['failingJobs']> {
  if (db.capabilities.timescaledb && db.capabilities.jobScheduler) {
    // TimescaleDB keeps each job's consecutive failures in its catalog; older releases only the total.
    const { rows: catalog } = await db.query<{ c: boolean }>(
      `SELECT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass('_timescaledb_internal.bgw_job_stat')
                        AND attname = 'consecutive_failures') AS c`,
    );
    const { rows } = await db.query<{ job: string; failures: string; last_run: Date | null }>(
      catalog[0]?.c
        ? `SELECT j.proc_name || ' ' || coalesce(j.hypertable_name, '') || ' (job ' || j.job_id || ')' AS job,
                  b.consecutive_failures::text AS failures, b.last_start AS last_run
             FROM timescaledb_information.jobs j JOIN _timescaledb_internal.bgw_job_stat b USING (job_id)
            WHERE b.consecutive_failures >= 2`
        : `SELECT j.proc_name || ' ' || coalesce(j.hypertable_name, '') || ' (job ' || j.job_id || ')' AS job,
                  s.total_failures::text AS failures, s.last_run_started_at AS last_run
             FROM timescaledb_information.jobs j JOIN timescaledb_information.job_stats s USING (job_id)
            WHERE s.last_run_status = 'Failed' AND s.total_failures >= 2`,
    );
    return rows.map((r) => ({ job: r.job.replace(/ +\(/, ' ('), failures: Number(r.failures), lastRunAt: r.last_run?.toISOString() ?? null }));
  }
  const { rows: exists } = await db.query<{ t: string | null }>(`SELECT to_regclass('public.maintenance_runs')::text AS t`);
  if (!exists[0]?.t) return [];
  // A job keeps failing when its last two runs failed.
  const { rows } = await db.query<{ job: string; failures: string; last_run: Date }>(
    `SELECT job, count(*)::text AS failures, max(started_at) AS last_run
       FROM (SELECT job, status, started_at, row_number() OVER (PARTITION BY job ORDER BY started_at DESC) AS n
               FROM maintenance_runs WHERE status <> 'skipped') r
      WHERE n <= 2
      GROUP BY job HAVING bool_and(status = 'failed') AND count(*) = 2`,
  );
  return rows.map((r) => ({ job: `maintenance ${r.job}`, failures: Number(r.failures), lastRunAt: r.last_run.toISOString() }));
}

export async function checkHealth(db: Database, bus: Bus, worker: IngestWorker | null, options: HealthOptions): Promise<Health> {
  const causes: string[] = [];
  const detail: Record<string, string> = {};
  // Every check at once, each bounded, so /health answers within two seconds whatever is down.
  const [database, stats, jobs] = await Promise.all([
    withTimeout(db.query('SELECT 1'), 1500).then(
      () => true,
      (error: Error) => ((detail.database = error.message), false),
    ),
    withTimeout(bus.stats(), 1500).catch((error: Error): BusStats | null => ((detail.bus = error.message), null)),
    withTimeout(failingJobs(db), 1500).catch((error: Error): Health['failingJobs'] => ((detail.jobs = error.message), [])),
  ]);
  // The stream's statistics are the bus check: they answer only when Redis does.
  const busOk = stats !== null;
  if (!database) causes.push('database unreachable');
  if (!busOk) causes.push('bus unreachable');
  if (worker) {
    const orphans = stats?.perShard.filter((p) => p.length > 0 && !p.owner).map((p) => p.shard) ?? [];
    if (orphans.length) causes.push(`ingest: shard${orphans.length === 1 ? '' : 's'} ${orphans.join(', ')} ha${orphans.length === 1 ? 's' : 've'} entries waiting and no owner`);
    if (stats?.unroutable) causes.push(`ingest: ${stats.unroutable} entries in the list or the entry stream, which are not routed in a Redis Cluster (engines must write to the shards)`);
    if (!worker.databaseHealthy) causes.push('ingest: the last batch failed to apply and is being retried');
    if (!worker.busHealthy) causes.push('ingest: the worker cannot read from or write to the bus');
    if (worker.lastError && (!worker.databaseHealthy || !worker.busHealthy)) detail.ingest = worker.lastError;
  }
  const waiting = stats ? stats.lag + stats.listLength : worker?.holding ?? 0;
  if (worker && waiting > 0) {
    const idleMs = Date.now() - worker.lastProgressAt;
    if (idleMs > options.stallMs) {
      causes.push(`ingest stalled: ${waiting} entries waiting and nothing committed for ${Math.round(idleMs / 1000)} s`);
    }
  }
  const api: Health['api'] = options.api && bus.kind === 'redis' ? { cache: busOk ? 'redis' : 'bypassed', rateLimits: busOk ? 'redis' : 'in process' } : null;
  if (api && !busOk) causes.push('api: Redis unreachable, reads are served from the database without the cache and rate limits are counted per process');
  for (const j of jobs) causes.push(`background job failing: ${j.job}, ${j.failures} failures`);
  return {
    status: causes.length ? 'degraded' : 'healthy',
    causes,
    database: { ok: database, backend: db.backend },
    bus: { ok: busOk, kind: bus.kind, shards: bus.shards, workers: stats?.workers.length ?? null, lag: stats?.lag ?? null },
    ingest: worker
      ? {
          running: true,
          eventsPerSecond: worker.metrics.eventsPerSecond(),
          eventsApplied: worker.metrics.eventsApplied,
          deadLettered: worker.metrics.deadLettered,
          waiting,
          lastCommitAt: worker.lastCommitAt ? new Date(worker.lastCommitAt).toISOString() : null,
        }
      : null,
    api,
    failingJobs: jobs,
    ...(options.detail && Object.keys(detail).length ? { detail } : {}),
  };
}
