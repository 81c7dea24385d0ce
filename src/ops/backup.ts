import { execFile, spawn } from 'node:child_process';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { availableParallelism } from 'node:os';
import { promisify } from 'node:util';
import pg from 'pg';
import type { Database, Queryable } from '../database/types.ts';
import { EmbeddedDatabase } from '../database/embedded.ts';
import { backupTables, digestTables, schemaVersion, verifyAgainst, type Manifest, type TableDigest, type Verification } from './manifest.ts';

const run = promisify(execFile);

/** A client of one connection, as the manifest functions read it. */
const querying = (client: pg.Client): Pick<Queryable, 'query'> => ({
  query: async <R>(sql: string, params?: readonly unknown[]) => {
    const r = await client.query(sql, params as unknown[]);
    return { rows: r.rows as R[], rowCount: r.rowCount ?? r.rows.length };
  },
});

export class BackupError extends Error {
  override readonly name = 'BackupError';
}

/** The machine's pg_dump or pg_restore, checked against the server: missing or older is a clear error. */
async function clientTool(tool: 'pg_dump' | 'pg_restore', serverMajor: number): Promise<string> {
  let version: string;
  try {
    version = (await run(tool, ['--version'])).stdout;
  } catch {
    throw new BackupError(`${tool} is not installed: install the PostgreSQL client of the server's version (e.g. apt-get install postgresql-client-${serverMajor})`);
  }
  const major = Number(/(\d+)(?:\.\d+)?/.exec(version.replace(/^[^\d]*/, ''))?.[1] ?? 0);
  if (major < serverMajor) throw new BackupError(`${tool} ${major} is older than the server (${serverMajor}): install postgresql-client-${serverMajor} or newer`);
  return tool;
}

export interface BackupOptions {
  outDir: string;
  /** Only these tables (plain tables; a hypertable's chunks are not its table to pg_dump). */
  tables?: string[];
  /** Full backups kept in outDir: older ones are removed after a successful backup (seed 004's rotation). */
  keep?: number;
  progress?: (line: string) => void;
}

/**
 * A server's backup: a `pg_dump` custom-format archive taken in one snapshot, and beside it a
 * manifest with the schema version, the server's and TimescaleDB's versions, and every table's
 * row count and checksum read in that same snapshot. Written as .partial and renamed when whole.
 */
export async function backupServer(url: string, options: BackupOptions): Promise<{ archive: string; manifest: Manifest }> {
  const client = new pg.Client({ connectionString: url, application_name: 'tradestore backup' });
  await client.connect();
  const q = querying(client);
  try {
    const { rows: server } = await q.query<{ num: string; version: string; tsdb: string | null }>(
      `SELECT current_setting('server_version_num') AS num, current_setting('server_version') AS version,
              (SELECT extversion FROM pg_extension WHERE extname = 'timescaledb') AS tsdb`,
    );
    const serverMajor = Math.floor(Number(server[0]!.num) / 10000);
    const pgDump = await clientTool('pg_dump', serverMajor);
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    const { rows: snap } = await q.query<{ snapshot: string; at: Date }>('SELECT pg_export_snapshot() AS snapshot, now() AS at');
    const tables = await backupTables(q, options.tables);
    if (options.tables && server[0]!.tsdb) {
      const { rows: hyper } = await q.query<{ name: string }>(`SELECT hypertable_name AS name FROM timescaledb_information.hypertables WHERE hypertable_name = ANY($1)`, [tables]);
      if (hyper.length) throw new BackupError(`${hyper.map((h) => h.name).join(', ')}: a hypertable's rows are in its chunks, which pg_dump --table does not follow; back up the whole database`);
    }
    await mkdir(options.outDir, { recursive: true });
    const stamp = stampOf(snap[0]!.at);
    const archive = join(options.outDir, `tradestore-${stamp}.dump`);
    const partial = `${archive}.partial`;
    const args = ['--format=custom', '--compress=1', `--snapshot=${snap[0]!.snapshot}`, `--file=${partial}`, '--no-owner', ...(options.tables ? tables.map((t) => `--table=public.${t}`) : []), `--dbname=${url}`];
    // pg_dump and the manifest read the same snapshot at once: the manifest's pass costs no extra time where cores are free.
    const dumped = withProgress(pgDump, args, partial, options.progress);
    dumped.catch(() => {}); // awaited below; a failure meanwhile is not an unhandled rejection
    let digests: TableDigest[];
    try {
      digests = await digestTables(q, tables, { progress: manifestProgress(options.progress) });
    } finally {
      await dumped;
    }
    await client.query('COMMIT');
    const archiveBytes = (await stat(partial)).size;
    const manifest: Manifest = {
      format: 'tradestore-backup/1',
      kind: 'pg_dump',
      at: snap[0]!.at.toISOString(),
      archive: basename(archive),
      archiveBytes,
      schemaVersion: await schemaVersion(q),
      serverVersion: server[0]!.version,
      timescaledb: server[0]!.tsdb,
      tables: digests,
    };
    await rename(partial, archive);
    await writeFile(`${archive}.manifest.json`, JSON.stringify(manifest, null, 2) + '\n');
    if (options.keep) await rotate(options.outDir, options.keep);
    return { archive, manifest };
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    throw error;
  } finally {
    await client.end().catch(() => {});
  }
}

