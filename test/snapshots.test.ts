import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
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
    assert.deepEqual(done, { strategies: 1, users: 1, dayEnds: 5 + userDayEnd });
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
    assert.deepEqual(await takeSnapshots(get().db, new Date(now.getTime() + 60_000)), { strategies: 1, users: 1, dayEnds: 0 });
  });

  it('reads the equity curve from the day ends, a producer snapshot of the day winning over the service', async () => {
    const curve = await store.strategies.equity(id);
    assert.equal(curve.source, 'snapshots');
    assert.deepEqual(curve.points.map((p) => [Date.parse(p.time), p.equity]), [
      [d(5), '10000'], [d(4), '10000'], [d(3), '9999'], [d(2), '10057'], [d(1), '9982'], [d(0), '10127'],
    ]);
    await get().db.query(`INSERT INTO portfolio_snapshots (strategy_id, snapshot_time, total_value, cash_balance) VALUES ($1, $2, 9990, 0)`, [id, new Date(d(1) + 6 * HOUR)]);
    assert.equal((await store.strategies.equity(id)).points[4]!.equity, '9990', "the producer's snapshot of day -1 is its close");
    await get().db.query(`DELETE FROM portfolio_snapshots WHERE strategy_id = $1 AND total_value = 9990`, [id]);
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
    // To day -1's end: A closed (one winner), the curve 10000, 10000, 9999, 10057, 9982.
    assert.deepEqual([last.total_trades, last.winning_trades, last.losing_trades, last.total_pnl, last.win_rate, last.profit_factor], [1, 1, 0, '59', '1.0000', null]);
    const equity = [10000, 10000, 9999, 10057, 9982];
    const want = returnMetrics(equity, equity.map((_, i) => d(5 - i)), { periodsPerYear: 365 });
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
