import Big from 'big.js';
import type { Queryable } from '../database/types.ts';
import { CANDLE_INTERVALS } from '../ingest/apply/candles.ts';
import { CACHE_GROUPS, VENUE, type Cache } from '../cache/cache.ts';
import { EXCHANGE_TRADE_ID_SQL, PUBLIC_TRADE_ID, PUBLIC_TRADE_ID_SQL } from './tradeIds.ts';
import { InvalidArgumentError, NotFoundError } from './errors.ts';
import { bucketOpen, isStored, klineSource, KLINE_INTERVALS, nextOpen, type KlineInterval } from './intervals.ts';
import type { Kline } from './klines.ts';

export type { Kline } from './klines.ts';

/** A market the store can answer for: one of the venue's own, or an instrument of an exchange feed. */
export interface Market {
  symbol: string;
  /** 'venue' for the venue's own markets, else the exchange the feed comes from. */
  exchange: string;
  baseAsset: string | null;
  quoteAsset: string | null;
  active: boolean;
  tickSize: string | null;
  stepSize: string | null;
  minPrice: string | null;
  maxPrice: string | null;
  minQuantity: string | null;
  maxQuantity: string | null;
}

export interface PublicTrade {
  /** The engine's (or exchange's) trade id. */
  id: string;
  /** A number that increases with every stored trade of the venue. */
  sequence: string;
  /** Binance's numeric trade id: the engine's id where it is an integer (src/store/tradeIds.ts). */
  publicId: number;
  price: string;
  quantity: string;
  quoteQuantity: string;
  isBuyerMaker: boolean | null;
  time: number;
}

export interface Ticker24h {
  symbol: string;
  openTime: number;
  closeTime: number;
  open: string | null;
  high: string | null;
  low: string | null;
  last: string | null;
  lastQuantity: string | null;
  prevClose: string | null;
  volume: string;
  quoteVolume: string;
  count: number;
  change: string | null;
  changePercent: string | null;
  weightedAvgPrice: string | null;
  /** Public ids of the window's first and last trade (src/store/tradeIds.ts); null without trades. */
  firstTradeId: string | null;
  lastTradeId: string | null;
}

export interface Depth {
  symbol: string;
  /** The snapshot's update id; for the venue's markets, the time of the read in milliseconds. */
  lastUpdateId: string;
  time: number;
  bids: [string, string][];
  asks: [string, string][];
}

export interface KlineQuery {
  interval: KlineInterval;
  startTime?: number;
  endTime?: number;
  limit?: number;
  /** Buckets aligned in the time zone this many ms east of UTC (Binance's timeZone); default 0. */
  timeZoneOffset?: number;
}

const DAY_MS = 24 * 60 * 60 * 1000;
const MINUTE_MS = 60_000;

export const LIMITS = {
  klines: { default: 500, max: 1000 },
  trades: { default: 500, max: 1000 },
  depth: { default: 100, max: 5000 },
} as const;

export function limitOf(value: number | undefined, kind: keyof typeof LIMITS, parameter = 'limit'): number {
  if (value === undefined) return LIMITS[kind].default;
  if (!Number.isInteger(value) || value < 1) throw new InvalidArgumentError(parameter, 'must be a positive integer');
  return Math.min(value, LIMITS[kind].max);
}

interface CandleRow {
  open_time: Date;
  open: string;
  high: string;
  low: string;
  close: string;
  volume: string;
  quote_volume: string | null;
  trade_count: number | null;
  taker_buy_volume: string | null;
  taker_buy_quote_volume: string | null;
}

const toKline = (r: CandleRow, interval: KlineInterval, offset = 0): Kline => {
  const openTime = r.open_time.getTime();
  return {
    openTime,
    closeTime: nextOpen(interval, openTime, offset) - 1,
    open: r.open,
    high: r.high,
    low: r.low,
    close: r.close,
    volume: r.volume,
    quoteVolume: r.quote_volume ?? '0',
    tradeCount: r.trade_count ?? 0,
    takerBuyVolume: r.taker_buy_volume ?? '0',
    takerBuyQuoteVolume: r.taker_buy_quote_volume ?? '0',
  };
};

/**
 * SQL for the open time of the bucket of `interval` that holds `column`, aligned in the time zone
 * `offset` ms from UTC: as `bucketOpen` (intervals.ts) computes it, fixed buckets from the epoch,
 * weeks from Monday, months from the 1st. `offset` is an integer number of milliseconds.
 */
