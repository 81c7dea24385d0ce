/**
 * A trade's public id, the number Binance's API calls the trade id (`id` of /api/v3/trades, `a`,
 * `f` and `l` of aggTrades, `t` of the trade stream, `firstId`/`lastId` of the ticker, `fromId`):
 * the id the engine gave the trade when it is an integer of at most 15 digits (every such number
 * is exact in JSON and JavaScript), so a client matches a public trade with its own fill; else the
 * store's sequence number for venue trades, and for an exchange's instrument the trade's epoch
 * millisecond × 1000 plus its rank (by trade id) among the instrument's other such trades of
 * that millisecond, so trades of one millisecond keep distinct ids (a trade that arrives later
 * with a lower id in the same millisecond moves the ids after it). Within a market whose engine
 * numbers trades 1, 2, 3, … (as Binance does), `count` of the ticker is lastId − firstId + 1. A
 * market that mixes integer and other ids can give two trades one public id; docs/BINANCE.md
 * says so.
 */
export const PUBLIC_TRADE_ID = /^[0-9]{1,15}$/;

/** The same rule in SQL, over the trades table (migration 010 indexes it per market). */
export const PUBLIC_TRADE_ID_SQL = `(CASE WHEN id ~ '^[0-9]{1,15}$' THEN id::bigint ELSE sequence_number END)`;

export function publicTradeId(id: string, fallback: string): number {
  return Number(PUBLIC_TRADE_ID.test(id) ? id : fallback);
}

/**
 * The rule for an exchange's instrument, over market_trades aliased `t`. The rank counts the
 * trades with non-integer ids of the same millisecond before this one (bounded on both sides, so
 * one index range of one chunk). More than 1000 such trades in one millisecond would run into the
 * next millisecond's ids.
 */
export const EXCHANGE_TRADE_ID_SQL = (t: string) =>
  `(CASE WHEN ${t}.trade_id ~ '^[0-9]{1,15}$' THEN ${t}.trade_id::bigint
         ELSE floor(extract(epoch FROM ${t}.time) * 1000)::bigint * 1000
              + (SELECT count(*) FROM market_trades r
                  WHERE r.exchange = ${t}.exchange AND r.symbol = ${t}.symbol
                    AND r.time >= date_trunc('milliseconds', ${t}.time) AND r.time < date_trunc('milliseconds', ${t}.time) + interval '1 millisecond'
                    AND (r.time, r.trade_id) < (${t}.time, ${t}.trade_id)
                    AND r.trade_id !~ '^[0-9]{1,15}$') END)`;
