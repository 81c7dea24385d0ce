import type { Queryable } from '../database/types.ts';
import { benchmarkMetrics, drawdownCurve, periodReturns, returnMetrics, tradeMetricsOf, type Metric, type RoundTripSums } from '../analytics/metrics.ts';

const DAY = 86_400_000;

/** What an equity curve is built from for a strategy. */
export interface EquityOwner {
  id: string;
  /** Starting capital, for the curve from realized P&L when there are no snapshots. */
  initialCapital: string | null;
  createdAt: string;
}

/** 365 when every market of a strategy is the venue's own (it trades every day), else 252 (exchange-traded instruments). */
export async function periodsPerYear(db: Queryable, symbols: string[]): Promise<number> {
  const { rows } = await db.query<{ venue: number }>(`SELECT count(*)::int AS venue FROM markets WHERE symbol = ANY($1)`, [symbols]);
  return Number(rows[0]!.venue) === symbols.length ? 365 : 252;
}

export interface EquityCurve {
  /**
   * `snapshots`: each UTC day's closing portfolio snapshot; `trades`: initial capital plus realized
   * P&L by exit day; `trades_then_snapshots`: the latter for the days before the first snapshot.
   */
  source: 'snapshots' | 'trades' | 'trades_then_snapshots' | null;
  /** Why there is no curve (source null). */
  reason: string | null;
  /** Each UTC day's closing equity: `time` is the day's start (epoch ms). */
  points: { time: number; equity: number }[];
}

export interface CurveOptions {
  from?: Date;
  to?: Date;
  /** 252: exchange-traded instruments, whose curve from round trips has no weekend days. */
  periodsPerYear: number;
  /** The last day of a curve from round trips (default now). */
  now?: Date;
}

/** The closed round trips of a strategy, archived ones included (the archive job moves old ones away). */
const ROUND_TRIPS = (columns: string) => `
  SELECT ${columns} FROM strategy_trades WHERE strategy_id = $1 AND status = 'closed' AND pnl IS NOT NULL
  UNION ALL
  SELECT ${columns} FROM strategy_trades_archive WHERE strategy_id = $1 AND status = 'closed' AND pnl IS NOT NULL`;

/**
 * A strategy's equity curve in UTC days over [from, to): each day's closing portfolio value from
 * portfolio_snapshots (a producer's snapshot of the day wins over the service's own, else the
 * day's last); before its first snapshot (or without any), its initial capital plus the realized
 * P&L of its round trips by exit day, from the close of the day before its first (capital only).
 */
export async function equityCurve(db: Queryable, owner: EquityOwner, options: CurveOptions): Promise<EquityCurve> {
  const range = [options.from ?? null, options.to ?? null];
  const { rows: days } = await db.query<{ day: Date; value: string }>(
    `SELECT date_trunc('day', snapshot_time) AS day,
            (array_agg(total_value::text ORDER BY coalesce(metadata->>'source', '') = 'tradestore', snapshot_time DESC))[1] AS value
       FROM portfolio_snapshots
      WHERE strategy_id = $1 AND ($2::timestamptz IS NULL OR snapshot_time >= $2) AND ($3::timestamptz IS NULL OR snapshot_time < $3)
      GROUP BY 1 ORDER BY 1`,
    [owner.id, ...range],
  );
  const snapshots = days.map((d) => ({ time: d.day.getTime(), equity: Number(d.value) }));
  if (owner.initialCapital === null) {
    return snapshots.length
      ? { source: 'snapshots', reason: null, points: snapshots }
      : { source: null, reason: 'no portfolio snapshots in the period, and no initial capital to build the curve from round trips', points: [] };
  }
  // Days before the first snapshot (all days, without one): capital plus realized P&L, where
  // round trips closed before it (a history from before the snapshots began).
  const before = snapshots.length ? new Date(snapshots[0]!.time) : options.to;
  const trades = await realizedCurve(db, owner, { ...options, to: before }, snapshots.length > 0);
  const points = [...trades, ...snapshots];
  if (!points.length) return { source: null, reason: 'the period holds no day of the strategy', points: [] };
  return { source: trades.length === 0 ? 'snapshots' : snapshots.length === 0 ? 'trades' : 'trades_then_snapshots', reason: null, points };
}

