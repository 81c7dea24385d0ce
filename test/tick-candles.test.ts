import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import Big from 'big.js';
import fc from 'fast-check';
import { MemoryBus } from '../src/bus/memory.ts';
import { migrate } from '../src/schema/migrator.ts';
import { seed } from '../src/schema/seed.ts';
import { loadConfig } from '../src/config.ts';
import { startService, type Service } from '../src/service/service.ts';
import { TICK_TIMEFRAMES } from '../src/ingest/apply/tickCandles.ts';
import type { Queryable } from '../src/database/types.ts';
import { eachBackend } from './helpers/backends.ts';
import { ingest } from './helpers/ingest.ts';
import { waitFor } from './helpers/service.ts';
import { serviceLog } from './helpers/exposure.ts';

interface Tick { exchange: string; symbol: string; tradeId?: string; price: string; quantity: string; isBuyerMaker?: boolean; timestamp: number }
interface Expected {
  exchange: string; symbol: string; timeframe: string; openTime: number; open: string; high: string; low: string; close: string; volume: string;
  quoteVolume: string; count: number; takerBuyVolume: string; takerBuyQuoteVolume: string; vwap: string | null; first: number; last: number;
}

const tickMsg = (t: Tick) => ({ type: 'MARKET_TRADE', data: t });
const n = (v: string | null) => (v === null ? null : new Big(v).toFixed());

/**
 * The candles the ticks make, computed here from the ticks as sent: the first tick of each
 * (exchange, symbol, trade id or '', time) is the stored one; buckets are UTC-aligned; equal
 * times are ordered by arrival; VWAP is quote volume / volume rounded half up to 8 places.
 */
