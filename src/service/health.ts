import type { Bus } from '../bus/types.ts';
import type { Database } from '../database/types.ts';
import type { IngestWorker } from '../ingest/worker.ts';

export interface Health {
  status: 'healthy' | 'unhealthy';
  database: { ok: boolean; backend: string; error?: string };
  bus: { ok: boolean; kind: string };
  ingest: { running: boolean; lastError: string | null } | null;
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  return Promise.race([promise, new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms))]);
}

/** Healthy only when the database and the bus answer now. */
export async function checkHealth(db: Database, bus: Bus, worker: IngestWorker | null): Promise<Health> {
  let database: Health['database'];
  try {
    await withTimeout(db.query('SELECT 1'), 2000);
    database = { ok: true, backend: db.backend };
  } catch (error) {
    database = { ok: false, backend: db.backend, error: (error as Error).message };
  }
  const busOk = await withTimeout(bus.ping(), 2000).catch(() => false);
  return {
    status: database.ok && busOk ? 'healthy' : 'unhealthy',
    database,
    bus: { ok: busOk, kind: bus.kind },
    ingest: worker ? { running: true, lastError: worker.databaseHealthy && worker.busHealthy ? null : worker.lastError } : null,
  };
}