/** Initial capital plus the realized P&L of round trips by exit day, each UTC day of [from, to) up to today. */
async function realizedCurve(db: Queryable, owner: EquityOwner, options: CurveOptions, onlyWithHistory: boolean): Promise<EquityCurve['points']> {
  const { rows } = await db.query<{ day: Date; pnl: string }>(
    `SELECT date_trunc('day', exit_time) AS day, sum(pnl)::text AS pnl FROM (${ROUND_TRIPS('exit_time, pnl')}) t GROUP BY 1 ORDER BY 1`,
    [owner.id],
  );
  if (onlyWithHistory && !rows.some((r) => r.day < options.to!)) return [];
  const capital = Number(owner.initialCapital);
  const created = Math.floor(new Date(owner.createdAt).getTime() / DAY) * DAY;
  const first = Math.min(created, rows[0]?.day.getTime() ?? created) - DAY;
  const today = Math.floor((options.now ?? new Date()).getTime() / DAY) * DAY;
  const start = Math.max(first, options.from ? Math.ceil(options.from.getTime() / DAY) * DAY : first);
  const end = Math.min(today, options.to ? Math.ceil(options.to.getTime() / DAY) * DAY - DAY : today);
  const byDay = new Map(rows.map((r) => [r.day.getTime(), Number(r.pnl)]));
  // Realized before the curve starts, then day by day (floating point, as the metrics are).
  let realized = rows.filter((r) => r.day.getTime() < start).reduce((sum, r) => sum + Number(r.pnl), 0);
  const points: EquityCurve['points'] = [];
  for (let day = start; day <= end; day += DAY) {
    realized += byDay.get(day) ?? 0;
    const weekday = new Date(day).getUTCDay();
    if (options.periodsPerYear === 252 && (weekday === 0 || weekday === 6) && !byDay.has(day)) continue;
    points.push({ time: day, equity: capital + realized });
  }
  return points;
}

export interface EquityAndDrawdown {
  strategyId: string;
  source: EquityCurve['source'];
  reason: string | null;
  /** Each UTC day: its start, the closing equity, and the fall from the running peak (a fraction ≤ 0). */
  points: { time: string; equity: string; drawdown: string }[];
}

/** The equity curve and its drawdown curve, for GET /v1/strategies/{id}/equity. */
export async function equityAndDrawdown(db: Queryable, owner: EquityOwner, options: CurveOptions): Promise<EquityAndDrawdown> {
  const curve = await equityCurve(db, owner, options);
  const drawdowns = drawdownCurve(curve.points.map((p) => p.equity), curve.points.map((p) => p.time));
  return {
    strategyId: owner.id,
    source: curve.source,
    reason: curve.reason,
    points: drawdowns.map((p) => ({ time: new Date(p.time).toISOString(), equity: String(p.equity), drawdown: String(p.drawdown) })),
  };
}

export interface StrategyAnalytics {
  strategyId: string;
  from: string | null;
  to: string | null;
  /** 365 when the strategy trades only the venue's own markets (every day), else 252 (exchange-traded instruments). */
  periodsPerYear: number;
  riskFree: number;
  benchmark: string | null;
  /** Where the equity curve came from (null: no curve, see the reasons). */
  equitySource: EquityCurve['source'];
  /** Days of the equity curve. */
  equityDays: number;
  /** Each metric as a decimal string, or null (its reason in `reasons`). */
  metrics: Record<string, string | null>;
  reasons: Record<string, string>;
}

const RETURN_METRICS = ['totalReturn', 'annualReturn', 'volatility', 'sharpeRatio', 'sortinoRatio', 'calmarRatio', 'maxDrawdown', 'maxDrawdownDuration', 'var95', 'cvar95'];

/**
 * A strategy's metrics (docs/ANALYTICS.md) over [from, to): returns and risk from its equity
 * curve, beta/alpha/correlation against a benchmark market's daily closes on the same days, and
 * the statistics of the round trips closed in the period.
 */
