import Big from 'big.js';
import type { Queryable } from '../database/types.ts';
import { TIMEFRAME_LENGTHS } from '../ingest/events/feeds.ts';

const DAY = 86_400_000;

/** How a snapshot the service built is marked (portfolio_snapshots.metadata), beside a producer's. */
export const OWN_SNAPSHOT = 'tradestore';

export type SnapshotKind = 'scheduled' | 'day_end';

/** One position of a snapshot: the open round trips of one market and side, valued at its latest price. */
export interface SnapshotPosition {
  /** The exchange, for an exchange's instrument; null for the venue's own market. */
  exchange: string | null;
  symbol: string;
  side: 'long' | 'short';
  quantity: string;
  /** Average entry price, weighted by quantity. */
  entryPrice: string;
  /** The market's latest price at the snapshot's time, or the entry price when the market has none (`priced` false). */
  price: string;
  priced: boolean;
  /** Signed: negative for a short. */
  marketValue: string;
  unrealizedPnl: string;
}

interface Valued {
  totalValue: Big;
  cash: Big;
  unrealized: Big;
  realized: Big;
  exposure: Big;
  positions: SnapshotPosition[];
  unpriced: string[];
}

/** Candle lengths of market_data's timeframes, finest first. */
const TIMEFRAMES = Object.entries(TIMEFRAME_LENGTHS);

/** A market as a holding names it: the venue's (exchange null) or an exchange's symbol. */
const marketKey = (exchange: string | null, symbol: string) => `${exchange ?? ''}\u0000${symbol}`;

/**
 * The latest price of each market at or before `at`: a venue market's last trade or last 1m
 * close; an exchange instrument's last tick (of that exchange when the holding names one), else
 * the close of its latest candle that had finished by `at` (the most recent close of any timeframe).
 */
async function latestPrices(db: Queryable, markets: { exchange: string | null; symbol: string }[], at: Date): Promise<Map<string, string>> {
  if (!markets.length) return new Map();
  const { rows } = await db.query<{ exchange: string | null; symbol: string; price: string | null }>(
    `SELECT s.exchange, s.symbol, coalesce(
              (SELECT price::text FROM trades WHERE market = s.symbol AND executed_at <= $3 ORDER BY executed_at DESC LIMIT 1),
              (SELECT close_price::text FROM ohlcv_1m WHERE market = s.symbol AND open_time <= $3::timestamptz - interval '1 minute' ORDER BY open_time DESC LIMIT 1),
              (SELECT price::text FROM market_trades WHERE symbol = s.symbol AND (s.exchange IS NULL OR exchange = s.exchange) AND time <= $3
                ORDER BY time DESC LIMIT 1),
              (SELECT c.close FROM unnest($4::text[], $5::interval[]) AS f(timeframe, length)
                 CROSS JOIN LATERAL (SELECT close::text AS close, timestamp + f.length AS closed_at FROM market_data
                                      WHERE symbol = s.symbol AND (s.exchange IS NULL OR exchange = s.exchange) AND timeframe = f.timeframe
                                        AND timestamp + f.length <= $3
                                      ORDER BY timestamp DESC LIMIT 1) c
                ORDER BY c.closed_at DESC LIMIT 1)) AS price
       FROM unnest($1::text[], $2::text[]) AS s(exchange, symbol)`,
    [markets.map((m) => m.exchange), markets.map((m) => m.symbol), at, TIMEFRAMES.map((t) => t[0]), TIMEFRAMES.map((t) => t[1])],
  );
  return new Map(rows.filter((r) => r.price !== null).map((r) => [marketKey(r.exchange, r.symbol), r.price!]));
}

const distinctMarkets = (rows: { exchange: string | null; symbol: string }[]) =>
  [...new Map(rows.map((r) => [marketKey(r.exchange, r.symbol), { exchange: r.exchange, symbol: r.symbol }])).values()];

/**
 * Values open holdings at the latest prices: each (symbol, side) group's quantity, average entry,
 * market value (signed) and unrealized P&L (price move times quantity, less the fees paid so far).
 */
