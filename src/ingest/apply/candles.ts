import type { Queryable } from '../../database/types.ts';
import type { Candle } from './types.ts';

/** The venue's candle tables. Names come from this fixed map, never from input. */
export const CANDLE_INTERVALS = {
  '1m': { table: 'ohlcv_1m', ms: 60_000 },
  '5m': { table: 'ohlcv_5m', ms: 5 * 60_000 },
  '15m': { table: 'ohlcv_15m', ms: 15 * 60_000 },
  '1h': { table: 'ohlcv_1h', ms: 60 * 60_000 },
  '4h': { table: 'ohlcv_4h', ms: 4 * 60 * 60_000 },
  '1d': { table: 'ohlcv_1d', ms: 24 * 60 * 60_000 },
} as const;
export type CandleInterval = keyof typeof CANDLE_INTERVALS;

/** A trade as it was inserted: sequence_number orders trades with equal timestamps. */
export interface InsertedTrade {
  market: string;
  price: string;
  quantity: string;
  isBuyerMaker: boolean;
  executedAt: Date;
  sequence: bigint;
}

interface Bucket {
  market: string;
  openTime: number;
  /** Prices and volumes in fixed point: 8 decimals (the trades' DECIMAL(20,8)), quote volumes 16. */
  open: bigint;
  high: bigint;
  low: bigint;
  close: bigint;
  volume: bigint;
  quoteVolume: bigint;
  count: number;
  takerBuyVolume: bigint;
  takerBuyQuoteVolume: bigint;
  firstAt: Date;
  lastAt: Date;
}

/** Decimals of prices and quantities (seed 000's DECIMAL(20,8)); a price × quantity has twice as many. */
const SCALE = 8;

/** Decimal text → integer of `scale` decimals, exactly ("134.5" → 13450000000n at scale 8). */
export function toFixed(text: string, scale = SCALE): bigint {
  const negative = text.startsWith('-');
  const digits = negative || text.startsWith('+') ? text.slice(1) : text;
  const dot = digits.indexOf('.');
  const whole = dot < 0 ? digits : digits.slice(0, dot);
  let fraction = dot < 0 ? '' : digits.slice(dot + 1);
  if (fraction.length > scale) {
    if (/[^0]/.test(fraction.slice(scale))) throw new RangeError(`${text} has more than ${scale} decimals`);
    fraction = fraction.slice(0, scale);
  }
  const value = BigInt((whole || '0') + fraction.padEnd(scale, '0'));
  return negative ? -value : value;
}

/** Integer of `scale` decimals → decimal text with exactly `scale` decimals. */
export function fromFixed(value: bigint, scale = SCALE): string {
  const negative = value < 0n;
  const digits = (negative ? -value : value).toString().padStart(scale + 1, '0');
  return `${negative ? '-' : ''}${digits.slice(0, -scale)}.${digits.slice(-scale)}`;
}

/** Epoch-aligned buckets are UTC-aligned: every interval divides a UTC day. */
export const bucketStart = (ms: number, intervalMs: number) => Math.floor(ms / intervalMs) * intervalMs;

/**
 * The batch's newly inserted trades as 1m buckets, in fixed-point integers, ordered by
 * (executed_at, sequence_number) like a recomputation. Buckets come out in time order.
 */
export function mergeMinutes(trades: readonly InsertedTrade[]): Bucket[] {
  const sorted = [...trades].sort(
    (a, b) => a.executedAt.getTime() - b.executedAt.getTime() || (a.sequence < b.sequence ? -1 : a.sequence > b.sequence ? 1 : 0),
  );
  const buckets = new Map<string, Bucket>();
  for (const t of sorted) {
    const openTime = bucketStart(t.executedAt.getTime(), 60_000);
    const id = `${t.market}\u0000${openTime}`;
    const price = toFixed(t.price);
    const quantity = toFixed(t.quantity);
    const quote = price * quantity;
    const takerBuys = !t.isBuyerMaker;
    const b = buckets.get(id);
    if (!b) {
      buckets.set(id, {
        market: t.market,
        openTime,
        open: price,
        high: price,
        low: price,
        close: price,
        volume: quantity,
        quoteVolume: quote,
        count: 1,
        takerBuyVolume: takerBuys ? quantity : 0n,
        takerBuyQuoteVolume: takerBuys ? quote : 0n,
        firstAt: t.executedAt,
        lastAt: t.executedAt,
      });
      continue;
    }
    if (price > b.high) b.high = price;
    if (price < b.low) b.low = price;
    b.close = price;
    b.lastAt = t.executedAt;
    b.volume += quantity;
    b.quoteVolume += quote;
    b.count += 1;
    if (takerBuys) {
      b.takerBuyVolume += quantity;
      b.takerBuyQuoteVolume += quote;
    }
  }
  return [...buckets.values()];
}

