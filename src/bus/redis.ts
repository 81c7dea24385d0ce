import { isUtf8 } from 'node:buffer';
import { Cluster, Redis } from 'ioredis';
import { RedisCache } from '../cache/cache.ts';
import { ANCHOR, COMMITTED, COUNT_START, DEAD_IDS, DEAD_LETTER, HEARTBEAT, LEASE, LIST_DEAD, RELEASE, REPLAY_DEAD, ROUTE } from './scripts.ts';
import { ROUTING, shardOf } from './routing.ts';
import {
  compareIds, DEFAULT_NAMES, nextId, shardKey, ShardCountError, splitDeadId, type Bus, type BusEntry, type BusNames, type BusStats,
  type DeadLetter, type DeadLetterFull, type DeadListOptions, type NewDeadLetter,
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
export function entryFromBuffers(raw: BufferEntry, shard: number, maxPayloadBytes: number): BusEntry | null {
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
    return { shard, id, payload: null, unreadable: `entry has no "payload" field (its fields: ${shown || 'none'})` };
  }
  if (payload.length > maxPayloadBytes) {
    return { shard, id, payload: null, unreadable: `payload too large: ${payload.length} bytes (limit ${maxPayloadBytes}, TRADESTORE_MAX_PAYLOAD_BYTES)` };
  }
  if (!isUtf8(payload)) return { shard, id, payload: null, unreadable: 'payload is not valid UTF-8' };
  return { shard, id, payload: payload.toString('utf8') };
}

function fields(raw: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < raw.length; i += 2) out[raw[i]!] = raw[i + 1]!;
  return out;
}

export interface RedisBusOptions {
  /** The server, or with `cluster`, one node of the cluster (the others are discovered). */
  url: string;
  /**
   * A Redis Cluster. Each shard's keys share a hash slot, so the shards spread over the masters and
   * every script runs on one of them. The seed's list and the entry stream are not routed (one
   * script cannot reach every shard's slot): engines write to the shards.
   */
  cluster?: boolean;
  /** Number of shard streams, a power of two (default 8). */
  shards?: number;
  names?: Partial<BusNames>;
  /** Larger payloads are not turned into text (they are dead-lettered as they are). */
  maxPayloadBytes?: number;
}

const ROUTING_JSON = JSON.stringify(ROUTING);

type Client = Redis | Cluster;

export class RedisBus implements Bus {
  readonly kind = 'redis' as const;
  readonly stream: string;
  readonly shards: number;
  readonly names: BusNames;
  private readonly maxPayloadBytes: number;
  private readonly clustered: boolean;
  private readonly cmd: Client;
  private readonly blocking: Client;
  private sub: Client | null = null;
  /** Subscribers of each channel (its full name) on `sub`. */
  private readonly channelListeners = new Map<string, Set<(message: string) => void>>();
  /** Keyless events written with add() are spread over the shards in turn. */
  private spread = 0;
  readonly cache: RedisCache;
  /** The command connection, for libraries that keep their own keys on the same server (rate limits). */
  get client(): Client {
    return this.cmd;
  }

  constructor(private readonly options: RedisBusOptions) {
    this.names = { ...DEFAULT_NAMES, ...options.names };
    this.stream = this.names.stream;
    this.shards = options.shards ?? 8;
    this.maxPayloadBytes = options.maxPayloadBytes ?? MAX_PAYLOAD_BYTES;
    this.clustered = options.cluster ?? false;
    this.cmd = this.connect('cmd');
    this.blocking = this.clustered ? this.cmd : this.connect('read');
    this.cache = new RedisCache(this.cmd, this.names.keyPrefix);
  }

