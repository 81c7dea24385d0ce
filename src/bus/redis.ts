import { Redis } from 'ioredis';
import { RedisCache } from '../cache/cache.ts';
import { DEFAULT_NAMES, type Bus, type BusEntry, type BusNames, type BusStats, type DeadLetter, type NewDeadLetter, type PendingInfo } from './types.ts';

/**
 * Seed 000 engines LPUSH onto a list and the seed RPOPs it: a message popped by a process that
 * dies before committing is gone. This script pops and appends to the stream in one atomic step,
 * so every list item becomes exactly one stream entry.
 */
const MOVE_LIST = `
local moved = 0
for i = 1, tonumber(ARGV[1]) do
  local item = redis.call('RPOP', KEYS[1])
  if not item then break end
  redis.call('XADD', KEYS[2], '*', 'payload', item, 'via', 'list')
  moved = moved + 1
end
return moved`;

/** Dead letters are written once per source entry, even if a crash makes a worker write them again. */
const DEAD_LETTER = `
if redis.call('SET', KEYS[2], '1', 'NX', 'EX', 2592000) then
  return redis.call('XADD', KEYS[1], '*', 'source', ARGV[1], 'payload', ARGV[2], 'reason', ARGV[3],
                    'attempts', ARGV[4], 'failed_at', ARGV[5])
end
return false`;

type RawEntry = [string, string[]];

function fields(raw: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < raw.length; i += 2) out[raw[i]!] = raw[i + 1]!;
  return out;
}

export interface RedisBusOptions {
  url: string;
  names?: Partial<BusNames>;
}

export class RedisBus implements Bus {
  readonly kind = 'redis' as const;
  readonly stream: string;
  private readonly names: BusNames;
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
    this.cache = new RedisCache(this.cmd);
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

  private toEntries(raw: RawEntry[] | null, deliveries: Map<string, number> | number): BusEntry[] {
    return (raw ?? [])
      .filter((r) => r && Array.isArray(r[1]))
      .map(([id, f]) => ({
        id,
        payload: fields(f).payload ?? '',
        deliveries: typeof deliveries === 'number' ? deliveries : (deliveries.get(id) ?? 1),
      }));
  }

  async read(consumer: string, count: number, blockMs: number): Promise<BusEntry[]> {
    // BLOCK 0 would wait forever: a read that must not wait leaves BLOCK out.
    const block = blockMs > 0 ? ['BLOCK', String(blockMs)] : [];
    const reply = (await this.blocking.call(
      'XREADGROUP', 'GROUP', this.names.group, consumer, 'COUNT', String(count), ...block, 'STREAMS', this.stream, '>',
    )) as [string, RawEntry[]][] | null;
    return this.toEntries(reply?.[0]?.[1] ?? null, 1);
  }

  /** Own pending entries are claimed again (XCLAIM), which counts a delivery: a message that
   * crashes the worker on every start reaches the delivery limit instead of looping forever. */
  async readOwnPending(consumer: string, count: number): Promise<BusEntry[]> {
    const pending = (await this.cmd.call('XPENDING', this.stream, this.names.group, '-', '+', String(count), consumer)) as [string, string, number, number][];
    if (pending.length === 0) return [];
    const raw = (await this.cmd.call('XCLAIM', this.stream, this.names.group, consumer, '0', ...pending.map((p) => p[0]))) as RawEntry[];
    return this.toEntries(raw, new Map(pending.map((p) => [p[0], Number(p[3]) + 1])));
  }

  async claimStale(consumer: string, minIdleMs: number, count: number): Promise<BusEntry[]> {
    const [, raw] = (await this.cmd.call(
      'XAUTOCLAIM', this.stream, this.names.group, consumer, String(minIdleMs), '0-0', 'COUNT', String(count),
    )) as [string, RawEntry[], string[]];
    const entries = this.toEntries(raw, 1);
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
    for (const id of ids) pipeline.call('XRANGE', this.stream, id, id);
    const results = (await pipeline.exec()) ?? [];
    results.forEach(([error, reply], i) => {
      const raw = reply as RawEntry[] | null;
      if (!error && raw?.[0]) out.set(ids[i]!, fields(raw[0][1]).payload ?? '');
    });
    return out;
  }

  async ack(ids: string[]): Promise<void> {
    if (ids.length) await this.cmd.call('XACK', this.stream, this.names.group, ...ids);
  }

  async deadLetter(letters: NewDeadLetter[]): Promise<void> {
    if (letters.length === 0) return;
    const pipeline = this.cmd.pipeline();
    const at = new Date().toISOString();
    for (const l of letters) {
      pipeline.eval(DEAD_LETTER, 2, this.names.dead, `${this.names.dead}:seen:${this.stream}:${l.source}`, l.source, l.payload, l.reason, String(l.attempts), at);
    }
    const results = (await pipeline.exec()) ?? [];
    const failed = results.find(([error]) => error);
    if (failed) throw failed[0];
  }

  async listDead(count: number): Promise<DeadLetter[]> {
    const raw = (await this.cmd.call('XRANGE', this.names.dead, '-', '+', 'COUNT', String(count))) as RawEntry[];
    return raw.map(([id, f]) => {
      const v = fields(f);
      return {
        id,
        source: v.source ?? '',
        payload: v.payload ?? '',
        reason: v.reason ?? '',
        attempts: Number(v.attempts ?? 0),
        failedAt: new Date(v.failed_at ?? 0),
      };
    });
  }

  async replayDead(ids: string[] | 'all'): Promise<number> {
    const letters = ids === 'all' ? await this.listDead(1_000_000) : (await this.listDead(1_000_000)).filter((l) => ids.includes(l.id));
    let replayed = 0;
    for (const letter of letters) {
      // Append and remove in one MULTI, so a letter is never replayed twice or lost in between.
      const result = await this.cmd
        .multi()
        .call('XADD', this.stream, '*', 'payload', letter.payload, 'replay_of', letter.source)
        .call('XDEL', this.names.dead, letter.id)
        .exec();
      if (result && !result.some(([error]) => error)) replayed += 1;
    }
    return replayed;
  }

  async publish(channel: string, message: string): Promise<void> {
    await this.cmd.publish(channel, message);
  }

  async subscribe(channel: string, onMessage: (message: string) => void): Promise<() => Promise<void>> {
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
    const [length, listLength, deadLetters, groups] = await Promise.all([
      this.cmd.xlen(this.stream),
      this.cmd.llen(this.names.list),
      this.cmd.xlen(this.names.dead),
      this.cmd.call('XINFO', 'GROUPS', this.stream).catch(() => []) as Promise<unknown[][]>,
    ]);
    const group = (groups as unknown[][]).map((g) => fields(g.map(String))).find((g) => g.name === this.names.group);
    return {
      length,
      listLength,
      deadLetters,
      pending: Number(group?.pending ?? 0),
      lag: Number.isFinite(Number(group?.lag)) ? Number(group?.lag) : 0,
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
