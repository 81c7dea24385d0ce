import { isUtf8 } from 'node:buffer';
import { Redis } from 'ioredis';
import { RedisCache } from '../cache/cache.ts';
import { DEAD_IDS, DEAD_LETTER, LIST_DEAD, MOVE_LIST, REPLAY_DEAD, TRIM } from './scripts.ts';
import {
  DEFAULT_NAMES, type Bus, type BusEntry, type BusNames, type BusStats, type DeadLetter, type DeadLetterFull, type DeadListOptions,
  type NewDeadLetter, type PendingInfo,
} from './types.ts';
import { MAX_PAYLOAD_BYTES } from '../ingest/events/decode.ts';

type RawEntry = [string, string[]];
/** An entry as read with callBuffer: every id, name and value a Buffer (or null for a deleted entry). */
type BufferEntry = [Buffer, Buffer[] | null];

/** Seconds a dead letter's "already written" marker lives: longer than any redelivery. */
const DEAD_MARKER_TTL_S = 30 * 24 * 3600;

/**
 * A stream entry as the worker sees it. The payload is checked as bytes before it becomes text:
 * an entry without one, one that is not UTF-8, or one over the limit is never decoded, and goes
 * to the dead letters as it arrived.
 */
export function entryFromBuffers(raw: BufferEntry, deliveries: number, maxPayloadBytes: number): BusEntry | null {
  const [idBuffer, fieldBuffers] = raw;
  if (!fieldBuffers) return null;
  const id = idBuffer.toString();
  let payload: Buffer | undefined;
  const names: string[] = [];
  for (let i = 0; i + 1 < fieldBuffers.length; i += 2) {
    const name = fieldBuffers[i]!.toString();
    names.push(name);
    if (name === 'payload' && payload === undefined) payload = fieldBuffers[i + 1]!;
  }
  if (payload === undefined) {
    const shown = names.slice(0, 10).map((n) => JSON.stringify(n.slice(0, 50))).join(', ');
    return { id, payload: null, deliveries, unreadable: `entry has no "payload" field (its fields: ${shown || 'none'})` };
  }
  if (payload.length > maxPayloadBytes) {
    return { id, payload: null, deliveries, unreadable: `payload too large: ${payload.length} bytes (limit ${maxPayloadBytes}, TRADESTORE_MAX_PAYLOAD_BYTES)` };
  }
  if (!isUtf8(payload)) return { id, payload: null, deliveries, unreadable: 'payload is not valid UTF-8' };
  return { id, payload: payload.toString('utf8'), deliveries };
}

function fields(raw: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < raw.length; i += 2) out[raw[i]!] = raw[i + 1]!;
  return out;
}

export interface RedisBusOptions {
  url: string;
  names?: Partial<BusNames>;
  /** Larger payloads are not turned into text (they are dead-lettered as they are). */
  maxPayloadBytes?: number;
}

export class RedisBus implements Bus {
  readonly kind = 'redis' as const;
  readonly stream: string;
  private readonly names: BusNames;
  private readonly maxPayloadBytes: number;
  private readonly cmd: Redis;
  private readonly blocking: Redis;
  private sub: Redis | null = null;
  readonly cache: RedisCache;
  /** The command connection, for libraries that keep their own keys on the same server (rate limits). */
  get client(): Redis {
    return this.cmd;
  }

  constructor(private readonly options: RedisBusOptions) {
    this.names = { ...DEFAULT_NAMES, ...options.names };
    this.stream = this.names.stream;
    this.maxPayloadBytes = options.maxPayloadBytes ?? MAX_PAYLOAD_BYTES;
    const connect = (name: string) => {
      const client = new Redis(options.url, {
        connectionName: `tradestore-${name}`,
        // RESP2: stream replies keep their documented nested-array shape.
        protocol: 2,
        // Fail commands quickly while the server is away; the worker retries with backoff.
        maxRetriesPerRequest: 2,
        retryStrategy: (times) => Math.min(50 * 2 ** times, 2000),
      });
      client.on('error', () => {}); // reported through failing commands and ping()
      return client;
    };
    this.cmd = connect('cmd');
    this.blocking = connect('read');
    this.cache = new RedisCache(this.cmd, this.names.keyPrefix);
  }