/** A backup of whichever database `db` is: the embedded one's directory, or a server's pg_dump (of `databaseUrl`). */
export async function backupDatabase(db: Database, databaseUrl: string | null, options: BackupOptions): Promise<{ archive: string; manifest: Manifest }> {
  if (db instanceof EmbeddedDatabase) return backupEmbedded(db, options);
  if (!databaseUrl) throw new BackupError('a server backup needs DATABASE_URL');
  return backupServer(databaseUrl, options);
}

/** Drops the database `url` names and creates it again, empty, from the server's `postgres` database. */
async function recreateDatabase(url: string): Promise<void> {
  const target = new URL(url);
  const name = decodeURIComponent(target.pathname.slice(1));
  if (!name) throw new BackupError('--into must name a database');
  const admin = new URL(url);
  admin.pathname = '/postgres';
  const client = new pg.Client({ connectionString: admin.toString(), application_name: 'tradestore restore' });
  await client.connect();
  try {
    const quoted = `"${name.replace(/"/g, '""')}"`;
    await client.query(`DROP DATABASE IF EXISTS ${quoted} WITH (FORCE)`);
    await client.query(`CREATE DATABASE ${quoted} TEMPLATE template0`);
  } catch (error) {
    throw new BackupError(`could not replace the database ${name}: ${(error as Error).message}`);
  } finally {
    await client.end().catch(() => {});
  }
}

/**
 * A client tool's arguments with the password taken out of its --dbname URL (every local user can
 * read a command line), and an environment that gives it as PGPASSWORD instead.
 */
export function toolConnection(args: string[]): { args: string[]; env: NodeJS.ProcessEnv } {
  let password: string | null = null;
  const safe = args.map((a) => {
    if (!a.startsWith('--dbname=')) return a;
    const url = new URL(a.slice('--dbname='.length));
    if (url.password) [password, url.password] = [decodeURIComponent(url.password), ''];
    return `--dbname=${url.toString()}`;
  });
  return { args: safe, env: password === null ? process.env : { ...process.env, PGPASSWORD: password } };
}

/** Runs a tool, reporting the size of the file it writes every second; its stderr becomes the error. */
async function withProgress(tool: string, args: string[], file: string, progress?: (line: string) => void): Promise<void> {
  const connection = toolConnection(args);
  const child = spawn(tool, connection.args, { stdio: ['ignore', 'ignore', 'pipe'], env: connection.env });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const timer = setInterval(() => {
    void stat(file).then((s) => progress?.(`${tool}: ${(s.size / 1024 / 1024).toFixed(1)} MB written`), () => {});
  }, 1000);
  try {
    const code = await new Promise<number | null>((resolve, reject) => child.on('error', reject).on('close', resolve));
    if (code !== 0) throw new BackupError(`${tool} failed (exit ${code}): ${stderr.trim().split('\n').slice(-3).join(' ')}`);
  } finally {
    clearInterval(timer);
  }
}