function bucketSql(interval: KlineInterval, offset: number, column: string): string {
  const shift = `interval '${Math.trunc(offset)} milliseconds'`;
  const local = `(${column} + ${shift})`;
  const bucket =
    interval === '1M'
      ? `(date_trunc('month', ${local} AT TIME ZONE 'UTC') AT TIME ZONE 'UTC')`
      : interval === '1w'
        ? `date_bin('7 days', ${local}, TIMESTAMPTZ '1970-01-05 00:00:00+00')`
        : `date_bin('${KLINE_INTERVALS[interval].ms} milliseconds', ${local}, TIMESTAMPTZ '1970-01-01 00:00:00+00')`;
  return `(${bucket} - ${shift})`;
}

/** Ratio as Binance prints it: 3 decimals for percentages, 8 for prices. */
const ratio = (a: string, b: string, times = 1, dp = 8) => (new Big(b).eq(0) ? null : new Big(a).times(times).div(b).toFixed(dp));

/**
 * Market data of the venue's markets (trades and candles built from them) and of exchange
 * instruments (market_trades, market_data, order_book_snapshots). Reads go through the cache;
 * the ingest service invalidates the groups a commit changes.
 */
export class MarketRepository {
  constructor(
    private readonly db: Queryable,
    private readonly cache: Cache,
  ) {}

  /** All markets: the venue's own first, then exchange instruments. */
  async list(): Promise<Market[]> {
    return this.cache.read(CACHE_GROUPS.markets(), '', 60_000, async () => {
      const venue = await this.db.query<Record<string, string | boolean>>(
        `SELECT symbol, base_asset, quote_asset, is_active, tick_size::text, step_size::text, min_price::text, max_price::text,
                min_quantity::text, max_quantity::text
           FROM markets ORDER BY symbol`,
      );
      const external = await this.db.query<Record<string, string | boolean | null>>(
        `SELECT symbol, exchange, base_asset, quote_asset, is_active, tick_size::text, lot_size::text,
                min_order_size::text, max_order_size::text
           FROM instruments ORDER BY exchange, symbol`,
      );
      return [
        ...venue.rows.map((r): Market => ({
          symbol: r.symbol as string,
          exchange: VENUE,
          baseAsset: r.base_asset as string,
          quoteAsset: r.quote_asset as string,
          active: r.is_active as boolean,
          tickSize: r.tick_size as string,
          stepSize: r.step_size as string,
          minPrice: r.min_price as string,
          maxPrice: r.max_price as string,
          minQuantity: r.min_quantity as string,
          maxQuantity: r.max_quantity as string,
        })),
        ...external.rows.map((r): Market => ({
          symbol: r.symbol as string,
          exchange: r.exchange as string,
          baseAsset: r.base_asset as string | null,
          quoteAsset: r.quote_asset as string | null,
          active: r.is_active as boolean,
          tickSize: r.tick_size as string | null,
          stepSize: r.lot_size as string | null,
          minPrice: null,
          maxPrice: null,
          minQuantity: r.min_order_size as string | null,
          maxQuantity: r.max_order_size as string | null,
        })),
      ];
    });
  }

  /**
   * The market a symbol names: a venue market, else an exchange instrument with that symbol
   * (`exchange` chooses when several exchanges list it).
   */
  async resolve(symbol: string, exchange?: string): Promise<Market> {
    const all = await this.list();
    const venue = exchange === undefined || exchange === VENUE ? all.find((m) => m.exchange === VENUE && m.symbol === symbol) : undefined;
    if (venue) return venue;
    const external = all.filter((m) => m.exchange !== VENUE && m.symbol === symbol && (exchange === undefined || m.exchange === exchange));
    if (external.length === 1) return external[0]!;
    if (external.length > 1) {
      throw new InvalidArgumentError('exchange', `${symbol} is listed by ${external.map((m) => m.exchange).join(', ')}; name one`);
    }
    throw new NotFoundError('market', symbol);
  }

