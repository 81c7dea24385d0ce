import { createHash, timingSafeEqual } from 'node:crypto';
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify';
import type { Config } from '../config.ts';
import { openBus } from '../bus/open.ts';
import type { Bus } from '../bus/types.ts';
import { openDatabase } from '../database/open.ts';
import type { Database } from '../database/types.ts';
import { IngestWorker } from '../ingest/worker.ts';
import { registerApi } from '../api/app.ts';
import { recordUsage, UsageRecorder } from '../api/usage.ts';
import { health as healthSchema, raw } from '../api/responses.ts';
import { nativeError } from '../api/errors.ts';
import { serializerCompiler, validatorCompiler } from 'fastify-type-provider-zod';
import type { LiveStreams } from '../api/live.ts';
import { storeOver, type Store } from '../store/store.ts';
import { migrate } from '../schema/migrator.ts';
import { seed } from '../schema/seed.ts';
import { checkHealth } from './health.ts';
import { ingestRegistry, totalCounter } from './metrics.ts';
import { scheduleMaintenance, type MaintenanceScheduler } from './maintenance.ts';
import { configuredIntervals } from '../schema/maintenanceJobs.ts';
import { scheduleCheckups, type CheckupScheduler } from './monitor.ts';
import { checkupMetrics } from '../ops/checkup.ts';