  private connect(name: string): Client {
    const redisOptions = {
      connectionName: `tradestore-${name}`,
      // RESP2: stream replies keep their documented nested-array shape.
      protocol: 2 as const,
      // Fail commands quickly while the server is away; the worker retries with backoff.
      maxRetriesPerRequest: 2,
      retryStrategy: (times: number) => Math.min(50 * 2 ** times, 2000),
    };
    let client: Client;
    if (this.clustered) {
      const url = new URL(this.options.url);
      client = new Cluster([{ host: url.hostname, port: Number(url.port || 6379) }], {
        redisOptions: { ...redisOptions, password: url.password || undefined, username: url.username || undefined },
        clusterRetryStrategy: (times) => Math.min(100 * times, 2000),
        // A failover takes the node timeout; commands wait for the new master meanwhile, then fail.
        retryDelayOnFailover: 200,
        retryDelayOnClusterDown: 300,
      });
    } else client = new Redis(this.options.url, redisOptions);
    client.on('error', () => {}); // reported through failing commands and ping()
    return client;
  }

  shardStream(shard: number): string {
    return shardKey(this.stream, shard);
  }

  private key(shard: number, suffix: string): string {
    return shardKey(this.stream, shard, suffix);
  }

  private get shardList(): number[] {
    return Array.from({ length: this.shards }, (_, i) => i);
  }

  async init(): Promise<void> {
    const key = `${this.stream}:shards`;
    await this.cmd.set(key, String(this.shards), 'NX');
    const recorded = Number(await this.cmd.get(key));
    if (recorded !== this.shards) throw new ShardCountError(recorded, this.shards);
  }

  async recordedShards(): Promise<number | null> {
    const value = await this.cmd.get(`${this.stream}:shards`);
    return value === null ? null : Number(value);
  }

  async add(payload: string): Promise<{ shard: number; id: string }> {
    const shard = shardOf(payload, this.shards) ?? this.spread++ % this.shards;
    const id = (await this.cmd.call('XADD', this.shardStream(shard), '*', 'payload', payload)) as string;
    return { shard, id };
  }

  async addEntry(payload: string): Promise<string> {
    return (await this.cmd.call('XADD', this.stream, '*', 'payload', payload)) as string;
  }

  async pushList(payload: string): Promise<void> {
    await this.cmd.lpush(this.names.list, payload);
  }

  async route(max: number): Promise<number> {
    if (this.clustered) return 0;
    const keys = [this.names.list, this.stream, ...this.shardList.map((s) => this.shardStream(s))];
    let moved = 0;
    while (moved < max) {
      const [n, stoppedAt] = (await this.cmd.eval(ROUTE, keys.length, ...keys, String(max - moved), String(this.maxPayloadBytes), ROUTING_JSON)) as [
        number,
        string | null,
      ];
      moved += Number(n);
      if (!stoppedAt) return moved;
      // Another router holds that entry's claim: the caller comes back later (no spinning on it).
      if (!(await this.routeOne(stoppedAt))) return moved;
      moved += 1;
    }
    return moved;
  }

  /**
   * Moves one entry with more fields than a script can copy, exactly once: the router first
   * claims it (a marker only routers write, so engines adding to the entry stream meanwhile do not
   * hold it up), then moves it in a transaction that fails if the marker changed (the claim
   * lapsed and another router took it over).
   */
  private async routeOne(id: string): Promise<boolean> {
    const marker = `${this.stream}:routing:${id}`;
    const token = `${process.pid}:${Math.random()}`;
    if ((await this.cmd.set(marker, token, 'PX', 60_000, 'NX')) !== 'OK') return false;
    await this.cmd.watch(marker);
    const [entry] = (await this.cmd.callBuffer('XRANGE', this.stream, id, id)) as BufferEntry[];
    const mine = (await this.cmd.get(marker)) === token;
    if (!mine || !entry?.[1]) {
      await this.cmd.unwatch();
      if (mine) await this.cmd.del(marker);
      return false;
    }
    const fields = entry[1];
    const at = fields.findIndex((f, i) => i % 2 === 0 && f.toString() === 'payload');
    const payload = at >= 0 && fields[at + 1]!.length <= this.maxPayloadBytes ? fields[at + 1]!.toString() : '';
    const shard = shardOf(payload, this.shards) ?? this.spread++ % this.shards;
    const done = await this.cmd.multi().xadd(this.shardStream(shard), '*', ...(fields as unknown as string[])).xdel(this.stream, id).del(marker).exec();
    return done !== null;
  }

