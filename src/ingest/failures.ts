import type { Queryable } from '../database/types.ts';

/**
 * Why applying a batch failed decides what happens to it:
 * - 'data': something in one message's content. The batch is split until the message is found,
 *   and it goes to the dead letters with the reason; the rest is applied.
 * - 'infrastructure': the database or the connection. Nothing is dead-lettered; the whole batch
 *   is retried with backoff until it goes through.
 *
 * Every statement the appliers run is fixed SQL with bind parameters, so a message's content can
 * only cause errors of the SQLSTATE classes below: a value that does not fit (22), a constraint
 * (23), a trigger that refuses it (P0), or a value too large for an index (54000). Every other
 * SQLSTATE (42 missing relation or permission, 25006 read-only, 08 connection, 53 resources,
 * 57 shutdown, 40 deadlock, XX internal, …) says nothing about the message and is retried, and so is
 * an error without a SQLSTATE from the database driver (a lost connection). An exception thrown by
 * tradestore's own code while it handles one message (a decimal library refusing a value) is
 * about that message's content.
 */
export type FailureKind = 'data' | 'infrastructure';

const DATA_CLASSES = new Set(['22', '23', 'P0']);
const DATA_CODES = new Set(['54000']);

/** Wraps an exception thrown by tradestore's own code while it applied messages (not by the database). */
export class ContentError extends Error {
  constructor(cause: unknown) {
    const e = cause as Error;
    super(`${e?.name ?? 'Error'}: ${String(e?.message ?? cause)}`, { cause });
    this.name = 'ContentError';
  }
}

const fromDatabase = new WeakSet<object>();

function mark(error: unknown): unknown {
  if (typeof error === 'object' && error !== null) fromDatabase.add(error);
  return error;
}

/** `q`, with every error it throws remembered as coming from the database. */
export function tracked(q: Queryable): Queryable {
  return {
    query: <R>(sql: string, params?: readonly unknown[]) => q.query<R>(sql, params).catch((e: unknown) => Promise.reject(mark(e))),
    exec: (sql) => q.exec(sql).catch((e) => Promise.reject(mark(e))),
    copyFrom: (table, columns, rows) => q.copyFrom(table, columns, rows).catch((e) => Promise.reject(mark(e))),
    copyTo: (query, options, write) => q.copyTo(query, options, write).catch((e) => Promise.reject(mark(e))),
    copyIn: (table, columns, options, data) => q.copyIn(table, columns, options, data).catch((e) => Promise.reject(mark(e))),
  };
}

/** Runs one applier's work: an exception that did not come from the database becomes a ContentError. */
export async function asContent<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    if (typeof error === 'object' && error !== null && fromDatabase.has(error)) throw error;
    throw new ContentError(error);
  }
}

export function sqlState(error: unknown): string | null {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : null;
}

/**
 * Unique keys that only another worker's commit can violate: the exactly-once ledger. When two
 * workers applied the same entry at once (a claim while the first still worked on it), the second
 * commit fails on it; that is not the message's fault, and the retry finds the entry applied.
 */
const RACE_CONSTRAINTS = new Set(['ingest_applied_pkey']);

/**
 * SQLSTATE classes that are certainly about the server, the connection or the schema, never about
 * one message: connection (08), transaction state (25: read-only), authorization (28), rollback
 * (40: deadlock, serialization), syntax or access (42: missing relation, permission), resources
 * (53), object state (55: lock not available), operator intervention (57: shutdown, cancel),
 * system (58), internal (XX). 53400 is left out: TimescaleDB raises it when one write would
 * decompress too much of an old chunk, which depends on the message.
 */
const INFRASTRUCTURE_CLASSES = new Set(['08', '25', '28', '40', '42', '53', '55', '57', '58', 'XX']);

/**
 * Whether a failure can only be the infrastructure's. Other failures classified 'infrastructure'
 * (a SQLSTATE no table here names) are retried too, but an entry that fails alone with one every
 * time while other entries go through is dead-lettered in the end (see the worker).
 */
export function certainlyInfrastructure(error: unknown): boolean {
  if (classifyFailure(error) === 'data') return false;
  const code = sqlState(error);
  // No SQLSTATE: the driver lost the connection. A 23505 classified 'infrastructure' is the ledger race.
  if (code === null || code === '23505') return true;
  return code !== '53400' && INFRASTRUCTURE_CLASSES.has(code.slice(0, 2));
}

export function classifyFailure(error: unknown): FailureKind {
  if (error instanceof ContentError) return 'data';
  const code = sqlState(error);
  if (code === '23505' && RACE_CONSTRAINTS.has(String((error as { constraint?: unknown }).constraint))) return 'infrastructure';
  if (code && (DATA_CODES.has(code) || DATA_CLASSES.has(code.slice(0, 2)))) return 'data';
  return 'infrastructure';
}
