import { compareIds, type Bus, type NewDeadLetter } from '../bus/types.ts';
import type { Database } from '../database/types.ts';
import type { Offsets } from './apply/batch.ts';

/**
 * Which shards each worker owns: shard i goes to the i mod M-th of the M live workers, sorted by
 * name. Every worker computes the same answer from the same membership, so workers that join or
 * leave rebalance the shards without talking to each other; during a change, the leases decide
 * (a shard is taken only once its previous owner gave it up or its lease expired), and the
 * offsets in PostgreSQL make sure that even two owners at once could not apply an entry twice.
 */
export function assignment(shards: number, workers: string[]): Map<number, string> {
  const sorted = [...workers].sort();
  const out = new Map<number, string>();
  if (sorted.length === 0) return out;
  for (let shard = 0; shard < shards; shard++) out.set(shard, sorted[shard % sorted.length]!);
  return out;
}

export interface OwnedShard {
  shard: number;
  /** The last id read into the worker's buffer (entries after it are read next). */
  readPos: string;
  /**
   * How many owners started applying the shard at its current offset, this one included; 0 until
   * this owner has something to apply there (counted then, once).
   */
  starts: number;
  /**
   * Entries of this shard still to be applied one by one: set when owners keep stopping at its
   * offset, so that whichever entry of their batch stops them is found by itself.
   */
  alone: number;
}

export interface OwnershipOptions {
  /** How long a lease and a membership live without renewal. */
  leaseMs: number;
  log: (line: string) => void;
}

/** One worker's side of shard ownership: membership, leases, offsets, and the dead-letter outbox. */
export class Ownership {
  readonly owned = new Map<number, OwnedShard>();
  readonly offsets: Offsets;
  /** Shards given up or lost since the worker last asked (their buffered entries must go), even when a round failed half-way. */
  private dropped: number[] = [];
  workers: string[] = [];

  constructor(
    private readonly db: Database,
    private readonly bus: Bus,
    private readonly worker: string,
    private readonly options: OwnershipOptions,
  ) {
    this.offsets = { stream: bus.stream, committed: new Map() };
  }

  /**
   * One round: renews membership and the leases held, gives up shards that belong to another
   * worker now, and takes the free ones that belong to this one. The shards given up or lost are
   * collected for takeDropped().
   */
  async rebalance(): Promise<void> {
    await this.bus.init();
    this.workers = await this.bus.heartbeat(this.worker, this.options.leaseMs);
    if (!this.workers.includes(this.worker)) this.workers = [...this.workers, this.worker].sort();
    const target = assignment(this.bus.shards, this.workers);
    const held = new Set(await this.bus.renew([...this.owned.keys()], this.worker, this.options.leaseMs));
    await Promise.all([...this.owned.values()].filter((o) => held.has(o.shard)).map((o) => this.anchor(o.shard, o.readPos)));
    for (const shard of [...this.owned.keys()]) {
      if (!held.has(shard)) {
        this.log(`lost the lease of shard ${shard}`);
        this.drop(shard);
      } else if (target.get(shard) !== this.worker) {
        this.drop(shard);
        await this.bus.release(shard, this.worker);
      }
    }
    for (const [shard, owner] of target) {
      if (owner !== this.worker || this.owned.has(shard)) continue;
      if (!(await this.bus.acquire(shard, this.worker, this.options.leaseMs))) continue;
      try {
        await this.take(shard);
      } catch (error) {
        await this.bus.release(shard, this.worker).catch(() => {});
        throw error;
      }
    }
  }

  /**
   * Renews the membership and the leases held, without taking or giving up shards: the worker
   * calls it on a timer, so that a long batch or a backoff does not let the leases lapse.
   * Returns the shards whose lease this worker no longer holds (the next rebalance drops them).
   */
  async keepAlive(): Promise<number[]> {
    const shards = [...this.owned.keys()];
    const [held] = await Promise.all([this.bus.renew(shards, this.worker, this.options.leaseMs), this.bus.heartbeat(this.worker, this.options.leaseMs)]);
    const kept = new Set(held);
    return shards.filter((s) => !kept.has(s));
  }

  /** The shards dropped since the last call. */
  takeDropped(): number[] {
    const dropped = this.dropped;
    this.dropped = [];
    return dropped;
  }

  private drop(shard: number): void {
    this.owned.delete(shard);
    this.offsets.committed.delete(shard);
    this.dropped.push(shard);
  }

