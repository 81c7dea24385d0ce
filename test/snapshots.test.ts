import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { apiCaller } from './helpers/api.ts';
import Big from 'big.js';
import { MemoryBus } from '../src/bus/memory.ts';
import { migrate } from '../src/schema/migrator.ts';
import { seed } from '../src/schema/seed.ts';
import { storeOver, type Store } from '../src/store/store.ts';
import { takeSnapshots } from '../src/store/portfolioSnapshots.ts';
import { writeDailyMetrics } from '../src/store/dailyMetrics.ts';
import { returnMetrics } from '../src/analytics/metrics.ts';
import { eachBackend } from './helpers/backends.ts';
import { ingest, tradeMsg } from './helpers/ingest.ts';
import { createServerDatabase, serverUnavailable } from './helpers/backends.ts';
import { redisBus, redisUnavailable, testNames } from './helpers/redis.ts';
import { killAll, spawnService, waitFor } from './helpers/service.ts';
import { runCli } from './helpers/cli.ts';
import { PostgresDatabase } from '../src/database/postgres.ts';
import { periodReturns, benchmarkMetrics } from '../src/analytics/metrics.ts';

const DAY = 86_400_000;
const HOUR = 3_600_000;

interface Snapshot {
  snapshot_time: Date;
  total_value: string;
  cash_balance: string;
  unrealized_pnl: string;
  realized_pnl: string;
  positions: { symbol: string; side: string; quantity: string; price: string; unrealizedPnl: string }[];
  open_orders_count: number;
  total_exposure: string;
  leverage: string;
  daily_pnl: string | null;
  daily_pnl_percent: string | null;
  metadata: { source?: string; kind?: string };
}

