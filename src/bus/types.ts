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
  payload: string;
  /** How many times the group has handed out this entry (1 on first delivery). */
  deliveries: number;
}

export interface PendingInfo {
  id: string;
  consumer: string;
  deliveries: number;
}

export interface DeadLetter {
  /** Id in the dead-letter stream. */
  id: string;
  /** Id of the entry in the event stream that failed. */
  source: string;
  payload: string;
  reason: string;
  attempts: number;
  failedAt: Date;
}

export interface NewDeadLetter {
  source: string;
  payload: string;
  reason: string;
  attempts: number;
}

export interface BusStats {
  /** Entries in the stream (acknowledged ones until trimmed). */
  length: number;
  /** Delivered, not yet acknowledged. */
  pending: number;
  /** Not yet delivered to the group. */
  lag: number;
  /** Items waiting in the seed's list. */
  listLength: number;
  deadLetters: number;
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
  /** Writes dead letters; a source that is already there is not written twice. */
  deadLetter(letters: NewDeadLetter[]): Promise<void>;
  listDead(count: number): Promise<DeadLetter[]>;
  /** Puts dead letters back on the stream (and removes them from the dead letters); returns how many. */
  replayDead(ids: string[] | 'all'): Promise<number>;
  publish(channel: string, message: string): Promise<void>;
  /** The read-through cache on the same server (or in process, for the in-process bus). */
  readonly cache: Cache;
  subscribe(channel: string, onMessage: (message: string) => void): Promise<() => Promise<void>>;
  stats(): Promise<BusStats>;
  ping(): Promise<boolean>;
  close(): Promise<void>;
}

export interface BusNames {
  stream: string;
  list: string;
  group: string;
  dead: string;
}

export const DEFAULT_NAMES: BusNames = {
  stream: 'tradestore:events',
  list: 'db_processor',
  group: 'tradestore',
  dead: 'tradestore:dead',
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
