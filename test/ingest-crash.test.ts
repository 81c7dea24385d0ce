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
    await bus.ensureGroup();
    env = { ...fresh.env, ...t.env, TRADESTORE_BATCH_SIZE: '200', TRADESTORE_CLAIM_IDLE_MS: '1000' };
    cleanup = async () => {
      await bus.close();
      await t.cleanup();
    };
  };
  after(() => cleanup());

  const applied = async () => Number((await fresh.db.query<{ n: string }>(`SELECT count(*) AS n FROM ingest_applied`)).rows[0]!.n);

  it('kill -9 mid-stream, twice, then restart: every trade once, candles exact, balances and fills equal what was sent', async () => {
    await fresh.db.exec('TRUNCATE trades, orders, balances, balance_history, order_history, ingest_applied, ohlcv_1m, ohlcv_5m, ohlcv_15m, ohlcv_1h, ohlcv_4h, ohlcv_1d');
    await setupStream();
    const sim = new EngineSimulator({ seed: 7, prefix: 'crash', startMs: Date.now() - 3_600_000 });
    await ensureSimulatorUsers(fresh.db, sim);
    const messages = [...sim.deposits(), ...sim.batch(6000)];
    const base = await applied();
    const half = Math.floor(messages.length / 2);
    const send = async (from: number, to: number) => {
      for (let i = from; i < to; i += 500) await Promise.all(messages.slice(i, Math.min(to, i + 500)).map((m) => bus.add(m)));
    };
    await send(0, half);

    // First worker: killed with SIGKILL once about a fifth is applied.
    const first = spawnService({ ...env, TRADESTORE_CONSUMER: 'crash-a' });
    await waitFor('first progress', async () => (await applied()) - base > messages.length / 5);
    first.child.kill('SIGKILL');
    assert.equal(await first.exited, null, 'killed by a signal');
    await send(half, messages.length);

    // Second worker under another name: it must claim what crash-a left pending (XAUTOCLAIM), and is killed too.
    const second = spawnService({ ...env, TRADESTORE_CONSUMER: 'crash-b' });
    await waitFor('second progress', async () => (await applied()) - base > messages.length / 2);
    second.child.kill('SIGKILL');
    await second.exited;

    // Third worker resumes under crash-b's name (its own pending entries come back at once) and drains.
    const third = spawnService({ ...env, TRADESTORE_CONSUMER: 'crash-b' });
    await waitFor('drained', async () => {
      const s = await bus.stats();
      return s.pending === 0 && s.lag === 0;
    }, 60_000);
    third.child.kill('SIGTERM');
    assert.equal(await third.exited, 0, `SIGTERM exits 0\n${third.output()}`);
    assert.match(third.output(), /SIGTERM: finishing the batch in flight…\nstopped/);

    assert.deepEqual(await bus.listDead({ count: 10 }), [], 'nothing was dead-lettered');
    assert.deepEqual(await differencesFromSimulator(fresh.db, sim), []);
    assert.deepEqual(await candleMismatches(fresh.db), []);
  });

  it('two workers in one group keep each market\'s events in emission order', async () => {
    await fresh.db.exec('TRUNCATE trades, orders, balances, balance_history, order_history, ingest_applied, ohlcv_1m, ohlcv_5m, ohlcv_15m, ohlcv_1h, ohlcv_4h, ohlcv_1d');
    await setupStream();
    const sim = new EngineSimulator({ seed: 11, prefix: 'pair', startMs: Date.now() - 7_200_000 });
    await ensureSimulatorUsers(fresh.db, sim);
    const messages = [...sim.deposits(), ...sim.batch(5000)];
    const workers = [
      spawnService({ ...env, TRADESTORE_CONSUMER: 'pair-a', TRADESTORE_BATCH_SIZE: '50' }),
      spawnService({ ...env, TRADESTORE_CONSUMER: 'pair-b', TRADESTORE_BATCH_SIZE: '50' }),
    ];
    for (let i = 0; i < messages.length; i += 250) await Promise.all(messages.slice(i, i + 250).map((m) => bus.add(m)));
    await waitFor('drained', async () => {
      const s = await bus.stats();
      return s.pending === 0 && s.lag === 0;
    }, 60_000);
    for (const w of workers) w.child.kill('SIGTERM');
    for (const w of workers) assert.equal(await w.exited, 0, w.output());
    const recorded = await fresh.db.query<{ n: string }>(`SELECT count(*) AS n FROM ingest_applied`);
    assert.equal(Number(recorded.rows[0]!.n), messages.length, 'every event applied exactly once');
    // Within each market, insertion order (sequence_number) is the engine's trade order (t1, t2, …).
    const { rows } = await fresh.db.query<{ market: string; ids: string[] }>(
      `SELECT market, array_agg(id ORDER BY sequence_number) AS ids FROM trades GROUP BY market`,
    );
    for (const row of rows) {
      const numbers = row.ids.map((id) => Number(id.replace('pair-t', '')));
      assert.deepEqual(numbers, [...numbers].sort((a, b) => a - b), `trade order of ${row.market}`);
    }
    assert.deepEqual(await bus.listDead({ count: 10 }), []);
    assert.deepEqual(await differencesFromSimulator(fresh.db, sim), []);
    assert.deepEqual(await candleMismatches(fresh.db), []);
  });
});
