import type { Cache } from '../cache/cache.ts';
/**
 * The queue between the trading engines and the ingest workers: N shard streams that events are
 * routed to by their ordering key (Redis Streams, or the in-process bus when REDIS_URL is unset),
 * the entry stream and the seed's `db_processor` list routed into them atomically, a lease per
 * shard and a membership per worker, dead letters beside each shard, and pub/sub channels for what
 * was committed. See docs/SCALING.md.
 */
export interface BusEntry {
  /** The shard stream it was read from. */
  shard: number;
  /** Stream entry id, "<ms>-<seq>"; ids only grow within a shard. */
  id: string;
  /** The entry's `payload` field as text; null when it cannot be read as one (see `unreadable`). */
  payload: string | null;
  /**
   * Why the entry has no usable payload: it has no `payload` field, its bytes are not UTF-8, or it
   * is larger than the limit (then it was never turned into text). Such an entry goes to the dead
   * letters as it arrived.
   */
  unreadable?: string;
}

/** One field of a dead letter's original entry: its size and (for a listing) its first bytes. */
export interface DeadField {
  name: string;
  bytes: number;
  /** The first bytes as text (invalid UTF-8 shown as U+FFFD); whole when `bytes` ≤ the preview size. */
  preview: string;
}

/** A dead letter as listed: metadata and previews, never whole payloads. */
export interface DeadLetter {
  /** "<shard>:<id in the shard's dead-letter stream>", e.g. "3:1763700000123-0". */
  id: string;
  shard: number;
  /** Id of the entry in the shard stream that failed. */
  source: string;
  /** The shard stream it came from (and goes back to on replay). */
  stream: string;
  reason: string;
  attempts: number;
  failedAt: Date;
  /** The original entry's fields, in order; `payload` is the one engines send. */
  fields: DeadField[];
  /** True when the source entry was gone before it could be copied (nothing to replay). */
  lost: boolean;
}

/** A dead letter with its original entry's fields byte for byte. */
export interface DeadLetterFull extends Omit<DeadLetter, 'fields'> {
  fields: { name: string; value: Buffer }[];
}

export interface NewDeadLetter {
  shard: number;
  source: string;
  reason: string;
  attempts: number;
  /** The payload as the worker has it; kept only if the source entry is gone from the stream. */
  payload: string | null;
}

export interface DeadListOptions {
  count: number;
  /** Only letters after this dead-letter id (for paging: the last id of the previous page). */
  after?: string;
  /** Bytes of each field shown (default 200). */
  previewBytes?: number;
}

export interface ShardStats {
  shard: number;
  /** Entries in the shard stream not yet committed (committed ones are trimmed). */
  length: number;
  /** The worker holding the shard's lease, or null. */
  owner: string | null;
  /** The last entry id committed, as the owner last recorded it on the bus (the database holds the truth). */
  offset: string | null;
}

export interface BusStats {
  /** Number of shard streams. */
  shards: number;
  /** Entries waiting to be applied: in the shards, and in the entry stream before routing. */
  lag: number;
  /** Entries in the entry stream (engines that do not pick the shard themselves), not yet routed. */
  entryStreamLength: number;
  /** Items waiting in the seed's list. */
  listLength: number;
  /**
   * Items in the list and the entry stream that this bus cannot route (in a Redis Cluster, engines
   * must write to the shards); 0 elsewhere.
   */
  unroutable: number;
  deadLetters: number;
  /** When the newest dead letter was written (epoch ms; it may have been replayed or purged since), or null. */
  lastDeadLetterAt: number | null;
  /** Memory the streams take in Redis, in bytes (null for the in-process bus). */
  streamMemoryBytes: number | null;
  /** Memory the Redis server uses, in bytes (null for the in-process bus). */
  serverMemoryBytes: number | null;
  /** Workers whose membership is live (each renews it with its heartbeat). */
  workers: string[];
  perShard: ShardStats[];
}

/** The shard count recorded on the bus differs from the configured one. */
export class ShardCountError extends Error {
  constructor(
    readonly recorded: number,
    readonly configured: number,
  ) {
    super(
      `the bus has ${recorded} shards but TRADESTORE_SHARDS is ${configured}: changing it is an operation ` +
        '(drain, then `tradestore ingest reshard --shards N`; see docs/SCALING.md)',
    );
    this.name = 'ShardCountError';
  }
}

