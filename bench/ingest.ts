import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import pg from 'pg';
import { PostgresDatabase } from '../src/database/postgres.ts';
import { RedisBus } from '../src/bus/redis.ts';
import { shardKey } from '../src/bus/types.ts';
import { IngestWorker } from '../src/ingest/worker.ts';
import { migrate } from '../src/schema/migrator.ts';
import { seed } from '../src/schema/seed.ts';
import { EngineSimulator } from '../src/simulator/engine.ts';
import { ensureSimulatorUsers } from '../src/simulator/run.ts';
import { applyInBatches, decodeEntries } from './apply.ts';
import { runSeedBaseline } from './baseline.ts';

export interface IngestResults {
  copy_rows_per_s: number;
  baseline_events_per_s: number;
  trades_shard_events_per_s: number;
  trades_list_events_per_s: number;
  mix_events_per_s: number;
  apply_only_events_per_s: number;
  offered_per_s: number;
  latency_p50_ms: number;
  latency_p99_ms: number;
  processes: { workers: number; events_per_s: number }[];
  copy_rows: number;
  baseline_events: number;
  trades_events: number;
  mix_events: number;
  process_events: number;
  latency_events: number;
  batch_size: number;
  shards: number;
}

export interface BenchTarget {
  adminUrl: string;
  redisUrl: string;
  log: (line: string) => void;
}

