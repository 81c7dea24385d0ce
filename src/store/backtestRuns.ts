import Big from 'big.js';
import type { CopyValue, Queryable } from '../database/types.ts';
import { fixedMul, fixedPointText, fixedSub, toFixedPoint, type Fixed } from '../ingest/apply/decimals.ts';
import type { BacktestClaims, BacktestTrade } from '../ingest/events/backtests.ts';
import { returnMetrics, tradeMetricsOf } from '../analytics/metrics.ts';
import { metricCollector, roundTripSumsSelect, toRoundTripSums, type RoundTripSumsRow } from './roundTripSums.ts';
import { periodsPerYear } from './strategyAnalytics.ts';

const DAY = 86_400_000;

/**
 * A report the backtest's state does not allow (a trade for a finished backtest, a part sent
 * twice, a summary that disagrees with the trades). Ingest dead-letters the event with this
 * reason; the library throws it. Nothing has been written when it is thrown.
 */
export class BacktestStateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BacktestStateError';
  }
}

export type BacktestStatus = 'pending' | 'running' | 'completed' | 'failed' | 'cancelled';

interface Locked {
  id: string;
  status: BacktestStatus;
  progress: number;
  initialCapital: string;
  commission: string;
  startDate: Date;
  endDate: Date;
  symbols: string[];
}

/** The backtest, locked for the change; refused when it does not exist or is not in one of `allowed`. */
async function lock(tx: Queryable, id: string, allowed: BacktestStatus[], doing: string): Promise<Locked> {
  const { rows } = await tx.query<{ id: string; status: BacktestStatus; progress: number; capital: string; commission: string; start_date: Date; end_date: Date; symbols: string[] }>(
    `SELECT id::text, status, progress, initial_capital::text AS capital, commission::text, start_date, end_date, symbols
       FROM backtests WHERE id = $1::bigint FOR UPDATE`,
    [id],
  );
  const b = rows[0];
  if (!b) throw new BacktestStateError(`backtest ${id} does not exist`);
  if (!allowed.includes(b.status)) throw new BacktestStateError(`backtest ${id} is ${b.status}: cannot ${doing}`);
  return { id: b.id, status: b.status, progress: Number(b.progress), initialCapital: b.capital, commission: b.commission, startDate: b.start_date, endDate: b.end_date, symbols: b.symbols };
}

/** PENDING → RUNNING, at `at` (default now). */
export async function startRun(tx: Queryable, id: string, at?: Date): Promise<void> {
  await lock(tx, id, ['pending'], 'start');
  await tx.query(`UPDATE backtests SET status = 'running', started_at = coalesce($2, now()), progress = 0, updated_at = now() WHERE id = $1::bigint`, [id, at ?? null]);
}

/** A running backtest's progress, 0 to 100; it never goes back. */
export async function reportProgress(tx: Queryable, id: string, progress: number): Promise<void> {
  const b = await lock(tx, id, ['running'], 'report progress');
  if (!Number.isInteger(progress) || progress < 0 || progress > 100) throw new BacktestStateError(`progress must be an integer from 0 to 100, got ${progress}`);
  if (progress < b.progress) throw new BacktestStateError(`backtest ${id} is at ${b.progress} %: progress does not go back to ${progress} %`);
  await tx.query(`UPDATE backtests SET progress = $2, updated_at = now() WHERE id = $1::bigint`, [id, progress]);
}

/** Claims part `seq` of a kind for the backtest; refused when it was stored before. */
async function claimPart(tx: Queryable, id: string, kind: 'trades' | 'equity', seq: number | null, rows: number): Promise<void> {
  if (seq === null) return;
  const { rows: seen } = await tx.query(`SELECT 1 FROM backtest_chunks WHERE backtest_id = $1::bigint AND kind = $2 AND seq = $3`, [id, kind, seq]);
  if (seen.length) throw new BacktestStateError(`part ${seq} of backtest ${id}'s ${kind} was stored already`);
  await tx.query(`INSERT INTO backtest_chunks (backtest_id, kind, seq, row_count) VALUES ($1::bigint, $2, $3, $4)`, [id, kind, seq, rows]);
}

/**
 * A trade's P&L when not given, exactly: the price move times the quantity (long for buy and
 * long, short for sell and short), less its commission. (Its percentage of the entry value is
 * the producer's, or computed where it is read: PNL_PERCENT.)
 */
export function tradePnl(t: Pick<BacktestTrade, 'side' | 'quantity' | 'entryPrice' | 'exitPrice' | 'commission' | 'pnl'>): string | null {
  if (t.pnl !== undefined) return t.pnl;
  if (t.exitPrice === undefined) return null;
  const move = fixedMul(fixedSub(toFixedPoint(t.exitPrice), toFixedPoint(t.entryPrice)), toFixedPoint(t.quantity));
  const signed: Fixed = t.side === 'buy' || t.side === 'long' ? move : [-move[0], move[1]];
  return fixedPointText(fixedSub(signed, toFixedPoint(t.commission ?? '0')));
}