/** pg_restore's parallel jobs: loads and index builds of different tables at once, one per core (at most 4). */
const RESTORE_JOBS = Math.max(1, Math.min(4, availableParallelism()));

/** A backup's time in its file name: 20261204T221000123Z (sorts as it was taken). */
export const stampOf = (at: Date) => at.toISOString().replace(/[-:.]/g, '');

/** The progress line of each table the manifest has read. */
const manifestProgress = (progress?: (line: string) => void) => (d: TableDigest) => progress?.(`backup: manifest ${d.name}: ${d.rows} rows`);

/** Full backups' archive names (time-series backups have their own, and their own rotation). */
const FULL_BACKUP = /^tradestore-\d{8}T\d{9}Z\.(dump|tar\.gz)$/;

/** Keeps the newest `keep` backups of the directory named as `pattern` says (archive and manifest), removing the others. */
export async function rotate(dir: string, keep: number, pattern = FULL_BACKUP): Promise<void> {
  const archives = (await readdir(dir)).filter((f) => pattern.test(f)).sort();
  for (const old of archives.slice(0, Math.max(0, archives.length - keep))) {
    await rm(join(dir, old), { recursive: true, force: true });
    await rm(join(dir, `${old}.manifest.json`), { force: true });
  }
}

/** The manifest beside an archive, and the archive checked against it (its size; pg_restore can read it). */
export async function readManifest(archive: string): Promise<Manifest> {
  let manifest: Manifest;
  try {
    manifest = JSON.parse(await readFile(`${archive}.manifest.json`, 'utf8')) as Manifest;
  } catch (error) {
    throw new BackupError(`no readable manifest beside ${archive} (${archive}.manifest.json: ${(error as Error).message})`);
  }
  if (manifest.format !== 'tradestore-backup/1' || !Array.isArray(manifest.tables)) throw new BackupError(`${archive}.manifest.json is not a tradestore backup manifest`);
  if (manifest.kind === 'timeseries') return manifest;
  const size = await stat(archive).then((s) => s.size, () => null);
  if (size === null) throw new BackupError(`no archive ${archive}`);
  if (size !== manifest.archiveBytes) throw new BackupError(`${basename(archive)} is ${size} bytes, its manifest says ${manifest.archiveBytes}: the archive is truncated or corrupted`);
  return manifest;
}

export interface RestoreOptions {
  tables?: string[];
  /** Restore over a database that is not empty (whole restore: its objects are dropped first; chosen tables: emptied first). */
  force?: boolean;
  progress?: (line: string) => void;
}

/**
 * Restores a server backup into `url`: the whole archive into an empty database, or chosen tables
 * into a database that has the schema; then every restored table's row count and checksum against
 * the manifest. Returns the verification of each table (the caller fails when any is not ok).
 */