function value(
  holdings: { exchange: string | null; symbol: string; side: 'long' | 'short'; quantity: string; entryPrice: string; fees: string }[],
  prices: Map<string, string>,
  base: Big,
  realized: Big,
): Valued {
  const groups = new Map<string, { exchange: string | null; symbol: string; side: 'long' | 'short'; quantity: Big; cost: Big; fees: Big }>();
  for (const h of holdings) {
    const key = `${marketKey(h.exchange, h.symbol)}\u0000${h.side}`;
    const g = groups.get(key) ?? { exchange: h.exchange, symbol: h.symbol, side: h.side, quantity: new Big(0), cost: new Big(0), fees: new Big(0) };
    g.quantity = g.quantity.plus(h.quantity);
    g.cost = g.cost.plus(new Big(h.entryPrice).times(h.quantity));
    g.fees = g.fees.plus(h.fees);
    groups.set(key, g);
  }
  let unrealized = new Big(0);
  let signedValue = new Big(0);
  let exposure = new Big(0);
  const unpriced = new Set<string>();
  const positions: SnapshotPosition[] = [];
  for (const g of [...groups.values()].sort((a, b) => a.symbol.localeCompare(b.symbol) || a.side.localeCompare(b.side))) {
    const entry = g.quantity.gt(0) ? g.cost.div(g.quantity) : new Big(0);
    const known = prices.get(marketKey(g.exchange, g.symbol));
    if (known === undefined) unpriced.add(g.symbol);
    const price = new Big(known ?? entry);
    const sign = g.side === 'long' ? 1 : -1;
    const marketValue = price.times(g.quantity).times(sign);
    const pnl = price.times(g.quantity).minus(g.cost).times(sign).minus(g.fees);
    unrealized = unrealized.plus(pnl);
    signedValue = signedValue.plus(marketValue);
    exposure = exposure.plus(marketValue.abs());
    positions.push({
      exchange: g.exchange,
      symbol: g.symbol,
      side: g.side,
      quantity: g.quantity.toFixed(),
      entryPrice: entry.toFixed(),
      price: price.toFixed(),
      priced: known !== undefined,
      marketValue: marketValue.toFixed(),
      unrealizedPnl: pnl.toFixed(),
    });
  }
  const totalValue = base.plus(realized).plus(unrealized);
  return { totalValue, cash: totalValue.minus(signedValue), unrealized, realized, exposure, positions, unpriced: [...unpriced] };
}

interface Row {
  strategyId: string | null;
  userId: string | null;
  valued: Valued;
  openOrders: number;
  previousClose: string | null;
}

async function insert(db: Queryable, at: Date, kind: SnapshotKind, rows: Row[]): Promise<number> {
  if (!rows.length) return 0;
  const col = <T>(f: (r: Row) => T) => rows.map(f);
  const daily = (r: Row) => (r.previousClose === null ? null : r.valued.totalValue.minus(r.previousClose));
  await db.query(
    `INSERT INTO portfolio_snapshots (strategy_id, user_id, snapshot_time, total_value, cash_balance, unrealized_pnl, realized_pnl, positions,
                                      open_orders_count, total_exposure, leverage, daily_pnl, daily_pnl_percent, metadata)
     SELECT u.strategy_id, u.user_id, $1, u.total_value, u.cash, u.unrealized, u.realized, u.positions, u.open_orders, u.exposure,
            u.leverage, u.daily_pnl, u.daily_pnl_percent, u.metadata
       FROM unnest($2::text[], $3::text[], $4::numeric[], $5::numeric[], $6::numeric[], $7::numeric[], $8::jsonb[], $9::int[],
                   $10::numeric[], $11::numeric[], $12::numeric[], $13::numeric[], $14::jsonb[])
            AS u(strategy_id, user_id, total_value, cash, unrealized, realized, positions, open_orders, exposure, leverage, daily_pnl,
                 daily_pnl_percent, metadata)`,
    [
      at,
      col((r) => r.strategyId),
      col((r) => r.userId),
      col((r) => r.valued.totalValue.toFixed()),
      col((r) => r.valued.cash.toFixed()),
      col((r) => r.valued.unrealized.toFixed()),
      col((r) => r.valued.realized.toFixed()),
      col((r) => JSON.stringify(r.valued.positions)),
      col((r) => r.openOrders),
      col((r) => r.valued.exposure.toFixed()),
      // Leverage is exposure over equity; with no equity left it is not defined, and 0 is stored with a note.
      col((r) => (r.valued.totalValue.gt(0) ? r.valued.exposure.div(r.valued.totalValue).toFixed(12) : '0')),
      col((r) => daily(r)?.toFixed() ?? null),
      col((r) => (r.previousClose !== null && new Big(r.previousClose).gt(0) ? daily(r)!.div(r.previousClose).times(100).toFixed(8) : null)),
      col((r) => JSON.stringify({
        source: OWN_SNAPSHOT,
        kind,
        ...(r.valued.unpriced.length ? { unpriced: r.valued.unpriced } : {}),
        ...(r.valued.totalValue.gt(0) ? {} : { note: 'no equity: leverage is not defined' }),
      })),
    ],
  );
  return rows.length;
}