/** A backtest trade's P&L percentage as read: the producer's, else the P&L over the entry value, to 8 places. */
export const PNL_PERCENT = `coalesce(pnl_percentage, round(pnl / (entry_price * quantity) * 100, 8))`;

/**
 * Stores a part of a running backtest's trades in bulk: one COPY, made as the server takes it,
 * with each closed trade's P&L computed exactly when not given (tradePnl). `seq` numbers the part.
 * `check` validates each trade on the way (the library's raw input; a failure throws and the
 * caller's transaction rolls back); events arrive validated, and are checked before any write.
 */
export async function storeTrades<T = BacktestTrade>(
  tx: Queryable,
  id: string,
  seq: number | null,
  trades: readonly T[],
  check?: (trade: T, index: number) => BacktestTrade,
): Promise<number> {
  const b = await lock(tx, id, ['running'], 'store trades');
  const outside = (t: BacktestTrade) => t.entryTime < b.startDate || t.entryTime > b.endDate;
  if (!check) {
    const i = (trades as readonly BacktestTrade[]).findIndex(outside);
    if (i >= 0) throw new BacktestStateError(`trade ${i} enters at ${(trades[i] as BacktestTrade).entryTime.toISOString()}, outside the backtest's period`);
  }
  await claimPart(tx, id, 'trades', seq, trades.length);
  function* rows(): Generator<CopyValue[]> {
    for (const [i, item] of trades.entries()) {
      const t = check ? check(item, i) : (item as BacktestTrade);
      if (check && outside(t)) throw new BacktestStateError(`trade ${i} enters at ${t.entryTime.toISOString()}, outside the backtest's period`);
      yield [id, t.symbol, t.side, t.quantity, t.entryPrice, t.exitPrice ?? null, t.entryTime, t.exitTime ?? null, tradePnl(t), t.pnlPercent ?? null, t.commission ?? '0', t.signal ?? null];
    }
  }
  const stored = await tx.copyFrom(
    'backtest_trades',
    ['backtest_id', 'symbol', 'side', 'quantity', 'entry_price', 'exit_price', 'entry_time', 'exit_time', 'pnl', 'pnl_percentage', 'commission', 'strategy_signal'],
    rows(),
  );
  await tx.query(`UPDATE backtests SET trade_count = trade_count + $2, updated_at = now() WHERE id = $1::bigint`, [id, stored]);
  return stored;
}

/** Stores a part of a running backtest's equity curve; a time sent again takes the later value. */
export async function storeEquity(tx: Queryable, id: string, seq: number | null, points: readonly { time: Date; equity: string }[]): Promise<number> {
  await lock(tx, id, ['running'], 'store its equity curve');
  await claimPart(tx, id, 'equity', seq, points.length);
  // The last value for a time within the part wins, as it would across parts.
  const byTime = new Map(points.map((p) => [p.time.getTime(), p.equity]));
  await tx.query(
    `INSERT INTO backtest_equity (backtest_id, time, equity) SELECT $1::bigint, t, e FROM unnest($2::timestamptz[], $3::numeric[]) AS u(t, e)
     ON CONFLICT (backtest_id, time) DO UPDATE SET equity = EXCLUDED.equity`,
    [id, [...byTime.keys()].map((t) => new Date(t)), [...byTime.values()]],
  );
  return byTime.size;
}

/** A backtest's summary, computed by tradestore from its trades and equity curve. */
export interface BacktestSummary {
  /** `engine`: the daily closes of the curve the engine sent; `trades`: initial capital plus realized P&L by exit day. */
  equitySource: 'engine' | 'trades';
  periodsPerYear: number;
  finalCapital: string;
  totalPnl: string;
  /** Every metric (docs/ANALYTICS.md's names) as a decimal string, or null with its reason. */
  metrics: Record<string, string | null>;
  reasons: Record<string, string>;
  avgTradeReturn: string | null;
  avgTradeDuration: string | null;
}

