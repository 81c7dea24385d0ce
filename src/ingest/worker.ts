import type { Database } from '../database/types.ts';
import type { Bus, BusEntry, NewDeadLetter } from '../bus/types.ts';
import { compareIds, isMissingGroup } from '../bus/types.ts';
import { decodeEvent, type DecodeOptions } from './events/decode.ts';
import { applyIsolating, combine, PartialApply, type BatchOutcome } from './apply/batch.ts';
import { emptyEffects } from './apply/types.ts';
import { certainlyInfrastructure, sqlState } from './failures.ts';
import type { Effects, Entry } from './apply/types.ts';
import { publishEffects } from './publish.ts';
import { IngestMetrics } from './metrics.ts';

export interface WorkerOptions {
  /** Consumer name in the group; a stable name lets a restarted worker resume its own pending entries at once. */
  consumer: string;
  batchSize?: number;
  /** How long one read waits for new entries. */
  blockMs?: number;
  /** Entries another consumer left unacknowledged this long are taken over. */
  claimIdleMs?: number;
  /** An entry delivered more than this many times is applied in a batch of its own. */
  maxDeliveries?: number;
  /** Payload size limit and allowed clock skew of event times (see decode.ts). */
  decode?: Omit<DecodeOptions, 'now'>;
  /** Dead letters older than this are removed (default 30 days). */
  deadLetterRetentionMs?: number;
  /** How often acknowledged entries are trimmed from the stream (default 5 s). */
  trimIntervalMs?: number;
  log?: (line: string) => void;
}

interface Held {
  entry: BusEntry;
  decoded: Entry | null;
  /** Why the payload is not a valid event (it goes to the dead letters). */
  invalid: string | null;
}

/**
 * What is left to do for a committed batch (or for entries that were dead on arrival): dead
 * letters, then acknowledgement, then publication. Done in commit order, while the next batch
 * is being applied; until it is done its entries count as held by this worker.
 */
interface Completion {
  dead: NewDeadLetter[];
  ids: string[];
  effects: Effects | null;
  /** Steps already done, so that a retry after a Redis failure does not repeat them. */
  acknowledged: boolean;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** After this many batches in a row failed (not on their data), the entries are tried one by one. */
const ISOLATE_AFTER = 3;
/** An entry that failed alone this many times, each time after others went through, is dead-lettered. */
const STRIKES = 3;

/**
 * The ingest worker: list → stream, read through the consumer group, decode, apply in one
 * transaction per batch, dead-letter what cannot be applied, acknowledge only after commit,
 * publish what changed, and trim what every group has acknowledged.
 *
 * Nothing a message holds can stop it: decoding never throws (decode.ts), and a failure while
 * applying is either about one message's content (that message is found and dead-lettered with
 * the reason) or about the infrastructure (the batch is retried with backoff, nothing is
 * dead-lettered); see failures.ts.
 *
 * Ordering: every event has an ordering key (market, order, user). An entry is applied only when
 * no earlier entry with the same key is still pending anywhere in the group; since the group
 * hands out entries in id order, that earlier entry is either applied already or held by some
 * consumer, which will apply it (or, if it died, someone claims it). So events of one key are
 * applied in emission order with any number of workers.
 */
export class IngestWorker {
  readonly metrics = new IngestMetrics();
  private readonly batchSize: number;
  private readonly blockMs: number;
  private readonly claimIdleMs: number;
  private readonly maxDeliveries: number;
  private readonly log: (line: string) => void;
  private held: Held[] = [];
  /** Committed (or dead-lettered) batches whose acknowledgement and publication are still to do. */
  private completions: Completion[] = [];
  /** The completion run in progress, if any. */
  private completing: Promise<void> | null = null;
  /** Ordering keys of entries held by other consumers, by entry id. */
  private readonly foreignKeys = new Map<string, string | null>();
  private stopping = false;
  private running: Promise<void> | null = null;
  /** Batches in a row that failed on something other than their data. */
  private failures = 0;
  /** Entries applied so far; a failing entry is judged against what went through meanwhile. */
  private appliedTotal = 0;
  /**
   * Entries that failed alone with an error not certainly the infrastructure's: how often other
   * entries went through between two of their failures, and the count at the last failure.
   */
  private readonly strikes = new Map<string, { n: number; mark: number }>();
  private lastClaim = 0;
  private lastTrim = 0;
  private backoffMs = 0;
  databaseHealthy = true;
  busHealthy = true;
  lastError: string | null = null;
  /** The consumer group was found missing and could not be recreated yet. */
  groupMissing = false;
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
    this.claimIdleMs = options.claimIdleMs ?? 30_000;
    this.maxDeliveries = options.maxDeliveries ?? 5;
    this.log = options.log ?? (() => {});
  }

