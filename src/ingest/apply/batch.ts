import type { Database, Queryable } from '../../database/types.ts';
import { compareIds } from '../../bus/types.ts';
import type { EventType } from '../events/catalogue.ts';
import { applyBalances } from './balances.ts';
import { applyBacktests } from './backtests.ts';
import { applyExchangeOrders } from './exchangeOrders.ts';
import { ROW_SPECS, rowApplier, type RowSpec } from './feeds.ts';
import { applyOrders } from './orders.ts';
import { applyPositions } from './positions.ts';
import { applyStrategyTrades } from './strategyTrades.ts';
import { applyTrades } from './trades.ts';
import { evaluateRisk, riskSubjects } from './risk.ts';
import { emptyEffects, type ApplyResult, type Effects, type Entry, type Rejection } from './types.ts';
import { asContent, classifyFailure, ContentError, tracked } from '../failures.ts';

export interface BatchOutcome {
  /** Keys applied by this batch. */
  applied: string[];
  /** Keys of entries whose producer eventId had been applied before: nothing changed. */
  duplicates: string[];
  /** Entries that go to the dead letters, with the reason. */
  rejected: Rejection[];
  effects: Effects;
}

type Applier = (tx: Queryable, entries: Entry[], effects: Effects) => Promise<ApplyResult>;

const rows = <T extends EventType>(type: T) => rowApplier(ROW_SPECS[type] as RowSpec<T>);

/**
 * The applier of each type. Entries of one applier are handed over together, in emission order;
 * types that depend on each other (a round trip's opening and closing) share an applier.
 * Exported for the tests that check what happens when an applier throws.
 */
export const APPLIERS: { [T in EventType]: (tx: Queryable, entries: Entry<T>[], effects: Effects) => Promise<ApplyResult> } = {
  TRADE_ADDED: applyTrades,
  ORDER_UPDATE: applyOrders,
  BALANCE_UPDATE: applyBalances,
  POSITION_UPDATE: applyPositions,
  STRATEGY_TRADE_OPENED: applyStrategyTrades,
  STRATEGY_TRADE_CLOSED: applyStrategyTrades,
  EXCHANGE_ORDER: applyExchangeOrders,
  BACKTEST_STARTED: applyBacktests,
  BACKTEST_PROGRESS: applyBacktests,
  BACKTEST_TRADES: applyBacktests,
  BACKTEST_EQUITY: applyBacktests,
  BACKTEST_COMPLETED: applyBacktests,
  BACKTEST_FAILED: applyBacktests,
  MARKET_TRADE: rows('MARKET_TRADE'),
  CANDLE: rows('CANDLE'),
  ORDER_BOOK: rows('ORDER_BOOK'),
  FILL: rows('FILL'),
  PORTFOLIO_SNAPSHOT: rows('PORTFOLIO_SNAPSHOT'),
  PERFORMANCE_METRIC: rows('PERFORMANCE_METRIC'),
  STRATEGY_PERFORMANCE: rows('STRATEGY_PERFORMANCE'),
  PREDICTION: rows('PREDICTION'),
  INDICATOR: rows('INDICATOR'),
  RISK_EVENT: rows('RISK_EVENT'),
  SYSTEM_LOG: rows('SYSTEM_LOG'),
  API_USAGE: rows('API_USAGE'),
};

const eventKey = (entry: Entry) => (entry.event.eventId ? `event:${entry.event.eventId}` : null);

/** One stream entry of a batch: decoded, or refused on arrival with the reason. */
export interface BatchItem {
  shard: number;
  /** Its id in the shard stream. */
  id: string;
  /** Identity of the entry, 'entry:<shard stream>:<id>'. */
  key: string;
  entry: Entry | null;
  /** Why it cannot be applied (set when `entry` is null). */
  invalid: string | null;
  /** How often it was tried, when it is refused after several tries. */
  attempts?: number;
}

/**
 * Where a worker stands in its shards: the last entry id committed per shard. A batch moves each
 * of its shards' offsets from there to its last entry, in its own transaction; when an offset is
 * not where this worker last left it (another worker took the shard over and moved it), the
 * transaction is refused with ShardMoved and nothing of the batch is applied.
 */
