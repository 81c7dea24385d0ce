import { before, after, it } from 'node:test';
import assert from 'node:assert/strict';
import Big from 'big.js';
import { MemoryBus } from '../src/bus/memory.ts';
import { migrate } from '../src/schema/migrator.ts';
import { seed } from '../src/schema/seed.ts';
import { storeOver, type Store } from '../src/store/store.ts';
import { KLINE_INTERVALS, timeZoneOffset, type KlineInterval } from '../src/store/intervals.ts';
import { InvalidArgumentError, NotFoundError } from '../src/store/errors.ts';
import type { Queryable } from '../src/database/types.ts';
import { eachBackend } from './helpers/backends.ts';
import { depositMsg, ingest, orderMsg, tradeMsg } from './helpers/ingest.ts';

const NOW = Date.UTC(2026, 10, 21, 12, 0, 30, 250); // mid-minute, so the ticker window has partial minutes at both ends
const DAY = 86_400_000;

/**
 * Klines recomputed from the raw trades with SQL, for one interval (fixed buckets from the epoch;
 * 1w from Monday; 1M by month), in the time zone `offset` ms east of UTC.
 */
async function recomputed(db: Queryable, market: string, interval: KlineInterval, offset = 0) {
  const local = `(executed_at + interval '${offset} milliseconds')`;
  const bucket =
    (interval === '1M'
      ? `date_trunc('month', ${local} AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'`
      : interval === '1w'
        ? `date_bin('7 days', ${local}, TIMESTAMPTZ '1970-01-05 00:00:00+00')`
        : `date_bin('${KLINE_INTERVALS[interval].ms} milliseconds', ${local}, TIMESTAMPTZ '1970-01-01 00:00:00+00')`) + ` - interval '${offset} milliseconds'`;
  const { rows } = await db.query<{ t: Date; o: string; h: string; l: string; c: string; v: string; q: string; n: number; tb: string }>(
    `SELECT ${bucket} AS t, (array_agg(price ORDER BY executed_at, sequence_number))[1]::text AS o, max(price)::text AS h,
            min(price)::text AS l, (array_agg(price ORDER BY executed_at DESC, sequence_number DESC))[1]::text AS c,
            sum(quantity)::text AS v, sum(quote_quantity)::text AS q, count(*)::int AS n,
            coalesce(sum(quantity) FILTER (WHERE NOT is_buyer_maker), 0)::text AS tb
       FROM trades WHERE market = $1 GROUP BY 1 ORDER BY 1`,
    [market],
  );
  return rows.map((r) => ({ openTime: r.t.getTime(), open: r.o, high: r.h, low: r.l, close: r.c, volume: r.v, quoteVolume: r.q, tradeCount: r.n, takerBuyVolume: r.tb }));
}

const norm = (v: string) => new Big(v).toFixed();

