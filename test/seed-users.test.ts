import { before, it } from 'node:test';
import assert from 'node:assert/strict';
import { migrate } from '../src/schema/migrator.ts';
import { seed } from '../src/schema/seed.ts';
import { UserInputError, createUser, verifyPassword } from '../src/users/users.ts';
import { eachBackend } from './helpers/backends.ts';
import { secretUsed } from './helpers/exposure.ts';

eachBackend('seed data and users', (get) => {
  before(() => migrate(get().db).then(() => undefined));

  it('seeds the seeds\' reference data once, and a second run changes nothing', async () => {
    const { db } = get();
    const first = await seed(db);
    assert.deepEqual(first, { markets: 3, instruments: 2, strategies: 2, tradingFees: 3, systemConfig: 4 });
    await db.query(`UPDATE trading_fees SET maker_fee = 0.0005 WHERE market = 'TATA_INR'`);
    const second = await seed(db);
    assert.deepEqual(second, { markets: 0, instruments: 0, strategies: 0, tradingFees: 0, systemConfig: 0 });
    const fee = await db.query<{ maker_fee: string }>(`SELECT maker_fee FROM trading_fees WHERE market = 'TATA_INR'`);
    assert.equal(fee.rows[0]!.maker_fee, '0.000500', 'an operator edit survives a re-seed');
    const markets = await db.query<{ symbol: string; tick_size: string; step_size: string }>(
      `SELECT symbol, tick_size, step_size FROM markets ORDER BY symbol`,
    );
    assert.deepEqual(markets.rows, [
      { symbol: 'HDFC_INR', tick_size: '0.01000000', step_size: '0.00100000' },
      { symbol: 'RELIANCE_INR', tick_size: '0.01000000', step_size: '0.00100000' },
      { symbol: 'TATA_INR', tick_size: '0.01000000', step_size: '0.00100000' },
    ]);
    const strategies = await db.query<{ id: string; class_name: string; execution_mode: string; symbols: string[]; config: { fast_ema?: number } }>(
      `SELECT id, class_name, execution_mode, symbols, config FROM strategies ORDER BY id`,
    );
    assert.deepEqual(strategies.rows.map((s) => [s.id, s.class_name, s.execution_mode, s.symbols]), [
      ['ema_crossover', 'EMACrossoverStrategy', 'paper', ['NIFTY', 'BANKNIFTY']],
      ['support_resistance', 'SupportResistanceStrategy', 'paper', ['NIFTY']],
    ]);
    assert.equal(strategies.rows[0]!.config.fast_ema, 9);
    const instruments = await db.query<{ symbol: string; tick_size: string; is_active: boolean }>(
      `SELECT symbol, tick_size::text, is_active FROM instruments WHERE exchange = 'NSE' ORDER BY symbol`,
    );
    assert.deepEqual(instruments.rows, [
      { symbol: 'BANKNIFTY', tick_size: '0.05', is_active: true },
      { symbol: 'NIFTY', tick_size: '0.05', is_active: true },
    ]);
  });

  it('creates a user with an argon2id hash that verifies', async () => {
    const { db } = get();
    secretUsed('correct horse battery');
    const user = await createUser(db, { id: 'alice', email: 'alice@example.com', password: 'correct horse battery' });
    assert.equal(user.hasPassword, true);
    const { rows } = await db.query<{ password_hash: string; kyc_status: string }>(
      `SELECT password_hash, kyc_status FROM users WHERE id = 'alice'`,
    );
    assert.match(rows[0]!.password_hash, /^\$argon2id\$v=19\$/);
    assert.equal(await verifyPassword(rows[0]!.password_hash, 'correct horse battery'), true);
    assert.equal(await verifyPassword(rows[0]!.password_hash, 'wrong'), false);
    assert.equal(rows[0]!.kyc_status, 'pending');
  });

  it('creates a user without a password, and rejects duplicates and bad input clearly', async () => {
    const { db } = get();
    const bob = await createUser(db, { id: 'bob', email: 'bob@example.com' });
    assert.equal(bob.hasPassword, false);
    await assert.rejects(createUser(db, { id: 'bob', email: 'b2@example.com' }), /a user with id bob already exists/);
    await assert.rejects(createUser(db, { id: 'carol', email: 'bob@example.com' }), /a user with email bob@example.com already exists/);
    await assert.rejects(createUser(db, { id: "x'; DROP TABLE users; --", email: 'x@example.com' }), UserInputError);
    await assert.rejects(createUser(db, { id: 'dave', email: 'dave' }), /email is not a valid address/);
    await assert.rejects(createUser(db, { id: 'dave', email: 'dave@example.com', password: 'short' }), /at least 8 characters/);
  });
});