/**
 * Builds one snapshot per strategy with an initial capital, as of `at`, from history: the round
 * trips open at `at` valued at each market's latest price at or before it, realized P&L of those
 * closed by then (archived ones included), cash, exposure, leverage, the exchange orders open
 * then, and daily P&L against the previous UTC day's close. A strategy whose producer sent a
 * snapshot in the day before `at` is left to its producer. Returns how many were written.
 */
export async function buildStrategySnapshots(db: Queryable, at: Date, kind: SnapshotKind, only?: string[]): Promise<number> {
  const { rows: strategies } = await db.query<{ id: string; user_id: string | null; capital: string; realized: string; previous: string | null }>(
    `SELECT s.id, s.user_id, s.initial_capital::text AS capital,
            coalesce((SELECT sum(pnl) FROM strategy_trades t WHERE t.strategy_id = s.id AND t.status = 'closed' AND t.exit_time <= $1), 0)
              + coalesce((SELECT sum(pnl) FROM strategy_trades_archive t WHERE t.strategy_id = s.id AND t.status = 'closed' AND t.exit_time <= $1), 0) AS realized,
            (SELECT total_value::text FROM portfolio_snapshots p WHERE p.strategy_id = s.id AND p.snapshot_time < date_trunc('day', $1::timestamptz)
              ORDER BY snapshot_time DESC LIMIT 1) AS previous
       FROM strategies s
      WHERE s.initial_capital IS NOT NULL AND s.created_at <= $1 AND ($2::text[] IS NULL OR s.id = ANY($2))
        AND NOT EXISTS (SELECT 1 FROM portfolio_snapshots p WHERE p.strategy_id = s.id AND p.snapshot_time > $1::timestamptz - interval '1 day'
                           AND p.snapshot_time <= $1 AND coalesce(p.metadata->>'source', '') <> '${OWN_SNAPSHOT}')
      ORDER BY s.id`,
    [at, only ?? null],
  );
  if (!strategies.length) return 0;
  const ids = strategies.map((s) => s.id);
  const { rows: open } = await db.query<{ strategy_id: string; exchange: string | null; symbol: string; side: string; quantity: string; entry_price: string; fees: string }>(
    `SELECT strategy_id, exchange, symbol, side, quantity::text, entry_price::text, fees::text FROM strategy_trades
      WHERE strategy_id = ANY($1) AND entry_time <= $2
        AND (status IN ('open', 'partially_filled') OR (status = 'closed' AND exit_time > $2))`,
    [ids, at],
  );
  const { rows: orders } = await db.query<{ strategy_id: string; n: number }>(
    `SELECT strategy_id, count(*)::int AS n FROM exchange_orders
      WHERE strategy_id = ANY($1) AND created_at <= $2
        AND (status IN ('pending', 'open', 'partially_filled') OR updated_at > $2)
      GROUP BY strategy_id`,
    [ids, at],
  );
  const prices = await latestPrices(db, distinctMarkets(open), at);
  const openOrders = new Map(orders.map((o) => [o.strategy_id, Number(o.n)]));
  const rows: Row[] = strategies.map((s) => ({
    strategyId: s.id,
    userId: s.user_id,
    valued: value(
      open.filter((o) => o.strategy_id === s.id).map((o) => ({ exchange: o.exchange, symbol: o.symbol, side: o.side === 'buy' ? 'long' : 'short', quantity: o.quantity, entryPrice: o.entry_price, fees: o.fees })),
      prices,
      new Big(s.capital),
      new Big(s.realized),
    ),
    openOrders: openOrders.get(s.id) ?? 0,
    previousClose: s.previous,
  }));
  return insert(db, at, kind, rows);
}

