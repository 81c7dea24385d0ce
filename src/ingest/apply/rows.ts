import type { Queryable } from '../../database/types.ts';
import { quoteIdent } from '../../database/copyText.ts';
import type { Entry, Rejection } from './types.ts';

/**
 * Set-based writes for the feed messages: one INSERT … SELECT FROM unnest(…) per batch and
 * table, never one statement per message. Tables, columns and conflict clauses come from the
 * fixed specs in feeds.ts, never from input.
 */
export interface Column<D> {
  name: string;
  /** PostgreSQL element type of the unnest array: text, numeric, timestamptz, jsonb, … */
  type: string;
  /** Cast applied after unnest, for values that travel as text (an array literal → numeric[]). */
  cast?: string;
  value: (data: D, entry: Entry) => unknown;
}

export interface Reference<D> {
  table: string;
  /** Referenced columns with their types, e.g. [['exchange', 'text'], ['symbol', 'text']]. */
  columns: [string, string][];
  /** The referenced key, or null when the message does not reference anything. */
  key: (data: D) => (string | number)[] | null;
  describe: (data: D) => string;
}

export const referenceKey = (key: (string | number)[]) => JSON.stringify(key.map(String));

/** Inserts the items in one statement; with `returning`, gives back those columns of the rows written. */
export async function insertRows<D>(
  tx: Queryable,
  table: string,
  columns: Column<D>[],
  items: { data: D; entry: Entry }[],
  conflict: string,
  returning?: string,
): Promise<Record<string, unknown>[]> {
  if (items.length === 0) return [];
  const names = columns.map((c) => quoteIdent(c.name)).join(', ');
  const arrays = columns.map((c, i) => `$${i + 1}::${c.type}[]`).join(', ');
  const aliases = columns.map((_, i) => `c${i}`).join(', ');
  const values = columns.map((c, i) => (c.cast ? `u.c${i}::${c.cast}` : `u.c${i}`)).join(', ');
  const { rows } = await tx.query<Record<string, unknown>>(
    `INSERT INTO ${quoteIdent(table)} (${names}) SELECT ${values} FROM unnest(${arrays}) AS u(${aliases}) ${conflict}${returning ? ` RETURNING ${returning}` : ''}`,
    columns.map((c) => items.map((item) => c.value(item.data, item.entry) ?? null)),
  );
  return rows;
}

/** The referenced keys that do not exist (as referenceKey strings), one query per reference and batch. */
export async function missingReferences<D>(tx: Queryable, ref: Reference<D>, items: D[]): Promise<Set<string>> {
  const keys = new Map<string, string[]>();
  for (const d of items) {
    const key = ref.key(d);
    if (key) keys.set(referenceKey(key), key.map(String));
  }
  if (keys.size === 0) return new Set();
  const cols = ref.columns.map(([name]) => quoteIdent(name));
  const { rows } = await tx.query<Record<string, unknown>>(
    `SELECT ${cols.map((c) => `k.${c}::text AS ${c}`).join(', ')}
       FROM unnest(${ref.columns.map(([, type], i) => `$${i + 1}::${type}[]`).join(', ')}) AS k(${cols.join(', ')})
      WHERE NOT EXISTS (SELECT 1 FROM ${quoteIdent(ref.table)} t WHERE ${cols.map((c) => `t.${c} = k.${c}`).join(' AND ')})`,
    ref.columns.map((_, i) => [...keys.values()].map((k) => k[i])),
  );
  return new Set(rows.map((r) => JSON.stringify(ref.columns.map(([name]) => String(r[name])))));
}

/** Tables whose keys appliers check before writing; the key column comes from this fixed map. */
const KEY_COLUMNS = { users: 'id', markets: 'symbol', strategies: 'id' } as const;

/** Which of the given keys exist in `table`; one query per batch. */
export async function existingKeys(tx: Queryable, table: keyof typeof KEY_COLUMNS, keys: Iterable<string>): Promise<Set<string>> {
  const wanted = [...new Set(keys)];
  if (wanted.length === 0) return new Set();
  const column = KEY_COLUMNS[table];
  const { rows } = await tx.query<{ k: string }>(
    `SELECT ${quoteIdent(column)} AS k FROM ${quoteIdent(table)} WHERE ${quoteIdent(column)} = ANY($1::text[])`,
    [wanted],
  );
  return new Set(rows.map((r) => r.k));
}

/**
 * Drops the entries whose references do not exist, recording each in `rejected` with the
 * reference's reason; returns the rest, in order.
 */
export async function withoutMissingReferences<E extends Entry>(
  tx: Queryable,
  refs: readonly Reference<E['event']['data']>[],
  entries: E[],
  rejected: Rejection[],
): Promise<E[]> {
  let accepted = entries;
  for (const ref of refs) {
    const missing = await missingReferences(tx, ref, accepted.map((e) => e.event.data));
    if (missing.size === 0) continue;
    accepted = accepted.filter((e) => {
      const key = ref.key(e.event.data);
      const bad = key !== null && missing.has(referenceKey(key));
      if (bad) rejected.push({ key: e.key, reason: ref.describe(e.event.data) });
      return !bad;
    });
  }
  return accepted;
}

/** `"a" = EXCLUDED."a", …`: an upsert's SET list for columns named by the code. */
export const excluded = (...columns: string[]) => columns.map((c) => `"${c}" = EXCLUDED."${c}"`).join(', ');
