import { basename } from 'node:path';
import { audit } from '../security/audit.ts';
import { parseArgs } from 'node:util';
import type { Config } from '../config.ts';
import { EmbeddedDatabase } from '../database/embedded.ts';
import { backupEmbedded, BackupError, backupServer, readManifest, restoreEmbedded, restoreServer } from '../ops/backup.ts';
import { DirectoryLockedError } from '../database/lockFile.ts';
import type { Verification } from '../ops/manifest.ts';
import { dateOption, intOption, UsageError } from './usage.ts';
import { backupTimeSeries, restoreTimeSeries } from '../ops/timeseries.ts';
import { openDatabase } from '../database/open.ts';

const list = (value: string | undefined) => (value === undefined ? undefined : value.split(',').map((t) => t.trim()).filter(Boolean));
const tableList = (value: string | undefined) => {
  const tables = list(value);
  if (tables && (!tables.length || tables.some((t) => !/^[a-z_][a-z0-9_]{0,62}$/.test(t)))) throw new UsageError('--tables must be table names separated by commas');
  return tables;
};

/**
 * tradestore backup [--out DIR] [--tables a,b] [--keep N]: a server's pg_dump archive, or the
 * embedded database's data directory, with a manifest of every table's rows and checksum.
 */
/**
 * The restore's audit row, in the database restored into (written after the restore: what was
 * there before is gone, its trail with it, unless the archive held it).
 */
async function recordRestore(into: string, detail: Record<string, unknown>): Promise<void> {
  const db = await openTarget(into);
  try {
    await audit(db, { action: 'database.restore', resourceType: 'database', resourceId: null, userId: null, new: detail });
  } catch (error) {
    // An archive older than the audit trail's columns (migration 019): recorded nowhere until migrated.
    if (!['42703', '42P01'].includes((error as { code?: string }).code ?? '')) throw error;
    process.stderr.write(`restore: not recorded in the audit trail: the restored schema (version ${String(detail.schemaVersion)}) predates it; run tradestore migrate up\n`);
  } finally {
    await db.close();
  }
}

/** The database a restore goes into: a server's URL, or an embedded database's directory. */
const openTarget = async (into: string) =>
  /^postgres(ql)?:/.test(into) ? openDatabase({ databaseUrl: into, dataDir: '' }) : EmbeddedDatabase.open({ dataDir: into });

export async function backupCommand(config: Config, args: string[], out: (line: string) => void): Promise<void> {
  const { values } = parseArgs({ args, strict: true, options: { out: { type: 'string' }, tables: { type: 'string' }, keep: { type: 'string' }, since: { type: 'string' } } });
  const tables = tableList(values.tables);
  const since = dateOption('since', values.since);
  if (since && tables) throw new UsageError('--since backs up every time-series table: it does not take --tables');
  const keep = intOption('keep', values.keep) ?? config.backup.keep;
  if (keep < 1) throw new UsageError('--keep must be at least 1');
  const options = { outDir: values.out ?? config.backup.dir, tables, keep, progress: (line: string) => process.stderr.write(`${line}\n`) };
  let result;
  if (config.databaseUrl && since) {
    const db = await openDatabase(config);
    try {
      result = await backupTimeSeries(db, { ...options, since });
    } finally {
      await db.close();
    }
  } else if (config.databaseUrl) result = await backupServer(config.databaseUrl, options);
  else {
    let db: EmbeddedDatabase;
    try {
      db = await EmbeddedDatabase.open({ dataDir: config.dataDir });
    } catch (error) {
      // A running service holds the directory: it takes the backup itself, in its own process.
      if (error instanceof DirectoryLockedError || (error as Error).cause instanceof DirectoryLockedError) {
        throw new BackupError(`${(error as Error).message}\n  a running service holds the embedded database: ask it with POST /v1/admin/backup (an API key with the admin scope), or stop it first`);
      }
      throw error;
    }
    try {
      result = since ? await backupTimeSeries(db, { ...options, since }) : await backupEmbedded(db, options);
    } finally {
      await db.close();
    }
  }
  const rows = result.manifest.tables.reduce((n, t) => n + t.rows, 0);
  out(`backup: ${result.archive} (${(result.manifest.archiveBytes / 1024 / 1024).toFixed(1)} MB, ${result.manifest.tables.length} tables, ${rows} rows; manifest beside it)`);
}

/**
 * tradestore restore ARCHIVE [--into DATABASE_URL|DIR] [--tables a,b] [--force]: restores, then
 * checks every restored table's rows and checksum against the manifest; exits 1 when any differs.
 */
export async function restoreCommand(config: Config, args: string[], out: (line: string) => void): Promise<void> {
  const { values, positionals } = parseArgs({ args, strict: true, allowPositionals: true, options: { into: { type: 'string' }, tables: { type: 'string' }, force: { type: 'boolean' } } });
  if (positionals.length !== 1) throw new UsageError('restore needs the archive to restore');
  const tables = tableList(values.tables);
  const archive = positionals[0]!;
  const manifest = await readManifest(archive);
  const options = { tables, force: values.force, progress: (line: string) => process.stderr.write(`${line}\n`) };
  let results: Verification[];
  let into: string;
  if (manifest.kind === 'timeseries') {
    into = values.into ?? config.databaseUrl ?? config.dataDir;
    if (tables) throw new UsageError('a time-series backup restores every table it holds: it does not take --tables');
    const db = await openTarget(into);
    try {
      results = await restoreTimeSeries(db, archive, manifest, options);
    } finally {
      await db.close();
    }
  } else if (manifest.kind === 'pg_dump') {
    const url = values.into ?? config.databaseUrl;
    if (!url || !/^postgres(ql)?:/.test(url)) throw new UsageError('restore of a server backup needs --into postgres://… (or DATABASE_URL)');
    into = url;
    results = await restoreServer(archive, into, options);
  } else {
    into = values.into ?? config.dataDir;
    if (/^postgres(ql)?:/.test(into)) throw new UsageError('an embedded backup restores into a directory (--into DIR)');
    results = await restoreEmbedded(archive, into, options);
  }
  for (const r of results) {
    out(r.ok ? `verified ${r.table}: ${r.found!.rows} rows, checksum matches` : `MISMATCH ${r.table}: expected ${r.expected.rows} rows (${r.expected.checksum}), found ${r.found ? `${r.found.rows} rows (${r.found.checksum})` : 'no table'}`);
  }
  const failed = results.filter((r) => !r.ok);
  await recordRestore(into, {
    archive: basename(archive), kind: manifest.kind, takenAt: manifest.at, schemaVersion: manifest.schemaVersion, tables: results.length, mismatched: failed.map((r) => r.table),
  });
  if (failed.length) throw new Error(`restore verification failed for ${failed.length} of ${results.length} tables: ${failed.map((r) => r.table).join(', ')}`);
  out(`restore: ${results.length} tables restored and verified from ${archive} (taken ${manifest.at}, schema version ${manifest.schemaVersion})`);
}