/**
 * Builds one snapshot per user with an active exchange account (seed 003's accounts), as of now:
 * cash is the accounts' balances (taken to be in one currency: the seeds give accounts none); the
 * user's open positions are valued at their market's latest price (else their mark price): a
 * spot account's holdings at their market value, a margin or futures account's positions (and
 * those of no account) at their unrealized P&L on top of the balance. Realized P&L is their
 * positions' realized P&L. Balances have no history, so it is built for the present only.
 */
export async function buildUserSnapshots(db: Queryable, at: Date, kind: SnapshotKind): Promise<number> {
  const { rows: users } = await db.query<{ user_id: string; cash: string; realized: string; previous: string | null }>(
    `SELECT a.user_id, sum(a.balance)::text AS cash,
            coalesce((SELECT sum(realized_pnl) FROM positions p WHERE p.user_id = a.user_id AND p.opened_at <= $1), 0)::text AS realized,
            (SELECT total_value::text FROM portfolio_snapshots p WHERE p.user_id = a.user_id AND p.strategy_id IS NULL
                AND p.snapshot_time < date_trunc('day', $1::timestamptz) ORDER BY snapshot_time DESC LIMIT 1) AS previous
       FROM accounts a
      WHERE a.is_active
        AND NOT EXISTS (SELECT 1 FROM portfolio_snapshots p WHERE p.user_id = a.user_id AND p.strategy_id IS NULL
                           AND p.snapshot_time > $1::timestamptz - interval '1 day' AND p.snapshot_time <= $1
                           AND coalesce(p.metadata->>'source', '') <> '${OWN_SNAPSHOT}')
      GROUP BY a.user_id ORDER BY a.user_id`,
    [at],
  );
  if (!users.length) return 0;
  const ids = users.map((u) => u.user_id);
  const { rows: open } = await db.query<{ user_id: string; exchange: string; symbol: string; side: 'long' | 'short'; quantity: string; entry_price: string; mark: string | null; spot: boolean }>(
    `SELECT p.user_id, p.exchange, p.symbol, p.side, p.quantity::text, p.entry_price::text, p.mark_price::text AS mark, coalesce(a.account_type = 'spot', false) AS spot
       FROM positions p LEFT JOIN accounts a ON a.id = p.account_id
      WHERE p.user_id = ANY($1) AND p.status = 'open' AND p.quantity > 0`,
    [ids],
  );
  const { rows: orders } = await db.query<{ user_id: string; n: number }>(
    `SELECT user_id, count(*)::int AS n FROM exchange_orders WHERE user_id = ANY($1) AND status IN ('pending', 'open', 'partially_filled') GROUP BY user_id`,
    [ids],
  );
  const prices = await latestPrices(db, distinctMarkets(open), at);
  // A position without a market price is valued at its mark price, where the exchange gave one.
  for (const o of open) if (!prices.has(marketKey(o.exchange, o.symbol)) && o.mark !== null) prices.set(marketKey(o.exchange, o.symbol), o.mark);
  const openOrders = new Map(orders.map((o) => [o.user_id, Number(o.n)]));
  const rows: Row[] = users.map((u) => {
    const holdings = open.filter((o) => o.user_id === u.user_id).map((o) => ({ exchange: o.exchange, symbol: o.symbol, side: o.side, quantity: o.quantity, entryPrice: o.entry_price, fees: '0', spot: o.spot }));
    // Margin positions add their unrealized P&L to the balance; spot holdings add their market value.
    const valued = value(holdings, prices, new Big(u.cash), new Big(0));
    const spot = valued.positions.filter((p) => holdings.some((h) => h.spot && h.symbol === p.symbol && h.exchange === p.exchange));
    // Spot holdings count at their market value instead of their unrealized P&L.
    const totalValue = spot.reduce((sum, p) => sum.plus(p.marketValue).minus(p.unrealizedPnl), valued.totalValue);
    return {
      strategyId: null,
      userId: u.user_id,
      valued: { ...valued, totalValue, realized: new Big(u.realized), cash: new Big(u.cash) },
      openOrders: openOrders.get(u.user_id) ?? 0,
      previousClose: u.previous,
    };
  });
  return insert(db, at, kind, rows);
}