  async read(after: Map<number, string>, count: number, blockMs: number): Promise<BusEntry[]> {
    if (after.size === 0) {
      if (blockMs > 0) await new Promise((r) => setTimeout(r, blockMs));
      return [];
    }
    if (this.clustered) return this.readEach(after, count, blockMs);
    return this.xread(this.blocking, after, count, blockMs);
  }

  /** One XREAD over the given shards (all on one server), as entries. */
  private async xread(client: Client, after: Map<number, string>, count: number, blockMs: number): Promise<BusEntry[]> {
    const shards = [...after.keys()];
    // BLOCK 0 would wait forever: a read that must not wait leaves BLOCK out.
    const block = blockMs > 0 ? ['BLOCK', String(blockMs)] : [];
    const reply = (await client.callBuffer(
      'XREAD', 'COUNT', String(count), ...block, 'STREAMS', ...shards.map((s) => this.shardStream(s)), ...shards.map((s) => after.get(s)!),
    )) as [Buffer, BufferEntry[]][] | null;
    const byName = new Map(shards.map((s) => [this.shardStream(s), s]));
    const out: BusEntry[] = [];
    for (const [name, entries] of reply ?? []) {
      const shard = byName.get(name.toString())!;
      for (const raw of entries) {
        const entry = raw && Array.isArray(raw[1]) ? entryFromBuffers(raw, shard, this.maxPayloadBytes) : null;
        if (entry) out.push(entry);
      }
    }
    return out;
  }

  /**
   * In a cluster the shards are on different masters, and one XREAD cannot name them all: each is
   * read on its own, and an empty round waits a little before the next (up to `blockMs` in all).
   */
  private async readEach(after: Map<number, string>, count: number, blockMs: number): Promise<BusEntry[]> {
    const deadline = Date.now() + blockMs;
    for (;;) {
      const replies = await Promise.all([...after].map(([shard, id]) => this.xread(this.cmd, new Map([[shard, id]]), count, 0)));
      const out = replies.flat();
      if (out.length || Date.now() >= deadline) return out;
      await new Promise((r) => setTimeout(r, Math.min(25, deadline - Date.now())));
    }
  }

  async heartbeat(worker: string, ttlMs: number): Promise<string[]> {
    const live = (await this.cmd.eval(HEARTBEAT, 1, `${this.stream}:workers`, worker, String(ttlMs))) as string[];
    return live.sort();
  }

  async leave(worker: string): Promise<void> {
    await this.cmd.zrem(`${this.stream}:workers`, worker);
  }

  async acquire(shard: number, worker: string, ttlMs: number): Promise<boolean> {
    return Number(await this.cmd.eval(LEASE, 1, this.key(shard, ':lease'), worker, String(ttlMs))) === 1;
  }

  async renew(shards: number[], worker: string, ttlMs: number): Promise<number[]> {
    const held = await Promise.all(shards.map((s) => this.acquire(s, worker, ttlMs)));
    return shards.filter((_, i) => held[i]);
  }

  async release(shard: number, worker: string): Promise<void> {
    await this.cmd.eval(RELEASE, 1, this.key(shard, ':lease'), worker);
  }

  async countStart(shard: number, offset: string): Promise<number> {
    return Number(await this.cmd.eval(COUNT_START, 1, this.key(shard, ':starts'), offset));
  }

  async committed(shard: number, offset: string): Promise<void> {
    await this.cmd.eval(COMMITTED, 2, this.key(shard, ':offset'), this.shardStream(shard), offset, nextId(offset));
  }

  async anchor(shard: number, after: string, check = false): Promise<{ made: boolean; lastId: string | null }> {
    const reply = (await this.cmd.eval(ANCHOR, 1, this.shardStream(shard), nextId(after), check ? 'check' : '')) as string | null;
    return { made: reply === 'made', lastId: reply && reply !== 'made' ? reply : null };
  }