eachBackend('store: read it back', (get) => {
  let store: Store;
  let bus: MemoryBus;
  const trades: object[] = [];

  before(async () => {
    const { db } = get();
    await migrate(db);
    await seed(db);
    await db.query(`INSERT INTO users (id, email) VALUES ('alice', 'a@example.com'), ('bob', 'b@example.com')`);
    bus = new MemoryBus();
    store = storeOver(db, bus);
    // Trades over the last ~40 days of TATA_INR, denser around the edges of the 24h window.
    let x = 11;
    const rnd = () => (x = (x * 1103515245 + 12345) % 2147483648) / 2147483648;
    const times: number[] = [];
    for (let i = 0; i < 300; i++) times.push(NOW - Math.floor(rnd() * 40 * DAY));
    for (const edge of [NOW - DAY, NOW]) for (const d of [-1, 0, 1, -700, 700, -30_000, 30_000]) times.push(edge + d);
    times.push(NOW - DAY - 61_000, NOW - 5);
    // Trades on whole seconds and a burst inside one second (second klines' edges).
    const second = Math.floor((NOW - 10 * DAY) / 1000) * 1000;
    for (const d of [0, 1000, 1999, 2000, 2001, 2002, 4000, 5000]) times.push(second + d);
    times.forEach((t, i) => {
      const price = (100 + Math.floor(rnd() * 5000) / 100).toFixed(2);
      const qty = (0.001 + Math.floor(rnd() * 3000) / 1000).toFixed(3);
      trades.push(tradeMsg('TATA_INR', `t${i}`, price, qty, t, rnd() < 0.5));
    });
    await ingest(db, bus, [
      ...trades,
      depositMsg('alice', 'INR', '10000'),
      depositMsg('bob', 'INR', '500'),
      orderMsg('a-1', 'TATA_INR', 'buy', '120.5', '2', 'alice'),
      orderMsg('a-2', 'TATA_INR', 'buy', '120.5', '1', 'alice'),
      orderMsg('a-3', 'TATA_INR', 'sell', '150', '4', 'alice'),
      orderMsg('b-1', 'TATA_INR', 'buy', '119', '3', 'bob'),
      { type: 'ORDER_UPDATE', data: { orderId: 'a-2', executedQty: '0.4' } },
      { type: 'ORDER_UPDATE', data: { orderId: 'a-3', status: 'cancelled' } },
    ]);
    await db.query(`INSERT INTO strategies (id, user_id, name, is_active) VALUES ('s-a', 'alice', 'alpha', true), ('s-b', 'bob', 'beta', true)`);
    const rt = (id: string, strategyId: string, entry: number, pnlExit: string) => [
      { type: 'STRATEGY_TRADE_OPENED', data: { id, strategyId, symbol: 'TATA_INR', side: 'buy', entryPrice: '100', quantity: '2', entryTime: entry } },
      { type: 'STRATEGY_TRADE_CLOSED', data: { id, exitPrice: pnlExit, exitTime: entry + 600_000 } },
    ];
    await ingest(db, bus, [
      ...rt('rt-1', 's-a', NOW - 3 * DAY, '110'),
      ...rt('rt-2', 's-a', NOW - 2 * DAY, '95'),
      ...rt('rt-3', 's-a', NOW - DAY, '120'),
      ...rt('rt-4', 's-b', NOW - DAY, '130'),
      { type: 'STRATEGY_TRADE_OPENED', data: { id: 'rt-5', strategyId: 's-a', symbol: 'TATA_INR', side: 'buy', entryPrice: '100', quantity: '1', entryTime: NOW - 3600_000 } },
    ], 'test-ingest-2');
  });
  after(async () => {
    await bus.close();
  });

  it('serves stored and derived klines equal to a recomputation from the trades', async () => {
    const market = await store.market.resolve('TATA_INR');
    for (const interval of Object.keys(KLINE_INTERVALS) as KlineInterval[]) {
      const want = await recomputed(get().db, 'TATA_INR', interval);
      const got = await store.market.klines(market, { interval, limit: 1000, endTime: NOW + DAY * 40 });
      const tail = want.slice(-1000);
      assert.equal(got.length, tail.length, `${interval}: count ${JSON.stringify(got.slice(0,2))}`);
      got.forEach((k, i) => {
        const w = tail[i]!;
        assert.deepEqual(
          [k.openTime, norm(k.open), norm(k.high), norm(k.low), norm(k.close), norm(k.volume), norm(k.quoteVolume), k.tradeCount, norm(k.takerBuyVolume)],
          [w.openTime, norm(w.open), norm(w.high), norm(w.low), norm(w.close), norm(w.volume), norm(w.quoteVolume), w.tradeCount, norm(w.takerBuyVolume)],
          `${interval} candle ${new Date(k.openTime).toISOString()}`,
        );
      });
    }
  });

  it('aligns klines in a time zone (Binance\'s timeZone), each equal to a recomputation, and pages them', async () => {
    const market = await store.market.resolve('TATA_INR');
    const comparable = (k: { openTime: number; open: string; high: string; low: string; close: string; volume: string; tradeCount: number }) =>
      [k.openTime, norm(k.open), norm(k.high), norm(k.low), norm(k.close), norm(k.volume), k.tradeCount];
    let x = 7;
    const rnd = () => (x = (x * 1103515245 + 12345) % 2147483648) / 2147483648;
    for (const zone of ['8', '-1:00', '+05:45', '5:30', '+14:00', '-12:00', '-03:30']) {
      const offset = timeZoneOffset(zone)!;
      for (const interval of Object.keys(KLINE_INTERVALS) as KlineInterval[]) {
        const want = (await recomputed(get().db, 'TATA_INR', interval, offset)).map(comparable);
        const got = await store.market.klines(market, { interval, limit: 1000, endTime: NOW + DAY * 40, timeZoneOffset: offset });
        assert.deepEqual(got.map(comparable), want.slice(-1000), `${interval} in ${zone}`);
        // A page: buckets that open in [startTime, endTime], the first `limit` from startTime, else the last `limit`.
        const startTime = rnd() < 0.5 ? NOW - Math.floor(rnd() * 40 * DAY) : undefined;
        const endTime = rnd() < 0.5 ? Math.max(startTime ?? 0, NOW - Math.floor(rnd() * 20 * DAY)) : undefined;
        const limit = 1 + Math.floor(rnd() * 20);
        const inRange = want.filter(([open]) => (startTime === undefined || (open as number) >= startTime) && (endTime === undefined || (open as number) <= endTime));
        const page = await store.market.klines(market, { interval, startTime, endTime, limit, timeZoneOffset: offset });
        assert.deepEqual(page.map(comparable), startTime === undefined ? inRange.slice(-limit) : inRange.slice(0, limit), `${interval} in ${zone} from ${startTime} to ${endTime}, ${limit}`);
      }
    }
    // Second klines around trades on whole seconds and a burst inside one second, from either end.
    const second = Math.floor((NOW - 10 * DAY) / 1000) * 1000;
    const seconds = (await recomputed(get().db, 'TATA_INR', '1s')).map(comparable);
    for (const [startTime, endTime, limit] of [[second, undefined, 3], [second - 1, undefined, 2], [undefined, second + 2000, 3], [second + 1, second + 4000, 5], [undefined, second + 1999, 2], [second + 3000, undefined, 2]] as const) {
      const inRange = seconds.filter(([open]) => (startTime === undefined || (open as number) >= startTime) && (endTime === undefined || (open as number) <= endTime));
      const page = await store.market.klines(market, { interval: '1s', startTime, endTime, limit });
      assert.deepEqual(page.map(comparable), startTime === undefined ? inRange.slice(-limit) : inRange.slice(0, limit), `1s from ${startTime} to ${endTime}, ${limit}`);
    }
    assert.deepEqual([timeZoneOffset('+14:01'), timeZoneOffset('-12:30'), timeZoneOffset('1:60'), timeZoneOffset('0:01'), timeZoneOffset('UTC'), timeZoneOffset(' 08:00')], [null, null, null, null, null, 8 * 3600_000]);
  });

  it('pages klines by startTime, endTime and limit the way Binance does', async () => {
    const market = await store.market.resolve('TATA_INR');
    const all = await store.market.klines(market, { interval: '1h', limit: 1000, endTime: NOW });
    const from = all[10]!.openTime;
    const page = await store.market.klines(market, { interval: '1h', startTime: from, limit: 5 });
    assert.deepEqual(page.map((k) => k.openTime), all.slice(10, 15).map((k) => k.openTime));
    const latest = await store.market.klines(market, { interval: '1h', limit: 3, endTime: NOW });
    assert.deepEqual(latest.map((k) => k.openTime), all.slice(-3).map((k) => k.openTime));
    const derived = await store.market.klines(market, { interval: '2h', startTime: from, limit: 4 });
    assert.ok(derived.length <= 4 && derived.every((k) => k.openTime >= from && k.openTime % (2 * 3600_000) === 0));
    await assert.rejects(store.market.klines(market, { interval: '1h', limit: 0 }), InvalidArgumentError);
    await assert.rejects(store.market.klines(market, { interval: '1h', startTime: NOW, endTime: NOW - 1 }), InvalidArgumentError);
  });

  it('computes the 24h ticker exactly at the edges of the window', async () => {
    const market = await store.market.resolve('TATA_INR');
    const t = await store.market.ticker(market, NOW);
    const { rows } = await get().db.query<Record<string, string>>(
      `SELECT count(*)::text AS n, sum(quantity)::text AS v, sum(quote_quantity)::text AS q, min(price)::text AS lo, max(price)::text AS hi,
              (array_agg(price ORDER BY executed_at, sequence_number))[1]::text AS o,
              (array_agg(price ORDER BY executed_at DESC, sequence_number DESC))[1]::text AS c
         FROM trades WHERE market = 'TATA_INR' AND executed_at >= $1 AND executed_at <= $2`,
      [new Date(NOW - DAY), new Date(NOW)],
    );
    const w = rows[0]!;
    assert.ok(Number(w.n) > 10);
    assert.deepEqual(
      [String(t.count), norm(t.volume), norm(t.quoteVolume), norm(t.low!), norm(t.high!), norm(t.open!), norm(t.last!)],
      [w.n, norm(w.v!), norm(w.q!), norm(w.lo!), norm(w.hi!), norm(w.o!), norm(w.c!)],
    );
    assert.equal(t.change, new Big(t.last!).minus(t.open!).toFixed());
    assert.equal(t.openTime, NOW - DAY);
  });

  it('builds depth from open orders and returns recent trades oldest first', async () => {
    const market = await store.market.resolve('TATA_INR');
    const depth = await store.market.depth(market, 10);
    assert.deepEqual(depth.bids.map(([p, q]) => [norm(p), norm(q)]), [['120.5', '2.6'], ['119', '3']]);
    assert.deepEqual(depth.asks, []);
    const recent = await store.market.trades(market, { limit: 5 });
    assert.equal(recent.length, 5);
    assert.ok(recent.every((r, i) => i === 0 || r.time >= recent[i - 1]!.time));
    await assert.rejects(store.market.resolve('NOPE'), NotFoundError);
  });

  it("shows a user only their own orders, balances and trades, by keyset pages", async () => {
    const open = await store.account.openOrders('alice');
    assert.deepEqual(open.map((o) => o.id).sort(), ['a-1', 'a-2']);
    assert.deepEqual((await store.account.openOrders('bob')).map((o) => o.id), ['b-1']);
    const order = await store.account.order('alice', 'a-2');
    assert.deepEqual(order.history.map((h) => [h.status, h.fillQuantity && norm(h.fillQuantity)]), [['open', null], ['open', '0.4']]);
    await assert.rejects(store.account.order('bob', 'a-2'), NotFoundError);
    const balances = await store.account.balances('bob');
    assert.deepEqual(balances.map((b) => [b.asset, norm(b.available)]), [['INR', '500']]);
    const history = await store.account.balanceHistory('alice');
    assert.equal(history.items.length, 1);
    const first = await store.account.orders('alice', { limit: 2 });
    assert.equal(first.items.length, 2);
    const second = await store.account.orders('alice', { limit: 2, cursor: first.nextCursor! });
    assert.deepEqual([...first.items, ...second.items].map((o) => o.id).sort(), ['a-1', 'a-2', 'a-3']);
    assert.equal(second.nextCursor, null);
    await assert.rejects(store.account.orders('alice', { cursor: "'; DROP TABLE orders; --" }), InvalidArgumentError);
  });

  it("enforces the owner with row-level security even without the query's own filter", async (t) => {
    const db = get().db;
    if (!db.capabilities.rowLevelSecurity) return t.skip('the server cannot enforce row-level security for this role');
    const seen = await store.account.asUser('bob', async (q) => (await q.query<{ id: string }>(`SELECT id FROM orders ORDER BY id`)).rows);
    assert.deepEqual(seen.map((r) => r.id), ['b-1']);
    const balances = await store.account.asUser('bob', async (q) => (await q.query<{ user_id: string }>(`SELECT user_id FROM balances`)).rows);
    assert.deepEqual([...new Set(balances.map((r) => r.user_id))], ['bob']);
  });

  it('answers trade history with filters and a total, and strategy performance over a date range', async () => {
    const all = await store.account.tradeHistory('alice', { limit: 2 });
    assert.equal(all.total, 4);
    assert.equal(all.items.length, 2);
    const rest = await store.account.tradeHistory('alice', { limit: 2, cursor: all.nextCursor! });
    assert.deepEqual([...all.items, ...rest.items].map((t) => t.id), ['rt-5', 'rt-3', 'rt-2', 'rt-1']);
    const closed = await store.account.tradeHistory('alice', { status: 'closed', from: new Date(NOW - 2.5 * DAY) });
    assert.deepEqual(closed.items.map((t) => t.id), ['rt-3', 'rt-2']);
    assert.equal((await store.account.tradeHistory('bob', { strategyId: 's-a' })).total, 0);
    const perf = await store.strategies.performance('s-a', { from: new Date(NOW - 10 * DAY), to: new Date(NOW) });
    assert.deepEqual([perf.totalTrades, perf.winningTrades, norm(perf.totalPnl!), norm(perf.bestTrade!), norm(perf.worstTrade!)], [3, 2, '50', '40', '-10']);
    assert.equal(norm(perf.avgDurationMinutes!), '10');
    assert.deepEqual((await store.strategies.active('alice')).map((s) => s.id), ['s-a']);
    await assert.rejects(store.strategies.performance('s-b', {}, 'alice'), NotFoundError);
  });

  it('serves a cached read until the ingest service commits a change, then the new value', async () => {
    const market = await store.market.resolve('TATA_INR');
    const before = await store.market.trades(market, { limit: 3 });
    await ingest(get().db, bus, [tradeMsg('TATA_INR', 'fresh-1', '999', '1', Date.now())], 'test-ingest-3');
    const afterwards = await store.market.trades(market, { limit: 3 });
    assert.notDeepEqual(afterwards, before);
    assert.equal(afterwards.at(-1)!.id, 'fresh-1');
    const balances = await store.account.balances('bob');
    await ingest(get().db, bus, [depositMsg('bob', 'INR', '1')], 'test-ingest-4');
    assert.notDeepEqual(await store.account.balances('bob'), balances);
  });

  it("answers for an exchange's instrument: candles from market_data, trades from market_trades, depth from the latest snapshot", async () => {
    const t = Date.UTC(2026, 10, 21, 9, 15);
    const candle = (i: number, o: string, c: string) => ({
      type: 'CANDLE', data: { exchange: 'NSE', symbol: 'NIFTY', timeframe: '1m', openTime: t + i * 60_000, open: o, high: '24010', low: '23990', close: c, volume: '100' },
    });
    await ingest(get().db, bus, [
      candle(0, '24000', '24001'), candle(1, '24001', '24002'), candle(2, '24002', '24003'), candle(3, '24003', '24004'),
      { type: 'MARKET_TRADE', data: { exchange: 'NSE', symbol: 'NIFTY', tradeId: 'x1', price: '24001.5', quantity: '75', side: 'buy', timestamp: NOW - 1000 } },
      { type: 'ORDER_BOOK', data: { exchange: 'NSE', symbol: 'NIFTY', timestamp: t, bids: [['23999', '10']], asks: [['24001', '5']] } },
      { type: 'ORDER_BOOK', data: { exchange: 'NSE', symbol: 'NIFTY', timestamp: t + 1000, bids: [['24000', '3'], ['23999.5', '4']], asks: [['24002', '6']] } },
    ], 'test-ingest-nse');
    const nifty = await store.market.resolve('NIFTY');
    assert.equal(nifty.exchange, 'NSE');
    const depth = await store.market.depth(nifty, 10);
    assert.deepEqual([depth.bids.map(([p, q]) => [norm(p), norm(q)]), depth.asks.map(([p, q]) => [norm(p), norm(q)])], [[['24000', '3'], ['23999.5', '4']], [['24002', '6']]]);
    // The exchange's candles (the tick NOW builds one of its own, much later).
    const oneMinute = await store.market.klines(nifty, { interval: '1m', startTime: t, endTime: t + 3_600_000, limit: 10 });
    assert.deepEqual(oneMinute.map((k) => norm(k.close)), ['24001', '24002', '24003', '24004']);
    const threeMinutes = await store.market.klines(nifty, { interval: '3m', startTime: t, endTime: t + 3_600_000, limit: 10 });
    assert.deepEqual(threeMinutes.map((k) => [k.openTime, norm(k.open), norm(k.close), norm(k.volume)]), [[t, '24000', '24003', '300'], [t + 180_000, '24003', '24004', '100']]);
    const trades = await store.market.trades(nifty, { limit: 5 });
    assert.deepEqual(trades.map((x) => [x.id, norm(x.price), x.isBuyerMaker]), [['x1', '24001.5', false]]);
    assert.equal((await store.market.ticker(nifty, NOW)).count, 1);
    // Trade ids that are not integers: distinct public ids within one millisecond, in trade-id
    // order, unchanged by later trades with higher ids or integer ids (the exchange's own).
    const ms = NOW - 500;
    const nseTrade = (tradeId: string, at: number) => ({ type: 'MARKET_TRADE', data: { exchange: 'NSE', symbol: 'NIFTY', tradeId, price: '24000', quantity: '1', side: 'sell', timestamp: at } });
    await ingest(get().db, bus, [nseTrade('b', ms), nseTrade('a', ms), nseTrade('c', ms + 1)], 'test-ingest-nse');
    const byId = async () => new Map((await store.market.trades(nifty, { startTime: NOW - 2000, endTime: NOW, limit: 10 })).map((x) => [x.id, x.publicId]));
    const first = await byId();
    assert.deepEqual([first.get('a'), first.get('b'), first.get('c')], [ms * 1000, ms * 1000 + 1, (ms + 1) * 1000]);
    await ingest(get().db, bus, [nseTrade('777', ms), nseTrade('d', ms + 1)], 'test-ingest-nse');
    const later = await byId();
    assert.deepEqual([later.get('a'), later.get('b'), later.get('c'), later.get('d'), later.get('777')], [ms * 1000, ms * 1000 + 1, (ms + 1) * 1000, (ms + 1) * 1000 + 1, 777]);
    const ticker = await store.market.ticker(nifty, NOW);
    assert.deepEqual([ticker.firstTradeId, ticker.lastTradeId], [String(later.get('x1')), String(later.get('d'))]);
    assert.deepEqual(await store.market.tradeIdRange(nifty, ms, ms + 1), { first: 777, last: (ms + 1) * 1000 + 1 }, "by time, then trade id");
    assert.equal(await store.market.tradeIdRange(nifty, NOW + 1, NOW + 2), null);
  });

  it('gives the first and last public trade id of a window (kline f and L)', async () => {
    const market = await store.market.resolve('TATA_INR');
    const { rows } = await get().db.query<{ id: string; t: Date }>(`SELECT id, executed_at AS t FROM trades WHERE market = 'TATA_INR' ORDER BY executed_at, sequence_number`);
    const trades = await store.market.trades(market, { startTime: rows[0]!.t.getTime(), limit: 1000 });
    const [k] = await store.market.klines(market, { interval: '1h', startTime: trades[5]!.time, limit: 1 });
    const inside = trades.filter((x) => x.time >= k!.openTime && x.time <= k!.closeTime);
    assert.deepEqual(await store.market.tradeIdRange(market, k!.openTime, k!.closeTime), { first: inside[0]!.publicId, last: inside.at(-1)!.publicId });
  });
});