  /** Entries this worker holds: read and not applied yet, or applied and not acknowledged yet. */
  get holding(): number {
    return this.held.length + this.completions.reduce((n, c) => n + c.ids.length, 0);
  }

  private key(id: string): string {
    return `entry:${this.bus.stream}:${id}`;
  }

  /** Runs until stop(); resolves when the batch in flight is committed and acknowledged. */
  start(): Promise<void> {
    this.running ??= this.loop();
    return this.running;
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await this.running;
    // Entries read ahead but not applied stay pending in the group; a restart or another
    // consumer picks them up.
    this.prefetched = null;
  }

  private async loop(): Promise<void> {
    await this.guard('bus', () => this.bus.ensureGroup());
    // All of this consumer's pending entries come back at once: a later entry must not overtake them.
    await this.guard('bus', async () => this.hold(this.decode(await this.bus.readOwnPending(this.options.consumer, 100_000))));
    while (!this.stopping) {
      if (this.backoffMs) await sleep(this.backoffMs);
      await this.step();
    }
    // What was committed is acknowledged before exit, unless Redis is away (then the entries are
    // redelivered later, and the ledger makes that change nothing).
    await this.complete();
  }

  /** Runs `fn`; on failure marks that side unhealthy and backs off (doubling, at most 5 s). */
  private async guard<T>(side: 'bus' | 'database', fn: () => Promise<T>): Promise<T | undefined> {
    try {
      const result = await fn();
      if (side === 'bus') this.busHealthy = true;
      else this.databaseHealthy = true;
      if (this.busHealthy && this.databaseHealthy) this.backoffMs = 0;
      return result;
    } catch (error) {
      if (side === 'bus') this.busHealthy = false;
      else this.databaseHealthy = false;
      this.lastError = `${side}: ${(error as Error)?.message ?? String(error)}`;
      this.backoffMs = Math.min(Math.max(this.backoffMs * 2, 100), 5000);
      this.log(`ingest: ${this.lastError}; retrying in ${this.backoffMs} ms`);
      if (side === 'bus' && isMissingGroup(error)) await this.recreateGroup();
      return undefined;
    }
  }

  /**
   * Redis lost the group (a restart without persistence, a failover, a deleted stream): it is
   * created again from the start of whatever the stream holds now, so an entry an engine added
   * after the loss is read too (a group created at '$' would skip it). Entries delivered again
   * change nothing: their keys are in the ledger.
   */
  private async recreateGroup(): Promise<void> {
    this.groupMissing = true;
    try {
      await this.bus.ensureGroup();
      this.groupMissing = false;
      this.log('ingest: the consumer group was gone; recreated it from the start of the stream');
    } catch (error) {
      this.log(`ingest: could not recreate the consumer group: ${(error as Error).message}`);
    }
  }

  /** Decodes and validates entries; runs while the database applies the previous batch when prefetched. */
  private decode(entries: BusEntry[]): Held[] {
    return entries.map((entry) => {
      if (entry.payload === null) return { entry, decoded: null, invalid: entry.unreadable ?? 'no payload' };
      const result = decodeEvent(entry.payload, this.options.decode);
      return result.ok
        ? { entry, decoded: { key: this.key(entry.id), event: result.event, redelivered: entry.deliveries > 1 }, invalid: null }
        : { entry, decoded: null, invalid: result.reason };
    });
  }

  /** Ids this worker holds: read and not yet applied, or applied and not yet acknowledged. */
  private heldIds(): Set<string> {
    const ids = new Set(this.held.map((h) => h.entry.id));
    for (const c of this.completions) for (const id of c.ids) ids.add(id);
    return ids;
  }

