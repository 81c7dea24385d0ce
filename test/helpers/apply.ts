import { randomBytes } from 'node:crypto';
import type { Database } from '../../src/database/types.ts';
import { applyBatch, applyIsolating, type BatchItem, type BatchOutcome, type Offsets } from '../../src/ingest/apply/batch.ts';
import type { Entry } from '../../src/ingest/apply/types.ts';

const positions = new WeakMap<Database, { offsets: Offsets; next: number }>();

/** This database's test shard: shard 0 of a stream named for this run, its offset row created once. */
async function position(db: Database): Promise<{ offsets: Offsets; next: number }> {
  let p = positions.get(db);
  if (!p) {
    const stream = `test-${randomBytes(4).toString('hex')}`;
    await db.query('INSERT INTO ingest_offsets (stream, shard) VALUES ($1, 0)', [stream]);
    p = { offsets: { stream, committed: new Map([[0, '0-0']]) }, next: 0 };
    positions.set(db, p);
  }
  return p;
}

/** The test shard's offsets (to apply hand-made items with). */
export async function offsetsOf(db: Database): Promise<Offsets> {
  return (await position(db)).offsets;
}

/** Entries as the next entries of the test shard (as a worker owning it would apply them). */
async function items(db: Database, entries: Entry[]): Promise<{ list: BatchItem[]; offsets: Offsets }> {
  const p = await position(db);
  const list = entries.map((entry): BatchItem => ({ shard: 0, id: `${++p.next}-0`, key: entry.key, entry, invalid: null }));
  return { list, offsets: p.offsets };
}

/** applyBatch over entries that arrive as the next entries of one shard. */
export async function applyEntries(db: Database, entries: Entry[]): Promise<BatchOutcome> {
  const { list, offsets } = await items(db, entries);
  return applyBatch(db, list, offsets);
}

/** applyIsolating over entries that arrive as the next entries of one shard. */
export async function isolateEntries(db: Database, entries: Entry[]): Promise<BatchOutcome> {
  const { list, offsets } = await items(db, entries);
  return applyIsolating(db, list, offsets);
}