  /** Klines of one interval, ascending. With startTime: the first `limit` from there; else the last `limit` up to endTime (or now). */
  async klines(market: Market, query: KlineQuery): Promise<Kline[]> {
    const { interval } = query;
    const limit = limitOf(query.limit, 'klines');
    if (query.startTime !== undefined && query.endTime !== undefined && query.startTime > query.endTime) {
      throw new InvalidArgumentError('startTime', 'must not be after endTime');
    }
    const offset = query.timeZoneOffset ?? 0;
    const source = klineSource(interval, offset);
    const key = market.exchange === VENUE ? market.symbol : `${market.exchange}:${market.symbol}`;
    // Second klines come from the trades and change with each; candles with their source interval;
    // an instrument's in one group, which its tick candles invalidate (they change every timeframe).
    const group = market.exchange !== VENUE ? CACHE_GROUPS.instrumentKlines(key) : source === 'trades' ? CACHE_GROUPS.recentTrades(key) : CACHE_GROUPS.klines(key, source);
    const variant = `${interval}:${offset}:${query.startTime ?? ''}:${query.endTime ?? ''}:${limit}`;
    // Open-ended reads of the newest candles change with every trade; ranges are cached longer.
    const ttl = query.endTime !== undefined && query.endTime < Date.now() - DAY_MS ? 3_600_000 : source === 'trades' ? 1_000 : 60_000;
    return this.cache.read(group, variant, ttl, () => this.readKlines(market, interval, offset, query.startTime, query.endTime, limit));
  }

  private async readKlines(market: Market, interval: KlineInterval, offset: number, startTime: number | undefined, endTime: number | undefined, limit: number): Promise<Kline[]> {
    const end = startTime === undefined ? 'newest' : 'oldest';
    // Buckets with openTime in [startTime, endTime]: the first whole bucket from startTime, up to the one holding endTime.
    const firstOpen = startTime === undefined ? undefined : bucketOpen(interval, startTime, offset) === startTime ? startTime : nextOpen(interval, bucketOpen(interval, startTime, offset), offset);
    const lastClose = endTime === undefined ? undefined : nextOpen(interval, bucketOpen(interval, endTime, offset), offset) - 1;
    const source = klineSource(interval, offset);
    const aligned = source === interval || (market.exchange !== VENUE && offset % KLINE_INTERVALS[interval].ms === 0);
    if (market.exchange === VENUE && isStored(interval) && aligned) return this.storedKlines(market, interval, startTime, endTime, limit, end);
    if (market.exchange !== VENUE && aligned) {
      // An exchange feed's own candles of the interval, where it sends them.
      const direct = await this.storedKlines(market, interval, startTime, endTime, limit, end);
      if (direct.length || interval === '1m') return direct;
    }
    if (source === 'trades') return this.secondKlines(market, interval as '1s' | '5s', firstOpen, lastClose, limit, end);
    // Derived: each bucket merged, in the database, from whole source candles. Each bucket holds
    // at most `ratio` source candles, so `limit * ratio` of them always cover `limit` buckets, and
    // only a bucket beyond the first `limit` can be cut.
    const from = market.exchange === VENUE ? source : '1m';
    const ratio = Math.ceil((interval === '1M' ? 31 * DAY_MS : KLINE_INTERVALS[interval].ms) / CANDLE_INTERVALS[from].ms);
    const merged = await this.storedKlines(market, from, firstOpen, lastClose, limit * ratio, end, { interval, offset });
    return end === 'oldest' ? merged.slice(0, limit) : merged.slice(-limit);
  }

  /**
   * Second klines (1s, 5s), aggregated from the trades: only buckets with trades have one (as
   * with every stored interval). The `limit` buckets are found first, one index probe each, so a
   * market's whole history is never grouped.
   */
  private async secondKlines(market: Market, interval: '1s' | '5s', from: number | undefined, to: number | undefined, limit: number, end: 'oldest' | 'newest'): Promise<Kline[]> {
    const venue = market.exchange === VENUE;
    const [table, where, time, tiebreak] = venue
      ? ['trades', 'market = $1', 'executed_at', 'sequence_number']
      : ['market_trades', 'exchange = $1 AND symbol = $2', 'time', 'trade_id'];
    const params: unknown[] = venue ? [market.symbol] : [market.exchange, market.symbol];
    const n = params.length;
    const [lo, hi, lim, step] = [`$${n + 1}::timestamptz`, `$${n + 2}::timestamptz`, `$${n + 3}::int`, `$${n + 4}::interval`];
    const bucket = (t: string) => `date_bin(${step}, ${t}, TIMESTAMPTZ '1970-01-01 00:00:00+00')`;
    // `to` is the last millisecond of a bucket: times with microseconds up to the next one are in.
    const inRange = `(${lo} IS NULL OR ${time} >= ${lo}) AND (${hi} IS NULL OR ${time} < ${hi} + interval '1 millisecond')`;
    const edge = end === 'newest'
      ? { first: `max(${time})`, next: `${time} < s.t` }
      : { first: `min(${time})`, next: `${time} >= s.t + ${step}` };
    const { rows } = await this.db.query<CandleRow>(
      `WITH RECURSIVE s(t, n) AS (
         SELECT (SELECT ${bucket(edge.first)} FROM ${table} WHERE ${where} AND ${inRange}), 1
         UNION ALL
         SELECT (SELECT ${bucket(edge.first)} FROM ${table} WHERE ${where} AND ${inRange} AND ${edge.next}), s.n + 1
           FROM s WHERE s.t IS NOT NULL AND s.n < ${lim}
       ), bounds AS (SELECT min(t) AS first, max(t) AS last FROM s)
       SELECT ${bucket(time)} AS open_time,
              (array_agg(price::text ORDER BY ${time}, ${tiebreak}))[1] AS open, max(price)::text AS high, min(price)::text AS low,
              (array_agg(price::text ORDER BY ${time} DESC, ${tiebreak} DESC))[1] AS close,
              sum(quantity)::text AS volume, sum(quote_quantity)::text AS quote_volume, count(*)::int AS trade_count,
              coalesce(sum(quantity) FILTER (WHERE is_buyer_maker IS FALSE), 0)::text AS taker_buy_volume,
              coalesce(sum(quote_quantity) FILTER (WHERE is_buyer_maker IS FALSE), 0)::text AS taker_buy_quote_volume
         FROM ${table}, bounds
        WHERE ${where} AND ${inRange} AND ${time} >= bounds.first AND ${time} < bounds.last + ${step}
        GROUP BY 1 ORDER BY 1`,
      [...params, from === undefined ? null : new Date(from), to === undefined ? null : new Date(to), limit, `${KLINE_INTERVALS[interval].ms} milliseconds`],
    );
    return rows.map((r) => toKline(r, interval));
  }

