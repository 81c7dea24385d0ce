import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { Database, Queryable } from '../database/types.ts';
import { quoteIdent } from '../database/copyText.ts';
import { TIME_SERIES } from '../schema/lifecycle.ts';
import { BackupError, rotate, stampOf } from './backup.ts';
import { exportRows } from './export.ts';
import { backupTables, digestTables, schemaVersion, verifyAgainst, type Manifest, type TableDigest, type Verification } from './manifest.ts';

/**
 * Seed 004's time-series backups: the rows of the time-series tables (lifecycle.ts TIME_SERIES)
 * from `since` on, one CSV file per table in a directory, with a manifest of each table's rows and
 * checksum over the same window, all read in one snapshot. Kept apart from full backups, with
 * their own rotation. A restore replaces the window's rows of each table and verifies them.
 */
export interface TimeSeriesOptions {
  outDir: string;
  since: Date;
  keep?: number;
  progress?: (line: string) => void;
}

const window = (table: string, since: Date) => `${quoteIdent(TIME_SERIES[table]!)} >= '${since.toISOString()}'::timestamptz`;

/** Runs `fn` in one snapshot: a repeatable-read transaction on a server; the embedded database's one transaction. */
async function inSnapshot<T>(db: Database, fn: (q: Queryable & Pick<Database, 'backend'>) => Promise<T>): Promise<T> {
  return db.transaction(async (tx) => {
    if (db.backend === 'postgres') await tx.query('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY');
    const q = {
      backend: db.backend,
      query: tx.query.bind(tx),
      exec: tx.exec.bind(tx),
      copyFrom: tx.copyFrom.bind(tx),
      copyTo: tx.copyTo.bind(tx),
      copyIn: tx.copyIn.bind(tx),
    } as Queryable & Pick<Database, 'backend'>;
    return fn(q);
  });
}

/** A table's columns that can be loaded (generated columns are computed again on restore). */
async function loadableColumns(q: Pick<Queryable, 'query'>, table: string): Promise<string[]> {
  const { rows } = await q.query<{ name: string }>(
    `SELECT a.attname AS name FROM pg_attribute a
      WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = '' ORDER BY a.attnum`,
    [`public.${quoteIdent(table)}`],
  );
  return rows.map((r) => r.name);
}

/** The digest of a table's rows in the window. */
const windowDigest = async (q: Pick<Queryable, 'query'>, table: string, since: Date): Promise<TableDigest> =>
  (await digestTables(q, [table], { where: (t) => window(t, since) }))[0]!;

export async function backupTimeSeries(db: Database, options: TimeSeriesOptions): Promise<{ archive: string; manifest: Manifest }> {
  const at = new Date();
  const name = `tradestore-ts-${stampOf(at)}`;
  const archive = join(options.outDir, name);
  const partial = `${archive}.partial`;
  await mkdir(partial, { recursive: true });
  try {
    const { digests, bytes } = await inSnapshot(db, async (q) => {
      const present = new Set(await backupTables(q));
      const digests: TableDigest[] = [];
      let bytes = 0;
      for (const table of Object.keys(TIME_SERIES).filter((t) => present.has(t))) {
        const columns = await loadableColumns(q, table);
        const file = createWriteStream(join(partial, `${table}.csv`));
        await once(file, 'open');
        const done = await exportRows(q, { what: table, from: options.since, format: 'csv', columns }, async (chunk) => {
          if (!file.write(chunk)) await once(file, 'drain');
        });
        file.end();
        await once(file, 'finish');
        bytes += done.bytes;
        digests.push(await windowDigest(q, table, options.since));
        options.progress?.(`backup: ${table}: ${done.rows} rows since ${options.since.toISOString()}`);
      }
      return { digests, bytes };
    });
    const manifest: Manifest = {
      format: 'tradestore-backup/1',
      kind: 'timeseries',
      at: at.toISOString(),
      since: options.since.toISOString(),
      archive: name,
      archiveBytes: bytes,
      schemaVersion: await schemaVersion(db),
      serverVersion: db.capabilities.serverVersion,
      timescaledb: db.capabilities.timescaledb,
      tables: digests,
    };
    await rename(partial, archive);
    await writeFile(`${archive}.manifest.json`, JSON.stringify(manifest, null, 2) + '\n');
    if (options.keep) await rotate(options.outDir, options.keep, TIME_SERIES_BACKUP);
    return { archive, manifest };
  } catch (error) {
    await rm(partial, { recursive: true, force: true });
    throw error;
  }
}