  private hold(held: Held[]): void {
    // A claimed entry may be one this worker committed and has not acknowledged yet: never apply it twice.
    const known = this.heldIds();
    for (const h of held) if (!known.has(h.entry.id)) this.held.push(h);
    this.held.sort((a, b) => compareIds(a.entry.id, b.entry.id));
  }

  /** Entries read (and decoded) while the previous batch was being applied. */
  private prefetched: Promise<Held[] | undefined> | null = null;

  /** Moves the seed list and reads up to `room` new entries. */
  private async fetch(room: number, blockMs: number): Promise<BusEntry[]> {
    await this.bus.moveList(this.batchSize);
    return this.bus.read(this.options.consumer, room, blockMs);
  }

  /** One iteration: fetch, decode, gate, apply, dead-letter, acknowledge, publish. */
  async step(): Promise<void> {
    if (this.prefetched) {
      this.hold((await this.prefetched) ?? []);
      this.prefetched = null;
    }
    // Claiming does not depend on room: held entries may all be waiting for what a dead consumer left.
    if (Date.now() - this.lastClaim >= Math.min(this.claimIdleMs / 2, 5000)) {
      this.lastClaim = Date.now();
      const claimed = await this.guard('bus', () => this.bus.claimStale(this.options.consumer, this.claimIdleMs, this.batchSize));
      this.hold(this.decode(claimed ?? []));
    }
    // Before a read that may block, what was committed is acknowledged and published.
    if (this.held.length === 0) await this.complete();
    if (this.held.length < this.batchSize) {
      const fetched = await this.guard('bus', () => this.fetch(this.batchSize - this.held.length, this.held.length ? 0 : this.blockMs));
      if (!fetched) return;
      this.hold(this.decode(fetched));
    }
    if (Date.now() - this.lastTrim >= (this.options.trimIntervalMs ?? 5000)) {
      this.lastTrim = Date.now();
      await this.guard('bus', () => this.bus.trim(this.options.deadLetterRetentionMs ?? 30 * 86_400_000));
    }
    if (this.held.length === 0) {
      if (this.completions.length === 0) this.lastProgressAt = Date.now();
      return;
    }

    const dead: NewDeadLetter[] = [];
    const deadIds = new Set<string>();
    for (const h of this.held) {
      if (h.invalid === null) continue;
      dead.push({ source: h.entry.id, payload: h.entry.payload, reason: h.invalid, attempts: h.entry.deliveries });
      deadIds.add(h.entry.id);
    }
    const live = this.held.filter((h) => !deadIds.has(h.entry.id));
    let ready = await this.guard('bus', () => this.readyEntries(live));
    if (!ready) return;
    // An entry delivered many times may be what stopped earlier workers (a crash, a kill): it is
    // applied in a batch of its own, so whatever happens to it happens to it alone. Entries
    // before it go first, in order.
    const suspect = ready.findIndex((h) => h.entry.deliveries > this.maxDeliveries);
    if (suspect === 0) {
      this.log(`ingest: entry ${ready[0]!.entry.id} was delivered ${ready[0]!.entry.deliveries} times; applying it alone`);
      ready = ready.slice(0, 1);
    } else if (suspect > 0) ready = ready.slice(0, suspect);

    let outcome: BatchOutcome | undefined;
    let applied: Held[] = [];
    if (ready.length) {
      const started = Date.now();
      // The next batch is read from the bus, and the previous one acknowledged and published,
      // while this one is applied.
      const room = this.batchSize - (this.held.length - ready.length);
      if (!this.stopping && room > 0) this.prefetched = this.guard('bus', async () => this.decode(await this.fetch(room, 0)));
      const completing = this.complete();
      const result = await this.guard('database', () => this.applyReady(ready));
      await completing;
      if (result) {
        outcome = result.outcome;
        applied = result.applied;
        for (const { h, reason } of result.struck) {
          dead.push({ source: h.entry.id, payload: h.entry.payload, reason, attempts: h.entry.deliveries });
          deadIds.add(h.entry.id);
        }
        this.metrics.recordBatch(applied.length, outcome, Date.now() - started);
        this.metrics.recordCommit(applied.map((h) => h.entry.id));
        if (applied.length) this.lastCommitAt = this.lastProgressAt = Date.now();
      }
    } else {
      await this.complete();
    }
    // Nothing was committed when the apply failed; the entries dead on arrival can still go, the rest is retried.
    // Part of the batch may have committed before the failure (the split that finds a bad entry
    // commits each half on its own), so the retry looks every entry up in the ledger.
    if (!outcome) for (const h of ready) h.decoded!.redelivered = undefined;
    const appliedIds = applied.map((h) => h.entry.id);
    for (const id of [...appliedIds, ...deadIds]) this.strikes.delete(id);
    const byKey = new Map(applied.map((h) => [h.decoded!.key, h]));
    for (const r of outcome?.rejected ?? []) {
      const h = byKey.get(r.key)!;
      dead.push({ source: h.entry.id, payload: h.entry.payload, reason: r.reason, attempts: h.entry.deliveries });
    }
    const ids = [...deadIds, ...appliedIds];
    if (ids.length === 0) return;
    if (!outcome && deadIds.size) this.lastProgressAt = Date.now();
    const finished = new Set(ids);
    this.held = this.held.filter((h) => !finished.has(h.entry.id));
    for (const id of finished) this.foreignKeys.delete(id);
    this.completions.push({ dead, ids, effects: outcome?.effects ?? null, acknowledged: false });
    // With no next batch to overlap with, the completion runs now.
    if (!outcome || (this.held.length === 0 && !this.prefetched)) await this.complete();
  }

