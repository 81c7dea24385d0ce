import { before, it } from 'node:test';
import assert from 'node:assert/strict';
import { migrate } from '../src/schema/migrator.ts';
import { seed } from '../src/schema/seed.ts';
import { eachBackend } from './helpers/backends.ts';

/** '269.27457000' → '269.27457': compare decimals by value, as text, never through floats. */
const norm = (value: unknown) => String(value).replace(/(\.\d*?)0+$/, '$1').replace(/\.$/, '');

eachBackend('generated columns', (get) => {
  before(async () => {
    await migrate(get().db);
    await seed(get().db);
    await get().db.query(`INSERT INTO users (id, email) VALUES ('u1', 'u1@example.com')`);
  });

  it('balances.total_balance is the exact sum (0.1 + 0.2 = 0.3)', async () => {
    const { db } = get();
    const { rows } = await db.query<{ total_balance: string }>(
      `INSERT INTO balances (user_id, asset, available_balance, locked_balance) VALUES ('u1', 'INR', '0.1', '0.2')
       RETURNING total_balance`,
    );
    assert.equal(typeof rows[0]!.total_balance, 'string');
    assert.equal(norm(rows[0]!.total_balance), '0.3');
  });

  it('orders.remaining_quantity is quantity minus filled, to the last unit', async () => {
    const { db } = get();
    const { rows } = await db.query<{ remaining_quantity: string }>(
      `INSERT INTO orders (id, market, side, price, quantity, filled_quantity)
       VALUES ('o-1', 'TATA_INR', 'sell', '134.57', '3.00000001', '0.1') RETURNING remaining_quantity`,
    );
    assert.equal(norm(rows[0]!.remaining_quantity), '2.90000001');
  });

  it('trades.quote_quantity is the exact product price × quantity', async () => {
    const { db } = get();
    const { rows } = await db.query<{ quote_quantity: string; sequence_number: string }>(
      `INSERT INTO trades (id, market, price, quantity, is_buyer_maker)
       VALUES ('t-1', 'TATA_INR', '134.57', '2.001', false) RETURNING quote_quantity, sequence_number`,
    );
    assert.equal(norm(rows[0]!.quote_quantity), '269.27457');
    assert.equal(typeof rows[0]!.sequence_number, 'string', 'BIGINT comes back as a string');
    const tiny = await db.query<{ quote_quantity: string }>(
      `INSERT INTO trades (id, market, price, quantity, is_buyer_maker)
       VALUES ('t-2', 'TATA_INR', '0.00000001', '0.00000003', true) RETURNING quote_quantity`,
    );
    assert.equal(norm(tiny.rows[0]!.quote_quantity), '0.0000000000000003');
  });

  it('exchange, position, strategy and instrument columns derive exactly', async () => {
    const { db } = get();
    const order = await db.query<{ remaining_quantity: string }>(
      `INSERT INTO exchange_orders (exchange, symbol, side, order_type, quantity, filled_quantity)
       VALUES ('NSE', 'NIFTY', 'buy', 'sl', '75', '25.5') RETURNING remaining_quantity`,
    );
    assert.equal(norm(order.rows[0]!.remaining_quantity), '49.5');
    const tick = await db.query<{ quote_quantity: string; side: string | null }>(
      `INSERT INTO market_trades (exchange, symbol, time, price, quantity, is_buyer_maker)
       VALUES ('NSE', 'NIFTY', now(), '22001.05', '3', true) RETURNING quote_quantity, side`,
    );
    assert.equal(norm(tick.rows[0]!.quote_quantity), '66003.15');
    assert.equal(tick.rows[0]!.side, 'sell');
    const position = await db.query<{ signed_quantity: string }>(
      `INSERT INTO positions (exchange, symbol, side, quantity, entry_price) VALUES ('NSE', 'BANKNIFTY', 'short', '15', '48000')
       RETURNING signed_quantity`,
    );
    assert.equal(norm(position.rows[0]!.signed_quantity), '-15');
    const strategy = await db.query<{ is_paper_trading: boolean }>(
      `SELECT is_paper_trading FROM strategies WHERE id = 'ema_crossover'`,
    );
    assert.equal(strategy.rows[0]!.is_paper_trading, true);
  });
});
