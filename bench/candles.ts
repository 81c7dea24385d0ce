// Candle merging in the worker: the fixed-point merge with roll-up from 1m (src/ingest/apply/candles.ts)
// against the naive design it replaced (big.js, one sorted pass per interval), on the same trades.
import Big from 'big.js';
import { CANDLE_INTERVALS, mergeMinutes, rollUp, type InsertedTrade } from '../src/ingest/apply/candles.ts';

function naive(trades: readonly InsertedTrade[], intervalMs: number): number {
  const sorted = [...trades].sort((a, b) => a.executedAt.getTime() - b.executedAt.getTime() || Number(a.sequence - b.sequence));
  const buckets = new Map<string, { high: Big; low: Big; close: Big; volume: Big; quote: Big; count: number }>();
  for (const t of sorted) {
    const key = `${t.market}\u0000${Math.floor(t.executedAt.getTime() / intervalMs) * intervalMs}`;
    const quote = new Big(t.price).times(t.quantity);
    const b = buckets.get(key);
    if (!b) {
      buckets.set(key, { high: new Big(t.price), low: new Big(t.price), close: new Big(t.price), volume: new Big(t.quantity), quote, count: 1 });
      continue;
    }
    if (b.high.lt(t.price)) b.high = new Big(t.price);
    if (b.low.gt(t.price)) b.low = new Big(t.price);
    b.close = new Big(t.price);
    b.volume = b.volume.plus(t.quantity);
    b.quote = b.quote.plus(quote);
    b.count += 1;
  }
  return buckets.size;
}

const timed = (fn: () => void, runs: number) => {
  fn();
  const start = performance.now();
  for (let i = 0; i < runs; i++) fn();
  return (performance.now() - start) / runs;
};

export function benchCandles(count = 60_000) {
  const trades: InsertedTrade[] = [];
  const t0 = Date.UTC(2026, 10, 20);
  for (let i = 0; i < count; i++) {
    trades.push({
      market: ['TATA_INR', 'HDFC_INR', 'RELIANCE_INR'][i % 3]!,
      price: (100 + (i % 50) + (i % 7) / 100).toFixed(8),
      quantity: (((i * 37) % 5000) / 1000 + 0.001).toFixed(8),
      isBuyerMaker: i % 2 === 0,
      executedAt: new Date(t0 + i * 50),
      sequence: BigInt(i + 1),
    });
  }
  const intervals = Object.values(CANDLE_INTERVALS).map((i) => i.ms);
  const naive_ms = timed(() => intervals.forEach((ms) => naive(trades, ms)), 3);
  const fixed_ms = timed(() => {
    const minutes = mergeMinutes(trades);
    for (const ms of intervals) if (ms !== 60_000) rollUp(minutes, ms);
  }, 10);
  return { trades: count, naive_ms: Math.round(naive_ms), fixed_point_ms: Math.round(fixed_ms * 10) / 10, speedup: Math.round(naive_ms / fixed_ms) };
}
