import { EventEmitter } from 'node:events';
import { MemoryCache } from '../cache/cache.ts';
import { MAX_PAYLOAD_BYTES } from '../ingest/events/decode.ts';
import { shardOf } from './routing.ts';
import {
  compareIds, shardKey, ShardCountError, splitDeadId, type Bus, type BusEntry, type BusStats, type DeadLetter, type DeadLetterFull,
  type DeadListOptions, type NewDeadLetter,
} from './types.ts';

interface Shard {
  entries: { id: string; payload: string }[];
  lease: { worker: string; until: number } | null;
  offset: string | null;
  starts: { offset: string; count: number } | null;
  dead: DeadLetterFull[];
  deadSources: Set<string>;
}

/**
 * The in-process bus of the embedded default: the same semantics as the Redis bus (shard
 * streams with growing ids, routing of the list and the entry stream, leases, membership, dead
 * letters, pub/sub), held in memory. Producer and workers share the process, so what it holds
 * lives and dies with them.
 */
export class MemoryBus implements Bus {
  readonly kind = 'memory' as const;
  private readonly parts: Shard[];
  /** When the newest dead letter was written (epoch ms). */
  private lastDeadAt: number | null = null;
  private entryStream: { id: string; payload: string }[] = [];
  private readonly list: string[] = [];
  private readonly members = new Map<string, number>();
  private readonly events = new EventEmitter();
  readonly cache = new MemoryCache();
  private lastMs = 0;
  private seq = 0;
  private spread = 0;
  private recorded: number | null = null;

  constructor(
    readonly stream = 'tradestore:events',
    private readonly maxPayloadBytes = MAX_PAYLOAD_BYTES,
    readonly shards = 8,
  ) {
    this.events.setMaxListeners(0);
    this.parts = Array.from({ length: shards }, () => ({ entries: [], lease: null, offset: null, starts: null, dead: [], deadSources: new Set() }));
  }

  shardStream(shard: number): string {
    return shardKey(this.stream, shard);
  }

  /** The entry as the worker sees it; an oversized payload is not handed over (as with Redis). */
  private view(shard: number, e: { id: string; payload: string }): BusEntry {
    const bytes = Buffer.byteLength(e.payload);
    return bytes > this.maxPayloadBytes
      ? { shard, id: e.id, payload: null, unreadable: `payload too large: ${bytes} bytes (limit ${this.maxPayloadBytes}, TRADESTORE_MAX_PAYLOAD_BYTES)` }
      : { shard, id: e.id, payload: e.payload };
  }

  async init(): Promise<void> {
    this.recorded ??= this.shards;
    if (this.recorded !== this.shards) throw new ShardCountError(this.recorded, this.shards);
  }

  async recordedShards(): Promise<number | null> {
    return this.recorded;
  }

  private nextId(): string {
    const now = Date.now();
    if (now > this.lastMs) {
      this.lastMs = now;
      this.seq = 0;
    } else this.seq += 1;
    return `${this.lastMs}-${this.seq}`;
  }

  private append(shard: number, payload: string): string {
    const id = this.nextId();
    this.parts[shard]!.entries.push({ id, payload });
    this.events.emit('added');
    return id;
  }

  private shardFor(payload: string): number {
    const bytes = Buffer.byteLength(payload);
    return (bytes <= this.maxPayloadBytes ? shardOf(payload, this.shards) : null) ?? this.spread++ % this.shards;
  }

  async add(payload: string): Promise<{ shard: number; id: string }> {
    const shard = this.shardFor(payload);
    return { shard, id: this.append(shard, payload) };
  }

  async addEntry(payload: string): Promise<string> {
    const id = this.nextId();
    this.entryStream.push({ id, payload });
    return id;
  }

  async pushList(payload: string): Promise<void> {
    this.list.unshift(payload);
  }

  async route(max: number): Promise<number> {
    let moved = 0;
    while (moved < max && this.list.length) {
      const item = this.list.pop()!;
      this.append(this.shardFor(item), item);
      moved += 1;
    }
    while (moved < max && this.entryStream.length) {
      const e = this.entryStream.shift()!;
      this.append(this.shardFor(e.payload), e.payload);
      moved += 1;
    }
    return moved;
  }

  private after(shard: number, id: string, count: number): BusEntry[] {
    const out: BusEntry[] = [];
    for (const e of this.parts[shard]!.entries) {
      if (out.length >= count) break;
      if (compareIds(e.id, id) > 0) out.push(this.view(shard, e));
    }
    return out;
  }

