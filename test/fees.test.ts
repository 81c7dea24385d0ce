import { before, it } from 'node:test';
import assert from 'node:assert/strict';
import Big from 'big.js';
import fc from 'fast-check';
import { MemoryBus } from '../src/bus/memory.ts';
import { migrate } from '../src/schema/migrator.ts';
import { seed } from '../src/schema/seed.ts';
import { eachBackend } from './helpers/backends.ts';
import type { Database, Queryable } from '../src/database/types.ts';
import { applyTrades } from '../src/ingest/apply/trades.ts';
import { applyBalances } from '../src/ingest/apply/balances.ts';
import { emptyEffects } from '../src/ingest/apply/types.ts';
import { depositMsg, ingest } from './helpers/ingest.ts';
import { applyEntries } from './helpers/apply.ts';
import { decodeEvent } from '../src/ingest/events/decode.ts';
import type { Entry } from '../src/ingest/apply/types.ts';

const entryOf = (m: { type: string; data: object }, id: string): Entry => {
  const decoded = decodeEvent(JSON.stringify(m));
  if (!decoded.ok) throw new Error(decoded.reason);
  return { key: `entry:fees:${id}`, event: decoded.event };
};

eachBackend('fees from the fee schedule', (get) => {
  let bus: MemoryBus;
  before(async () => {
    const { db } = get();
    await migrate(db);
    await seed(db);
    await db.query(`INSERT INTO users (id, email, fee_tier) VALUES ('vip1', 'v@example.com', 'vip'), ('plain', 'p@example.com', NULL), ('gold1', 'g@example.com', 'gold')`);
    await db.query(`INSERT INTO trading_fees (market, user_tier, maker_fee, taker_fee) VALUES ('TATA_INR', 'vip', 0.0002, 0.0005)`);
    bus = new MemoryBus();
  });
  const at = Date.now() - 60_000;
  const trade = (id: string, extra: object) => ({ type: 'TRADE_ADDED', data: { market: 'TATA_INR', id, price: '134.5', quantity: '2.123456', isBuyerMaker: true, timestamp: at, ...extra } });
  const fees = async (id: string) =>
    (await get().db.query<{ b: string; s: string }>(`SELECT trim_scale(trade_fee_buyer)::text AS b, trim_scale(trade_fee_seller)::text AS s FROM trades WHERE id = $1`, [id])).rows[0]!;

  it("charges each side its tier's maker or taker rate on the asset it receives, to 8 places, and keeps fees the engine sent", async () => {
    const { db } = get();
    await ingest(db, bus, [
      trade('f1', { buyerId: 'vip1', sellerId: 'plain' }), // buyer maker at vip 0.0002 on 2.123456 TATA; seller taker at basic 0.001 on 285.604832 INR
      trade('f2', { buyerId: 'plain', sellerId: 'vip1', isBuyerMaker: false }), // buyer taker basic; seller maker vip
      trade('f3', {}), // no counterparties: the default tier
      trade('f4', { buyerId: 'vip1', sellerId: 'plain', tradeFeeBuyer: '0.5', tradeFeeSeller: '0' }), // sent: kept
      trade('f5', { buyerId: 'gold1', sellerId: 'gold1' }), // no rate for the tier: nothing charged
    ]);
    assert.deepEqual(await fees('f1'), { b: '0.00042469', s: '0.28560483' });
    assert.deepEqual(await fees('f2'), { b: '0.00212346', s: '0.05712097' });
    assert.deepEqual(await fees('f3'), { b: '0.00212346', s: '0.28560483' });
    assert.deepEqual(await fees('f4'), { b: '0.5', s: '0' });
    assert.deepEqual(await fees('f5'), { b: '0', s: '0' });
    // The same message again is the same trade (its fees are computed the same), not a conflict.
    await ingest(db, bus, [trade('f1', { buyerId: 'vip1', sellerId: 'plain' })]);
    await ingest(db, bus, [trade('f1', { buyerId: 'vip1', sellerId: 'plain', tradeFeeBuyer: '0.00042469' })]);
    assert.deepEqual(await bus.listDead({ count: 10 }), [], 'the fee it was charged, sent later, agrees');
    await ingest(db, bus, [trade('f1', { buyerId: 'vip1', sellerId: 'plain', tradeFeeSeller: '0.3' })]);
    assert.deepEqual((await bus.listDead({ count: 10 })).map((l) => l.reason), [
      'trade TATA_INR f1 conflicts with the stored one with the same id: tradeFeeSeller differ (stored {"tradeFeeSeller":"0.28560483"}, received {"tradeFeeSeller":"0.3"})',
    ]);
    // The default tier is configuration.
    await db.query(`UPDATE system_config SET value = 'vip' WHERE key = 'fees.default_tier'`);
    await ingest(db, bus, [trade('f6', {})]);
    assert.deepEqual(await fees('f6'), { b: '0.00042469', s: '0.14280242' });
    await db.query(`UPDATE system_config SET value = 'basic' WHERE key = 'fees.default_tier'`);
    // A fee the schedule would charge that the trade cannot hold refuses the trade, saying why.
    await ingest(db, bus, [trade('huge', { price: '999999999999', quantity: '999999999999' })]);
    assert.ok((await bus.listDead({ count: 10 })).some((l) => /huge|the fee charged to the seller .* does not fit DECIMAL\(20,8\)/.test(l.reason)));
    assert.equal((await db.query(`SELECT 1 FROM trades WHERE id = 'huge'`)).rows.length, 0);
  });

  it('compares a repeat in the same batch with the fees the first will be charged, as a later batch does', async () => {
    const { db } = get();
    const entry = (m: { type: string; data: object }, i: number) => entryOf(m, String(i));
    const sides = { buyerId: 'vip1', sellerId: 'plain' };
    const outcome = await applyEntries(db, [
      trade('b1', sides), trade('b1', { ...sides, tradeFeeBuyer: '0.00042469' }), trade('b1', { ...sides, tradeFeeSeller: '0.28560483' }),
      trade('b2', sides), trade('b2', { ...sides, tradeFeeSeller: '0.3' }),
    ].map(entry));
    assert.deepEqual(outcome.rejected.map((r) => r.reason), [
      'trade TATA_INR b2 conflicts with an earlier message of the same batch with the same id: tradeFeeSeller differ (stored {"tradeFeeSeller":"0.28560483"}, received {"tradeFeeSeller":"0.3"})',
    ]);
    assert.deepEqual(await fees('b1'), { b: '0.00042469', s: '0.28560483' });
  });

  it("charges a fee change sent without its amount the fee its trade was charged, whether the trade is stored before, after or in the same batch", async () => {
    const { db } = get();
    await ingest(db, bus, [depositMsg('vip1', 'TATA', '10'), depositMsg('plain', 'INR', '1000'), depositMsg('plain', 'TATA', '0.0001')]);
    const sides = { buyerId: 'vip1', sellerId: 'plain' };
    const feeChange = (userId: string, asset: string, tradeId: string, extra: object = {}) =>
      ({ type: 'BALANCE_UPDATE', data: { userId, asset, changeType: 'fee', market: 'TATA_INR', referenceId: tradeId, ...extra } });
    const history = async (tradeId: string) =>
      (await db.query<{ user_id: string; asset: string; amount: string }>(
        `SELECT user_id, asset, trim_scale(amount)::text AS amount FROM balance_history WHERE change_type = 'fee' AND reference_id = $1 ORDER BY user_id`, [tradeId],
      )).rows;
    const pending = async () => (await db.query<{ trade_id: string; refused: string | null }>(`SELECT trade_id, refused FROM pending_fee_charges ORDER BY trade_id, refused`)).rows;
    // Stored before: charged at once (vip1 buys TATA as maker at 0.0002; plain sells for INR as taker at 0.001).
    await ingest(db, bus, [trade('c1', sides)]);
    await ingest(db, bus, [feeChange('vip1', 'TATA', 'c1'), feeChange('plain', 'INR', 'c1', { description: 'taker fee' })]);
    assert.deepEqual(await history('c1'), [{ user_id: 'plain', asset: 'INR', amount: '-0.28560483' }, { user_id: 'vip1', asset: 'TATA', amount: '-0.00042469' }]);
    // Sent before its trade: kept, then charged in the trade's transaction.
    await ingest(db, bus, [feeChange('vip1', 'TATA', 'c2')]);
    assert.deepEqual(await pending(), [{ trade_id: 'c2', refused: null }]);
    assert.deepEqual(await history('c2'), []);
    await ingest(db, bus, [trade('c2', sides)]);
    assert.deepEqual(await history('c2'), [{ user_id: 'vip1', asset: 'TATA', amount: '-0.00042469' }]);
    assert.deepEqual(await pending(), []);
    // In one batch, the change first.
    await applyEntries(db, [feeChange('plain', 'INR', 'c3'), trade('c3', sides)].map((m, i) => entryOf(m, `c3-${i}`)));
    assert.deepEqual(await history('c3'), [{ user_id: 'plain', asset: 'INR', amount: '-0.28560483' }]);
    // One the balance cannot pay, and one of a user who is not the side paying in the asset, keep the reason.
    await ingest(db, bus, [feeChange('plain', 'TATA', 'c4'), feeChange('vip1', 'INR', 'c4')]);
    await ingest(db, bus, [trade('c4', { buyerId: 'plain', sellerId: 'vip2', quantity: '2' })]);
    assert.deepEqual(await pending(), [
      { trade_id: 'c4', refused: 'fee of trade TATA_INR c4: vip1 is neither its buyer paying in the base asset nor its seller paying in the quote asset INR' },
      { trade_id: 'c4', refused: 'insufficient available TATA for plain: 0.00010000 - 0.002 would be -0.0019' },
    ]);
    // Sent after its trade, such a change is refused at once; a trade of the same id in another market is another trade.
    const before = (await bus.listDead({ count: 100 })).length;
    const reliance = { type: 'TRADE_ADDED', data: { ...trade('c5', sides).data, market: 'RELIANCE_INR', price: '2500' } };
    await ingest(db, bus, [trade('c5', sides), reliance]);
    await ingest(db, bus, [feeChange('vip1', 'INR', 'c5'), feeChange('plain', 'INR', 'c5', { market: 'RELIANCE_INR' })]);
    assert.deepEqual((await bus.listDead({ count: 100 })).slice(before).map((d) => d.reason), [
      'fee of trade TATA_INR c5: vip1 is neither its buyer paying in the base asset nor its seller paying in the quote asset INR',
    ]);
    assert.deepEqual(await history('c5'), [{ user_id: 'plain', asset: 'INR', amount: '-5.30864' }], "RELIANCE_INR c5's seller fee: 2500 × 2.123456 × 0.001 (basic taker)");
    const balances = (await db.query<{ user_id: string; asset: string; available: string }>(
      `SELECT user_id, asset, trim_scale(available_balance)::text AS available FROM balances WHERE user_id IN ('vip1', 'plain') ORDER BY 1, 2`,
    )).rows;
    assert.deepEqual(balances, [
      { user_id: 'plain', asset: 'INR', available: new Big('1000').minus('0.28560483').minus('0.28560483').minus('5.30864').toFixed() },
      { user_id: 'plain', asset: 'TATA', available: '0.0001' },
      { user_id: 'vip1', asset: 'TATA', available: new Big('10').minus('0.00042469').minus('0.00042469').toFixed() },
    ]);
    const refused = decodeEvent(JSON.stringify({ type: 'BALANCE_UPDATE', data: { userId: 'vip1', asset: 'TATA', changeType: 'fee' } }));
    assert.match(refused.ok ? '' : refused.reason, /a fee change without availableChange names its trade: market and referenceId/);
    await db.query(`DELETE FROM pending_fee_charges`);
  });

  it('computes the same fees as an independent calculation for generated trades', async () => {
    const { db } = get();
    const cases = fc.sample(fc.record({
      price: fc.integer({ min: 1, max: 10_000_000 }).map((u) => (u / 100).toFixed(2)),
      quantity: fc.integer({ min: 1, max: 100_000_000 }).map((u) => (u / 1_000_000).toFixed(6)),
      isBuyerMaker: fc.boolean(),
      buyer: fc.constantFrom('vip1', 'plain'),
      seller: fc.constantFrom('vip1', 'plain'),
    }), { numRuns: 200, seed: 3 });
    await ingest(db, bus, cases.map((c, i) => trade(`g${i}`, { price: c.price, quantity: c.quantity, isBuyerMaker: c.isBuyerMaker, buyerId: c.buyer, sellerId: c.seller })));
    const rate = (user: string, maker: boolean) => (user === 'vip1' ? (maker ? '0.0002' : '0.0005') : '0.001');
    const round8 = (x: Big) => x.round(8, 1).toFixed();
    for (const [i, c] of cases.entries()) {
      assert.deepEqual(await fees(`g${i}`), {
        b: round8(new Big(c.quantity).times(rate(c.buyer, c.isBuyerMaker))),
        s: round8(new Big(c.price).times(c.quantity).times(rate(c.seller, !c.isBuyerMaker))),
      }, `trade ${i}`);
    }
  });
});

