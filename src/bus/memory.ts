import { EventEmitter } from 'node:events';
import { MemoryCache } from '../cache/cache.ts';
import { MAX_PAYLOAD_BYTES } from '../ingest/events/decode.ts';
import {
  compareIds, type Bus, type BusEntry, type BusStats, type DeadLetter, type DeadLetterFull, type DeadListOptions, type NewDeadLetter,
  type PendingInfo,
} from './types.ts';

interface Pending {
  consumer: string;
  deliveries: number;
  deliveredAt: number;
}

/**
 * The in-process bus of the embedded default: the same semantics as a Redis stream with one
 * consumer group (ids, delivery counts, pending entries, claiming, acknowledgement, dead
 * letters, pub/sub), held in memory. Producer and workers share the process, so what it holds
 * lives and dies with them.
 */
export class MemoryBus implements Bus {
  readonly kind = 'memory' as const;
  private entries: { id: string; payload: string }[] = [];
  private lastDelivered = '0-0';
  private readonly pel = new Map<string, Pending>();
  private readonly list: string[] = [];
  private dead: DeadLetterFull[] = [];
  private readonly deadSources = new Set<string>();
  private readonly events = new EventEmitter();
  readonly cache = new MemoryCache();
  private lastMs = 0;
  private seq = 0;
  private deadSeq = 0;

  constructor(
    readonly stream = 'tradestore:events',
    private readonly maxPayloadBytes = MAX_PAYLOAD_BYTES,
  ) {
    this.events.setMaxListeners(0);
  }

  /** The entry as the worker sees it; an oversized payload is not handed over (as with Redis). */
  private view(e: { id: string; payload: string }, deliveries: number): BusEntry {
    const bytes = Buffer.byteLength(e.payload);
    return bytes > this.maxPayloadBytes
      ? { id: e.id, payload: null, deliveries, unreadable: `payload too large: ${bytes} bytes (limit ${this.maxPayloadBytes}, TRADESTORE_MAX_PAYLOAD_BYTES)` }
      : { id: e.id, payload: e.payload, deliveries };
  }

  async ensureGroup(): Promise<void> {}

  private nextId(): string {
    const now = Date.now();
    if (now > this.lastMs) {
      this.lastMs = now;
      this.seq = 0;
    } else this.seq += 1;
    return `${this.lastMs}-${this.seq}`;
  }

  async add(payload: string): Promise<string> {
    const id = this.nextId();
    this.entries.push({ id, payload });
    this.events.emit('added');
    return id;
  }

  async pushList(payload: string): Promise<void> {
    this.list.unshift(payload);
  }

  async moveList(max: number): Promise<number> {
    let moved = 0;
    while (moved < max && this.list.length) {
      await this.add(this.list.pop()!);
      moved += 1;
    }
    return moved;
  }

  private undelivered(count: number) {
    return this.entries.filter((e) => compareIds(e.id, this.lastDelivered) > 0).slice(0, count);
  }