eachBackend('portfolio snapshots and daily metrics', (get) => {
  let store: Store;
  const now = new Date();
  // Late enough in the day that "a second ago" is today (a run just after midnight UTC moves it).
  const today = Math.floor((now.getTime() - 10_000) / DAY) * DAY;
  const d = (k: number) => today - k * DAY;
  let id = '';
  let producerId = '';
  const snapshots = async (where: string, params: unknown[]) =>
    (await get().db.query<Snapshot>(
      `SELECT snapshot_time, total_value::text, cash_balance::text, unrealized_pnl::text, realized_pnl::text, positions, open_orders_count,
              total_exposure::text, leverage::text, daily_pnl::text, daily_pnl_percent::text, metadata
         FROM portfolio_snapshots WHERE ${where} ORDER BY snapshot_time`,
      params,
    )).rows;

  before(async () => {
    const { db } = get();
    await migrate(db);
    await seed(db);
    const bus = new MemoryBus();
    store = storeOver(db, bus);
    await db.query(`INSERT INTO users (id, email) VALUES ('sam', 's@example.com')`);
    id = (await store.strategies.create({ name: 'snap', symbols: ['TATA_INR'], initialCapital: '10000', userId: 'sam' })).id;
    await db.query(`UPDATE strategies SET created_at = $2 WHERE id = $1`, [id, new Date(d(5))]);
    // The market's price: 100 on day -3, 105 on day -2, 95 on day -1, 110 now.
    const prices = [[d(3) + HOUR, '100'], [d(2) + HOUR, '105'], [d(1) + HOUR, '95'], [now.getTime() - 1000, '110']] as const;
    await ingest(db, bus, [
      ...prices.map(([at, price], i) => tradeMsg('TATA_INR', `p${i}`, price, '1', at)),
      // A: long 10 from 100 to 106, fees 1 (P&L 59), closed on day -2.
      { type: 'STRATEGY_TRADE_OPENED', data: { id: 'A', strategyId: id, symbol: 'TATA_INR', side: 'buy', entryPrice: '100', quantity: '10', fees: '1', entryTime: d(3) + 2 * HOUR } },
      { type: 'STRATEGY_TRADE_CLOSED', data: { id: 'A', exitPrice: '106', exitTime: d(2) + 2 * HOUR } },
      // B: long 10 at 105, fees 2, still open.
      { type: 'STRATEGY_TRADE_OPENED', data: { id: 'B', strategyId: id, symbol: 'TATA_INR', side: 'buy', entryPrice: '105', quantity: '10', fees: '2', entryTime: d(2) + 3 * HOUR } },
      // C: short 5 from 100 to 96 (P&L 20), open over day -1's end, closed a moment ago.
      { type: 'STRATEGY_TRADE_OPENED', data: { id: 'C', strategyId: id, symbol: 'TATA_INR', side: 'sell', entryPrice: '100', quantity: '5', entryTime: d(1) + 2 * HOUR } },
      { type: 'STRATEGY_TRADE_CLOSED', data: { id: 'C', exitPrice: '96', exitTime: now.getTime() - 2000 } },
    ]);
    await db.query(
      `INSERT INTO exchange_orders (user_id, strategy_id, exchange, symbol, side, order_type, quantity, price, status, created_at)
       VALUES ('sam', $1, 'NSE', 'TATA_INR', 'buy', 'limit', 1, 90, 'open', $2)`,
      [id, new Date(d(1) + 5 * HOUR)],
    );
    // A strategy whose producer sends its own snapshots, and a user with an exchange account and a position.
    producerId = (await store.strategies.create({ name: 'producer', symbols: ['TATA_INR'], initialCapital: '500', userId: 'sam' })).id;
    await db.query(`INSERT INTO portfolio_snapshots (strategy_id, snapshot_time, total_value, cash_balance) VALUES ($1, $2, 512, 512)`, [producerId, new Date(now.getTime() - HOUR)]);
    await db.query(`INSERT INTO accounts (user_id, exchange, balance) VALUES ('sam', 'NSE', 5000)`);
    await db.query(`INSERT INTO positions (user_id, exchange, symbol, side, quantity, entry_price) VALUES ('sam', 'NSE', 'TATA_INR', 'long', 2, 100)`);
  });

  it("builds each strategy's snapshot from its round trips at the latest prices, and the missing day ends from history", async () => {
    const done = await takeSnapshots(get().db, now);
    // Five day ends (days -5 to -1), and in the first hour of a UTC day the user's day end too.
    const userDayEnd = now.getTime() - Math.floor(now.getTime() / DAY) * DAY < HOUR ? 1 : 0;
    assert.deepEqual(done, { strategies: 1, users: 1, dayEnds: 5 + userDayEnd, removed: 0 });
    const rows = await snapshots('strategy_id = $1', [id]);
    assert.deepEqual(rows.map((r) => [r.snapshot_time.getTime(), r.metadata.kind]), [
      [d(4) - 1, 'day_end'], [d(3) - 1, 'day_end'], [d(2) - 1, 'day_end'], [d(1) - 1, 'day_end'], [d(0) - 1, 'day_end'], [now.getTime(), 'scheduled'],
    ]);
    // Day -5 and -4: capital only. Day -3: A open at 100 (fees 1). Day -2: A closed (+59), B open at 105 (fees 2).
    // Day -1: B at 95 (−102), C short 5 from 100 at 95 (+25). Now: C closed (+20), B at 110 (+48).
    assert.deepEqual(rows.map((r) => r.total_value), ['10000', '10000', '9999', '10057', '9982', '10127']);
    assert.deepEqual(rows.map((r) => r.realized_pnl), ['0', '0', '0', '59', '59', '79']);
    assert.deepEqual(rows.map((r) => r.unrealized_pnl), ['0', '0', '-1', '-2', '-77', '48']);
    assert.deepEqual(rows.map((r) => r.daily_pnl), [null, '0', '-1', '58', '-75', '145']);
    assert.equal(Number(rows[5]!.daily_pnl_percent), Number(new Big(145).div(9982).times(100).toFixed(8)));
    assert.deepEqual(rows.map((r) => r.open_orders_count), [0, 0, 0, 0, 1, 1], 'the order placed on day -1 is open from then on');
    const dayOne = rows[4]!;
    // Cash is what is left when the positions' signed market value is taken out: 9982 − (950 − 475).
    assert.deepEqual([dayOne.cash_balance, dayOne.total_exposure], ['9507', '1425']);
    assert.deepEqual(dayOne.positions.map((p) => [p.symbol, p.side, p.quantity, p.price, p.unrealizedPnl]), [
      ['TATA_INR', 'long', '10', '95', '-102'],
      ['TATA_INR', 'short', '5', '95', '25'],
    ]);
    const latest = rows[5]!;
    assert.deepEqual([latest.cash_balance, latest.total_exposure, latest.leverage], ['9027', '1100', new Big(1100).div(10127).toFixed(12)]);
    assert.equal(latest.metadata.source, 'tradestore');
  });

  it("leaves a strategy to its producer's own snapshots, and builds each user's from accounts and positions", async () => {
    assert.deepEqual((await snapshots('strategy_id = $1', [producerId])).map((r) => r.total_value), ['512'], 'the producer sent one in the last day');
    const users = (await snapshots('user_id = $1 AND strategy_id IS NULL', ['sam'])).filter((r) => r.metadata.kind === 'scheduled');
    assert.equal(users.length, 1);
    // Balance 5000 plus a long of 2 from 100, now at 110.
    assert.deepEqual([users[0]!.total_value, users[0]!.cash_balance, users[0]!.unrealized_pnl, users[0]!.total_exposure], ['5020', '5000', '20', '220']);
    // Done for the day ends already there: a second pass builds only the present.
    assert.deepEqual(await takeSnapshots(get().db, new Date(now.getTime() + 60_000)), { strategies: 1, users: 1, dayEnds: 0, removed: 0 });
  });

  it('reads the equity curve from the day ends, a producer snapshot of the day winning over the service', async () => {
    const curve = await store.strategies.equity(id);
    assert.equal(curve.source, 'trades_then_snapshots', 'the capital point first');
    // The capital at the close of the day before the strategy began, then each day's close.
    assert.deepEqual(curve.points.map((p) => [Date.parse(p.time), p.equity]), [
      [d(6), '10000'], [d(5), '10000'], [d(4), '10000'], [d(3), '9999'], [d(2), '10057'], [d(1), '9982'], [d(0), '10127'],
    ]);
    await get().db.query(`INSERT INTO portfolio_snapshots (strategy_id, snapshot_time, total_value, cash_balance) VALUES ($1, $2, 9990, 0)`, [id, new Date(d(1) + 6 * HOUR)]);
    assert.equal((await store.strategies.equity(id)).points[5]!.equity, '9990', "the producer's snapshot of day -1 is its close");
    await get().db.query(`DELETE FROM portfolio_snapshots WHERE strategy_id = $1 AND total_value = 9990`, [id]);
    // Round trips from before the snapshots began: capital plus realized P&L up to the first one.
    const { db } = get();
    const older = (await store.strategies.create({ name: 'history', symbols: ['TATA_INR'], initialCapital: '1000' })).id;
    await db.query(
      `INSERT INTO strategy_trades (id, strategy_id, symbol, side, entry_price, quantity, entry_time, exit_time, exit_price, pnl, status)
       VALUES ('h1', $1, 'TATA_INR', 'buy', 100, 1, $2, $3, 110, 10, 'closed')`,
      [older, new Date(d(4)), new Date(d(4) + HOUR)],
    );
    await db.query(`INSERT INTO portfolio_snapshots (strategy_id, snapshot_time, total_value, cash_balance) VALUES ($1, $2, 1015, 0)`, [older, new Date(d(2) + HOUR)]);
    const merged = await store.strategies.equity(older);
    assert.equal(merged.source, 'trades_then_snapshots');
    assert.deepEqual(merged.points.map((p) => [Date.parse(p.time), p.equity]), [[d(5), '1000'], [d(4), '1010'], [d(3), '1010'], [d(2), '1015']]);
    await db.query(`DELETE FROM strategies WHERE id = $1`, [older]);
  });

  it("moves its own snapshots with a changed capital, values spot holdings at market, keeps intra-day snapshots a week", async () => {
    const { db } = get();
    const other = (await store.strategies.create({ name: 'rebased', symbols: ['TATA_INR'], initialCapital: '1000', userId: 'sam' })).id;
    await db.query(`UPDATE strategies SET created_at = $2 WHERE id = $1`, [other, new Date(d(2))]);
    await takeSnapshots(db, now);
    const before = await snapshots('strategy_id = $1', [other]);
    assert.deepEqual(before.map((r) => r.total_value), ['1000', '1000', '1000']);
    // A producer's snapshot is not the service's to move.
    await db.query(`INSERT INTO portfolio_snapshots (strategy_id, snapshot_time, total_value, cash_balance) VALUES ($1, $2, 777, 777)`, [other, new Date(d(3))]);
    await store.strategies.update(other, { initialCapital: '2500' });
    assert.deepEqual((await snapshots('strategy_id = $1', [other])).map((r) => r.total_value), ['777', '2500', '2500', '2500'], 'no jump in the curve');
    await store.strategies.update(other, { initialCapital: null });
    assert.deepEqual((await snapshots('strategy_id = $1', [other])).map((r) => r.total_value), ['777'], 'without a capital, its own are gone');
    await db.query(`DELETE FROM strategies WHERE id = $1`, [other]);

    // A spot account's holding counts at its market value: 1000 cash and 10 shares bought at 100, now 110.
    await db.query(`INSERT INTO users (id, email) VALUES ('spot', 'spot@example.com')`);
    const { rows } = await db.query<{ id: string }>(`INSERT INTO accounts (user_id, exchange, account_type, balance) VALUES ('spot', 'NSE', 'spot', 1000) RETURNING id::text`);
    await db.query(`INSERT INTO positions (user_id, account_id, exchange, symbol, side, quantity, entry_price) VALUES ('spot', $1, 'NSE', 'TATA_INR', 'long', 10, 100)`, [rows[0]!.id]);
    await takeSnapshots(db, new Date(now.getTime() + 120_000));
    const spot = (await snapshots(`user_id = 'spot' AND strategy_id IS NULL AND metadata->>'kind' = 'scheduled'`, [])).at(-1)!;
    assert.deepEqual([spot.total_value, spot.cash_balance, spot.unrealized_pnl], ['2100', '1000', '100']);

    // The service's own intra-day snapshots go after a week; day ends and producers' stay.
    const later = new Date(now.getTime() + 8 * DAY);
    const removed = (await takeSnapshots(db, later)).removed;
    assert.ok(removed >= 3, `removed ${removed}`);
    assert.deepEqual((await snapshots(`metadata->>'kind' = 'scheduled' AND snapshot_time < $1`, [new Date(later.getTime() - 7 * DAY)])), []);
    assert.ok((await snapshots(`strategy_id = $1 AND metadata->>'kind' = 'day_end'`, [id])).length >= 5);
    await db.query(`DELETE FROM portfolio_snapshots WHERE snapshot_time > $1`, [new Date(now.getTime() + 10 * 60_000)]);
  });

  it('writes strategy_metrics and strategy_performance for each finished day, equal to the analytics to that day', async () => {
    const { db } = get();
    assert.deepEqual(await writeDailyMetrics(db, now), { days: 5, strategies: 1 });
    const { rows } = await db.query<Record<string, string | number | null>>(
      `SELECT date::text, total_trades, winning_trades, losing_trades, total_pnl::text, win_rate::text, profit_factor::text, max_drawdown::text,
              max_drawdown_duration, sharpe_ratio::text, var_95::text FROM strategy_metrics WHERE strategy_id = $1 ORDER BY date`,
      [id],
    );
    assert.deepEqual(rows.map((r) => r.date), [5, 4, 3, 2, 1].map((k) => new Date(d(k)).toISOString().slice(0, 10)));
    const last = rows.at(-1)!;
    // To day -1's end: A closed (one winner), the curve 10000 (capital, day -6), 10000, 10000, 9999, 10057, 9982.
    assert.deepEqual([last.total_trades, last.winning_trades, last.losing_trades, last.total_pnl, last.win_rate, last.profit_factor], [1, 1, 0, '59', '1.0000', null]);
    const equity = [10000, 10000, 10000, 9999, 10057, 9982];
    const want = returnMetrics(equity, equity.map((_, i) => d(6 - i)), { periodsPerYear: 365 });
    assert.equal(Number(last.sharpe_ratio), want.sharpeRatio!.value);
    assert.equal(Number(last.max_drawdown), want.maxDrawdown!.value);
    assert.equal(last.max_drawdown_duration, Math.round(want.maxDrawdownDuration!.value!));
    assert.equal(Number(last.var_95), want.var95!.value);
    const perf = await db.query<Record<string, string | number | null>>(
      `SELECT timestamp, total_return::text, daily_return::text, cumulative_return::text, win_rate::text, total_trades FROM strategy_performance WHERE strategy_id = $1 ORDER BY timestamp`,
      [id],
    );
    assert.equal(perf.rows.length, 5);
    const p = perf.rows.at(-1)!;
    assert.equal((p.timestamp as unknown as Date).getTime(), d(0) - 1);
    assert.deepEqual([p.total_return, Number(p.daily_return), Number(p.cumulative_return), Number(p.win_rate), p.total_trades], ['-18', 9982 / 10057 - 1, 9982 / 10000 - 1, 100, 1]);
    // Days written stay written; the last finished day is written again (late round trips count).
    assert.deepEqual(await writeDailyMetrics(db, now), { days: 1, strategies: 1 });
  });
});

