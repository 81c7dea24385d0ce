import type { Database, Queryable } from '../database/types.ts';
import { CACHE_GROUPS, type Cache } from '../cache/cache.ts';
import { InvalidArgumentError, NotFoundError } from './errors.ts';
import { ACCOUNT_READER_ROLE, scopedDatabase } from './scoped.ts';
import { decodeCursor, pageOf, pageSize, type Page } from './pagination.ts';

export interface Order {
  id: string;
  userId: string | null;
  market: string;
  side: string;
  type: string;
  timeInForce: string;
  price: string;
  quantity: string;
  filledQuantity: string;
  remainingQuantity: string;
  status: string;
  createdAt: string;
  updatedAt: string;
  filledAt: string | null;
  cancelledAt: string | null;
}

export interface OrderEvent {
  status: string;
  filledQuantity: string | null;
  fillQuantity: string | null;
  price: string | null;
  details: unknown;
  time: string;
}

export interface Balance {
  asset: string;
  available: string;
  locked: string;
  total: string;
  updatedAt: string;
}

export interface BalanceChange {
  id: string;
  asset: string;
  changeType: string;
  amount: string;
  before: string;
  after: string;
  lockedChange: string | null;
  lockedBefore: string | null;
  lockedAfter: string | null;
  referenceId: string | null;
  description: string | null;
  time: string;
}

export interface Position {
  id: string;
  exchange: string;
  symbol: string;
  side: string;
  quantity: string;
  entryPrice: string;
  markPrice: string | null;
  unrealizedPnl: string;
  realizedPnl: string;
  status: string;
  strategyId: string | null;
  openedAt: string;
  closedAt: string | null;
}

export interface StrategyTrade {
  id: string;
  strategyId: string;
  symbol: string;
  exchange: string | null;
  side: string;
  type: string;
  entryPrice: string;
  exitPrice: string | null;
  quantity: string;
  pnl: string | null;
  pnlPercent: string | null;
  fees: string;
  status: string;
  entryTime: string;
  exitTime: string | null;
  exitReason: string | null;
}

export interface TradeHistoryFilters {
  strategyId?: string;
  symbol?: string;
  status?: 'open' | 'closed' | 'cancelled' | 'partially_filled' | 'all';
  from?: Date;
  to?: Date;
  cursor?: string;
  limit?: number;
}

const ORDER_COLUMNS = `id, user_id, market, side, order_type, time_in_force, price::text, quantity::text, filled_quantity::text,
  remaining_quantity::text, status, created_at, updated_at, filled_at, cancelled_at`;

type OrderRow = Record<string, string | Date | null>;
const iso = (d: unknown) => (d instanceof Date ? d.toISOString() : null);
const toOrder = (r: OrderRow): Order => ({
  id: r.id as string,
  userId: r.user_id as string | null,
  market: r.market as string,
  side: r.side as string,
  type: r.order_type as string,
  timeInForce: r.time_in_force as string,
  price: r.price as string,
  quantity: r.quantity as string,
  filledQuantity: r.filled_quantity as string,
  remainingQuantity: r.remaining_quantity as string,
  status: r.status as string,
  createdAt: iso(r.created_at)!,
  updatedAt: iso(r.updated_at)!,
  filledAt: iso(r.filled_at),
  cancelledAt: iso(r.cancelled_at),
});

export { ACCOUNT_READER_ROLE } from './scoped.ts';

/**
 * Runs `fn` as the account reader for `userId` (row-level security, migrations 007, 018 and 021),
 * so that a query that forgot its user filter still returns only that user's rows; plainly where
 * the server cannot (the embedded database).
 */
export function readAsUser<T>(db: Database, userId: string, fn: (q: Queryable) => Promise<T>): Promise<T> {
  return scopedDatabase(db, ACCOUNT_READER_ROLE, userId).transaction(fn);
}

/**
 * One user's account data. Every query filters by the user, and where the server can enforce
 * it, runs as the row-level-security role with the user set (migration 007), so that a query
 * without its filter would still return only that user's rows.
 */
export class AccountRepository {
  constructor(
    private readonly db: Database,
    private readonly cache: Cache,
  ) {}

  /** Runs `fn` as the account reader for `userId` (readAsUser). */
  asUser<T>(userId: string, fn: (q: Queryable) => Promise<T>): Promise<T> {
    return readAsUser(this.db, userId, fn);
  }

  /** Seed 000's getOpenOrders: open orders, newest first. */
  async openOrders(userId: string, market?: string): Promise<Order[]> {
    return this.cache.read(CACHE_GROUPS.openOrders(userId), market ?? '', 60_000, () =>
      this.asUser(userId, async (q) => {
        const { rows } = await q.query<OrderRow>(
          `SELECT ${ORDER_COLUMNS} FROM orders
            WHERE user_id = $1 AND status = 'open' AND ($2::text IS NULL OR market = $2)
            ORDER BY created_at DESC, id DESC LIMIT 1000`,
          [userId, market ?? null],
        );
        return rows.map(toOrder);
      }),
    );
  }