/**
 * Rolls 1m buckets (in time order) up into a coarser interval: the first minute's open, the last
 * minute's close, the extremes and the sums. Exactly what merging the trades again would give.
 */
export function rollUp(minutes: readonly Bucket[], intervalMs: number): Bucket[] {
  const buckets = new Map<string, Bucket>();
  for (const m of minutes) {
    const openTime = bucketStart(m.openTime, intervalMs);
    const id = `${m.market}\u0000${openTime}`;
    const b = buckets.get(id);
    if (!b) {
      buckets.set(id, { ...m, openTime });
      continue;
    }
    if (m.high > b.high) b.high = m.high;
    if (m.low < b.low) b.low = m.low;
    b.close = m.close;
    b.lastAt = m.lastAt;
    b.volume += m.volume;
    b.quoteVolume += m.quoteVolume;
    b.count += m.count;
    b.takerBuyVolume += m.takerBuyVolume;
    b.takerBuyQuoteVolume += m.takerBuyQuoteVolume;
  }
  return [...buckets.values()];
}

/** Column names of one candle table, for the merge clause both kinds of candle share. */
export interface CandleColumns {
  open: string; high: string; low: string; close: string; volume: string; quoteVolume: string; count: string;
  takerBuyVolume: string; takerBuyQuoteVolume: string;
  /** Times of the candle's first and last trade: which side opens and closes the merged candle. */
  first: string; last: string;
}

const VENUE_CANDLE_COLUMNS: CandleColumns = {
  open: 'open_price', high: 'high_price', low: 'low_price', close: 'close_price', volume: 'volume', quoteVolume: 'quote_volume',
  count: 'trade_count', takerBuyVolume: 'taker_buy_volume', takerBuyQuoteVolume: 'taker_buy_quote_volume', first: 'first_trade_at', last: 'last_trade_at',
};

/**
 * The ON CONFLICT SET list that merges a batch's bucket (EXCLUDED) into the stored candle (`c`):
 * volumes and counts add up, high and low widen, and open and close are taken from whichever side
 * holds the earlier first trade and the later last trade. On equal times the batch's trade counts
 * as the later one: its trades arrived after the stored ones, so the candle always equals a
 * recomputation that orders equal times by arrival. The venue's candles and the candles built
 * from exchange ticks (tickCandles.ts) are merged by this one rule.
 */
export function candleMerge(c: CandleColumns): string {
  return [
    `${c.open} = CASE WHEN c.${c.first} IS NULL OR EXCLUDED.${c.first} < c.${c.first} THEN EXCLUDED.${c.open} ELSE c.${c.open} END`,
    `${c.close} = CASE WHEN c.${c.last} IS NULL OR EXCLUDED.${c.last} >= c.${c.last} THEN EXCLUDED.${c.close} ELSE c.${c.close} END`,
    `${c.high} = GREATEST(c.${c.high}, EXCLUDED.${c.high})`,
    `${c.low} = LEAST(c.${c.low}, EXCLUDED.${c.low})`,
    ...[c.volume, c.quoteVolume, c.count, c.takerBuyVolume, c.takerBuyQuoteVolume].map((k) => `${k} = c.${k} + EXCLUDED.${k}`),
    `${c.first} = LEAST(c.${c.first}, EXCLUDED.${c.first})`,
    `${c.last} = GREATEST(c.${c.last}, EXCLUDED.${c.last})`,
  ].join(',\n       ');
}

/** The candle columns of one upsert's RETURNING. */
interface CandleRow {
  interval: string; market: string; open_time: Date; close_time: Date; open_price: string; high_price: string; low_price: string; close_price: string;
  volume: string; quote_volume: string; trade_count: number; taker_buy_volume: string; taker_buy_quote_volume: string;
}

/**
 * Upserts the buckets of every interval in ONE statement (a data-modifying CTE per table, so one
 * round trip instead of six). Each bucket is merged into its stored candle by candleMerge (later
 * sequence numbers win ties, as later arrivals do there).
 */
