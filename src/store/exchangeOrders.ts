import type { Database, Queryable } from '../database/types.ts';
import { readAsUser } from './account.ts';
import { NotFoundError, InvalidArgumentError } from './errors.ts';
import { decodeCursor, pageOf, pageSize, type Page } from './pagination.ts';

export interface ExchangeOrder {
  id: string;
  userId: string;
  strategyId: string | null;
  exchange: string;
  symbol: string;
  side: string;
  orderType: string;
  timeInForce: string;
  quantity: string;
  price: string | null;
  stopPrice: string | null;
  filledQuantity: string;
  avgFillPrice: string | null;
  fees: string;
  status: string;
  reduceOnly: boolean;
  clientOrderId: string | null;
  externalOrderId: string | null;
  errorMessage: string | null;
  retryCount: number;
  createdAt: string;
  updatedAt: string;
}

export interface ExchangeOrderTransition {
  status: string;
  filledQuantity: string | null;
  fillQuantity: string | null;
  price: string | null;
  fees: string | null;
  details: unknown;
  at: string;
}

const STATUSES = ['pending', 'open', 'partially_filled', 'filled', 'cancelled', 'rejected', 'expired'] as const;
const iso = (d: Date | null) => (d ? d.toISOString() : null);
const COLUMNS = `id, user_id, strategy_id, exchange, symbol, side, order_type, time_in_force, quantity::text, price::text, stop_price::text,
  filled_quantity::text, avg_fill_price::text, fees::text, status, reduce_only, client_order_id, external_order_id, error_message, retry_count, created_at, updated_at`;
const toOrder = (r: Record<string, unknown>): ExchangeOrder => ({
  id: r.id as string,
  userId: r.user_id as string,
  strategyId: r.strategy_id as string | null,
  exchange: r.exchange as string,
  symbol: r.symbol as string,
  side: r.side as string,
  orderType: r.order_type as string,
  timeInForce: r.time_in_force as string,
  quantity: r.quantity as string,
  price: r.price as string | null,
  stopPrice: r.stop_price as string | null,
  filledQuantity: r.filled_quantity as string,
  avgFillPrice: r.avg_fill_price as string | null,
  fees: r.fees as string,
  status: r.status as string,
  reduceOnly: r.reduce_only as boolean,
  clientOrderId: r.client_order_id as string | null,
  externalOrderId: r.external_order_id as string | null,
  errorMessage: r.error_message as string | null,
  retryCount: Number(r.retry_count),
  createdAt: (r.created_at as Date).toISOString(),
  updatedAt: (r.updated_at as Date).toISOString(),
});

/** Orders sent to exchanges and brokers (docs/ORDERS.md): a user's, by strategy and status, in keyset pages, with their history. */
export class ExchangeOrderRepository {
  constructor(private readonly db: Database) {}

  /** A user's orders (or, without a user, every user's), newest first. */
  async list(filters: { userId?: string; strategyId?: string; status?: string; cursor?: string; limit?: number } = {}): Promise<Page<ExchangeOrder>> {
    if (filters.status !== undefined && !STATUSES.includes(filters.status as never)) throw new InvalidArgumentError('status', `must be one of ${STATUSES.join(', ')}`);
    const limit = pageSize(filters.limit);
    const after = decodeCursor(filters.cursor);
    const read = (q: Queryable) => q.query<Record<string, unknown>>(
      `SELECT ${COLUMNS} FROM exchange_orders
        WHERE ($1::text IS NULL OR user_id = $1) AND ($2::text IS NULL OR strategy_id = $2) AND ($3::text IS NULL OR status = $3)
          AND ($4::timestamptz IS NULL OR (created_at, id) < ($4, $5))
        ORDER BY created_at DESC, id DESC LIMIT $6`,
      [filters.userId ?? null, filters.strategyId ?? null, filters.status ?? null, after?.time ?? null, after?.id ?? '', limit + 1],
    );
    // A user's orders are read as that user (row-level security); every user's as the owner.
    const { rows } = filters.userId === undefined ? await read(this.db) : await readAsUser(this.db, filters.userId, read);
    return pageOf(rows, limit, (r) => ({ time: r.created_at as Date, id: r.id as string }), toOrder);
  }

  /** One order with every transition it went through, oldest first. */
  async get(id: string, userId = 'system'): Promise<ExchangeOrder & { history: ExchangeOrderTransition[] }> {
    return readAsUser(this.db, userId, (q) => this.read(q, id, userId));
  }

  private async read(q: Queryable, id: string, userId: string): Promise<ExchangeOrder & { history: ExchangeOrderTransition[] }> {
    const { rows } = await q.query(`SELECT ${COLUMNS} FROM exchange_orders WHERE user_id = $1 AND id = $2`, [userId, id]);
    if (!rows[0]) throw new NotFoundError('order', id);
    const { rows: history } = await q.query<{ status: string; filled_quantity: string | null; fill_quantity: string | null; price: string | null; fees: string | null; details: unknown; timestamp: Date }>(
      `SELECT status, filled_quantity::text, fill_quantity::text, price::text, fees::text, details, timestamp
         FROM order_history WHERE source = 'exchange' AND order_id = $1 AND details->>'userId' = $2 ORDER BY timestamp, id`,
      [id, userId],
    );
    return {
      ...toOrder(rows[0]),
      history: history.map((h) => ({ status: h.status, filledQuantity: h.filled_quantity, fillQuantity: h.fill_quantity, price: h.price, fees: h.fees, details: h.details, at: iso(h.timestamp)! })),
    };
  }
}