  /**
   * Up to `limit` candles as stored with open time in [from, to], the oldest or the newest of
   * them, returned ascending; with `merge`, those candles merged into buckets of `merge.interval`
   * (aligned in the time zone `merge.offset` ms from UTC) by the database: open of the first,
   * close of the last, extremes and sums. Every source bucket lies inside one target bucket, so
   * this equals a recomputation from the trades.
   */
  private async storedKlines(
    market: Market,
    interval: KlineInterval,
    from: number | undefined,
    to: number | undefined,
    limit: number,
    end: 'oldest' | 'newest',
    merge?: { interval: KlineInterval; offset: number },
  ): Promise<Kline[]> {
    const direction = end === 'newest' ? 'DESC' : 'ASC';
    const range = [from === undefined ? null : new Date(from), to === undefined ? null : new Date(to)];
    const [source, params] =
      market.exchange === VENUE
        ? [
            `SELECT open_time, open_price AS open, high_price AS high, low_price AS low, close_price AS close, volume, quote_volume, trade_count,
                    taker_buy_volume, taker_buy_quote_volume
               FROM ${CANDLE_INTERVALS[interval as keyof typeof CANDLE_INTERVALS].table}
              WHERE market = $1 AND ($2::timestamptz IS NULL OR open_time >= $2) AND ($3::timestamptz IS NULL OR open_time <= $3)
              ORDER BY open_time ${direction} LIMIT $4`,
            [market.symbol, ...range, limit],
          ]
        : [
            `SELECT timestamp AS open_time, open, high, low, close, volume, quote_volume, trades_count AS trade_count, taker_buy_volume, taker_buy_quote_volume
               FROM market_data
              WHERE exchange = $1 AND symbol = $2 AND timeframe = $3
                AND ($4::timestamptz IS NULL OR timestamp >= $4) AND ($5::timestamptz IS NULL OR timestamp <= $5)
              ORDER BY timestamp ${direction} LIMIT $6`,
            [market.exchange, market.symbol, interval, ...range, limit],
          ];
    const { rows } = await this.db.query<CandleRow>(
      merge
        ? `SELECT ${bucketSql(merge.interval, merge.offset, 's.open_time')} AS open_time,
                  (array_agg(s.open::text ORDER BY s.open_time))[1] AS open, max(s.high)::text AS high, min(s.low)::text AS low,
                  (array_agg(s.close::text ORDER BY s.open_time DESC))[1] AS close, sum(s.volume)::text AS volume,
                  sum(s.quote_volume)::text AS quote_volume, sum(s.trade_count)::int AS trade_count,
                  sum(s.taker_buy_volume)::text AS taker_buy_volume, sum(s.taker_buy_quote_volume)::text AS taker_buy_quote_volume
             FROM (${source}) s GROUP BY 1 ORDER BY 1`
        : `SELECT open_time, open::text, high::text, low::text, close::text, volume::text, quote_volume::text, trade_count,
                  taker_buy_volume::text, taker_buy_quote_volume::text
             FROM (${source}) s ORDER BY open_time`,
      params,
    );
    return rows.map((r) => (merge ? toKline(r, merge.interval, merge.offset) : toKline(r, interval)));
  }