  async read(consumer: string, count: number, blockMs: number): Promise<BusEntry[]> {
    if (this.undelivered(1).length === 0 && blockMs > 0) {
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          this.events.off('added', done);
          resolve();
        };
        const timer = setTimeout(done, blockMs);
        this.events.once('added', done);
      });
    }
    const batch = this.undelivered(count);
    const now = Date.now();
    for (const e of batch) {
      this.pel.set(e.id, { consumer, deliveries: 1, deliveredAt: now });
      this.lastDelivered = e.id;
    }
    return batch.map((e) => this.view(e, 1));
  }

  private redeliver(ids: string[], consumer: string): BusEntry[] {
    const now = Date.now();
    const out: BusEntry[] = [];
    for (const id of ids) {
      const p = this.pel.get(id);
      const entry = this.entries.find((e) => e.id === id);
      if (!p || !entry) continue;
      p.consumer = consumer;
      p.deliveries += 1;
      p.deliveredAt = now;
      out.push(this.view(entry, p.deliveries));
    }
    return out;
  }

  private pendingIds(filter: (p: Pending, id: string) => boolean, count: number): string[] {
    return [...this.pel.entries()]
      .filter(([id, p]) => filter(p, id))
      .map(([id]) => id)
      .sort(compareIds)
      .slice(0, count);
  }

  async readOwnPending(consumer: string, count: number): Promise<BusEntry[]> {
    return this.redeliver(this.pendingIds((p) => p.consumer === consumer, count), consumer);
  }

  async claimStale(consumer: string, minIdleMs: number, count: number): Promise<BusEntry[]> {
    const cutoff = Date.now() - minIdleMs;
    return this.redeliver(this.pendingIds((p) => p.deliveredAt <= cutoff, count), consumer);
  }

  async pendingByConsumer(): Promise<Map<string, number>> {
    const counts = new Map<string, number>();
    for (const p of this.pel.values()) counts.set(p.consumer, (counts.get(p.consumer) ?? 0) + 1);
    return counts;
  }

  async pendingUpTo(maxId: string, count: number): Promise<PendingInfo[]> {
    return this.pendingIds((_, id) => compareIds(id, maxId) <= 0, count).map((id) => {
      const p = this.pel.get(id)!;
      return { id, consumer: p.consumer, deliveries: p.deliveries };
    });
  }

  async payloads(ids: string[]): Promise<Map<string, string>> {
    const wanted = new Set(ids);
    return new Map(this.entries.filter((e) => wanted.has(e.id)).map((e) => [e.id, e.payload]));
  }

  async ack(ids: string[]): Promise<void> {
    for (const id of ids) this.pel.delete(id);
    // Acknowledged entries before the first pending or undelivered one are no longer needed.
    let keep = 0;
    while (keep < this.entries.length) {
      const e = this.entries[keep]!;
      if (this.pel.has(e.id) || compareIds(e.id, this.lastDelivered) > 0) break;
      keep += 1;
    }
    if (keep > 0) this.entries = this.entries.slice(keep);
  }

  async deadLetter(letters: NewDeadLetter[]): Promise<void> {
    for (const l of letters) {
      if (this.deadSources.has(l.source)) continue;
      this.deadSources.add(l.source);
      const entry = this.entries.find((e) => e.id === l.source);
      const payload = entry?.payload ?? l.payload;
      this.dead.push({
        id: `${Date.now()}-${this.deadSeq++}`,
        source: l.source,
        stream: this.stream,
        reason: l.reason,
        attempts: l.attempts,
        failedAt: new Date(),
        fields: payload === null ? [] : [{ name: 'payload', value: Buffer.from(payload) }],
        lost: payload === null,
      });
    }
  }

  async listDead(options: DeadListOptions): Promise<DeadLetter[]> {
    const n = options.previewBytes ?? 200;
    return this.dead
      .filter((d) => !options.after || compareIds(d.id, options.after) > 0)
      .slice(0, options.count)
      .map((d) => ({ ...d, fields: d.fields.map((f) => ({ name: f.name, bytes: f.value.length, preview: f.value.subarray(0, n).toString() })) }));
  }

  async readDead(id: string): Promise<DeadLetterFull | null> {
    return this.dead.find((d) => d.id === id) ?? null;
  }

  async replayDead(ids: string[] | 'all'): Promise<number> {
    const chosen = this.dead.filter((d) => (ids === 'all' || ids.includes(d.id)) && !d.lost);
    this.dead = this.dead.filter((d) => !chosen.includes(d));
    for (const d of chosen) await this.add(d.fields[0]!.value.toString());
    return chosen.length;
  }

  async trim(deadLetterRetentionMs: number): Promise<{ stream: number; dead: number }> {
    // Acknowledged entries are dropped as they are acknowledged (see ack).
    const cutoff = Date.now() - deadLetterRetentionMs;
    const before = this.dead.length;
    this.dead = this.dead.filter((d) => d.failedAt.getTime() >= cutoff);
    return { stream: 0, dead: before - this.dead.length };
  }

  async publish(channel: string, message: string): Promise<void> {
    this.events.emit(`channel:${channel}`, message);
  }

  /** The embedded read cache listens for these (there is no shared cache server to clear). */
  async subscribe(channel: string, onMessage: (message: string) => void): Promise<() => Promise<void>> {
    this.events.on(`channel:${channel}`, onMessage);
    return async () => {
      this.events.off(`channel:${channel}`, onMessage);
    };
  }

  async stats(): Promise<BusStats> {
    return {
      length: this.entries.length,
      streamMemoryBytes: null,
      serverMemoryBytes: null,
      groupExists: true,
      pending: this.pel.size,
      lag: this.undelivered(Number.MAX_SAFE_INTEGER).length,
      listLength: this.list.length,
      deadLetters: this.dead.length,
    };
  }

  async ping(): Promise<boolean> {
    return true;
  }

  async close(): Promise<void> {
    this.events.emit('added');
  }
}