  async read(after: Map<number, string>, count: number, blockMs: number): Promise<BusEntry[]> {
    const collect = () => [...after].flatMap(([shard, id]) => this.after(shard, id, count));
    let found = collect();
    if (found.length === 0 && blockMs > 0) {
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          this.events.off('added', done);
          resolve();
        };
        const timer = setTimeout(done, blockMs);
        this.events.once('added', done);
      });
      found = collect();
    }
    return found;
  }

  async heartbeat(worker: string, ttlMs: number): Promise<string[]> {
    const now = Date.now();
    for (const [w, until] of this.members) if (until <= now) this.members.delete(w);
    this.members.set(worker, now + ttlMs);
    return [...this.members.keys()].sort();
  }

  async leave(worker: string): Promise<void> {
    this.members.delete(worker);
  }

  async acquire(shard: number, worker: string, ttlMs: number): Promise<boolean> {
    const part = this.parts[shard]!;
    const now = Date.now();
    if (part.lease && part.lease.until > now && part.lease.worker !== worker) return false;
    part.lease = { worker, until: now + ttlMs };
    return true;
  }

  async renew(shards: number[], worker: string, ttlMs: number): Promise<number[]> {
    const held: number[] = [];
    for (const s of shards) if (await this.acquire(s, worker, ttlMs)) held.push(s);
    return held;
  }

  async release(shard: number, worker: string): Promise<void> {
    const part = this.parts[shard]!;
    if (part.lease?.worker === worker) part.lease = null;
  }

  async countStart(shard: number, offset: string): Promise<number> {
    const part = this.parts[shard]!;
    part.starts = part.starts?.offset === offset ? { offset, count: part.starts.count + 1 } : { offset, count: 1 };
    return part.starts.count;
  }

  async committed(shard: number, offset: string): Promise<void> {
    const part = this.parts[shard]!;
    if (!part.offset || compareIds(part.offset, offset) < 0) part.offset = offset;
    part.entries = part.entries.filter((e) => compareIds(e.id, offset) > 0);
  }

  /** Ids here come from one counter that never goes back, and the shards never go: nothing to do. */
  async anchor(): Promise<{ made: boolean; lastId: string | null }> {
    return { made: false, lastId: null };
  }

  async deadLetter(letters: NewDeadLetter[]): Promise<void> {
    for (const l of letters) {
      const part = this.parts[l.shard]!;
      if (part.deadSources.has(l.source)) continue;
      part.deadSources.add(l.source);
      const entry = part.entries.find((e) => e.id === l.source);
      const payload = entry?.payload ?? l.payload;
      this.lastDeadAt = Date.now();
      part.dead.push({
        id: `${l.shard}:${this.nextId()}`,
        shard: l.shard,
        source: l.source,
        stream: this.shardStream(l.shard),
        reason: l.reason,
        attempts: l.attempts,
        failedAt: new Date(),
        fields: payload === null ? [] : [{ name: 'payload', value: Buffer.from(payload) }],
        lost: payload === null,
      });
    }
  }

  private allDead(): DeadLetterFull[] {
    const rest = (d: DeadLetterFull) => splitDeadId(d.id)!.id;
    return this.parts.flatMap((p) => p.dead).sort((a, b) => compareIds(rest(a), rest(b)) || a.shard - b.shard);
  }

  async listDead(options: DeadListOptions): Promise<DeadLetter[]> {
    const n = options.previewBytes ?? 200;
    const all = this.allDead();
    const from = options.after ? all.findIndex((d) => d.id === options.after) + 1 : 0;
    return all
      .slice(from)
      .slice(0, options.count)
      .map((d) => ({ ...d, fields: d.fields.map((f) => ({ name: f.name, bytes: f.value.length, preview: f.value.subarray(0, n).toString() })) }));
  }

  async readDead(id: string): Promise<DeadLetterFull | null> {
    return this.allDead().find((d) => d.id === id) ?? null;
  }

  async replayDead(ids: string[] | 'all', onProgress?: (replayed: number) => void): Promise<number> {
    let replayed = 0;
    for (const part of this.parts) {
      const chosen = part.dead.filter((d) => (ids === 'all' || ids.includes(d.id)) && !d.lost);
      part.dead = part.dead.filter((d) => !chosen.includes(d));
      for (const d of chosen) {
        this.append(d.shard, d.fields[0]!.value.toString());
        replayed += 1;
        if (replayed % 1000 === 0) onProgress?.(replayed);
      }
    }
    return replayed;
  }

  async purgeDead(ids: string[] | 'all'): Promise<number> {
    let removed = 0;
    for (const part of this.parts) {
      const before = part.dead.length;
      part.dead = part.dead.filter((d) => !(ids === 'all' || ids.includes(d.id)));
      removed += before - part.dead.length;
    }
    return removed;
  }

  async trimDead(retentionMs: number): Promise<number> {
    const cutoff = Date.now() - retentionMs;
    let removed = 0;
    for (const part of this.parts) {
      const before = part.dead.length;
      part.dead = part.dead.filter((d) => d.failedAt.getTime() >= cutoff);
      removed += before - part.dead.length;
    }
    return removed;
  }

  async reshard(): Promise<void> {
    throw new Error('the in-process bus lives and dies with the service: set TRADESTORE_SHARDS and restart it');
  }

  async publish(channel: string, message: string): Promise<void> {
    this.events.emit(`channel:${channel}`, message);
  }

  /** The embedded read cache listens for these (there is no shared cache server to clear). */
  async subscribe(channel: string, onMessage: (message: string) => void): Promise<() => Promise<void>> {
    // A subscriber that throws must not fail the publisher (emit would throw into it).
    const listener = (message: string) => {
      try {
        onMessage(message);
      } catch {
        // its own failure
      }
    };
    this.events.on(`channel:${channel}`, listener);
    return async () => {
      this.events.off(`channel:${channel}`, listener);
    };
  }

  async stats(): Promise<BusStats> {
    const now = Date.now();
    const perShard = this.parts.map((p, shard) => ({
      shard,
      length: p.entries.length,
      owner: p.lease && p.lease.until > now ? p.lease.worker : null,
      offset: p.offset,
    }));
    return {
      shards: this.shards,
      lag: perShard.reduce((n, s) => n + s.length, 0) + this.entryStream.length,
      entryStreamLength: this.entryStream.length,
      listLength: this.list.length,
      unroutable: 0,
      deadLetters: this.parts.reduce((n, p) => n + p.dead.length, 0),
      lastDeadLetterAt: this.lastDeadAt,
      streamMemoryBytes: null,
      serverMemoryBytes: null,
      workers: [...this.members].filter(([, until]) => until > now).map(([w]) => w).sort(),
      perShard,
    };
  }

  async ping(): Promise<boolean> {
    return true;
  }

  async close(): Promise<void> {
    this.events.emit('added');
  }
}
