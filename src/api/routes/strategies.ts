import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Store } from '../../store/store.ts';
import { STRATEGY_TIMEFRAMES } from '../../store/strategies.ts';
import { readerOf, requireScope } from '../auth.ts';
import * as res from '../responses.ts';
import { dateParam, idParam, limitParam, roundTripFilters, symbolParam, timeRange } from '../params.ts';
import { PAGE } from '../../store/pagination.ts';

const tags = ['Strategies (API key: read to see, trade to change)'];
const security = [{ apiKey: [] }];
const id = z.object({ id: idParam });
const configuration = {
  name: z.string().min(1).max(200),
  type: z.string().max(50).nullable(),
  timeframe: z.enum(STRATEGY_TIMEFRAMES).nullable(),
  symbols: z.array(symbolParam).min(1).max(500),
  config: z.record(z.string(), z.unknown()).describe("The strategy's parameters, a JSON object"),
};
const capital = z.string().regex(/^\d{1,20}(\.\d{1,18})?$/).refine((v) => /[1-9]/.test(v), 'must be positive').describe('Starting capital, a positive decimal string');

/**
 * The caller's strategies: read with the read scope, create and change with the trade scope.
 * An admin key sees and changes every strategy, those with no owner included, and can give one
 * an owner; every other key only its user's.
 */
export function strategyRoutes(app: FastifyInstance, store: Store): void {
  const r = app.withTypeProvider<ZodTypeProvider>();
  /** The owner a request is restricted to: none for an admin key. */
  const ownerOf = (request: FastifyRequest, scope: 'read' | 'trade') => {
    const identity = requireScope(request, scope);
    return identity.scopes.includes('admin') ? undefined : identity.userId;
  };

  r.get('/v1/strategies', {
    schema: { tags, security, summary: 'Strategies, newest first: the active ones, or all (status=all)', querystring: z.object({ status: z.enum(['active', 'all']).optional() }), response: { 200: res.strategies } },
  }, async (request) => {
    const r = readerOf(request, store);
    return { strategies: request.query.status === 'all' ? await r.strategies.list(r.owner) : await r.strategies.active(r.owner) };
  });

  r.post('/v1/strategies', {
    schema: {
      tags,
      security,
      summary: "A new strategy of the key's user, inactive, at version 1",
      body: z.object({ ...configuration, type: configuration.type.optional(), timeframe: configuration.timeframe.optional(), config: configuration.config.optional(), executionMode: z.enum(['paper', 'live']).optional(), initialCapital: capital.optional() }),
      response: { 201: res.strategy },
    },
  }, async (request, reply) => {
    const identity = requireScope(request, 'trade');
    // As the account writer: the strategy must be the caller's (row-level security checks it).
    return reply.code(201).send(await store.writesAs(identity.userId).strategies.create({ ...request.body, userId: identity.userId }, identity.userId));
  });

  r.patch('/v1/strategies/:id', {
    schema: {
      tags,
      security,
      summary: 'Changes a strategy: a change of its configuration (name, type, timeframe, symbols, config) is a new version; isActive and executionMode are its state; userId (admin keys) gives it an owner',
      params: id,
      body: z.object({
        name: configuration.name.optional(),
        type: configuration.type.optional(),
        timeframe: configuration.timeframe.optional(),
        symbols: configuration.symbols.optional(),
        config: configuration.config.optional(),
        executionMode: z.enum(['paper', 'live']).optional(),
        isActive: z.boolean().optional(),
        initialCapital: capital.nullable().optional(),
        userId: idParam.nullable().optional(),
      }),
      response: { 200: res.strategy },
    },
  }, async (request) => {
    const identity = requireScope(request, 'trade');
    const owner = ownerOf(request, 'trade');
    const { userId, ...changes } = request.body;
    if (userId !== undefined && owner !== undefined) return Promise.reject(Object.assign(new Error('userId: only an API key with the admin scope gives a strategy an owner'), { statusCode: 403, code: 'scope_required' }));
    // An admin changes any strategy as the owner role; anyone else their own, as the account writer.
    const strategies = owner === undefined ? store.strategies : store.writesAs(owner).strategies;
    return strategies.update(request.params.id, { ...changes, ...(userId !== undefined ? { userId } : {}) }, identity.userId, owner);
  });

  r.get('/v1/strategies/:id', { schema: { tags, security, summary: 'One strategy', params: id, response: { 200: res.strategy } } }, async (request) => {
    const r = readerOf(request, store);
    return r.strategies.get(request.params.id, r.owner);
    });

  r.get('/v1/strategies/:id/versions', { schema: { tags, security, summary: "Every version of the strategy's configuration, oldest first", params: id, response: { 200: res.strategyVersions } } }, async (request) => {
    const r = readerOf(request, store);
    return { versions: await r.strategies.versions(request.params.id, r.owner) };
    });

  r.get('/v1/strategies/:id/metrics', {
    schema: {
      tags,
      security,
      summary: "The strategy's metrics over [from, to) (docs/ANALYTICS.md): returns and risk from its daily equity (portfolio snapshots), against a benchmark market, and its round trips; a metric the data cannot support is null with its reason",
      params: id,
      querystring: timeRange(z.object({ from: dateParam, to: dateParam, benchmark: z.string().regex(/^([A-Za-z0-9_.-]{1,50}:)?[A-Za-z0-9_.-]{1,50}$/, 'must be a market symbol, or EXCHANGE:SYMBOL').optional().describe('A venue market, an instrument, or EXCHANGE:SYMBOL'), riskFree: z.coerce.number().min(0).lt(1).optional().describe('Annual risk-free rate, 0.04 for 4 %') }), 'from', 'to'),
      response: { 200: res.strategyMetrics },
    },
  }, async (request) => {
    const q = request.query;
    const r = readerOf(request, store);
    return r.strategies.analytics(request.params.id, { from: q.from, to: q.to, benchmark: q.benchmark, riskFree: q.riskFree }, r.owner);
  });

  r.get('/v1/strategies/:id/equity', {
    schema: {
      tags,
      security,
      summary: "The strategy's equity curve in UTC days over [from, to) and its drawdown curve: each day's closing portfolio snapshot, or (without snapshots) initial capital plus realized P&L by exit day",
      params: id,
      querystring: timeRange(z.object({ from: dateParam, to: dateParam }), 'from', 'to'),
      response: { 200: res.strategyEquity },
    },
  }, async (request) => { const r = readerOf(request, store); return r.strategies.equity(request.params.id, request.query, r.owner); });

  r.get('/v1/strategies/:id/trades', {
    schema: {
      tags,
      security,
      summary: "The strategy's round trips with filters, newest entry first, with the total (status=open: its open positions)",
      params: id,
      querystring: timeRange(z.object({ ...roundTripFilters, limit: limitParam(PAGE.max).optional() }), 'from', 'to'),
      response: { 200: res.strategyTradePage },
    },
  }, async (request) => { const r = readerOf(request, store); return r.strategies.trades(request.params.id, request.query, r.owner); });

  r.get('/v1/strategies/:id/performance', {
    schema: { tags, security, summary: 'Performance of closed round trips entered in [from, to]', params: id, querystring: timeRange(z.object({ from: dateParam, to: dateParam }), 'from', 'to'), response: { 200: res.strategyPerformance } },
  }, async (request) => { const r = readerOf(request, store); return r.strategies.performance(request.params.id, request.query, r.owner); });
}