export async function restoreServer(archive: string, url: string, options: RestoreOptions = {}): Promise<Verification[]> {
  const manifest = await readManifest(archive);
  if (manifest.kind !== 'pg_dump') throw new BackupError(`${basename(archive)} is an embedded database's archive: restore it with --into a directory`);
  const connect = async () => {
    const c = new pg.Client({ connectionString: url, application_name: 'tradestore restore' });
    await c.connect();
    return c;
  };
  let client = await connect();
  let q = querying(client);
  try {
    const { rows: server } = await q.query<{ num: string; tsdb: string | null; available: string | null }>(
      `SELECT current_setting('server_version_num') AS num, (SELECT extversion FROM pg_extension WHERE extname = 'timescaledb') AS tsdb,
              (SELECT default_version FROM pg_available_extensions WHERE name = 'timescaledb') AS available`,
    );
    const pgRestore = await clientTool('pg_restore', Math.floor(Number(server[0]!.num) / 10000));
    try {
      await run(pgRestore, ['--list', archive], { maxBuffer: 64 * 1024 * 1024 });
    } catch (error) {
      throw new BackupError(`${basename(archive)} is not a readable pg_dump archive: ${String((error as { stderr?: string }).stderr ?? error).trim()}`);
    }
    const existing = await backupTables(q);
    const chosen = options.tables;
    // The target's TimescaleDB, as installed in it (none once it is made again).
    let installed = server[0]!.tsdb;
    // Checked before anything changes: TimescaleDB restores only into the version the archive was taken with.
    const replacing = !chosen && existing.length > 0 && options.force;
    if (manifest.timescaledb !== null && installed && installed !== manifest.timescaledb && !replacing) {
      throw new BackupError(`the archive was taken with TimescaleDB ${manifest.timescaledb}; the target has ${installed}: restore into ${manifest.timescaledb}, then ALTER EXTENSION timescaledb UPDATE`);
    }
    const args = ['--no-owner', '--exit-on-error', `--dbname=${url}`, `--jobs=${RESTORE_JOBS}`];
    if (chosen) {
      const missingInArchive = chosen.filter((t) => !manifest.tables.some((m) => m.name === t));
      if (missingInArchive.length) throw new BackupError(`the archive has no table ${missingInArchive.join(', ')}`);
      const missing = chosen.filter((t) => !existing.includes(t));
      if (missing.length) throw new BackupError(`the target has no table ${missing.join(', ')}: migrate it first (tradestore migrate up), or restore the whole archive`);
      // A hypertable's rows are in its chunks, which a table's data entry of the archive does not hold.
      if (manifest.timescaledb !== null) {
        const { rows: hyper } = installed
          ? await q.query<{ name: string }>(`SELECT hypertable_name AS name FROM timescaledb_information.hypertables WHERE hypertable_name = ANY($1)`, [chosen])
          : { rows: chosen.map((name) => ({ name })) };
        if (hyper.length) throw new BackupError(`${hyper.map((h) => h.name).join(', ')}: in a TimescaleDB archive a hypertable's rows are in its chunks, which a chosen-table restore cannot reach; restore the whole archive into an empty database`);
      }
      const filled = (await digestTables(q, chosen)).filter((d) => d.rows > 0);
      if (filled.length && !options.force) throw new BackupError(`${filled.map((d) => `${d.name} (${d.rows} rows)`).join(', ')} not empty: pass --force to replace their rows`);
      if (filled.length) {
        await client.query(`TRUNCATE ${chosen.map((t) => `public."${t}"`).join(', ')}`).catch((error: Error) => {
          throw new BackupError(`cannot empty ${chosen.join(', ')} before the restore: ${error.message} (other tables refer to them: restore those too, or the whole archive)`);
        });
      }
      args.push('--data-only', '--disable-triggers', ...chosen.map((t) => `--table=${t}`));
    } else if (existing.length) {
      if (!options.force) throw new BackupError(`the target database has ${existing.length} tables: restore into an empty database, or pass --force to replace what is there`);
      // pg_restore --clean cannot replace every schema (partition constraints, TimescaleDB's
      // catalog): the target database is dropped and made again, empty, then restored into.
      await client.end();
      await recreateDatabase(url);
      client = await connect();
      q = querying(client);
      installed = null;
    }
    // TimescaleDB restores as its documentation says: the extension first, then pre/post restore around pg_restore.
    const timescale = manifest.timescaledb !== null;
    if (timescale) {
      if (!installed && !server[0]!.available) throw new BackupError(`the archive was taken with TimescaleDB ${manifest.timescaledb}; the target server does not have it`);
      if (!installed) {
        await client.query(`CREATE EXTENSION timescaledb VERSION '${manifest.timescaledb!.replace(/'/g, "''")}'`).catch((error: Error) => {
          throw new BackupError(`the archive was taken with TimescaleDB ${manifest.timescaledb}, which the target server cannot install: ${error.message}`);
        });
      }
      await client.query('SELECT timescaledb_pre_restore()');
    }
    try {
      options.progress?.(`restore: pg_restore ${basename(archive)}${chosen ? ` (${chosen.join(', ')})` : ''}`);
      await withProgress(pgRestore, [...args, archive], archive);
    } finally {
      if (timescale) await client.query('SELECT timescaledb_post_restore()');
    }
    return await verifyAgainst(q, manifest, chosen);
  } finally {
    await client.end().catch(() => {});
  }
}


