import { before, it } from 'node:test';
import assert from 'node:assert/strict';
import { migrate } from '../src/schema/migrator.ts';
import { seed } from '../src/schema/seed.ts';
import { decodeEvent } from '../src/ingest/events/decode.ts';
import { applyBatch, type BatchItem } from '../src/ingest/apply/batch.ts';
import { applyEntries, isolateEntries, offsetsOf } from './helpers/apply.ts';
import type { Entry } from '../src/ingest/apply/types.ts';
import { eachBackend } from './helpers/backends.ts';
import { candleMismatches } from './helpers/candles.ts';

let sequence = 0;
/** A queue entry with a fresh key, as the worker would build it. */
function entry(message: object, key = `entry:test:${++sequence}`): Entry {
  const result = decodeEvent(JSON.stringify(message));
  if (!result.ok) throw new Error(result.reason);
  return { key, event: result.event };
}

const T0 = Date.UTC(2026, 10, 20, 23, 58, 0); // two minutes before a UTC day boundary
const trade = (market: string, id: string, price: string, quantity: string, ms: number, isBuyerMaker = false) =>
  entry({ type: 'TRADE_ADDED', data: { market, id, price, quantity, isBuyerMaker, timestamp: ms } });

eachBackend('ingest: applying batches', (get) => {
  before(async () => {
    const { db } = get();
    await migrate(db);
    await seed(db);
    await db.query(`INSERT INTO users (id, email) VALUES ('u1', 'u1@example.com'), ('u2', 'u2@example.com')`);
  });

  it('stores each trade once and keeps all six candle intervals equal to a recomputation', async () => {
    const { db } = get();
    const batches: Entry[][] = [];
    let id = 0;
    // Prices and quantities from a fixed pseudo-random walk across a UTC day boundary, two markets.
    let x = 7;
    const next = () => (x = (x * 1103515245 + 12345) % 2147483648);
    for (let b = 0; b < 6; b++) {
      const batch: Entry[] = [];
      for (let i = 0; i < 40; i++) {
        const market = next() % 3 === 0 ? 'HDFC_INR' : 'TATA_INR';
        const ms = T0 + b * 45_000 + (next() % 60_000) - (b === 4 ? 200_000 : 0); // batch 4 arrives late
        const cents = next() % 5000;
        const price = `${100 + Math.floor(cents / 100)}.${String(cents % 100).padStart(2, '0')}`;
        const quantity = `${Math.floor(next() % 2000 / 1000)}.${String((next() % 1000) + 1).padStart(3, '0')}`;
        batch.push(trade(market, String(++id), price, quantity, ms, next() % 2 === 0));
      }
      // Two trades in the same millisecond: open and close are decided by arrival order.
      batch.push(trade('TATA_INR', String(++id), '150.01', '1', T0 + 30_000), trade('TATA_INR', String(++id), '149.99', '1', T0 + 30_000));
      batches.push(batch);
    }
    for (const batch of batches) {
      const outcome = await applyEntries(db, batch);
      assert.equal(outcome.rejected.length, 0, JSON.stringify(outcome.rejected));
      assert.equal(outcome.applied.length, batch.length);
    }
    const { rows } = await db.query<{ n: string }>(`SELECT count(*) AS n FROM trades`);
    assert.equal(rows[0]!.n, String(id));
    assert.deepEqual(await candleMismatches(db), []);

    // Entries at or behind the shard's offset (a crash before the trim, a second owner) are refused whole: nothing is applied twice.
    const offsets = await offsetsOf(db);
    const behind = batches[0]!.map((e, i): BatchItem => ({ shard: 0, id: `${i + 1}-0`, key: e.key, entry: e, invalid: null }));
    await assert.rejects(applyBatch(db, behind, offsets), /entry 1-0 of shard 0 is at or behind its offset/);
    assert.equal((await db.query<{ n: string }>(`SELECT count(*) AS n FROM trades`)).rows[0]!.n, String(id));
    // The same trades under new queue entries (the engine sent them twice): stored once, candles unchanged.
    const resent = batches[2]!.map((e) => ({ ...e, key: `entry:test:${++sequence}` }));
    const again = await applyEntries(db, resent);
    assert.equal(again.applied.length, resent.length);
    assert.equal(again.effects.trades.length, 0, 'no trade is inserted twice, so none feeds the candles twice');
    assert.equal((await db.query<{ n: string }>(`SELECT count(*) AS n FROM trades`)).rows[0]!.n, String(id));
    assert.deepEqual(await candleMismatches(db), []);
  });

  it('refuses trades in unknown markets and values that DECIMAL(20,8) would round, without blocking the batch', async () => {
    const { db } = get();
    const good = trade('TATA_INR', 'ok-1', '100', '1', T0);
    const unknown = trade('NOPE_INR', 'x-1', '100', '1', T0);
    const rounding = trade('TATA_INR', 'x-2', '100.123456789', '1', T0);
    const outcome = await applyEntries(db, [good, unknown, rounding]);
    assert.deepEqual(outcome.applied, [good.key]);
    assert.deepEqual(outcome.rejected.map((r) => [r.key, r.reason]), [
      [unknown.key, 'unknown market NOPE_INR'],
      [rounding.key, 'price 100.123456789 does not fit DECIMAL(20,8) (at most 12 digits before and 8 after the point) and would be rounded'],
    ]);
  });

  it('runs orders through the state machine and records every transition', async () => {
    const { db } = get();
    const create = entry({ type: 'ORDER_UPDATE', data: { orderId: 'o-77', executedQty: 0.5, market: 'TATA_INR', price: '134.5', quantity: '3', side: 'buy' } });
    const makerFill = entry({ type: 'ORDER_UPDATE', data: { orderId: 'o-77', executedQty: '1.5' } });
    const unknownFill = entry({ type: 'ORDER_UPDATE', data: { orderId: 'o-12', executedQty: 0.5 } });
    const overfill = entry({ type: 'ORDER_UPDATE', data: { orderId: 'o-77', executedQty: '2' } });
    const lastFill = entry({ type: 'ORDER_UPDATE', data: { orderId: 'o-77', executedQty: '1', timestamp: T0 } });
    const lateCancel = entry({ type: 'ORDER_UPDATE', data: { orderId: 'o-77', status: 'cancelled' } });
    const other = entry({ type: 'ORDER_UPDATE', data: { orderId: 'o-78', market: 'HDFC_INR', price: '10', quantity: '1', side: 'SELL', userId: 'u2' } });
    const cancelOther = entry({ type: 'ORDER_UPDATE', data: { orderId: 'o-78', status: 'cancelled' } });
    const conflicting = entry({ type: 'ORDER_UPDATE', data: { orderId: 'o-78', market: 'HDFC_INR', price: '11', quantity: '1', side: 'sell' } });
    const outcome = await applyEntries(db, [create, makerFill, unknownFill, overfill, lastFill, lateCancel, other, cancelOther, conflicting]);
    assert.deepEqual(outcome.applied, [create.key, makerFill.key, lastFill.key, other.key, cancelOther.key]);
    assert.deepEqual(
      outcome.rejected.map((r) => r.reason),
      [
        'order o-12 does not exist (an update without market, price, quantity and side cannot create it)',
        'a fill of 2 takes order o-77 to 4, above its quantity 3',
        'order o-77 is already filled; it cannot become cancelled',
        'order o-78 exists as sell 1 HDFC_INR @ 10; this update says sell 1 HDFC_INR @ 11',
      ],
    );
    const { rows } = await db.query<{ id: string; status: string; filled_quantity: string; remaining_quantity: string; filled_at: Date | null; cancelled_at: Date | null; user_id: string | null }>(
      `SELECT id, status, filled_quantity::text, remaining_quantity::text, filled_at, cancelled_at, user_id FROM orders WHERE id IN ('o-77', 'o-78') ORDER BY id`,
    );
    assert.equal(rows[0]!.status, 'filled');
    assert.equal(Number(rows[0]!.remaining_quantity), 0);
    assert.equal(rows[0]!.filled_at?.getTime(), T0);
    assert.equal(rows[0]!.user_id, null, 'orders come without a user id');
    assert.equal(rows[1]!.status, 'cancelled');
    assert.ok(rows[1]!.cancelled_at);
    assert.equal(rows[1]!.user_id, 'u2');
    const history = await db.query<{ order_id: string; status: string; fill_quantity: string | null }>(
      `SELECT order_id, status, fill_quantity::text FROM order_history WHERE source = 'venue' ORDER BY id`,
    );
    assert.deepEqual(history.rows.map((h) => [h.order_id, h.status, h.fill_quantity && Number(h.fill_quantity)]), [
      ['o-77', 'open', null],
      ['o-77', 'open', 0.5],
      ['o-77', 'open', 1.5],
      ['o-77', 'filled', 1],
      ['o-78', 'open', null],
      ['o-78', 'cancelled', null],
    ]);
  });

  it('moves balances exactly, never below zero, with before/after history for every change', async () => {
    const { db } = get();
    const deposit = entry({ type: 'BALANCE_UPDATE', eventId: 'dep-1', data: { userId: 'u1', asset: 'INR', availableChange: '1000', changeType: 'deposit' } });
    const lock = entry({ type: 'BALANCE_UPDATE', data: { userId: 'u1', asset: 'INR', availableChange: '-269', lockedChange: 269, referenceId: 'o-77' } });
    const tooMuch = entry({ type: 'BALANCE_UPDATE', data: { userId: 'u1', asset: 'INR', availableChange: '-731.00000001', referenceId: 'w-1' } });
    const cents = entry({ type: 'BALANCE_UPDATE', data: { userId: 'u1', asset: 'INR', availableChange: '0.1' } });
    const cents2 = entry({ type: 'BALANCE_UPDATE', data: { userId: 'u1', asset: 'INR', availableChange: 0.2 } });
    const stranger = entry({ type: 'BALANCE_UPDATE', data: { userId: 'ghost', asset: 'INR', availableChange: '5' } });
    const outcome = await applyEntries(db, [deposit, lock, tooMuch, cents, cents2, stranger]);
    assert.deepEqual(outcome.applied, [deposit.key, lock.key, cents.key, cents2.key]);
    assert.deepEqual(outcome.rejected.map((r) => r.reason), [
      'insufficient available INR for u1: 731 - 731.00000001 would be -0.00000001',
      'unknown user ghost',
    ]);
    const { rows } = await db.query<{ available_balance: string; locked_balance: string; total_balance: string }>(
      `SELECT available_balance::text, locked_balance::text, total_balance::text FROM balances WHERE user_id = 'u1' AND asset = 'INR'`,
    );
    assert.deepEqual(rows[0], { available_balance: '731.30000000', locked_balance: '269.00000000', total_balance: '1000.30000000' });
    const history = await db.query<{ amount: string; balance_before: string; balance_after: string; locked_before: string; locked_after: string; reference_id: string | null; change_type: string }>(
      `SELECT amount::text, balance_before::text, balance_after::text, locked_before::text, locked_after::text, reference_id, change_type
         FROM balance_history WHERE user_id = 'u1' ORDER BY id`,
    );
    assert.deepEqual(history.rows.map((h) => [h.change_type, h.amount, h.balance_before, h.balance_after, h.locked_before, h.locked_after, h.reference_id]), [
      ['deposit', '1000.00000000', '0.00000000', '1000.00000000', '0.00000000', '0.00000000', null],
      ['trade', '-269.00000000', '1000.00000000', '731.00000000', '0.00000000', '269.00000000', 'o-77'],
      ['trade', '0.10000000', '731.00000000', '731.10000000', '269.00000000', '269.00000000', null],
      ['trade', '0.20000000', '731.10000000', '731.30000000', '269.00000000', '269.00000000', null],
    ]);
    // The same deposit re-sent by the producer under a new queue entry is recognised by its eventId.
    const resent = { ...deposit, key: `entry:test:${++sequence}` };
    const again = await applyEntries(db, [resent]);
    assert.deepEqual(again.duplicates, [resent.key]);
    assert.equal((await db.query(`SELECT 1 FROM balance_history WHERE user_id = 'u1'`)).rows.length, 4);
  });

  it('isolates an entry the database itself refuses, and applies the rest', async () => {
    const { db } = get();
    await db.exec(`ALTER TABLE balances ADD CONSTRAINT test_balance_cap CHECK (available_balance < 1000000)`);
    try {
      const fine = [1, 2, 3].map((i) => entry({ type: 'BALANCE_UPDATE', data: { userId: 'u2', asset: 'BTC', availableChange: `${i}` } }));
      const huge = entry({ type: 'BALANCE_UPDATE', data: { userId: 'u2', asset: 'USD', availableChange: '5000000' } });
      const outcome = await isolateEntries(db, [fine[0]!, huge, fine[1]!, fine[2]!]);
      assert.deepEqual(outcome.applied, fine.map((e) => e.key));
      assert.equal(outcome.rejected.length, 1);
      assert.match(outcome.rejected[0]!.reason, /rejected by the database: .*"test_balance_cap"/);
      const { rows } = await db.query<{ available_balance: string }>(`SELECT available_balance::text FROM balances WHERE user_id = 'u2' AND asset = 'BTC'`);
      assert.equal(rows[0]!.available_balance, '6.00000000');
    } finally {
      await db.exec(`ALTER TABLE balances DROP CONSTRAINT test_balance_cap`);
    }
  });
});
