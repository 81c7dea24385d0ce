import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Bus, BusStats } from '../bus/types.ts';
import type { IngestWorker } from '../ingest/worker.ts';
import { faults } from './faults.ts';

/**
 * A Prometheus counter over a running total kept elsewhere, read when scraped: `read` gives the
 * total, or with `label` the total of each label value.
 */
export function totalCounter(registry: Registry, name: string, help: string, read: () => number): void;
export function totalCounter(registry: Registry, name: string, help: string, read: () => Record<string, number>, label: string): void;
export function totalCounter(registry: Registry, name: string, help: string, read: () => number | Record<string, number>, label?: string): void {
  const last = new Map<string, number>();
  new Counter({
    name,
    help,
    labelNames: label ? [label] : [],
    registers: [registry],
    collect() {
      const now = read();
      for (const [value, total] of typeof now === 'number' ? [['', now] as const] : Object.entries(now)) {
        const before = last.get(value) ?? 0;
        if (total > before) {
          if (label) this.inc({ [label]: value }, total - before);
          else this.inc(total - before);
        }
        last.set(value, total);
      }
    },
  });
}

/** Prometheus metrics of the ingest service; values are read when scraped. */
export function ingestRegistry(bus: Bus, worker: IngestWorker | null): Registry {
  const registry = new Registry();
  // The process and Node.js runtime: CPU, memory, event-loop lag, garbage collection, handles.
  collectDefaultMetrics({ register: registry });
  const m = () => worker?.metrics;
  const counter = (name: string, help: string, read: () => number) => totalCounter(registry, name, help, read);
  counter('tradestore_ingest_events_applied_total', 'Events applied and committed', () => m()?.eventsApplied ?? 0);
  counter('tradestore_ingest_duplicates_total', 'Redelivered or repeated events that changed nothing', () => m()?.duplicates ?? 0);
  counter('tradestore_ingest_dead_lettered_total', 'Events this worker sent to the dead letters', () => m()?.deadLettered ?? 0);
  counter('tradestore_ingest_batches_total', 'Batches committed', () => m()?.batches ?? 0);
  counter('tradestore_unhandled_errors_total', 'Promise rejections no handler caught (logged; each is a bug to report)', () => faults.unhandled);
  const gauge = (name: string, help: string, read: () => number | Promise<number>) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      async collect() {
        this.set(await read());
      },
    });
  gauge('tradestore_ingest_events_per_second', 'Events applied per second over the last 10 s', () => m()?.eventsPerSecond() ?? 0);
  gauge('tradestore_ingest_batch_size', 'Entries in the last batch', () => m()?.lastBatchSize ?? 0);
  const batches = new Histogram({
    name: 'tradestore_ingest_batch_duration_seconds',
    help: 'Time a batch took to apply and commit',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });
  if (worker) worker.metrics.onBatch = (ms) => batches.observe(ms / 1000);
  let stats: ReturnType<Bus['stats']> | null = null;
  let statsAt = 0;
  const stat = async (read: (s: BusStats) => number | null) => {
    // One round trip per scrape for the stream gauges.
    if (!stats || Date.now() - statsAt > 500) {
      stats = bus.stats();
      statsAt = Date.now();
    }
    return stats.then((s) => read(s) ?? Number.NaN, () => Number.NaN);
  };
  gauge('tradestore_ingest_lag', 'Entries waiting to be applied, in the shard streams and the entry stream', () => stat((s) => s.lag));
  gauge('tradestore_ingest_entry_stream_length', 'Entries in the entry stream not yet routed to their shard', () => stat((s) => s.entryStreamLength));
  gauge('tradestore_ingest_list_length', "Items waiting in the seed's db_processor list", () => stat((s) => s.listLength));
  gauge('tradestore_dead_letters', 'Entries in the dead-letter streams', () => stat((s) => s.deadLetters));
  gauge('tradestore_ingest_workers', 'Ingest workers whose membership is live', () => stat((s) => s.workers.length));
  gauge('tradestore_ingest_shards_unowned', 'Shards with entries waiting and no owner', () => stat((s) => s.perShard.filter((p) => p.length > 0 && !p.owner).length));
  gauge('tradestore_ingest_shards_owned', 'Shards this worker owns', () => worker?.ownership.owned.size ?? 0);
  gauge('tradestore_ingest_stream_memory_bytes', 'Memory the shard streams take in Redis (NaN for the in-process bus)', () => stat((s) => s.streamMemoryBytes));
  gauge('tradestore_redis_used_memory_bytes', 'Memory the Redis server uses (NaN for the in-process bus)', () => stat((s) => s.serverMemoryBytes));
  gauge('tradestore_ingest_healthy', '1 when the worker reaches both the database and the bus', () =>
    worker ? Number(worker.databaseHealthy && worker.busHealthy) : 0,
  );
  return registry;
}
