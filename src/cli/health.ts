import { parseArgs } from 'node:util';
import type { Config } from '../config.ts';
import { openBus } from '../bus/open.ts';
import type { Bus } from '../bus/types.ts';
import { openDatabase } from '../database/open.ts';
import type { Database } from '../database/types.ts';
import { checkup, type Checkup } from '../ops/checkup.ts';
import { CommandExit, intOption } from './usage.ts';

/** Exit code of `tradestore health` while an alert is active (cron, probes). */
export const ALERTS_ACTIVE = 3;

const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MB`;
const seconds = (s: number | null) => (s === null ? '—' : `${s.toFixed(1)} s`);

/**
 * tradestore health [--json] [--slow-query-ms N]: the database as an operator watches it, and
 * the alerts firing. Alerts that start or end are written to system_logs; with any alert active
 * the command exits 3 (1 when the database cannot be read, 2 for a bad argument).
 */
export async function healthCommand(config: Config, args: string[], out: (line: string) => void): Promise<void> {
  const { values } = parseArgs({ args, options: { json: { type: 'boolean' }, 'slow-query-ms': { type: 'string' } }, strict: true });
  const slowQueryMs = intOption('slow-query-ms', values['slow-query-ms']);
  const thresholds = { ...config.monitor.thresholds, ...(slowQueryMs ? { slowQueryMs } : {}) };
  let db: Database | null = null;
  // The bus is asked only where it is shared (Redis): the embedded default's lives in the service.
  const bus: Bus | null = config.redisUrl ? openBus(config) : null;
  let result: Checkup;
  try {
    db = await openDatabase(config);
    // This command's own pool is not the service's: the service's is in GET /v1/admin/database and /metrics.
    result = await checkup(db, { bus, stream: config.bus.stream, thresholds, ownPool: false });
  } finally {
    await bus?.close();
    await db?.close();
  }
  if (values.json) out(JSON.stringify(result, null, 2));
  else for (const line of describe(result, thresholds.slowQueryMs)) out(line);
  if (result.alerts.length) throw new CommandExit(ALERTS_ACTIVE, `${result.alerts.length} alert${result.alerts.length === 1 ? '' : 's'} active: ${result.alerts.map((a) => a.name).join(', ')}`);
}

function describe({ report: r, alerts }: Checkup, slowQueryMs: number): string[] {
  const lines: string[] = [];
  const disk = r.disk ? `, disk ${r.disk.usedPercent}% used (${mb(r.disk.freeBytes)} free at ${r.disk.path})` : ', disk not readable from here';
  lines.push(`database ${r.database.name} (${r.backend} ${r.serverVersion}${r.timescaledb ? `, TimescaleDB ${r.timescaledb}` : ''}): ${mb(r.database.sizeBytes)}${disk}`);
  const c = r.connections;
  const pool = c.pool ? `; pool ${c.pool.size - c.pool.idle} in use of ${c.pool.max}, ${c.pool.waiting} waiting` : '';
  lines.push(`connections: ${c.total} of ${c.max} (active ${c.active}, idle ${c.idle}, idle in transaction ${c.idleInTransaction})${pool}`);
  lines.push('tables, largest first:');
  for (const t of r.tables.slice(0, 15)) {
    const chunks = t.kind === 'hypertable' ? `  ${t.chunks} chunks, ${t.compressedChunks} compressed${t.compressionRatio ? `, ratio ${t.compressionRatio}` : ''}` : '';
    lines.push(`  ${t.name.padEnd(28)} ${t.kind.padEnd(10)} ${mb(t.totalBytes).padStart(10)}  (data ${mb(t.dataBytes)}, index ${mb(t.indexBytes)}, toast ${mb(t.toastBytes)}) ~${t.rowsEstimate} rows${chunks}`);
  }
  if (r.tables.length > 15) lines.push(`  … ${r.tables.length - 15} more (--json for all)`);
  lines.push(`long-running (over ${slowQueryMs} ms): ${r.longRunning.length ? '' : 'none'}`);
  for (const q of r.longRunning) lines.push(`  pid ${q.pid} ${q.state}, query ${seconds(q.querySeconds)}, transaction ${seconds(q.transactionSeconds)}: ${q.query}`);
  lines.push(`lock waits: ${r.lockWaits.length ? '' : 'none'}`);
  for (const w of r.lockWaits) lines.push(`  pid ${w.pid} blocked by ${w.blockedBy.join(', ')} for ${seconds(w.waitingSeconds)}: ${w.query}`);
  if (r.statements.available) {
    lines.push('slowest statements (mean):');
    for (const s of r.statements.slowest.slice(0, 5)) lines.push(`  ${s.meanMs.toFixed(1)} ms × ${s.calls}: ${s.query}`);
    lines.push('most frequent statements:');
    for (const s of r.statements.mostFrequent.slice(0, 5)) lines.push(`  ${s.calls} × ${s.meanMs.toFixed(1)} ms: ${s.query}`);
  } else lines.push(`statements: ${r.statements.hint}`);
  lines.push(`replication: ${r.replication.length ? r.replication.map((x) => `${x.name} ${x.state} lag ${seconds(x.replayLagSeconds)}`).join('; ') : 'no replicas'}`);
  const failing = r.jobs.filter((j) => j.failing);
  lines.push(`background jobs: ${r.jobs.length}, ${failing.length ? `failing: ${failing.map((j) => j.job).join(', ')}` : 'none failing'}`);
  lines.push(r.ingest ? `ingest: lag ${r.ingest.lag}, pending ${r.ingest.pending}, dead letters ${r.ingest.deadLetters}, last commit ${r.ingest.lastCommitAt ?? 'never'}` : 'ingest: not read (the bus is in the service process; set REDIS_URL)');
  lines.push(`alerts: ${alerts.length ? '' : 'none'}`);
  for (const a of alerts) lines.push(`  ALERT ${a.name}: ${a.message}`);
  return lines;
}
