import { fileURLToPath } from 'node:url';
import Postgrator from 'postgrator';
import { withCapabilities, type Database, type Queryable } from '../database/types.ts';
import { renderSql } from './sqlBlocks.ts';
import { applyLifecycle, type LifecycleReport } from './lifecycle.ts';

/** Numbered `NNN.do.name.sql` / `NNN.undo.name.sql` files at the package root. */
export const MIGRATIONS_DIR = fileURLToPath(new URL('../../migrations/', import.meta.url));
/** The ledger: postgrator's version table, named after seed 004's schema_migrations. */
export const LEDGER_TABLE = 'schema_migrations';
/** pg_advisory_xact_lock key: one migrator at a time per database. */
const MIGRATION_LOCK_KEY = 7_265_738_776_102;

export class MigrationError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'MigrationError';
  }
}

interface FileMigration {
  version: number;
  action: 'do' | 'undo';
  name: string;
  md5?: string;
  filename: string;
}

interface LedgerRow {
  version: string;
  name: string | null;
  md5: string | null;
  run_at: Date | null;
}

export interface MigrationStep {
  version: number;
  name: string;
  action: 'do' | 'undo';
}

export interface MigrateResult {
  from: number;
  to: number;
  steps: MigrationStep[];
  lifecycle: LifecycleReport | null;
  notes: string[];
}

export interface MigrationStatusEntry {
  version: number;
  name: string;
  applied: boolean;
  runAt: Date | null;
  /** 'ok', 'changed' (file differs from what was applied), 'missing' (applied, no file), or null when pending. */
  checksum: 'ok' | 'changed' | 'missing' | null;
}

export interface MigrationStatus {
  databaseVersion: number;
  latestVersion: number;
  timescaledb: string | null;
  entries: MigrationStatusEntry[];
}

function postgratorFor(tx: Queryable, timescaledb: boolean): Postgrator {
  return new Postgrator({
    migrationPattern: `${MIGRATIONS_DIR}*.sql`,
    driver: 'pg',
    schemaTable: LEDGER_TABLE,
    currentSchema: 'public',
    validateChecksums: true,
    execQuery: (sql: string) => tx.query(sql),
    execSqlScript: (sql: string) => tx.exec(renderSql(sql, { timescaledb })),
  });
}

async function fileMigrations(): Promise<FileMigration[]> {
  // getMigrations only reads the directory; no database access.
  const reader = new Postgrator({
    migrationPattern: `${MIGRATIONS_DIR}*.sql`,
    driver: 'pg',
    execQuery: async () => ({ rows: [] }),
  });
  return (await reader.getMigrations()) as FileMigration[];
}

async function readLedger(q: Queryable): Promise<LedgerRow[]> {
  const { rows: exists } = await q.query<{ t: string | null }>(`SELECT to_regclass('public.${LEDGER_TABLE}')::text AS t`);
  if (!exists[0]?.t) return [];
  const { rows } = await q.query<LedgerRow>(
    // Ordered by the number: the output column of the same name is text, which puts 10 before 9.
    `SELECT version::text AS version, name, md5, run_at FROM public.${LEDGER_TABLE} l WHERE l.version > 0 ORDER BY l.version::bigint`,
  );
  return rows;
}

/** Refuses a database that is newer than this code, or whose applied migrations changed. */
function checkLedger(files: FileMigration[], ledger: LedgerRow[]): void {
  const latest = Math.max(0, ...files.filter((f) => f.action === 'do').map((f) => f.version));
  for (const row of ledger) {
    const version = Number(row.version);
    if (version > latest) {
      throw new MigrationError(
        `the database is at schema version ${version}, newer than this tradestore (latest ${latest}); ` +
          'upgrade tradestore instead of migrating with an older version',
      );
    }
    const file = files.find((f) => f.version === version && f.action === 'do');
    if (!file) throw new MigrationError(`migration ${version} is applied but its file is missing from ${MIGRATIONS_DIR}`);
    if (row.md5 && file.md5 && row.md5 !== file.md5) {
      throw new MigrationError(
        `migration ${version} (${file.name}) was changed after it was applied (checksum ${row.md5} in the database, ` +
          `${file.md5} on disk); restore the original file and add a new migration instead`,
      );
    }
  }
}

