import type { Database } from '../database/types.ts';
import type { Bus, BusEntry, NewDeadLetter } from '../bus/types.ts';
import { compareIds, ShardCountError } from '../bus/types.ts';
import { decodeEvent, type DecodeOptions } from './events/decode.ts';
import { applyIsolating, combine, PartialApply, ShardMoved, type BatchItem, type BatchOutcome } from './apply/batch.ts';
import { emptyEffects, type Effects } from './apply/types.ts';
import { certainlyInfrastructure, sqlState } from './failures.ts';
import { publishEffects } from './publish.ts';
import { IngestMetrics } from './metrics.ts';
import { Ownership } from './ownership.ts';

export interface WorkerOptions {
  /** The worker's name among the workers (unique per process). */
  consumer: string;
  batchSize?: number;
  /** How long one read waits for new entries. */
  blockMs?: number;
  /** How long a shard's lease lives without renewal: a worker that dies loses its shards after this. */
  leaseMs?: number;
  /**
   * When owners started on a shard at the same offset more than this many times (each died or was
   * killed before committing), the entry there is dead-lettered unapplied: it stops workers.
   */
  maxStarts?: number;
  /** Payload size limit and allowed clock skew of event times (see decode.ts). */
  decode?: Omit<DecodeOptions, 'now'>;
  /** Dead letters older than this are removed (default 30 days). */
  deadLetterRetentionMs?: number;
  /** How often dead letters past the retention are removed (default 1 minute). */
  trimIntervalMs?: number;
  log?: (line: string) => void;
}

/**
 * What is left to do for a committed batch: dead letters, then the trim of what is behind the
 * offsets, then the outbox, then publication. Done in commit order, while the next batch is being
 * applied.
 */
interface Completion {
  dead: NewDeadLetter[];
  offsets: Map<number, string>;
  effects: Effects | null;
  /** Entries it covers (they count as held until it is done). */
  size: number;
  /** Steps already done, so that a retry after a failure does not repeat them. */
  written: boolean;
  trimmed: boolean;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Leases are renewed on a timer, beside the loop, so that a long batch or a backoff does not let
 * them lapse; but not for a loop that has not come round for this long (a statement that hangs):
 * then the leases lapse and other workers take the shards over, as they would from a dead one.
 */
const STUCK_MS = 60_000;

/** After this many batches in a row failed (not on their data), the entries are tried one by one. */
const ISOLATE_AFTER = 3;
/** An entry that failed alone this many times, each time after others went through, is dead-lettered. */
const STRIKES = 3;

/**
 * The ingest worker. Events are routed by their ordering key to shard streams; each shard has one
 * owner at a time (ownership.ts), which reads it in order from the offset PostgreSQL holds for it,
 * applies a batch in one transaction that also moves the offset (so an entry is applied exactly
 * once, whoever held it before), then writes the batch's dead letters, trims what is behind the
 * offset, and publishes what changed.
 *
 * Nothing a message holds can stop it: decoding never throws (decode.ts), and a failure while
 * applying is either about one message's content (that message is found and dead-lettered with
 * the reason) or about the infrastructure (the batch is retried with backoff, nothing is
 * dead-lettered); see failures.ts.
 *
 * Ordering: all events of one key are in one shard, and one owner applies a shard in stream
 * order, so events of one key are applied in emission order with any number of workers.
 */
export class IngestWorker {
  readonly metrics = new IngestMetrics();
  readonly ownership: Ownership;
  private readonly batchSize: number;
  private readonly blockMs: number;
  private readonly leaseMs: number;
  private readonly maxStarts: number;
  private readonly log: (line: string) => void;
  /** Entries read and not applied yet, each shard's in stream order. */
  private held: BatchItem[] = [];
  private completions: Completion[] = [];
  private completing: Promise<void> | null = null;
  /** Entries read while the previous batch was applied. */
  private prefetched: Promise<BusEntry[] | undefined> | null = null;
  /** Entries read and not decoded yet, each shard's in stream order (they are decoded while a batch is applied). */
  private raw: BusEntry[] = [];
  private stopping = false;
  private running: Promise<void> | null = null;
  private routing: Promise<void> | null = null;
  /** Batches in a row that failed on something other than their data. */
  private failures = 0;
  /** Entries applied so far; a failing entry is judged against what went through meanwhile. */
  private appliedTotal = 0;
  private readonly strikes = new Map<string, { n: number; mark: number }>();
  private lastRebalance = 0;
  /** When the loop last started a step (the keep-alive stops renewing for a loop that hangs). */
  private lastStepAt = Date.now();
  private keepAliveTimer: NodeJS.Timeout | null = null;
  /** The keep-alive renewal in flight; a rebalance waits for it, and it does not run during one. */
  private keeping: Promise<void> | null = null;
  private rebalancing = false;
  /** Completions stopped on a failure: the loop keeps backing off until they go through. */
  private completionsFailing = false;
  /** Whether the last batch was one entry of a shard applied one by one, and which such shard goes next (see nextBatch). */
  private carefulTurn = false;
  private carefulNext = 0;
  private lastTrim = 0;
  private backoffMs = 0;
  databaseHealthy = true;
  busHealthy = true;
  lastError: string | null = null;
  /** When a batch last committed, or the worker last found nothing to do (epoch ms). */
  lastProgressAt = Date.now();
  lastCommitAt: number | null = null;