  private markerKey(shard: number, source: string): string {
    return this.key(shard, `:dead:seen:${source}`);
  }

  async deadLetter(letters: NewDeadLetter[]): Promise<void> {
    if (letters.length === 0) return;
    const at = new Date().toISOString();
    const meta = (l: NewDeadLetter) => [l.source, l.reason.slice(0, 4000), String(l.attempts), at];
    // Sent at once (one round trip on one server; in a cluster, each to its shard's master).
    const results = await Promise.all(
      letters.map((l) => {
        const args = [...meta(l), String(DEAD_MARKER_TTL_S)];
        if (l.payload !== null) args.push(l.payload);
        return this.cmd.eval(DEAD_LETTER, 3, this.key(l.shard, ':dead'), this.markerKey(l.shard, l.source), this.shardStream(l.shard), ...args);
      }),
    );
    // An entry with thousands of fields: copied here, through this process, in one XADD.
    for (const [i, reply] of results.entries()) {
      if (reply !== 'TOO_MANY_FIELDS') continue;
      const l = letters[i]!;
      const [source] = (await this.cmd.callBuffer('XRANGE', this.shardStream(l.shard), l.source, l.source)) as BufferEntry[];
      const original = source?.[1] ?? [];
      const copy = original.map((v, j) => (j % 2 === 0 ? Buffer.concat([Buffer.from('f:'), v]) : v));
      const [sourceId, reason, attempts, failedAt] = meta(l);
      await this.cmd.callBuffer(
        'XADD', this.key(l.shard, ':dead'), '*', 'source', sourceId!, 'stream', this.shardStream(l.shard), 'reason', reason!, 'attempts', attempts!,
        'failed_at', failedAt!, ...copy,
      );
      await this.cmd.set(this.markerKey(l.shard, l.source), '1', 'EX', DEAD_MARKER_TTL_S);
    }
  }

  /**
   * Dead letters of every shard, merged oldest first by (id, shard); `after` is the last id of
   * the previous page.
   */
  async listDead(options: DeadListOptions): Promise<DeadLetter[]> {
    const after = options.after ? splitDeadId(options.after) : null;
    if (options.after && !after) return [];
    const pages = await Promise.all(
      this.shardList.map(async (shard) => {
        // The same id in a later shard comes after the cursor; in this or an earlier shard, it does not.
        const start = !after ? '-' : shard > after.shard ? after.id : `(${after.id}`;
        const raw = (await this.cmd.eval(LIST_DEAD, 1, this.key(shard, ':dead'), start, String(options.count), String(options.previewBytes ?? 200))) as [
          string,
          string[],
          string[],
        ][];
        return raw.map(([id, metaPairs, originals]) => {
          const list = [];
          for (let i = 0; i + 2 < originals.length; i += 3) list.push({ name: originals[i]!, bytes: Number(originals[i + 1]), preview: originals[i + 2]! });
          return { ...this.letterMeta(shard, id, fields(metaPairs)), fields: list };
        });
      }),
    );
    return pages
      .flat()
      .sort((a, b) => compareIds(a.id.slice(a.id.indexOf(':') + 1), b.id.slice(b.id.indexOf(':') + 1)) || a.shard - b.shard)
      .slice(0, options.count);
  }

  /** A dead letter's own fields (what tradestore wrote beside the original entry's). */
  private letterMeta(shard: number, id: string, meta: Record<string, string>): Omit<DeadLetter, 'fields'> {
    return {
      id: `${shard}:${id}`,
      shard,
      source: meta.source ?? '',
      stream: meta.stream ?? this.shardStream(shard),
      reason: meta.reason ?? '',
      attempts: Number(meta.attempts ?? 0),
      failedAt: new Date(meta.failed_at ?? 0),
      lost: meta.lost === '1',
    };
  }

