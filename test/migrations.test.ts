import { it } from 'node:test';
import assert from 'node:assert/strict';
import { PostgresDatabase } from '../src/database/postgres.ts';
import { LEDGER_TABLE, MigrationError, migrate, migrationStatus } from '../src/schema/migrator.ts';
import { seed } from '../src/schema/seed.ts';
import type { Database } from '../src/database/types.ts';
import { eachBackend, TIMESCALEDB_URL } from './helpers/backends.ts';
import { coverageRelations } from './helpers/coverage.ts';

const LATEST = 21;

/** Relations, functions and types in public that no extension owns: what the project created. */
async function projectObjects(db: Database): Promise<string[]> {
  const { rows } = await db.query<{ name: string }>(`
    SELECT c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = 'public'
       AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
    UNION ALL
    SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
     WHERE n.nspname = 'public'
       AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')
    UNION ALL
    SELECT t.typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
     WHERE n.nspname = 'public' AND t.typrelid = 0 AND t.typelem = 0
       AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_type'::regclass AND d.objid = t.oid AND d.deptype = 'e')
    UNION ALL
    -- Chunks and compressed chunks that a hypertable dropped without CASCADE leaves behind.
    SELECT n.nspname || '.' || c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = '_timescaledb_internal' AND c.relkind = 'r'
       AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
    ORDER BY 1`);
  const names = rows.map((r) => r.name);
  const { rows: catalog } = await db.query<{ t: string | null }>(`SELECT to_regclass('_timescaledb_catalog.hypertable')::text AS t`);
  if (catalog[0]?.t) {
    const { rows: hypertables } = await db.query<{ name: string }>(`SELECT 'hypertable ' || schema_name || '.' || table_name AS name FROM _timescaledb_catalog.hypertable`);
    names.push(...hypertables.map((h) => h.name));
  }
  return names;
}

async function relationExists(db: Database, name: string): Promise<boolean> {
  const { rows } = await db.query<{ r: string | null }>('SELECT to_regclass($1)::text AS r', [`public.${name}`]);
  return rows[0]?.r !== null && rows[0]?.r !== undefined;
}

eachBackend('migrations', (get) => {
  it('applies every migration in order and records each with a checksum', async () => {
    const { db } = get();
    const result = await migrate(db);
    assert.equal(result.from, 0);
    assert.equal(result.to, LATEST);
    assert.deepEqual(result.steps.map((s) => s.version), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21]);
    const status = await migrationStatus(db);
    assert.equal(status.databaseVersion, LATEST);
    assert.ok(status.entries.every((e) => e.applied && e.checksum === 'ok'));
    const { rows } = await db.query<{ md5: string }>(`SELECT md5 FROM ${LEDGER_TABLE} WHERE version > 0`);
    assert.equal(rows.length, LATEST);
    assert.ok(rows.every((r) => /^[0-9a-f]{32}$/.test(r.md5)));
  });

  it('creates every table and view that docs/COVERAGE.md promises', async () => {
    const { db } = get();
    const promised = coverageRelations();
    assert.ok(promised.length >= 40, `COVERAGE.md lists only ${promised.length} relations`);
    const missing: string[] = [];
    for (const name of promised) if (!(await relationExists(db, name))) missing.push(name);
    assert.deepEqual(missing, []);
  });

  it('is a no-op when already at the latest version', async () => {
    const result = await migrate(get().db);
    assert.deepEqual(result.steps, []);
    assert.equal(result.to, LATEST);
  });

  it('refuses a database that is newer than the code', async () => {
    const { db } = get();
    await db.query(`INSERT INTO ${LEDGER_TABLE} (version, name, md5) VALUES (99, 'future', 'x')`);
    try {
      await assert.rejects(migrate(db), (e: Error) => e instanceof MigrationError && /newer than this tradestore/.test(e.message));
      await assert.rejects(migrate(db, { to: 0 }), MigrationError);
    } finally {
      await db.query(`DELETE FROM ${LEDGER_TABLE} WHERE version = 99`);
    }
  });

  it('refuses a database whose applied migration file changed', async () => {
    const { db } = get();
    const { rows } = await db.query<{ md5: string }>(`SELECT md5 FROM ${LEDGER_TABLE} WHERE version = 2`);
    await db.query(`UPDATE ${LEDGER_TABLE} SET md5 = 'deadbeef' WHERE version = 2`);
    try {
      await assert.rejects(migrate(db), (e: Error) => e instanceof MigrationError && /migration 2 .* was changed/.test(e.message));
      assert.equal((await migrationStatus(db)).entries.find((e) => e.version === 2)?.checksum, 'changed');
    } finally {
      await db.query(`UPDATE ${LEDGER_TABLE} SET md5 = $1 WHERE version = 2`, [rows[0]!.md5]);
    }
  });

  it('goes down step by step and to zero, leaving nothing of the project', async () => {
    const { db } = get();
    if (db.capabilities.timescaledb) {
      // Compressed chunks are what a DROP without CASCADE leaves orphaned on TimescaleDB 2.2x servers.
      await seed(db);
      await db.exec(`INSERT INTO trades (id, market, price, quantity, is_buyer_maker, executed_at)
                     SELECT 'c-' || g, 'TATA_INR', 100, 1, true, now() - interval '40 days' + g * interval '1 minute' FROM generate_series(1, 50) g`);
      const { rows } = await db.query<{ n: string }>(`SELECT count(compress_chunk(c, if_not_compressed => true))::text AS n FROM show_chunks('trades') c`);
      assert.ok(Number(rows[0]!.n) >= 1, 'a chunk was compressed');
    }
    const partial = await migrate(db, { to: 3 });
    assert.deepEqual(partial.steps.map((s) => [s.version, s.action]), [[21, 'undo'], [20, 'undo'], [19, 'undo'], [18, 'undo'], [17, 'undo'], [16, 'undo'], [15, 'undo'], [14, 'undo'], [13, 'undo'], [12, 'undo'], [11, 'undo'], [10, 'undo'], [9, 'undo'], [8, 'undo'], [7, 'undo'], [6, 'undo'], [5, 'undo'], [4, 'undo']]);
    assert.equal(await relationExists(db, 'system_logs'), false);
    assert.equal(await relationExists(db, 'strategies'), true);
    const down = await migrate(db, { to: 0 });
    assert.deepEqual(down.steps.map((s) => s.version), [3, 2, 1]);
    assert.deepEqual(await projectObjects(db), []);
  });

  it('migrates up again after going down to zero', async () => {
    const { db } = get();
    const result = await migrate(db);
    assert.equal(result.steps.length, LATEST);
    for (const name of coverageRelations()) assert.ok(await relationExists(db, name), name);
  });
});

