import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Store } from '../../store/store.ts';
import { readerOf, requireScope } from '../auth.ts';
import * as res from '../responses.ts';
import { idParam, limitParam } from '../params.ts';

const tags = ['Risk (API key with the admin scope to manage; read to see your own)'];
const security = [{ apiKey: [] }];
const numericId = z.object({ id: z.string().regex(/^[1-9]\d{0,17}$/, 'must be an id') });
const decimalText = z.string().regex(/^\d{1,20}(\.\d{1,18})?$/, 'must be a decimal string such as "10000"');

/** Risk limits and events (docs/RISK.md): managed with the admin scope; a user reads their own. */
export function riskRoutes(app: FastifyInstance, store: Store): void {
  const r = app.withTypeProvider<ZodTypeProvider>();

  r.get('/v1/account/risk', {
    schema: { tags, security, summary: "The key's user's risk limits with their current values and levels, and their open risk events", response: { 200: z.object({ limits: res.riskLimits.shape.limits, events: res.riskEvents.shape.events }) } },
  }, async (request) => {
    const { userId } = requireScope(request, 'read');
    // The caller's own, as the account reader (even for an admin key: this is the key's account).
    const { risk } = store.readsAs({ userId, admin: false });
    return { limits: await risk.limits(userId), events: await risk.events({ userId, open: true }) };
  });

  r.get('/v1/admin/risk/limits', {
    schema: { tags, security, summary: "A user's risk limits, or every limit (of a level)", querystring: z.object({ userId: idParam.optional(), level: z.enum(['ok', 'warning', 'critical']).optional() }), response: { 200: res.riskLimits } },
  }, async (request) => {
    const { risk } = readerOf(request, store, 'admin');
    const q = request.query;
    return { limits: q.userId ? (await risk.limits(q.userId)).filter((l) => !q.level || l.level === q.level) : await risk.allLimits({ level: q.level }) };
  });

  r.put('/v1/admin/risk/limits', {
    schema: {
      tags,
      security,
      summary: 'Sets the limit of a scope (user, type, symbol, strategy): creates it or changes it; it is evaluated at once',
      body: z.object({
        userId: idParam,
        limitType: z.string().regex(/^[a-z][a-z0-9_]{0,49}$/),
        limitValue: decimalText,
        symbol: z.string().regex(/^[A-Za-z0-9_.\-/:]{1,50}$/).nullable().optional(),
        strategyId: idParam.nullable().optional(),
        warningRatio: decimalText.optional().describe('A warning when the value reaches this fraction of the limit (default 0.8)'),
        action: z.string().min(1).max(100).optional(),
        isActive: z.boolean().optional(),
      }),
      response: { 200: res.riskLimit },
    },
  }, async (request) => {
    requireScope(request, 'admin');
    return store.risk.setLimit(request.body);
  });

  r.delete('/v1/admin/risk/limits/:id', { schema: { tags, security, summary: 'Removes a limit', params: numericId, response: { 204: z.null() } } }, async (request, reply) => {
    requireScope(request, 'admin');
    await store.risk.removeLimit(request.params.id);
    return reply.code(204).send(null);
  });

  r.get('/v1/admin/risk/events', {
    schema: {
      tags,
      security,
      summary: 'Risk events, newest first: of a user, open ones only, of a severity',
      querystring: z.object({ userId: idParam.optional(), open: z.enum(['true', 'false']).optional(), severity: z.enum(['info', 'warning', 'critical']).optional(), limit: limitParam(1000).optional() }),
      response: { 200: res.riskEvents },
    },
  }, async (request) => {
    const { risk } = readerOf(request, store, 'admin');
    const q = request.query;
    return { events: await risk.events({ userId: q.userId, open: q.open === 'true', severity: q.severity, limit: q.limit }) };
  });

  for (const what of ['acknowledge', 'resolve'] as const) {
    r.post(`/v1/admin/risk/events/:id/${what}`, {
      schema: { tags, security, summary: `${what === 'acknowledge' ? 'Acknowledges' : 'Resolves'} a risk event, once, as the key's user`, params: numericId, response: { 200: res.riskEvent } },
    }, async (request) => {
      const identity = requireScope(request, 'admin');
      return what === 'acknowledge' ? store.risk.acknowledge(request.params.id, identity.userId) : store.risk.resolve(request.params.id, identity.userId);
    });
  }
}
