import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryBus } from '../src/bus/memory.ts';
import type { Bus } from '../src/bus/types.ts';
import { CATALOGUE, EVENT_TYPES } from '../src/ingest/events/catalogue.ts';
import { decodeEvent } from '../src/ingest/events/decode.ts';
import { APPLIERS, applyIsolating, PartialApply, ShardMoved, type BatchItem } from '../src/ingest/apply/batch.ts';
import { offsetsOf } from './helpers/apply.ts';
import { classifyFailure } from '../src/ingest/failures.ts';
import { migrate } from '../src/schema/migrator.ts';
import { seed } from '../src/schema/seed.ts';
import { eachBackend } from './helpers/backends.ts';
import { candleMismatches } from './helpers/candles.ts';
import { depositMsg, drain, ingest, tradeMsg } from './helpers/ingest.ts';
import { IngestWorker } from '../src/ingest/worker.ts';

const T = Date.UTC(2026, 0, 5, 10, 0, 0);

describe('times from the future are refused, for every event type', () => {
  const now = Date.UTC(2026, 5, 1, 12);
  // Each example with every time field it declares moved ahead of the clock.
  for (const type of EVENT_TYPES) {
    it(type, () => {
      const example = { ...(CATALOGUE[type].example as Record<string, unknown>) };
      const decoded = decodeEvent(JSON.stringify({ type, data: example }), { now: Date.now() });
      assert.equal(decoded.ok, true, `the example of ${type} decodes`);
      const times = (CATALOGUE[type].occurredAt as (d: unknown) => (Date | undefined)[])((decoded as { event: { data: unknown } }).event.data);
      // A progress report says nothing about when anything happened.
      if (type === 'BACKTEST_PROGRESS') return assert.deepEqual(times, []);
      // Fields that hold times: set each declared one (or the usual name when the example leaves it out);
      // a backtest's trades and equity points hold theirs in each item.
      const fields = ['timestamp', 'openTime', 'entryTime', 'exitTime'].filter((f) => f in example || (times.length && f === 'timestamp'));
      const field = fields.find((f) => f in example) ?? 'timestamp';
      const stamped = (at: number) => {
        if (type === 'BACKTEST_TRADES') return { ...example, trades: [{ ...(example.trades as object[])[0], exitTime: at }] };
        if (type === 'BACKTEST_EQUITY') return { ...example, points: [{ time: at, equity: '1' }] };
        return { ...example, [field]: at };
      };
      const late = decodeEvent(JSON.stringify({ type, data: stamped(now + 6 * 60_000) }), { now });
      assert.equal(late.ok, false, `${type} stamped 6 minutes ahead is refused`);
      assert.match((late as { reason: string }).reason, /ahead of the server clock .*TRADESTORE_MAX_CLOCK_SKEW_MS/);
      const near = decodeEvent(JSON.stringify({ type, data: stamped(now + 4 * 60_000) }), { now });
      assert.equal(near.ok, true, `${type} 4 minutes ahead is within the default skew`);
    });
  }
  it('a prediction is about the future: its target time may be ahead', () => {
    const example = CATALOGUE.PREDICTION.example as Record<string, unknown>;
    const r = decodeEvent(JSON.stringify({ type: 'PREDICTION', data: { ...example, timestamp: now - 1000, predictionTimestamp: now + 3_600_000 } }), { now });
    assert.equal(r.ok, true);
  });
});