  constructor(
    private readonly db: Database,
    private readonly bus: Bus,
    private readonly options: WorkerOptions,
  ) {
    this.batchSize = options.batchSize ?? 2000;
    this.blockMs = options.blockMs ?? 500;
    this.leaseMs = options.leaseMs ?? 3000;
    this.maxStarts = options.maxStarts ?? 5;
    this.log = options.log ?? (() => {});
    this.ownership = new Ownership(db, bus, options.consumer, { leaseMs: this.leaseMs, log: this.log });
  }

  /** Entries this worker holds: read and not applied yet, or applied and not completed yet. */
  get holding(): number {
    return this.raw.length + this.held.length + this.completions.reduce((n, c) => n + c.size, 0);
  }

  /** Runs until stop(); resolves when the batch in flight is committed and completed. */
  start(): Promise<void> {
    this.running ??= this.loop();
    this.routing ??= this.route();
    this.keepAliveTimer ??= setInterval(() => this.keepAlive(), Math.max(10, this.leaseMs / 5));
    this.keepAliveTimer.unref();
    return this.running;
  }

  /** Finishes the batch in flight, completes it, and gives the shards up for other workers. */
  async stop(): Promise<void> {
    this.stopping = true;
    await this.running;
    if (this.keepAliveTimer) clearInterval(this.keepAliveTimer);
    await this.keeping;
    await this.routing;
    await this.complete();
    this.prefetched = null;
    await this.guard('bus', () => this.ownership.releaseAll());
  }

  private async loop(): Promise<void> {
    while (!this.stopping) {
      if (this.backoffMs) await sleep(this.backoffMs);
      await this.step();
    }
  }

  /**
   * Renews membership and leases when the loop has not rebalanced (which renews them too) for a
   * round's time, unless the loop hangs (see STUCK_MS); its failures are the next rebalance's to find.
   */
  private keepAlive(): void {
    if (this.keeping || this.rebalancing || this.stopping) return;
    const now = Date.now();
    if (now - this.lastRebalance < this.leaseMs / 5 || now - this.lastStepAt > STUCK_MS) return;
    this.keeping = this.ownership
      .keepAlive()
      .then((lost) => {
        if (lost.length) this.log(`ingest: lost the lease of shard${lost.length === 1 ? '' : 's'} ${lost.join(', ')}; the next rebalance drops them`);
      })
      .catch((error) => this.log(`ingest: lease renewal failed: ${(error as Error)?.message ?? String(error)}`))
      .finally(() => {
        this.keeping = null;
      });
  }

  /**
   * Moves the seed's list and the entry stream into the shards, beside the main loop. Its
   * failures only slow it down: the main loop, which reads the same server, reports the bus's
   * health (a router that succeeded must not hide a read that failed).
   */
  private async route(): Promise<void> {
    while (!this.stopping) {
      const moved = await this.bus.route(this.batchSize).catch(() => -1);
      if (moved <= 0) await sleep(moved === 0 ? 20 : 500);
    }
  }

