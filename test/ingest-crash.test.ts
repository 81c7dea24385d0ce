import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Bus } from '../src/bus/types.ts';
import { migrate } from '../src/schema/migrator.ts';
import { seed } from '../src/schema/seed.ts';
import { EngineSimulator } from '../src/simulator/engine.ts';
import { ensureSimulatorUsers } from '../src/simulator/run.ts';
import { freshDatabase, serverUnavailable, type Fresh } from './helpers/backends.ts';
import { redisBus, redisUnavailable, testNames } from './helpers/redis.ts';
import { candleMismatches } from './helpers/candles.ts';
import { differencesFromSimulator, killAll, spawnService, waitFor } from './helpers/service.ts';

const REQUIRE = process.env.TRADESTORE_REQUIRE_SERVERS === '1';

/** Crash and concurrency tests kill and run real worker processes against PostgreSQL and Redis. */
describe('ingest under crashes and concurrency [postgres+redis]', async () => {
  const reason = REQUIRE ? null : ((await serverUnavailable()) ?? (await redisUnavailable()));
  if (reason) {
    it('skipped', { skip: reason }, () => {});
    return;
  }
  let fresh: Fresh & { dispose: () => Promise<void> };
  let bus: Bus;
  let env: Record<string, string>;
  let cleanup = async () => {};
  before(async () => {
    fresh = await freshDatabase('postgres');
    await migrate(fresh.db);
    await seed(fresh.db);
  });
  after(async () => {
    killAll();
    await fresh.dispose();
  });

  const setupStream = async () => {
    await cleanup();
    const t = testNames();
    bus = redisBus(t.names);
    await bus.init();
    env = { ...fresh.env, ...t.env, TRADESTORE_BATCH_SIZE: '200', TRADESTORE_LEASE_MS: '1500' };
    cleanup = async () => {
      await bus.close();
      await t.cleanup();
    };
  };
  after(() => cleanup());

  const trades = async () => Number((await fresh.db.query<{ n: string }>(`SELECT count(*) AS n FROM trades`)).rows[0]!.n);
  const drained = async () => {
    const s = await bus.stats();
    return s.lag === 0 && s.listLength === 0;
  };
  const reset = () => fresh.db.exec('TRUNCATE trades, orders, balances, balance_history, order_history, ingest_applied, ingest_identities, ohlcv_1m, ohlcv_5m, ohlcv_15m, ohlcv_1h, ohlcv_4h, ohlcv_1d');

  it('kill -9 mid-stream, twice, then restart: ingestion resumes within seconds; every trade once, candles exact, balances and fills equal what was sent', async () => {
    await reset();
    await setupStream();
    const sim = new EngineSimulator({ seed: 7, prefix: 'crash', startMs: Date.now() - 3_600_000 });
    await ensureSimulatorUsers(fresh.db, sim);
    const messages = [...sim.deposits(), ...sim.batch(6000)];
    const total = sim.expected.trades;
    const half = Math.floor(messages.length / 2);
    // These engines do not pick shards: they XADD to the entry stream, which the workers route.
    const send = async (from: number, to: number) => {
      for (let i = from; i < to; i += 500) await Promise.all(messages.slice(i, Math.min(to, i + 500)).map((m) => bus.addEntry(m)));
    };
    await send(0, half);

    // First worker: killed with SIGKILL once about a fifth is applied.
    const first = spawnService({ ...env, TRADESTORE_CONSUMER: 'crash-a' });
    await waitFor('first progress', async () => (await trades()) > total / 5);
    first.child.kill('SIGKILL');
    assert.equal(await first.exited, null, 'killed by a signal');
    await send(half, messages.length);

    // Second worker under another name: it takes the shards over once crash-a's leases expire, and is killed too.
    const before = await trades();
    const started = Date.now();
    const second = spawnService({ ...env, TRADESTORE_CONSUMER: 'crash-b' });
    await waitFor('second progress', async () => (await trades()) > before);
    const resumedMs = Date.now() - started;
    process.stderr.write(`# ingestion resumed ${resumedMs} ms after the restart (process start included)\n`);
    assert.ok(resumedMs < 10_000, `resumed after ${resumedMs} ms`);
    await waitFor('second progress', async () => (await trades()) > total / 2);
    second.child.kill('SIGKILL');
    await second.exited;

    // Third worker resumes under crash-b's name (its leases are its own at once) and drains.
    const third = spawnService({ ...env, TRADESTORE_CONSUMER: 'crash-b' });
    await waitFor('drained', drained, 60_000);
    third.child.kill('SIGTERM');
    assert.equal(await third.exited, 0, `SIGTERM exits 0\n${third.output()}`);
    assert.match(third.output(), /SIGTERM: finishing the batch in flight…\nstopped/);

    assert.deepEqual(await bus.listDead({ count: 10 }), [], 'nothing was dead-lettered');
    assert.deepEqual(await differencesFromSimulator(fresh.db, sim), []);
    assert.deepEqual(await candleMismatches(fresh.db), []);
  });

  it('two workers, one killed at random several times while engines send: each market in emission order, every event once', async () => {
    await reset();
    await setupStream();
    const seed = Number(process.env.TEST_SEED ?? Date.now() % 100_000);
    let state = seed;
    const rnd = () => ((state = (state * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const sim = new EngineSimulator({ seed: 11, prefix: 'pair', startMs: Date.now() - 7_200_000 });
    await ensureSimulatorUsers(fresh.db, sim);
    const messages = [...sim.deposits(), ...sim.batch(5000)];
    const pairEnv = { ...env, TRADESTORE_BATCH_SIZE: '50' };
    let generation = 0;
    const workers = [spawnService({ ...pairEnv, TRADESTORE_CONSUMER: 'pair-a' }), spawnService({ ...pairEnv, TRADESTORE_CONSUMER: 'pair-b' })];
    const chunks = Math.ceil(messages.length / 250);
    const kills = new Set(Array.from({ length: 3 }, () => 1 + Math.floor(rnd() * (chunks - 1))));
    for (let c = 0; c < chunks; c++) {
      await Promise.all(messages.slice(c * 250, (c + 1) * 250).map((m) => bus.add(m)));
      if (!kills.has(c)) continue;
      // One of the two, at random, dies without warning; a new process under a new name replaces it.
      const victim = Math.floor(rnd() * 2);
      workers[victim]!.child.kill('SIGKILL');
      await workers[victim]!.exited;
      workers[victim] = spawnService({ ...pairEnv, TRADESTORE_CONSUMER: `pair-${++generation}` });
      await new Promise((r) => setTimeout(r, rnd() * 500));
    }
    await waitFor('drained', drained, 90_000);
    for (const w of workers) w.child.kill('SIGTERM');
    for (const w of workers) assert.equal(await w.exited, 0, w.output());
    const context = `seed ${seed} (TEST_SEED=${seed} repeats it), kills after chunks ${[...kills].join(', ')}`;
    // Within each market, insertion order (sequence_number) is the engine's trade order (t1, t2, …).
    const { rows } = await fresh.db.query<{ market: string; ids: string[] }>(
      `SELECT market, array_agg(id ORDER BY sequence_number) AS ids FROM trades GROUP BY market`,
    );
    for (const row of rows) {
      const numbers = row.ids.map((id) => Number(id.replace('pair-t', '')));
      assert.deepEqual(numbers, [...numbers].sort((a, b) => a - b), `trade order of ${row.market}; ${context}`);
    }
    assert.deepEqual(await bus.listDead({ count: 10 }), [], context);
    assert.deepEqual(await differencesFromSimulator(fresh.db, sim), [], context);
    assert.deepEqual(await candleMismatches(fresh.db), [], context);
  });
});