  /** Recent trades, oldest first; `before`/`after` are sequence bounds for keyset paging (venue markets). */
  async trades(market: Market, options: { limit?: number; startTime?: number; endTime?: number; fromId?: string } = {}): Promise<PublicTrade[]> {
    const limit = limitOf(options.limit, 'trades');
    const plain = options.startTime === undefined && options.endTime === undefined && options.fromId === undefined;
    const load = () => this.readTrades(market, limit, options);
    if (!plain) return load();
    const group = market.exchange === VENUE ? CACHE_GROUPS.recentTrades(market.symbol) : CACHE_GROUPS.recentTrades(`${market.exchange}:${market.symbol}`);
    return this.cache.read(group, String(limit), market.exchange === VENUE ? 60_000 : 1_000, load);
  }

  private async readTrades(
    market: Market,
    limit: number,
    o: { startTime?: number; endTime?: number; fromId?: string },
  ): Promise<PublicTrade[]> {
    const ascending = o.startTime !== undefined || o.fromId !== undefined;
    const start = o.startTime === undefined ? null : new Date(o.startTime);
    const end = o.endTime === undefined ? null : new Date(o.endTime);
    type Row = { id: string; sequence: string; public_id: string; price: string; quantity: string; quote: string; is_buyer_maker: boolean | null; time: Date };
    let rows: Row[];
    if (market.exchange === VENUE) {
      if (o.fromId !== undefined && !PUBLIC_TRADE_ID.test(o.fromId)) throw new InvalidArgumentError('fromId', 'must be a trade id');
      // From a trade id: in id order (Binance's), through the public-id index.
      const order = o.fromId !== undefined
        ? `${PUBLIC_TRADE_ID_SQL} ASC`
        : `executed_at ${ascending ? 'ASC' : 'DESC'}, sequence_number ${ascending ? 'ASC' : 'DESC'}`;
      ({ rows } = await this.db.query<Row>(
        `SELECT id, sequence_number::text AS sequence, ${PUBLIC_TRADE_ID_SQL}::text AS public_id, price::text, quantity::text,
                quote_quantity::text AS quote, is_buyer_maker, executed_at AS time
           FROM trades
          WHERE market = $1 AND ($2::timestamptz IS NULL OR executed_at >= $2) AND ($3::timestamptz IS NULL OR executed_at <= $3)
            AND ($4::bigint IS NULL OR ${PUBLIC_TRADE_ID_SQL} >= $4)
          ORDER BY ${order} LIMIT $5`,
        [market.symbol, start, end, o.fromId ?? null, limit],
      ));
    } else {
      if (o.fromId !== undefined) throw new InvalidArgumentError('fromId', `is served for the venue's own markets; ${market.symbol} is an instrument of ${market.exchange}: use startTime`);
      ({ rows } = await this.db.query<Row>(
        `SELECT trade_id AS id, (extract(epoch FROM time) * 1000)::bigint::text AS sequence, ${EXCHANGE_TRADE_ID_SQL('market_trades')}::text AS public_id,
                price::text, quantity::text, quote_quantity::text AS quote, is_buyer_maker, time
           FROM market_trades
          WHERE exchange = $1 AND symbol = $2 AND ($3::timestamptz IS NULL OR time >= $3) AND ($4::timestamptz IS NULL OR time <= $4)
          ORDER BY time ${ascending ? 'ASC' : 'DESC'}, trade_id ${ascending ? 'ASC' : 'DESC'} LIMIT $5`,
        [market.exchange, market.symbol, start, end, limit],
      ));
    }
    if (!ascending) rows.reverse();
    return rows.map((r) => ({
      id: r.id,
      sequence: r.sequence,
      publicId: Number(r.public_id),
      price: r.price,
      quantity: r.quantity,
      quoteQuantity: r.quote,
      isBuyerMaker: r.is_buyer_maker,
      time: r.time.getTime(),
    }));
  }

  /**
   * The rolling 24-hour ticker, exact at the window's edges: whole minutes inside the window come
   * from the 1m candles, the partial minutes at both ends from the raw trades.
   */
  async ticker(market: Market, now = Date.now()): Promise<Ticker24h> {
    return this.statistics(market, now - DAY_MS, now);
  }

