import { before, it } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryBus } from '../src/bus/memory.ts';
import { migrate } from '../src/schema/migrator.ts';
import { seed } from '../src/schema/seed.ts';
import { storeOver, type Store } from '../src/store/store.ts';
import { eachBackend } from './helpers/backends.ts';
import { ingest } from './helpers/ingest.ts';

eachBackend('orders sent to exchanges and brokers', (get) => {
  let store: Store;
  let bus: MemoryBus;
  before(async () => {
    const { db } = get();
    await migrate(db);
    await seed(db);
    await db.query(`INSERT INTO users (id, email) VALUES ('olga', 'o@example.com')`);
    bus = new MemoryBus();
    store = storeOver(db, bus);
  });
  const t0 = Date.now() - 3_600_000;
  const ev = (event: string, orderId: string, at: number, extra: object = {}) => ({ type: 'EXCHANGE_ORDER', data: { event, orderId, userId: 'olga', timestamp: at, ...extra } });

  it("applies an order's whole life as a state machine, with its history and its fills linked to the own fills", async () => {
    const { db } = get();
    await ingest(db, bus, [
      ev('placed', 'sl-1', t0, { strategyId: 'ema_crossover', exchange: 'NSE', symbol: 'NIFTY', side: 'SELL', orderType: 'SL-M', quantity: '75', stopPrice: '23900', reduceOnly: true, clientOrderId: 'c-1' }),
      ev('acknowledged', 'sl-1', t0 + 100, { externalOrderId: '230918000123' }),
      ev('partially_filled', 'sl-1', t0 + 200, { fillQuantity: '25', fillPrice: '23890', fee: '10', tradeId: 'x-1' }),
      ev('partially_filled', 'sl-1', t0 + 300, { fillQuantity: '25', fillPrice: '23880', fee: '10', tradeId: 'x-2' }),
      ev('filled', 'sl-1', t0 + 400, { fillQuantity: '25', fillPrice: '23870', fee: '10', tradeId: 'x-3' }),
    ]);
    const order = await store.exchangeOrders.get('sl-1', 'olga');
    assert.deepEqual([order.status, order.orderType, order.filledQuantity, order.avgFillPrice, order.fees, order.externalOrderId, order.reduceOnly, order.strategyId],
      ['filled', 'sl_m', '75', '23880', '30', '230918000123', true, 'ema_crossover']);
    assert.deepEqual(order.history.map((h) => [h.status, h.filledQuantity, h.fillQuantity, h.price]), [
      ['pending', '0', null, null], ['open', '0', null, null], ['partially_filled', '25', '25', '23890'], ['partially_filled', '50', '25', '23880'], ['filled', '75', '25', '23870'],
    ]);
    const fills = await db.query<{ trade_id: string; order_id: string; quantity: string; commission: string; strategy_id: string }>(
      `SELECT trade_id, order_id, quantity::text, commission::text, strategy_id FROM trades_executed WHERE user_id = 'olga' ORDER BY trade_id`,
    );
    assert.deepEqual(fills.rows.map((f) => [f.trade_id, f.order_id, f.quantity, f.commission, f.strategy_id]), [
      ['x-1', '230918000123', '25', '10', 'ema_crossover'], ['x-2', '230918000123', '25', '10', 'ema_crossover'], ['x-3', '230918000123', '25', '10', 'ema_crossover'],
    ]);
  });

  it('dead-letters unknown orders, impossible transitions, overfills and a second placement; rejections and cancellations end an order', async () => {
    const { db } = get();
    const place = (id: string, at: number) => ev('placed', id, at, { exchange: 'binance', symbol: 'BTCUSDT', side: 'buy', orderType: 'limit', quantity: '2', price: '67000' });
    await ingest(db, bus, [
      place('l-1', t0), ev('rejected', 'l-1', t0 + 1, { error: 'insufficient margin' }),
      place('l-2', t0), ev('acknowledged', 'l-2', t0 + 1), ev('cancelled', 'l-2', t0 + 2),
      place('l-3', t0), ev('acknowledged', 'l-3', t0 + 1), ev('partially_filled', 'l-3', t0 + 2, { fillQuantity: '1', fillPrice: '67000' }), ev('expired', 'l-3', t0 + 3),
      ev('filled', 'l-1', t0 + 5, { fillQuantity: '2', fillPrice: '67000' }), // rejected already
      ev('acknowledged', 'ghost', t0 + 5), // never placed
      place('l-2', t0 + 6), // placed again
      place('l-4', t0), ev('partially_filled', 'l-4', t0 + 1, { fillQuantity: '3', fillPrice: '67000' }), // more than ordered
      ev('filled', 'l-4', t0 + 2), // filled 0 of 2
      ev('expired', 'l-4', t0 + 3), // pending cannot expire
    ]);
    const status = async (id: string) => (await store.exchangeOrders.get(id, 'olga')).status;
    assert.deepEqual([await status('l-1'), await status('l-2'), await status('l-3'), await status('l-4')], ['rejected', 'cancelled', 'expired', 'pending']);
    assert.equal((await store.exchangeOrders.get('l-1', 'olga')).errorMessage, 'insufficient margin');
    const reasons = (await bus.listDead({ count: 100 })).map((l) => l.reason).sort();
    assert.deepEqual(reasons, [
      'order l-1 is rejected: it cannot be filled',
      'order l-2 was placed already (it is cancelled)',
      'order l-4 is filled 0 of 2: not filled',
      'order l-4 is pending: it cannot be expired',
      'order l-4 would be filled 3 of 2',
      'unknown order ghost of user olga: it was never placed',
    ]);
    // Read back per status and strategy, in keyset pages.
    const first = await store.exchangeOrders.list({ userId: 'olga', limit: 2 });
    const rest = await store.exchangeOrders.list({ userId: 'olga', cursor: first.nextCursor!, limit: 10 });
    assert.equal(new Set([...first.items, ...rest.items].map((o) => o.id)).size, 5);
    assert.deepEqual((await store.exchangeOrders.list({ userId: 'olga', strategyId: 'ema_crossover' })).items.map((o) => o.id), ['sl-1']);
    assert.deepEqual((await store.exchangeOrders.list({ userId: 'olga', status: 'expired' })).items.map((o) => o.id), ['l-3']);
  });

  it("counts a fill sent again once, refuses one that changed, and stores a trade once whether the order or the exchange's feed reports it first", async () => {
    const { db } = get();
    const place = (id: string) => ev('placed', id, t0, { exchange: 'binance', symbol: 'ETHUSDT', side: 'buy', orderType: 'limit', quantity: '2', price: '3000' });
    const fill = (id: string, tradeId: string, quantity: string, price: string, at: number) => ev('partially_filled', id, at, { fillQuantity: quantity, fillPrice: price, tradeId, externalOrderId: `X-${id}` });
    await ingest(db, bus, [
      place('r-1'), ev('acknowledged', 'r-1', t0 + 1, { externalOrderId: 'X-r-1' }),
      fill('r-1', 'T1', '1', '3000', t0 + 2),
      fill('r-1', 'T1', '1', '3000', t0 + 2), // the same fill again
      fill('r-1', 'T1', '1', '3001', t0 + 3), // the same trade id with another price
      // The exchange's feed reports T2 first, at its own time; then the order's fill of it.
      { type: 'FILL', data: { exchange: 'binance', symbol: 'ETHUSDT', orderId: 'X-r-1', tradeId: 'T2', side: 'buy', price: '3000', quantity: '1', userId: 'olga', timestamp: t0 + 4 } },
      fill('r-1', 'T2', '1', '3000', t0 + 5),
    ]);
    const order = await store.exchangeOrders.get('r-1', 'olga');
    assert.deepEqual([order.filledQuantity, order.status], ['2', 'filled'], 'two fills, each counted once');
    const own = await db.query<{ trade_id: string }>(`SELECT trade_id FROM trades_executed WHERE order_id = 'X-r-1' ORDER BY trade_id`);
    assert.deepEqual(own.rows.map((r) => r.trade_id), ['T1', 'T2'], 'each trade stored once');
    const reasons = (await bus.listDead({ count: 100 })).map((l) => l.reason);
    assert.ok(reasons.includes('trade T1 of order r-1 was applied as 1 @ 3000, not 1 @ 3001'), reasons.join('\n'));
  });
});
