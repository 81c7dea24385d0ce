import Big from 'big.js';
import type { Queryable } from '../../database/types.ts';
import type { ExchangeOrderEvent } from '../events/exchangeOrders.ts';
import { existingKeys } from './rows.ts';
import { fillKey } from './feeds.ts';
import type { ApplyResult, Entry } from './types.ts';

type Status = 'pending' | 'open' | 'partially_filled' | 'filled' | 'cancelled' | 'rejected' | 'expired';

/** The statuses each event may come from (docs/ORDERS.md); any other is an impossible transition. */
const FROM: Record<Exclude<ExchangeOrderEvent['event'], 'placed'>, readonly Status[]> = {
  acknowledged: ['pending'],
  partially_filled: ['pending', 'open', 'partially_filled'],
  filled: ['pending', 'open', 'partially_filled'],
  cancelled: ['pending', 'open', 'partially_filled'],
  rejected: ['pending', 'open'],
  expired: ['open', 'partially_filled'],
};

interface Order {
  userId: string;
  id: string;
  isNew: boolean;
  changed: boolean;
  status: Status;
  quantity: string;
  filled: Big;
  quote: Big;
  fees: Big;
  externalOrderId: string | null;
  submittedAt: Date | null;
  filledAt: Date | null;
  cancelledAt: Date | null;
  error: string | null;
  retryCount: number;
  placed?: ExchangeOrderEvent;
  strategyId: string | null;
  exchange: string;
  symbol: string;
  side: string;
}

interface History {
  orderId: string;
  status: Status;
  filled: string;
  fill: string | null;
  price: string | null;
  fee: string | null;
  details: string;
  at: Date;
}

interface Fill {
  order: Order;
  tradeId: string;
  quantity: string;
  price: string;
  fee: string;
  feeAsset: string | null;
  at: Date;
}

const keyOf = (userId: string, id: string) => `${userId}\u0000${id}`;

/**
 * Orders sent to exchanges and brokers (seeds 001-004), applied in emission order per order: a
 * state machine over exchange_orders, every transition appended to order_history, every fill
 * with a trade id stored as an own fill (trades_executed) linked to the order. An unknown order,
 * an order placed twice, an impossible transition or an overfill is refused with the reason.
 */
