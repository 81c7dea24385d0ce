import type { Queryable } from '../../database/types.ts';
import { quoteIdent } from '../../database/copyText.ts';
import type { Entry, Rejection } from './types.ts';

/**
 * Records whose identity does not include their time (a venue trade is (market, id), whenever it
 * happened) are claimed in ingest_identities before they are written, because a hypertable's
 * unique key must include the time column. A repeat with the same content is a silent
 * duplicate; a repeat with different content is a conflict that goes to the dead letters with
 * both versions.
 */
export interface Identified<E extends Entry> {
  entry: E;
  /** The identity as text; see migration 008 for each kind's layout. */
  key: string;
  at: Date;
  /**
   * Canonical content (decimals without trailing zeros, times as ISO) compared field by field;
   * computed only for the repeats that need comparing.
   */
  content: () => Record<string, string>;
  /**
   * The content as this message will be stored, where tradestore fills in what it left out (a
   * trade's fees from the schedule): a later message of the same batch is compared with it, as
   * one in a later batch is compared with the stored row. Defaults to `content`.
   */
  asStored?: () => Record<string, string>;
}

/**
 * Canonical stored content of identities already claimed, by key: the caller reads its table for
 * each claim's message (`entry`) at the time the identity was stored (`at`).
 */
export type StoredContent<E extends Entry = Entry> = (tx: Queryable, claimed: { key: string; at: Date; entry: E }[]) => Promise<Map<string, Record<string, string>>>;

/**
 * A StoredContent that reads `table`'s rows of the claimed identities: each claim's message
 * fields (`match`: table column ← message field) and the time the identity was stored at
 * (`timeColumn`). Table and column names come from the appliers' fixed specs, never from input.
 */
export function storedIn<E extends Entry, R>(spec: {
  table: string;
  match: [column: string, field: string][];
  timeColumn: string;
  /** Columns to read, as SQL over the table alias t. */
  select: string;
  content: (row: R) => Record<string, string>;
}): StoredContent<E> {
  const aliases = spec.match.map((_, i) => `c${i}`);
  const sql = `SELECT k.claim_key, ${spec.select}
     FROM unnest($1::text[], $2::timestamptz[], ${aliases.map((_, i) => `$${i + 3}::text[]`).join(', ')}) AS k(claim_key, at, ${aliases.join(', ')})
     JOIN ${quoteIdent(spec.table)} t ON t.${quoteIdent(spec.timeColumn)} = k.at
      ${spec.match.map(([column], i) => `AND t.${quoteIdent(column)} = k.c${i}`).join(' ')}`;
  return async (tx, claimed) => {
    const field = (c: (typeof claimed)[number], name: string) => (c.entry.event.data as Record<string, unknown>)[name];
    const { rows } = await tx.query<R & { claim_key: string }>(sql, [
      claimed.map((c) => c.key),
      claimed.map((c) => c.at),
      ...spec.match.map(([, name]) => claimed.map((c) => field(c, name))),
    ]);
    return new Map(rows.map((r) => [r.claim_key, spec.content(r)]));
  };
}

/** The fields a message says something about (`received`'s) whose value differs from the stored one. */
const differences = (stored: Record<string, string>, received: Record<string, string>) => Object.keys(received).filter((k) => stored[k] !== received[k]);

function conflict(what: string, stored: Record<string, string>, received: Record<string, string>, where: string): string {
  const fields = differences(stored, received);
  const pick = (c: Record<string, string>) => JSON.stringify(Object.fromEntries(fields.map((f) => [f, c[f] ?? null])));
  return `${what} conflicts with ${where} with the same id: ${fields.join(', ')} differ (stored ${pick(stored)}, received ${pick(received)})`;
}

/**
 * Claims the identities of `items` in one statement; returns the entries whose identity is new,
 * in order. Repeats with equal content are left out silently; repeats with different content
 * are added to `rejected`.
 */
export async function claimIdentities<E extends Entry>(
  tx: Queryable,
  kind: string,
  items: Identified<E>[],
  stored: StoredContent<E>,
  describe: (item: Identified<E>) => string,
  rejected: Rejection[],
): Promise<E[]> {
  const first = new Map<string, Identified<E>>();
  for (const item of items) if (!first.has(item.key)) first.set(item.key, item);
  if (first.size === 0) return [];
  const candidates = [...first.values()];
  const { rows } = await tx.query<{ key: string }>(
    `INSERT INTO ingest_identities (kind, key, occurred_at)
     SELECT $1, u.key, u.at FROM unnest($2::text[], $3::timestamptz[]) AS u(key, at)
     ON CONFLICT DO NOTHING RETURNING key`,
    // Times as ISO text, which the driver passes as they are (Date parameters it formats one by one).
    [kind, candidates.map((c) => c.key), candidates.map((c) => c.at.toISOString())],
  );
  const fresh = new Set(rows.map((r) => r.key));
  const repeats = candidates.filter((c) => !fresh.has(c.key));
  let contents = new Map<string, Record<string, string>>();
  if (repeats.length) {
    const { rows: claimed } = await tx.query<{ key: string; occurred_at: Date }>(
      'SELECT key, occurred_at FROM ingest_identities WHERE kind = $1 AND key = ANY($2::text[])',
      [kind, repeats.map((r) => r.key)],
    );
    const at = new Map(claimed.map((c) => [c.key, c.occurred_at]));
    contents = await stored(tx, repeats.filter((r) => at.has(r.key)).map((r) => ({ key: r.key, at: at.get(r.key)!, entry: r.entry })));
  }
  const accepted: E[] = [];
  for (const item of items) {
    // A new identity is written by its first message; every other message is compared with
    // what is (or is about to be) stored.
    if (fresh.has(item.key) && first.get(item.key) === item) {
      accepted.push(item.entry);
      continue;
    }
    const earlier = first.get(item.key)!;
    const [before, where] = fresh.has(item.key) ? [(earlier.asStored ?? earlier.content)(), 'an earlier message of the same batch'] : [contents.get(item.key), 'the stored one'];
    // An identity whose row is gone (removed by retention) is not written again.
    if (!before) continue;
    const received = item.content();
    if (differences(before, received).length) rejected.push({ key: item.entry.key, reason: conflict(describe(item), before, received, where) });
  }
  return accepted;
}