/** How long the service keeps its own scheduled (intra-day) snapshots; day-end ones are kept. */
export const SCHEDULED_KEEP_DAYS = 7;

/**
 * The scheduled snapshot work: one snapshot of every strategy and user now; for strategies, a
 * day-end snapshot (stamped 23:59:59.999 UTC) of each finished day of the last `backfillDays`
 * that has none, built from history, so a day whose end the service missed still gets its close;
 * for users, the last day's end when this run comes within two intervals of it (balances have no
 * history). The service's own scheduled snapshots older than SCHEDULED_KEEP_DAYS are removed.
 */
export async function takeSnapshots(
  db: Queryable,
  now: Date,
  options: { backfillDays?: number; intervalMs?: number } = {},
): Promise<{ strategies: number; users: number; dayEnds: number; removed: number }> {
  const backfillDays = options.backfillDays ?? 7;
  const today = Math.floor(now.getTime() / DAY) * DAY;
  let dayEnds = 0;
  for (let day = today - backfillDays * DAY; day < today; day += DAY) {
    const end = new Date(day + DAY - 1);
    const { rows } = await db.query<{ id: string }>(
      `SELECT s.id FROM strategies s
        WHERE s.initial_capital IS NOT NULL AND s.created_at <= $1
          AND NOT EXISTS (SELECT 1 FROM portfolio_snapshots p WHERE p.strategy_id = s.id AND p.snapshot_time = $1)`,
      [end],
    );
    if (rows.length) dayEnds += await buildStrategySnapshots(db, end, 'day_end', rows.map((r) => r.id));
  }
  const window = Math.max(3_600_000, 2 * (options.intervalMs ?? 60_000));
  const { rows: late } = await db.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM portfolio_snapshots WHERE strategy_id IS NULL AND user_id IS NOT NULL AND snapshot_time = $1`,
    [new Date(today - 1)],
  );
  if (now.getTime() - today < window && Number(late[0]!.n) === 0) dayEnds += await buildUserSnapshots(db, new Date(today - 1), 'day_end');
  const { rowCount } = await db.query(
    `DELETE FROM portfolio_snapshots WHERE snapshot_time < $1 AND metadata->>'source' = '${OWN_SNAPSHOT}' AND metadata->>'kind' = 'scheduled'`,
    [new Date(now.getTime() - SCHEDULED_KEEP_DAYS * DAY)],
  );
  return { strategies: await buildStrategySnapshots(db, now, 'scheduled'), users: await buildUserSnapshots(db, now, 'scheduled'), dayEnds, removed: rowCount ?? 0 };
}

/**
 * A strategy's initial capital changed: its equity was always measured from the capital, so the
 * service's own snapshots move by the difference (total value and cash; leverage and daily P&L
 * percent follow); without a capital they are removed. A producer's snapshots are its own.
 */
export async function rebaseOwnSnapshots(db: Queryable, strategyId: string, before: string | null, after: string | null): Promise<void> {
  if (before === after || (before !== null && after !== null && new Big(before).eq(after))) return;
  if (after === null || before === null) {
    await db.query(`DELETE FROM portfolio_snapshots WHERE strategy_id = $1 AND metadata->>'source' = '${OWN_SNAPSHOT}'`, [strategyId]);
    return;
  }
  await db.query(
    `UPDATE portfolio_snapshots SET total_value = total_value + $2::numeric, cash_balance = cash_balance + $2::numeric,
            leverage = CASE WHEN total_value + $2::numeric > 0 THEN round(total_exposure / (total_value + $2::numeric), 12) ELSE 0 END,
            daily_pnl_percent = CASE WHEN daily_pnl IS NOT NULL AND total_value + $2::numeric - daily_pnl > 0
                                     THEN round(daily_pnl / (total_value + $2::numeric - daily_pnl) * 100, 8) END
      WHERE strategy_id = $1 AND metadata->>'source' = '${OWN_SNAPSHOT}'`,
    [strategyId, new Big(after).minus(before).toFixed()],
  );
}
