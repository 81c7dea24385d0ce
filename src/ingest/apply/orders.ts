import type { Queryable } from '../../database/types.ts';
import type { OrderUpdate } from '../events/venue.ts';
import { add, cmp, describeFit } from './decimals.ts';
import { existingKeys } from './rows.ts';
import type { ApplyResult, Effects, Entry } from './types.ts';

interface OrderState {
  id: string;
  userId: string | null;
  market: string;
  side: string;
  orderType: string;
  timeInForce: string;
  price: string;
  quantity: string;
  filled: string;
  status: 'open' | 'filled' | 'cancelled' | 'rejected';
  createdAt: Date;
  filledAt: Date | null;
  cancelledAt: Date | null;
  isNew: boolean;
  changed: boolean;
}

interface HistoryRow {
  orderId: string;
  status: string;
  filled: string;
  fill: string | null;
  price: string;
  details: string | null;
  at: Date;
}

async function loadOrders(tx: Queryable, ids: string[]): Promise<Map<string, OrderState>> {
  const { rows } = await tx.query<{
    id: string;
    user_id: string | null;
    market: string;
    side: string;
    order_type: string;
    time_in_force: string;
    price: string;
    quantity: string;
    filled_quantity: string;
    status: OrderState['status'];
    created_at: Date;
    filled_at: Date | null;
    cancelled_at: Date | null;
  }>(
    `SELECT id, user_id, market, side, order_type, time_in_force, price::text, quantity::text, filled_quantity::text,
            status, created_at, filled_at, cancelled_at
       FROM orders WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE`,
    [ids],
  );
  return new Map(
    rows.map((r) => [
      r.id,
      {
        id: r.id,
        userId: r.user_id,
        market: r.market,
        side: r.side,
        orderType: r.order_type,
        timeInForce: r.time_in_force,
        price: r.price,
        quantity: r.quantity,
        filled: r.filled_quantity,
        status: r.status,
        createdAt: r.created_at,
        filledAt: r.filled_at,
        cancelledAt: r.cancelled_at,
        isNew: false,
        changed: false,
      },
    ]),
  );
}

/**
 * One ORDER_UPDATE against the order's current state. Returns the new state and the history
 * rows it appends, or the reason it is stale or impossible. Pure: the caller commits the result.
 */
export function transition(
  current: OrderState | undefined,
  d: OrderUpdate,
  at: Date,
  context: { markets: Set<string>; users: Set<string> },
): { state: OrderState; history: HistoryRow[] } | { reason: string } {
  let state = current ? { ...current } : undefined;
  const history: HistoryRow[] = [];
  const record = (s: OrderState, fill: string | null, details: Record<string, unknown> | null = null) =>
    history.push({ orderId: s.id, status: s.status, filled: s.filled, fill, price: s.price, details: details && JSON.stringify(details), at });

  if (d.market !== undefined && d.price !== undefined && d.quantity !== undefined && d.side !== undefined) {
    if (!state) {
      if (!context.markets.has(d.market)) return { reason: `unknown market ${d.market}` };
      if (d.userId !== undefined && !context.users.has(d.userId)) return { reason: `unknown user ${d.userId}` };
      const fit = describeFit('price', d.price) ?? describeFit('quantity', d.quantity);
      if (fit) return { reason: fit };
      state = {
        id: d.orderId,
        userId: d.userId ?? null,
        market: d.market,
        side: d.side,
        orderType: d.orderType ?? 'limit',
        timeInForce: d.timeInForce ?? 'GTC',
        price: d.price,
        quantity: d.quantity,
        filled: '0',
        status: 'open',
        createdAt: at,
        filledAt: null,
        cancelledAt: null,
        isNew: true,
        changed: true,
      };
      record(state, null, { event: 'created' });
    } else if (state.market !== d.market || state.side !== d.side || cmp(state.price, d.price) !== 0 || cmp(state.quantity, d.quantity) !== 0) {
      return {
        reason: `order ${d.orderId} exists as ${state.side} ${state.quantity} ${state.market} @ ${state.price}; ` +
          `this update says ${d.side} ${d.quantity} ${d.market} @ ${d.price}`,
      };
    }
  }
  if (!state) return { reason: `order ${d.orderId} does not exist (an update without market, price, quantity and side cannot create it)` };

  if (d.executedQty !== undefined && d.executedQty !== '0') {
    if (state.status !== 'open') return { reason: `order ${d.orderId} is ${state.status}; a fill of ${d.executedQty} is stale or impossible` };
    const filled = add(state.filled, d.executedQty);
    if (cmp(filled, state.quantity) > 0) {
      return { reason: `a fill of ${d.executedQty} takes order ${d.orderId} to ${filled}, above its quantity ${state.quantity}` };
    }
    const fit = describeFit('executedQty', d.executedQty);
    if (fit) return { reason: fit };
    state.filled = filled;
    if (cmp(filled, state.quantity) === 0) {
      state.status = 'filled';
      state.filledAt = at;
    }
    state.changed = true;
    record(state, d.executedQty);
  }

  if (d.status !== undefined && d.status !== state.status) {
    if (d.status === 'open') return { reason: `order ${d.orderId} is ${state.status}; it cannot become open again` };
    if (state.status !== 'open') return { reason: `order ${d.orderId} is already ${state.status}; it cannot become ${d.status}` };
    if (d.status === 'filled') {
      return { reason: `order ${d.orderId} cannot be marked filled: filled ${state.filled} of ${state.quantity}` };
    }
    if (d.status === 'rejected' && cmp(state.filled, '0') > 0) {
      return { reason: `order ${d.orderId} has fills (${state.filled}); it cannot be rejected` };
    }
    state.status = d.status;
    if (d.status === 'cancelled') state.cancelledAt = at;
    state.changed = true;
    record(state, null);
  } else if (d.status !== undefined && d.status === state.status && history.length === 0 && state.status !== 'open') {
    return { reason: `order ${d.orderId} is already ${state.status}` };
  }
  return { state, history };
}

