import { isLosslessNumber } from 'lossless-json';
import { z } from 'zod';
import { count, decimal, jsonObject, symbol, timestamp } from './fields.ts';

/**
 * What a backtest engine reports about a run (docs/BACKTESTS.md): it starts, makes progress,
 * sends its trades and its equity curve in numbered parts, and completes (with its own summary,
 * checked against its trades) or fails.
 */

/** A backtest's id: the positive integer tradestore gave it when it was created. */
export const backtestId = z.preprocess(
  (v) => (isLosslessNumber(v) ? v.value : v),
  z
    .union([z.string(), z.number()], { error: 'expected a backtest id (a positive integer)' })
    .transform((v) => String(v))
    .pipe(z.string().regex(/^[1-9]\d{0,17}$/, { error: 'expected a backtest id (a positive integer)' })),
);

/** Parts are numbered from 0 by the engine; a part number seen before is refused. */
const part = count;

export const backtestTrade = z
  .object({
    symbol: symbol(50),
    side: z
      .string({ error: 'expected buy, sell, long or short' })
      .transform((v) => v.toLowerCase())
      .pipe(z.enum(['buy', 'sell', 'long', 'short'], { error: (i) => `expected buy, sell, long or short, got ${JSON.stringify(i.input)}` })),
    quantity: decimal('positive'),
    entryPrice: decimal('positive'),
    exitPrice: decimal('positive').optional(),
    entryTime: timestamp,
    exitTime: timestamp.optional(),
    /** Computed exactly when not given: the price move times the quantity, less the commission. */
    pnl: decimal().optional(),
    pnlPercent: decimal().optional(),
    commission: decimal('nonNegative').optional(),
    signal: z.string().max(50).optional(),
  })
  .refine((t) => (t.exitPrice === undefined) === (t.exitTime === undefined), { error: 'a trade has both exitPrice and exitTime, or neither (still open)' })
  .refine((t) => t.exitTime === undefined || t.exitTime >= t.entryTime, { error: 'exitTime is before entryTime' });

export const backtestStarted = z.object({ backtestId, timestamp: timestamp.optional() });

export const backtestProgress = z.object({
  backtestId,
  progress: count.pipe(z.number().max(100, { error: 'progress is a percentage, 0 to 100' })),
});

export const backtestTrades = z.object({
  backtestId,
  seq: part,
  trades: z.array(backtestTrade, { error: 'expected a list of trades' }).min(1).max(10_000),
});

export const backtestEquity = z.object({
  backtestId,
  seq: part,
  points: z.array(z.object({ time: timestamp, equity: decimal() }), { error: 'expected a list of {time, equity}' }).min(1).max(50_000),
});

/**
 * The engine's own summary. The values it gives that follow from its trades are checked against
 * the stored trades; a disagreement refuses the completion (docs/BACKTESTS.md).
 */
/** A claimed value as the engine wrote it (its decimal places are what it is checked to). */
const claimed = z.preprocess(
  (v) => (isLosslessNumber(v) ? v.value : typeof v === 'number' ? String(v) : v),
  z.string({ error: 'expected a decimal number' }).regex(/^-?\d{1,30}(\.\d{1,30})?$/, { error: 'expected a plain decimal number such as 0.5 or 1250.75' }),
);

export const backtestClaims = z.object({
  totalTrades: count.optional(),
  winningTrades: count.optional(),
  losingTrades: count.optional(),
  totalPnl: claimed.optional(),
  grossProfit: claimed.optional(),
  grossLoss: claimed.optional(),
  finalCapital: claimed.optional(),
  totalReturn: claimed.optional(),
  winRate: claimed.optional(),
  profitFactor: claimed.optional(),
  avgWin: claimed.optional(),
  avgLoss: claimed.optional(),
  largestWin: claimed.optional(),
  largestLoss: claimed.optional(),
  /** Kept for reference, not checked: they depend on the engine's conventions. */
  sharpeRatio: decimal().optional(),
  sortinoRatio: decimal().optional(),
  maxDrawdown: decimal().optional(),
});

export const backtestCompleted = z.object({
  backtestId,
  timestamp: timestamp.optional(),
  summary: backtestClaims.optional(),
  executionTimeMs: count.optional(),
  dataPointsProcessed: count.optional(),
  details: jsonObject.optional(),
});

export const backtestFailed = z.object({
  backtestId,
  timestamp: timestamp.optional(),
  error: z.string({ error: 'expected the error, a text' }).min(1).max(2000),
});

export type BacktestTrade = z.output<typeof backtestTrade>;
export type BacktestClaims = z.output<typeof backtestClaims>;
