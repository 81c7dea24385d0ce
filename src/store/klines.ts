import type { Candle } from '../ingest/apply/types.ts';

/** One candle as the read side serves it: the ingest side's Candle, times in epoch milliseconds (UTC). */
export interface Kline extends Omit<Candle, 'market' | 'exchange' | 'interval' | 'openTime' | 'closeTime'> {
  openTime: number;
  closeTime: number;
}
