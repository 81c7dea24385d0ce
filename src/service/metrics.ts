import { Counter, Gauge, Registry } from 'prom-client';
import type { Bus } from '../bus/types.ts';
import type { IngestWorker } from '../ingest/worker.ts';

/** Prometheus metrics of the ingest service; values are read when scraped. */
export function ingestRegistry(bus: Bus, worker: IngestWorker | null): Registry {
  const registry = new Registry();
  const m = () => worker?.metrics;
  const counter = (name: string, help: string, read: () => number) => {
    let last = 0;
    new Counter({
      name,
      help,
      registers: [registry],
      collect() {
        const value = read();
        if (value > last) this.inc(value - last);
        last = value;
      },
    });
  };
  counter('tradestore_ingest_events_applied_total', 'Events applied and committed', () => m()?.eventsApplied ?? 0);
  counter('tradestore_ingest_duplicates_total', 'Redelivered or repeated events that changed nothing', () => m()?.duplicates ?? 0);
  counter('tradestore_ingest_dead_lettered_total', 'Events this worker sent to the dead letters', () => m()?.deadLettered ?? 0);
  counter('tradestore_ingest_batches_total', 'Batches committed', () => m()?.batches ?? 0);
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
  gauge('tradestore_ingest_batch_duration_ms', 'Time the last batch took to apply and commit', () => m()?.lastBatchMs ?? 0);
  gauge('tradestore_ingest_deferred', 'Entries waiting for an earlier entry of their key', () => m()?.deferred ?? 0);
  let stats: ReturnType<Bus['stats']> | null = null;
  let statsAt = 0;
  const stat = async (field: 'length' | 'pending' | 'lag' | 'listLength' | 'deadLetters' | 'streamMemoryBytes' | 'serverMemoryBytes') => {
    // One round trip per scrape for the five stream gauges.
    if (!stats || Date.now() - statsAt > 500) {
      stats = bus.stats();
      statsAt = Date.now();
    }
    return (await stats.catch(() => ({ [field]: Number.NaN }) as never))[field] ?? Number.NaN;
  };
  gauge('tradestore_ingest_stream_length', 'Entries in the event stream', () => stat('length'));
  gauge('tradestore_ingest_pending', 'Entries delivered and not yet acknowledged', () => stat('pending'));
  gauge('tradestore_ingest_lag', 'Entries not yet delivered to the group', () => stat('lag'));
  gauge('tradestore_ingest_list_length', "Items waiting in the seed's db_processor list", () => stat('listLength'));
  gauge('tradestore_dead_letters', 'Entries in the dead-letter stream', () => stat('deadLetters'));
  gauge('tradestore_ingest_stream_memory_bytes', 'Memory the event stream takes in Redis (NaN for the in-process bus)', () => stat('streamMemoryBytes'));
  gauge('tradestore_redis_used_memory_bytes', 'Memory the Redis server uses (NaN for the in-process bus)', () => stat('serverMemoryBytes'));
  gauge('tradestore_ingest_healthy', '1 when the worker reaches both the database and the bus', () =>
    worker ? Number(worker.databaseHealthy && worker.busHealthy) : 0,
  );
  return registry;
}