  /**
   * The same statistics over any window [windowStart, now] (Binance's rolling-window ticker and
   * its trading-day ticker), exact at both edges.
   */
  async statistics(market: Market, windowStart: number, now: number): Promise<Ticker24h> {
    if (windowStart > now) throw new InvalidArgumentError('startTime', 'must not be after the end of the window');
    // The window moves with every millisecond: only its whole minutes are cached.
    type Part = { part: string; count: string; volume: string | null; quote: string | null; low: string | null; high: string | null; open: string | null; close: string | null };
    let parts: Part[];
    type Edges = { first_seq: string | null; last_seq: string | null; last_qty: string | null; prev_close: string | null };
    let edgeRows: Edges[];
    if (market.exchange === VENUE) {
      let headEnd = Math.ceil(windowStart / MINUTE_MS) * MINUTE_MS;
      let tailStart = Math.floor(now / MINUTE_MS) * MINUTE_MS;
      // A window inside one minute is read from the trades alone.
      if (headEnd > tailStart) headEnd = tailStart = windowStart;
      const raw = (part: string, from: string, to: string, toOp: string) =>
        `SELECT '${part}' AS part, count(*)::text AS count, sum(quantity)::text AS volume, sum(quote_quantity)::text AS quote,
                min(price)::text AS low, max(price)::text AS high,
                (array_agg(price::text ORDER BY executed_at, sequence_number))[1] AS open,
                (array_agg(price::text ORDER BY executed_at DESC, sequence_number DESC))[1] AS close
           FROM trades WHERE market = $1 AND executed_at >= ${from} AND executed_at ${toOp} ${to}`;
      // The whole minutes come from the 1m candles. They change only when a trade of this market
      // is committed, which invalidates the group, so they are cached for the minute.
      const [middle] = await this.cache.read(CACHE_GROUPS.ticker(market.symbol), `${headEnd}:${tailStart}`, 120_000, async () =>
        (await this.db.query<Part>(
          `SELECT 'middle' AS part, coalesce(sum(trade_count), 0)::text AS count, sum(volume)::text AS volume, sum(quote_volume)::text AS quote,
                  min(low_price)::text AS low, max(high_price)::text AS high, (array_agg(open_price::text ORDER BY open_time))[1] AS open,
                  (array_agg(close_price::text ORDER BY open_time DESC))[1] AS close
             FROM ohlcv_1m WHERE market = $1 AND open_time >= $2 AND open_time < $3`,
          [market.symbol, new Date(headEnd), new Date(tailStart)],
        )).rows);
      // The partial minutes at both ends from the raw trades, and the window's first and last
      // trade and the close before it. Each edge is found by its time first (one index probe),
      // then by sequence among trades of that same instant.
      const edgeOf = (column: string, agg: 'min' | 'max', range: string, order: 'ASC' | 'DESC') =>
        `(SELECT ${column} FROM trades WHERE market = $1
            AND executed_at = (SELECT executed_at FROM trades WHERE market = $1 AND ${range} ORDER BY executed_at ${agg === 'min' ? 'ASC' : 'DESC'} LIMIT 1)
          ORDER BY sequence_number ${order} LIMIT 1)`;
      const window = 'executed_at >= $2 AND executed_at <= $5';
      const { rows } = await this.db.query<Part & Edges>(
        `SELECT h.*, ${edgeOf(`${PUBLIC_TRADE_ID_SQL}::text`, 'min', window, 'ASC')} AS first_seq,
                ${edgeOf(`${PUBLIC_TRADE_ID_SQL}::text`, 'max', window, 'DESC')} AS last_seq,
                ${edgeOf('quantity::text', 'max', window, 'DESC')} AS last_qty,
                ${edgeOf('price::text', 'max', 'executed_at < $2', 'DESC')} AS prev_close
           FROM (${raw('head', '$2', '$3', '<')}) h
         UNION ALL
         SELECT t.*, NULL, NULL, NULL, NULL FROM (${raw('tail', '$4', '$5', '<=')}) t`,
        [market.symbol, new Date(windowStart), new Date(headEnd), new Date(tailStart), new Date(now)],
      );
      parts = [rows[0]!, ...(middle ? [middle] : []), rows[1]!];
      edgeRows = [rows[0]!];
    } else {
      ({ rows: parts } = await this.db.query<Part>(
        `SELECT 'all' AS part, count(*)::text AS count, sum(quantity)::text AS volume, sum(quote_quantity)::text AS quote,
                min(price)::text AS low, max(price)::text AS high,
                (array_agg(price::text ORDER BY time, trade_id))[1] AS open,
                (array_agg(price::text ORDER BY time DESC, trade_id DESC))[1] AS close
           FROM market_trades WHERE exchange = $1 AND symbol = $2 AND time >= $3 AND time <= $4`,
        [market.exchange, market.symbol, new Date(windowStart), new Date(now)],
      ));
      ({ rows: edgeRows } = await this.db.query<Edges>(
        `SELECT (SELECT ${EXCHANGE_TRADE_ID_SQL('t')}::text FROM market_trades t WHERE exchange = $1 AND symbol = $2 AND time >= $3 AND time <= $4
                  ORDER BY time, trade_id LIMIT 1) AS first_seq,
                (SELECT ${EXCHANGE_TRADE_ID_SQL('t')}::text FROM market_trades t WHERE exchange = $1 AND symbol = $2 AND time >= $3 AND time <= $4
                  ORDER BY time DESC, trade_id DESC LIMIT 1) AS last_seq,
                (SELECT quantity::text FROM market_trades WHERE exchange = $1 AND symbol = $2 AND time >= $3 AND time <= $4
                  ORDER BY time DESC, trade_id DESC LIMIT 1) AS last_qty,
                (SELECT price::text FROM market_trades WHERE exchange = $1 AND symbol = $2 AND time < $3
                  ORDER BY time DESC, trade_id DESC LIMIT 1) AS prev_close`,
        [market.exchange, market.symbol, new Date(windowStart), new Date(now)],
      ));
    }
    const edges = edgeRows[0]!;
    const order = ['head', 'middle', 'tail', 'all'];
    const present = parts.filter((p) => Number(p.count) > 0 && p.open !== null).sort((a, b) => order.indexOf(a.part) - order.indexOf(b.part));
    const sum = (f: (p: Part) => string | null) => present.reduce((acc, p) => acc.plus(f(p) ?? '0'), new Big(0)).toFixed();
    const open = present[0]?.open ?? null;
    const last = present.at(-1)?.close ?? null;
    const volume = sum((p) => p.volume);
    const quoteVolume = sum((p) => p.quote);
    const pick = (f: (p: Part) => string | null, better: (a: Big, b: Big) => boolean) =>
      present.reduce<string | null>((best, p) => {
        const v = f(p);
        return v !== null && (best === null || better(new Big(v), new Big(best))) ? v : best;
      }, null);
    return {
      symbol: market.symbol,
      openTime: windowStart,
      closeTime: now,
      open,
      high: pick((p) => p.high, (a, b) => a.gt(b)),
      low: pick((p) => p.low, (a, b) => a.lt(b)),
      last,
      lastQuantity: edges.last_qty,
      prevClose: edges.prev_close,
      volume,
      quoteVolume,
      count: present.reduce((n, p) => n + Number(p.count), 0),
      change: open !== null && last !== null ? new Big(last).minus(open).toFixed() : null,
      changePercent: open !== null && last !== null ? ratio(new Big(last).minus(open).toFixed(), open, 100, 3) : null,
      weightedAvgPrice: ratio(quoteVolume, volume),
      firstTradeId: edges.first_seq,
      lastTradeId: edges.last_seq,
    };
  }