export interface Service {
  db: Database;
  bus: Bus;
  store: Store;
  worker: IngestWorker | null;
  http: FastifyInstance;
  /** The port the HTTP server listens on (useful with PORT=0). */
  port: number;
  /** The live streams hub (null without the API). */
  live: LiveStreams | null;
  /** The database monitor (null with TRADESTORE_MONITOR_INTERVAL_MS=0). */
  monitor: CheckupScheduler | null;
  /** The address it is bound to (HOST). */
  address: string;
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

/**
 * Whether the caller holds an admin key: the API's auth hook has already checked any key it
 * presented (in every form the API accepts); without the API, X-API-Key is looked up here.
 */
async function isAdmin(request: FastifyRequest, store: Store): Promise<boolean> {
  if (request.identity) return request.identity.scopes.includes('admin');
  const key = request.headers['x-api-key'];
  const identity = typeof key === 'string' && key ? await store.apiKeys.verify(key).catch(() => null) : null;
  return identity?.scopes.includes('admin') ?? false;
}

async function metricsAllowed(request: FastifyRequest, token: string, store: Store): Promise<boolean> {
  const headers = request.headers;
  const bearer = typeof headers.authorization === 'string' ? /^Bearer (.+)$/i.exec(headers.authorization)?.[1] : undefined;
  // Digests compared, so neither the length nor the bytes of the token leak through timing or an exception.
  const digest = (v: string) => createHash('sha256').update(v).digest();
  if (bearer !== undefined && timingSafeEqual(digest(bearer), digest(token))) return true;
  return isAdmin(request, store);
}

/** `address:port` as bound, and a URL to reach it from this host (localhost for a wildcard address). */
export function boundAt(service: Pick<Service, 'address' | 'port'>): { bound: string; url: string } {
  const host = service.address.includes(':') ? `[${service.address}]` : service.address;
  const wildcard = service.address === '0.0.0.0' || service.address === '::';
  return { bound: `${host}:${service.port}`, url: `http://${wildcard ? 'localhost' : host}:${service.port}` };
}

/**
 * The running system: the ingest worker and the HTTP endpoints beside it. The HTTP server listens
 * before the worker starts, and any failure on the way (a port in use, a database or bus that
 * refuses) closes what was opened and rejects: a service that cannot serve /health never ingests.
 */
export async function startService(config: Config, options: ServiceOptions = {}): Promise<Service> {
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  // What was opened, closed in reverse order when the start fails.
  const opened: (() => Promise<unknown>)[] = [];
  const undo = async () => {
    for (const close of opened.reverse()) await close().catch(() => {});
  };
  try {
    const db = await openDatabase(config);
    opened.push(() => db.close());
    if (options.migrate) {
      const result = await migrate(db);
      if (result.to !== result.from) log(`migrated the database from version ${result.from} to ${result.to}`);
      await seed(db);
    }
    const bus = openBus(config);
    opened.push(() => bus.close());
    // A worker with another shard count than the bus's would read the wrong shards: refuse to start.
    if (options.ingest !== false) await bus.init();
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
    const store = storeOver(db, bus, undefined, config.keyring, config.sessions);
    const http = Fastify({
      logger: false,
      bodyLimit: config.api.bodyLimitBytes,
      requestTimeout: config.api.requestTimeoutMs,
      // Headers must arrive within the request timeout too (Node's default is 60 s), and the
      // timeouts are checked often enough to hold (Node checks every 30 s by default).
      http: { headersTimeout: config.api.requestTimeoutMs, connectionsCheckingInterval: Math.min(1000, config.api.requestTimeoutMs) },
    });
    opened.push(() => http.close());
    // Requests are checked and answers encoded by the routes' zod schemas (src/api/responses.ts).
    http.setValidatorCompiler(validatorCompiler);
    http.setSerializerCompiler(serializerCompiler);
    let live: LiveStreams | null = null;
    let usage: UsageRecorder | null = null;
    if (options.api !== false) {
      live = await registerApi(http, store, config, registry);
      const hub = live;
      opened.push(() => hub.close());
      // Seed 003's api_usage, written in batches off the request path (src/api/usage.ts).
      const recorder = new UsageRecorder(db, { log });
      usage = recorder;
      recordUsage(http, recorder);
      totalCounter(registry, 'tradestore_api_usage_rows_total', 'API requests recorded in api_usage (written), or not (dropped: the buffer was full or a write failed)',
        () => ({ written: recorder.written, dropped: recorder.dropped }), 'result');
      recorder.start();
      opened.push(() => recorder.stop());
    }
    const operations = ['Operations'];
    http.get('/health', {
      schema: {
        tags: operations,
        summary: 'Health: 200 "healthy" while the service does its work, else 503 "degraded" with the causes',
        description: 'The errors behind the causes (addresses, SQL messages) are included only for an API key with the admin scope (X-API-Key).',
        response: { 200: healthSchema, 503: healthSchema },
      },
    }, async (request, reply) => {
      // The errors behind the causes (addresses, SQL messages) are for operators only.
      const health = await checkHealth(db, bus, worker, { stallMs: config.ingest.stallMs, detail: await isAdmin(request, store), api: live !== null });
      return reply.code(health.status === 'healthy' ? 200 : 503).send(health);
    });
    http.get('/metrics', {
      schema: {
        tags: operations,
        summary: 'Prometheus metrics (text exposition format)',
        description: 'With TRADESTORE_METRICS_TOKEN set: that token as Authorization: Bearer, or an API key with the admin scope; else 401.',
        response: { 200: raw('text/plain', 'Prometheus text exposition format, version 0.0.4'), 401: nativeError },
      },
    }, async (request, reply) => {
      // Restricted when TRADESTORE_METRICS_TOKEN is set: that token as a bearer, or an admin key.
      if (config.api.metricsToken !== null && !(await metricsAllowed(request, config.api.metricsToken, store))) {
        return reply.code(401).send({ error: { code: 'metrics_token_required', message: 'set Authorization: Bearer <TRADESTORE_METRICS_TOKEN>, or use an API key with the admin scope' } });
      }
      return reply.type(registry.contentType).send(await registry.metrics());
    });
    await http.listen({ port: config.port, host: config.host });
    const address = http.server.address();
    const port = typeof address === 'object' && address ? address.port : config.port;
    const running = worker?.start();
    // The scheduler ticks at least as often as snapshots are due.
    const tickMs = config.snapshotIntervalMs > 0 ? Math.min(config.maintenanceTickMs, config.snapshotIntervalMs) : config.maintenanceTickMs;
    const maintenance: MaintenanceScheduler | null =
      config.maintenanceTickMs > 0 ? scheduleMaintenance(db, { tickMs, intervals: configuredIntervals(config), log }) : null;
    const monitor: CheckupScheduler | null =
      config.monitor.intervalMs > 0
        ? scheduleCheckups(db, bus, { intervalMs: config.monitor.intervalMs, thresholds: config.monitor.thresholds, stream: config.bus.stream, keyPrefix: config.bus.keyPrefix, log })
        : null;
    if (monitor) checkupMetrics(registry, monitor.latest);
    let stopped: Promise<void> | null = null;
    return {
      db,
      bus,
      store,
      worker,
      http,
      port,
      live,
      monitor,
      address: typeof address === 'object' && address ? address.address : config.host,
      stop() {
        stopped ??= (async () => {
          await maintenance?.stop();
          await monitor?.stop();
          await worker?.stop();
          await running;
          await live?.close();
          await http.close();
          await usage?.stop();
          await bus.close();
          await db.close();
        })();
        return stopped;
      },
    };
  } catch (error) {
    await undo();
    throw error;
  }
}