// Two connections at once: the server only (the embedded database runs one transaction at a time).
eachBackend('a fee change and its trade applied at once by two workers', (get) => {
  let db: Database;
  before(async () => {
    db = get().db;
    await migrate(db);
    await seed(db);
    await db.query(`INSERT INTO users (id, email) VALUES ('w1', 'w1@example.com'), ('w2', 'w2@example.com')`);
    await db.transaction((tx) => applyBalances(tx, [entryOf(depositMsg('w1', 'TATA', '10'), 'race-deposit') as Entry<'BALANCE_UPDATE'>], emptyEffects()));
  });

  const tradeEntry = (id: string) => entryOf({ type: 'TRADE_ADDED', data: { market: 'TATA_INR', id, price: '100', quantity: '2', isBuyerMaker: false, timestamp: Date.now() - 1000, buyerId: 'w1', sellerId: 'w2' } }, `race-trade-${id}`);
  const feeEntry = (id: string) => entryOf({ type: 'BALANCE_UPDATE', data: { userId: 'w1', asset: 'TATA', changeType: 'fee', market: 'TATA_INR', referenceId: id } }, `race-fee-${id}`);
  const charged = async (id: string) =>
    (await db.query<{ amount: string }>(`SELECT trim_scale(amount)::text AS amount FROM balance_history WHERE change_type = 'fee' AND reference_id = $1`, [id])).rows.map((r) => r.amount);

  // Each worker's transaction is held open after its applier ran, while the other one runs.
  for (const first of ['trade', 'fee'] as const) {
    it(`charges the fee once when the ${first} is applied first and commits while the other waits`, async () => {
      const id = `race-${first}`;
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      let ran!: () => void;
      const applied = new Promise<void>((r) => (ran = r));
      const apply = (which: 'trade' | 'fee') => (tx: Queryable) =>
        which === 'trade' ? applyTrades(tx, [tradeEntry(id) as Entry<'TRADE_ADDED'>], emptyEffects()) : applyBalances(tx, [feeEntry(id) as Entry<'BALANCE_UPDATE'>], emptyEffects());
      const held = db.transaction(async (tx) => {
        await apply(first)(tx);
        ran();
        await gate;
      });
      await applied;
      const second = db.transaction((tx) => apply(first === 'trade' ? 'fee' : 'trade')(tx));
      await new Promise((r) => setTimeout(r, 200));
      release();
      await Promise.all([held, second]);
      assert.deepEqual(await charged(id), ['-0.002'], 'the taker fee of 2 TATA at 0.001, charged once');
      assert.equal((await db.query(`SELECT 1 FROM pending_fee_charges WHERE trade_id = $1`, [id])).rows.length, 0);
    });
  }
}, { only: ['postgres'] });
