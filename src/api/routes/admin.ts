import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Store } from '../../store/store.ts';
import { requireScope } from '../auth.ts';
import { limitParam } from '../params.ts';

const tags = ['Administration (API key with the admin scope)'];
const security = [{ apiKey: [] }];

export function adminRoutes(app: FastifyInstance, store: Store): void {
  const r = app.withTypeProvider<ZodTypeProvider>();
  r.get('/v1/admin/ingest', { schema: { tags, security, summary: 'Queue lag, pending entries and dead letters' } }, async (request) => {
    requireScope(request, 'admin');
    return store.bus.stats();
  });
  r.get('/v1/admin/dead-letters', {
    schema: { tags, security, summary: 'Dead letters with reason, payload and attempts', querystring: z.object({ limit: limitParam.optional() }) },
  }, async (request) => {
    requireScope(request, 'admin');
    return { deadLetters: await store.bus.listDead(Math.min(request.query.limit ?? 100, 1000)) };
  });
}