  async ensureGroup(): Promise<void> {
    try {
      // From the start of the stream: events an engine emitted before any worker ran are kept.
      await this.cmd.call('XGROUP', 'CREATE', this.stream, this.names.group, '0', 'MKSTREAM');
    } catch (error) {
      if (!String((error as Error).message).includes('BUSYGROUP')) throw error;
    }
  }

  async add(payload: string): Promise<string> {
    return (await this.cmd.call('XADD', this.stream, '*', 'payload', payload)) as string;
  }

  async pushList(payload: string): Promise<void> {
    await this.cmd.lpush(this.names.list, payload);
  }

  async moveList(max: number): Promise<number> {
    return Number(await this.cmd.eval(MOVE_LIST, 2, this.names.list, this.stream, String(max)));
  }

  private toEntries(raw: BufferEntry[] | null, deliveries: (id: string) => number): BusEntry[] {
    const out: BusEntry[] = [];
    for (const r of raw ?? []) {
      if (!r || !Array.isArray(r[1])) continue;
      const entry = entryFromBuffers(r, 1, this.maxPayloadBytes);
      if (entry) out.push({ ...entry, deliveries: deliveries(entry.id) });
    }
    return out;
  }

  async read(consumer: string, count: number, blockMs: number): Promise<BusEntry[]> {
    // BLOCK 0 would wait forever: a read that must not wait leaves BLOCK out.
    const block = blockMs > 0 ? ['BLOCK', String(blockMs)] : [];
    const reply = (await this.blocking.callBuffer(
      'XREADGROUP', 'GROUP', this.names.group, consumer, 'COUNT', String(count), ...block, 'STREAMS', this.stream, '>',
    )) as [Buffer, BufferEntry[]][] | null;
    return this.toEntries(reply?.[0]?.[1] ?? null, () => 1);
  }

  /** Own pending entries are claimed again (XCLAIM), which counts a delivery: a message that
   * crashes the worker on every start shows up with a growing count. */
  async readOwnPending(consumer: string, count: number): Promise<BusEntry[]> {
    const pending = (await this.cmd.call('XPENDING', this.stream, this.names.group, '-', '+', String(count), consumer)) as [string, string, number, number][];
    if (pending.length === 0) return [];
    const raw = (await this.cmd.callBuffer('XCLAIM', this.stream, this.names.group, consumer, '0', ...pending.map((p) => p[0]))) as BufferEntry[];
    const counts = new Map(pending.map((p) => [p[0], Number(p[3]) + 1]));
    return this.toEntries(raw, (id) => counts.get(id) ?? 1);
  }

  async claimStale(consumer: string, minIdleMs: number, count: number): Promise<BusEntry[]> {
    const [, raw] = (await this.cmd.callBuffer(
      'XAUTOCLAIM', this.stream, this.names.group, consumer, String(minIdleMs), '0-0', 'COUNT', String(count),
    )) as [Buffer, BufferEntry[], Buffer[]];
    const entries = this.toEntries(raw, () => 1);
    if (entries.length === 0) return [];
    const info = await this.pendingRange(entries[0]!.id, entries[entries.length - 1]!.id, entries.length * 2, consumer);
    const counts = new Map(info.map((p) => [p.id, p.deliveries]));
    return entries.map((e) => ({ ...e, deliveries: counts.get(e.id) ?? e.deliveries }));
  }

  private async pendingRange(from: string, to: string, count: number, consumer?: string): Promise<PendingInfo[]> {
    const args = ['XPENDING', this.stream, this.names.group, from, to, String(count), ...(consumer ? [consumer] : [])];
    const rows = (await this.cmd.call(args[0]!, ...args.slice(1))) as [string, string, number, number][];
    return rows.map(([id, owner, , deliveries]) => ({ id, consumer: owner, deliveries: Number(deliveries) }));
  }

