import { Gauge, type Registry } from 'prom-client';
import type { Bus } from '../bus/types.ts';
import type { Database } from '../database/types.ts';
import { ALERT_NAMES, evaluateAlerts, recordAlerts, type Alert, type AlertThresholds } from './alerts.ts';
import { databaseReport, type DatabaseReport } from './monitor.ts';

export interface Checkup {
  report: DatabaseReport;
  alerts: Alert[];
}

export interface CheckupOptions {
  bus?: Bus | null;
  stream?: string;
  thresholds: AlertThresholds;
  /** Write alerts that started or ended to system_logs (default true). */
  record?: boolean;
  /** Report `db`'s pool as the service's (default true: false where `db` is a command's own connection). */
  ownPool?: boolean;
}

/**
 * One look at the database: the report, its alerts, and (by default) their starts and ends
 * written to system_logs. `tradestore health`, GET /v1/admin/database and the service's monitor
 * all make it the same way.
 */
export async function checkup(db: Database, options: CheckupOptions): Promise<Checkup> {
  const report = await databaseReport(db, {
    bus: options.bus,
    stream: options.stream,
    pool: options.ownPool === false ? null : (db.poolUsage?.() ?? null),
    longRunningMs: options.thresholds.slowQueryMs,
  });
  const alerts = evaluateAlerts(report, options.thresholds);
  if (options.record !== false) await recordAlerts(db, alerts);
  return { report, alerts };
}

/**
 * The latest checkup as Prometheus gauges (alerts as tradestore_alert_active{alert}, which
 * Alertmanager routes), read from `latest` when scraped.
 */
export function checkupMetrics(registry: Registry, latest: () => Checkup | null): void {
  const gauge = (name: string, help: string, labelNames: string[], set: (g: Gauge, c: Checkup) => void) =>
    new Gauge({
      name,
      help,
      labelNames,
      registers: [registry],
      collect() {
        const c = latest();
        if (c) set(this, c);
      },
    });
  gauge('tradestore_alert_active', 'Alerts firing (1) or not (0), by name; thresholds in TRADESTORE_ALERT_*', ['alert'], (g, c) => {
    for (const name of ALERT_NAMES) g.set({ alert: name }, c.alerts.some((a) => a.name === name) ? 1 : 0);
  });
  gauge('tradestore_database_size_bytes', 'Size of the database', [], (g, c) => g.set(c.report.database.sizeBytes));
  gauge('tradestore_database_connections', 'Client connections to the server, by state', ['state'], (g, c) => {
    const k = c.report.connections;
    g.set({ state: 'active' }, k.active);
    g.set({ state: 'idle' }, k.idle);
    g.set({ state: 'idle_in_transaction' }, k.idleInTransaction);
    g.set({ state: 'total' }, k.total);
    g.set({ state: 'max' }, k.max);
  });
  gauge('tradestore_database_pool_connections', "The service's connection pool: in use, idle, waiting clients, maximum", ['state'], (g, c) => {
    const p = c.report.connections.pool;
    if (!p) return;
    g.set({ state: 'in_use' }, p.size - p.idle);
    g.set({ state: 'idle' }, p.idle);
    g.set({ state: 'waiting' }, p.waiting);
    g.set({ state: 'max' }, p.max);
  });
  gauge('tradestore_database_long_running_queries', 'Queries running, or transactions open, longer than the slow-query threshold', [], (g, c) => g.set(c.report.longRunning.length));
  gauge('tradestore_database_lock_waits', 'Sessions waiting for a lock', [], (g, c) => g.set(c.report.lockWaits.length));
  gauge('tradestore_database_replication_lag_seconds', 'Replay lag of the furthest replica behind', [], (g, c) => g.set(Math.max(0, ...c.report.replication.map((r) => r.replayLagSeconds ?? 0))));
  gauge('tradestore_disk_used_percent', "Used space of the data's filesystem, where it can be read", [], (g, c) => {
    if (c.report.disk) g.set(c.report.disk.usedPercent);
  });
  gauge('tradestore_table_size_bytes', 'Size of each table (a hypertable with its chunks)', ['table'], (g, c) => {
    for (const t of c.report.tables) g.set({ table: t.name }, t.totalBytes);
  });
}

/** Seed 001's metrics:{component}:{metric_name} keys: the latest value of each, for tools that read Redis. */
export function checkupKeys(c: Checkup): Record<string, number> {
  const r = c.report;
  const keys: Record<string, number> = {
    'metrics:database:size_bytes': r.database.sizeBytes,
    'metrics:database:connections_total': r.connections.total,
    'metrics:database:connections_active': r.connections.active,
    'metrics:database:long_running_queries': r.longRunning.length,
    'metrics:database:lock_waits': r.lockWaits.length,
    'metrics:alerts:active': c.alerts.length,
  };
  if (r.connections.pool) keys['metrics:database:pool_in_use'] = r.connections.pool.size - r.connections.pool.idle;
  if (r.disk) keys['metrics:database:disk_used_percent'] = r.disk.usedPercent;
  if (r.ingest) {
    keys['metrics:ingest:lag'] = r.ingest.lag;
    keys['metrics:ingest:dead_letters'] = r.ingest.deadLetters;
  }
  for (const name of ALERT_NAMES) keys[`metrics:alerts:${name}`] = c.alerts.some((a) => a.name === name) ? 1 : 0;
  return keys;
}
