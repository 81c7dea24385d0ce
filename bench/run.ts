// npm run bench: measures tradestore against references on the same machine, in one run, and
// writes bench/results.json (sections are merged, so each benchmark keeps its own key).
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem, userInfo } from 'node:os';
import { Redis } from 'ioredis';
import pg from 'pg';
import { benchCandles } from './candles.ts';
import { benchHttp } from './http.ts';
import { benchIngest } from './ingest.ts';
import { benchOps } from './ops.ts';
import { benchAnalytics } from './analytics.ts';
import { benchBacktests } from './backtests.ts';
import { benchRisk } from './risk.ts';
import { benchTicks } from './ticks.ts';

const adminUrl = process.env.BENCH_DATABASE_URL || process.env.DATABASE_URL || `postgres://${userInfo().username}@127.0.0.1:5432/postgres`;
const redisUrl = process.env.BENCH_REDIS_URL || process.env.REDIS_URL || 'redis://127.0.0.1:6379';
const log = (line: string) => process.stderr.write(`${line}\n`);
const resultsFile = new URL('./results.json', import.meta.url);

async function versions() {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  const postgres = (await client.query<{ server_version: string }>('SHOW server_version')).rows[0]!.server_version;
  await client.end();
  const redis = new Redis(redisUrl);
  const info = await redis.info('server');
  redis.disconnect();
  return { postgres, redis: /redis_version:(\S+)/.exec(info)?.[1] ?? 'unknown' };
}