export interface Offsets {
  stream: string;
  committed: Map<number, string>;
}

/** The offsets of these shards moved under this worker: another worker owns them now, or did. */
export class ShardMoved extends Error {
  constructor(readonly shards: number[]) {
    super(`shard${shards.length === 1 ? '' : 's'} ${shards.join(', ')} moved on without this worker (another worker took over)`);
    this.name = 'ShardMoved';
  }
}

/** Each shard's last entry id in the batch (entries of a shard come in id order). */
function moves(items: BatchItem[], offsets: Offsets): { shards: number[]; from: string[]; to: string[] } {
  const last = new Map<number, string>();
  for (const item of items) {
    const before = last.get(item.shard) ?? offsets.committed.get(item.shard);
    if (before !== undefined && compareIds(item.id, before) <= 0) {
      throw new Error(`entry ${item.id} of shard ${item.shard} is at or behind its offset ${before} (or out of order): it was applied already`);
    }
    last.set(item.shard, item.id);
  }
  const shards = [...last.keys()];
  return {
    shards,
    from: shards.map((s) => {
      const from = offsets.committed.get(s);
      if (from === undefined) throw new Error(`shard ${s} is not held by this worker`);
      return from;
    }),
    to: shards.map((s) => last.get(s)!),
  };
}

/**
 * Applies a batch of entries in ONE transaction, and in that same transaction moves each shard's
 * offset to the batch's last entry (exactly once by offset: an entry at or below the offset is
 * never read again), records the rejected entries for their dead letters (ingest_rejects), and
 * the producers' event ids (ingest_applied: a repeated eventId changes nothing).
 */
export async function applyBatch(db: Database, items: BatchItem[], offsets: Offsets): Promise<BatchOutcome> {
  const move = moves(items, offsets);
  const outcome = await db.transaction(async (raw) => {
    const tx = tracked(raw);
    const outcome: BatchOutcome = { applied: [], duplicates: [], rejected: [], effects: emptyEffects() };
    // First, so that a worker racing for the same shard waits here, then finds the offset moved.
    const { rows: moved } = await tx.query<{ shard: number }>(
      `UPDATE ingest_offsets o SET last_id = m.to_id, updated_at = now()
         FROM unnest($2::int[], $3::text[], $4::text[]) AS m(shard, from_id, to_id)
        WHERE o.stream = $1 AND o.shard = m.shard AND o.last_id = m.from_id
       RETURNING o.shard`,
      [offsets.stream, move.shards, move.from, move.to],
    );
    if (moved.length !== move.shards.length) {
      const ok = new Set(moved.map((r) => Number(r.shard)));
      throw new ShardMoved(move.shards.filter((s) => !ok.has(s)));
    }
    const entries = items.flatMap((i) => (i.entry ? [i.entry] : []));
    const eventKeys = [...new Set(entries.flatMap((e) => eventKey(e) ?? []))];
    const { rows } = eventKeys.length
      ? await tx.query<{ key: string }>('SELECT key FROM ingest_applied WHERE key = ANY($1::text[])', [eventKeys])
      : { rows: [] };
    const seen = new Set(rows.map((r) => r.key));
    const fresh: Entry[] = [];
    for (const entry of entries) {
      const ev = eventKey(entry);
      if (ev && seen.has(ev)) outcome.duplicates.push(entry.key);
      else {
        fresh.push(entry);
        if (ev) seen.add(ev);
      }
    }
    const byApplier = new Map<Applier, Entry[]>();
    for (const entry of fresh) {
      const applier = APPLIERS[entry.event.type] as Applier;
      const list = byApplier.get(applier) ?? [];
      list.push(entry);
      byApplier.set(applier, list);
    }
    const rejected: Rejection[] = items.flatMap((i) => (i.invalid !== null ? [{ key: i.key, reason: i.invalid, attempts: i.attempts }] : []));
    for (const [applier, list] of byApplier) {
      const result = await asContent(() => applier(tx, list, outcome.effects));
      rejected.push(...result.rejected);
    }
    const rejectedKeys = new Set(rejected.map((r) => r.key));
    const appliedEntries = fresh.filter((e) => !rejectedKeys.has(e.key));
    // The risk limits of the users this batch moved, in the same transaction (docs/RISK.md).
    await asContent(() => evaluateRisk(tx, riskSubjects(appliedEntries, outcome.effects), outcome.effects));
    const events = appliedEntries.flatMap((e) => eventKey(e) ?? []);
    if (events.length) await tx.query(`INSERT INTO ingest_applied (key, outcome) SELECT k, 'applied' FROM unnest($1::text[]) AS k`, [events]);
    if (rejected.length) {
      const byKey = new Map(items.map((i) => [i.key, i]));
      const list = rejected.map((r) => byKey.get(r.key)!);
      await tx.query(
        `INSERT INTO ingest_rejects (stream, shard, entry_id, reason, attempts)
         SELECT $1, * FROM unnest($2::int[], $3::text[], $4::text[], $5::int[])`,
        [offsets.stream, list.map((i) => i.shard), list.map((i) => i.id), rejected.map((r) => r.reason), rejected.map((r) => r.attempts ?? 1)],
      );
    }
    outcome.applied.push(...appliedEntries.map((e) => e.key));
    outcome.rejected.push(...rejected);
    return outcome;
  });
  move.shards.forEach((s, i) => offsets.committed.set(s, move.to[i]!));
  return outcome;
}