eachBackend('ingest integrity', (get) => {
  let bus: Bus;
  before(async () => {
    await migrate(get().db);
    await seed(get().db);
    await get().db.query(`INSERT INTO users (id, email) VALUES ('whale', 'w@example.com')`);
    bus = new MemoryBus();
  });
  after(async () => {
    await bus.close();
  });

  it('a trade id is the trade\'s identity: a repeat changes nothing, the same id with another time or price is a conflict with both versions', async () => {
    await ingest(get().db, bus, [
      tradeMsg('TATA_INR', 'id-1', '100', '2', T),
      tradeMsg('TATA_INR', 'id-1', '100.00', '2.0', T), // the same trade, spelled differently: silent
      tradeMsg('TATA_INR', 'id-1', '100', '2', T + 60_000), // another minute
      tradeMsg('TATA_INR', 'id-1', '101', '2', T), // another price
    ], 'identity-1');
    // And in later batches, against the stored trade.
    await ingest(get().db, bus, [tradeMsg('TATA_INR', 'id-1', '100', '2', T + 3_600_000), tradeMsg('TATA_INR', 'id-1', '100', '2', T)], 'identity-2');
    const { rows } = await get().db.query<{ n: string }>(`SELECT count(*) AS n FROM trades WHERE market = 'TATA_INR' AND id = 'id-1'`);
    assert.equal(rows[0]!.n, '1');
    const candle = await get().db.query<{ volume: string; trade_count: number }>(`SELECT volume::text, trade_count FROM ohlcv_1d WHERE market = 'TATA_INR'`);
    assert.deepEqual(candle.rows.map((r) => [Number(r.volume), r.trade_count]), [[2, 1]], 'counted once in every candle');
    const dead = await bus.listDead({ count: 100 });
    assert.equal(dead.length, 3);
    assert.match(dead[0]!.reason, /^trade TATA_INR id-1 conflicts with an earlier message of the same batch with the same id: timestamp differ \(stored \{"timestamp":"2026-01-05T10:00:00.000Z"\}, received \{"timestamp":"2026-01-05T10:01:00.000Z"\}\)/);
    assert.match(dead[1]!.reason, /price differ \(stored \{"price":"100"\}, received \{"price":"101"\}\)/);
    assert.match(dead[2]!.reason, /^trade TATA_INR id-1 conflicts with the stored one with the same id: timestamp differ/);
    assert.deepEqual(await candleMismatches(get().db), []);
  });

  it('the same holds for an exchange trade id and a fill: a repeat is silent, other content is a conflict', async () => {
    const trade = (tradeId: string, price: string, ms: number) => ({ type: 'MARKET_TRADE', data: { exchange: 'NSE', symbol: 'NIFTY', tradeId, price, quantity: '75', side: 'buy', timestamp: ms } });
    const fill = (price: string, ms: number) => ({ type: 'FILL', data: { exchange: 'NSE', symbol: 'NIFTY', orderId: 'our order 1', tradeId: 'x-9', side: 'BUY', price, quantity: '75', timestamp: ms } });
    const before = (await bus.listDead({ count: 1000 })).length;
    await ingest(get().db, bus, [trade('x-9', '24000', T), trade('x-9', '24000.0', T), fill('24000', T), fill('24000', T)], 'identity-3');
    await ingest(get().db, bus, [trade('x-9', '24000', T + 1000), trade('x-9', '24001', T), fill('24000', T + 1000), fill('24000', T), { type: 'MARKET_TRADE', data: { exchange: 'NSE', symbol: 'NIFTY', price: '1', quantity: '1', timestamp: T } }], 'identity-4');
    const count = async (sql: string) => Number((await get().db.query<{ n: string }>(sql)).rows[0]!.n);
    assert.equal(await count(`SELECT count(*) AS n FROM market_trades WHERE trade_id = 'x-9'`), 1);
    assert.equal(await count(`SELECT count(*) AS n FROM trades_executed WHERE trade_id = 'x-9'`), 1);
    assert.equal(await count(`SELECT count(*) AS n FROM market_trades WHERE trade_id = ''`), 1, 'a tick without an id has no identity of its own');
    const dead = (await bus.listDead({ count: 1000 })).slice(before).map((d) => d.reason);
    assert.equal(dead.length, 3, dead.join('\n'));
    assert.match(dead[0]!, /^exchange trade NSE NIFTY x-9 conflicts with the stored one with the same id: timestamp differ/);
    assert.match(dead[1]!, /^exchange trade NSE NIFTY x-9 conflicts with the stored one with the same id: price differ \(stored \{"price":"24000"\}, received \{"price":"24001"\}\)/);
    assert.match(dead[2]!, /^fill NSE NIFTY order our order 1 trade x-9 conflicts with the stored one with the same id: timestamp differ/);
  });

  it('two owners of one shard at once (a takeover during a batch): each entry is committed by one of them; the other changes nothing', async () => {
    const { db } = get();
    const stream = `race-${Date.now()}`;
    await db.query('INSERT INTO ingest_offsets (stream, shard) VALUES ($1, 0)', [stream]);
    const decoded = decodeEvent(JSON.stringify(depositMsg('whale', 'RACE', '5')));
    assert.ok(decoded.ok);
    const item = (): BatchItem => ({ shard: 0, id: '7-0', key: 'entry:race:7-0', entry: { key: 'entry:race:7-0', event: decoded.event }, invalid: null });
    // Both believe they own shard 0 at offset 0-0, and both apply its next entry at once.
    const [a, b] = await Promise.allSettled([
      applyIsolating(db, [item()], { stream, committed: new Map([[0, '0-0']]) }),
      applyIsolating(db, [item()], { stream, committed: new Map([[0, '0-0']]) }),
    ]);
    const outcomes = [a, b].map((r) => r.status);
    assert.deepEqual(outcomes.sort(), ['fulfilled', 'rejected']);
    const refused = [a, b].find((r) => r.status === 'rejected') as PromiseRejectedResult;
    assert.ok(refused.reason instanceof ShardMoved && refused.reason.shards[0] === 0, String(refused.reason));
    assert.notEqual(classifyFailure(refused.reason), 'data', 'never a dead letter');
    // The late owner is refused before its appliers run: even one that would throw dead-letters nothing.
    const original = APPLIERS.BALANCE_UPDATE;
    APPLIERS.BALANCE_UPDATE = async () => {
      throw new TypeError('its row is in the way (test)');
    };
    try {
      await assert.rejects(applyIsolating(db, [{ ...item(), id: '8-0' }], { stream, committed: new Map([[0, '0-0']]) }), ShardMoved);
    } finally {
      APPLIERS.BALANCE_UPDATE = original;
    }
    const { rows } = await db.query<{ a: string }>(`SELECT available_balance::text AS a FROM balances WHERE user_id = 'whale' AND asset = 'RACE'`);
    assert.equal(rows[0]!.a, '5.00000000');
    assert.equal((await db.query<{ n: string }>('SELECT count(*) AS n FROM ingest_rejects WHERE stream = $1', [stream])).rows[0]!.n, '0');
  });

  it('when a split batch fails half-way on the infrastructure, what committed is reported for publication and the rest is retried', async () => {
    const { db } = get();
    const offsets = await offsetsOf(db);
    const start = Number(offsets.committed.get(0)!.split('-')[0]);
    const items = ['p-1', 'p-bad', 'p-3'].map((id, i): BatchItem => {
      const d = decodeEvent(JSON.stringify(tradeMsg('RELIANCE_INR', id, '10', '1', T + i)));
      assert.ok(d.ok);
      const key = `entry:partial:${start + i + 1}-0`;
      return { shard: 0, id: `${start + i + 1}-0`, key, entry: { key, event: d.event }, invalid: null };
    });
    const original = APPLIERS.TRADE_ADDED;
    let outage = true;
    APPLIERS.TRADE_ADDED = async (tx, list, effects) => {
      if (list.some((e) => e.event.data.id === 'p-bad')) throw new TypeError('bad content (test)');
      // A failure of the database, not of the message: a relation that is not there (42P01).
      if (list.some((e) => e.event.data.id === 'p-3') && outage) await tx.query('SELECT * FROM relation_gone_for_this_test');
      return original(tx, list, effects);
    };
    try {
      await assert.rejects(applyIsolating(db, items, offsets), (e: unknown) => {
        assert.ok(e instanceof PartialApply);
        assert.deepEqual(e.committed.effects.trades.map((t) => t.id), ['p-1']);
        assert.deepEqual(e.committed.rejected.map((r) => r.key), [items[1]!.key]);
        assert.equal(classifyFailure(e), 'infrastructure');
        return true;
      });
      assert.equal(offsets.committed.get(0), items[1]!.id, 'the committed part is behind the offset');
      await assert.rejects(applyIsolating(db, items, offsets), /at or behind its offset/);
      outage = false;
      const retry = await applyIsolating(db, items.slice(2), offsets);
      assert.deepEqual([retry.applied, retry.rejected], [[items[2]!.key], []]);
    } finally {
      APPLIERS.TRADE_ADDED = original;
    }
  });

  it('an entry that fails alone every time with an error no table names, while others go through, is dead-lettered in the end', async () => {
    const original = APPLIERS.TRADE_ADDED;
    let everything = false;
    APPLIERS.TRADE_ADDED = async (tx, list, effects) => {
      // TimescaleDB's decompression limit, raised for one message (or, later, for all of them).
      if (everything || list.some((e) => e.event.data.id === 'poison')) {
        await tx.exec(`DO $$ BEGIN RAISE EXCEPTION 'too many tuples decompressed (test)' USING ERRCODE = '53400'; END $$`);
      }
      return original(tx, list, effects);
    };
    const local = new MemoryBus();
    try {
      await local.add(JSON.stringify(tradeMsg('TATA_INR', 'q-1', '7', '1', T + 5000)));
      await local.add(JSON.stringify(tradeMsg('HDFC_INR', 'poison', '7', '1', T + 5000)));
      await local.add(JSON.stringify(tradeMsg('TATA_INR', 'q-2', '7', '1', T + 5000)));
      const lines: string[] = [];
      const worker = new IngestWorker(get().db, local, { consumer: 'strikes', blockMs: 10, log: (l) => lines.push(l) });
      // Engines go on sending on other markets meanwhile.
      for (let i = 0; i < 60 && (await local.stats()).deadLetters === 0; i++) {
        await local.add(JSON.stringify(tradeMsg('RELIANCE_INR', `flow-${i}`, '7', '1', T + 5000)));
        await worker.step();
      }
      await drain(worker, local);
      const dead = await local.listDead({ count: 10 });
      assert.deepEqual(dead.map((d) => JSON.parse(d.fields[0]!.preview).data.id), ['poison'], lines.join('\n'));
      assert.match(dead[0]!.reason, /^fails every time it is applied, alone, while other messages go through \(3 times\): too many tuples decompressed \(test\) \(SQLSTATE 53400\)/);
      const { rows } = await get().db.query<{ id: string }>(`SELECT id FROM trades WHERE id LIKE 'q-%' ORDER BY id`);
      assert.deepEqual(rows.map((r) => r.id), ['q-1', 'q-2']);
      // When every message fails the same way, it is the infrastructure: nothing is dead-lettered.
      everything = true;
      for (const id of ['r-1', 'r-2', 'r-3']) await local.add(JSON.stringify(tradeMsg('TATA_INR', id, '7', '1', T + 6000)));
      for (let i = 0; i < 12; i++) await worker.step();
      assert.equal((await local.stats()).deadLetters, 1);
      assert.equal(worker.databaseHealthy, false);
      everything = false;
      await drain(worker, local);
      assert.equal((await get().db.query(`SELECT 1 FROM trades WHERE id LIKE 'r-%'`)).rows.length, 3);
      await worker.stop();
    } finally {
      APPLIERS.TRADE_ADDED = original;
      await local.close();
    }
  });

  it('aggregates hold what their parts hold: candle volumes and balances beyond DECIMAL(20,8)', async () => {
    await ingest(get().db, bus, [
      tradeMsg('HDFC_INR', 'big-1', '0.5', '600000000000', T),
      tradeMsg('HDFC_INR', 'big-2', '0.5', '600000000000', T + 1000),
      depositMsg('whale', 'INR', '600000000000'),
      depositMsg('whale', 'INR', '600000000000'),
    ], 'aggregates');
    assert.deepEqual(await bus.listDead({ count: 100, after: (await bus.listDead({ count: 100 })).at(-1)?.id }), []);
    const candle = await get().db.query<{ volume: string }>(`SELECT volume::text FROM ohlcv_1m WHERE market = 'HDFC_INR'`);
    assert.equal(Number(candle.rows[0]!.volume), 1.2e12);
    const balance = await get().db.query<{ a: string; t: string }>(`SELECT available_balance::text AS a, total_balance::text AS t FROM balances WHERE user_id = 'whale' AND asset = 'INR'`);
    assert.deepEqual(balance.rows[0], { a: '1200000000000.00000000', t: '1200000000000.00000000' });
    assert.deepEqual(await candleMismatches(get().db), []);
  });
});

