import { add, cmp } from '../ingest/apply/decimals.ts';
import type { Candle } from '../ingest/apply/types.ts';
import { bucketOpen, nextOpen, type KlineInterval } from './intervals.ts';

/** One candle as the read side serves it: the ingest side's Candle, times in epoch milliseconds (UTC). */
export interface Kline extends Omit<Candle, 'market' | 'interval' | 'openTime' | 'closeTime'> {
  openTime: number;
  closeTime: number;
}

/**
 * Merges candles of a finer stored interval (ascending by open time) into candles of `interval`
 * (buckets aligned in the time zone `offset` ms from UTC).
 * Open is the first source candle's open and close the last one's close, which equals a
 * recomputation from the trades because every source bucket lies inside one target bucket.
 */
export function mergeKlines(source: readonly Kline[], interval: KlineInterval, offset = 0): Kline[] {
  const out: Kline[] = [];
  let current: Kline | null = null;
  for (const k of source) {
    const open = bucketOpen(interval, k.openTime, offset);
    if (!current || current.openTime !== open) {
      current = { ...k, openTime: open, closeTime: nextOpen(interval, open, offset) - 1 };
      out.push(current);
      continue;
    }
    if (cmp(k.high, current.high) > 0) current.high = k.high;
    if (cmp(k.low, current.low) < 0) current.low = k.low;
    current.close = k.close;
    current.volume = add(current.volume, k.volume);
    current.quoteVolume = add(current.quoteVolume, k.quoteVolume);
    current.tradeCount += k.tradeCount;
    current.takerBuyVolume = add(current.takerBuyVolume, k.takerBuyVolume);
    current.takerBuyQuoteVolume = add(current.takerBuyQuoteVolume, k.takerBuyQuoteVolume);
  }
  return out;
}
