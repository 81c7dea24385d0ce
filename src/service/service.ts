import Fastify, { type FastifyInstance } from 'fastify';
import type { Config } from '../config.ts';
import { openBus } from '../bus/open.ts';
import type { Bus } from '../bus/types.ts';
import { openDatabase } from '../database/open.ts';
import type { Database } from '../database/types.ts';
import { IngestWorker } from '../ingest/worker.ts';
import { registerApi } from '../api/app.ts';
import type { LiveStreams } from '../api/live.ts';
import { storeOver, type Store } from '../store/store.ts';
import { migrate } from '../schema/migrator.ts';
import { seed } from '../schema/seed.ts';
import { checkHealth } from './health.ts';
import { ingestRegistry } from './metrics.ts';
import { scheduleMaintenance, type MaintenanceScheduler } from './maintenance.ts';

export interface Service {
  db: Database;
  bus: Bus;
  store: Store;
  worker: IngestWorker | null;
  http: FastifyInstance;
  /** The port the HTTP server listens on (useful with PORT=0). */
  port: number;
  /** Finishes the batch in flight, acknowledges it, and closes everything. */
  stop(): Promise<void>;
}

export interface ServiceOptions {
  ingest?: boolean;
  /** Bring the schema up to date (and load the seed data) before anything starts. */
  migrate?: boolean;
  /** Serve the HTTP and WebSocket API (default true); /health and /metrics are always served. */
  api?: boolean;
  log?: (line: string) => void;
}

/** The running system: the ingest worker and the HTTP endpoints beside it. */
export async function startService(config: Config, options: ServiceOptions = {}): Promise<Service> {
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const db = await openDatabase(config);
  if (options.migrate) {
    try {
      const result = await migrate(db);
      if (result.to !== result.from) log(`migrated the database from version ${result.from} to ${result.to}`);
      await seed(db);
    } catch (error) {
      await db.close();
      throw error;
    }
  }
  const bus = openBus(config);
  if (options.ingest !== false) {
    // A worker with another shard count than the bus's would read the wrong shards: refuse to start.
    try {
      await bus.init();
    } catch (error) {
      await bus.close();
      await db.close();
      throw error;
    }
  }
  const worker =
    options.ingest === false
      ? null
      : new IngestWorker(db, bus, {
          consumer: config.ingest.consumer,
          batchSize: config.ingest.batchSize,
          leaseMs: config.ingest.leaseMs,
          maxStarts: config.ingest.maxStarts,
          decode: { maxBytes: config.ingest.maxPayloadBytes, maxSkewMs: config.ingest.maxClockSkewMs },
          deadLetterRetentionMs: config.ingest.deadLetterRetentionMs,
          log,
        });
  const registry = ingestRegistry(bus, worker);
  const store = storeOver(db, bus);
  const http = Fastify({ logger: false });
  let live: LiveStreams | null = null;
  if (options.api !== false) live = await registerApi(http, store, config);
  http.get('/health', { schema: { hide: true } }, async (request, reply) => {
    // The errors behind the causes (addresses, SQL messages) are for operators only.
    const key = request.headers['x-api-key'];
    const identity = typeof key === 'string' && key ? await store.apiKeys.verify(key).catch(() => null) : null;
    const health = await checkHealth(db, bus, worker, { stallMs: config.ingest.stallMs, detail: identity?.scopes.includes('admin') ?? false });
    return reply.code(health.status === 'healthy' ? 200 : 503).send(health);
  });
  http.get('/metrics', { schema: { hide: true } }, async (_request, reply) => reply.type(registry.contentType).send(await registry.metrics()));
  const running = worker?.start();
  await http.listen({ port: config.port, host: '0.0.0.0' });
  const maintenance: MaintenanceScheduler | null = config.maintenanceTickMs > 0 ? scheduleMaintenance(db, { tickMs: config.maintenanceTickMs, log }) : null;
  const address = http.server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  let stopped: Promise<void> | null = null;
  return {
    db,
    bus,
    store,
    worker,
    http,
    port,
    stop() {
      stopped ??= (async () => {
        await maintenance?.stop();
        await worker?.stop();
        await running;
        await live?.close();
        await http.close();
        await bus.close();
        await db.close();
      })();
      return stopped;
    },
  };
}
