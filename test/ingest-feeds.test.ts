import { before, it } from 'node:test';
import assert from 'node:assert/strict';
import { migrate } from '../src/schema/migrator.ts';
import { seed } from '../src/schema/seed.ts';
import { decodeEvent } from '../src/ingest/events/decode.ts';
import { applyEntries } from './helpers/apply.ts';
import type { Entry } from '../src/ingest/apply/types.ts';
import { eachBackend } from './helpers/backends.ts';

let n = 0;
function entry(type: string, data: object): Entry {
  const result = decodeEvent(JSON.stringify({ type, data }));
  if (!result.ok) throw new Error(result.reason);
  return { key: `entry:feeds:${++n}`, event: result.event };
}

const T = Date.UTC(2026, 10, 21, 9, 15);

eachBackend('ingest: feed messages of the other seeds', (get) => {
  before(async () => {
    const { db } = get();
    await migrate(db);
    await seed(db);
    await db.exec(`
      INSERT INTO instruments (exchange, symbol, instrument_type, base_asset, quote_asset) VALUES ('binance', 'BTCUSDT', 'SPOT', 'BTC', 'USDT');
      INSERT INTO ml_models (name, model_type, version, symbol, timeframe, features) VALUES ('lstm', 'lstm', '1', 'BTCUSDT', '1h', '["close"]');`);
  });

  it('stores exchange trades and ticks once, with the taker side derived', async () => {
    const { db } = get();
    const trade = entry('MARKET_TRADE', { exchange: 'binance', symbol: 'BTCUSDT', tradeId: 3381475012, price: 67012.55, quantity: '0.0031', isBuyerMaker: false, timestamp: T });
    const tick = entry('MARKET_TRADE', { exchange: 'NSE', symbol: 'NIFTY', price: '24011.05', quantity: 75, side: 'SELL', timestamp: T });
    const again = entry('MARKET_TRADE', { exchange: 'binance', symbol: 'BTCUSDT', tradeId: '3381475012', price: '67012.55', quantity: '0.0031', isBuyerMaker: false, timestamp: T });
    const unknown = entry('MARKET_TRADE', { exchange: 'NSE', symbol: 'NOPE', price: '1', quantity: '1', timestamp: T });
    const outcome = await applyEntries(db, [trade, tick, again, unknown]);
    assert.deepEqual(outcome.rejected.map((r) => r.reason), ['unknown instrument NSE:NOPE (register it in instruments first)']);
    const { rows } = await db.query<{ symbol: string; trade_id: string; price: string; quote_quantity: string; side: string | null }>(
      `SELECT symbol, trade_id, price::text, quote_quantity::text, side FROM market_trades ORDER BY symbol`,
    );
    assert.deepEqual(rows, [
      { symbol: 'BTCUSDT', trade_id: '3381475012', price: '67012.55', quote_quantity: '207.738905', side: 'buy' },
      { symbol: 'NIFTY', trade_id: '', price: '24011.05', quote_quantity: '1800828.75', side: 'sell' },
    ]);
  });

  it('upserts candles of any timeframe (a later version of a live candle replaces it) and refuses an invalid one', async () => {
    const { db } = get();
    const first = entry('CANDLE', { exchange: 'NSE', symbol: 'NIFTY', timeframe: '5s', openTime: T, open: '24011.05', high: '24013.8', low: '24009.9', close: '24012.35', volume: '1200', tradesCount: 41 });
    const grown = entry('CANDLE', { exchange: 'NSE', symbol: 'NIFTY', timeframe: '5s', openTime: T, open: '24011.05', high: '24015', low: '24009.9', close: '24014.2', volume: '1500', tradesCount: 52 });
    await applyEntries(db, [first, grown]);
    const later = entry('CANDLE', { exchange: 'NSE', symbol: 'NIFTY', timeframe: '5s', openTime: T, open: '24011.05', high: '24016', low: '24009.9', close: '24016', volume: '1600', tradesCount: 55 });
    await applyEntries(db, [later]);
    // The exchange's 5s candle replaced the one the tick above built; the tick's other timeframes stay.
    const { rows } = await db.query<{ close: string; volume: string; trades_count: number; data_source: string | null }>(
      `SELECT close::text, volume::text, trades_count, data_source FROM market_data WHERE symbol = 'NIFTY' AND timeframe = '5s'`,
    );
    assert.deepEqual(rows, [{ close: '24016', volume: '1600', trades_count: 55, data_source: null }]);
    const bad = decodeEvent(JSON.stringify({ type: 'CANDLE', data: { exchange: 'NSE', symbol: 'NIFTY', timeframe: '1m', openTime: T, open: '10', high: '9', low: '11', close: '10', volume: '1' } }));
    assert.equal(bad.ok, false);
    assert.match((bad as { reason: string }).reason, /high 9 and low 11 must bound open 10 and close 10/);
  });

  it('keeps order books exact in both level formats, with totals', async () => {
    const { db } = get();
    await applyEntries(db, [
      entry('ORDER_BOOK', { exchange: 'binance', symbol: 'BTCUSDT', timestamp: T, lastUpdateId: 1027024, bids: [['67012.5', '1.2'], ['67012.4', '0.30000001']], asks: [{ price: '67013', amount: '0.4' }] }),
    ]);
    const { rows } = await db.query<{ bid_prices: string[]; bid_quantities: string[]; ask_prices: string[]; total_bid_quantity: string; last_update_id: string }>(
      `SELECT bid_prices, bid_quantities, ask_prices, total_bid_quantity::text, last_update_id FROM order_book_snapshots`,
    );
    assert.deepEqual(rows[0], { bid_prices: ['67012.5', '67012.4'], bid_quantities: ['1.2', '0.30000001'], ask_prices: ['67013'], total_bid_quantity: '1.50000001', last_update_id: '1027024' });
  });

  it('stores own fills once, with commission, defaulting to the system user', async () => {
    const { db } = get();
    const f = { exchange: 'binance', symbol: 'BTCUSDT', orderId: '28457', tradeId: '3381475012', side: 'BUY', price: '67012.55', quantity: '0.01', commission: '0.0000075', commissionAsset: 'BNB', timestamp: T };
    await applyEntries(db, [entry('FILL', f), entry('FILL', f), entry('FILL', { ...f, userId: 'ghost' })]);
    const { rows } = await db.query<{ user_id: string; quote_quantity: string; commission: string; side: string }>(`SELECT user_id, quote_quantity::text, commission::text, side FROM trades_executed`);
    assert.deepEqual(rows, [{ user_id: 'system', quote_quantity: '670.1255', commission: '0.0000075', side: 'buy' }]);
  });

  it('folds position updates onto the one open position, closes it, and opens a new one after', async () => {
    const { db } = get();
    const base = { exchange: 'NSE', symbol: 'NIFTY', strategyId: 'ema_crossover' };
    const outcome = await applyEntries(db, [
      entry('POSITION_UPDATE', { ...base, quantity: '-50', entryPrice: '24010.5', markPrice: '24000', unrealizedPnl: '525', timestamp: T }),
      entry('POSITION_UPDATE', { ...base, quantity: '-50', entryPrice: '24010.5', markPrice: '23990', unrealizedPnl: '1025' }),
      entry('POSITION_UPDATE', { ...base, side: 'short', quantity: '0', entryPrice: '24010.5', markPrice: '23980', realizedPnl: '1525' }),
      entry('POSITION_UPDATE', { ...base, quantity: '25', entryPrice: '23985' }),
      entry('POSITION_UPDATE', { ...base, side: 'long', quantity: '0', entryPrice: '1', status: 'closed' }),
      entry('POSITION_UPDATE', { ...base, side: 'short', quantity: '0', entryPrice: '1', status: 'closed' }),
    ]);
    assert.deepEqual(outcome.rejected.map((r) => r.reason), ['no open short position in NSE:NIFTY for this owner to close']);
    const { rows } = await db.query<{ side: string; quantity: string; signed_quantity: string; status: string; exit_price: string | null; realized_pnl: string }>(
      `SELECT side, quantity::text, signed_quantity::text, status, exit_price::text, realized_pnl::text FROM positions WHERE strategy_id = 'ema_crossover' ORDER BY id`,
    );
    assert.deepEqual(rows, [
      { side: 'short', quantity: '0', signed_quantity: '0', status: 'closed', exit_price: '23980', realized_pnl: '1525' },
      { side: 'long', quantity: '0', signed_quantity: '0', status: 'closed', exit_price: null, realized_pnl: '0' },
    ]);
  });

  it('opens and closes strategy round trips with exact P&L, in one batch, and counts them on the strategy', async () => {
    const { db } = get();
    const outcome = await applyEntries(db, [
      entry('STRATEGY_TRADE_OPENED', { id: 'st-1', strategyId: 'ema_crossover', symbol: 'NIFTY', side: 'buy', entryPrice: '24010.5', quantity: '50', entryTime: T, entrySignal: { ema_fast: 24012.1 } }),
      entry('STRATEGY_TRADE_CLOSED', { id: 'st-1', exitPrice: '24100.25', exitTime: T + 3_600_000, exitReason: 'TAKE_PROFIT', fees: '40.1' }),
      entry('STRATEGY_TRADE_OPENED', { id: 'st-2', strategyId: 'ema_crossover', symbol: 'NIFTY', side: 'sell', entryPrice: '100', quantity: '3', entryTime: T }),
      entry('STRATEGY_TRADE_CLOSED', { id: 'st-2', exitPrice: '101', exitTime: T + 60_000 }),
      entry('STRATEGY_TRADE_CLOSED', { id: 'st-2', exitPrice: '99', exitTime: T + 60_000 }),
      entry('STRATEGY_TRADE_OPENED', { id: 'st-3', strategyId: 'nope', symbol: 'NIFTY', side: 'buy', entryPrice: '1', quantity: '1', entryTime: T }),
    ]);
    assert.deepEqual(outcome.rejected.map((r) => r.reason), ['strategy trade st-2 is already closed', 'unknown strategy nope']);
    const { rows } = await db.query<{ id: string; pnl: string; pnl_percent: string; status: string; entry_signal: { ema_fast: number } }>(
      `SELECT id, pnl::text, pnl_percent::text, status, entry_signal FROM strategy_trades ORDER BY id`,
    );
    // (24100.25 − 24010.5) × 50 − 40.1 = 4447.4; sell: (100 − 101) × 3 = −3
    assert.deepEqual(rows.map((r) => [r.id, r.pnl, r.pnl_percent, r.status]), [
      ['st-1', '4447.4', '0.37045459', 'closed'],
      ['st-2', '-3', '-1.00000000', 'closed'],
    ]);
    assert.equal(rows[0]!.entry_signal.ema_fast, 24012.1, 'signals keep their numbers');
    const strategy = await db.query<{ total_trades: number; winning_trades: number; total_pnl: string }>(
      `SELECT total_trades, winning_trades, total_pnl::text FROM strategies WHERE id = 'ema_crossover'`,
    );
    assert.deepEqual(strategy.rows[0], { total_trades: 2, winning_trades: 1, total_pnl: '4444.4' });
  });

  it('stores snapshots, metrics, performance, predictions, indicators, risk events, logs and API usage', async () => {
    const { db } = get();
    const { rows: models } = await db.query<{ id: string }>(`SELECT id FROM ml_models`);
    const modelId = Number(models[0]!.id);
    const outcome = await applyEntries(db, [
      entry('PORTFOLIO_SNAPSHOT', { strategyId: 'ema_crossover', timestamp: T, totalValue: '1002500.10', cashBalance: '802500', positions: [{ symbol: 'NIFTY', quantity: 50.5 }] }),
      entry('PERFORMANCE_METRIC', { strategyId: 'ema_crossover', name: 'sharpe_ratio', value: '1.84', timestamp: T }),
      entry('PERFORMANCE_METRIC', { strategyId: 'ema_crossover', name: 'sharpe_ratio', value: '1.91', timestamp: T }),
      entry('STRATEGY_PERFORMANCE', { strategyId: 'ema_crossover', timestamp: T, totalReturn: '0.125', totalTrades: 40 }),
      entry('PREDICTION', { modelId, symbol: 'BTCUSDT', timestamp: T, predictionTimestamp: T + 3_600_000, predictionType: 'price', predictedValue: '67500', confidence: '0.71' }),
      entry('INDICATOR', { exchange: 'binance', symbol: 'BTCUSDT', timeframe: '1h', timestamp: T, name: 'rsi_14', value: '61.27' }),
      entry('RISK_EVENT', { userId: 'u1', eventType: 'limit_breach', severity: 'WARNING', riskValue: '120000', limitValue: '100000' }),
      entry('SYSTEM_LOG', { level: 'ERROR', category: 'ORDER', message: 'broker rejected order', ipAddress: '10.1.2.3' }),
      entry('API_USAGE', { userId: 'u1', endpoint: '/api/v3/klines', method: 'get', statusCode: 200, responseTime: 12 }),
      entry('PREDICTION', { modelId: 999, symbol: 'BTCUSDT', timestamp: T, predictionTimestamp: T, predictionType: 'price', predictedValue: '1' }),
    ]);
    assert.deepEqual(outcome.rejected.map((r) => r.reason), ['unknown model 999']);
    await applyEntries(db, [
      entry('PREDICTION', { modelId, symbol: 'BTCUSDT', timestamp: T, predictionTimestamp: T + 3_600_000, predictionType: 'price', predictedValue: '67500', actualValue: '67480.5' }),
    ]);
    const check = async (sql: string) => (await db.query(sql)).rows[0];
    assert.deepEqual(await check(`SELECT total_value::text, positions FROM portfolio_snapshots`), { total_value: '1002500.1', positions: [{ symbol: 'NIFTY', quantity: 50.5 }] });
    assert.deepEqual(await check(`SELECT value::text FROM performance_metrics`), { value: '1.91' });
    assert.deepEqual(await check(`SELECT total_return::text, total_trades FROM strategy_performance`), { total_return: '0.125', total_trades: 40 });
    assert.deepEqual(await check(`SELECT actual_value::text, error::text FROM predictions`), { actual_value: '67480.5', error: '-19.5' });
    assert.deepEqual(await check(`SELECT value::text FROM technical_indicators`), { value: '61.27' });
    assert.deepEqual(await check(`SELECT severity, risk_value::text FROM risk_events`), { severity: 'warning', risk_value: '120000' });
    assert.deepEqual(await check(`SELECT level, category, host(ip_address) AS ip FROM system_logs`), { level: 'error', category: 'order', ip: '10.1.2.3' });
    assert.deepEqual(await check(`SELECT method, status_code FROM api_usage`), { method: 'GET', status_code: 200 });
  });
});