  /**
   * The public ids (src/store/tradeIds.ts) of the first and the last trade in [from, to], by time
   * (Binance's kline `f` and `L`); null without trades. Two index probes on each side.
   */
  async tradeIdRange(market: Market, from: number, to: number): Promise<{ first: number; last: number } | null> {
    const venue = market.exchange === VENUE;
    const edge = (order: 'ASC' | 'DESC') =>
      venue
        ? `(SELECT ${PUBLIC_TRADE_ID_SQL} FROM trades WHERE market = $1
              AND executed_at = (SELECT executed_at FROM trades WHERE market = $1 AND executed_at >= $2 AND executed_at < $3 ORDER BY executed_at ${order} LIMIT 1)
            ORDER BY sequence_number ${order} LIMIT 1)`
        : `(SELECT ${EXCHANGE_TRADE_ID_SQL('t')} FROM market_trades t WHERE exchange = $4 AND symbol = $1 AND time >= $2 AND time < $3
            ORDER BY time ${order}, trade_id ${order} LIMIT 1)`;
    const { rows } = await this.db.query<{ first: string | null; last: string | null }>(
      `SELECT ${edge('ASC')}::text AS first, ${edge('DESC')}::text AS last`,
      // [from, to] in milliseconds, so up to (not including) the next millisecond for times with microseconds.
      venue ? [market.symbol, new Date(from), new Date(to + 1)] : [market.symbol, new Date(from), new Date(to + 1), market.exchange],
    );
    const { first, last } = rows[0]!;
    return first === null || last === null ? null : { first: Number(first), last: Number(last) };
  }

