import type { Queryable } from '../../database/types.ts';
import { TICKS_SOURCE, TIMEFRAME_LENGTHS, type Timeframe } from '../events/feeds.ts';
import { candleMerge, type CandleColumns } from './candles.ts';
import type { Candle } from './types.ts';

/**
 * The timeframes an exchange instrument's ticks build (seed 004's ohlc_candles: "1s, 5s, 1m,
 * 5m, etc."): the venue's six and the two second ones. Every other kline interval is merged
 * from these when read (src/store/market.ts).
 */
export const TICK_TIMEFRAMES = {
  '1s': 1000, '5s': 5000, '1m': 60_000, '5m': 300_000, '15m': 900_000, '1h': 3_600_000, '4h': 14_400_000, '1d': 86_400_000,
} as const satisfies Partial<Record<Timeframe, number>>;
type TickTimeframe = keyof typeof TICK_TIMEFRAMES;
const FRAMES = Object.keys(TICK_TIMEFRAMES) as TickTimeframe[];

/** A newly stored tick, in the order it arrived (ties of equal times are broken by arrival). */
export interface StoredTick {
  exchange: string;
  symbol: string;
  time: Date;
  price: string;
  quantity: string;
  isBuyerMaker: boolean | undefined;
}

const MARKET_DATA_COLUMNS: CandleColumns = {
  open: 'open', high: 'high', low: 'low', close: 'close', volume: 'volume', quoteVolume: 'quote_volume', count: 'trades_count',
  takerBuyVolume: 'taker_buy_volume', takerBuyQuoteVolume: 'taker_buy_quote_volume', first: 'first_tick_at', last: 'last_tick_at',
};

/**
 * VWAP of a candle, from its sums: quote ÷ volume rounded half up to 8 decimals (seed 004 keeps
 * 4), exactly: div() is numeric's exact integer quotient, where `/` would round to about 16
 * digits first and round(…, 8) a second time. Both sums are ≥ 0; null when the volume is 0.
 */
const vwap = (quote: string, volume: string) => `(div(2 * ${quote} * 100000000 + ${volume}, NULLIF(2 * ${volume}, 0)) * 0.00000001)`;

interface Row {
  exchange: string; symbol: string; timeframe: string; timestamp: Date; close_time: Date; open: string; high: string; low: string; close: string;
  volume: string; quote_volume: string; trades_count: number; taker_buy_volume: string; taker_buy_quote_volume: string;
}

/**
 * Builds the candles of the batch's newly stored ticks into market_data (docs/CANDLES.md), in
 * ONE statement: the database groups the ticks into seconds and rolls those up into every
 * timeframe's buckets (exact NUMERIC, as ticks carry any number of decimals) and merges each bucket into its stored candle by the
 * venue's rule (candleMerge). A bucket whose candle an exchange sent (a CANDLE event) is left
 * as sent: the exchange's own candle takes precedence over one built from the ticks we saw (a
 * row that says 'ticks' without tick times was sent so by a producer before migration 016).
 * Returns the candles as now stored; their market is `EXCHANGE:SYMBOL`.
 */
export async function applyTickCandles(tx: Queryable, ticks: readonly StoredTick[]): Promise<Candle[]> {
  if (ticks.length === 0) return [];
  const { rows } = await tx.query<Row>(
    `WITH t AS (
       SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::numeric[], $5::numeric[], $6::boolean[])
                WITH ORDINALITY AS u(exchange, symbol, time, price, quantity, is_buyer_maker, n)
     ), f AS (
       SELECT * FROM unnest($7::text[], $8::interval[]) AS f(timeframe, length)
     ), s AS (
       SELECT t.exchange, t.symbol, date_bin(interval '1 second', t.time, TIMESTAMPTZ '1970-01-01 00:00:00+00') AS open_time,
              (array_agg(t.price ORDER BY t.time, t.n))[1] AS open, max(t.price) AS high, min(t.price) AS low,
              (array_agg(t.price ORDER BY t.time DESC, t.n DESC))[1] AS close,
              sum(t.quantity) AS volume, sum(t.price * t.quantity) AS quote_volume, count(*)::int AS count,
              coalesce(sum(t.quantity) FILTER (WHERE t.is_buyer_maker IS FALSE), 0) AS tb_volume,
              coalesce(sum(t.price * t.quantity) FILTER (WHERE t.is_buyer_maker IS FALSE), 0) AS tb_quote,
              min(t.time) AS first_at, max(t.time) AS last_at
         FROM t GROUP BY 1, 2, 3
     ), b AS (
       -- Every timeframe is a whole number of seconds: its buckets are rolled up from the seconds,
       -- the first second's open and the last one's close (seconds do not overlap).
       SELECT s.exchange, s.symbol, f.timeframe, date_bin(f.length, s.open_time, TIMESTAMPTZ '1970-01-01 00:00:00+00') AS open_time,
              (array_agg(s.open ORDER BY s.open_time))[1] AS open, max(s.high) AS high, min(s.low) AS low,
              (array_agg(s.close ORDER BY s.open_time DESC))[1] AS close,
              sum(s.volume) AS volume, sum(s.quote_volume) AS quote_volume, sum(s.count)::int AS count,
              sum(s.tb_volume) AS tb_volume, sum(s.tb_quote) AS tb_quote, min(s.first_at) AS first_at, max(s.last_at) AS last_at
         FROM s CROSS JOIN f
        GROUP BY s.exchange, s.symbol, f.timeframe, f.length, 4
     )
     INSERT INTO market_data AS c (exchange, symbol, timeframe, timestamp, open, high, low, close, volume, quote_volume, trades_count,
                                   taker_buy_volume, taker_buy_quote_volume, vwap, data_source, first_tick_at, last_tick_at)
     SELECT exchange, symbol, timeframe, open_time, open, high, low, close, volume, quote_volume, count, tb_volume, tb_quote,
            ${vwap('quote_volume', 'volume')}, $9, first_at, last_at
       FROM b
     ON CONFLICT (exchange, symbol, timeframe, timestamp) DO UPDATE SET ${candleMerge(MARKET_DATA_COLUMNS)},
       vwap = ${vwap('(c.quote_volume + EXCLUDED.quote_volume)', '(c.volume + EXCLUDED.volume)')}
       WHERE c.data_source = $9 AND c.first_tick_at IS NOT NULL
     RETURNING c.exchange, c.symbol, c.timeframe, c.timestamp, c.open::text, c.high::text, c.low::text, c.close::text, c.volume::text,
               c.quote_volume::text, c.trades_count, c.taker_buy_volume::text, c.taker_buy_quote_volume::text`,
    [
      ticks.map((t) => t.exchange), ticks.map((t) => t.symbol), ticks.map((t) => t.time.toISOString()), ticks.map((t) => t.price),
      ticks.map((t) => t.quantity), ticks.map((t) => t.isBuyerMaker ?? null), FRAMES, FRAMES.map((f) => TIMEFRAME_LENGTHS[f]),
      TICKS_SOURCE,
    ],
  );
  return rows.map((r) => ({
    market: `${r.exchange}:${r.symbol}`,
    exchange: r.exchange,
    interval: r.timeframe,
    openTime: r.timestamp,
    closeTime: new Date(r.timestamp.getTime() + TICK_TIMEFRAMES[r.timeframe as TickTimeframe] - 1),
    open: r.open,
    high: r.high,
    low: r.low,
    close: r.close,
    volume: r.volume,
    quoteVolume: r.quote_volume,
    tradeCount: r.trades_count,
    takerBuyVolume: r.taker_buy_volume,
    takerBuyQuoteVolume: r.taker_buy_quote_volume,
  }));
}
