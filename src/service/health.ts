import type { Bus } from '../bus/types.ts';
import type { Database } from '../database/types.ts';
import type { IngestWorker } from '../ingest/worker.ts';

export interface Health {
  status: 'healthy' | 'unhealthy';
  database: { ok: boolean; backend: string; error?: string };
  bus: { ok: boolean; kind: string };
  ingest: { running: boolean; lastError: string | null; eventsPerSecond: number; eventsApplied: number; deadLettered: number } | null;
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  return Promise.race([promise, new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms))]);
}

/** Healthy only when the database and the bus answer now. */
export async function checkHealth(db: Database, bus: Bus, worker: IngestWorker | null): Promise<Health> {
  // Both checks at once, each bounded, so /health answers within two seconds whatever is down.
  const [database, busOk] = await Promise.all([
    withTimeout(db.query('SELECT 1'), 1500).then(
      (): Health['database'] => ({ ok: true, backend: db.backend }),
      (error: Error): Health['database'] => ({ ok: false, backend: db.backend, error: error.message }),
    ),
    withTimeout(bus.ping(), 1500).catch(() => false),
  ]);
  return {
    status: database.ok && busOk ? 'healthy' : 'unhealthy',
    database,
    bus: { ok: busOk, kind: bus.kind },
    ingest: worker
      ? {
          running: true,
          lastError: worker.databaseHealthy && worker.busHealthy ? null : worker.lastError,
          eventsPerSecond: worker.metrics.eventsPerSecond(),
          eventsApplied: worker.metrics.eventsApplied,
          deadLettered: worker.metrics.deadLettered,
        }
      : null,
  };
}