  /** Runs `fn`; on failure marks that side unhealthy and backs off (doubling, at most 5 s). */
  private async guard<T>(side: 'bus' | 'database', fn: () => Promise<T>): Promise<T | undefined> {
    try {
      const result = await fn();
      if (side === 'bus') this.busHealthy = true;
      else this.databaseHealthy = true;
      if (this.busHealthy && this.databaseHealthy && !this.completionsFailing) this.backoffMs = 0;
      return result;
    } catch (error) {
      if (side === 'bus') this.busHealthy = false;
      else this.databaseHealthy = false;
      this.lastError = `${side}: ${(error as Error)?.message ?? String(error)}`;
      this.backoffMs = Math.min(Math.max(this.backoffMs * 2, 100), 5000);
      this.log(`ingest: ${this.lastError}; retrying in ${this.backoffMs} ms`);
      return undefined;
    }
  }

  private item(entry: BusEntry): BatchItem {
    const key = `entry:${this.bus.shardStream(entry.shard)}:${entry.id}`;
    const base = { shard: entry.shard, id: entry.id, key };
    if (entry.payload === null) return { ...base, entry: null, invalid: entry.unreadable ?? 'no payload' };
    const result = decodeEvent(entry.payload, this.options.decode);
    return result.ok ? { ...base, entry: { key, event: result.event }, invalid: null } : { ...base, entry: null, invalid: result.reason };
  }

  /** Takes read entries into the buffer, keeping only those of shards still owned, after what was read. */
  private hold(entries: BusEntry[]): void {
    for (const e of entries) {
      const owned = this.ownership.owned.get(e.shard);
      if (!owned || compareIds(e.id, owned.readPos) <= 0) continue;
      owned.readPos = e.id;
      this.raw.push(e);
    }
  }

  /** Reads entries after what each owned shard has read (COUNT applies to each shard). */
  private fetch(count: number, blockMs: number): Promise<BusEntry[]> {
    return this.bus.read(this.readFrom(), count, blockMs);
  }

  /** Decodes buffered entries, oldest first, until `n` are decoded. */
  private decodeUpTo(n: number, limit = Infinity): void {
    let taken = 0;
    while (this.held.length < n && taken < this.raw.length && taken < limit) this.held.push(this.item(this.raw[taken++]!));
    if (taken) this.raw = this.raw.slice(taken);
  }

  /**
   * Decodes the next batch while the database applies this one: in slices, giving the event loop
   * back between them, so that the transaction's round trips are not held up.
   */
  private async decodeAside(n: number): Promise<void> {
    while (this.held.length < n && this.raw.length && !this.stopping) {
      this.decodeUpTo(n, 200);
      await new Promise((r) => setImmediate(r));
    }
  }

  /** Forgets buffered entries of shards this worker no longer owns (or must read again). */
  private forgetShards(shards: number[]): void {
    if (shards.length === 0) return;
    const gone = new Set(shards);
    this.held = this.held.filter((h) => !gone.has(h.shard));
    this.raw = this.raw.filter((e) => !gone.has(e.shard));
    this.prefetched = null;
  }

  private readFrom(): Map<number, string> {
    return new Map([...this.ownership.owned.values()].map((o) => [o.shard, o.readPos]));
  }