describe('the whole path through a real service: events in, snapshots built, metrics out [postgres, Redis]', async () => {
  const reason = (await serverUnavailable()) ?? (await redisUnavailable());
  if (reason && process.env.TRADESTORE_REQUIRE_SERVERS !== '1') {
    it('skipped', { skip: reason }, () => {});
    return;
  }
  const names = testNames();
  let server: { url: string; drop: () => Promise<void> };
  let db: PostgresDatabase;
  after(async () => {
    killAll();
    await db?.close();
    await server?.drop();
    await names.cleanup();
  });

  it('applies round trips and trades sent through Redis, builds day-end and current snapshots, and serves the metrics from them', async () => {
    server = await createServerDatabase();
    db = await PostgresDatabase.open({ url: server.url, max: 3 });
    await migrate(db);
    await seed(db);
    const store = storeOver(db, new MemoryBus());
    await db.query(`INSERT INTO users (id, email) VALUES ('eve', 'e@example.com')`);
    const key = (await store.apiKeys.create('eve', ['read', 'trade'])).key;
    // Made three days ago, without a capital yet: no snapshots until it has one.
    const id = (await store.strategies.create({ name: 'e2e', symbols: ['TATA_INR'], userId: 'eve' })).id;
    await db.query(`UPDATE strategies SET created_at = $2 WHERE id = $1`, [id, new Date(Date.now() - 3 * DAY)]);
    const service = spawnService({
      DATABASE_URL: server.url, ...names.env, TRADESTORE_MAINTENANCE_TICK_MS: '300', TRADESTORE_SNAPSHOT_INTERVAL_MS: '1000', TRADESTORE_MONITOR_INTERVAL_MS: '0',
    });
    let port = '';
    await waitFor('the service to listen', async () => Boolean((port = /listening on \S+:(\d+),/.exec(service.output())?.[1] ?? '')), 60_000);
    const now = Date.now();
    const today = Math.floor((now - 10_000) / DAY) * DAY;
    const d = (k: number) => today - k * DAY;
    // Venue trades make the daily candles the benchmark is read from; round trips move the strategy.
    const bus = redisBus(names.names);
    const events = [
      ...[[d(3) + HOUR, '100'], [d(2) + HOUR, '104'], [d(1) + HOUR, '99'], [now - 1000, '108']].map(([at, price], i) => tradeMsg('TATA_INR', `e${i}`, price as string, '1', at as number)),
      { type: 'STRATEGY_TRADE_OPENED', data: { id: 'E1', strategyId: id, symbol: 'TATA_INR', side: 'buy', entryPrice: '100', quantity: '10', entryTime: d(3) + 2 * HOUR } },
      { type: 'STRATEGY_TRADE_CLOSED', data: { id: 'E1', exitPrice: '104', exitTime: d(2) + 2 * HOUR } },
      { type: 'STRATEGY_TRADE_OPENED', data: { id: 'E2', strategyId: id, symbol: 'TATA_INR', side: 'buy', entryPrice: '104', quantity: '10', entryTime: d(2) + 3 * HOUR } },
    ];
    for (const e of events) await bus.add(JSON.stringify(e));
    await bus.close();
    const api = apiCaller(() => port);
    const call = (method: string, path: string, body?: object) => api(method, path, key, body);
    await waitFor('the round trips applied', async () => (await call('GET', `/v1/strategies/${id}/trades?status=all`)).body.total === 2, 30_000);
    await waitFor('the daily candles', async () => Number((await db.query<{ n: string }>(`SELECT count(*)::text AS n FROM ohlcv_1d WHERE market = 'TATA_INR' AND open_time >= $1`, [new Date(d(3))])).rows[0]!.n) === 4, 30_000);
    assert.equal((await db.query(`SELECT 1 FROM portfolio_snapshots WHERE strategy_id = $1`, [id])).rows.length, 0, 'no capital, no snapshots');
    assert.equal((await call('PATCH', `/v1/strategies/${id}`, { initialCapital: '10000' })).status, 200);
    // The service's scheduler builds the day ends (days -3 to -1) from history, and one now.
    await waitFor('the snapshots', async () => (await db.query(`SELECT 1 FROM portfolio_snapshots WHERE strategy_id = $1`, [id])).rows.length >= 4, 30_000);
    const { rows } = await db.query<{ value: string }>(`SELECT total_value::text AS value FROM portfolio_snapshots WHERE strategy_id = $1 ORDER BY snapshot_time LIMIT 4`, [id]);
    // Day -3: E1 open at 100. Day -2: E1 closed (+40), E2 open at 104. Day -1: E2 at 99 (−50). Now: E2 at 108 (+40).
    assert.deepEqual(rows.map((r) => r.value), ['10000', '10040', '9990', '10080']);
    // The capital at the close of the day before the strategy began, then the snapshots.
    const curve = await call('GET', `/v1/strategies/${id}/equity`);
    assert.deepEqual([curve.body.source, curve.body.points.map((p: { equity: string }) => p.equity)], ['trades_then_snapshots', ['10000', '10000', '10040', '9990', '10080']]);
    const metrics = await call('GET', `/v1/strategies/${id}/metrics?benchmark=TATA_INR`);
    assert.equal(metrics.status, 200);
    const equity = [10000, 10000, 10040, 9990, 10080];
    const times = [4, 3, 2, 1, 0].map(d);
    const want = returnMetrics(equity, times, { periodsPerYear: 365 });
    assert.deepEqual([metrics.body.equitySource, metrics.body.equityDays], ['trades_then_snapshots', 5]);
    for (const name of ['totalReturn', 'sharpeRatio', 'maxDrawdown', 'var95']) assert.equal(metrics.body.metrics[name], String(want[name]!.value), name);
    // Against the benchmark on the days both have (day -4 has no candle).
    const bench = benchmarkMetrics(periodReturns(equity.slice(1)), periodReturns([100, 104, 99, 108]), { periodsPerYear: 365 });
    assert.equal(metrics.body.metrics.beta, String(bench.beta!.value), 'beta against the daily closes the service made from the trades');
    assert.deepEqual([metrics.body.metrics.totalTrades, metrics.body.metrics.winRate], ['1', '1']);
    // The counters and max drawdown, kept by ingest and recomputed for the new capital.
    const strategy = (await call('GET', `/v1/strategies/${id}`)).body;
    assert.deepEqual([strategy.totalTrades, strategy.totalPnl, strategy.maxDrawdown], [1, '40', '0']);
    // The daily job, run by hand, writes the finished days.
    const job = await runCli(['maintenance', 'run', '--job', 'strategy-metrics'], { DATABASE_URL: server.url });
    assert.equal(job.code, 0, job.stderr);
    const daily = await db.query<{ n: string }>(`SELECT count(*)::text AS n FROM strategy_metrics WHERE strategy_id = $1`, [id]);
    assert.equal(daily.rows[0]!.n, '3');
    service.child.kill('SIGTERM');
    assert.equal(await service.exited, 0);
  });
});