/**
 * Applies ORDER_UPDATEs as a state machine: fills add up, an order is filled when its filled
 * quantity reaches its quantity, a cancel sets cancelled_at, and every transition appends to
 * order_history. Stale or impossible updates are rejected without touching the rest.
 */
export async function applyOrders(tx: Queryable, entries: Entry<'ORDER_UPDATE'>[], effects: Effects): Promise<ApplyResult> {
  const rejected: ApplyResult['rejected'] = [];
  const orders = await loadOrders(tx, [...new Set(entries.map((e) => e.event.data.orderId))]);
  const context = {
    markets: await existingKeys(tx, 'markets', entries.flatMap((e) => (e.event.data.market ? [e.event.data.market] : []))),
    users: await existingKeys(tx, 'users', entries.flatMap((e) => (e.event.data.userId ? [e.event.data.userId] : []))),
  };
  const history: HistoryRow[] = [];
  const now = new Date();
  for (const entry of entries) {
    const d = entry.event.data;
    const result = transition(orders.get(d.orderId), d, d.timestamp ?? now, context);
    if ('reason' in result) {
      rejected.push({ key: entry.key, reason: result.reason });
      continue;
    }
    orders.set(d.orderId, result.state);
    history.push(...result.history);
  }
  const changed = [...orders.values()].filter((o) => o.changed);
  const created = changed.filter((o) => o.isNew);
  const updated = changed.filter((o) => !o.isNew);
  const col = <T>(list: OrderState[], f: (o: OrderState) => T) => list.map(f);
  if (changed.length || history.length) {
    // One statement (one round trip): new orders, updated ones, and their history, in data-modifying CTEs.
    await tx.query(
      `WITH created AS (
         INSERT INTO orders (id, user_id, market, side, order_type, time_in_force, price, quantity, filled_quantity, status,
                             created_at, updated_at, filled_at, cancelled_at)
         SELECT u.id, u.user_id, u.market, u.side, u.order_type, u.tif, u.price, u.quantity, u.filled, u.status,
                u.created_at, now(), u.filled_at, u.cancelled_at
           FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::numeric[], $8::numeric[],
                       $9::numeric[], $10::text[], $11::timestamptz[], $12::timestamptz[], $13::timestamptz[])
                AS u(id, user_id, market, side, order_type, tif, price, quantity, filled, status, created_at, filled_at, cancelled_at)),
       updated AS (
         UPDATE orders o SET filled_quantity = u.filled, status = u.status, filled_at = u.filled_at,
                cancelled_at = u.cancelled_at, updated_at = now()
           FROM unnest($14::text[], $15::numeric[], $16::text[], $17::timestamptz[], $18::timestamptz[])
                AS u(id, filled, status, filled_at, cancelled_at)
          WHERE o.id = u.id)
       INSERT INTO order_history (source, order_id, status, filled_quantity, fill_quantity, price, details, timestamp)
       SELECT 'venue', * FROM unnest($19::text[], $20::text[], $21::numeric[], $22::numeric[], $23::numeric[], $24::jsonb[], $25::timestamptz[])`,
      [
        col(created, (o) => o.id),
        col(created, (o) => o.userId),
        col(created, (o) => o.market),
        col(created, (o) => o.side),
        col(created, (o) => o.orderType),
        col(created, (o) => o.timeInForce),
        col(created, (o) => o.price),
        col(created, (o) => o.quantity),
        col(created, (o) => o.filled),
        col(created, (o) => o.status),
        col(created, (o) => o.createdAt),
        col(created, (o) => o.filledAt),
        col(created, (o) => o.cancelledAt),
        col(updated, (o) => o.id),
        col(updated, (o) => o.filled),
        col(updated, (o) => o.status),
        col(updated, (o) => o.filledAt),
        col(updated, (o) => o.cancelledAt),
        history.map((h) => h.orderId),
        history.map((h) => h.status),
        history.map((h) => h.filled),
        history.map((h) => h.fill),
        history.map((h) => h.price),
        history.map((h) => h.details),
        history.map((h) => h.at),
      ],
    );
  }
  effects.orders.push(...changed.map((o) => ({ id: o.id, market: o.market, userId: o.userId, status: o.status, filledQuantity: o.filled })));
  return { rejected };
}