/** Time-series backups' directory names. */
const TIME_SERIES_BACKUP = /^tradestore-ts-\d{8}T\d{9}Z$/;

/**
 * Moves each sequence that numbers a column of `table` (identity or serial) past the column's
 * largest value: rows loaded with their numbers must not be numbered again by the next insert.
 */
async function advanceSequences(q: Pick<Queryable, 'query'>, table: string): Promise<void> {
  const relation = `public.${quoteIdent(table)}`;
  const { rows } = await q.query<{ column: string; sequence: string }>(
    `SELECT a.attname AS column, pg_get_serial_sequence($1, a.attname) AS sequence FROM pg_attribute a
      WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped AND pg_get_serial_sequence($1, a.attname) IS NOT NULL`,
    [relation],
  );
  for (const r of rows) {
    await q.query(
      `SELECT setval($1, greatest((SELECT max(${quoteIdent(r.column)}) FROM ${relation}), (SELECT last_value FROM ${r.sequence})), true)
        WHERE (SELECT max(${quoteIdent(r.column)}) FROM ${relation}) IS NOT NULL`,
      [r.sequence],
    );
  }
}

/** A time-series archive's manifest, checked against its files (their total size). */
export async function readTimeSeriesManifest(archive: string, manifest: Manifest): Promise<void> {
  let total = 0;
  for (const t of manifest.tables) {
    const size = await stat(join(archive, `${t.name}.csv`)).then((s) => s.size, () => null);
    if (size === null) throw new BackupError(`${basename(archive)} has no ${t.name}.csv: the archive is incomplete`);
    total += size;
  }
  if (total !== manifest.archiveBytes) throw new BackupError(`${basename(archive)} holds ${total} bytes, its manifest says ${manifest.archiveBytes}: the archive is truncated or corrupted`);
}

/**
 * Restores a time-series archive into a database with the same schema version: each table's rows
 * from `since` on are replaced by the archive's (refused while the window holds rows, unless
 * `force`), in one transaction; then each table's window is verified against the manifest.
 */
export async function restoreTimeSeries(db: Database, archive: string, manifest: Manifest, options: { force?: boolean; progress?: (line: string) => void } = {}): Promise<Verification[]> {
  await readTimeSeriesManifest(archive, manifest);
  const since = new Date(manifest.since!);
  const version = await schemaVersion(db);
  if (version !== manifest.schemaVersion) throw new BackupError(`the archive is of schema version ${manifest.schemaVersion}, the database of ${version}: migrate it to the same version first`);
  await db.transaction(async (tx) => {
    const present = new Set(await backupTables(tx));
    const missing = manifest.tables.filter((t) => !present.has(t.name));
    if (missing.length) throw new BackupError(`the database has no table ${missing.map((t) => t.name).join(', ')}`);
    if (!options.force) {
      const filled = [];
      // The audit trail always holds rows of its own (the seed's, every restore's record): its
      // window is replaced with the archive's like every table's, without asking for --force.
      for (const t of manifest.tables) if (t.name !== 'audit_log' && (await windowDigest(tx, t.name, since)).rows > 0) filled.push(t.name);
      if (filled.length) throw new BackupError(`${filled.join(', ')} already hold rows since ${manifest.since}: pass --force to replace them`);
    }
    for (const t of manifest.tables) {
      const data = await readFile(join(archive, `${t.name}.csv`));
      const header = data.subarray(0, data.indexOf(10)).toString('utf8').trim();
      const columns = header ? header.split(',') : [];
      await tx.query(`DELETE FROM public.${quoteIdent(t.name)} WHERE ${window(t.name, since)}`);
      const loaded = columns.length ? await tx.copyIn(t.name, columns, 'FORMAT csv, HEADER true', data) : 0;
      await advanceSequences(tx, t.name);
      options.progress?.(`restore: ${t.name}: ${loaded} rows`);
    }
  });
  return verifyAgainst(db, manifest, undefined, (t) => window(t, since));
}
