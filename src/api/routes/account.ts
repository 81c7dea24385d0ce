import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Store } from '../../store/store.ts';
import { PAGE } from '../../store/pagination.ts';
import { requireScope } from '../auth.ts';
import * as res from '../responses.ts';
import { cursorParam, idParam, limitParam, roundTripFilters, symbolParam, timeRange } from '../params.ts';

const tags = ['Account (API key with the read scope)'];
const security = [{ apiKey: [] }];

/** The caller's own account data. The key's user is the only user these routes ever read. */
export function accountRoutes(app: FastifyInstance, store: Store): void {
  const r = app.withTypeProvider<ZodTypeProvider>();

  r.get('/v1/account/orders', {
    schema: {
      tags, security, summary: 'Orders, newest first, by page',
      querystring: z.object({ market: symbolParam.optional(), status: z.enum(['open', 'filled', 'cancelled', 'rejected']).optional(), cursor: cursorParam, limit: limitParam(PAGE.max).optional() }),
      response: { 200: res.orderPage },
    },
  }, async (request) => store.account.orders(requireScope(request, 'read').userId, request.query));

  r.get('/v1/account/orders/open', {
    schema: { tags, security, summary: 'Open orders, newest first', querystring: z.object({ market: symbolParam.optional() }), response: { 200: res.orders } },
  }, async (request) => ({ orders: await store.account.openOrders(requireScope(request, 'read').userId, request.query.market) }));

  r.get('/v1/account/orders/:id', {
    schema: { tags, security, summary: 'One order with its history', params: z.object({ id: idParam }), response: { 200: res.orderWithHistory } },
  }, async (request) => store.account.order(requireScope(request, 'read').userId, request.params.id));

  r.get('/v1/account/balances', { schema: { tags, security, summary: 'Balances of every asset', response: { 200: res.balances } } }, async (request) =>
    ({ balances: await store.account.balances(requireScope(request, 'read').userId) }));

  r.get('/v1/account/balances/history', {
    schema: { tags, security, summary: 'Balance changes, newest first, by page', querystring: z.object({ asset: z.string().regex(/^[A-Za-z0-9]{1,10}$/).optional(), cursor: cursorParam, limit: limitParam(PAGE.max).optional() }), response: { 200: res.balanceChangePage } },
  }, async (request) => store.account.balanceHistory(requireScope(request, 'read').userId, request.query));

  r.get('/v1/account/positions', {
    schema: { tags, security, summary: 'Positions', querystring: z.object({ status: z.enum(['open', 'closed', 'all']).optional() }), response: { 200: res.positions } },
  }, async (request) => ({ positions: await store.account.positions(requireScope(request, 'read').userId, request.query.status) }));

  r.get('/v1/account/exchange-orders', {
    schema: {
      tags, security, summary: 'Orders sent to exchanges and brokers (docs/ORDERS.md), newest first, by strategy and status, in keyset pages',
      querystring: z.object({
        strategyId: idParam.optional(),
        status: z.enum(['pending', 'open', 'partially_filled', 'filled', 'cancelled', 'rejected', 'expired']).optional(),
        cursor: cursorParam,
        limit: limitParam(PAGE.max).optional(),
      }),
      response: { 200: res.exchangeOrderPage },
    },
  }, async (request) => store.exchangeOrders.list({ ...request.query, userId: requireScope(request, 'read').userId }));

  r.get('/v1/account/exchange-orders/:id', {
    schema: { tags, security, summary: 'One order sent to an exchange or broker, with every transition it went through', params: z.object({ id: idParam }), response: { 200: res.exchangeOrderWithHistory } },
  }, async (request) => store.exchangeOrders.get(request.params.id, requireScope(request, 'read').userId));

  r.get('/v1/account/trades', {
    schema: {
      tags, security, summary: 'Strategy round trips with filters, newest first, with the total',
      querystring: timeRange(z.object({ strategyId: idParam.optional(), ...roundTripFilters, limit: limitParam(PAGE.max).optional() }), 'from', 'to'),
      response: { 200: res.strategyTradePage },
    },
  }, async (request) => store.account.tradeHistory(requireScope(request, 'read').userId, request.query));

}