/** The daily closes of a backtest's curve: the engine's, else capital plus realized P&L by exit day over its period. */
async function dailyCurve(tx: Queryable, b: Locked): Promise<{ source: 'engine' | 'trades'; points: { time: number; equity: string }[] }> {
  const { rows } = await tx.query<{ day: Date; equity: string }>(
    `SELECT date_trunc('day', time) AS day, (array_agg(equity::text ORDER BY time DESC))[1] AS equity
       FROM backtest_equity WHERE backtest_id = $1::bigint GROUP BY 1 ORDER BY 1`,
    [b.id],
  );
  if (rows.length) return { source: 'engine', points: rows.map((r) => ({ time: r.day.getTime(), equity: r.equity })) };
  const { rows: days } = await tx.query<{ day: Date; pnl: string }>(
    `SELECT date_trunc('day', exit_time) AS day, sum(pnl)::text AS pnl FROM backtest_trades
      WHERE backtest_id = $1::bigint AND exit_time IS NOT NULL AND pnl IS NOT NULL GROUP BY 1 ORDER BY 1`,
    [b.id],
  );
  const byDay = new Map(days.map((d) => [d.day.getTime(), d.pnl]));
  const first = Math.floor(b.startDate.getTime() / DAY) * DAY - DAY;
  const last = Math.max(Math.floor((b.endDate.getTime() - 1) / DAY) * DAY, days.at(-1)?.day.getTime() ?? 0);
  let equity = new Big(b.initialCapital);
  const points: { time: number; equity: string }[] = [];
  for (let day = first; day <= last; day += DAY) {
    const pnl = byDay.get(day);
    if (pnl !== undefined) equity = equity.plus(pnl);
    points.push({ time: day, equity: equity.toFixed() });
  }
  return { source: 'trades', points };
}

type DailyCurve = Awaited<ReturnType<typeof dailyCurve>>;

/** The summary of a backtest from what is stored (read-only), with the daily curve it used. */
async function summarize(tx: Queryable, b: Locked): Promise<{ summary: BacktestSummary; curve: DailyCurve }> {
  const { rows } = await tx.query<RoundTripSumsRow & { total: string; avg_return: string | null; avg_duration: string | null }>(
    `SELECT ${roundTripSumsSelect('entry_time', 'exit_time')}, coalesce(sum(pnl), 0)::text AS total,
            (avg(${PNL_PERCENT}) / 100)::text AS avg_return, avg(exit_time - entry_time)::text AS avg_duration
       FROM backtest_trades WHERE backtest_id = $1::bigint AND exit_time IS NOT NULL AND pnl IS NOT NULL`,
    [b.id],
  );
  const t = rows[0]!;
  const sums = toRoundTripSums(t);
  const periods = await periodsPerYear(tx, b.symbols);
  const curve = await dailyCurve(tx, b);
  const { metrics, reasons, put, putAll } = metricCollector();
  for (const [name, m] of Object.entries(returnMetrics(curve.points.map((p) => Number(p.equity)), curve.points.map((p) => p.time), { periodsPerYear: periods }))) put(name, m);
  putAll(tradeMetricsOf(sums));
  // With the engine's curve, the final capital is its last value; else the capital plus the P&L.
  const finalCapital = curve.source === 'engine' ? curve.points.at(-1)!.equity : new Big(b.initialCapital).plus(t.total).toFixed();
  const first = curve.source === 'engine' ? curve.points[0]!.equity : b.initialCapital;
  if (!new Big(first).gt(0)) throw new BacktestStateError(`the equity curve starts at ${first}: a return needs a positive start`);
  metrics.totalReturn = new Big(finalCapital).div(first).minus(1).toFixed(12);
  delete reasons.totalReturn;
  return {
    summary: { equitySource: curve.source, periodsPerYear: periods, finalCapital, totalPnl: t.total, metrics, reasons, avgTradeReturn: t.avg_return, avgTradeDuration: t.avg_duration },
    curve,
  };
}

/** The claimed values that follow from the trades, with the computed values they are checked against. */
const CHECKED: [keyof BacktestClaims, (s: BacktestSummary) => string | null][] = [
  ['totalTrades', (s) => s.metrics.totalTrades ?? null],
  ['winningTrades', (s) => s.metrics.winningTrades ?? null],
  ['losingTrades', (s) => s.metrics.losingTrades ?? null],
  ['totalPnl', (s) => s.totalPnl],
  ['grossProfit', (s) => s.metrics.grossProfit ?? null],
  ['grossLoss', (s) => s.metrics.grossLoss ?? null],
  ['finalCapital', (s) => s.finalCapital],
  ['totalReturn', (s) => s.metrics.totalReturn ?? null],
  ['winRate', (s) => s.metrics.winRate ?? null],
  ['profitFactor', (s) => s.metrics.profitFactor ?? null],
  ['avgWin', (s) => s.metrics.avgWin ?? null],
  ['avgLoss', (s) => s.metrics.avgLoss ?? null],
  ['largestWin', (s) => s.metrics.largestWin ?? null],
  ['largestLoss', (s) => s.metrics.largestLoss ?? null],
];

/**
 * Where a claimed summary disagrees with the computed one. A claimed value agrees when the
 * computed value, rounded to the claimed value's decimal places, is within one unit of the last
 * of them (an engine that rounds to cents or to 4 places agrees); counts must be equal.
 */
