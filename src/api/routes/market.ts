import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Store } from '../../store/store.ts';
import { LIMITS } from '../../store/market.ts';
import * as res from '../responses.ts';
import { exchangeParam, intervalParam, limitParam, millis, symbolParam, timeRange, timeZoneParam } from '../params.ts';

const tags = ['Market data'];
const symbolPath = z.object({ symbol: symbolParam });
const exchangeQuery = z.object({ exchange: exchangeParam });

/** Public market data in tradestore's own shape: decimals as strings, times in epoch milliseconds. */
export function marketRoutes(app: FastifyInstance, store: Store): void {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const market = (symbol: string, exchange?: string) => store.market.resolve(symbol, exchange);

  r.get('/v1/markets', { schema: { tags, summary: 'All markets: the venue\'s own and exchange instruments', response: { 200: res.markets } } }, async () => ({ markets: await store.market.list() }));

  r.get('/v1/markets/:symbol', { schema: { tags, summary: 'One market', params: symbolPath, querystring: exchangeQuery, response: { 200: res.market } } }, async (request) =>
    market(request.params.symbol, request.query.exchange));

  r.get('/v1/markets/:symbol/klines', {
    schema: {
      tags,
      summary: 'Candles of any interval; intervals that are not stored are merged from a stored one',
      params: symbolPath,
      querystring: timeRange(z.object({ interval: intervalParam, startTime: millis.optional(), endTime: millis.optional(), limit: limitParam(LIMITS.klines.max).optional(), timeZone: timeZoneParam, exchange: exchangeParam })),
      response: { 200: res.klines },
    },
  }, async (request) => {
    const q = request.query;
    const m = await market(request.params.symbol, q.exchange);
    return { symbol: m.symbol, interval: q.interval, klines: await store.market.klines(m, { interval: q.interval, startTime: q.startTime, endTime: q.endTime, limit: q.limit, timeZoneOffset: q.timeZone }) };
  });

  r.get('/v1/markets/:symbol/trades', {
    schema: {
      tags,
      summary: 'Trades, oldest first: the latest `limit`, or from startTime',
      params: symbolPath,
      querystring: timeRange(z.object({ limit: limitParam(LIMITS.trades.max).optional(), startTime: millis.optional(), endTime: millis.optional(), exchange: exchangeParam })),
      response: { 200: res.trades },
    },
  }, async (request) => {
    const q = request.query;
    const m = await market(request.params.symbol, q.exchange);
    return { symbol: m.symbol, trades: await store.market.trades(m, { limit: q.limit, startTime: q.startTime, endTime: q.endTime }) };
  });

  r.get('/v1/markets/:symbol/ticker', { schema: { tags, summary: 'Rolling 24-hour ticker, exact at the window edges', params: symbolPath, querystring: exchangeQuery, response: { 200: res.ticker } } }, async (request) =>
    store.market.ticker(await market(request.params.symbol, request.query.exchange)));

  r.get('/v1/markets/:symbol/price', { schema: { tags, summary: 'Latest price', params: symbolPath, querystring: exchangeQuery, response: { 200: res.price } } }, async (request) =>
    store.market.price(await market(request.params.symbol, request.query.exchange)));

  r.get('/v1/markets/:symbol/depth', {
    schema: { tags, summary: 'Order-book depth', params: symbolPath, querystring: z.object({ limit: limitParam(LIMITS.depth.max).optional(), exchange: exchangeParam }), response: { 200: res.depth } },
  }, async (request) => store.market.depth(await market(request.params.symbol, request.query.exchange), request.query.limit));
}