function recompute(sent: Tick[]): Expected[] {
  const seen = new Set<string>();
  const stored = sent.filter((t) => {
    const key = [t.exchange, t.symbol, t.tradeId ?? '', t.timestamp].join('\u0000');
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
  // Array.prototype.sort is stable: ties keep their arrival order.
  const ordered = [...stored].sort((a, b) => a.timestamp - b.timestamp);
  const out = new Map<string, Expected>();
  for (const [timeframe, ms] of Object.entries(TICK_TIMEFRAMES)) {
    for (const t of ordered) {
      const openTime = Math.floor(t.timestamp / ms) * ms;
      const id = [t.exchange, t.symbol, timeframe, openTime].join('\u0000');
      const quote = new Big(t.price).times(t.quantity);
      const takerBuy = t.isBuyerMaker === false;
      const c = out.get(id);
      if (!c) {
        out.set(id, {
          exchange: t.exchange, symbol: t.symbol, timeframe, openTime, open: t.price, high: t.price, low: t.price, close: t.price, volume: t.quantity,
          quoteVolume: quote.toFixed(), count: 1, takerBuyVolume: takerBuy ? t.quantity : '0', takerBuyQuoteVolume: takerBuy ? quote.toFixed() : '0',
          vwap: null, first: t.timestamp, last: t.timestamp,
        });
        continue;
      }
      if (new Big(t.price).gt(c.high)) c.high = t.price;
      if (new Big(t.price).lt(c.low)) c.low = t.price;
      c.close = t.price;
      c.last = t.timestamp;
      c.volume = new Big(c.volume).plus(t.quantity).toFixed();
      c.quoteVolume = new Big(c.quoteVolume).plus(quote).toFixed();
      c.count += 1;
      if (takerBuy) {
        c.takerBuyVolume = new Big(c.takerBuyVolume).plus(t.quantity).toFixed();
        c.takerBuyQuoteVolume = new Big(c.takerBuyQuoteVolume).plus(quote).toFixed();
      }
    }
  }
  Big.DP = 40;
  for (const c of out.values()) c.vwap = new Big(c.volume).eq(0) ? null : new Big(c.quoteVolume).div(c.volume).round(8, Big.roundHalfUp).toFixed();
  Big.DP = 20;
  return [...out.values()].map((c) => ({ ...c, open: n(c.open)!, high: n(c.high)!, low: n(c.low)!, close: n(c.close)! }))
    .sort((a, b) => `${a.exchange} ${a.symbol} ${a.timeframe}`.localeCompare(`${b.exchange} ${b.symbol} ${b.timeframe}`) || a.openTime - b.openTime);
}

/** The candles built from ticks as stored, in the shape of `recompute`. */
async function storedTickCandles(db: Queryable): Promise<Expected[]> {
  const { rows } = await db.query<Record<string, string | number | Date | null>>(
    `SELECT exchange, symbol, timeframe, timestamp, open::text, high::text, low::text, close::text, volume::text, quote_volume::text, trades_count,
            taker_buy_volume::text, taker_buy_quote_volume::text, vwap::text, first_tick_at, last_tick_at
       FROM market_data WHERE data_source = 'ticks'`,
  );
  return rows.map((r) => ({
    exchange: r.exchange as string, symbol: r.symbol as string, timeframe: r.timeframe as string, openTime: (r.timestamp as Date).getTime(),
    open: n(r.open as string)!, high: n(r.high as string)!, low: n(r.low as string)!, close: n(r.close as string)!, volume: n(r.volume as string)!,
    quoteVolume: n(r.quote_volume as string)!, count: r.trades_count as number, takerBuyVolume: n(r.taker_buy_volume as string)!,
    takerBuyQuoteVolume: n(r.taker_buy_quote_volume as string)!, vwap: n(r.vwap as string | null), first: (r.first_tick_at as Date).getTime(),
    last: (r.last_tick_at as Date).getTime(),
  })).sort((a, b) => `${a.exchange} ${a.symbol} ${a.timeframe}`.localeCompare(`${b.exchange} ${b.symbol} ${b.timeframe}`) || a.openTime - b.openTime);
}

const T0 = Date.UTC(2026, 10, 20, 23, 59, 40);

/**
 * Generated ticks of two instruments over a day and a half, most of them within a minute around
 * midnight (so seconds, 5s, minutes and days all hold several, and some share their instant),
 * prices and quantities with up to 10 decimals, some without trade id or taker side, some sent
 * twice. In arrival order, which is not time order.
 */
function generatedTicks(seed: number, count: number): Tick[] {
  let id = 0;
  const ticks = fc.sample(
    fc.record({
      instrument: fc.constantFrom(['NSE', 'NIFTY'], ['binance', 'BTCUSDT']),
      offset: fc.oneof(fc.integer({ min: 0, max: 60_000 }), fc.integer({ min: 0, max: 36 * 3_600_000 }), fc.constantFrom(0, 999, 1000, 5000, 20_000)),
      withId: fc.boolean(),
      price: fc.tuple(fc.integer({ min: 1, max: 99_999 }), fc.integer({ min: 0, max: 9_999_999_999 })).map(([w, f]) => `${w}.${String(f).padStart(10, '0')}`),
      quantity: fc.oneof(fc.integer({ min: 0, max: 10_000 }).map(String), fc.integer({ min: 1, max: 99_999_999 }).map((q) => new Big(q).div(1_000_000).toFixed())),
      side: fc.constantFrom(true, false, undefined),
    }),
    { numRuns: count, seed },
  ).map((g): Tick => ({
    exchange: g.instrument[0]!, symbol: g.instrument[1]!, ...(g.withId ? { tradeId: String(++id) } : {}), price: g.price, quantity: g.quantity,
    ...(g.side === undefined ? {} : { isBuyerMaker: g.side }), timestamp: T0 + g.offset,
  }));
  // Every seventh tick is sent again later: a resend changes nothing.
  return [...ticks, ...ticks.filter((_, i) => i % 7 === 0)];
}

eachBackend('candles from exchange ticks', (get) => {
  let bus: MemoryBus;
  before(async () => {
    const { db } = get();
    await migrate(db);
    await seed(db);
    await db.query(`INSERT INTO instruments (exchange, symbol, instrument_type, base_asset, quote_asset) VALUES ('binance', 'BTCUSDT', 'SPOT', 'BTC', 'USDT')`);
    bus = new MemoryBus();
  });

  it('builds every timeframe from 1s to 1d equal to a recomputation, whatever the batches and their order', async () => {
    const { db } = get();
    const ticks = generatedTicks(7, 600);
    // Sent in batches of varying size; each batch's ticks reach candles already holding later ones.
    for (let at = 0, size = 1; at < ticks.length; at += size, size = (size * 7) % 97 + 1) await ingest(db, bus, ticks.slice(at, at + size).map(tickMsg));
    assert.deepEqual(await bus.listDead({ count: 10 }), []);
    const want = recompute(ticks);
    const got = await storedTickCandles(db);
    assert.equal(got.length, want.length);
    for (const [i, w] of want.entries()) assert.deepEqual(got[i], w, `${w.exchange}:${w.symbol} ${w.timeframe} ${new Date(w.openTime).toISOString()}`);
    assert.deepEqual([...new Set(want.map((c) => c.timeframe))].sort(), Object.keys(TICK_TIMEFRAMES).sort());
    // Open and close at the same instant: the first and the last to arrive.
    const tied = want.find((c) => c.timeframe === '1s' && c.count > 2 && c.first === c.last);
    assert.ok(tied, 'some second holds several ticks of one instant');
  });

  it('rounds VWAP half up exactly, where a rounded division would be a unit off, and leaves a producer row that says ticks without tick times alone', async () => {
    const { db } = get();
    const at = Date.UTC(2026, 10, 26, 10, 0, 0);
    const tick = (i: number, price: string, quantity: string) => tickMsg({ exchange: 'NSE', symbol: 'NIFTY', tradeId: `v${i}`, price, quantity, timestamp: at + i });
    // 60587.67 × 2.083515 + 68334.94 × 0.942539 over 3.026054 is 63000.747928724999…: 63000.74792872.
    await ingest(db, bus, [tick(1, '60587.67', '2.083515'), tick(2, '68334.94', '0.942539')]);
    const vwap = (await db.query<{ vwap: string }>(`SELECT vwap::text FROM market_data WHERE symbol = 'NIFTY' AND timeframe = '1s' AND timestamp = $1`, [new Date(at)])).rows[0]!.vwap;
    assert.equal(n(vwap), '63000.74792872');
    // Before migration 016 a producer could send dataSource "ticks": such a row has no tick times and stays as sent.
    const legacy = Date.UTC(2026, 10, 26, 11, 0, 0);
    await db.query(`INSERT INTO market_data (exchange, symbol, timeframe, timestamp, open, high, low, close, volume, trades_count, data_source)
                    VALUES ('NSE', 'NIFTY', '1m', $1, 99, 105, 98, 104, 1000, 40, 'ticks')`, [new Date(legacy)]);
    await ingest(db, bus, [tickMsg({ exchange: 'NSE', symbol: 'NIFTY', tradeId: 'v3', price: '100', quantity: '1', timestamp: legacy + 5 })]);
    const row = (await db.query<{ close: string; volume: string; trades_count: number }>(
      `SELECT close::text, volume::text, trades_count FROM market_data WHERE symbol = 'NIFTY' AND timeframe = '1m' AND timestamp = $1`, [new Date(legacy)],
    )).rows[0];
    assert.deepEqual(row, { close: '104', volume: '1000', trades_count: 40 });
  });

  it("leaves a bucket an exchange sent its own candle for as sent, and refuses a producer's candle that claims to be built from ticks", async () => {
    const { db } = get();
    const at = Date.UTC(2026, 10, 25, 10, 0, 0);
    const tick = (i: number, price: string) => tickMsg({ exchange: 'NSE', symbol: 'NIFTY', tradeId: `p${i}`, price, quantity: '2', isBuyerMaker: false, timestamp: at + i * 1000 });
    await ingest(db, bus, [tick(1, '100'), tick(2, '101')]);
    const sent = { exchange: 'NSE', symbol: 'NIFTY', timeframe: '1m', openTime: at, open: '99', high: '105', low: '98', close: '104', volume: '1000', tradesCount: 40 };
    await ingest(db, bus, [{ type: 'CANDLE', data: sent }]);
    await ingest(db, bus, [tick(3, '110'), tick(4, '90')]);
    const row = async (timeframe: string) =>
      (await db.query<{ open: string; high: string; low: string; close: string; volume: string; trades_count: number; data_source: string | null; first_tick_at: Date | null }>(
        `SELECT open::text, high::text, low::text, close::text, volume::text, trades_count, data_source, first_tick_at FROM market_data
          WHERE exchange = 'NSE' AND symbol = 'NIFTY' AND timeframe = $1 AND timestamp = $2`, [timeframe, new Date(at)],
      )).rows[0];
    assert.deepEqual(await row('1m'), { open: '99', high: '105', low: '98', close: '104', volume: '1000', trades_count: 40, data_source: null, first_tick_at: null });
    const fiveMinutes = await row('5m');
    assert.deepEqual([fiveMinutes?.open, fiveMinutes?.high, fiveMinutes?.low, fiveMinutes?.close, n(fiveMinutes!.volume), fiveMinutes?.trades_count, fiveMinutes?.data_source],
      ['100', '110', '90', '90', '8', 4, 'ticks'], 'the coarser tick candle still takes every tick');
    await ingest(db, bus, [{ type: 'CANDLE', data: { ...sent, timeframe: '5m', dataSource: 'TICKS' } }]);
    assert.deepEqual((await bus.listDead({ count: 10 })).map((d) => d.reason.replace(/^.*?: /, '')), ['data.dataSource: dataSource "ticks" is reserved for the candles tradestore builds from ticks']);
    assert.equal((await row('5m'))?.trades_count, 4);
  });
});

describe('tick candles through the service: klines of 1s and 5s', () => {
  let service: Service;
  before(async () => {
    service = await startService(loadConfig({ PORT: '0', TRADESTORE_DATA_DIR: 'memory://', TRADESTORE_MONITOR_INTERVAL_MS: '0' }), { migrate: true, log: serviceLog });
    await service.db.query(`INSERT INTO instruments (exchange, symbol, instrument_type, base_asset, quote_asset) VALUES ('binance', 'BTCUSDT', 'SPOT', 'BTC', 'USDT')`);
  });
  after(async () => service?.stop());

  const get = async (path: string) => {
    const response = await fetch(`http://127.0.0.1:${service.port}${path}`);
    return { status: response.status, body: (await response.json()) as any };
  };

  it('serves the stored 1s and 5s candles of an instrument, and 5s klines of a venue market from its trades', async () => {
    const ticks = generatedTicks(11, 300).filter((t) => t.timestamp < T0 + 60_000);
    for (const t of ticks) await service.bus.add(JSON.stringify(tickMsg(t)));
    const trades = ticks.slice(0, 80).map((t, i) => ({ market: 'TATA_INR', id: `k${i}`, price: new Big(t.price).round(2).toFixed(), quantity: '1.5', isBuyerMaker: i % 3 === 0, timestamp: t.timestamp }));
    for (const t of trades) await service.bus.add(JSON.stringify({ type: 'TRADE_ADDED', data: t }));
    const want = recompute(ticks);
    await waitFor('the ticks stored', async () => (await service.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM trades`)).rows[0]!.n === trades.length, 30_000);
    await waitFor('the tick candles stored', async () => (await storedTickCandles(service.db)).length === want.length, 30_000);
    for (const [exchange, symbol] of [['NSE', 'NIFTY'], ['binance', 'BTCUSDT']] as const) {
      for (const interval of ['1s', '5s'] as const) {
        const expected = want.filter((c) => c.exchange === exchange && c.symbol === symbol && c.timeframe === interval);
        const native = await get(`/v1/markets/${symbol}/klines?exchange=${exchange}&interval=${interval}&startTime=${T0}&limit=1000`);
        assert.equal(native.status, 200, JSON.stringify(native.body));
        assert.deepEqual(
          native.body.klines.map((k: any) => [k.openTime, n(k.open), n(k.high), n(k.low), n(k.close), n(k.volume), k.tradeCount, n(k.takerBuyVolume)]),
          expected.map((c) => [c.openTime, c.open, c.high, c.low, c.close, c.volume, c.count, c.takerBuyVolume]),
          `${exchange}:${symbol} ${interval}`,
        );
        const binance = await get(`/api/v3/klines?symbol=${symbol}&exchange=${exchange}&interval=${interval}&startTime=${T0}&limit=1000`);
        assert.deepEqual(binance.body.map((k: any[]) => [k[0], k[8]]), expected.map((c) => [c.openTime, c.count]));
      }
    }
    // A read is cached; the next ticks' candles make every interval of the instrument stale at once.
    const minute = async (interval: string) =>
      (await get(`/v1/markets/NIFTY/klines?exchange=NSE&interval=${interval}&startTime=${T0}&limit=1000`)).body.klines.reduce((s: number, k: any) => s + k.tradeCount, 0);
    const before = { '1s': await minute('1s'), '3m': await minute('3m'), '1h': await minute('1h') };
    await service.bus.add(JSON.stringify(tickMsg({ exchange: 'NSE', symbol: 'NIFTY', tradeId: 'late-1', price: '24000', quantity: '1', timestamp: T0 + 30_000 })));
    await waitFor('the next tick in the candles', async () => (await minute('1s')) === before['1s'] + 1, 10_000);
    assert.deepEqual({ '3m': await minute('3m'), '1h': await minute('1h') }, { '3m': before['3m'] + 1, '1h': before['1h'] + 1 }, 'derived and stored intervals re-read at once');
    // The venue keeps no second candles: its 5s klines are aggregated from its trades when asked.
    const venue = recompute(trades.map((t) => ({ exchange: 'venue', symbol: t.market, tradeId: t.id, price: t.price, quantity: t.quantity, isBuyerMaker: t.isBuyerMaker, timestamp: t.timestamp })))
      .filter((c) => c.timeframe === '5s');
    const fives = await get(`/api/v3/klines?symbol=TATA_INR&interval=5s&startTime=${T0}&limit=1000`);
    assert.equal(fives.status, 200, JSON.stringify(fives.body));
    assert.deepEqual(
      fives.body.map((k: any[]) => [k[0], n(k[1]), n(k[2]), n(k[3]), n(k[4]), n(k[5]), k[8], n(k[9])]),
      venue.map((c) => [c.openTime, c.open, c.high, c.low, c.close, c.volume, c.count, c.takerBuyVolume]),
    );
  });
});
