import { CANDLE_INTERVALS, type CandleInterval } from '../ingest/apply/candles.ts';
import { InvalidArgumentError } from './errors.ts';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/**
 * Every kline interval Binance knows, and 5s (seed 004's ohlc_candles). Stored ones are read
 * from their candle table; the others are merged from the coarsest stored interval that divides
 * them, and the venue's `1s` and `5s` are aggregated from its trades (it keeps no second
 * candles; an exchange instrument's are built from its ticks, docs/CANDLES.md). Buckets are aligned in UTC, or in the time
 * zone a request names (`timeZone`, see `klineSource`): fixed-length ones to the Unix epoch,
 * weeks to Monday 00:00, months to the 1st.
 */
export const KLINE_INTERVALS = {
  '1s': { ms: 1000, source: 'trades' },
  '5s': { ms: 5000, source: 'trades' },
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
} as const satisfies Record<string, { ms: number; source: CandleInterval | 'trades' }>;
export type KlineInterval = keyof typeof KLINE_INTERVALS;

export function klineInterval(value: string, parameter = 'interval'): KlineInterval {
  if (!Object.hasOwn(KLINE_INTERVALS, value)) {
    throw new InvalidArgumentError(parameter, `must be one of ${Object.keys(KLINE_INTERVALS).join(', ')}`);
  }
  return value as KlineInterval;
}

export const isStored = (interval: KlineInterval): interval is CandleInterval & KlineInterval =>
  Object.hasOwn(CANDLE_INTERVALS, interval) && KLINE_INTERVALS[interval].source === interval;

/**
 * Binance's timeZone: hours, or hours and minutes, from -12:00 to +14:00 ("8", "-1:00", "+05:45").
 * Minutes are 00, 15, 30 or 45, as in every time zone in use: buckets then always come from 15m
 * candles or coarser.
 */
const TIME_ZONE = /^([+-]?)(\d{1,2})(?::(\d{2}))?$/;

/** The offset from UTC, in milliseconds, that a timeZone parameter names; null when it names none. */
export function timeZoneOffset(value: string): number | null {
  // An unencoded "+" in a query string arrives as a space.
  const match = TIME_ZONE.exec(value.trim());
  if (!match) return null;
  const [hours, minutes] = [Number(match[2]), Number(match[3] ?? 0)];
  if (minutes % 15 !== 0 || minutes > 45) return null;
  const offset = (match[1] === '-' ? -1 : 1) * (hours * HOUR + minutes * MINUTE);
  return offset < -12 * HOUR || offset > 14 * HOUR ? null : offset;
}

/**
 * Where the candles of `interval` in a time zone `offset` ms from UTC come from: the stored
 * interval itself when its buckets are the same there, else the coarsest stored interval whose
 * buckets tile both the interval (a day, for weeks and months) and the offset. Every offset is a
 * whole number of minutes, so 1m candles always qualify; the offsets timeZoneOffset accepts
 * (multiples of 15 minutes) get 15m candles or coarser.
 */
export function klineSource(interval: KlineInterval, offset = 0): CandleInterval | 'trades' {
  const preferred = KLINE_INTERVALS[interval].source;
  if (preferred === 'trades' || offset % CANDLE_INTERVALS[preferred].ms === 0) return preferred;
  const unit = interval === '1w' || interval === '1M' ? DAY : KLINE_INTERVALS[interval].ms;
  const stored = (Object.keys(CANDLE_INTERVALS) as CandleInterval[]).sort((a, b) => CANDLE_INTERVALS[b].ms - CANDLE_INTERVALS[a].ms);
  return stored.find((c) => unit % CANDLE_INTERVALS[c].ms === 0 && offset % CANDLE_INTERVALS[c].ms === 0)!;
}

/** 1970-01-05 was the first Monday after the epoch. */
const FIRST_MONDAY = 4 * DAY;

/** Open time of the bucket that holds `ms`, with buckets aligned in the time zone `offset` ms from UTC. */
export function bucketOpen(interval: KlineInterval, ms: number, offset = 0): number {
  return utcBucketOpen(interval, ms + offset) - offset;
}

function utcBucketOpen(interval: KlineInterval, ms: number): number {
  if (interval === '1M') {
    const d = new Date(ms);
    return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
  }
  if (interval === '1w') return Math.floor((ms - FIRST_MONDAY) / (7 * DAY)) * 7 * DAY + FIRST_MONDAY;
  const step = KLINE_INTERVALS[interval].ms;
  return Math.floor(ms / step) * step;
}

/** Open time of the bucket after the one that opens at `open` (in the time zone `offset` ms from UTC). */
export function nextOpen(interval: KlineInterval, open: number, offset = 0): number {
  if (interval === '1M') {
    const d = new Date(open + offset);
    return Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1) - offset;
  }
  return open + KLINE_INTERVALS[interval].ms;
}