export async function applyExchangeOrders(tx: Queryable, entries: Entry<'EXCHANGE_ORDER'>[]): Promise<ApplyResult> {
  const rejected: ApplyResult['rejected'] = [];
  const events = entries.map((e) => ({ entry: e, d: e.event.data as ExchangeOrderEvent }));
  const userOf = (d: ExchangeOrderEvent) => d.userId ?? 'system';
  const pairs = [...new Map(events.map(({ d }) => [keyOf(userOf(d), d.orderId), [userOf(d), d.orderId] as const])).values()];
  const { rows } = await tx.query<{ user_id: string; id: string; status: Status; quantity: string; filled: string; quote: string; fees: string; external_order_id: string | null;
    submitted_at: Date | null; filled_at: Date | null; cancelled_at: Date | null; error_message: string | null; retry_count: number; strategy_id: string | null; exchange: string; symbol: string; side: string }>(
    `SELECT o.user_id, o.id, o.status, o.quantity::text, o.filled_quantity::text AS filled, o.cumulative_quote_quantity::text AS quote, o.fees::text,
            o.external_order_id, o.submitted_at, o.filled_at, o.cancelled_at, o.error_message, o.retry_count, o.strategy_id, o.exchange, o.symbol, o.side
       FROM exchange_orders o JOIN unnest($1::text[], $2::text[]) AS k(user_id, id) ON o.user_id = k.user_id AND o.id = k.id
      ORDER BY o.user_id, o.id FOR UPDATE OF o`,
    [pairs.map((p) => p[0]), pairs.map((p) => p[1])],
  );
  const orders = new Map<string, Order>(rows.map((r) => [keyOf(r.user_id, r.id), {
    userId: r.user_id, id: r.id, isNew: false, changed: false, status: r.status, quantity: r.quantity, filled: new Big(r.filled), quote: new Big(r.quote),
    fees: new Big(r.fees), externalOrderId: r.external_order_id, submittedAt: r.submitted_at, filledAt: r.filled_at, cancelledAt: r.cancelled_at,
    error: r.error_message, retryCount: Number(r.retry_count), strategyId: r.strategy_id, exchange: r.exchange, symbol: r.symbol, side: r.side,
  }]));
  // The trade ids each order's fills were applied with: a fill sent again is not counted again.
  const { rows: seen } = rows.length
    ? await tx.query<{ user_id: string; order_id: string; trade_id: string; fill: string; price: string }>(
        `SELECT details->>'userId' AS user_id, order_id, details->>'tradeId' AS trade_id, fill_quantity::text AS fill, price::text AS price
           FROM order_history WHERE source = 'exchange' AND order_id = ANY($1::text[]) AND details ? 'tradeId'`,
        [rows.map((r) => r.id)],
      )
    : { rows: [] };
  const appliedFills = new Map(seen.map((f) => [`${keyOf(f.user_id, f.order_id)}\u0000${f.trade_id}`, `${new Big(f.fill).toFixed()} @ ${new Big(f.price).toFixed()}`]));
  const users = await existingKeys(tx, 'users', events.filter(({ d }) => d.event === 'placed').map(({ d }) => userOf(d)));
  const strategies = await existingKeys(tx, 'strategies', events.flatMap(({ d }) => (d.event === 'placed' && d.strategyId ? [d.strategyId] : [])));
  const history: History[] = [];
  const fills: Fill[] = [];
  for (const { entry, d } of events) {
    const key = keyOf(userOf(d), d.orderId);
    const order = orders.get(key);
    const refuse = (reason: string) => rejected.push({ key: entry.key, reason });
    if (d.event === 'placed') {
      if (order) { refuse(`order ${d.orderId} was placed already (it is ${order.status})`); continue; }
      if (!users.has(userOf(d))) { refuse(`unknown user ${userOf(d)}`); continue; }
      if (d.strategyId && !strategies.has(d.strategyId)) { refuse(`unknown strategy ${d.strategyId}`); continue; }
      const placed: Order = {
        userId: userOf(d), id: d.orderId, isNew: true, changed: true, status: 'pending', quantity: d.quantity!, filled: new Big(0), quote: new Big(0), fees: new Big(0),
        externalOrderId: d.externalOrderId ?? null, submittedAt: null, filledAt: null, cancelledAt: null, error: null, retryCount: d.retryCount ?? 0, placed: d,
        strategyId: d.strategyId ?? null, exchange: d.exchange!, symbol: d.symbol!, side: d.side!,
      };
      orders.set(key, placed);
      history.push({ orderId: d.orderId, status: 'pending', filled: '0', fill: null, price: d.price ?? null, fee: null, details: JSON.stringify({ event: 'placed', userId: userOf(d) }), at: d.timestamp });
      continue;
    }
    if (!order) { refuse(`unknown order ${d.orderId} of user ${userOf(d)}: it was never placed`); continue; }
    if (d.tradeId && d.fillQuantity !== undefined) {
      const fillKeyOf = `${key}\u0000${d.tradeId}`;
      const before = appliedFills.get(fillKeyOf);
      const now = `${new Big(d.fillQuantity).toFixed()} @ ${new Big(d.fillPrice!).toFixed()}`;
      if (before === now) continue; // the same fill sent again: applied once
      if (before !== undefined) { refuse(`trade ${d.tradeId} of order ${d.orderId} was applied as ${before}, not ${now}`); continue; }
      appliedFills.set(fillKeyOf, now);
    }
    if (!FROM[d.event].includes(order.status)) { refuse(`order ${d.orderId} is ${order.status}: it cannot be ${d.event}`); continue; }
    let next: Status = d.event === 'acknowledged' ? 'open' : d.event;
    let fill: Fill | null = null;
    if (d.fillQuantity !== undefined) {
      const filled = order.filled.plus(d.fillQuantity);
      if (filled.gt(order.quantity)) { refuse(`order ${d.orderId} would be filled ${filled.toFixed()} of ${order.quantity}`); continue; }
      if (d.tradeId) fill = { order, tradeId: d.tradeId, quantity: d.fillQuantity, price: d.fillPrice!, fee: d.fee ?? '0', feeAsset: d.feeAsset ?? null, at: d.timestamp };
    } else if (d.event === 'partially_filled') { refuse(`a partial fill of order ${d.orderId} has no fillQuantity and fillPrice`); continue; }
    const filled = d.fillQuantity === undefined ? order.filled : order.filled.plus(d.fillQuantity);
    if (d.event === 'filled' && !filled.eq(order.quantity)) { refuse(`order ${d.orderId} is filled ${filled.toFixed()} of ${order.quantity}: not filled`); continue; }
    if (d.event === 'partially_filled' && filled.eq(order.quantity)) next = 'filled';
    if (d.fillQuantity !== undefined) {
      order.filled = filled;
      order.quote = order.quote.plus(new Big(d.fillQuantity).times(d.fillPrice!));
    }
    if (d.fee !== undefined) order.fees = order.fees.plus(d.fee);
    if (fill) fills.push(fill);
    order.status = next;
    order.changed = true;
    if (d.externalOrderId) order.externalOrderId = d.externalOrderId;
    if (d.retryCount !== undefined) order.retryCount = d.retryCount;
    if (d.event === 'acknowledged') order.submittedAt = d.timestamp;
    if (next === 'filled') order.filledAt = d.timestamp;
    if (next === 'cancelled' || next === 'expired') order.cancelledAt = d.timestamp;
    if (d.error) order.error = d.error;
    history.push({
      orderId: d.orderId, status: next, filled: order.filled.toFixed(), fill: d.fillQuantity ?? null, price: d.fillPrice ?? null, fee: d.fee ?? null,
      details: JSON.stringify({ event: d.event, userId: order.userId, ...(d.externalOrderId ? { externalOrderId: d.externalOrderId } : {}), ...(d.tradeId ? { tradeId: d.tradeId } : {}), ...(d.error ? { error: d.error } : {}) }),
      at: d.timestamp,
    });
  }
  const created = [...orders.values()].filter((o) => o.isNew);
  if (created.length) {
    const p = (f: (d: ExchangeOrderEvent) => unknown) => created.map((o) => f(o.placed!) ?? null);
    await tx.query(
      `INSERT INTO exchange_orders (user_id, id, account_id, strategy_id, strategy_trade_id, exchange, symbol, side, order_type, time_in_force, quantity, price,
                                    stop_price, reduce_only, client_order_id, external_order_id, retry_count, metadata, created_at, updated_at)
       SELECT u.user_id, u.id, u.account_id, u.strategy_id, u.strategy_trade_id, u.exchange, u.symbol, u.side, u.order_type, coalesce(u.tif, 'GTC'), u.quantity,
              u.price, u.stop_price, coalesce(u.reduce_only, false), u.client_order_id, u.external_order_id, coalesce(u.retry_count, 0), coalesce(u.metadata, '{}'),
              u.created_at, u.created_at
         FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::numeric[],
                     $12::numeric[], $13::numeric[], $14::boolean[], $15::text[], $16::text[], $17::int[], $18::jsonb[], $19::timestamptz[])
              AS u(user_id, id, account_id, strategy_id, strategy_trade_id, exchange, symbol, side, order_type, tif, quantity, price, stop_price, reduce_only,
                   client_order_id, external_order_id, retry_count, metadata, created_at)`,
      [created.map((o) => o.userId), created.map((o) => o.id), p((d) => d.accountId), p((d) => d.strategyId), p((d) => d.strategyTradeId), p((d) => d.exchange),
        p((d) => d.symbol), p((d) => d.side), p((d) => d.orderType), p((d) => d.timeInForce), p((d) => d.quantity), p((d) => d.price), p((d) => d.stopPrice),
        p((d) => d.reduceOnly), p((d) => d.clientOrderId), p((d) => d.externalOrderId), p((d) => d.retryCount), p((d) => d.metadata), p((d) => d.timestamp)],
    );
  }
  const changed = [...orders.values()].filter((o) => o.changed);
  if (changed.length) {
    const c = <T>(f: (o: Order) => T) => changed.map(f);
    await tx.query(
      `UPDATE exchange_orders o SET status = u.status, filled_quantity = u.filled, cumulative_quote_quantity = u.quote,
              avg_fill_price = CASE WHEN u.filled > 0 THEN trim_scale(u.quote / u.filled) END, fees = u.fees, external_order_id = u.external_order_id,
              submitted_at = u.submitted_at, filled_at = u.filled_at, cancelled_at = u.cancelled_at, error_message = u.error, retry_count = u.retry_count,
              updated_at = now()
         FROM unnest($1::text[], $2::text[], $3::text[], $4::numeric[], $5::numeric[], $6::numeric[], $7::text[], $8::timestamptz[], $9::timestamptz[],
                     $10::timestamptz[], $11::text[], $12::int[])
              AS u(user_id, id, status, filled, quote, fees, external_order_id, submitted_at, filled_at, cancelled_at, error, retry_count)
        WHERE o.user_id = u.user_id AND o.id = u.id`,
      [c((o) => o.userId), c((o) => o.id), c((o) => o.status), c((o) => o.filled.toFixed()), c((o) => o.quote.toFixed()), c((o) => o.fees.toFixed()),
        c((o) => o.externalOrderId), c((o) => o.submittedAt), c((o) => o.filledAt), c((o) => o.cancelledAt), c((o) => o.error), c((o) => o.retryCount)],
    );
  }
  if (history.length) {
    await tx.query(
      `INSERT INTO order_history (source, order_id, status, filled_quantity, fill_quantity, price, fees, details, timestamp)
       SELECT 'exchange', * FROM unnest($1::text[], $2::text[], $3::numeric[], $4::numeric[], $5::numeric[], $6::numeric[], $7::jsonb[], $8::timestamptz[])`,
      [history.map((h) => h.orderId), history.map((h) => h.status), history.map((h) => h.filled), history.map((h) => h.fill), history.map((h) => h.price),
        history.map((h) => h.fee), history.map((h) => h.details), history.map((h) => h.at)],
    );
  }
  // Linked to the own fills under the exchange's order id, claiming the same identity a FILL
  // from the exchange's feed claims: the trade is stored once whichever reports it first.
  const linkable = fills.filter((f) => f.order.externalOrderId !== null);
  if (linkable.length) {
    const keyFor = (f: Fill) => fillKey({ exchange: f.order.exchange, symbol: f.order.symbol, orderId: f.order.externalOrderId!, tradeId: f.tradeId });
    const { rows: fresh } = await tx.query<{ key: string }>(
      `INSERT INTO ingest_identities (kind, key, occurred_at) SELECT 'fill', u.key, u.at FROM unnest($1::text[], $2::timestamptz[]) AS u(key, at)
       ON CONFLICT DO NOTHING RETURNING key`,
      [linkable.map(keyFor), linkable.map((f) => f.at)],
    );
    const claimed = new Set(fresh.map((r) => r.key));
    const own = linkable.filter((f) => claimed.has(keyFor(f)));
    if (own.length) {
      await tx.query(
        `INSERT INTO trades_executed (user_id, exchange, symbol, order_id, trade_id, side, quantity, price, quote_quantity, commission, commission_asset, strategy_id, executed_at)
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::numeric[], $8::numeric[], $9::numeric[], $10::numeric[],
                              $11::text[], $12::text[], $13::timestamptz[])`,
        [own.map((f) => f.order.userId), own.map((f) => f.order.exchange), own.map((f) => f.order.symbol), own.map((f) => f.order.externalOrderId!),
          own.map((f) => f.tradeId), own.map((f) => f.order.side), own.map((f) => f.quantity), own.map((f) => f.price),
          own.map((f) => new Big(f.quantity).times(f.price).toFixed()), own.map((f) => f.fee), own.map((f) => f.feeAsset), own.map((f) => f.order.strategyId),
          own.map((f) => f.at)],
      );
    }
  }
  return { rejected };
}