eachBackend(
  'migrations under concurrency',
  (get) => {
    it('serialises two migrators with the advisory lock: each migration runs once', async () => {
      const url = get().env.DATABASE_URL!;
      const other = await PostgresDatabase.open({ url, max: 2 });
      try {
        const [a, b] = await Promise.all([migrate(get().db), migrate(other)]);
        const versions = [...a.steps, ...b.steps].map((s) => s.version).sort((x, y) => x - y);
        assert.deepEqual(versions, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21]);
        assert.equal((await migrationStatus(other)).databaseVersion, LATEST);
        // Both apply the lifecycle policies at once too ("policy already exists" when not under the lock).
        const again = await Promise.all([migrate(get().db), migrate(other), migrate(get().db)]);
        assert.deepEqual(again.map((r) => r.steps.length), [0, 0, 0]);
        if (get().db.capabilities.timescaledb) {
          const { rows } = await get().db.query<{ proc_name: string; hypertable_name: string; n: string }>(
            `SELECT proc_name, hypertable_name, count(*)::text AS n FROM timescaledb_information.jobs WHERE job_id >= 1000
              GROUP BY 1, 2 HAVING count(*) > 1`,
          );
          assert.deepEqual(rows, [], 'each policy exists once');
          assert.equal(again[0]!.lifecycle?.mode, 'timescaledb');
        }
      } finally {
        await other.close();
      }
    });
  },
  { only: TIMESCALEDB_URL ? ['postgres', 'timescaledb'] : ['postgres'] },
);

eachBackend(
  'a failing migration',
  (get) => {
    it('rolls back the whole run and names the migration that failed', async () => {
      const { db } = get();
      // A table in the way of migration 005 makes its CREATE TABLE fail.
      await db.exec('CREATE TABLE api_usage (x int)');
      await assert.rejects(migrate(db), (e: Error) => {
        assert.ok(e instanceof MigrationError);
        assert.match(e.message, /do step of migration 5 \(operations\) failed, nothing was applied: relation "api_usage" already exists/);
        return true;
      });
      assert.equal((await migrationStatus(db)).databaseVersion, 0);
      assert.equal(await relationExists(db, 'users'), false, 'migration 1 was rolled back with the rest');
    });
  },
  { only: ['embedded'] },
);