const results = existsSync(resultsFile) ? JSON.parse(readFileSync(resultsFile, 'utf8')) : {};
results.machine = {
  cores: cpus().length,
  cpu: cpus()[0]?.model ?? 'unknown',
  memory_gib: Math.round(totalmem() / 2 ** 30),
  node: process.version,
  ...(await versions()),
  measured_at: new Date().toISOString(),
};
const only = process.argv.slice(2);
const wanted = (section: string) => only.length === 0 || only.includes(section);
if (wanted('ingest')) {
  const ingest = await benchIngest({ adminUrl, redisUrl, log });
  const ratio = (a: number, b: number, digits: number) => Number((a / b).toFixed(digits));
  const one = ingest.processes.find((p) => p.workers === 1)!.events_per_s;
  results.ingest = {
    ...ingest,
    trades_vs_copy: ratio(ingest.trades_shard_events_per_s, ingest.copy_rows_per_s, 3),
    mix_vs_baseline: ratio(ingest.mix_events_per_s, ingest.baseline_events_per_s, 1),
    mix_vs_copy: ratio(ingest.mix_events_per_s, ingest.copy_rows_per_s, 3),
    processes_2_vs_1: ratio(ingest.processes.find((p) => p.workers === 2)!.events_per_s, one, 2),
    processes_4_vs_1: ratio(ingest.processes.find((p) => p.workers === 4)!.events_per_s, one, 2),
  };
  writeFileSync(resultsFile, JSON.stringify(results, null, 2) + '\n');
  const r = results.ingest;
  const met = (ok: boolean) => (ok ? 'met' : 'NOT met');
  const perSecond = (n: number, unit = 'events/s') => `${n.toLocaleString('en')} ${unit}`;
  const rows: [string, string, string][] = [
    ['raw COPY into trades (reference)', perSecond(ingest.copy_rows_per_s, 'rows/s'), `${ingest.copy_rows} rows`],
    ['trades only, XADD to the shards', perSecond(ingest.trades_shard_events_per_s), `the same ${ingest.trades_events} trades, with candles`],
    ["trades only, through the seed's list", perSecond(ingest.trades_list_events_per_s), 'routed by the Lua script'],
    ["seed 000's loop (reference)", perSecond(ingest.baseline_events_per_s), `${ingest.baseline_events} events of the mix`],
    ['the mix, XADD to the shards', perSecond(ingest.mix_events_per_s), `${ingest.mix_events} events, batch ${ingest.batch_size}, ${ingest.shards} shards`],
    ['database apply alone (diagnostic)', perSecond(ingest.apply_only_events_per_s), 'the mix, pre-decoded, no Redis'],
    [`latency XADD → commit at ${ingest.offered_per_s}/s`, `p50 ${ingest.latency_p50_ms} ms, p99 ${ingest.latency_p99_ms} ms`, `${ingest.latency_events} events; target p99 ≤ 100: ${met(ingest.latency_p99_ms <= 100)}`],
    ...ingest.processes.map((p): [string, string, string] => [`${p.workers} worker process${p.workers === 1 ? '' : 'es'}`, perSecond(p.events_per_s), `${ingest.process_events} events of the mix`]),
    ['trades only ÷ COPY', `${r.trades_vs_copy}`, `target ≥ 0.35: ${met(r.trades_vs_copy >= 0.35)}`],
    ['mix × seed loop', `${r.mix_vs_baseline}`, `target ≥ 30: ${met(r.mix_vs_baseline >= 30)}`],
    ['mix ÷ COPY', `${r.mix_vs_copy}`, `target ≥ 0.30: ${met(r.mix_vs_copy >= 0.3)}`],
    ['2 processes ÷ 1', `${r.processes_2_vs_1}`, `target ≥ 1.3: ${met(r.processes_2_vs_1 >= 1.3)}`],
    ['4 processes ÷ 1', `${r.processes_4_vs_1}`, ''],
  ];
  const width = Math.max(...rows.map((row) => row[0].length));
  console.log(`\ningest (${results.machine.cores} cores, PostgreSQL ${results.machine.postgres}, Redis ${results.machine.redis})`);
  for (const [name, value, note] of rows) console.log(`  ${name.padEnd(width)}  ${value.padEnd(28)}  ${note}`);
}
if (wanted('candles')) {
  const candles = benchCandles();
  results.candles = candles;
  writeFileSync(resultsFile, JSON.stringify(results, null, 2) + '\n');
  console.log(`\ncandles: merging ${candles.trades.toLocaleString('en')} trades into all six intervals (one core)`);
  console.log(`  big.js, one pass per interval (the naive design)   ${String(candles.naive_ms).padStart(7)} ms`);
  console.log(`  fixed point, 1m merged once and rolled up           ${String(candles.fixed_point_ms).padStart(7)} ms   (${candles.speedup}× faster)`);
}
if (wanted('http')) {
  const http = await benchHttp({ adminUrl, redisUrl, log });
  results.http = http;
  writeFileSync(resultsFile, JSON.stringify(results, null, 2) + '\n');
  const rows: [string, number, number][] = [
    ['/health (floor)', http.health_p50_ms, http.health_p99_ms],
    ['klines 1m, limit 500', http.klines_p50_ms, http.klines_p99_ms],
    ['trades, limit 500', http.trades_p50_ms, http.trades_p99_ms],
    ['24h ticker', http.ticker_p50_ms, http.ticker_p99_ms],
    ['balances (API key)', http.balances_p50_ms, http.balances_p99_ms],
    ['klines SQL directly (floor)', http.sql_klines_p50_ms, http.sql_klines_p99_ms],
  ];
  console.log(`\nhttp (concurrency ${http.concurrency}, ${http.requests_per_endpoint} requests each; target: klines and ticker p99 ≤ 3 × /health p99)`);
  for (const [name, p50, p99] of rows) console.log(`  ${name.padEnd(28)}  p50 ${p50.toFixed(2).padStart(7)} ms   p99 ${p99.toFixed(2).padStart(7)} ms`);
  console.log(`  klines p99 ÷ health p99: ${(http.klines_p99_ms / http.health_p99_ms).toFixed(2)}, ticker p99 ÷ health p99: ${(http.ticker_p99_ms / http.health_p99_ms).toFixed(2)}`);
}
if (wanted('ops')) {
  const ops = await benchOps({ adminUrl, redisUrl, log });
  results.ops = ops;
  writeFileSync(resultsFile, JSON.stringify(results, null, 2) + '\n');
  const within = (r: number) => (r <= 1.1 ? 'within 10%: met' : 'within 10%: NOT met');
  console.log(`\nops: ${ops.rows.toLocaleString('en')} trades (archive ${ops.archive_mb} MB at compression 1, pg_dump's ${ops.pg_dump_mb} MB; export ${ops.export_mb} MB of CSV), each beside its reference in this run`);
  console.log(`  backup (pg_dump + manifest)   ${String(ops.backup_ms).padStart(7)} ms   pg_dump -Fc    ${String(ops.pg_dump_ms).padStart(7)} ms   ×${ops.backup_vs_pg_dump}  ${within(ops.backup_vs_pg_dump)}`);
  console.log(`  restore (with verification)   ${String(ops.restore_ms).padStart(7)} ms   pg_restore     ${String(ops.pg_restore_ms).padStart(7)} ms   ×${ops.restore_vs_pg_restore}  ${within(ops.restore_vs_pg_restore)}`);
  console.log(`  export trades (CSV)           ${String(ops.export_ms).padStart(7)} ms   raw COPY TO    ${String(ops.copy_to_ms).padStart(7)} ms   ×${ops.export_vs_copy}  ${within(ops.export_vs_copy)}`);
}
if (wanted('analytics')) {
  const a = await benchAnalytics({ adminUrl, redisUrl, log });
  results.analytics = a;
  writeFileSync(resultsFile, JSON.stringify(results, null, 2) + '\n');
  const target = (r: number) => (r <= 2 ? 'target ≤ 2×: met' : 'target ≤ 2×: NOT met');
  console.log(`\nanalytics: one strategy's metrics over ${a.days} days of equity (${a.snapshots.toLocaleString('en')} snapshots) and ${a.round_trips.toLocaleString('en')} round trips (median of ${a.runs} runs)`);
  console.log(`  raw SQL reading the same rows (reference)   ${String(a.raw_sql_ms).padStart(6)} ms`);
  console.log(`  metrics, equity from snapshots              ${String(a.snapshots_ms).padStart(6)} ms   ×${a.snapshots_vs_raw}  ${target(a.snapshots_vs_raw)}`);
  console.log(`  metrics, equity from round trips            ${String(a.trades_only_ms).padStart(6)} ms   ×${a.trades_only_vs_raw}  ${target(a.trades_only_vs_raw)}`);
}
if (wanted('backtests')) {
  const b = await benchBacktests({ adminUrl, redisUrl, log });
  results.backtests = b;
  writeFileSync(resultsFile, JSON.stringify(results, null, 2) + '\n');
  const met = b.store_vs_copy >= 0.5 ? 'target ≥ 0.5: met' : 'target ≥ 0.5: NOT met';
  console.log(`\nbacktests: storing ${b.trades.toLocaleString('en')} trades (parts of ${b.part_size.toLocaleString('en')}), median of ${b.runs} runs`);
  console.log(`  raw COPY of the same rows (reference)        ${String(b.copy_ms).padStart(6)} ms`);
  console.log(`  tradestore addTrades (checked, exact P&L)    ${String(b.store_ms).padStart(6)} ms   COPY's speed ×${b.store_vs_copy}  ${met}`);
  console.log(`  the summary of the stored trades             ${String(b.summary_ms).padStart(6)} ms`);
}
if (wanted('risk')) {
  const r = await benchRisk({ adminUrl, redisUrl, log });
  results.risk = r;
  writeFileSync(resultsFile, JSON.stringify(results, null, 2) + '\n');
  const met = r.limits_vs_none >= 0.9 ? 'target ≥ 0.9: met' : 'target ≥ 0.9: NOT met';
  console.log(`\nrisk: the database apply of ${r.events.toLocaleString('en')} events of the mix, median of ${r.runs} runs each`);
  console.log(`  no risk limits                 ${r.none_events_per_s.toLocaleString('en').padStart(8)} events/s`);
  console.log(`  ${String(r.limits).padStart(3)} active limits              ${r.limits_events_per_s.toLocaleString('en').padStart(8)} events/s   ×${r.limits_vs_none}  ${met}  (${r.risk_events_raised} risk events raised a run)`);
}
if (wanted('ticks')) {
  const t = await benchTicks({ adminUrl, redisUrl, log });
  results.ticks = t;
  writeFileSync(resultsFile, JSON.stringify(results, null, 2) + '\n');
  console.log(`\nticks: the database apply of ${t.ticks.toLocaleString('en')} MARKET_TRADE ticks of two instruments in batches of ${t.batch_size.toLocaleString('en')}, median of ${t.runs} runs`);
  console.log(`  raw COPY of the same rows (reference)            ${t.copy_rows_per_s.toLocaleString('en').padStart(8)} rows/s`);
  console.log(`  the applier's INSERT alone (no claims, candles)   ${t.insert_only_ticks_per_s.toLocaleString('en').padStart(8)} ticks/s`);
  console.log(`  apply: rows, trade-id claims, 8 candle timeframes ${t.apply_ticks_per_s.toLocaleString('en').padStart(8)} ticks/s   ×${t.apply_vs_insert_only} of the INSERT alone  (${t.candles_written.toLocaleString('en')} candles)`);
}
console.log(`\nwrote ${resultsFile.pathname}`);
