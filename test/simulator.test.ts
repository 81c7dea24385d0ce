import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import Big from 'big.js';
import { MemoryBus } from '../src/bus/memory.ts';
import { migrate } from '../src/schema/migrator.ts';
import { EngineSimulator } from '../src/simulator/engine.ts';
import { ensureSimulatorUsers } from '../src/simulator/run.ts';
import { freshDatabase, type Fresh } from './helpers/backends.ts';
import { ingest } from './helpers/ingest.ts';
import { differencesFromSimulator } from './helpers/service.ts';

const parse = (messages: string[]) => messages.map((m) => JSON.parse(m) as { type: string; data: Record<string, string> });

describe('the simulator behaves like an engine', () => {
  it('stamps events with the real clock', () => {
    const before = Date.now();
    const sim = new EngineSimulator({ seed: 1 });
    sim.deposits();
    const events = parse(sim.batch(2000));
    const after = Date.now();
    const times = events.filter((e) => e.type === 'TRADE_ADDED').map((e) => Number(e.data.timestamp));
    assert.ok(times.length > 100);
    for (const t of times) assert.ok(t >= before && t <= after, `trade stamped ${new Date(t).toISOString()}, not between ${before} and ${after}`);
  });

  it('never crosses its book: every resting buy is below every resting sell of its market', () => {
    const sim = new EngineSimulator({ seed: 2 });
    sim.deposits();
    const open = new Map<string, { market: string; side: string; price: Big; remaining: Big }>();
    for (let i = 0; i < 5000; i++) {
      for (const e of parse(sim.step())) {
        if (e.type !== 'ORDER_UPDATE') continue;
        const d = e.data;
        if (d.market && !open.has(d.orderId!)) open.set(d.orderId!, { market: d.market, side: d.side!, price: new Big(d.price!), remaining: new Big(d.quantity!) });
        const o = open.get(d.orderId!)!;
        if (d.executedQty) o.remaining = o.remaining.minus(d.executedQty);
        if (d.status === 'cancelled' || o.remaining.lte(0)) open.delete(d.orderId!);
      }
      for (const market of sim.markets) {
        const book = [...open.values()].filter((o) => o.market === market.symbol);
        const bids = book.filter((o) => o.side === 'buy').map((o) => o.price);
        const asks = book.filter((o) => o.side === 'sell').map((o) => o.price);
        if (bids.length && asks.length) {
          const bestBid = bids.reduce((a, b) => (b.gt(a) ? b : a));
          const bestAsk = asks.reduce((a, b) => (b.lt(a) ? b : a));
          assert.ok(bestBid.lt(bestAsk), `step ${i}: ${market.symbol} crossed, best bid ${bestBid} >= best ask ${bestAsk}`);
        }
      }
    }
  });

  it('gives every order to one of its users, and never reuses an id after a restart', () => {
    const first = new EngineSimulator({ seed: 3, runId: 'a' });
    const again = new EngineSimulator({ seed: 3, runId: 'b' });
    const ids = (sim: EngineSimulator) => {
      sim.deposits();
      const events = parse(sim.batch(3000));
      for (const e of events.filter((x) => x.type === 'ORDER_UPDATE' && x.data.market)) assert.ok(sim.users.includes(e.data.userId!), `order ${e.data.orderId} has a user`);
      return new Set(events.flatMap((e) => (e.type === 'TRADE_ADDED' ? [e.data.id!] : e.type === 'ORDER_UPDATE' ? [e.data.orderId!] : [])));
    };
    const a = ids(first);
    const b = ids(again);
    assert.deepEqual([...a].filter((id) => b.has(id)), []);
    const byDefault = new EngineSimulator({ seed: 4 });
    byDefault.deposits();
    const orderId = JSON.parse(byDefault.batch(50).find((m) => m.includes('ORDER_UPDATE'))!).data.orderId as string;
    assert.match(orderId, /^sim-[0-9a-z]+-o1$/, 'ids carry the run by default');
  });
});

describe('a restarted simulator feeds the same database without a single dead letter [embedded]', () => {
  let fresh: Fresh & { dispose: () => Promise<void> };
  before(async () => {
    fresh = await freshDatabase('embedded');
    await migrate(fresh.db);
  });
  after(async () => fresh?.dispose());

  it('two runs, one after the other: every event applied, the account API of a simulated user is not empty', async () => {
    const bus = new MemoryBus();
    for (const runId of ['run1', 'run2']) {
      const sim = new EngineSimulator({ seed: 9, runId });
      await ensureSimulatorUsers(fresh.db, sim);
      const worker = await ingest(fresh.db, bus, [...sim.deposits(), ...sim.batch(1500)], `sim-${runId}`);
      assert.equal(worker.metrics.deadLettered, 0, `${runId}: ${JSON.stringify((await bus.listDead({ count: 3 })).map((d) => d.reason))}`);
      if (runId === 'run1') assert.deepEqual(await differencesFromSimulator(fresh.db, sim), []);
    }
    const { rows } = await fresh.db.query<{ n: string }>(`SELECT count(*) AS n FROM orders WHERE user_id = 'sim-u1'`);
    assert.ok(Number(rows[0]!.n) > 0, 'sim-u1 owns orders');
    await bus.close();
  });
});