  async pendingByConsumer(): Promise<Map<string, number>> {
    const summary = (await this.cmd.call('XPENDING', this.stream, this.names.group)) as [number, string | null, string | null, [string, string][] | null];
    return new Map((summary[3] ?? []).map(([consumer, n]) => [consumer, Number(n)]));
  }

  pendingUpTo(maxId: string, count: number): Promise<PendingInfo[]> {
    return this.pendingRange('-', maxId, count);
  }

  async payloads(ids: string[]): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    if (ids.length === 0) return out;
    const pipeline = this.cmd.pipeline();
    for (const id of ids) pipeline.xrangeBuffer(this.stream, id, id);
    const results = (await pipeline.exec()) ?? [];
    results.forEach(([error, reply]) => {
      const raw = (reply as BufferEntry[] | null)?.[0];
      const entry = !error && raw ? entryFromBuffers(raw, 1, this.maxPayloadBytes) : null;
      if (entry?.payload != null) out.set(entry.id, entry.payload);
    });
    return out;
  }

  async ack(ids: string[]): Promise<void> {
    if (ids.length) await this.cmd.call('XACK', this.stream, this.names.group, ...ids);
  }

  private markerKey(source: string): string {
    return `${this.names.dead}:seen:${this.stream}:${source}`;
  }

  async deadLetter(letters: NewDeadLetter[]): Promise<void> {
    if (letters.length === 0) return;
    const pipeline = this.cmd.pipeline();
    const at = new Date().toISOString();
    const meta = (l: NewDeadLetter) => [l.source, l.reason.slice(0, 4000), String(l.attempts), at];
    for (const l of letters) {
      const args = [...meta(l), String(DEAD_MARKER_TTL_S)];
      if (l.payload !== null) args.push(l.payload);
      pipeline.eval(DEAD_LETTER, 3, this.names.dead, this.markerKey(l.source), this.stream, ...args);
    }
    const results = (await pipeline.exec()) ?? [];
    const failed = results.find(([error]) => error);
    if (failed) throw failed[0];
    // An entry with thousands of fields: copied here, through this process, in one XADD.
    for (const [i, [, reply]] of results.entries()) {
      if (reply !== 'TOO_MANY_FIELDS') continue;
      const l = letters[i]!;
      const [source] = (await this.cmd.callBuffer('XRANGE', this.stream, l.source, l.source)) as BufferEntry[];
      const original = source?.[1] ?? [];
      const copy = original.map((v, j) => (j % 2 === 0 ? Buffer.concat([Buffer.from('f:'), v]) : v));
      const [sourceId, reason, attempts, failedAt] = meta(l);
      await this.cmd.callBuffer('XADD', this.names.dead, '*', 'source', sourceId!, 'stream', this.stream, 'reason', reason!, 'attempts', attempts!, 'failed_at', failedAt!, ...copy);
      await this.cmd.set(this.markerKey(l.source), '1', 'EX', DEAD_MARKER_TTL_S);
    }
  }

  async listDead(options: DeadListOptions): Promise<DeadLetter[]> {
    const start = options.after ? `(${options.after}` : '-';
    const raw = (await this.cmd.eval(LIST_DEAD, 1, this.names.dead, start, String(options.count), String(options.previewBytes ?? 200))) as [
      string,
      string[],
      string[],
    ][];
    return raw.map(([id, meta, originals]) => {
      const list = [];
      for (let i = 0; i + 2 < originals.length; i += 3) list.push({ name: originals[i]!, bytes: Number(originals[i + 1]), preview: originals[i + 2]! });
      return { ...this.letterMeta(id, fields(meta)), fields: list };
    });
  }

  /** A dead letter's own fields (what tradestore wrote beside the original entry's). */
  private letterMeta(id: string, meta: Record<string, string>): Omit<DeadLetter, 'fields'> {
    return {
      id,
      source: meta.source ?? '',
      stream: meta.stream ?? this.stream,
      reason: meta.reason ?? '',
      attempts: Number(meta.attempts ?? 0),
      failedAt: new Date(meta.failed_at ?? 0),
      lost: meta.lost === '1',
    };
  }

  async readDead(id: string): Promise<DeadLetterFull | null> {
    const raw = (await this.cmd.callBuffer('XRANGE', this.names.dead, id, id)) as BufferEntry[];
    const entry = raw[0];
    if (!entry?.[1]) return null;
    const meta: Record<string, string> = {};
    const originals: { name: string; value: Buffer }[] = [];
    const f = entry[1];
    for (let i = 0; i + 1 < f.length; i += 2) {
      const name = f[i]!.toString();
      if (name.startsWith('f:')) originals.push({ name: name.slice(2), value: f[i + 1]! });
      else if (name === 'payload') originals.push({ name, value: f[i + 1]! });
      else meta[name] = f[i + 1]!.toString();
    }
    return { ...this.letterMeta(entry[0].toString(), meta), fields: originals };
  }

  async replayDead(ids: string[] | 'all'): Promise<number> {
    let replayed = 0;
    const replay = async (id: string) => {
      if (await this.cmd.eval(REPLAY_DEAD, 2, this.names.dead, this.stream, id)) replayed += 1;
    };
    if (ids !== 'all') {
      for (const id of ids) await replay(id);
      return replayed;
    }
    // Page through ids only; each letter is moved inside Redis.
    let start = '-';
    for (;;) {
      const page = (await this.cmd.eval(DEAD_IDS, 1, this.names.dead, start, '500')) as string[];
      for (const id of page) await replay(id);
      if (page.length < 500) return replayed;
      start = `(${page[page.length - 1]}`;
    }
  }

  async trim(deadLetterRetentionMs: number): Promise<{ stream: number; dead: number }> {
    const [stream, dead] = (await this.cmd.eval(TRIM, 2, this.stream, this.names.dead, String(Date.now() - deadLetterRetentionMs))) as [number, number];
    return { stream: Number(stream), dead: Number(dead) };
  }

  async publish(channel: string, message: string): Promise<void> {
    await this.cmd.publish(this.names.keyPrefix + channel, message);
  }

  async subscribe(name: string, onMessage: (message: string) => void): Promise<() => Promise<void>> {
    const channel = this.names.keyPrefix + name;
    if (!this.sub) {
      this.sub = new Redis(this.options.url, { connectionName: 'tradestore-sub', maxRetriesPerRequest: 2, protocol: 2 });
      this.sub.on('error', () => {});
    }
    const sub = this.sub;
    const listener = (ch: string, message: string) => {
      if (ch === channel) onMessage(message);
    };
    sub.on('message', listener);
    await sub.subscribe(channel);
    return async () => {
      sub.off('message', listener);
      await sub.unsubscribe(channel);
    };
  }

  async stats(): Promise<BusStats> {
    const [length, listLength, deadLetters, groups, streamMemory, info] = await Promise.all([
      this.cmd.xlen(this.stream),
      this.cmd.llen(this.names.list),
      this.cmd.xlen(this.names.dead),
      this.cmd.call('XINFO', 'GROUPS', this.stream).catch(() => []) as Promise<unknown[][]>,
      this.cmd.call('MEMORY', 'USAGE', this.stream) as Promise<number | null>,
      this.cmd.info('memory'),
    ]);
    const group = (groups as unknown[][]).map((g) => fields(g.map(String))).find((g) => g.name === this.names.group);
    const used = /^used_memory:(\d+)/m.exec(info)?.[1];
    return {
      length,
      streamMemoryBytes: streamMemory === null ? 0 : Number(streamMemory),
      serverMemoryBytes: used ? Number(used) : null,
      listLength,
      deadLetters,
      pending: Number(group?.pending ?? 0),
      lag: Number.isFinite(Number(group?.lag)) ? Number(group?.lag) : 0,
      groupExists: Boolean(group),
    };
  }

  async ping(): Promise<boolean> {
    try {
      return (await this.cmd.ping()) === 'PONG';
    } catch {
      return false;
    }
  }

  async close(): Promise<void> {
    await Promise.all([this.cmd, this.blocking, this.sub].filter((c): c is Redis => c !== null).map((c) => c.quit().catch(() => c.disconnect())));
  }
}
