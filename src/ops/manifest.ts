import type { Queryable } from '../database/types.ts';
import { LEDGER_TABLE } from '../schema/migrator.ts';

/** What a backup holds, written beside its archive and checked after a restore. */
export interface Manifest {
  format: 'tradestore-backup/1';
  /** A server's pg_dump archive, an embedded data directory, or a time-series backup (CSV files of rows since `since`). */
  kind: 'pg_dump' | 'embedded' | 'timeseries';
  /** When the snapshot was taken. */
  at: string;
  /** A time-series backup's window: rows with time from here on. */
  since?: string;
  /** The archive's file name (beside the manifest). */
  archive: string;
  archiveBytes: number;
  schemaVersion: number;
  serverVersion: string;
  timescaledb: string | null;
  /** Tables in the archive, each with its row count and a checksum of its contents at the snapshot. */
  tables: TableDigest[];
}

export interface TableDigest {
  name: string;
  rows: number;
  /** Sum of a 64-bit hash of every row's text: independent of row order, changed by any value. */
  checksum: string;
}

/**
 * The tables of the schema a backup covers: every table and materialized view of `public` that is
 * not a partition of another (a partitioned table and a hypertable are read whole, chunks included).
 */
export async function backupTables(q: Pick<Queryable, 'query'>, only?: readonly string[]): Promise<string[]> {
  const { rows } = await q.query<{ name: string }>(
    `SELECT c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition ORDER BY 1`,
  );
  const all = rows.map((r) => r.name);
  if (!only) return all;
  const unknown = only.filter((t) => !all.includes(t));
  if (unknown.length) throw new Error(`no table ${unknown.join(', ')} in the database (tables: ${all.join(', ')})`);
  return [...only];
}

export interface DigestOptions {
  /** Only the rows this condition (SQL from the code) selects in each table, e.g. a time-series backup's window. */
  where?: (table: string) => string;
  /** Called after each table. */
  progress?: (digest: TableDigest) => void;
}

/** Row count and checksum of each table (of its rows `where` selects), read in the caller's snapshot. */
export async function digestTables(q: Pick<Queryable, 'query'>, tables: readonly string[], options: DigestOptions = {}): Promise<TableDigest[]> {
  const digests: TableDigest[] = [];
  for (const name of tables) {
    const { rows } = await q.query<{ n: string; sum: string }>(
      `SELECT count(*)::text AS n, coalesce(sum(hashtextextended(t::text, 0)::numeric), 0)::text AS sum FROM public.${ident(name)} t
        ${options.where ? `WHERE ${options.where(name)}` : ''}`,
    );
    const digest = { name, rows: Number(rows[0]!.n), checksum: rows[0]!.sum };
    digests.push(digest);
    options.progress?.(digest);
  }
  return digests;
}

export async function schemaVersion(q: Pick<Queryable, 'query'>): Promise<number> {
  const { rows } = await q.query<{ v: string | null }>(
    `SELECT CASE WHEN to_regclass('public.${LEDGER_TABLE}') IS NULL THEN NULL ELSE (SELECT max(version)::text FROM public.${LEDGER_TABLE}) END AS v`,
  );
  return Number(rows[0]?.v ?? 0);
}

export interface Verification {
  table: string;
  expected: { rows: number; checksum: string };
  found: { rows: number; checksum: string } | null;
  ok: boolean;
}

/** Each table of the manifest against the database: same rows (those `where` selects), same checksum. */
export async function verifyAgainst(q: Pick<Queryable, 'query'>, manifest: Manifest, tables?: readonly string[], where?: DigestOptions['where']): Promise<Verification[]> {
  const chosen = manifest.tables.filter((t) => !tables || tables.includes(t.name));
  const present = new Set(await backupTables(q));
  const results: Verification[] = [];
  for (const t of chosen) {
    const [found] = present.has(t.name) ? await digestTables(q, [t.name], { where }) : [undefined];
    const f = found ? { rows: found.rows, checksum: found.checksum } : null;
    results.push({ table: t.name, expected: { rows: t.rows, checksum: t.checksum }, found: f, ok: f !== null && f.rows === t.rows && f.checksum === t.checksum });
  }
  return results;
}

/** A table name as the catalog gives it, quoted. */
function ident(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}
