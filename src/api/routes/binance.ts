import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Store } from '../../store/store.ts';
import { ApiError } from '../errors.ts';
import { aggTradeObject, depthObject, klineRow, symbolObject, ticker24hObject, tradeObject } from '../binanceFormat.ts';
import { exchangeParam, intervalParam, limitParam, millis, symbolParam, timeRange } from '../params.ts';

const tags = ['Binance-compatible market data'];

/** Binance's public market-data endpoints, answered from the store: existing clients work unchanged. */
export function binanceRoutes(app: FastifyInstance, store: Store): void {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const market = (symbol: string, exchange?: string) => store.market.resolve(symbol, exchange);

  r.get('/api/v3/ping', { schema: { tags, summary: 'Connectivity check' } }, async () => ({}));
  r.get('/api/v3/time', { schema: { tags, summary: 'Server time' } }, async () => ({ serverTime: Date.now() }));

  r.get('/api/v3/exchangeInfo', {
    schema: { tags, summary: 'Markets with their assets and price and quantity filters', querystring: z.object({ symbol: symbolParam.optional(), symbols: z.string().max(2000).optional() }) },
  }, async (request) => {
    const all = await store.market.list();
    let chosen = all;
    if (request.query.symbol) chosen = [await market(request.query.symbol)];
    else if (request.query.symbols) {
      const names = parseSymbols(request.query.symbols);
      chosen = await Promise.all(names.map((s) => market(s)));
    }
    return {
      timezone: 'UTC',
      serverTime: Date.now(),
      rateLimits: [],
      exchangeFilters: [],
      symbols: chosen.map(symbolObject),
    };
  });

  r.get('/api/v3/klines', {
    schema: {
      tags,
      summary: 'Klines (candlesticks) as arrays: open time, OHLC, volume, close time, quote volume, trades, taker buy volumes',
      querystring: timeRange(z.object({ symbol: symbolParam, interval: intervalParam, startTime: millis.optional(), endTime: millis.optional(), limit: limitParam.optional(), exchange: exchangeParam })),
    },
  }, async (request) => {
    const q = request.query;
    const m = await market(q.symbol, q.exchange);
    const klines = await store.market.klines(m, { interval: q.interval, startTime: q.startTime, endTime: q.endTime, limit: q.limit });
    return klines.map(klineRow);
  });

  r.get('/api/v3/trades', {
    schema: { tags, summary: 'Recent trades, oldest first', querystring: z.object({ symbol: symbolParam, limit: limitParam.optional(), exchange: exchangeParam }) },
  }, async (request) => {
    const m = await market(request.query.symbol, request.query.exchange);
    return (await store.market.trades(m, { limit: request.query.limit })).map(tradeObject);
  });

  r.get('/api/v3/aggTrades', {
    schema: {
      tags,
      summary: 'Aggregate trades (what ccxt fetchTrades calls)',
      querystring: timeRange(z.object({ symbol: symbolParam, fromId: z.string().regex(/^\d{1,18}$/, 'must be a trade id').optional(), startTime: millis.optional(), endTime: millis.optional(), limit: limitParam.optional(), exchange: exchangeParam })),
    },
  }, async (request) => {
    const q = request.query;
    const m = await market(q.symbol, q.exchange);
    if (q.startTime !== undefined && q.endTime !== undefined && q.endTime - q.startTime > 3_600_000) {
      throw new ApiError(400, 'invalid_parameter', 'startTime and endTime may be at most one hour apart', 'endTime');
    }
    return (await store.market.trades(m, { limit: q.limit, startTime: q.startTime, endTime: q.endTime, fromSequence: q.fromId })).map(aggTradeObject);
  });

  r.get('/api/v3/ticker/24hr', {
    schema: { tags, summary: 'Rolling 24-hour statistics of one symbol, or of all', querystring: z.object({ symbol: symbolParam.optional(), symbols: z.string().max(2000).optional(), exchange: exchangeParam }) },
  }, async (request) => {
    const q = request.query;
    const one = async (symbol: string, exchange?: string) => {
      const m = await market(symbol, exchange);
      const [t, depth] = await Promise.all([store.market.ticker(m), store.market.depth(m, 1)]);
      return ticker24hObject(t, depth);
    };
    if (q.symbol) return one(q.symbol, q.exchange);
    const names = q.symbols ? parseSymbols(q.symbols) : null;
    const all = (await store.market.list()).filter((m) => (names ? names.includes(m.symbol) : true));
    return Promise.all(all.map((m) => one(m.symbol, m.exchange)));
  });

  r.get('/api/v3/ticker/price', {
    schema: { tags, summary: 'Latest price of one symbol, or of all', querystring: z.object({ symbol: symbolParam.optional(), exchange: exchangeParam }) },
  }, async (request) => {
    const one = async (symbol: string, exchange?: string) => {
      const p = await store.market.price(await market(symbol, exchange));
      return { symbol: p.symbol, price: p.price ?? '0.00000000' };
    };
    if (request.query.symbol) return one(request.query.symbol, request.query.exchange);
    return Promise.all((await store.market.list()).map((m) => one(m.symbol, m.exchange)));
  });

  r.get('/api/v3/avgPrice', {
    schema: { tags, summary: 'Volume-weighted average price of the last 5 minutes', querystring: z.object({ symbol: symbolParam, exchange: exchangeParam }) },
  }, async (request) => {
    const a = await store.market.averagePrice(await market(request.query.symbol, request.query.exchange));
    return { mins: a.mins, price: a.price ?? '0.00000000', closeTime: a.closeTime };
  });

  r.get('/api/v3/depth', {
    schema: { tags, summary: 'Order book: the venue\'s from open orders, an exchange\'s from its latest snapshot', querystring: z.object({ symbol: symbolParam, limit: limitParam.optional(), exchange: exchangeParam }) },
  }, async (request) => depthObject(await store.market.depth(await market(request.query.symbol, request.query.exchange), request.query.limit)));
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