  /** One iteration: ownership, read, apply, complete. */
  async step(): Promise<void> {
    this.lastStepAt = Date.now();
    if (Date.now() - this.lastRebalance >= this.leaseMs / 5) {
      this.lastRebalance = Date.now();
      await this.rebalance();
    }
    // Stepped by hand (tests, tools) rather than started: the routing happens here.
    if (!this.routing) await this.guard('bus', () => this.bus.route(this.batchSize));
    if (this.prefetched) {
      const fetched = await this.prefetched;
      this.prefetched = null;
      this.hold(fetched ?? []);
    }
    const buffered = () => this.held.length + this.raw.length;
    if (buffered() === 0) await this.complete();
    if (buffered() < this.batchSize) {
      const block = buffered() || this.completions.length ? 0 : Math.min(this.blockMs, this.leaseMs / 5);
      const fetched = await this.guard('bus', () => this.fetch(this.batchSize - buffered(), block));
      if (!fetched) return;
      this.hold(fetched);
    }
    if (Date.now() - this.lastTrim >= (this.options.trimIntervalMs ?? 60_000)) {
      this.lastTrim = Date.now();
      await this.guard('bus', () => this.bus.trimDead(this.options.deadLetterRetentionMs ?? 30 * 86_400_000));
    }
    this.decodeUpTo(this.batchSize);
    if (this.held.length === 0) {
      if (this.completions.length === 0) this.lastProgressAt = Date.now();
      return;
    }
    const batch = await this.nextBatch();
    if (batch.length === 0) return;
    const started = Date.now();
    // While this batch is applied: the next entries are read, the previous batch completed, and the next one decoded.
    const room = this.batchSize - (buffered() - batch.length);
    if (!this.stopping && room > 0) this.prefetched = this.guard('bus', () => this.fetch(room, 0));
    const completing = this.complete();
    const applying = this.guard('database', () => this.applyReady(batch));
    await this.decodeAside(this.batchSize + batch.length);
    const result = await applying;
    await completing;
    if (!result) return;
    const { outcome, applied } = result;
    this.metrics.recordBatch(applied.length, outcome, Date.now() - started);
    this.metrics.recordCommit(applied.map((h) => h.id));
    if (applied.length) this.lastCommitAt = this.lastProgressAt = Date.now();
    for (const h of applied) {
      this.strikes.delete(h.key);
      const owned = this.ownership.owned.get(h.shard);
      if (owned) {
        owned.starts = 1;
        if (owned.alone > 0) owned.alone -= 1;
      }
    }
    const done = new Set(applied.map((h) => h.key));
    this.held = this.held.filter((h) => !done.has(h.key));
    const byKey = new Map(applied.map((h) => [h.key, h]));
    const dead = outcome.rejected.map((r): NewDeadLetter => {
      const h = byKey.get(r.key)!;
      return { shard: h.shard, source: h.id, payload: null, reason: r.reason, attempts: r.attempts ?? 1 };
    });
    const offsets = new Map<number, string>();
    for (const h of applied) offsets.set(h.shard, h.id);
    this.completions.push({ dead, offsets, effects: outcome.effects, size: applied.length, written: false, trimmed: false });
    if (buffered() === 0 && !this.prefetched) await this.complete();
  }

  private async rebalance(): Promise<void> {
    this.rebalancing = true;
    await this.keeping;
    await this.guard('bus', async () => {
      try {
        return await this.ownership.rebalance();
      } catch (error) {
        if (error instanceof ShardCountError) this.log(`ingest: ${error.message}`);
        throw error;
      } finally {
        // Also after a round that failed half-way: what it dropped is dropped.
        this.forgetShards(this.ownership.takeDropped());
        this.rebalancing = false;
      }
    });
  }

