import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryBus } from '../src/bus/memory.ts';
import type { Bus } from '../src/bus/types.ts';
import { CATALOGUE, EVENT_TYPES } from '../src/ingest/events/catalogue.ts';
import { decodeEvent } from '../src/ingest/events/decode.ts';
import { migrate } from '../src/schema/migrator.ts';
import { seed } from '../src/schema/seed.ts';
import { eachBackend } from './helpers/backends.ts';
import { candleMismatches } from './helpers/candles.ts';
import { depositMsg, ingest, tradeMsg } from './helpers/ingest.ts';

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
      // Fields that hold times: set each declared one (or the usual name when the example leaves it out).
      const fields = ['timestamp', 'openTime', 'entryTime', 'exitTime'].filter((f) => f in example || (times.length && f === 'timestamp'));
      const field = fields.find((f) => f in example) ?? 'timestamp';
      const ahead = { ...example, [field]: now + 6 * 60_000 };
      const late = decodeEvent(JSON.stringify({ type, data: ahead }), { now });
      assert.equal(late.ok, false, `${type} stamped 6 minutes ahead is refused`);
      assert.match((late as { reason: string }).reason, /ahead of the server clock .*TRADESTORE_MAX_CLOCK_SKEW_MS/);
      const near = decodeEvent(JSON.stringify({ type, data: { ...example, [field]: now + 4 * 60_000 } }), { now });
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
    const balance = await get().db.query<{ a: string; t: string }>(`SELECT available_balance::text AS a, total_balance::text AS t FROM balances WHERE user_id = 'whale'`);
    assert.deepEqual(balance.rows[0], { a: '1200000000000.00000000', t: '1200000000000.00000000' });
    assert.deepEqual(await candleMismatches(get().db), []);
  });
});
