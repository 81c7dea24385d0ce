import type { Metric, RoundTripSums } from '../analytics/metrics.ts';

/**
 * The aggregate columns of round trips' sums (counts, exact NUMERIC sums and extremes, durations
 * in minutes), over a row source with `entry` and `exit` times and `pnl`: one row for any number
 * of round trips, computed by the database.
 */
export const roundTripSumsSelect = (entry = 'entry', exit = 'exit') => `
  count(*)::int AS n, count(*) FILTER (WHERE pnl > 0)::int AS wins, count(*) FILTER (WHERE pnl < 0)::int AS losses,
  coalesce(sum(pnl) FILTER (WHERE pnl > 0), 0)::text AS gross_profit, coalesce(sum(pnl) FILTER (WHERE pnl < 0), 0)::text AS gross_loss,
  max(pnl) FILTER (WHERE pnl > 0)::text AS largest_win, min(pnl) FILTER (WHERE pnl < 0)::text AS largest_loss,
  (avg(extract(epoch FROM ${exit} - ${entry})) / 60)::text AS avg_minutes, (max(extract(epoch FROM ${exit} - ${entry})) / 60)::text AS max_minutes`;

export interface RoundTripSumsRow {
  n: number;
  wins: number;
  losses: number;
  gross_profit: string;
  gross_loss: string;
  largest_win: string | null;
  largest_loss: string | null;
  avg_minutes: string | null;
  max_minutes: string | null;
}

export const toRoundTripSums = (t: RoundTripSumsRow): RoundTripSums => ({
  count: Number(t.n),
  wins: Number(t.wins),
  losses: Number(t.losses),
  grossProfit: t.gross_profit,
  grossLoss: t.gross_loss,
  largestWin: t.largest_win,
  largestLoss: t.largest_loss,
  avgDurationMinutes: t.avg_minutes === null ? null : Number(t.avg_minutes),
  maxDurationMinutes: t.max_minutes === null ? null : Number(t.max_minutes),
});

/** Collects metrics as decimal strings, each null one with its reason. */
export function metricCollector() {
  const metrics: Record<string, string | null> = {};
  const reasons: Record<string, string> = {};
  const put = (name: string, m: Metric) => {
    metrics[name] = m.value === null ? null : String(m.value);
    if (m.value === null) reasons[name] = m.reason ?? 'not computed';
  };
  /** A record of metrics and plain values (counts, exact sums) as tradeMetricsOf returns them. */
  const putAll = (record: Record<string, Metric | string | number | null>) => {
    for (const [name, value] of Object.entries(record)) {
      if (value !== null && typeof value === 'object') put(name, value);
      else metrics[name] = value === null ? null : String(value);
    }
  };
  return { metrics, reasons, put, putAll };
}
