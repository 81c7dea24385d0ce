import type { Queryable } from '../../src/database/types.ts';
import { CANDLE_INTERVALS } from '../../src/ingest/apply/candles.ts';

/**
 * Candles recomputed from the raw trades (UTC buckets, open/close by executed_at then
 * sequence_number), compared column by column with the stored ones. Returns the differences.
 */
export async function candleMismatches(db: Queryable): Promise<unknown[]> {
  const all: unknown[] = [];
  for (const [interval, { table, ms }] of Object.entries(CANDLE_INTERVALS)) {
    const { rows } = await db.query(
      `WITH r AS (
         SELECT market, date_bin($1::interval, executed_at, TIMESTAMPTZ '1970-01-01 00:00:00+00') AS open_time,
                (array_agg(price ORDER BY executed_at, sequence_number))[1] AS open_price,
                max(price) AS high_price, min(price) AS low_price,
                (array_agg(price ORDER BY executed_at DESC, sequence_number DESC))[1] AS close_price,
                sum(quantity) AS volume, sum(quote_quantity) AS quote_volume, count(*)::int AS trade_count,
                coalesce(sum(quantity) FILTER (WHERE NOT is_buyer_maker), 0) AS taker_buy_volume,
                coalesce(sum(quote_quantity) FILTER (WHERE NOT is_buyer_maker), 0) AS taker_buy_quote_volume
           FROM trades GROUP BY 1, 2)
       SELECT $2::text AS interval, coalesce(r.market, c.market) AS market, coalesce(r.open_time, c.open_time) AS open_time,
              r.open_price AS want_open, c.open_price AS got_open, r.close_price AS want_close, c.close_price AS got_close,
              r.volume AS want_volume, c.volume AS got_volume, r.trade_count AS want_count, c.trade_count AS got_count
         FROM r FULL JOIN ${table} c ON c.market = r.market AND c.open_time = r.open_time
        WHERE r.market IS NULL OR c.market IS NULL
           OR (r.open_price, r.high_price, r.low_price, r.close_price, r.volume, r.quote_volume, r.trade_count,
               r.taker_buy_volume, r.taker_buy_quote_volume, c.open_time + $1::interval - interval '1 millisecond')
              IS DISTINCT FROM
              (c.open_price, c.high_price, c.low_price, c.close_price, c.volume, c.quote_volume, c.trade_count,
               c.taker_buy_volume, c.taker_buy_quote_volume, c.close_time)`,
      [`${ms} milliseconds`, interval],
    );
    all.push(...rows);
  }
  return all;
}
