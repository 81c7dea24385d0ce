import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import pg from 'pg';
import { PostgresDatabase } from '../src/database/postgres.ts';
import { RedisBus } from '../src/bus/redis.ts';
import { IngestWorker } from '../src/ingest/worker.ts';
import { migrate } from '../src/schema/migrator.ts';
import { seed } from '../src/schema/seed.ts';
import { EngineSimulator } from '../src/simulator/engine.ts';
import { ensureSimulatorUsers, runSimulator } from '../src/simulator/run.ts';
import { applyInBatches, decodeEntries } from './apply.ts';
import { runSeedBaseline } from './baseline.ts';

export interface IngestResults {
  copy_rows_per_s: number;
  baseline_events_per_s: number;
  tradestore_events_per_s: number;
  apply_only_events_per_s: number;
  offered_per_s: number;
  latency_p50_ms: number;
  latency_p99_ms: number;
  copy_rows: number;
  baseline_events: number;
  tradestore_events: number;
  latency_events: number;
  batch_size: number;
}

export interface BenchTarget {
  adminUrl: string;
  redisUrl: string;
  log: (line: string) => void;
}

/** A migrated, seeded database of its own; dropped by the returned function. */
async function scratchDatabase(adminUrl: string): Promise<{ url: string; db: PostgresDatabase; drop: () => Promise<void> }> {
  const name = `tradestore_bench_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  const db = await PostgresDatabase.open({ url: url.toString(), max: 10 });
  await migrate(db);
  await seed(db);
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

const rate = (n: number, ms: number) => Math.round((n / ms) * 1000);

/** 1. Raw COPY of trades into the trades table with its indexes: the ceiling. */
async function measureCopy(target: BenchTarget, rows: number): Promise<number> {
  const scratch = await scratchDatabase(target.adminUrl);
  try {
    const markets = ['TATA_INR', 'RELIANCE_INR', 'HDFC_INR'];
    const start = Date.UTC(2026, 0, 1);
    const data = Array.from({ length: rows }, (_, i) => [
      String(i), markets[i % 3]!, `${100 + (i % 1000) / 100}`, `${1 + (i % 7)}.${i % 1000}`, i % 2 === 0, new Date(start + i * 10),
    ]);
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

async function drain(bus: RedisBus, worker: IngestWorker, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const s = await bus.stats();
    if (s.lag === 0 && s.listLength === 0) return;
    if (Date.now() > deadline) throw new Error(`ingest did not drain: ${JSON.stringify(s)}; ${worker.lastError}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** 3. tradestore end to end: Redis stream → committed trades, candles, orders and balances. */
async function measureTradestore(target: BenchTarget, events: number, latencySeconds: number) {
  const scratch = await scratchDatabase(target.adminUrl);
  const prefix = `tradestore-bench:${randomBytes(4).toString('hex')}`;
  const names = { stream: `${prefix}:events`, list: `${prefix}:list`, keyPrefix: `${prefix}:` };
  const producer = new RedisBus({ url: target.redisUrl, names });
  const workerBus = new RedisBus({ url: target.redisUrl, names });
  const batchSize = Number(process.env.BENCH_BATCH_SIZE ?? 2000);
  const worker = new IngestWorker(scratch.db, workerBus, { consumer: 'bench', batchSize, blockMs: 50 });
  try {
    await producer.init();
    const sim = new EngineSimulator({ seed: 5, prefix: 'max' });
    await ensureSimulatorUsers(scratch.db, sim);
    const messages = [...sim.deposits(), ...sim.batch(events)];
    for (let i = 0; i < messages.length; i += 1000) await Promise.all(messages.slice(i, i + 1000).map((m) => producer.add(m)));
    // Maximum rate: the backlog is in the stream; time from start until all of it is committed.
    const t0 = performance.now();
    const running = worker.start();
    await drain(producer, worker, 600_000);
    const maxRate = rate(messages.length, performance.now() - t0);
    const dead = (await producer.stats()).deadLetters;
    if (dead > 0) throw new Error(`${dead} events were dead-lettered during the benchmark`);
    worker.metrics.takeLatencyPercentiles(50);
    // Latency at about half the maximum, offered steadily.
    const offered = Math.max(1, Math.round(maxRate / 2));
    const steady = new EngineSimulator({ seed: 9, prefix: 'lat' });
    await ensureSimulatorUsers(scratch.db, steady);
    const sent = await runSimulator(producer, steady, { rate: offered, count: offered * latencySeconds });
    await drain(producer, worker, 120_000);
    const [p50, p99] = worker.metrics.takeLatencyPercentiles(50, 99);
    await worker.stop();
    await running;
    return { maxRate, events: messages.length, offered, sent, p50: p50!, p99: p99!, batchSize };
  } finally {
    await worker.stop();
    await producer.close();
    await workerBus.close();
    const r = new Redis(target.redisUrl);
    const keys = await r.keys(`${prefix}*`);
    if (keys.length) await r.del(...keys);
    r.disconnect();
    await scratch.drop();
  }
}

export async function benchIngest(target: BenchTarget, sizes = { copyRows: 200_000, baselineEvents: 4_000, tradestoreEvents: 60_000, latencySeconds: 10 }): Promise<IngestResults> {
  target.log(`ingest: raw COPY of ${sizes.copyRows} trades…`);
  const copy = await measureCopy(target, sizes.copyRows);
  target.log(`ingest: seed 000's loop over ${sizes.baselineEvents} events…`);
  const baseline = await measureBaseline(target, sizes.baselineEvents);
  target.log(`ingest: tradestore end to end, ${sizes.tradestoreEvents} events, then ${sizes.latencySeconds} s at half the maximum…`);
  const t = await measureTradestore(target, sizes.tradestoreEvents, sizes.latencySeconds);
  target.log(`ingest: the database apply alone, ${sizes.tradestoreEvents} pre-decoded events…`);
  const applyOnly = await measureApplyOnly(target, sizes.tradestoreEvents, t.batchSize);
  return {
    copy_rows_per_s: copy,
    baseline_events_per_s: baseline,
    tradestore_events_per_s: t.maxRate,
    apply_only_events_per_s: applyOnly,
    offered_per_s: t.offered,
    latency_p50_ms: t.p50,
    latency_p99_ms: t.p99,
    copy_rows: sizes.copyRows,
    baseline_events: sizes.baselineEvents,
    tradestore_events: t.events,
    latency_events: t.sent,
    batch_size: t.batchSize,
  };
}
