import type { Database } from '../src/database/types.ts';
import { applyBatch, type BatchItem, type Offsets } from '../src/ingest/apply/batch.ts';
import { decodeEvent } from '../src/ingest/events/decode.ts';

/** Payloads decoded as the worker would, as entries 1-0, 2-0, … of one shard; an invalid one stops the benchmark. */
export function decodeEntries(payloads: string[], keyPrefix: string): BatchItem[] {
  return payloads.map((payload, i) => {
    const decoded = decodeEvent(payload);
    if (!decoded.ok) throw new Error(`${keyPrefix}: invalid event: ${decoded.reason}`);
    const key = `entry:${keyPrefix}:${i + 1}-0`;
    return { shard: 0, id: `${i + 1}-0`, key, entry: { key, event: decoded.event }, invalid: null };
  });
}

/** Applies entries straight to the database in batches, as shard 0 of `stream`; a rejected entry stops the benchmark. */
export async function applyInBatches(db: Database, entries: BatchItem[], batchSize: number, stream = 'bench'): Promise<void> {
  await db.query(`INSERT INTO ingest_offsets (stream, shard) VALUES ($1, 0) ON CONFLICT (stream, shard) DO UPDATE SET last_id = '0-0'`, [stream]);
  const offsets: Offsets = { stream, committed: new Map([[0, '0-0']]) };
  for (let i = 0; i < entries.length; i += batchSize) {
    const outcome = await applyBatch(db, entries.slice(i, i + batchSize), offsets);
    if (outcome.rejected.length) throw new Error(`${outcome.rejected.length} events rejected: ${outcome.rejected[0]!.reason}`);
  }
}