  /** All of a user's orders, newest first, by page. */
  async orders(userId: string, options: { market?: string; status?: string; cursor?: string; limit?: number } = {}): Promise<Page<Order>> {
    const limit = pageSize(options.limit);
    const after = decodeCursor(options.cursor);
    return this.asUser(userId, async (q) => {
      const { rows } = await q.query<OrderRow>(
        `SELECT ${ORDER_COLUMNS} FROM orders
          WHERE user_id = $1 AND ($2::text IS NULL OR market = $2) AND ($3::text IS NULL OR status = $3)
            AND ($4::timestamptz IS NULL OR (created_at, id) < ($4, $5))
          ORDER BY created_at DESC, id DESC LIMIT $6`,
        [userId, options.market ?? null, options.status ?? null, after?.time ?? null, after?.id ?? null, limit + 1],
      );
      return pageOf(rows, limit, (r) => ({ time: r.created_at as Date, id: r.id as string }), toOrder);
    });
  }

  /** One order with every transition it went through; only the owner's. */
  async order(userId: string, orderId: string): Promise<Order & { history: OrderEvent[] }> {
    return this.asUser(userId, async (q) => {
      const { rows } = await q.query<OrderRow>(`SELECT ${ORDER_COLUMNS} FROM orders WHERE id = $1 AND user_id = $2`, [orderId, userId]);
      if (!rows[0]) throw new NotFoundError('order', orderId);
      const history = await q.query<{ status: string; filled_quantity: string | null; fill_quantity: string | null; price: string | null; details: unknown; timestamp: Date }>(
        `SELECT status, filled_quantity::text, fill_quantity::text, price::text, details, timestamp
           FROM order_history WHERE source = 'venue' AND order_id = $1 ORDER BY timestamp, id`,
        [orderId],
      );
      return {
        ...toOrder(rows[0]),
        history: history.rows.map((h) => ({
          status: h.status,
          filledQuantity: h.filled_quantity,
          fillQuantity: h.fill_quantity,
          price: h.price,
          details: h.details,
          time: h.timestamp.toISOString(),
        })),
      };
    });
  }

  /** Seed 000's getUserBalance, exact: every asset's available, locked and total. */
  async balances(userId: string): Promise<Balance[]> {
    return this.cache.read(CACHE_GROUPS.balances(userId), '', 60_000, () =>
      this.asUser(userId, async (q) => {
        const { rows } = await q.query<{ asset: string; available: string; locked: string; total: string; last_updated: Date }>(
          `SELECT asset, available_balance::text AS available, locked_balance::text AS locked, total_balance::text AS total, last_updated
             FROM balances WHERE user_id = $1 ORDER BY asset`,
          [userId],
        );
        return rows.map((r) => ({ asset: r.asset, available: r.available, locked: r.locked, total: r.total, updatedAt: r.last_updated.toISOString() }));
      }),
    );
  }

  /** Every change of a user's balances, newest first, by page. */
  async balanceHistory(userId: string, options: { asset?: string; cursor?: string; limit?: number } = {}): Promise<Page<BalanceChange>> {
    const limit = pageSize(options.limit);
    const after = decodeCursor(options.cursor);
    if (after && !/^\d{1,18}$/.test(after.id)) throw new InvalidArgumentError('cursor', 'is not a cursor this API returned');
    return this.asUser(userId, async (q) => {
      const { rows } = await q.query<Record<string, string | Date | null>>(
        `SELECT id::text, asset, change_type, amount::text, balance_before::text, balance_after::text, locked_change::text,
                locked_before::text, locked_after::text, reference_id, description, created_at
           FROM balance_history
          WHERE user_id = $1 AND ($2::text IS NULL OR asset = $2)
            AND ($3::timestamptz IS NULL OR (created_at, id) < ($3, $4::bigint))
          ORDER BY created_at DESC, id DESC LIMIT $5`,
        [userId, options.asset ?? null, after?.time ?? null, after?.id ?? null, limit + 1],
      );
      return pageOf(
        rows,
        limit,
        (r) => ({ time: r.created_at as Date, id: r.id as string }),
        (r): BalanceChange => ({
          id: r.id as string,
          asset: r.asset as string,
          changeType: r.change_type as string,
          amount: r.amount as string,
          before: r.balance_before as string,
          after: r.balance_after as string,
          lockedChange: r.locked_change as string | null,
          lockedBefore: r.locked_before as string | null,
          lockedAfter: r.locked_after as string | null,
          referenceId: r.reference_id as string | null,
          description: r.description as string | null,
          time: iso(r.created_at)!,
        }),
      );
    });
  }

