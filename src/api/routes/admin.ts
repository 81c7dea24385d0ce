import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Store } from '../../store/store.ts';
import { readerOf, requireScope } from '../auth.ts';
import { ApiError } from '../errors.ts';
import { limitParam, millis } from '../params.ts';
import * as res from '../responses.ts';
import { checkup } from '../../ops/checkup.ts';
import { backupDatabase, BackupError } from '../../ops/backup.ts';
import type { AlertThresholds } from '../../ops/alerts.ts';

const tags = ['Administration (API key with the admin scope)'];
const security = [{ apiKey: [] }];
const deadId = z.string().regex(/^\d{1,5}:\d{1,20}-\d{1,20}$/, 'must be a dead letter id such as 3:1763700000123-0 (shard:id)');

export function adminRoutes(
  app: FastifyInstance,
  store: Store,
  config: { stream: string; thresholds: AlertThresholds; databaseUrl: string | null; backup: { dir: string; keep: number } },
): void {
  const r = app.withTypeProvider<ZodTypeProvider>();
  r.post('/v1/admin/backup', {
    schema: {
      tags,
      security,
      summary: "A backup now, into TRADESTORE_BACKUP_DIR on the service's machine: a server's pg_dump archive, or the embedded database's directory (taken in the service's own process, while it runs), each with its manifest",
      response: { 200: res.backup },
    },
  }, async (request) => {
    requireScope(request, 'admin');
    try {
      return await backupDatabase(store.db, config.databaseUrl, { outDir: config.backup.dir, keep: config.backup.keep });
    } catch (error) {
      // A missing or old pg_dump, a failed dump: the operator's message, not an internal error.
      if (error instanceof BackupError) throw new ApiError(503, 'backup_failed', error.message);
      throw error;
    }
  });
  r.get('/v1/admin/audit', {
    schema: {
      tags,
      security,
      summary: 'The audit trail, newest first: who changed what (old and new values, secrets redacted), from where; page back with until = the oldest entry\'s time',
      querystring: z.object({
        userId: z.string().max(255).optional(), resourceType: z.string().max(50).optional(), resourceId: z.string().max(255).optional(),
        action: z.string().max(100).optional(), actor: z.string().max(200).optional(), since: millis.optional(), until: millis.optional(), limit: limitParam(1000).optional(),
      }),
      response: { 200: res.auditEntries },
    },
  }, async (request) => {
    const { audit } = readerOf(request, store, 'admin');
    const { since, until, ...q } = request.query;
    const time = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms));
    return { entries: await audit.list({ ...q, since: time(since), until: time(until) }) };
  });
  r.get('/v1/admin/database', {
    schema: {
      tags,
      security,
      summary: 'The database as an operator watches it: table sizes, connections, long-running queries, lock waits, statements, replication, jobs, ingest, and the alerts firing',
      response: { 200: res.checkup },
    },
  }, async (request) => {
    requireScope(request, 'admin');
    return checkup(store.db, { bus: store.bus, stream: config.stream, thresholds: config.thresholds });
  });
  r.get('/v1/admin/ingest', { schema: { tags, security, summary: 'Shards and their owners, live workers, entries waiting, dead letters', response: { 200: res.busStats } } }, async (request) => {
    requireScope(request, 'admin');
    return store.bus.stats();
  });
  r.get('/v1/admin/dead-letters', {
    schema: {
      tags,
      security,
      summary: 'Dead letters, oldest first, with the reason and a preview of each original field (never whole payloads)',
      querystring: z.object({ limit: limitParam(1000).optional(), after: deadId.optional() }),
      response: { 200: res.deadLetters },
    },
  }, async (request) => {
    requireScope(request, 'admin');
    const count = request.query.limit ?? 100;
    const deadLetters = await store.bus.listDead({ count, after: request.query.after });
    return {
      deadLetters: deadLetters.map((l) => ({ ...l, failedAt: l.failedAt.toISOString() })),
      next: deadLetters.length === count ? deadLetters[deadLetters.length - 1]!.id : null,
    };
  });
  r.get('/v1/admin/dead-letters/:id/fields/:name', {
    schema: {
      tags,
      security,
      summary: "One field of a dead letter's original entry (payload: what the engine sent), byte for byte",
      params: z.object({ id: deadId, name: z.string().min(1).max(200) }),
      response: { 200: res.raw('application/octet-stream', 'The field\'s bytes, as the engine sent them') },
    },
  }, async (request, reply) => {
    requireScope(request, 'admin');
    const letter = await store.bus.readDead(request.params.id);
    if (!letter) throw new ApiError(404, 'unknown_dead_letter', `no dead letter with id ${request.params.id}`, 'id');
    const field = letter.fields.find((f) => f.name === request.params.name);
    if (!field) throw new ApiError(404, 'unknown_field', `dead letter ${letter.id} has no field ${JSON.stringify(request.params.name)}`, 'name');
    // Bytes are sent as they are (Fastify serializes no Buffer); the schema documents them as binary text.
    return reply.type('application/octet-stream').send(field.value as unknown as string);
  });
}