export function disagreements(claims: BacktestClaims, summary: BacktestSummary): string[] {
  const out: string[] = [];
  for (const [name, computed] of CHECKED) {
    const claimed = claims[name];
    if (claimed === undefined) continue;
    const value = computed(summary);
    if (value === null) {
      out.push(`${name}: claimed ${claimed}, but the trades give none`);
      continue;
    }
    const text = String(claimed);
    if (typeof claimed === 'number') {
      if (String(claimed) !== value) out.push(`${name}: claimed ${text}, the stored trades give ${value}`);
      continue;
    }
    const places = /\.(\d+)$/.exec(text)?.[1]?.length ?? 0;
    const unit = new Big(1).div(new Big(10).pow(places));
    if (new Big(value).round(places).minus(text).abs().gt(unit)) out.push(`${name}: claimed ${text}, the stored trades give ${value}`);
  }
  return out;
}

/**
 * RUNNING → COMPLETED: computes the summary from the stored trades and curve, checks the
 * engine's claims against it (refused with each disagreement, the backtest still running), and
 * writes backtest_results. Returns the summary.
 */
export async function completeRun(
  tx: Queryable,
  id: string,
  report: { at?: Date; summary?: BacktestClaims; executionTimeMs?: number; dataPointsProcessed?: number; details?: string | null } = {},
): Promise<BacktestSummary> {
  const b = await lock(tx, id, ['running'], 'complete');
  const { summary, curve } = await summarize(tx, b);
  if (report.summary) {
    const wrong = disagreements(report.summary, summary);
    if (wrong.length) throw new BacktestStateError(`the engine's summary disagrees with the ${summary.metrics.totalTrades} stored trades: ${wrong.join('; ')}`);
  }
  const m = summary.metrics;
  const detailed = { metrics: m, reasons: summary.reasons, equitySource: summary.equitySource, periodsPerYear: summary.periodsPerYear, claimed: report.summary ?? null };
  await tx.query(
    `INSERT INTO backtest_results (backtest_id, total_return, annual_return, volatility, sharpe_ratio, sortino_ratio, calmar_ratio, max_drawdown,
                                   max_drawdown_duration, win_rate, profit_factor, total_trades, winning_trades, losing_trades, avg_trade_return,
                                   avg_win, avg_loss, largest_win, largest_loss, avg_trade_duration, final_capital, gross_profit, gross_loss,
                                   var_95, cvar_95, equity_source, detailed_results, equity_curve, execution_time_ms, data_points_processed)
     VALUES ($1::bigint, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20::interval, $21, $22, $23, $24, $25, $26,
             $27::jsonb || jsonb_build_object('engine', $31::jsonb), $28::jsonb, $29, $30)
     ON CONFLICT (backtest_id) DO NOTHING`,
    [id, m.totalReturn, m.annualReturn, m.volatility, m.sharpeRatio, m.sortinoRatio, m.calmarRatio, m.maxDrawdown,
      m.maxDrawdownDuration === null ? null : Math.round(Number(m.maxDrawdownDuration)), m.winRate, m.profitFactor, Number(m.totalTrades),
      Number(m.winningTrades), Number(m.losingTrades), summary.avgTradeReturn, m.avgWin, m.avgLoss, m.largestWin, m.largestLoss,
      summary.avgTradeDuration, summary.finalCapital, m.grossProfit, m.grossLoss, m.var95, m.cvar95, summary.equitySource,
      JSON.stringify(detailed), JSON.stringify(curve.points.map((p) => ({ time: new Date(p.time).toISOString(), equity: p.equity }))),
      report.executionTimeMs ?? null, report.dataPointsProcessed ?? null, report.details ?? null],
  );
  await tx.query(
    `UPDATE backtests SET status = 'completed', progress = 100, completed_at = coalesce($2, now()), updated_at = now() WHERE id = $1::bigint`,
    [id, report.at ?? null],
  );
  return summary;
}

/** PENDING or RUNNING → FAILED, with the engine's error. */
export async function failRun(tx: Queryable, id: string, error: string, at?: Date): Promise<void> {
  await lock(tx, id, ['pending', 'running'], 'fail');
  await tx.query(`UPDATE backtests SET status = 'failed', error_message = $2, completed_at = coalesce($3, now()), updated_at = now() WHERE id = $1::bigint`, [id, error, at ?? null]);
}

/** PENDING or RUNNING → CANCELLED. */
export async function cancelRun(tx: Queryable, id: string): Promise<void> {
  await lock(tx, id, ['pending', 'running'], 'cancel');
  await tx.query(`UPDATE backtests SET status = 'cancelled', completed_at = now(), updated_at = now() WHERE id = $1::bigint`, [id]);
}