export async function strategyAnalytics(
  db: Queryable,
  owner: EquityOwner,
  options: CurveOptions & { benchmark?: { symbol: string; venue: boolean } | null; riskFree?: number },
): Promise<StrategyAnalytics> {
  const range = [options.from ?? null, options.to ?? null];
  const curve = await equityCurve(db, owner, options);
  // The round trips' counts, exact sums and extremes are computed by the database, in one row.
  const { rows: sums } = await db.query<{ n: number; wins: number; losses: number; gross_profit: string; gross_loss: string; largest_win: string | null;
    largest_loss: string | null; avg_minutes: string | null; max_minutes: string | null }>(
    `SELECT count(*)::int AS n, count(*) FILTER (WHERE pnl > 0)::int AS wins, count(*) FILTER (WHERE pnl < 0)::int AS losses,
            coalesce(sum(pnl) FILTER (WHERE pnl > 0), 0)::text AS gross_profit, coalesce(sum(pnl) FILTER (WHERE pnl < 0), 0)::text AS gross_loss,
            max(pnl) FILTER (WHERE pnl > 0)::text AS largest_win, min(pnl) FILTER (WHERE pnl < 0)::text AS largest_loss,
            (avg(extract(epoch FROM exit - entry)) / 60)::text AS avg_minutes, (max(extract(epoch FROM exit - entry)) / 60)::text AS max_minutes
       FROM (${ROUND_TRIPS('pnl, entry_time AS entry, exit_time AS exit')}) t
      WHERE ($2::timestamptz IS NULL OR exit >= $2) AND ($3::timestamptz IS NULL OR exit < $3)`,
    [owner.id, ...range],
  );
  const t = sums[0]!;
  const tradeSums: RoundTripSums = {
    count: Number(t.n),
    wins: Number(t.wins),
    losses: Number(t.losses),
    grossProfit: t.gross_profit,
    grossLoss: t.gross_loss,
    largestWin: t.largest_win,
    largestLoss: t.largest_loss,
    avgDurationMinutes: t.avg_minutes === null ? null : Number(t.avg_minutes),
    maxDurationMinutes: t.max_minutes === null ? null : Number(t.max_minutes),
  };
  const metrics: Record<string, string | null> = {};
  const reasons: Record<string, string> = {};
  const put = (name: string, m: Metric) => {
    metrics[name] = m.value === null ? null : String(m.value);
    if (m.value === null) reasons[name] = m.reason ?? 'not computed';
  };
  const equity = curve.points.map((d) => d.equity);
  const times = curve.points.map((d) => d.time);
  const returnOptions = { periodsPerYear: options.periodsPerYear, riskFree: options.riskFree ?? 0 };
  if (curve.source === null) for (const name of RETURN_METRICS) put(name, { value: null, reason: curve.reason! });
  else for (const [name, m] of Object.entries(returnMetrics(equity, times, returnOptions))) put(name, m);
  if (options.benchmark) {
    const { rows: closes } = options.benchmark.venue
      ? await db.query<{ day: Date; close: string }>(`SELECT open_time AS day, close_price::text AS close FROM ohlcv_1d WHERE market = $1 ORDER BY open_time`, [options.benchmark.symbol])
      : await db.query<{ day: Date; close: string }>(
          `SELECT timestamp AS day, close::text AS close FROM market_data WHERE symbol = $1 AND timeframe = '1d' ORDER BY timestamp`,
          [options.benchmark.symbol],
        );
    const byDay = new Map(closes.map((c) => [c.day.getTime(), Number(c.close)]));
    // The days both curves have, in order; returns between consecutive ones.
    const shared = times.map((t, i) => [t, equity[i]!, byDay.get(t)] as const).filter(([, , b]) => b !== undefined) as (readonly [number, number, number])[];
    const r = periodReturns(shared.map((s) => s[1]));
    const b = periodReturns(shared.map((s) => s[2]));
    for (const [name, m] of Object.entries(benchmarkMetrics(r, b, returnOptions))) put(name, m);
  } else for (const name of ['beta', 'alpha', 'marketCorrelation']) put(name, { value: null, reason: 'no benchmark given' });
  for (const [name, value] of Object.entries(tradeMetricsOf(tradeSums))) {
    if (value !== null && typeof value === 'object') put(name, value);
    else metrics[name] = value === null ? null : String(value);
  }
  return {
    strategyId: owner.id,
    from: options.from?.toISOString() ?? null,
    to: options.to?.toISOString() ?? null,
    periodsPerYear: options.periodsPerYear,
    riskFree: options.riskFree ?? 0,
    benchmark: options.benchmark?.symbol ?? null,
    equitySource: curve.source,
    equityDays: curve.points.length,
    metrics,
    reasons,
  };
}