  /**
   * The entries to apply next: the buffer's first entries, except that a shard where owners keep
   * stopping before they commit goes first and alone. From there, its entries are applied one by
   * one, as many as a batch holds (the stopping entry may be anywhere in the batch the owners
   * before had), so that whatever stops owners stops them at that entry's own offset; there, past
   * maxStarts, it is dead-lettered without being applied. A start is counted when an owner first
   * has something to apply at an offset, so restarts of an idle shard count nothing.
   */
  private async nextBatch(): Promise<BatchItem[]> {
    // A safety net: entries of shards not owned, or at or behind their offset, are never sent again.
    const committed = this.ownership.offsets.committed;
    this.held = this.held.filter((h) => {
      const offset = committed.get(h.shard);
      return offset !== undefined && compareIds(h.id, offset) > 0;
    });
    if (this.held.length === 0) return [];
    /** Shards applied one entry at a time, with that entry. */
    const careful = new Map<number, BatchItem>();
    for (const owned of this.ownership.owned.values()) {
      // Once an owner has committed on a shard (starts 1), the shard is not special: no scan.
      if (owned.starts === 1 && owned.alone === 0) continue;
      const first = this.held.find((h) => h.shard === owned.shard);
      if (!first) continue;
      if (owned.starts === 0) {
        const offset = committed.get(owned.shard)!;
        owned.starts = (await this.guard('bus', () => this.bus.countStart(owned.shard, offset))) ?? 1;
      }
      if (owned.starts > this.maxStarts) {
        const reason = `owners of shard ${owned.shard} started at this entry ${owned.starts} times, and each stopped before committing it (a crash or a kill while applying it?)`;
        return [{ ...first, entry: null, invalid: reason, attempts: owned.starts }];
      }
      if (owned.starts >= 2 && owned.alone === 0) {
        owned.alone = this.batchSize;
        this.log(`ingest: owners started on shard ${owned.shard} at entry ${first.id} ${owned.starts} times; applying it alone, and up to ${this.batchSize - 1} entries after it one by one`);
      }
      if (owned.alone > 0) careful.set(owned.shard, first);
    }
    if (careful.size === 0) return this.held.slice(0, this.batchSize);
    // One entry of a careful shard (each careful shard in turn), then a batch of the other shards:
    // they all keep moving meanwhile.
    const others = this.held.filter((h) => !careful.has(h.shard));
    this.carefulTurn = !this.carefulTurn || others.length === 0;
    if (!this.carefulTurn) return others.slice(0, this.batchSize);
    const turn = [...careful.values()];
    return [turn[this.carefulNext++ % turn.length]!];
  }

  /**
   * Applies the entries in one batch (split only to find bad data). After several batches in a
   * row failed on something other than their data, the entries are tried one by one, each shard
   * stopping at its first failure (a shard's offset moves only over what is done): if some go
   * through and one keeps failing alone with an error that is not certainly the infrastructure's
   * (an unknown SQLSTATE, TimescaleDB's decompression limit), that entry is what fails, and after
   * STRIKES such rounds it is dead-lettered with the error. When every entry fails, or the error
   * is certainly the infrastructure's (a lost connection, a permission, a missing relation, a
   * read-only database), nothing is dead-lettered: the batch is retried.
   */
  private async applyReady(batch: BatchItem[]): Promise<{ outcome: BatchOutcome; applied: BatchItem[] }> {
    const offsets = this.ownership.offsets;
    const none = (): BatchOutcome => ({ applied: [], duplicates: [], rejected: [], effects: emptyEffects() });
    if (this.failures < ISOLATE_AFTER || batch.length < 2) {
      try {
        const outcome = await applyIsolating(this.db, batch, offsets);
        this.failures = 0;
        this.appliedTotal += batch.length;
        return { outcome, applied: batch };
      } catch (error) {
        return this.failed(error, batch, none);
      }
    }
    let outcome = none();
    const applied: BatchItem[] = [];
    const stopped = new Set<number>();
    let firstError: unknown = null;
    for (const h of batch) {
      if (stopped.has(h.shard)) continue;
      try {
        outcome = combine(outcome, await applyIsolating(this.db, [h], offsets));
        applied.push(h);
      } catch (error) {
        // What went through so far is returned (and completed) even if handling this failure fails.
        try {
          if (error instanceof ShardMoved) {
            // Its later entries are read again from the offset the other worker left.
            for (const shard of error.shards) stopped.add(shard);
            await this.moved(error);
            continue;
          }
          firstError ??= error;
          stopped.add(h.shard);
          const reason = this.strike(h, error);
          if (reason) {
            outcome = combine(outcome, await applyIsolating(this.db, [{ ...h, entry: null, invalid: reason, attempts: STRIKES + 1 }], offsets));
            applied.push(h);
          }
        } catch (handling) {
          firstError ??= handling;
          break;
        }
        if (certainlyInfrastructure(error)) break;
      }
    }
    this.appliedTotal += applied.length;
    this.failures = firstError ? ISOLATE_AFTER + 1 : 0;
    if (applied.length === 0 && firstError) throw firstError;
    return { outcome, applied };
  }

