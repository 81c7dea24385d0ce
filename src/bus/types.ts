import type { Cache } from '../cache/cache.ts';
/**
 * The queue between the trading engine and the ingest workers: a stream read through a
 * consumer group (Redis Streams, or the in-process bus when REDIS_URL is unset), the seed's
 * `db_processor` list moved into it atomically, a dead-letter stream, and pub/sub channels
 * for what was committed.
 */
export interface BusEntry {
  /** Stream entry id, "<ms>-<seq>"; ids only grow. */
  id: string;
  /** The entry's `payload` field as text; null when it cannot be read as one (see `unreadable`). */
  payload: string | null;
  /**
   * Why the entry has no usable payload: it has no `payload` field, its bytes are not UTF-8, or it
   * is larger than the limit (then it was never turned into text). Such an entry goes to the dead
   * letters as it arrived.
   */
  unreadable?: string;
  /** How many times the group has handed out this entry (1 on first delivery). */
  deliveries: number;
}

export interface PendingInfo {
  id: string;
  consumer: string;
  deliveries: number;
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
  /** Id in the dead-letter stream. */
  id: string;
  /** Id of the entry in the event stream that failed. */
  source: string;
  /** The stream it came from (and goes back to on replay). */
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
  source: string;
  reason: string;
  attempts: number;
  /** The payload as the worker has it; kept only if the source entry is gone from the stream. */
  payload: string | null;
}

export interface DeadListOptions {
  count: number;
  /** Only letters after this dead-letter id (for paging). */
  after?: string;
  /** Bytes of each field shown (default 200). */
  previewBytes?: number;
}

export interface BusStats {
  /** Entries in the stream (acknowledged ones until trimmed). */
  length: number;
  /** Memory the stream takes in Redis, in bytes (null for the in-process bus). */
  streamMemoryBytes: number | null;
  /** Memory the Redis server uses, in bytes (null for the in-process bus). */
  serverMemoryBytes: number | null;
  /** Delivered, not yet acknowledged. */
  pending: number;
  /** Not yet delivered to the group. */
  lag: number;
  /** Items waiting in the seed's list. */
  listLength: number;
  deadLetters: number;
  /** The consumer group exists (it is recreated by the worker when Redis lost it). */
  groupExists: boolean;
}

export interface Bus {
  readonly kind: 'redis' | 'memory';
  /** The stream's name; part of every idempotency key. */
  readonly stream: string;
  /** Creates the consumer group if it does not exist. */
  ensureGroup(): Promise<void>;
  /** Appends an event (what an engine does with XADD). */
  add(payload: string): Promise<string>;
  /** Appends to the seed's list (what a seed-000 engine does with LPUSH). */
  pushList(payload: string): Promise<void>;
  /** Moves up to `max` items from the seed's list into the stream, atomically; returns how many. */
  moveList(max: number): Promise<number>;
  /** New entries for this consumer, waiting up to `blockMs` when there are none. */
  read(consumer: string, count: number, blockMs: number): Promise<BusEntry[]>;
  /** Entries delivered to this consumer and not acknowledged (after a restart). */
  readOwnPending(consumer: string, count: number): Promise<BusEntry[]>;
  /** Takes over entries that other consumers left unacknowledged for `minIdleMs`. */
  claimStale(consumer: string, minIdleMs: number, count: number): Promise<BusEntry[]>;
  /** How many entries each consumer has pending (one cheap summary call). */
  pendingByConsumer(): Promise<Map<string, number>>;
  /** Pending entries of the whole group with ids up to `maxId`, oldest first. */
  pendingUpTo(maxId: string, count: number): Promise<PendingInfo[]>;
  /** Payloads of entries by id (missing ones are left out). */
  payloads(ids: string[]): Promise<Map<string, string>>;
  ack(ids: string[]): Promise<void>;
  /**
   * Writes dead letters, each with a copy of its source entry's fields made where the entry is
   * (so nothing is lost or re-encoded on the way); a source already there is not written twice.
   */
  deadLetter(letters: NewDeadLetter[]): Promise<void>;
  /** Dead letters oldest first, with previews of their fields, never whole payloads. */
  listDead(options: DeadListOptions): Promise<DeadLetter[]>;
  /** One dead letter with its original fields byte for byte, or null. */
  readDead(id: string): Promise<DeadLetterFull | null>;
  /** Puts dead letters back on their stream with their original fields (and removes them); returns how many. */
  replayDead(ids: string[] | 'all'): Promise<number>;
  /**
   * Keeps the bus bounded: removes stream entries that every consumer group has acknowledged,
   * and dead letters older than the retention. Returns how many of each were removed.
   */
  trim(deadLetterRetentionMs: number): Promise<{ stream: number; dead: number }>;
  publish(channel: string, message: string): Promise<void>;
  /** The read-through cache on the same server (or in process, for the in-process bus). */
  readonly cache: Cache;
  subscribe(channel: string, onMessage: (message: string) => void): Promise<() => Promise<void>>;
  stats(): Promise<BusStats>;
  ping(): Promise<boolean>;
  close(): Promise<void>;
}

/** What a stream read or claim reports when the consumer group (or the stream) is gone. */
export const isMissingGroup = (error: unknown) => /\bNOGROUP\b/.test(String((error as Error)?.message ?? error));

export interface BusNames {
  stream: string;
  list: string;
  group: string;
  dead: string;
  /**
   * Put before every cache key, rate-limit key and pub/sub channel, so that deployments (and test
   * runs) sharing a Redis never see each other's entries. Empty by default.
   */
  keyPrefix: string;
}

export const DEFAULT_NAMES: BusNames = {
  stream: 'tradestore:events',
  list: 'db_processor',
  group: 'tradestore',
  dead: 'tradestore:dead',
  keyPrefix: '',
};

/** Compares stream ids "<ms>-<seq>" numerically. */
export function compareIds(a: string, b: string): number {
  const [am = '0', as = '0'] = a.split('-');
  const [bm = '0', bs = '0'] = b.split('-');
  const ms = BigInt(am) - BigInt(bm);
  if (ms !== 0n) return ms < 0n ? -1 : 1;
  const seq = BigInt(as) - BigInt(bs);
  return seq === 0n ? 0 : seq < 0n ? -1 : 1;
}
