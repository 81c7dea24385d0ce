import Fastify, { type FastifyInstance } from 'fastify';
import type { Config } from '../config.ts';
import { openBus } from '../bus/open.ts';
import type { Bus } from '../bus/types.ts';
import { openDatabase } from '../database/open.ts';
import type { Database } from '../database/types.ts';
import { IngestWorker } from '../ingest/worker.ts';
import { checkHealth } from './health.ts';
import { ingestRegistry } from './metrics.ts';

export interface Service {
  db: Database;
  bus: Bus;
  worker: IngestWorker | null;
  http: FastifyInstance;
  /** The port the HTTP server listens on (useful with PORT=0). */
  port: number;
  /** Finishes the batch in flight, acknowledges it, and closes everything. */
  stop(): Promise<void>;
}

export interface ServiceOptions {
  ingest?: boolean;
  log?: (line: string) => void;
}

/** The running system: the ingest worker and the HTTP endpoints beside it. */
export async function startService(config: Config, options: ServiceOptions = {}): Promise<Service> {
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const db = await openDatabase(config);
  const bus = openBus(config);
  const worker =
    options.ingest === false
      ? null
      : new IngestWorker(db, bus, {
          consumer: config.ingest.consumer,
          batchSize: config.ingest.batchSize,
          claimIdleMs: config.ingest.claimIdleMs,
          maxDeliveries: config.ingest.maxDeliveries,
          log,
        });
  const registry = ingestRegistry(bus, worker);
  const http = Fastify({ logger: false });
  http.get('/health', async (_request, reply) => {
    const health = await checkHealth(db, bus, worker);
    return reply.code(health.status === 'healthy' ? 200 : 503).send(health);
  });
  http.get('/metrics', async (_request, reply) => reply.type(registry.contentType).send(await registry.metrics()));
  const running = worker?.start();
  await http.listen({ port: config.port, host: '0.0.0.0' });
  const address = http.server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  let stopped: Promise<void> | null = null;
  return {
    db,
    bus,
    worker,
    http,
    port,
    stop() {
      stopped ??= (async () => {
        await worker?.stop();
        await running;
        await http.close();
        await bus.close();
        await db.close();
      })();
      return stopped;
    },
  };
}
