import { before, it } from 'node:test';
import assert from 'node:assert/strict';
import { migrate } from '../src/schema/migrator.ts';
import { seed } from '../src/schema/seed.ts';
import { eachBackend } from './helpers/backends.ts';

/**
 * Asserts the statement fails and the error names the constraint. On a hypertable a unique
 * index is reported under its chunk's copy, whose name TimescaleDB builds from the chunk's and
 * ends with the original ("4_7_trades_pkey" in one release, "_hyper_1_2_chunk_trades_pkey" in
 * another): only that ending is checked, not the naming scheme.
 */
async function rejectsWith(promise: Promise<unknown>, constraint: string): Promise<void> {
  const name = new RegExp(`(^|_)${constraint}$`);
  await assert.rejects(promise, (e: Error & { constraint?: string }) => {
    assert.match(e.message, new RegExp(`"([^"]*_)?${constraint}"`), `error should name ${constraint}: ${e.message}`);
    if (e.constraint !== undefined) assert.match(e.constraint, name);
    return true;
  });
}

eachBackend('constraints', (get) => {
  before(async () => {
    await migrate(get().db);
    await seed(get().db);
    await get().db.query(`INSERT INTO users (id, email) VALUES ('u1', 'u1@example.com')`);
  });

  it('rejects a negative balance, available or locked', async () => {
    const { db } = get();
    await rejectsWith(
      db.query(`INSERT INTO balances (user_id, asset, available_balance) VALUES ('u1', 'INR', -0.00000001)`),
      'balances_available_non_negative',
    );
    await rejectsWith(
      db.query(`INSERT INTO balances (user_id, asset, locked_balance) VALUES ('u1', 'INR', -1)`),
      'balances_locked_non_negative',
    );
    await db.query(`INSERT INTO balances (user_id, asset, available_balance) VALUES ('u1', 'INR', 10)`);
    await rejectsWith(
      db.query(`UPDATE balances SET available_balance = available_balance - 10.5 WHERE user_id = 'u1'`),
      'balances_available_non_negative',
    );
  });

  it('rejects a candle whose high is below its low', async () => {
    const { db } = get();
    await rejectsWith(
      db.query(`INSERT INTO market_data (exchange, symbol, timeframe, timestamp, open, high, low, close, volume)
                VALUES ('NSE', 'NIFTY', '1m', now(), 100, 99, 101, 100, 5)`),
      'valid_ohlc',
    );
    await rejectsWith(
      db.query(`INSERT INTO ohlcv_1m (market, open_time, close_time, open_price, high_price, low_price, close_price, volume, quote_volume, trade_count)
                VALUES ('TATA_INR', '2026-01-01T00:00Z', '2026-01-01T00:00:59.999Z', 10, 9, 11, 10, 1, 10, 1)`),
      'ohlcv_valid_prices',
    );
    await rejectsWith(
      db.query(`INSERT INTO market_data (exchange, symbol, timeframe, timestamp, open, high, low, close, volume)
                VALUES ('NSE', 'NIFTY', '7m', now(), 1, 1, 1, 1, 1)`),
      'market_data_timeframe_check',
    );
  });

  it('rejects a bad side, in the one lower-case convention', async () => {
    const { db } = get();
    await rejectsWith(
      db.query(`INSERT INTO orders (id, market, side, price, quantity) VALUES ('o-side', 'TATA_INR', 'BUY', 1, 1)`),
      'orders_side_check',
    );
    await rejectsWith(
      db.query(`INSERT INTO exchange_orders (exchange, symbol, side, order_type, quantity) VALUES ('NSE', 'NIFTY', 'long', 'market', 1)`),
      'exchange_orders_side_check',
    );
    await rejectsWith(
      db.query(`INSERT INTO positions (exchange, symbol, side, quantity, entry_price) VALUES ('NSE', 'NIFTY', 'buy', 1, 1)`),
      'positions_side_check',
    );
  });

  it('rejects a bad status', async () => {
    const { db } = get();
    await rejectsWith(
      db.query(`INSERT INTO orders (id, market, side, price, quantity, status) VALUES ('o-st', 'TATA_INR', 'buy', 1, 1, 'done')`),
      'orders_status_check',
    );
    await rejectsWith(
      db.query(`INSERT INTO exchange_orders (exchange, symbol, side, order_type, quantity, status) VALUES ('NSE', 'NIFTY', 'buy', 'sl_m', 1, 'NEW')`),
      'exchange_orders_status_check',
    );
    await rejectsWith(
      db.query(`INSERT INTO backtests (strategy_id, name, symbols, start_date, end_date, initial_capital, status)
                VALUES ('ema_crossover', 'b', '{NIFTY}', '2026-01-01', '2026-02-01', 1000, 'done')`),
      'backtests_status_check',
    );
  });

  it('rejects overfilled orders, typed config of the wrong type and unknown key scopes', async () => {
    const { db } = get();
    await rejectsWith(
      db.query(`INSERT INTO orders (id, market, side, price, quantity, filled_quantity) VALUES ('o-f', 'TATA_INR', 'buy', 1, 1, 2)`),
      'orders_filled_quantity_check',
    );
    await rejectsWith(
      db.query(`INSERT INTO system_config (key, value, data_type) VALUES ('x.n', 'twelve', 'number')`),
      'system_config_value_matches_type',
    );
    await rejectsWith(
      db.query(`INSERT INTO api_keys (user_id, name, key_prefix, key_hash, permissions) VALUES ('u1', 'k', 'ts_abc', 'h', '{read,root}')`),
      'api_keys_permissions_check',
    );
  });

  it('keeps one open position per strategy and instrument (seed 004)', async () => {
    const { db } = get();
    const insert = `INSERT INTO positions (strategy_id, exchange, symbol, side, quantity, entry_price)
                    VALUES ('ema_crossover', 'NSE', 'NIFTY', 'long', 50, 22000.5)`;
    await db.query(insert);
    await rejectsWith(db.query(insert), 'idx_positions_one_open');
    await db.query(`UPDATE positions SET status = 'closed', closed_at = now() WHERE strategy_id = 'ema_crossover'`);
    await db.query(insert);
  });

  it('accepts what real seed-000 engines send: orders without a user, trades without counterparties', async () => {
    const { db } = get();
    await db.query(`INSERT INTO orders (id, market, side, price, quantity) VALUES ('o-77', 'TATA_INR', 'buy', '134.5', '3')`);
    await db.query(`INSERT INTO trades (id, market, price, quantity, is_buyer_maker, executed_at)
                    VALUES ('1042', 'TATA_INR', '134.5', '2', true, to_timestamp(1763700000.123))`);
    // The same trade id in another market is another trade.
    await db.query(`INSERT INTO trades (id, market, price, quantity, is_buyer_maker, executed_at)
                    VALUES ('1042', 'HDFC_INR', '10', '1', false, to_timestamp(1763700000.123))`);
    await rejectsWith(
      db.query(`INSERT INTO trades (id, market, price, quantity, is_buyer_maker, executed_at)
                VALUES ('1042', 'TATA_INR', '134.5', '2', true, to_timestamp(1763700000.123))`),
      'trades_pkey',
    );
    await rejectsWith(
      db.query(`INSERT INTO trades (id, market, price, quantity, is_buyer_maker) VALUES ('9', 'NOPE_INR', 1, 1, true)`),
      'trades_market_fkey',
    );
  });
});
