import type { Database } from '../src/database/types.ts';
import { applyBatch } from '../src/ingest/apply/batch.ts';
import type { Entry } from '../src/ingest/apply/types.ts';
import { decodeEvent } from '../src/ingest/events/decode.ts';

/** Payloads decoded as the worker would, each under a fresh key; an invalid one stops the benchmark. */
export function decodeEntries(payloads: string[], keyPrefix: string): Entry[] {
  return payloads.map((payload, i) => {
    const decoded = decodeEvent(payload);
    if (!decoded.ok) throw new Error(`${keyPrefix}: invalid event: ${decoded.reason}`);
    return { key: `entry:${keyPrefix}:${i}`, event: decoded.event, redelivered: false };
  });
}

/** Applies entries straight to the database in batches; a rejected entry stops the benchmark. */
export async function applyInBatches(db: Database, entries: Entry[], batchSize: number): Promise<void> {
  for (let i = 0; i < entries.length; i += batchSize) {
    const outcome = await applyBatch(db, entries.slice(i, i + batchSize));
    if (outcome.rejected.length) throw new Error(`${outcome.rejected.length} events rejected: ${outcome.rejected[0]!.reason}`);
  }
}