eachBackend('migration 008 on a database with rows', (get) => {
  it('backfills the identities of stored trades, exchange trades and fills, with the keys the appliers use', async () => {
    const { db } = get();
    await migrate(db, { to: 7 });
    await seed(db);
    await db.exec(`
      INSERT INTO trades (id, market, price, quantity, is_buyer_maker, executed_at) VALUES ('old 1', 'TATA_INR', 100, 1, true, '2026-01-05T10:00:00Z');
      INSERT INTO market_trades (exchange, symbol, trade_id, time, price, quantity) VALUES ('NSE', 'NIFTY', 'm 1', '2026-01-05T10:00:00Z', 1, 1);
      INSERT INTO trades_executed (exchange, symbol, order_id, trade_id, side, quantity, price, quote_quantity, executed_at)
        VALUES ('NSE', 'NIFTY', 'ordér 1', 't 1', 'buy', 1, 1, 1, '2026-01-05T10:00:00Z');`);
    await migrate(db);
    const bus = new MemoryBus();
    await ingest(db, bus, [
      tradeMsg('TATA_INR', 'old 1', '100', '1', T + 60_000),
      { type: 'MARKET_TRADE', data: { exchange: 'NSE', symbol: 'NIFTY', tradeId: 'm 1', price: '1', quantity: '1', timestamp: T + 60_000 } },
      { type: 'FILL', data: { exchange: 'NSE', symbol: 'NIFTY', orderId: 'ordér 1', tradeId: 't 1', side: 'buy', price: '1', quantity: '1', timestamp: T + 60_000 } },
    ], 'backfill');
    const reasons = (await bus.listDead({ count: 10 })).map((d) => d.reason);
    assert.equal(reasons.length, 3, reasons.join('\n'));
    for (const r of reasons) assert.match(r, /conflicts with the stored one with the same id: (isBuyerMaker, )?timestamp differ/);
    await bus.close();
  });
});
