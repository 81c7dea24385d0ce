import type { Queryable } from '../database/types.ts';
import Big from 'big.js';
import { benchmarkMetrics, periodReturns, returnMetrics, tradeMetricsOf } from '../analytics/metrics.ts';
import { metricCollector, roundTripSumsSelect, toRoundTripSums, type RoundTripSumsRow } from './roundTripSums.ts';

const DAY = 86_400_000;

/** What an equity curve is built from for a strategy. */
export interface EquityOwner {
  id: string;
  /** Starting capital: the curve's first value, and the curve from realized P&L before (or without) snapshots. */
  initialCapital: string | null;
  createdAt: string;
}

/**
 * Periods per year (docs/ANALYTICS.md): 365 when every market of the strategy trades every day
 * (the venue's own markets, and exchange instruments of type SPOT or PERP, as crypto's are), else
 * 252 (exchange-traded instruments: equities, indices, futures, options).
 */
export async function periodsPerYear(db: Queryable, symbols: string[]): Promise<number> {
  const distinct = [...new Set(symbols)];
  const { rows } = await db.query<{ daily: number }>(
    `SELECT count(*)::int AS daily FROM unnest($1::text[]) AS s(symbol)
      WHERE EXISTS (SELECT 1 FROM markets m WHERE m.symbol = s.symbol)
         OR (EXISTS (SELECT 1 FROM instruments i WHERE i.symbol = s.symbol)
             AND NOT EXISTS (SELECT 1 FROM instruments i WHERE i.symbol = s.symbol AND upper(i.instrument_type) NOT IN ('SPOT', 'PERP')))`,
    [distinct],
  );
  return Number(rows[0]!.daily) === distinct.length ? 365 : 252;
}

export interface CurvePoint {
  /** The UTC day's start (epoch ms). */
  time: number;
  /** The day's closing equity, an exact decimal string. */
  equity: string;
}

export interface EquityCurve {
  /**
   * `snapshots`: each UTC day's closing portfolio snapshot; `trades`: initial capital plus realized
   * P&L by exit day; `trades_then_snapshots`: the latter for the days before the strategy's first
   * snapshot, then the snapshots.
   */
  source: 'snapshots' | 'trades' | 'trades_then_snapshots' | null;
  /** Why there is no curve (source null). */
  reason: string | null;
  points: CurvePoint[];
}

export interface CurveOptions {
  from?: Date;
  to?: Date;
  /** 252: exchange-traded instruments, whose curve has no Saturdays and Sundays. */
  periodsPerYear: number;
  /** The last day of a curve from round trips (default now). */
  now?: Date;
}

/** The closed round trips of a strategy, archived ones included (the archive job moves old ones away). */
const ROUND_TRIPS = (columns: string) => `
  SELECT ${columns} FROM strategy_trades WHERE strategy_id = $1 AND status = 'closed' AND pnl IS NOT NULL
  UNION ALL
  SELECT ${columns} FROM strategy_trades_archive WHERE strategy_id = $1 AND status = 'closed' AND pnl IS NOT NULL`;

const dayOf = (ms: number) => Math.floor(ms / DAY) * DAY;
const weekend = (day: number) => [0, 6].includes(new Date(day).getUTCDay());

/**
 * A strategy's equity curve in UTC days over [from, to): each day's closing portfolio value from
 * portfolio_snapshots (a producer's snapshot of the day wins over the service's own, else the
 * day's last before `to`). A strategy with an initial capital has, for the days before its first
 * snapshot ever (all days, without one), its capital plus the realized P&L of the round trips
 * exited by then, from the close of the day before it began (capital only). A 252-period strategy
 * has no weekend days.
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
  const workdays = (points: CurvePoint[]) => (options.periodsPerYear === 252 ? points.filter((p) => !weekend(p.time)) : points);
  const snapshots = workdays(days.map((d) => ({ time: d.day.getTime(), equity: d.value })));
  if (owner.initialCapital === null) {
    return snapshots.length
      ? { source: 'snapshots', reason: null, points: snapshots }
      : { source: null, reason: 'no portfolio snapshots in the period, and no initial capital to build the curve from round trips', points: [] };
  }
  const { rows: first } = await db.query<{ at: Date | null }>(`SELECT min(snapshot_time) AS at FROM portfolio_snapshots WHERE strategy_id = $1`, [owner.id]);
  const firstSnapshotDay = first[0]?.at ? dayOf(first[0].at.getTime()) : null;
  const trades = workdays(await realizedCurve(db, owner, options, firstSnapshotDay));
  const points = [...trades, ...snapshots];
  if (!points.length) return { source: null, reason: 'the period holds no day of the strategy', points: [] };
  return { source: trades.length === 0 ? 'snapshots' : snapshots.length === 0 ? 'trades' : 'trades_then_snapshots', reason: null, points };
}

/**
 * Initial capital plus the realized P&L of round trips exited before each UTC day's end (and
 * before `to`), for each day of [from, to) up to today and before `untilDay` (the first snapshot's).
 */