/**
 * applyBatch, and when the batch fails for a message's content (a constraint, an overflow, an
 * exception while handling a value: see failures.ts), finds the entries responsible by splitting
 * the batch in order-preserving halves; an entry that fails alone is committed as rejected, with
 * the reason. Infrastructure errors (connection lost, missing relation, read-only database) and
 * ShardMoved are thrown for the caller: they never dead-letter anything.
 */
export async function applyIsolating(db: Database, items: BatchItem[], offsets: Offsets): Promise<BatchOutcome> {
  try {
    return await applyBatch(db, items, offsets);
  } catch (error) {
    if (classifyFailure(error) !== 'data') throw error;
    if (items.length === 1) {
      const item = items[0]!;
      const reason =
        error instanceof ContentError ? `could not be applied: ${error.message}` : `rejected by the database: ${(error as Error).message}`;
      return applyBatch(db, [{ ...item, entry: null, invalid: reason }], offsets);
    }
    const middle = Math.ceil(items.length / 2);
    const first = await applyIsolating(db, items.slice(0, middle), offsets);
    let second: BatchOutcome;
    try {
      second = await applyIsolating(db, items.slice(middle), offsets);
    } catch (failure) {
      // The first half is committed: what it changed must still be published after the retry.
      throw failure instanceof PartialApply
        ? new PartialApply(combine(first, failure.committed), failure.cause)
        : new PartialApply(first, failure);
    }
    return combine(first, second);
  }
}

export const combine = (a: BatchOutcome, b: BatchOutcome): BatchOutcome => ({
  applied: [...a.applied, ...b.applied],
  duplicates: [...a.duplicates, ...b.duplicates],
  rejected: [...a.rejected, ...b.rejected],
  effects: {
    trades: [...a.effects.trades, ...b.effects.trades],
    candles: [...a.effects.candles, ...b.effects.candles],
    orders: [...a.effects.orders, ...b.effects.orders],
    balances: [...a.effects.balances, ...b.effects.balances],
    strategies: [...a.effects.strategies, ...b.effects.strategies],
    riskEvents: [...a.effects.riskEvents, ...b.effects.riskEvents],
    riskLimitUsers: [...a.effects.riskLimitUsers, ...b.effects.riskLimitUsers],
  },
});

/**
 * An infrastructure failure after part of a split batch committed. The rest is retried (the
 * committed part is behind the offsets now), and `committed` says what changed, to be published.
 */
export class PartialApply extends Error {
  constructor(
    readonly committed: BatchOutcome,
    override readonly cause: unknown,
  ) {
    super((cause as Error)?.message ?? String(cause), { cause });
    this.name = 'PartialApply';
    const code = (cause as { code?: unknown })?.code;
    if (code !== undefined) (this as { code?: unknown }).code = code;
  }
}