  /**
   * Applies the ready entries in one batch (split only to find bad data). After several batches
   * in a row failed on something other than their data, the entries are tried one by one: if
   * some go through and one keeps failing alone with an error that is not certainly the
   * infrastructure's (an unknown SQLSTATE, TimescaleDB's decompression limit), that entry is what
   * fails, and after STRIKES such rounds it is dead-lettered with the error. When every entry
   * fails, or the error is certainly the infrastructure's (a lost connection, a permission, a
   * missing relation, a read-only database), nothing is dead-lettered: the batch is retried.
   */
  private async applyReady(ready: Held[]): Promise<{ outcome: BatchOutcome; applied: Held[]; struck: { h: Held; reason: string }[] }> {
    if (this.failures < ISOLATE_AFTER || ready.length < 2) {
      try {
        const outcome = await applyIsolating(this.db, ready.map((h) => h.decoded!));
        this.failures = 0;
        this.appliedTotal += ready.length;
        return { outcome, applied: ready, struck: [] };
      } catch (error) {
        this.failures += 1;
        // Part of the batch committed before the failure: its changes are published now,
        // while the whole batch is retried (those entries are duplicates then).
        if (error instanceof PartialApply) this.completions.push({ dead: [], ids: [], effects: error.committed.effects, acknowledged: true });
        const reason = ready.length === 1 && this.failures > ISOLATE_AFTER ? this.strike(ready[0]!, error) : null;
        if (reason) return { outcome: { applied: [], duplicates: [], rejected: [], effects: emptyEffects() }, applied: [], struck: [{ h: ready[0]!, reason }] };
        throw error;
      }
    }
    let outcome: BatchOutcome = { applied: [], duplicates: [], rejected: [], effects: emptyEffects() };
    const applied: Held[] = [];
    const failed: { h: Held; error: unknown }[] = [];
    const blocked = new Set<string>();
    for (const h of ready) {
      const key = h.decoded!.event.key;
      // A key's later events wait for its earlier one.
      if (key !== null && blocked.has(key)) continue;
      try {
        outcome = combine(outcome, await applyIsolating(this.db, [h.decoded!]));
        applied.push(h);
      } catch (error) {
        h.decoded!.redelivered = undefined;
        failed.push({ h, error });
        if (key !== null) blocked.add(key);
        if (certainlyInfrastructure(error)) break;
      }
    }
    this.appliedTotal += applied.length;
    this.failures = failed.length ? ISOLATE_AFTER + 1 : 0;
    const struck: { h: Held; reason: string }[] = [];
    for (const { h, error } of failed) {
      const reason = this.strike(h, error);
      if (reason) struck.push({ h, reason });
    }
    if (applied.length === 0 && struck.length === 0) throw failed[0]!.error;
    return { outcome, applied, struck };
  }

