import { CANDLE_INTERVALS, type CandleInterval } from '../ingest/apply/candles.ts';
import { InvalidArgumentError } from './errors.ts';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/**
 * Every kline interval Binance knows. Stored ones are read from their candle table; the others
 * are merged from the coarsest stored interval that divides them. Buckets are aligned in UTC:
 * fixed-length ones to the Unix epoch, weeks to Monday 00:00 UTC, months to the 1st.
 */
export const KLINE_INTERVALS = {
  '1m': { ms: MINUTE, source: '1m' },
  '3m': { ms: 3 * MINUTE, source: '1m' },
  '5m': { ms: 5 * MINUTE, source: '5m' },
  '15m': { ms: 15 * MINUTE, source: '15m' },
  '30m': { ms: 30 * MINUTE, source: '15m' },
  '1h': { ms: HOUR, source: '1h' },
  '2h': { ms: 2 * HOUR, source: '1h' },
  '4h': { ms: 4 * HOUR, source: '4h' },
  '6h': { ms: 6 * HOUR, source: '1h' },
  '8h': { ms: 8 * HOUR, source: '4h' },
  '12h': { ms: 12 * HOUR, source: '4h' },
  '1d': { ms: DAY, source: '1d' },
  '3d': { ms: 3 * DAY, source: '1d' },
  '1w': { ms: 7 * DAY, source: '1d' },
  '1M': { ms: 31 * DAY, source: '1d' },
} as const satisfies Record<string, { ms: number; source: CandleInterval }>;
export type KlineInterval = keyof typeof KLINE_INTERVALS;

export function klineInterval(value: string, parameter = 'interval'): KlineInterval {
  if (!Object.hasOwn(KLINE_INTERVALS, value)) {
    throw new InvalidArgumentError(parameter, `must be one of ${Object.keys(KLINE_INTERVALS).join(', ')}`);
  }
  return value as KlineInterval;
}

export const isStored = (interval: KlineInterval): interval is CandleInterval & KlineInterval =>
  Object.hasOwn(CANDLE_INTERVALS, interval) && KLINE_INTERVALS[interval].source === interval;

/** 1970-01-05 was the first Monday after the epoch. */
const FIRST_MONDAY = 4 * DAY;

/** Open time of the bucket that holds `ms`. */
export function bucketOpen(interval: KlineInterval, ms: number): number {
  if (interval === '1M') {
    const d = new Date(ms);
    return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
  }
  if (interval === '1w') return Math.floor((ms - FIRST_MONDAY) / (7 * DAY)) * 7 * DAY + FIRST_MONDAY;
  const step = KLINE_INTERVALS[interval].ms;
  return Math.floor(ms / step) * step;
}

/** Open time of the bucket after the one that opens at `open`. */
export function nextOpen(interval: KlineInterval, open: number): number {
  if (interval === '1M') {
    const d = new Date(open);
    return Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
  }
  return open + KLINE_INTERVALS[interval].ms;
}

/** Open time `n` buckets before the one that opens at `open`. */
export function openBefore(interval: KlineInterval, open: number, n: number): number {
  if (interval === '1M') {
    const d = new Date(open);
    return Date.UTC(d.getUTCFullYear(), d.getUTCMonth() - n, 1);
  }
  return open - n * KLINE_INTERVALS[interval].ms;
}