  async readDead(deadId: string): Promise<DeadLetterFull | null> {
    const at = splitDeadId(deadId);
    if (!at || at.shard >= this.shards) return null;
    const raw = (await this.cmd.callBuffer('XRANGE', this.key(at.shard, ':dead'), at.id, at.id)) as BufferEntry[];
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
    return { ...this.letterMeta(at.shard, entry[0].toString(), meta), fields: originals };
  }

  async replayDead(ids: string[] | 'all', onProgress?: (replayed: number) => void): Promise<number> {
    let replayed = 0;
    const replay = async (shard: number, id: string) => {
      if (await this.cmd.eval(REPLAY_DEAD, 2, this.key(shard, ':dead'), this.shardStream(shard), id)) {
        replayed += 1;
        if (replayed % 1000 === 0) onProgress?.(replayed);
      }
    };
    if (ids !== 'all') {
      for (const deadId of ids) {
        const at = splitDeadId(deadId);
        if (at && at.shard < this.shards) await replay(at.shard, at.id);
      }
      return replayed;
    }
    // Page through ids only; each letter is moved inside Redis.
    for (const shard of this.shardList) {
      let start = '-';
      for (;;) {
        const page = (await this.cmd.eval(DEAD_IDS, 1, this.key(shard, ':dead'), start, '500')) as string[];
        for (const id of page) await replay(shard, id);
        if (page.length < 500) break;
        start = `(${page[page.length - 1]}`;
      }
    }
    return replayed;
  }

  async purgeDead(ids: string[] | 'all'): Promise<number> {
    if (ids === 'all') {
      // Each shard's dead letters counted and removed in one transaction.
      const removed = await Promise.all(this.shardList.map(async (s) => {
        const result = await this.cmd.multi().xlen(this.key(s, ':dead')).del(this.key(s, ':dead')).exec();
        return Number(result?.[0]?.[1] ?? 0);
      }));
      return removed.reduce((a, b) => a + b, 0);
    }
    let removed = 0;
    for (const deadId of ids) {
      const at = splitDeadId(deadId);
      if (at && at.shard < this.shards) removed += Number(await this.cmd.xdel(this.key(at.shard, ':dead'), at.id));
    }
    return removed;
  }

  async trimDead(retentionMs: number): Promise<number> {
    // Dead letters are few: trimmed exactly, so none outlives the retention.
    const removed = await Promise.all(this.shardList.map((s) => this.cmd.xtrim(this.key(s, ':dead'), 'MINID', String(Date.now() - retentionMs))));
    return removed.reduce((a, b) => a + Number(b), 0);
  }

  async reshard(shards: number): Promise<void> {
    const stats = await this.stats();
    const held = stats.perShard.filter((s) => s.owner);
    if (held.length) throw new Error(`workers still hold shards (${held.map((s) => `${s.shard}: ${s.owner}`).join(', ')}): stop every worker first`);
    if (stats.lag || stats.listLength) {
      throw new Error(`entries are waiting (${stats.lag} in the streams, ${stats.listLength} in the list): let the workers drain them, stop them, then reshard`);
    }
    const gone = this.shardList.filter((s) => s >= shards);
    const dead = await Promise.all(gone.map((s) => this.cmd.xlen(this.key(s, ':dead'))));
    const withDead = gone.filter((_, i) => dead[i]! > 0);
    if (withDead.length) throw new Error(`shards ${withDead.join(', ')} would go and still hold dead letters: replay them (tradestore dlq replay --all) or let them expire first`);
    for (const s of gone) for (const key of [this.shardStream(s), this.key(s, ':offset'), this.key(s, ':starts'), this.key(s, ':dead')]) await this.cmd.del(key);
    await this.cmd.set(`${this.stream}:shards`, String(shards));
  }

  async publish(channel: string, message: string): Promise<void> {
    await this.cmd.publish(this.names.keyPrefix + channel, message);
  }