export interface Bus {
  readonly kind: 'redis' | 'memory';
  /** The entry stream's name; shard streams and the other keys are named after it. */
  readonly stream: string;
  /** Number of shard streams (a power of two). */
  readonly shards: number;
  /** The name of a shard's stream; part of every entry's identity. */
  shardStream(shard: number): string;
  /** Records the shard count on the bus, or checks it against the one recorded (ShardCountError). */
  init(): Promise<void>;
  /** The shard count recorded on the bus (null before any worker or engine recorded one). */
  recordedShards(): Promise<number | null>;
  /** Appends an event to its shard (what an engine that routes itself does with XADD). */
  add(payload: string): Promise<{ shard: number; id: string }>;
  /** Appends an event to the entry stream, to be routed to its shard (what other engines do with XADD). */
  addEntry(payload: string): Promise<string>;
  /** Appends to the seed's list (what a seed-000 engine does with LPUSH). */
  pushList(payload: string): Promise<void>;
  /** Moves up to `max` items from the seed's list and the entry stream into their shards, atomically; returns how many. */
  route(max: number): Promise<number>;
  /** Entries of the given shards after the given ids, oldest first per shard, waiting up to `blockMs` when there are none. */
  read(after: Map<number, string>, count: number, blockMs: number): Promise<BusEntry[]>;
  /** Renews this worker's membership; returns the live workers, sorted. */
  heartbeat(worker: string, ttlMs: number): Promise<string[]>;
  /** Ends this worker's membership. */
  leave(worker: string): Promise<void>;
  /** Takes a shard's lease if it is free (or already this worker's); true when held. */
  acquire(shard: number, worker: string, ttlMs: number): Promise<boolean>;
  /** Extends the leases this worker still holds; returns those shards. */
  renew(shards: number[], worker: string, ttlMs: number): Promise<number[]>;
  /** Gives a shard's lease up, if this worker holds it. */
  release(shard: number, worker: string): Promise<void>;
  /**
   * Counts how many owners started on a shard at this offset (a worker that takes the shard over
   * where the last one started, and the one before: something there stops workers). The count
   * restarts when the offset moves.
   */
  countStart(shard: number, offset: string): Promise<number>;
  /** After a commit (and its dead letters): records the offset and removes the shard's entries up to it. */
  committed(shard: number, offset: string): Promise<void>;
  /**
   * Makes a missing shard stream again, empty, so that new entries get ids after `after` whatever
   * the server's clock says (see the ANCHOR script). Returns whether it was made, and, when
   * `check` is set, the stream's last id (null when the bus has no such thing).
   */
  anchor(shard: number, after: string, check?: boolean): Promise<{ made: boolean; lastId: string | null }>;
  /**
   * Writes dead letters, each with a copy of its source entry's fields made where the entry is
   * (so nothing is lost or re-encoded on the way); a source already there is not written twice.
   */
  deadLetter(letters: NewDeadLetter[]): Promise<void>;
  /** Dead letters oldest first (over all shards), with previews of their fields, never whole payloads. */
  listDead(options: DeadListOptions): Promise<DeadLetter[]>;
  /** One dead letter with its original fields byte for byte, or null. */
  readDead(id: string): Promise<DeadLetterFull | null>;
  /**
   * Puts dead letters back on their shard with their original fields (and removes them); returns
   * how many. `onProgress` is called with the count so far after every 1,000.
   */
  replayDead(ids: string[] | 'all', onProgress?: (replayed: number) => void): Promise<number>;
  /** Removes dead letters older than the retention; returns how many. */
  trimDead(retentionMs: number): Promise<number>;
  /** Removes these dead letters (or all) for good, without replaying them; returns how many. */
  purgeDead(ids: string[] | 'all'): Promise<number>;
  /**
   * Changes the shard count recorded on the bus. Refused (with the reason) while anything waits
   * in a shard, the entry stream or the list, or while a worker holds a lease.
   */
  reshard(shards: number): Promise<void>;
  publish(channel: string, message: string): Promise<void>;
  /** The read-through cache on the same server (or in process, for the in-process bus). */
  readonly cache: Cache;
  subscribe(channel: string, onMessage: (message: string) => void): Promise<() => Promise<void>>;
  stats(): Promise<BusStats>;
  ping(): Promise<boolean>;
  close(): Promise<void>;
}

export interface BusNames {
  /** The entry stream; the shard streams and every other key are named after it (see shardKey). */
  stream: string;
  list: string;
  /**
   * Put before every cache key, rate-limit key and pub/sub channel, so that deployments (and test
   * runs) sharing a Redis never see each other's entries. Empty by default.
   */
  keyPrefix: string;
}

export const DEFAULT_NAMES: BusNames = {
  stream: 'tradestore:events',
  list: 'db_processor',
  keyPrefix: '',
};

/**
 * A key of one shard. Every key of a shard carries the same hash tag ("{3}"), so that in a Redis
 * Cluster a shard's stream, lease, offset and dead letters share one slot (one master), and the
 * scripts that touch several of them run there atomically.
 */
export const shardKey = (stream: string, shard: number, suffix = '') => `${stream}:{${shard}}${suffix}`;

/** "<shard>:<id>" — a dead letter's id over all shards. */
export function splitDeadId(id: string): { shard: number; id: string } | null {
  const m = /^(\d{1,5}):(\d{1,20}-\d{1,20})$/.exec(id);
  return m ? { shard: Number(m[1]), id: m[2]! } : null;
}

/** The id just after `id` within a stream (entries up to `id` are before it). */
export function nextId(id: string): string {
  const [ms = '0', seq = '0'] = id.split('-');
  return `${ms}-${BigInt(seq) + 1n}`;
}

/** Compares two decimal digit strings without leading zeros numerically. */
const compareDigits = (a: string, b: string) => (a.length !== b.length ? a.length - b.length : a < b ? -1 : a > b ? 1 : 0);

/** Compares stream ids "<ms>-<seq>" numerically, without BigInt (it runs for every entry read). */
export function compareIds(a: string, b: string): number {
  const ai = a.indexOf('-');
  const bi = b.indexOf('-');
  const am = ai < 0 ? a : a.slice(0, ai);
  const bm = bi < 0 ? b : b.slice(0, bi);
  const ms = compareDigits(am, bm);
  if (ms !== 0) return Math.sign(ms);
  return Math.sign(compareDigits(ai < 0 ? '0' : a.slice(ai + 1), bi < 0 ? '0' : b.slice(bi + 1)));
}