  /** A user's positions (open ones unless `status` says otherwise), newest first. */
  async positions(userId: string, status: 'open' | 'closed' | 'all' = 'open'): Promise<Position[]> {
    return this.asUser(userId, async (q) => {
      const { rows } = await q.query<Record<string, string | Date | null>>(
        `SELECT id::text, exchange, symbol, side, quantity::text, entry_price::text, mark_price::text, unrealized_pnl::text,
                realized_pnl::text, status, strategy_id, opened_at, closed_at
           FROM positions WHERE user_id = $1 AND ($2::text = 'all' OR status = $2)
          ORDER BY opened_at DESC, id DESC LIMIT 1000`,
        [userId, status],
      );
      return rows.map((r) => ({
        id: r.id as string,
        exchange: r.exchange as string,
        symbol: r.symbol as string,
        side: r.side as string,
        quantity: r.quantity as string,
        entryPrice: r.entry_price as string,
        markPrice: r.mark_price as string | null,
        unrealizedPnl: r.unrealized_pnl as string,
        realizedPnl: r.realized_pnl as string,
        status: r.status as string,
        strategyId: r.strategy_id as string | null,
        openedAt: iso(r.opened_at)!,
        closedAt: iso(r.closed_at),
      }));
    });
  }

  /**
   * Seed 002's getTradeHistory over the user's strategies' round trips: filters by strategy,
   * symbol, status and entry dates, newest first, with the total the seed returns. Pages by
   * keyset instead of the seed's OFFSET.
   */
  async tradeHistory(userId: string, f: TradeHistoryFilters = {}): Promise<Page<StrategyTrade>> {
    return this.asUser(userId, (q) => roundTripPage(q, { userId }, f));
  }
}

/**
 * A page of round trips, newest entry first, with the total: a user's (joined to their
 * strategies), or one strategy's (`strategyId`, whoever owns it), narrowed by the filters.
 */
export async function roundTripPage(q: Queryable, scope: { userId: string } | { strategyId: string }, f: TradeHistoryFilters = {}): Promise<Page<StrategyTrade>> {
  const limit = pageSize(f.limit);
  const after = decodeCursor(f.cursor);
  const status = f.status === undefined || f.status === 'all' ? null : f.status;
  const byUser = 'userId' in scope;
  const filters = [byUser ? scope.userId : scope.strategyId, byUser ? (f.strategyId ?? null) : null, f.symbol ?? null, status, f.from ?? null, f.to ?? null];
  const where = `${byUser ? 's.user_id = $1' : 't.strategy_id = $1'} AND ($2::text IS NULL OR t.strategy_id = $2) AND ($3::text IS NULL OR t.symbol = $3)
     AND ($4::text IS NULL OR t.status = $4) AND ($5::timestamptz IS NULL OR t.entry_time >= $5)
     AND ($6::timestamptz IS NULL OR t.entry_time <= $6)`;
  const from = byUser ? 'strategy_trades t JOIN strategies s ON s.id = t.strategy_id' : 'strategy_trades t';
  const total = await q.query<{ total: string }>(`SELECT count(*)::text AS total FROM ${from} WHERE ${where}`, filters);
  const { rows } = await q.query<Record<string, string | Date | null>>(
    `SELECT t.id, t.strategy_id, t.symbol, t.exchange, t.side, t.type, t.entry_price::text, t.exit_price::text, t.quantity::text,
            t.pnl::text, t.pnl_percent::text, t.fees::text, t.status, t.entry_time, t.exit_time, t.exit_reason
       FROM ${from}
      WHERE ${where} AND ($7::timestamptz IS NULL OR (t.entry_time, t.id) < ($7, $8))
      ORDER BY t.entry_time DESC, t.id DESC LIMIT $9`,
    [...filters, after?.time ?? null, after?.id ?? null, limit + 1],
  );
  return pageOf(
    rows,
    limit,
    (r) => ({ time: r.entry_time as Date, id: r.id as string }),
    (r): StrategyTrade => ({
      id: r.id as string,
      strategyId: r.strategy_id as string,
      symbol: r.symbol as string,
      exchange: r.exchange as string | null,
      side: r.side as string,
      type: r.type as string,
      entryPrice: r.entry_price as string,
      exitPrice: r.exit_price as string | null,
      quantity: r.quantity as string,
      pnl: r.pnl as string | null,
      pnlPercent: r.pnl_percent as string | null,
      fees: r.fees as string,
      status: r.status as string,
      entryTime: iso(r.entry_time)!,
      exitTime: iso(r.exit_time),
      exitReason: r.exit_reason as string | null,
    }),
    Number(total.rows[0]!.total),
  );
}