  /**
   * Subscribes to a channel on the bus's subscriber connection. Several subscriptions to one
   * channel share it: the channel is left when the last one stops. A subscriber that throws does
   * not stop the others.
   */
  async subscribe(name: string, onMessage: (message: string) => void): Promise<() => Promise<void>> {
    const channel = this.names.keyPrefix + name;
    if (!this.sub) {
      const sub = this.connect('sub');
      sub.on('message', (ch: string, message: string) => {
        for (const listener of this.channelListeners.get(ch) ?? []) {
          try {
            listener(message);
          } catch {
            // one subscriber's failure is its own
          }
        }
      });
      this.sub = sub;
    }
    const sub = this.sub;
    let listeners = this.channelListeners.get(channel);
    if (!listeners) {
      listeners = new Set();
      this.channelListeners.set(channel, listeners);
    }
    listeners.add(onMessage);
    try {
      await sub.subscribe(channel);
    } catch (error) {
      await this.unlisten(channel, onMessage);
      throw error;
    }
    let stopped = false;
    return async () => {
      if (stopped) return;
      stopped = true;
      await this.unlisten(channel, onMessage);
    };
  }

  private async unlisten(channel: string, onMessage: (message: string) => void): Promise<void> {
    const listeners = this.channelListeners.get(channel);
    listeners?.delete(onMessage);
    if (listeners && listeners.size === 0) {
      this.channelListeners.delete(channel);
      await this.sub?.unsubscribe(channel);
    }
  }

  async stats(): Promise<BusStats> {
    const shards = this.shardList;
    const memory = async () => {
      const nodes = this.cmd instanceof Cluster ? this.cmd.nodes('master') : [this.cmd];
      const infos = await Promise.all(nodes.map((n) => n.info('memory')));
      return infos.reduce((sum, info) => sum + Number(/^used_memory:(\d+)/m.exec(info)?.[1] ?? 0), 0);
    };
    // Sent at once: one round trip on one server; in a cluster, each key to its master.
    const [entryStreamLength, listLength, workers, serverMemory, perShard] = await Promise.all([
      this.cmd.xlen(this.stream),
      this.cmd.llen(this.names.list),
      this.cmd.zrangebyscore(`${this.stream}:workers`, Date.now(), '+inf'),
      memory(),
      Promise.all(
        shards.map(async (shard) => {
          const [length, owner, offset, dead, bytes, info] = await Promise.all([
            this.cmd.xlen(this.shardStream(shard)),
            this.cmd.get(this.key(shard, ':lease')),
            this.cmd.get(this.key(shard, ':offset')),
            this.cmd.xlen(this.key(shard, ':dead')),
            this.cmd.call('MEMORY', 'USAGE', this.shardStream(shard)) as Promise<number | null>,
            // The dead-letter stream's last generated id: when its newest letter was written.
            (this.cmd.call('XINFO', 'STREAM', this.key(shard, ':dead')) as Promise<unknown[]>).catch(() => null),
          ]);
          const last = info ? String(info[info.indexOf('last-generated-id') + 1] ?? '0-0') : '0-0';
          return { shard, length, owner, offset, dead, bytes: Number(bytes ?? 0), lastDead: Number(last.split('-')[0]) || null };
        }),
      ),
    ]);
    return {
      shards: this.shards,
      lag: perShard.reduce((n, s) => n + s.length, 0) + (this.clustered ? 0 : entryStreamLength),
      entryStreamLength,
      listLength,
      unroutable: this.clustered ? entryStreamLength + listLength : 0,
      deadLetters: perShard.reduce((n, s) => n + s.dead, 0),
      lastDeadLetterAt: perShard.reduce<number | null>((max, s) => (s.lastDead !== null && (max === null || s.lastDead > max) ? s.lastDead : max), null),
      streamMemoryBytes: perShard.reduce((n, s) => n + s.bytes, 0),
      serverMemoryBytes: serverMemory,
      workers: [...workers].sort(),
      perShard: perShard.map(({ shard, length, owner, offset }) => ({ shard, length, owner, offset })),
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
    const clients = [...new Set([this.cmd, this.blocking, this.sub])].filter((c): c is Client => c !== null);
    await Promise.all(clients.map((c) => c.quit().catch(() => c.disconnect())));
  }
}