  /** The latest price (seed 001's price:{exchange}:{symbol}). */
  async price(market: Market): Promise<{ symbol: string; price: string | null; time: number | null }> {
    return this.cache.read(CACHE_GROUPS.price(market.exchange, market.symbol), '', 60_000, async () => {
      const { rows } =
        market.exchange === VENUE
          ? await this.db.query<{ price: string; time: Date }>(
              `SELECT price::text, executed_at AS time FROM trades WHERE market = $1 ORDER BY executed_at DESC, sequence_number DESC LIMIT 1`,
              [market.symbol],
            )
          : await this.db.query<{ price: string; time: Date }>(
              `SELECT price::text, time FROM market_trades WHERE exchange = $1 AND symbol = $2 ORDER BY time DESC LIMIT 1`,
              [market.exchange, market.symbol],
            );
      return { symbol: market.symbol, price: rows[0]?.price ?? null, time: rows[0]?.time.getTime() ?? null };
    });
  }

  /** Volume-weighted average price over the last `minutes` minutes (Binance's avgPrice). */
  async averagePrice(market: Market, minutes = 5, now = Date.now()): Promise<{ mins: number; price: string | null; closeTime: number }> {
    const from = new Date(now - minutes * MINUTE_MS);
    const { rows } =
      market.exchange === VENUE
        ? await this.db.query<{ q: string | null; v: string | null }>(
            `SELECT sum(quote_quantity)::text AS q, sum(quantity)::text AS v FROM trades WHERE market = $1 AND executed_at >= $2 AND executed_at <= $3`,
            [market.symbol, from, new Date(now)],
          )
        : await this.db.query<{ q: string | null; v: string | null }>(
            `SELECT sum(quote_quantity)::text AS q, sum(quantity)::text AS v FROM market_trades WHERE exchange = $1 AND symbol = $2 AND time >= $3 AND time <= $4`,
            [market.exchange, market.symbol, from, new Date(now)],
          );
    const { q, v } = rows[0]!;
    return { mins: minutes, price: q && v ? ratio(q, v) : null, closeTime: now };
  }

  /** Order-book depth: the venue's from its open orders, an exchange's from the latest snapshot (seed 001's orderbook:{exchange}:{symbol}). */
  async depth(market: Market, limit?: number): Promise<Depth> {
    const n = limitOf(limit, 'depth');
    return this.cache.read(CACHE_GROUPS.orderbook(market.exchange, market.symbol), String(n), market.exchange === VENUE ? 60_000 : 1_000, async () => {
      if (market.exchange === VENUE) {
        const side = (s: 'buy' | 'sell') =>
          this.db.query<{ price: string; quantity: string }>(
            `SELECT price::text, sum(quantity - filled_quantity)::text AS quantity
               FROM orders WHERE market = $1 AND side = $2 AND status = 'open'
              GROUP BY price ORDER BY price ${s === 'buy' ? 'DESC' : 'ASC'} LIMIT $3`,
            [market.symbol, s, n],
          );
        const [bids, asks] = [await side('buy'), await side('sell')];
        const now = Date.now();
        return { symbol: market.symbol, lastUpdateId: String(now), time: now, bids: bids.rows.map((r) => [r.price, r.quantity]), asks: asks.rows.map((r) => [r.price, r.quantity]) };
      }
      const { rows } = await this.db.query<{ t: Date; u: string | null; bp: string[]; bq: string[]; ap: string[]; aq: string[] }>(
        `SELECT timestamp AS t, last_update_id::text AS u, bid_prices::text[] AS bp, bid_quantities::text[] AS bq,
                ask_prices::text[] AS ap, ask_quantities::text[] AS aq
           FROM order_book_snapshots WHERE exchange = $1 AND symbol = $2 ORDER BY timestamp DESC LIMIT 1`,
        [market.exchange, market.symbol],
      );
      const r = rows[0];
      if (!r) return { symbol: market.symbol, lastUpdateId: '0', time: 0, bids: [], asks: [] };
      const levels = (p: string[], q: string[]) => p.slice(0, n).map((price, i): [string, string] => [price, q[i]!]);
      return { symbol: market.symbol, lastUpdateId: r.u ?? String(r.t.getTime()), time: r.t.getTime(), bids: levels(r.bp, r.bq), asks: levels(r.ap, r.aq) };
    });
  }
}
