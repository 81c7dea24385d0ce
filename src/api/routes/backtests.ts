import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Store } from '../../store/store.ts';
import { RANKABLE } from '../../store/backtests.ts';
import { PAGE } from '../../store/pagination.ts';
import { readerOf, requireScope } from '../auth.ts';
import * as res from '../responses.ts';
import { cursorParam, idParam, limitParam, symbolParam } from '../params.ts';

const tags = ['Backtests (API key: read to see, trade to create)'];
const security = [{ apiKey: [] }];
const id = z.object({ id: z.string().regex(/^[1-9]\d{0,17}$/, 'must be a backtest id') });
const decimalText = z.string().regex(/^\d{1,20}(\.\d{1,18})?$/, 'must be a decimal string such as "100000"');
const moment = z.union([z.string().datetime({ offset: true }), z.number().int()]).transform((v) => new Date(v)).describe('ISO 8601 time or epoch milliseconds');

/**
 * Backtests of the caller's strategies (docs/BACKTESTS.md): created here, run by an engine that
 * reports through events or the library, read back with their summary, trades and curve. An
 * admin key sees every backtest.
 */
export function backtestRoutes(app: FastifyInstance, store: Store): void {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const ownerOf = (request: FastifyRequest, scope: 'read' | 'trade') => {
    const identity = requireScope(request, scope);
    return identity.scopes.includes('admin') ? undefined : identity.userId;
  };

  r.post('/v1/backtests', {
    schema: {
      tags,
      security,
      summary: "A new backtest of one of the key's strategies, PENDING until its engine reports it started",
      body: z.object({
        strategyId: idParam,
        name: z.string().min(1).max(200),
        description: z.string().max(10_000).optional(),
        symbols: z.array(symbolParam).min(1).max(500),
        timeframes: z.array(z.string().max(5)).max(20).optional(),
        startDate: moment,
        endDate: moment,
        initialCapital: decimalText,
        commission: decimalText.optional(),
        slippage: decimalText.optional(),
        parameters: z.record(z.string(), z.unknown()).optional(),
      }),
      response: { 201: res.backtest },
    },
  }, async (request, reply) => {
    const owner = ownerOf(request, 'trade');
    // An admin's backtest of any strategy as the owner role; anyone else's of their own, as the account writer.
    const backtests = owner === undefined ? store.backtests : store.writesAs(owner).backtests;
    return reply.code(201).send(await backtests.create(request.body, owner));
  });

  r.get('/v1/backtests', {
    schema: {
      tags,
      security,
      summary: 'Backtests, newest first, or the completed ones ranked by a metric (best first)',
      querystring: z.object({
        strategyId: idParam.optional(),
        status: z.enum(['pending', 'running', 'completed', 'failed', 'cancelled']).optional(),
        orderBy: z.enum(Object.keys(RANKABLE) as [keyof typeof RANKABLE, ...(keyof typeof RANKABLE)[]]).optional(),
        limit: limitParam(PAGE.max).optional(),
      }),
      response: { 200: res.backtests },
    },
  }, async (request) => { const r = readerOf(request, store); return { backtests: await r.backtests.list(request.query, r.owner) }; });

  r.get('/v1/backtests/:id', { schema: { tags, security, summary: 'One backtest: its state and progress, and its summary once completed', params: id, response: { 200: res.backtest } } }, async (request) => {
    const r = readerOf(request, store);
    return r.backtests.get(request.params.id, r.owner);
    });

  r.get('/v1/backtests/:id/trades', {
    schema: { tags, security, summary: "The backtest's trades by entry time, in keyset pages", params: id, querystring: z.object({ cursor: cursorParam, limit: limitParam(PAGE.max).optional() }), response: { 200: res.backtestTradePage } },
  }, async (request) => { const r = readerOf(request, store); return r.backtests.trades(request.params.id, request.query, r.owner); });

  r.get('/v1/backtests/:id/equity', { schema: { tags, security, summary: "The daily equity curve the summary was computed from", params: id, response: { 200: res.backtestEquity } } }, async (request) => {
    const r = readerOf(request, store);
    return r.backtests.equity(request.params.id, r.owner);
    });

  r.get('/v1/backtests/:id/compare', {
    schema: { tags, security, summary: "A completed backtest's metrics beside its strategy's live metrics over the backtest's period", params: id, response: { 200: res.backtestComparison } },
  }, async (request) => { const r = readerOf(request, store); return r.backtests.compare(request.params.id, r.owner); });
}