async function realizedCurve(db: Queryable, owner: EquityOwner, options: CurveOptions, untilDay: number | null): Promise<CurvePoint[]> {
  const { rows } = await db.query<{ day: Date; pnl: string }>(
    `SELECT date_trunc('day', exit_time) AS day, sum(pnl)::text AS pnl FROM (${ROUND_TRIPS('exit_time, pnl')}) t
      WHERE $2::timestamptz IS NULL OR exit_time < $2 GROUP BY 1 ORDER BY 1`,
    [owner.id, options.to ?? null],
  );
  const created = dayOf(new Date(owner.createdAt).getTime());
  const first = Math.min(created, rows[0]?.day.getTime() ?? created) - DAY;
  const today = dayOf((options.now ?? new Date()).getTime());
  const start = Math.max(first, options.from ? dayOf(options.from.getTime()) : first);
  // The last day that begins before `to`.
  let end = Math.min(today, options.to ? dayOf(options.to.getTime() - 1) : today);
  if (untilDay !== null) end = Math.min(end, untilDay - DAY);
  const byDay = new Map(rows.map((r) => [r.day.getTime(), r.pnl]));
  let equity = new Big(owner.initialCapital!);
  for (const r of rows) if (r.day.getTime() < start) equity = equity.plus(r.pnl);
  const points: CurvePoint[] = [];
  for (let day = start; day <= end; day += DAY) {
    const pnl = byDay.get(day);
    if (pnl !== undefined) equity = equity.plus(pnl);
    points.push({ time: day, equity: equity.toFixed() });
  }
  return points;
}

/** Decimal places of a drawdown, as the strategy's max_drawdown counter has them. */
const DRAWDOWN_DP = 12;

export interface EquityAndDrawdown {
  strategyId: string;
  source: EquityCurve['source'];
  reason: string | null;
  /** Each UTC day: its start, the closing equity, and the fall from the running peak (a fraction ≤ 0). */
  points: { time: string; equity: string; drawdown: string }[];
}

/** The equity curve and its drawdown curve (exact decimals), for GET /v1/strategies/{id}/equity. */
export async function equityAndDrawdown(db: Queryable, owner: EquityOwner, options: CurveOptions): Promise<EquityAndDrawdown> {
  const curve = await equityCurve(db, owner, options);
  let peak: Big | null = null;
  return {
    strategyId: owner.id,
    source: curve.source,
    reason: curve.reason,
    points: curve.points.map((p) => {
      const equity = new Big(p.equity);
      if (peak === null || equity.gt(peak)) peak = equity;
      const drawdown = peak.gt(0) ? equity.div(peak).minus(1).round(DRAWDOWN_DP) : new Big(0);
      return { time: new Date(p.time).toISOString(), equity: p.equity, drawdown: drawdown.toFixed() };
    }),
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

/** A benchmark market: one of the venue's (exchange null) or an exchange's instrument. */
export interface Benchmark {
  exchange: string | null;
  symbol: string;
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
  options: CurveOptions & { benchmark?: Benchmark | null; riskFree?: number; curve?: EquityCurve },
): Promise<StrategyAnalytics> {
  const range = [options.from ?? null, options.to ?? null];
  const curve = options.curve ?? (await equityCurve(db, owner, options));
  // The round trips' counts, exact sums and extremes are computed by the database, in one row.
  const { rows: sums } = await db.query<RoundTripSumsRow>(
    `SELECT ${roundTripSumsSelect()} FROM (${ROUND_TRIPS('pnl, entry_time AS entry, exit_time AS exit')}) t
      WHERE ($2::timestamptz IS NULL OR exit >= $2) AND ($3::timestamptz IS NULL OR exit < $3)`,
    [owner.id, ...range],
  );
  const { metrics, reasons, put, putAll } = metricCollector();
  const equity = curve.points.map((d) => Number(d.equity));
  const times = curve.points.map((d) => d.time);
  const returnOptions = { periodsPerYear: options.periodsPerYear, riskFree: options.riskFree ?? 0 };
  if (curve.source === null) for (const name of RETURN_METRICS) put(name, { value: null, reason: curve.reason! });
  else for (const [name, m] of Object.entries(returnMetrics(equity, times, returnOptions))) put(name, m);
  if (options.benchmark) {
    // Each daily candle on the UTC day it closes in (an exchange's day may start at its own midnight).
    const { rows: closes } = options.benchmark.exchange === null
      ? await db.query<{ day: Date; close: string }>(
          `SELECT date_trunc('day', open_time + interval '1 day' - interval '1 millisecond') AS day, close_price::text AS close
             FROM ohlcv_1d WHERE market = $1 ORDER BY open_time`,
          [options.benchmark.symbol],
        )
      : await db.query<{ day: Date; close: string }>(
          `SELECT date_trunc('day', timestamp + interval '1 day' - interval '1 millisecond') AS day, close::text AS close
             FROM market_data WHERE exchange = $1 AND symbol = $2 AND timeframe = '1d' ORDER BY timestamp`,
          [options.benchmark.exchange, options.benchmark.symbol],
        );
    const byDay = new Map(closes.map((c) => [c.day.getTime(), Number(c.close)]));
    // The days both curves have, in order; returns between consecutive ones.
    const shared = times.map((t, i) => [t, equity[i]!, byDay.get(t)] as const).filter(([, , b]) => b !== undefined) as (readonly [number, number, number])[];
    const r = periodReturns(shared.map((s) => s[1]));
    const b = periodReturns(shared.map((s) => s[2]));
    for (const [name, m] of Object.entries(benchmarkMetrics(r, b, returnOptions))) put(name, m);
  } else for (const name of ['beta', 'alpha', 'marketCorrelation']) put(name, { value: null, reason: 'no benchmark given' });
  putAll(tradeMetricsOf(toRoundTripSums(sums[0]!)));
  return {
    strategyId: owner.id,
    from: options.from?.toISOString() ?? null,
    to: options.to?.toISOString() ?? null,
    periodsPerYear: options.periodsPerYear,
    riskFree: options.riskFree ?? 0,
    benchmark: options.benchmark ? (options.benchmark.exchange === null ? options.benchmark.symbol : `${options.benchmark.exchange}:${options.benchmark.symbol}`) : null,
    equitySource: curve.source,
    equityDays: curve.points.length,
    metrics,
    reasons,
  };
}