  /** A batch failed: what committed before the failure is still completed; the rest stays held. */
  private async failed(error: unknown, batch: BatchItem[], none: () => BatchOutcome): Promise<never | { outcome: BatchOutcome; applied: BatchItem[] }> {
    if (error instanceof ShardMoved) {
      await this.moved(error);
      return { outcome: none(), applied: [] };
    }
    if (error instanceof PartialApply) {
      // The committed part is behind the offsets now: it is done (and completed, even when the
      // resync fails: the next refused commit tries that again), and the rest is retried.
      if (error.cause instanceof ShardMoved) {
        await this.moved(error.cause).catch((e) => this.log(`ingest: resync after a takeover failed: ${(e as Error)?.message ?? String(e)}`));
      } else this.failures += 1;
      const committed = new Set([...error.committed.applied, ...error.committed.duplicates, ...error.committed.rejected.map((r) => r.key)]);
      const applied = batch.filter((h) => committed.has(h.key));
      this.appliedTotal += applied.length;
      return { outcome: error.committed, applied };
    }
    this.failures += 1;
    if (batch.length === 1 && this.failures > ISOLATE_AFTER) {
      const reason = this.strike(batch[0]!, error);
      if (reason) {
        const outcome = await applyIsolating(this.db, [{ ...batch[0]!, entry: null, invalid: reason, attempts: STRIKES + 1 }], this.ownership.offsets);
        return { outcome, applied: batch };
      }
    }
    throw error;
  }

  /** Another worker moved these shards' offsets: read them again from where the database says. */
  private async moved(error: ShardMoved): Promise<void> {
    this.forgetShards(error.shards);
    await this.ownership.resync(error.shards);
  }

  /**
   * Counts a failure of one entry applied alone. It is a strike when other entries went through
   * since its previous failure (so the database works, for them); the first failure only sets
   * the mark. Returns the dead letter's reason at the STRIKES-th strike.
   */
  private strike(h: BatchItem, error: unknown): string | null {
    if (certainlyInfrastructure(error)) return null;
    const seen = this.strikes.get(h.key);
    if (!seen) {
      this.strikes.set(h.key, { n: 0, mark: this.appliedTotal });
      return null;
    }
    if (this.appliedTotal === seen.mark) return null;
    seen.n += 1;
    seen.mark = this.appliedTotal;
    const message = (error as Error)?.message ?? String(error);
    this.log(`ingest: entry ${h.id} of shard ${h.shard} failed alone again while others went through (${seen.n} of ${STRIKES}): ${message}`);
    if (seen.n < STRIKES) return null;
    this.strikes.delete(h.key);
    const code = sqlState(error);
    return `fails every time it is applied, alone, while other messages go through (${seen.n} times): ${message}${code ? ` (SQLSTATE ${code})` : ''}`;
  }

  /** Runs the pending completions in commit order; one run at a time. */
  private complete(): Promise<void> {
    this.completing ??= this.runCompletions().finally(() => {
      this.completing = null;
    });
    return this.completing;
  }

  /**
   * Dead letters first, then publication, then the trim of what is behind the offsets (so an empty
   * shard means its changes are visible), then the outbox: a crash in between writes the dead
   * letters again (idempotently) or trims again, and never loses one.
   */
  private async runCompletions(): Promise<void> {
    // Until they go through, a read or a commit that succeeds meanwhile does not end the backoff.
    this.completionsFailing = !(await this.completeAll());
  }

  private async completeAll(): Promise<boolean> {
    while (this.completions.length) {
      const c = this.completions[0]!;
      if (!c.written) {
        if (!(await this.guard('bus', async () => (await this.bus.deadLetter(c.dead), true)))) return false;
        c.written = true;
        this.metrics.deadLettered += c.dead.length;
        for (const d of c.dead) this.log(`ingest: dead letter ${d.shard}:${d.source}: ${d.reason}`);
      }
      if (c.effects) {
        const effects = c.effects;
        if (!(await this.guard('bus', async () => (await publishEffects(this.bus, effects), true)))) return false;
        c.effects = null;
      }
      if (!c.trimmed) {
        if (!(await this.guard('bus', async () => (await Promise.all([...c.offsets].map(([s, id]) => this.bus.committed(s, id))), true)))) return false;
        c.trimmed = true;
      }
      if (c.dead.length && !(await this.guard('database', async () => (await this.ownership.forget(c.dead), true)))) return false;
      this.completions.shift();
    }
    return true;
  }
}

