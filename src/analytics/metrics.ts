import Big from 'big.js';

/**
 * A strategy's performance metrics, with empyrical's definitions (docs/ANALYTICS.md gives each
 * formula). Pure functions over an equity curve (one value per period, oldest first) and round
 * trips: no database here. A metric that the data cannot support is null, with the reason.
 */
export interface Metric {
  value: number | null;
  /** Why the value is null. */
  reason?: string;
}

export interface ReturnOptions {
  /** Periods per year: 365 for markets that trade every day, 252 for exchange-traded instruments. */
  periodsPerYear: number;
  /** Annual risk-free rate (0.04 for 4 %), charged per period as rate / periodsPerYear. Default 0. */
  riskFree?: number;
}

const ok = (value: number): Metric => (Number.isFinite(value) ? { value } : { value: null, reason: 'not a finite number' });
const none = (reason: string): Metric => ({ value: null, reason });

const mean = (xs: readonly number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
/** Sample standard deviation (n − 1 in the denominator), as numpy's std with ddof=1. */
function sampleStd(xs: readonly number[]): number {
  const m = mean(xs);
  return Math.sqrt(xs.reduce((s, x) => s + (x - m) ** 2, 0) / (xs.length - 1));
}

/** Simple returns between consecutive values: r[i] = v[i+1] / v[i] − 1. */
export function periodReturns(equity: readonly number[]): number[] {
  const out: number[] = [];
  for (let i = 1; i < equity.length; i++) out.push(equity[i]! / equity[i - 1]! - 1);
  return out;
}

/** numpy.percentile's default (linear interpolation between the two nearest ranks). */
export function percentile(xs: readonly number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  const at = (p / 100) * (s.length - 1);
  const lo = Math.floor(at);
  return lo + 1 < s.length ? s[lo]! + (s[lo + 1]! - s[lo]!) * (at - lo) : s[lo]!;
}

export interface DrawdownPoint {
  /** The period's time (epoch ms). */
  time: number;
  equity: number;
  /** equity / running peak − 1 (0 at a new peak, negative below it). */
  drawdown: number;
}

/** The drawdown curve: each point's fall from the highest value before it. */
export function drawdownCurve(equity: readonly number[], times: readonly number[]): DrawdownPoint[] {
  let peak = -Infinity;
  return equity.map((e, i) => {
    peak = Math.max(peak, e);
    return { time: times[i]!, equity: e, drawdown: peak > 0 ? e / peak - 1 : 0 };
  });
}

/**
 * Metrics of an equity curve: `equity[i]` at `times[i]` (epoch ms, ascending), e.g. each UTC
 * day's closing portfolio value.
 */
export function returnMetrics(equity: readonly number[], times: readonly number[], options: ReturnOptions): Record<string, Metric> {
  const P = options.periodsPerYear;
  const rf = (options.riskFree ?? 0) / P;
  const r = periodReturns(equity);
  const n = r.length;
  const out: Record<string, Metric> = {};
  if (equity.some((e) => !(e > 0))) {
    for (const k of ['totalReturn', 'annualReturn', 'volatility', 'sharpeRatio', 'sortinoRatio', 'calmarRatio', 'maxDrawdown', 'maxDrawdownDuration', 'var95', 'cvar95']) {
      out[k] = none('the equity curve has a value that is not positive');
    }
    return out;
  }
  const needOne = 'needs at least two values of the equity curve (one return)';
  const needTwo = 'needs at least three values of the equity curve (two returns)';
  out.totalReturn = n >= 1 ? ok(equity[n]! / equity[0]! - 1) : none(needOne);
  out.annualReturn = n >= 1 ? ok((equity[n]! / equity[0]!) ** (P / n) - 1) : none(needOne);
  const excess = r.map((x) => x - rf);
  const std = n >= 2 ? sampleStd(excess) : NaN;
  out.volatility = n >= 2 ? ok(sampleStd(r) * Math.sqrt(P)) : none(needTwo);
  // A deviation at the level of rounding noise is none: constant returns have no Sharpe ratio.
  const flat = std <= 1e-12 * Math.max(1, Math.abs(mean(excess)));
  out.sharpeRatio = n < 2 ? none(needTwo) : flat ? none('the returns do not vary') : ok((mean(excess) / std) * Math.sqrt(P));
  // Sortino: downside deviation against a target of 0 (after the risk-free rate).
  const downside = n >= 1 ? Math.sqrt(mean(excess.map((x) => Math.min(x, 0) ** 2))) * Math.sqrt(P) : NaN;
  out.sortinoRatio = n < 2 ? none(needTwo) : downside === 0 ? none('no return below the target') : ok((mean(excess) * P) / downside);
  const curve = drawdownCurve(equity, times);
  // A loop, not Math.min(...): a long curve would overflow the call stack.
  const mdd = curve.reduce((m, p) => Math.min(m, p.drawdown), 0);
  out.maxDrawdown = n >= 1 ? ok(mdd) : none(needOne);
  out.maxDrawdownDuration = n >= 1 ? ok(longestDrawdownMinutes(curve)) : none(needOne);
  out.calmarRatio = n < 1 ? none(needOne) : mdd === 0 ? none('no drawdown') : ok(out.annualReturn.value! / Math.abs(mdd));
  out.var95 = n >= 2 ? ok(percentile(r, 5)) : none(needTwo);
  if (n >= 2) {
    // empyrical's conditional_value_at_risk: the mean of the returns up to the cutoff's rank.
    const cutoff = Math.floor((n - 1) * 0.05);
    const tail = [...r].sort((a, b) => a - b).slice(0, cutoff + 1);
    out.cvar95 = ok(mean(tail));
  } else out.cvar95 = none(needTwo);
  return out;
}

/** The longest time below a previous peak, in minutes: from the peak to the recovery (or the end). */
function longestDrawdownMinutes(curve: readonly DrawdownPoint[]): number {
  let longest = 0;
  let peakAt = curve[0]?.time ?? 0;
  let below = false;
  for (const p of curve) {
    if (p.drawdown >= 0) {
      if (below) longest = Math.max(longest, p.time - peakAt);
      peakAt = p.time;
      below = false;
    } else below = true;
  }
  if (below) longest = Math.max(longest, curve.at(-1)!.time - peakAt);
  return longest / 60_000;
}

/**
 * Beta, alpha (annualized) and correlation against a benchmark's returns over the same periods
 * (`returns[i]` and `benchmark[i]` of the same period).
 */
export function benchmarkMetrics(returns: readonly number[], benchmark: readonly number[], options: ReturnOptions): Record<string, Metric> {
  const P = options.periodsPerYear;
  const rf = (options.riskFree ?? 0) / P;
  if (returns.length !== benchmark.length) throw new Error('returns and benchmark returns must cover the same periods');
  const need = 'needs at least two periods with both returns';
  if (returns.length < 2) return { beta: none(need), alpha: none(need), marketCorrelation: none(need) };
  const a = returns.map((x) => x - rf);
  const b = benchmark.map((x) => x - rf);
  const ma = mean(a);
  const mb = mean(b);
  let cov = 0;
  let varA = 0;
  let varB = 0;
  for (let i = 0; i < a.length; i++) {
    cov += (a[i]! - ma) * (b[i]! - mb);
    varA += (a[i]! - ma) ** 2;
    varB += (b[i]! - mb) ** 2;
  }
  if (varB === 0) return { beta: none('the benchmark does not vary'), alpha: none('the benchmark does not vary'), marketCorrelation: none('the benchmark does not vary') };
  const beta = cov / varB;
  const alpha = (mean(a.map((x, i) => x - beta * b[i]!)) + 1) ** P - 1;
  return {
    beta: ok(beta),
    alpha: ok(alpha),
    marketCorrelation: varA === 0 ? none('the returns do not vary') : ok(cov / Math.sqrt(varA * varB)),
  };
}

export interface RoundTrip {
  /** Realized profit or loss, a decimal string. */
  pnl: string;
  entryTime: number;
  exitTime: number;
}

/** What the trade metrics are computed from: counts, exact sums and extremes, durations in minutes. */
export interface RoundTripSums {
  count: number;
  wins: number;
  losses: number;
  /** Sum of the winning P&L, a decimal string ('0' if none). */
  grossProfit: string;
  /** Sum of the losing P&L, ≤ 0 ('0' if none). */
  grossLoss: string;
  largestWin: string | null;
  largestLoss: string | null;
  avgDurationMinutes: number | null;
  maxDurationMinutes: number | null;
}

/** The sums of round trips in memory (the database computes the same ones for a strategy's). */
export function roundTripSums(trips: readonly RoundTrip[]): RoundTripSums {
  let grossProfit = new Big(0);
  let grossLoss = new Big(0);
  let largestWin: Big | null = null;
  let largestLoss: Big | null = null;
  let wins = 0;
  let losses = 0;
  let durations = 0;
  let longest = -Infinity;
  for (const t of trips) {
    const pnl = new Big(t.pnl);
    if (pnl.gt(0)) {
      wins++;
      grossProfit = grossProfit.plus(pnl);
      if (!largestWin || pnl.gt(largestWin)) largestWin = pnl;
    } else if (pnl.lt(0)) {
      losses++;
      grossLoss = grossLoss.plus(pnl);
      if (!largestLoss || pnl.lt(largestLoss)) largestLoss = pnl;
    }
    const minutes = (t.exitTime - t.entryTime) / 60_000;
    durations += minutes;
    longest = Math.max(longest, minutes);
  }
  return {
    count: trips.length,
    wins,
    losses,
    grossProfit: grossProfit.toFixed(),
    grossLoss: grossLoss.toFixed(),
    largestWin: largestWin?.toFixed() ?? null,
    largestLoss: largestLoss?.toFixed() ?? null,
    avgDurationMinutes: trips.length ? durations / trips.length : null,
    maxDurationMinutes: trips.length ? longest : null,
  };
}

/** Counts, sums (exact decimals) and ratios of closed round trips. */
export function tradeMetrics(trips: readonly RoundTrip[]): Record<string, Metric | string | number | null> {
  return tradeMetricsOf(roundTripSums(trips));
}

/** The trade metrics from the round trips' sums. */
export function tradeMetricsOf(s: RoundTripSums): Record<string, Metric | string | number | null> {
  const none0 = 'no closed round trips';
  const grossProfit = new Big(s.grossProfit);
  const grossLoss = new Big(s.grossLoss);
  return {
    totalTrades: s.count,
    winningTrades: s.wins,
    losingTrades: s.losses,
    winRate: s.count ? ok(s.wins / s.count) : none(none0),
    profitFactor: s.losses === 0 ? none('no losing round trip') : ok(grossProfit.div(grossLoss.abs()).toNumber()),
    grossProfit: grossProfit.toFixed(),
    grossLoss: grossLoss.toFixed(),
    avgWin: s.wins ? grossProfit.div(s.wins).toFixed() : null,
    avgLoss: s.losses ? grossLoss.div(s.losses).toFixed() : null,
    largestWin: s.largestWin,
    largestLoss: s.largestLoss,
    avgTradeDuration: s.avgDurationMinutes === null ? none(none0) : ok(s.avgDurationMinutes),
    longestTradeDuration: s.maxDurationMinutes === null ? none(none0) : ok(s.maxDurationMinutes),
  };
}