/** Installs TimescaleDB where the server offers it; a server that cannot load it runs without it. */
async function ensureTimescale(db: Database, notes: string[]): Promise<void> {
  const caps = db.capabilities;
  if (caps.timescaledb || !caps.timescaledbAvailable) return;
  try {
    await db.exec('CREATE EXTENSION IF NOT EXISTS timescaledb');
  } catch (error) {
    notes.push(`TimescaleDB is available but could not be installed (${(error as Error).message}); using plain PostgreSQL`);
  }
  await db.refreshCapabilities();
}

/**
 * Moves the schema to `target` (default: the latest file). Everything runs in one transaction
 * under an advisory lock, so concurrent migrators wait and a failure leaves nothing half done.
 * Lifecycle policies are (re)applied in the same transaction, under the same lock.
 */
export async function migrate(db: Database, options: { to?: number } = {}): Promise<MigrateResult> {
  const notes: string[] = [];
  await ensureTimescale(db, notes);
  const timescaledb = db.capabilities.timescaledb !== null;
  const files = await fileMigrations();
  const latest = Math.max(0, ...files.filter((f) => f.action === 'do').map((f) => f.version));
  const target = options.to ?? latest;
  if (!Number.isInteger(target) || target < 0 || target > latest) {
    throw new MigrationError(`target version must be an integer from 0 to ${latest} (got ${options.to})`);
  }
  const result = await db.transaction(async (tx) => {
    await tx.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK_KEY]);
    const ledger = await readLedger(tx);
    checkLedger(files, ledger);
    const from = ledger.length ? Number(ledger[ledger.length - 1]!.version) : 0;
    const postgrator = postgratorFor(tx, timescaledb);
    let current: FileMigration | undefined;
    postgrator.on('migration-started', (m: FileMigration) => (current = m));
    let applied: FileMigration[];
    try {
      applied = (await postgrator.migrate(String(target))) as FileMigration[];
    } catch (error) {
      // Name the file: "relation already exists" alone does not say where to look.
      const where = current ? `${current.action} step of migration ${current.version} (${current.name})` : 'migration';
      throw new MigrationError(`${where} failed, nothing was applied: ${(error as Error).message}`, { cause: error });
    }
    if (target === 0) await tx.exec(`DROP TABLE IF EXISTS public.${LEDGER_TABLE}`);
    // Policies are applied under the same lock, so two migrators starting at once do not both
    // add them ("policy already exists"); the second finds them in place and changes nothing.
    const lifecycle = target > 0 ? await applyLifecycle(withCapabilities(tx, db.capabilities)) : null;
    return {
      from,
      to: target,
      steps: applied.map((m) => ({ version: m.version, name: m.name, action: m.action })),
      lifecycle,
    };
  });
  return { ...result, notes };
}

export async function migrationStatus(db: Database): Promise<MigrationStatus> {
  const files = (await fileMigrations()).filter((f) => f.action === 'do');
  const ledger = await readLedger(db);
  const applied = new Map(ledger.map((row) => [Number(row.version), row]));
  const versions = [...new Set([...files.map((f) => f.version), ...applied.keys()])].sort((a, b) => a - b);
  const entries = versions.map((version): MigrationStatusEntry => {
    const file = files.find((f) => f.version === version);
    const row = applied.get(version);
    let checksum: MigrationStatusEntry['checksum'] = null;
    if (row) checksum = !file ? 'missing' : row.md5 && file.md5 && row.md5 !== file.md5 ? 'changed' : 'ok';
    return { version, name: file?.name ?? row?.name ?? '', applied: Boolean(row), runAt: row?.run_at ?? null, checksum };
  });
  return {
    databaseVersion: ledger.length ? Number(ledger[ledger.length - 1]!.version) : 0,
    latestVersion: Math.max(0, ...files.map((f) => f.version)),
    timescaledb: db.capabilities.timescaledb,
    entries,
  };
}
