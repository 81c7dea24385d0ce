import type { Queryable } from '../database/types.ts';
import Big from 'big.js';
import { excluded } from '../ingest/apply/rows.ts';
import { equityCurve, periodsPerYear, strategyAnalytics } from './strategyAnalytics.ts';

const DAY = 86_400_000;

/** A metric as stored: the decimal string, or null. */
const num = (v: string | null | undefined) => (v === undefined ? null : v);
/** Minutes as the INTEGER columns hold them. */
const minutes = (v: string | null | undefined) => (v === null || v === undefined ? null : Math.round(Number(v)));
/** A correlation computed in floating point can overshoot ±1 by rounding; the column is checked to [-1, 1]. */
const clampUnit = (v: string | null | undefined) => (v === null || v === undefined ? null : String(Math.max(-1, Math.min(1, Number(v)))));

/**
 * The daily job: for each finished UTC day of the last `backfillDays` that a strategy lived and
 * that has no row yet, writes its seed 002 strategy_metrics row (the metrics since the strategy
 * began, to that day's end) and its seed 003 strategy_performance point (stamped at the day's
 * last millisecond). Strategies with no equity curve and no round trips are skipped. A day
 * written is not written again, except the last finished one, rewritten on each run so round
 * trips that arrive late are counted. Returns how many days were written.
 */
export async function writeDailyMetrics(db: Queryable, now: Date, backfillDays = 7): Promise<{ days: number; strategies: number }> {
  const today = Math.floor(now.getTime() / DAY) * DAY;
  const first = today - backfillDays * DAY;
  const { rows: strategies } = await db.query<{ id: string; initial_capital: string | null; created_at: Date; symbols: string[]; written: Date[] }>(
    `SELECT s.id, s.initial_capital::text, s.created_at, s.symbols,
            coalesce((SELECT array_agg(m.date::timestamptz) FROM strategy_metrics m WHERE m.strategy_id = s.id AND m.date >= $1::timestamptz::date), '{}') AS written
       FROM strategies s
      WHERE s.created_at < $2
        AND (s.initial_capital IS NOT NULL OR EXISTS (SELECT 1 FROM portfolio_snapshots p WHERE p.strategy_id = s.id)
             OR EXISTS (SELECT 1 FROM strategy_trades t WHERE t.strategy_id = s.id AND t.status = 'closed'))
      ORDER BY s.id`,
    [new Date(first), new Date(today)],
  );
  let days = 0;
  const touched = new Set<string>();
  for (const s of strategies) {
    const done = new Set(s.written.map((d) => new Date(d).getTime()));
    const owner = { id: s.id, initialCapital: s.initial_capital, createdAt: s.created_at.toISOString() };
    const periods = await periodsPerYear(db, s.symbols);
    const born = Math.floor(s.created_at.getTime() / DAY) * DAY;
    // The curve to the end of yesterday, read once; each day's is its beginning up to that day.
    const whole = await equityCurve(db, owner, { to: new Date(today), periodsPerYear: periods, now: new Date(today - DAY) });
    for (let day = Math.max(first, born); day < today; day += DAY) {
      // The last finished day is written again on each run, so round trips that arrive late are counted.
      if (done.has(day) && day !== today - DAY) continue;
      const to = new Date(day + DAY);
      const points = whole.points.filter((p) => p.time <= day);
      const curve = points.length ? { ...whole, points } : { source: null, reason: whole.reason ?? 'the period holds no day of the strategy', points };
      const a = await strategyAnalytics(db, owner, { to, periodsPerYear: periods, curve });
      const m = a.metrics;
      await db.query(
        `INSERT INTO strategy_metrics (strategy_id, date, total_trades, winning_trades, losing_trades, total_pnl, gross_profit, gross_loss,
                                       win_rate, profit_factor, max_drawdown, max_drawdown_duration, sharpe_ratio, sortino_ratio, calmar_ratio,
                                       avg_trade_duration, max_trade_duration, avg_win, avg_loss, largest_win, largest_loss, var_95, cvar_95,
                                       market_correlation, beta, alpha)
         VALUES ($1, $2::timestamptz::date, $3, $4, $5, $6::numeric + $7::numeric, $6, $7, round($8::numeric, 4), $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19,
                 $20, $21, $22, $23, $24, $25)
         ON CONFLICT (strategy_id, date) DO UPDATE SET ${excluded('total_trades', 'winning_trades', 'losing_trades', 'total_pnl', 'gross_profit', 'gross_loss', 'win_rate',
           'profit_factor', 'max_drawdown', 'max_drawdown_duration', 'sharpe_ratio', 'sortino_ratio', 'calmar_ratio', 'avg_trade_duration', 'max_trade_duration',
           'avg_win', 'avg_loss', 'largest_win', 'largest_loss', 'var_95', 'cvar_95', 'market_correlation', 'beta', 'alpha')}, updated_at = now()`,
        [s.id, new Date(day), Number(m.totalTrades), Number(m.winningTrades), Number(m.losingTrades), m.grossProfit, m.grossLoss,
          num(m.winRate), num(m.profitFactor), num(m.maxDrawdown), minutes(m.maxDrawdownDuration), num(m.sharpeRatio), num(m.sortinoRatio),
          num(m.calmarRatio), minutes(m.avgTradeDuration), minutes(m.longestTradeDuration), num(m.avgWin), num(m.avgLoss), num(m.largestWin),
          num(m.largestLoss), num(m.var95), num(m.cvar95), clampUnit(m.marketCorrelation), num(m.beta), num(m.alpha)],
      );
      // Seed 003's point: the day's own return beside the cumulative one, win rate in percent.
      const last = points.at(-1);
      const previous = points.at(-2);
      const dailyReturn = last && previous && last.time === day && Number(previous.equity) > 0 ? String(Number(last.equity) / Number(previous.equity) - 1) : null;
      const moneyReturn = last ? new Big(last.equity).minus(points[0]!.equity).toFixed() : null;
      await db.query(
        `INSERT INTO strategy_performance (strategy_id, timestamp, total_return, daily_return, cumulative_return, sharpe_ratio, max_drawdown,
                                           win_rate, profit_factor, total_trades, winning_trades, losing_trades, avg_win, avg_loss, largest_win, largest_loss)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8::numeric * 100, $9, $10, $11, $12, $13, $14, $15, $16)
         ON CONFLICT (strategy_id, timestamp) DO UPDATE SET ${excluded('total_return', 'daily_return', 'cumulative_return', 'sharpe_ratio', 'max_drawdown',
           'win_rate', 'profit_factor', 'total_trades', 'winning_trades', 'losing_trades', 'avg_win', 'avg_loss', 'largest_win', 'largest_loss')}`,
        [s.id, new Date(day + DAY - 1), moneyReturn, dailyReturn, num(m.totalReturn), num(m.sharpeRatio), num(m.maxDrawdown), num(m.winRate),
          num(m.profitFactor), Number(m.totalTrades), Number(m.winningTrades), Number(m.losingTrades), num(m.avgWin), num(m.avgLoss),
          num(m.largestWin), num(m.largestLoss)],
      );
      days += 1;
      touched.add(s.id);
    }
  }
  return { days, strategies: touched.size };
}