  /**
   * Counts a failure of one entry applied alone. It is a strike when other entries went through
   * since its previous failure (so the database works, for them); the first failure only sets
   * the mark. Returns the dead letter's reason at the STRIKES-th strike.
   */
  private strike(h: Held, error: unknown): string | null {
    if (certainlyInfrastructure(error)) return null;
    const seen = this.strikes.get(h.entry.id);
    if (!seen) {
      this.strikes.set(h.entry.id, { n: 0, mark: this.appliedTotal });
      return null;
    }
    if (this.appliedTotal === seen.mark) return null;
    seen.n += 1;
    seen.mark = this.appliedTotal;
    const message = (error as Error)?.message ?? String(error);
    this.log(`ingest: entry ${h.entry.id} failed alone again while others went through (${seen.n} of ${STRIKES}): ${message}`);
    if (seen.n < STRIKES) return null;
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

  /** Dead letters first, then acknowledgement: a crash in between re-sends (idempotently), never loses. */
  private async runCompletions(): Promise<void> {
    while (this.completions.length) {
      const c = this.completions[0]!;
      if (!c.acknowledged) {
        const done = await this.guard('bus', async () => {
          await this.bus.deadLetter(c.dead);
          await this.bus.ack(c.ids);
          return true;
        });
        if (!done) return;
        c.acknowledged = true;
        this.metrics.deadLettered += c.dead.length;
        for (const d of c.dead) this.log(`ingest: dead letter ${d.source}: ${d.reason}`);
      }
      if (c.effects) {
        const effects = c.effects;
        if (!(await this.guard('bus', async () => (await publishEffects(this.bus, effects), true)))) return;
      }
      this.completions.shift();
    }
  }

  /**
   * The held entries that may be applied now: those with no earlier entry of the same ordering
   * key still pending, here or at another consumer.
   */
  private async readyEntries(live: Held[]): Promise<Held[]> {
    if (live.length === 0) return [];
    const held = this.heldIds();
    const maxId = live[live.length - 1]!.entry.id;
    // Usually every pending entry is one this worker holds: one summary call settles it.
    const holders = await this.bus.pendingByConsumer();
    const pendingTotal = [...holders.values()].reduce((a, b) => a + b, 0);
    if (pendingTotal <= held.size) {
      this.foreignKeys.clear();
      this.metrics.deferred = 0;
      return live;
    }
    // Anything pending that this worker does not hold can block: entries of other consumers,
    // and its own entries from before a restart that it has not taken back yet.
    const pending = await this.bus.pendingUpTo(maxId, 100_000);
    const foreign = pending.filter((p) => !held.has(p.id));
    const unknown = foreign.map((p) => p.id).filter((id) => !this.foreignKeys.has(id));
    if (unknown.length) {
      const payloads = await this.bus.payloads(unknown);
      for (const id of unknown) {
        const decoded = decodeEvent(payloads.get(id) ?? '', this.options.decode);
        this.foreignKeys.set(id, decoded.ok ? decoded.event.key : null);
      }
    }
    const stillForeign = new Set(foreign.map((p) => p.id));
    for (const id of this.foreignKeys.keys()) if (!stillForeign.has(id)) this.foreignKeys.delete(id);
    // Earliest pending id per key at other consumers.
    const earliestElsewhere = new Map<string, string>();
    for (const p of foreign) {
      const key = this.foreignKeys.get(p.id);
      if (key && !earliestElsewhere.has(key)) earliestElsewhere.set(key, p.id);
    }
    const blockedKeys = new Set<string>();
    const ready: Held[] = [];
    for (const h of live) {
      const key = h.decoded!.event.key;
      if (key === null) {
        ready.push(h);
        continue;
      }
      const before = earliestElsewhere.get(key);
      if (blockedKeys.has(key) || (before && compareIds(before, h.entry.id) < 0)) {
        blockedKeys.add(key);
        continue;
      }
      ready.push(h);
    }
    this.metrics.deferred = live.length - ready.length;
    return ready;
  }
}