  /**
   * Starts owning a shard: reads its offset (the database holds the truth), writes the dead
   * letters a previous owner committed but did not write, and trims what is behind the offset.
   */
  private async take(shard: number): Promise<void> {
    const offset = await this.loadOffset(shard);
    await this.anchor(shard, offset, true);
    await this.flushOutbox(shard);
    await this.bus.committed(shard, offset);
    this.offsets.committed.set(shard, offset);
    this.owned.set(shard, { shard, readPos: offset, starts: 0, alone: 0 });
    this.log(`took shard ${shard} at offset ${offset}`);
  }

  /**
   * See Bus.anchor: a shard stream that is gone is made again to continue after `after` (what this
   * owner has read). When taking a shard (`check`), a stream whose last id is behind the offset
   * is reported: its entries up to the offset are trimmed as applied, which is right for a stream
   * restored from an older snapshot and wrong for one made again on a clock behind the offset
   * before this owner could anchor it; which of the two it was, only the operator can tell.
   */
  private async anchor(shard: number, after: string, check = false): Promise<void> {
    const { made, lastId } = await this.bus.anchor(shard, after, check);
    if (made) this.log(`shard ${shard}: its stream was gone; made again, empty, to continue after ${after}`);
    else if (lastId && compareIds(lastId, after) < 0) {
      this.log(
        `shard ${shard}: WARNING its stream's last id ${lastId} is behind the shard's offset ${after}: ` +
          `entries up to the offset are taken as applied (right for a Redis restored from an older snapshot; ` +
          `wrong if the stream was made again on a Redis whose clock is behind, in which case those entries were not applied)`,
      );
    }
  }

  private async loadOffset(shard: number): Promise<string> {
    const { rows } = await this.db.query<{ last_id: string }>(
      `WITH added AS (INSERT INTO ingest_offsets (stream, shard) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING last_id)
       SELECT last_id FROM added UNION ALL SELECT last_id FROM ingest_offsets WHERE stream = $1 AND shard = $2`,
      [this.bus.stream, shard],
    );
    return rows[0]!.last_id;
  }

  /**
   * A batch found the offsets of these shards moved: start again from the database's offset.
   * The worker that moved them may have died between its commit and its dead letters, so the
   * outbox is written first, while its entries are still in the shard (this worker's next trim
   * removes them).
   */
  async resync(shards: number[]): Promise<void> {
    let failure: unknown = null;
    for (const shard of shards) {
      const owned = this.owned.get(shard);
      if (!owned) continue;
      try {
        const offset = await this.loadOffset(shard);
        await this.flushOutbox(shard);
        this.offsets.committed.set(shard, offset);
        owned.readPos = offset;
        this.log(`shard ${shard} had moved on to ${offset}; continuing from there`);
      } catch (error) {
        // Not known where to go on from: the shard is let go, and the next round takes it afresh.
        this.drop(shard);
        failure ??= error;
      }
    }
    if (failure) throw failure;
  }

  /** Dead letters committed by a batch and not yet written on the bus. */
  async flushOutbox(shard: number): Promise<void> {
    const { rows } = await this.db.query<{ entry_id: string; reason: string; attempts: number }>(
      'SELECT entry_id, reason, attempts FROM ingest_rejects WHERE stream = $1 AND shard = $2 ORDER BY rejected_at',
      [this.bus.stream, shard],
    );
    if (rows.length === 0) return;
    const letters: NewDeadLetter[] = rows.map((r) => ({ shard, source: r.entry_id, reason: r.reason, attempts: Number(r.attempts), payload: null }));
    await this.bus.deadLetter(letters);
    await this.forget(letters);
  }

  /** Removes written dead letters from the outbox. */
  async forget(letters: NewDeadLetter[]): Promise<void> {
    if (letters.length === 0) return;
    await this.db.query(
      'DELETE FROM ingest_rejects r USING unnest($2::int[], $3::text[]) AS d(shard, entry_id) WHERE r.stream = $1 AND r.shard = d.shard AND r.entry_id = d.entry_id',
      [this.bus.stream, letters.map((l) => l.shard), letters.map((l) => l.source)],
    );
  }

  /** Gives every shard up and ends the membership (a clean stop: others take over at once). */
  async releaseAll(): Promise<void> {
    for (const shard of [...this.owned.keys()]) {
      await this.bus.release(shard, this.worker);
      this.drop(shard);
    }
    await this.bus.leave(this.worker);
  }

  private log(line: string): void {
    this.options.log(`ingest: ${line}`);
  }
}