/**
 * An embedded database's backup: PGlite's dump of its data directory (a gzipped tar) and the
 * manifest, taken inside one transaction of its one connection: every other statement (the
 * service's ingest included) waits until both are done, so they describe the same state. Safe
 * while the service runs (POST /v1/admin/backup does it in the service's process).
 */
export async function backupEmbedded(db: EmbeddedDatabase, options: BackupOptions): Promise<{ archive: string; manifest: Manifest }> {
  if (options.tables) throw new BackupError('--tables is for servers: an embedded backup is its whole data directory');
  const at = new Date();
  let digests: TableDigest[] = [];
  const blob = await db.transaction(async (tx) => {
    digests = await digestTables(tx, await backupTables(tx), { progress: manifestProgress(options.progress) });
    // Committed work is in the directory's WAL; a restore replays it, as after a crash.
    return db.dumpDataDir();
  });
  await mkdir(options.outDir, { recursive: true });
  const archive = join(options.outDir, `tradestore-${stampOf(at)}.tar.gz`);
  const bytes = Buffer.from(await blob.arrayBuffer());
  await writeFile(`${archive}.partial`, bytes);
  await rename(`${archive}.partial`, archive);
  const manifest: Manifest = {
    format: 'tradestore-backup/1',
    kind: 'embedded',
    at: at.toISOString(),
    archive: basename(archive),
    archiveBytes: bytes.length,
    schemaVersion: await schemaVersion(db),
    serverVersion: db.capabilities.serverVersion,
    timescaledb: db.capabilities.timescaledb,
    tables: digests,
  };
  await writeFile(`${archive}.manifest.json`, JSON.stringify(manifest, null, 2) + '\n');
  options.progress?.(`backup: ${(bytes.length / 1024 / 1024).toFixed(1)} MB written`);
  if (options.keep) await rotate(options.outDir, options.keep);
  return { archive, manifest };
}

/** Restores an embedded backup into a new (or empty) directory, then verifies every table against the manifest. */
export async function restoreEmbedded(archive: string, dataDir: string, options: RestoreOptions = {}): Promise<Verification[]> {
  const manifest = await readManifest(archive);
  if (manifest.kind !== 'embedded') throw new BackupError(`${basename(archive)} is a server's pg_dump archive: restore it --into a DATABASE_URL`);
  if (options.tables) throw new BackupError('--tables is for servers: an embedded backup is restored whole');
  const entries = await readdir(dataDir).catch(() => []);
  if (entries.length && !options.force) throw new BackupError(`${dataDir} is not empty: restore into a new directory, or pass --force to replace it`);
  if (entries.length) await rm(dataDir, { recursive: true, force: true });
  let db: EmbeddedDatabase;
  try {
    db = await EmbeddedDatabase.open({ dataDir, loadDataDir: new Blob([await readFile(archive)]) });
  } catch (error) {
    await rm(dataDir, { recursive: true, force: true });
    throw new BackupError(`${basename(archive)} is not a readable data directory archive: ${(error as Error).message}`);
  }
  try {
    return await verifyAgainst(db, manifest);
  } finally {
    await db.close();
  }
}
