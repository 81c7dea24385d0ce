import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Store } from '../../store/store.ts';
import { ApiError } from '../errors.ts';
import { aggTradeObject, b8, binance, exchangeInfo, fullOrMini, oneOrMany, rollingTickerObject, bookTickerObject, depthObject, klineRow, miniTickerObject, symbolObject, ticker24hObject, tradeObject } from '../binanceFormat.ts';
import { LIMITS, type Market } from '../../store/market.ts';
import { exchangeParam, intervalParam, limitParam, millis, symbolParam, timeRange, timeZoneParam, tradeIdParam } from '../params.ts';
import { bucketOpen } from '../../store/intervals.ts';

const tags = ['Binance-compatible market data'];

/** Binance's public market-data endpoints, answered from the store: existing clients work unchanged. */
export function binanceRoutes(app: FastifyInstance, store: Store, { rateLimit, rateWindowMs }: { rateLimit: number; rateWindowMs: number }): void {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const market = (symbol: string, exchange?: string) => store.market.resolve(symbol, exchange);

  r.get('/api/v3/ping', { schema: { tags, summary: 'Connectivity check', response: { 200: binance.empty } } }, async () => ({}));
  r.get('/api/v3/time', { schema: { tags, summary: 'Server time', response: { 200: binance.time } } }, async () => ({ serverTime: Date.now() }));

  r.get('/api/v3/exchangeInfo', {
    schema: { tags, summary: 'Markets with their assets and price and quantity filters', querystring: z.object({ symbol: symbolParam.optional(), symbols: z.string().max(2000).optional() }), response: { 200: exchangeInfo } },
  }, async (request) => {
    const chosen = await named(request.query);
    return {
      timezone: 'UTC',
      serverTime: Date.now(),
      // The limit tradestore enforces: requests per key (or address) and endpoint per window.
      rateLimits: [{ rateLimitType: 'RAW_REQUESTS', ...window(rateWindowMs), limit: rateLimit }],
      exchangeFilters: [],
      symbols: chosen.map(symbolObject),
    };
  });

  // uiKlines: Binance's klines "modified for presentation"; candles here are already what a chart shows.
  for (const path of ['/api/v3/klines', '/api/v3/uiKlines'] as const) {
    r.get(path, {
      schema: {
        tags,
        summary: `${path === '/api/v3/uiKlines' ? 'The same as klines. ' : ''}Klines (candlesticks) as arrays: open time, OHLC, volume, close time, quote volume, trades, taker buy volumes`,
        querystring: timeRange(z.object({ symbol: symbolParam, interval: intervalParam, startTime: millis.optional(), endTime: millis.optional(), limit: limitParam(LIMITS.klines.max, true).optional(), timeZone: timeZoneParam, exchange: exchangeParam })),
        response: { 200: z.array(binance.kline) },
      },
    }, async (request) => {
      const q = request.query;
      const m = await market(q.symbol, q.exchange);
      const klines = await store.market.klines(m, { interval: q.interval, startTime: q.startTime, endTime: q.endTime, limit: q.limit, timeZoneOffset: q.timeZone });
      return klines.map(klineRow);
    });
  }

  r.get('/api/v3/trades', {
    schema: { tags, summary: 'Recent trades, oldest first', querystring: z.object({ symbol: symbolParam, limit: limitParam(LIMITS.trades.max, true).optional(), exchange: exchangeParam }), response: { 200: z.array(binance.trade) } },
  }, async (request) => {
    const m = await market(request.query.symbol, request.query.exchange);
    return (await store.market.trades(m, { limit: request.query.limit })).map(tradeObject);
  });

  r.get('/api/v3/historicalTrades', {
    schema: {
      tags,
      summary: 'Older trades: from a trade id (fromId, in id order), or the most recent',
      querystring: z.object({ symbol: symbolParam, fromId: tradeIdParam.optional(), limit: limitParam(LIMITS.trades.max, true).optional(), exchange: exchangeParam }),
      response: { 200: z.array(binance.trade) },
    },
  }, async (request) => {
    const q = request.query;
    const m = await market(q.symbol, q.exchange);
    return (await store.market.trades(m, { limit: q.limit, fromId: q.fromId })).map(tradeObject);
  });

  r.get('/api/v3/aggTrades', {
    schema: {
      tags,
      summary: 'Aggregate trades (what ccxt fetchTrades calls)',
      querystring: timeRange(z.object({ symbol: symbolParam, fromId: tradeIdParam.optional(), startTime: millis.optional(), endTime: millis.optional(), limit: limitParam(LIMITS.trades.max, true).optional(), exchange: exchangeParam })),
      response: { 200: z.array(binance.aggTrade) },
    },
  }, async (request) => {
    const q = request.query;
    const m = await market(q.symbol, q.exchange);
    if (q.startTime !== undefined && q.endTime !== undefined && q.endTime - q.startTime > 3_600_000) {
      throw new ApiError(400, 'invalid_parameter', 'startTime and endTime may be at most one hour apart', 'endTime');
    }
    return (await store.market.trades(m, { limit: q.limit, startTime: q.startTime, endTime: q.endTime, fromId: q.fromId })).map(aggTradeObject);
  });

  /** The markets a request names: `symbol`, or `symbols` (each must exist: -1121 otherwise), or every spot market. */
  const named = async (q: { symbol?: string; symbols?: string; exchange?: string }) => {
    if (q.symbol) return [await market(q.symbol, q.exchange)];
    if (q.symbols) return Promise.all(parseSymbols(q.symbols).map((s) => market(s, q.exchange)));
    return (await store.market.list()).filter(isSpot);
  };
  const many = z.object({ symbol: symbolParam.optional(), symbols: z.string().max(2000).optional(), exchange: exchangeParam });

  r.get('/api/v3/ticker/24hr', {
    schema: { tags, summary: 'Rolling 24-hour statistics of one symbol, of several (symbols), or of all; type=MINI leaves out the book and the changes', querystring: many.extend({ type: z.enum(['FULL', 'MINI']).optional() }), response: { 200: fullOrMini(binance.ticker24h) } },
  }, async (request) => {
    const q = request.query;
    const one = async (m: Market) => {
      const [t, depth] = await Promise.all([store.market.ticker(m), store.market.depth(m, 1)]);
      const full = ticker24hObject(t, depth);
      return q.type === 'MINI' ? miniTickerObject(full) : full;
    };
    const markets = await named(q);
    return q.symbol ? one(markets[0]!) : Promise.all(markets.map(one));
  });

  // The rolling-window and trading-day tickers name their markets: symbol or symbols is required.
  const someMarkets = (q: { symbol?: string; symbols?: string }) => {
    if (!q.symbol && !q.symbols) throw new ApiError(400, 'missing_parameter', 'symbol: is required (or symbols)', 'symbol');
    return named(q);
  };
  const statisticsOf = async (q: { symbol?: string; type?: 'FULL' | 'MINI' }, markets: Market[], window: (m: Market) => [number, number]) => {
    const one = async (m: Market) => {
      const t = rollingTickerObject(await store.market.statistics(m, ...window(m)));
      return q.type === 'MINI' ? miniTickerObject(t) : t;
    };
    return q.symbol ? one(markets[0]!) : Promise.all(markets.map(one));
  };
  const typeParam = z.enum(['FULL', 'MINI']).optional();
  const statisticsResponse = { 200: fullOrMini(binance.rollingTicker) };

  r.get('/api/v3/ticker', {
    schema: {
      tags,
      summary: 'Statistics over a rolling window (windowSize 1m–59m, 1h–23h, 1d–7d; default 1d) of one symbol or several (symbols)',
      querystring: many.extend({ windowSize: z.string().max(3).refine((w) => windowMs(w) !== null, 'must be 1m to 59m, 1h to 23h, or 1d to 7d').optional(), type: typeParam }),
      response: statisticsResponse,
    },
  }, async (request) => {
    const q = request.query;
    const size = windowMs(q.windowSize ?? '1d')!;
    const now = Date.now();
    return statisticsOf(q, await someMarkets(q), () => [now - size, now]);
  });

  r.get('/api/v3/ticker/tradingDay', {
    schema: {
      tags,
      summary: 'Statistics of the current trading day (00:00 to 23:59:59.999 in timeZone, default UTC) of one symbol or several (symbols)',
      querystring: many.extend({ timeZone: timeZoneParam, type: typeParam }),
      response: statisticsResponse,
    },
  }, async (request) => {
    const q = request.query;
    const offset = q.timeZone ?? 0;
    const dayStart = bucketOpen('1d', Date.now(), offset);
    return statisticsOf(q, await someMarkets(q), () => [dayStart, dayStart + 86_400_000 - 1]);
  });

  r.get('/api/v3/ticker/price', {
    schema: { tags, summary: 'Latest price of one symbol, of several (symbols), or of all', querystring: many, response: { 200: oneOrMany(binance.price) } },
  }, async (request) => {
    const one = async (m: Market) => {
      const p = await store.market.price(m);
      return { symbol: p.symbol, price: b8(p.price) };
    };
    const markets = await named(request.query);
    return request.query.symbol ? one(markets[0]!) : Promise.all(markets.map(one));
  });

  r.get('/api/v3/ticker/bookTicker', {
    schema: { tags, summary: 'Best bid and ask of one symbol, of several (symbols), or of all', querystring: many, response: { 200: oneOrMany(binance.bookTicker) } },
  }, async (request) => {
    const one = async (m: Market) => bookTickerObject(m.symbol, await store.market.depth(m, 1));
    const markets = await named(request.query);
    return request.query.symbol ? one(markets[0]!) : Promise.all(markets.map(one));
  });

  r.get('/api/v3/avgPrice', {
    schema: { tags, summary: 'Volume-weighted average price of the last 5 minutes', querystring: z.object({ symbol: symbolParam, exchange: exchangeParam }), response: { 200: binance.avgPrice } },
  }, async (request) => {
    const a = await store.market.averagePrice(await market(request.query.symbol, request.query.exchange));
    return { mins: a.mins, price: b8(a.price), closeTime: a.closeTime };
  });

  r.get('/api/v3/depth', {
    schema: { tags, summary: 'Order book: the venue\'s from open orders, an exchange\'s from its latest snapshot', querystring: z.object({ symbol: symbolParam, limit: limitParam(LIMITS.depth.max, true).optional(), exchange: exchangeParam }), response: { 200: binance.depth } },
  }, async (request) => depthObject(await store.market.depth(await market(request.query.symbol, request.query.exchange), request.query.limit)));
}

