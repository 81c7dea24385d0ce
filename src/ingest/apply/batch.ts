import type { Database, Queryable } from '../../database/types.ts';
import type { EventType } from '../events/catalogue.ts';
import { applyBalances } from './balances.ts';
import { ROW_SPECS, rowApplier, type RowSpec } from './feeds.ts';
import { applyOrders } from './orders.ts';
import { applyPositions } from './positions.ts';
import { applyStrategyTrades } from './strategyTrades.ts';
import { applyTrades } from './trades.ts';
import { emptyEffects, type ApplyResult, type Effects, type Entry, type Rejection } from './types.ts';
import { asContent, classifyFailure, ContentError, tracked } from '../failures.ts';

export interface BatchOutcome {
  /** Keys applied by this batch. */
  applied: string[];
  /** Keys that had been applied before (a redelivery, or a repeated producer eventId): nothing changed. */
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

/**
 * Applies a batch of entries in ONE transaction, and records in that same transaction which
 * entries it applied or rejected (ingest_applied). A batch that is replayed after a crash, or an
 * entry delivered twice, finds its keys there and changes nothing.
 */
export async function applyBatch(db: Database, entries: Entry[]): Promise<BatchOutcome> {
  return db.transaction(async (raw) => {
    const tx = tracked(raw);
    const outcome: BatchOutcome = { applied: [], duplicates: [], rejected: [], effects: emptyEffects() };
    // First deliveries cannot have been applied yet; only redeliveries and producer eventIds are looked up.
    const keys = [...new Set(entries.flatMap((e) => [e.redelivered === false ? [] : e.key, eventKey(e) ?? []].flat()))];
    const { rows } = keys.length
      ? await tx.query<{ key: string; outcome: 'applied' | 'rejected'; reason: string | null }>(
          'SELECT key, outcome, reason FROM ingest_applied WHERE key = ANY($1::text[])',
          [keys],
        )
      : { rows: [] };
    const seen = new Map(rows.map((r) => [r.key, r]));
    const fresh: Entry[] = [];
    const batchEvents = new Set<string>();
    for (const entry of entries) {
      const before = seen.get(entry.key);
      const ev = eventKey(entry);
      if (before?.outcome === 'rejected') outcome.rejected.push({ key: entry.key, reason: before.reason ?? 'rejected' });
      else if (before || (ev && (seen.has(ev) || batchEvents.has(ev)))) outcome.duplicates.push(entry.key);
      else {
        fresh.push(entry);
        if (ev) batchEvents.add(ev);
      }
    }
    const byApplier = new Map<Applier, Entry[]>();
    for (const entry of fresh) {
      const applier = APPLIERS[entry.event.type] as Applier;
      const list = byApplier.get(applier) ?? [];
      list.push(entry);
      byApplier.set(applier, list);
    }
    const newlyRejected: Rejection[] = [];
    for (const [applier, list] of byApplier) {
      const result = await asContent(() => applier(tx, list, outcome.effects));
      newlyRejected.push(...result.rejected);
    }
    const rejectedKeys = new Set(newlyRejected.map((r) => r.key));
    const appliedEntries = fresh.filter((e) => !rejectedKeys.has(e.key));
    const ledger: [string, 'applied' | 'rejected', string | null][] = [
      ...appliedEntries.flatMap((e): [string, 'applied', null][] => {
        const ev = eventKey(e);
        return ev ? [[e.key, 'applied', null], [ev, 'applied', null]] : [[e.key, 'applied', null]];
      }),
      ...newlyRejected.map((r): [string, 'rejected', string] => [r.key, 'rejected', r.reason]),
    ];
    if (ledger.length) {
      await tx.query(
        `INSERT INTO ingest_applied (key, outcome, reason)
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[])`,
        [ledger.map((l) => l[0]), ledger.map((l) => l[1]), ledger.map((l) => l[2])],
      );
    }
    outcome.applied.push(...appliedEntries.map((e) => e.key));
    outcome.rejected.push(...newlyRejected);
    return outcome;
  });
}

/**
 * applyBatch, and when the batch fails for a message's content (a constraint, an overflow, an
 * exception while handling a value: see failures.ts), finds the entries responsible by splitting
 * the batch in order-preserving halves; each entry that fails alone is recorded as rejected with
 * the reason. Infrastructure errors (connection lost, missing relation, read-only database) are
 * thrown for the caller to retry: they never dead-letter anything.
 */
export async function applyIsolating(db: Database, entries: Entry[]): Promise<BatchOutcome> {
  try {
    return await applyBatch(db, entries);
  } catch (error) {
    if (classifyFailure(error) !== 'data') throw error;
    if (entries.length === 1) {
      const entry = entries[0]!;
      const reason =
        error instanceof ContentError ? `could not be applied: ${error.message}` : `rejected by the database: ${(error as Error).message}`;
      const { rows } = await db.query<{ outcome: string; reason: string | null }>(
        `WITH added AS (
           INSERT INTO ingest_applied (key, outcome, reason) VALUES ($1, 'rejected', $2) ON CONFLICT (key) DO NOTHING
           RETURNING outcome, reason)
         SELECT outcome, reason FROM added UNION ALL SELECT outcome, reason FROM ingest_applied WHERE key = $1 LIMIT 1`,
        [entry.key, reason],
      );
      // Another worker applied this entry meanwhile (and the failure was its row in the way): a duplicate.
      if (rows[0]?.outcome === 'applied') return { applied: [], duplicates: [entry.key], rejected: [], effects: emptyEffects() };
      return { applied: [], duplicates: [], rejected: [{ key: entry.key, reason: rows[0]?.reason ?? reason }], effects: emptyEffects() };
    }
    const middle = Math.ceil(entries.length / 2);
    const first = await applyIsolating(db, entries.slice(0, middle));
    let second: BatchOutcome;
    try {
      second = await applyIsolating(db, entries.slice(middle));
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
  },
});

/**
 * An infrastructure failure after part of a split batch committed. The batch is retried (its
 * committed entries are then duplicates), and `committed` says what changed, to be published.
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
