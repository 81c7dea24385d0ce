import type { Database } from '../database/types.ts';
import type { DatabaseReport } from './monitor.ts';

/** Seed 002's alert thresholds, each configurable (config.ts: TRADESTORE_ALERT_*). */
export interface AlertThresholds {
  /** The service's pool in use (or clients waiting for it), in percent of its maximum. */
  poolPercent: number;
  slowQueryMs: number;
  lockWaitMs: number;
  diskPercent: number;
  replicationLagMs: number;
  /** Dead letters written within this window make the dead-letter alert (they are growing). */
  deadLetterWindowMs: number;
}

export const DEFAULT_THRESHOLDS: AlertThresholds = {
  poolPercent: 90,
  slowQueryMs: 1000,
  lockWaitMs: 100,
  diskPercent: 85,
  replicationLagMs: 60_000,
  deadLetterWindowMs: 15 * 60_000,
};

export const ALERT_NAMES = ['pool_utilisation', 'slow_query', 'lock_wait', 'disk_usage', 'replication_lag', 'failing_job', 'dead_letters'] as const;
export type AlertName = (typeof ALERT_NAMES)[number];

export interface Alert {
  name: AlertName;
  /** What is wrong, for a person. */
  message: string;
  /** The measured value and the threshold it crossed, in the alert's unit. */
  value: number;
  threshold: number;
}

/** The alerts a report shows (dead letters: one was written within the window, so they grow). */
export function evaluateAlerts(report: DatabaseReport, t: AlertThresholds, now = Date.now()): Alert[] {
  const alerts: Alert[] = [];
  const pool = report.connections.pool;
  if (pool && pool.max > 0) {
    const used = pool.waiting > 0 ? 100 : Math.round(((pool.size - pool.idle) / pool.max) * 1000) / 10;
    if (used > t.poolPercent) {
      alerts.push({ name: 'pool_utilisation', value: used, threshold: t.poolPercent, message: `connection pool ${used}% in use (${pool.size - pool.idle} of ${pool.max}, ${pool.waiting} waiting)` });
    }
  }
  const slowest = Math.max(0, ...report.longRunning.map((q) => (q.querySeconds ?? 0) * 1000));
  if (slowest > t.slowQueryMs) {
    const n = report.longRunning.filter((q) => (q.querySeconds ?? 0) * 1000 > t.slowQueryMs).length;
    alerts.push({ name: 'slow_query', value: Math.round(slowest), threshold: t.slowQueryMs, message: `${n} quer${n === 1 ? 'y has' : 'ies have'} run longer than ${t.slowQueryMs} ms (the longest ${Math.round(slowest)} ms)` });
  }
  const longestWait = Math.max(0, ...report.lockWaits.map((w) => w.waitingSeconds * 1000));
  if (longestWait > t.lockWaitMs) {
    const w = report.lockWaits[0]!;
    alerts.push({ name: 'lock_wait', value: Math.round(longestWait), threshold: t.lockWaitMs, message: `${report.lockWaits.length} session(s) waiting for a lock, the longest ${Math.round(longestWait)} ms (pid ${w.pid} blocked by ${w.blockedBy.join(', ')})` });
  }
  if (report.disk && report.disk.usedPercent > t.diskPercent) {
    alerts.push({ name: 'disk_usage', value: report.disk.usedPercent, threshold: t.diskPercent, message: `the data's disk is ${report.disk.usedPercent}% full (${report.disk.path})` });
  }
  const lag = Math.max(0, ...report.replication.map((r) => (r.replayLagSeconds ?? 0) * 1000));
  if (lag > t.replicationLagMs) {
    alerts.push({ name: 'replication_lag', value: Math.round(lag), threshold: t.replicationLagMs, message: `a replica replays ${Math.round(lag / 1000)} s behind` });
  }
  const failing = report.jobs.filter((j) => j.failing);
  if (failing.length) {
    alerts.push({ name: 'failing_job', value: failing.length, threshold: 0, message: `background job${failing.length === 1 ? '' : 's'} failing: ${failing.map((j) => j.job).join(', ')}` });
  }
  const lastDead = report.ingest?.lastDeadLetterAt ? Date.parse(report.ingest.lastDeadLetterAt) : null;
  if (lastDead !== null && now - lastDead <= t.deadLetterWindowMs) {
    const n = report.ingest!.deadLetters;
    alerts.push({ name: 'dead_letters', value: n, threshold: 0, message: `dead letters growing: the last written ${Math.round((now - lastDead) / 1000)} s ago, ${n} kept (tradestore dlq list)` });
  }
  return alerts;
}

/**
 * Writes to system_logs each alert that started or ended since the last record: one row when it
 * starts (level warn) and one when it ends (info), category 'alert'. Evaluators that run at once
 * (the service, a cron job's `tradestore health`) take turns, so each change is written once.
 * Returns the changes.
 */
export async function recordAlerts(db: Database, alerts: readonly Alert[]): Promise<{ started: AlertName[]; ended: AlertName[] }> {
  return db.transaction(async (tx) => {
    await tx.query(`SELECT pg_advisory_xact_lock(hashtext('tradestore:alerts'))`);
    const { rows } = await tx.query<{ alert: AlertName; state: string }>(
      `SELECT DISTINCT ON (details->>'alert') details->>'alert' AS alert, details->>'state' AS state
         FROM system_logs WHERE category = 'alert' ORDER BY details->>'alert', timestamp DESC, id DESC`,
    );
    const firing = new Set(rows.filter((r) => r.state === 'firing').map((r) => r.alert));
    const active = new Map(alerts.map((a) => [a.name, a]));
    const started = [...active.keys()].filter((name) => !firing.has(name));
    const ended = [...firing].filter((name) => !active.has(name));
    for (const name of started) {
      const a = active.get(name)!;
      await tx.query(`INSERT INTO system_logs (level, category, message, details) VALUES ('warn', 'alert', $1, $2)`, [
        `alert ${name} started: ${a.message}`,
        JSON.stringify({ alert: name, state: 'firing', value: a.value, threshold: a.threshold }),
      ]);
    }
    for (const name of ended) {
      await tx.query(`INSERT INTO system_logs (level, category, message, details) VALUES ('info', 'alert', $1, $2)`, [
        `alert ${name} ended`,
        JSON.stringify({ alert: name, state: 'resolved' }),
      ]);
    }
    return { started, ended };
  });
}