/**
 * A spot market in Binance's sense: one with a base and a quote asset. Exchange instruments
 * without them (an index such as NIFTY) are served by symbol, but not listed among the markets.
 */
const isSpot = (m: Market) => Boolean(m.baseAsset && m.quoteAsset);

/** A rate-limit window in Binance's interval units (SECOND, MINUTE, DAY). */
function window(ms: number): { interval: 'SECOND' | 'MINUTE' | 'DAY'; intervalNum: number } {
  if (ms % 86_400_000 === 0) return { interval: 'DAY', intervalNum: ms / 86_400_000 };
  if (ms % 60_000 === 0) return { interval: 'MINUTE', intervalNum: ms / 60_000 };
  return { interval: 'SECOND', intervalNum: Math.max(1, Math.round(ms / 1000)) };
}

/** Binance's windowSize: 1m to 59m, 1h to 23h, 1d to 7d. */
const WINDOW_SIZE = /^([1-9][0-9]?)([mhd])$/;
function windowMs(value: string): number | null {
  const match = WINDOW_SIZE.exec(value);
  if (!match) return null;
  const n = Number(match[1]);
  const [max, unit] = match[2] === 'm' ? [59, 60_000] : match[2] === 'h' ? [23, 3_600_000] : [7, 86_400_000];
  return n <= max ? n * unit : null;
}

/** Binance's symbols parameter: a JSON array of symbols. */
function parseSymbols(value: string): string[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    throw new ApiError(400, 'invalid_parameter', 'must be a JSON array of symbols, e.g. ["TATA_INR"]', 'symbols');
  }
  if (!Array.isArray(parsed) || parsed.length === 0 || parsed.length > 100 || !parsed.every((s) => typeof s === 'string' && symbolParam.safeParse(s).success)) {
    throw new ApiError(400, 'invalid_parameter', 'must be a JSON array of 1 to 100 symbols', 'symbols');
  }
  return parsed as string[];
}