async function upsertBuckets(tx: Queryable, groups: { table: string; interval: string; intervalMs: number; buckets: Bucket[] }[]): Promise<Candle[]> {
  const used = groups.filter((g) => g.buckets.length > 0);
  if (used.length === 0) return [];
  const params: unknown[] = [];
  const ctes = used.map((g, i) => {
    const at = params.length;
    const p = (n: number) => `$${at + n}`;
    const col = <K extends keyof Bucket>(k: K) => g.buckets.map((b) => b[k]);
    const price = (k: 'open' | 'high' | 'low' | 'close' | 'volume' | 'takerBuyVolume') => g.buckets.map((b) => fromFixed(b[k]));
    const quote = (k: 'quoteVolume' | 'takerBuyQuoteVolume') => g.buckets.map((b) => fromFixed(b[k], 2 * SCALE));
    params.push(
      col('market'), g.buckets.map((b) => new Date(b.openTime).toISOString()), price('open'), price('high'), price('low'), price('close'), price('volume'),
      quote('quoteVolume'), col('count'), price('takerBuyVolume'), quote('takerBuyQuoteVolume'), col('firstAt').map((d) => d.toISOString()),
      col('lastAt').map((d) => d.toISOString()), `${g.intervalMs - 1} milliseconds`, g.interval,
    );
    return `c${i} AS (
     INSERT INTO ${g.table} AS c (market, open_time, close_time, open_price, high_price, low_price, close_price,
                               volume, quote_volume, trade_count, taker_buy_volume, taker_buy_quote_volume,
                               first_trade_at, last_trade_at)
     SELECT u.market, u.open_time, u.open_time + ${p(14)}::interval, u.open, u.high, u.low, u.close,
            u.volume, u.quote_volume, u.count, u.tb_volume, u.tb_quote, u.first_at, u.last_at
       FROM unnest(${p(1)}::text[], ${p(2)}::timestamptz[], ${p(3)}::numeric[], ${p(4)}::numeric[], ${p(5)}::numeric[], ${p(6)}::numeric[],
                   ${p(7)}::numeric[], ${p(8)}::numeric[], ${p(9)}::int[], ${p(10)}::numeric[], ${p(11)}::numeric[], ${p(12)}::timestamptz[], ${p(13)}::timestamptz[])
            AS u(market, open_time, open, high, low, close, volume, quote_volume, count, tb_volume, tb_quote, first_at, last_at)
     ON CONFLICT (market, open_time) DO UPDATE SET ${candleMerge(VENUE_CANDLE_COLUMNS)}
     RETURNING ${p(15)}::text AS interval, c.market, c.open_time, c.close_time, c.open_price::text, c.high_price::text, c.low_price::text,
               c.close_price::text, c.volume::text, c.quote_volume::text, c.trade_count, c.taker_buy_volume::text, c.taker_buy_quote_volume::text)`;
  });
  const select = used.map((_, i) => `SELECT * FROM c${i}`).join(' UNION ALL ');
  const { rows } = await tx.query<CandleRow>(`WITH ${ctes.join(',\n')}\n${select}`, params);
  return rows.map((r) => ({
    market: r.market,
    interval: r.interval,
    openTime: r.open_time,
    closeTime: r.close_time,
    open: r.open_price,
    high: r.high_price,
    low: r.low_price,
    close: r.close_price,
    volume: r.volume,
    quoteVolume: r.quote_volume,
    tradeCount: r.trade_count,
    takerBuyVolume: r.taker_buy_volume,
    takerBuyQuoteVolume: r.taker_buy_quote_volume,
  }));
}

/**
 * Feeds newly inserted trades into all six candle tables; returns the candles as now stored.
 * The trades are merged once into 1m buckets and the coarser intervals rolled up from those, in
 * fixed-point integers (big.js, six passes per trade, was most of the worker's CPU).
 */
export async function applyCandles(tx: Queryable, trades: readonly InsertedTrade[]): Promise<Candle[]> {
  if (trades.length === 0) return [];
  const minutes = mergeMinutes(trades);
  return upsertBuckets(
    tx,
    Object.entries(CANDLE_INTERVALS).map(([interval, { table, ms }]) => ({ table, interval, intervalMs: ms, buckets: ms === 60_000 ? minutes : rollUp(minutes, ms) })),
  );
}