/** A migrated, seeded database of its own (empty with `schema: false`); dropped by the returned function. */
export async function scratchDatabase(adminUrl: string, { schema = true } = {}): Promise<{ url: string; db: PostgresDatabase; drop: () => Promise<void> }> {
  const name = `tradestore_bench_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  const db = await PostgresDatabase.open({ url: url.toString(), max: 10 });
  if (schema) {
    await migrate(db);
    await seed(db);
  }
  return {
    url: url.toString(),
    db,
    drop: async () => {
      await db.close();
      const a = new pg.Client({ connectionString: adminUrl });
      await a.connect();
      await a.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await a.end();
    },
  };
}

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const rate = (n: number, ms: number) => Math.round((n / ms) * 1000);

const MARKETS = ['TATA_INR', 'RELIANCE_INR', 'HDFC_INR'];
/** The trades of the COPY reference and of the trades-only runs: the same rows. */
export function benchTrades(rows: number) {
  const start = Date.UTC(2026, 0, 1);
  return Array.from({ length: rows }, (_, i) => ({
    id: String(i), market: MARKETS[i % 3]!, price: `${100 + Math.floor((i % 1000) / 100)}.${String(i % 100).padStart(2, '0')}`, quantity: `${1 + (i % 7)}.${i % 1000}`, isBuyerMaker: i % 2 === 0,
    timestamp: start + i * 10,
  }));
}

/** 1. Raw COPY of trades into the trades table with its indexes: the ceiling. */
async function measureCopy(target: BenchTarget, rows: number): Promise<number> {
  const scratch = await scratchDatabase(target.adminUrl);
  try {
    const data = benchTrades(rows).map((t) => [t.id, t.market, t.price, t.quantity, t.isBuyerMaker, new Date(t.timestamp)]);
    const t0 = performance.now();
    await scratch.db.copyFrom('trades', ['id', 'market', 'price', 'quantity', 'is_buyer_maker', 'executed_at'], data);
    return rate(rows, performance.now() - t0);
  } finally {
    await scratch.drop();
  }
}

/** 2. Seed 000's loop: RPOP and one statement (or transaction) per event. */
async function measureBaseline(target: BenchTarget, events: number): Promise<number> {
  const scratch = await scratchDatabase(target.adminUrl);
  const redis = new Redis(target.redisUrl);
  const list = `tradestore-bench:${randomBytes(4).toString('hex')}:db_processor`;
  try {
    const sim = new EngineSimulator({ seed: 3, prefix: 'base' });
    await ensureSimulatorUsers(scratch.db, sim);
    const messages = [...sim.deposits(), ...sim.batch(events)].slice(0, events);
    // The seed's ORDER_UPDATE handling only updates existing orders; these events create theirs
    // through ORDER_UPDATE, so its UPDATEs match no row, which flatters the baseline if anything.
    for (let i = 0; i < messages.length; i += 1000) await redis.lpush(list, ...messages.slice(i, i + 1000));
    const t0 = performance.now();
    const processed = await runSeedBaseline(scratch.url, redis, list, messages.length);
    return rate(processed, performance.now() - t0);
  } finally {
    await redis.del(list);
    redis.disconnect();
    await scratch.drop();
  }
}

/**
 * Diagnostic: the same event mix, decoded beforehand and applied straight to the database in
 * batches (no Redis, no decoding on the clock). It shows how much of the end-to-end rate the
 * database work alone allows on this machine.
 */
async function measureApplyOnly(target: BenchTarget, events: number, batchSize: number): Promise<number> {
  const scratch = await scratchDatabase(target.adminUrl);
  try {
    const sim = new EngineSimulator({ seed: 5, prefix: 'apply' });
    await ensureSimulatorUsers(scratch.db, sim);
    const entries = decodeEntries([...sim.deposits(), ...sim.batch(events)], 'apply-only');
    const t0 = performance.now();
    await applyInBatches(scratch.db, entries, batchSize);
    return rate(entries.length, performance.now() - t0);
  } finally {
    await scratch.drop();
  }
}

async function drain(bus: RedisBus, timeoutMs: number, lastError: () => string | null): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const s = await bus.stats();
    if (s.lag === 0 && s.listLength === 0) return;
    if (Date.now() > deadline) throw new Error(`ingest did not drain: ${JSON.stringify({ ...s, perShard: undefined })}; ${lastError()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

interface Scratch {
  db: PostgresDatabase;
  url: string;
  bus: RedisBus;
  names: { stream: string; list: string; keyPrefix: string };
  /** The environment that points a tradestore process at this scratch database and bus. */
  env: Record<string, string>;
  dispose: () => Promise<void>;
}

/** A scratch database and a fresh set of Redis keys; everything goes in dispose(). */
async function scratch(target: BenchTarget, shards: number): Promise<Scratch> {
  const database = await scratchDatabase(target.adminUrl);
  const prefix = `tradestore-bench:${randomBytes(4).toString('hex')}`;
  const names = { stream: `${prefix}:events`, list: `${prefix}:list`, keyPrefix: `${prefix}:` };
  const bus = new RedisBus({ url: target.redisUrl, names, shards });
  await bus.init();
  return {
    db: database.db,
    url: database.url,
    bus,
    names,
    env: {
      DATABASE_URL: database.url, REDIS_URL: target.redisUrl, TRADESTORE_STREAM: names.stream, TRADESTORE_LIST: names.list,
      TRADESTORE_REDIS_PREFIX: names.keyPrefix, TRADESTORE_SHARDS: String(shards),
    },
    dispose: async () => {
      await bus.close();
      const r = new Redis(target.redisUrl);
      const keys = await r.keys(`${prefix}*`);
      if (keys.length) await r.del(...keys);
      r.disconnect();
      await database.drop();
    },
  };
}

/** Writes payloads to their shards (pipelined, as a busy engine would) or onto the seed's list. */
async function load(bus: RedisBus, payloads: string[], via: 'shard' | 'list'): Promise<void> {
  for (let i = 0; i < payloads.length; i += 1000) {
    const chunk = payloads.slice(i, i + 1000);
    await Promise.all(chunk.map((p) => (via === 'shard' ? bus.add(p) : bus.pushList(p))));
  }
}

/** A benchmark whose events were refused measured something else: it stops, with the first reason. */
async function refuseDeadLetters(bus: RedisBus): Promise<void> {
  const dead = (await bus.stats()).deadLetters;
  if (dead > 0) throw new Error(`${dead} events were dead-lettered during the benchmark, e.g. ${(await bus.listDead({ count: 1 }))[0]?.reason}`);
}

/** One in-process worker drains a backlog that is already on the bus: events per second. */
async function drainRate(s: Scratch, events: number, batchSize: number): Promise<{ rate: number; worker: IngestWorker }> {
  // The worker shares the scratch bus (its reads block on a connection of their own), which dispose() closes.
  const worker = new IngestWorker(s.db, s.bus, { consumer: 'bench', batchSize, blockMs: 50 });
  const t0 = performance.now();
  const running = worker.start();
  await drain(s.bus, 600_000, () => worker.lastError);
  const result = rate(events, performance.now() - t0);
  await refuseDeadLetters(s.bus);
  void running;
  return { rate: result, worker };
}

/** 3. Trades only, end to end: the same trades as the COPY, through Redis into trades and the candles. */
async function measureTrades(target: BenchTarget, rows: number, via: 'shard' | 'list', batchSize: number, shards: number): Promise<number> {
  const s = await scratch(target, shards);
  try {
    const payloads = benchTrades(rows).map((t) => JSON.stringify({ type: 'TRADE_ADDED', data: t }));
    await load(s.bus, payloads, via);
    const { rate: r, worker } = await drainRate(s, payloads.length, batchSize);
    await worker.stop();
    return r;
  } finally {
    await s.dispose();
  }
}

/** 4. The simulator's mix (trades, orders, balances) end to end, then the latency at half the maximum. */
async function measureMix(target: BenchTarget, events: number, latencySeconds: number, batchSize: number, shards: number) {
  const s = await scratch(target, shards);
  try {
    const sim = new EngineSimulator({ seed: 5, prefix: 'max' });
    await ensureSimulatorUsers(s.db, sim);
    const messages = [...sim.deposits(), ...sim.batch(events)];
    await load(s.bus, messages, 'shard');
    const { rate: maxRate, worker } = await drainRate(s, messages.length, batchSize);
    worker.metrics.takeLatencyPercentiles(50);
    // Latency at about half the maximum, offered steadily by an engine in a process of its own
    // (`tradestore simulate`), as a trading engine would be: not on the worker's event loop.
    const offered = Math.max(1, Math.round(maxRate / 2));
    const sent = offered * latencySeconds;
    const engine = spawn(
      process.execPath,
      ['--import', 'tsx', 'src/cli/main.ts', 'simulate', '--rate', String(offered), '--count', String(sent), '--seed', '9', '--prefix', 'lat'],
      { cwd: ROOT, env: { ...process.env, ...s.env }, stdio: ['ignore', 'ignore', 'inherit'] },
    );
    const code = await new Promise<number | null>((r) => engine.once('exit', r));
    if (code !== 0) throw new Error(`the engine (tradestore simulate) exited with ${code}`);
    await drain(s.bus, 120_000, () => worker.lastError);
    const [p50, p99] = worker.metrics.takeLatencyPercentiles(50, 99);
    await worker.stop();
    return { maxRate, events: messages.length, offered, sent, p50: p50!, p99: p99! };
  } finally {
    await s.dispose();
  }
}

/**
 * 5. Several worker processes (`tradestore start --no-api`) on one machine. They start on an empty
 * bus and settle their shares of the shards; then the backlog appears at once (each shard's
 * entries, written beforehand under another key, are renamed into place), and the clock runs
 * until every entry is committed.
 */
async function measureProcesses(target: BenchTarget, events: number, workers: number, batchSize: number, shards: number): Promise<number> {
  const s = await scratch(target, shards);
  const children: ChildProcess[] = [];
  try {
    const sim = new EngineSimulator({ seed: 13, prefix: `p${workers}` });
    await ensureSimulatorUsers(s.db, sim);
    const messages = [...sim.deposits(), ...sim.batch(events)];
    const staging = new RedisBus({ url: target.redisUrl, names: { ...s.names, stream: `${s.names.stream}:staging` }, shards });
    await load(staging, messages, 'shard');
    await staging.close();
    const env = { ...process.env, ...s.env, TRADESTORE_BATCH_SIZE: String(batchSize), PORT: '0', TRADESTORE_MAINTENANCE_TICK_MS: '0' };
    for (let i = 0; i < workers; i++) {
      const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'start', '--no-api'], { cwd: ROOT, env: { ...env, TRADESTORE_CONSUMER: `bench-${i}` }, stdio: 'ignore' });
      children.push(child);
    }
    // Settled: every worker is a member and holds its share.
    const deadline = Date.now() + 60_000;
    for (;;) {
      const stats = await s.bus.stats();
      const owners = new Set(stats.perShard.map((p) => p.owner));
      if (stats.workers.length === workers && owners.size === Math.min(workers, shards) && !owners.has(null)) break;
      if (Date.now() > deadline) throw new Error(`workers did not settle: ${JSON.stringify(stats.perShard)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const r = new Redis(target.redisUrl);
    const t0 = performance.now();
    await Promise.all(Array.from({ length: shards }, (_, i) => r.rename(shardKey(`${s.names.stream}:staging`, i), s.bus.shardStream(i)).catch(() => null)));
    r.disconnect();
    await drain(s.bus, 600_000, () => null);
    const result = rate(messages.length, performance.now() - t0);
    await refuseDeadLetters(s.bus);
    return result;
  } finally {
    for (const c of children) c.kill('SIGTERM');
    await Promise.all(children.map((c) => (c.exitCode === null ? new Promise((r) => c.once('exit', r)) : null)));
    await s.dispose();
  }
}

export interface IngestSizes {
  copyRows: number;
  baselineEvents: number;
  mixEvents: number;
  processEvents: number;
  latencySeconds: number;
}

export async function benchIngest(
  target: BenchTarget,
  sizes: IngestSizes = { copyRows: 100_000, baselineEvents: 4_000, mixEvents: 60_000, processEvents: 120_000, latencySeconds: 10 },
): Promise<IngestResults> {
  const batchSize = Number(process.env.BENCH_BATCH_SIZE ?? 2000);
  const shards = Number(process.env.BENCH_SHARDS ?? 8);
  target.log(`ingest: raw COPY of ${sizes.copyRows} trades…`);
  const copy = await measureCopy(target, sizes.copyRows);
  target.log(`ingest: the same trades end to end, written to their shards…`);
  const tradesShard = await measureTrades(target, sizes.copyRows, 'shard', batchSize, shards);
  target.log(`ingest: the same trades end to end, through the seed's list…`);
  const tradesList = await measureTrades(target, sizes.copyRows, 'list', batchSize, shards);
  target.log(`ingest: seed 000's loop over ${sizes.baselineEvents} events…`);
  const baseline = await measureBaseline(target, sizes.baselineEvents);
  target.log(`ingest: the mix end to end, ${sizes.mixEvents} events, then ${sizes.latencySeconds} s at half the maximum…`);
  const mix = await measureMix(target, sizes.mixEvents, sizes.latencySeconds, batchSize, shards);
  target.log(`ingest: the database apply alone, ${sizes.mixEvents} pre-decoded events…`);
  const applyOnly = await measureApplyOnly(target, sizes.mixEvents, batchSize);
  const processes: { workers: number; events_per_s: number }[] = [];
  for (const workers of [1, 2, 4]) {
    target.log(`ingest: ${workers} worker process${workers === 1 ? '' : 'es'}, ${sizes.processEvents} events of the mix…`);
    processes.push({ workers, events_per_s: await measureProcesses(target, sizes.processEvents, workers, batchSize, shards) });
  }
  return {
    copy_rows_per_s: copy,
    baseline_events_per_s: baseline,
    trades_shard_events_per_s: tradesShard,
    trades_list_events_per_s: tradesList,
    mix_events_per_s: mix.maxRate,
    apply_only_events_per_s: applyOnly,
    offered_per_s: mix.offered,
    latency_p50_ms: mix.p50,
    latency_p99_ms: mix.p99,
    processes,
    copy_rows: sizes.copyRows,
    baseline_events: sizes.baselineEvents,
    trades_events: sizes.copyRows,
    mix_events: mix.events,
    process_events: sizes.processEvents,
    latency_events: mix.sent,
    batch_size: batchSize,
    shards,
  };
}
