import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { MemoryBus } from '../src/bus/memory.ts';
import { PostgresDatabase } from '../src/database/postgres.ts';
import { migrate } from '../src/schema/migrator.ts';
import { seed } from '../src/schema/seed.ts';
import { backupTables, digestTables } from '../src/ops/manifest.ts';
import { asPostgres, OwnPostgres, ownClusterUnavailable, postgresDir } from './helpers/pgcluster.ts';
import { ingest, tradeMsg } from './helpers/ingest.ts';

const batch = (name: string, n: number) => Array.from({ length: n }, (_, i) => tradeMsg('TATA_INR', `${name}${i}`, '101.25', '2', Date.now() - 60_000 + i));

/**
 * docs/OPERATIONS.md's point-in-time recovery, done as written: WAL archiving on, a base backup
 * with pg_basebackup, writes before and after a recorded time, and a recovery to that time.
 */
describe('point-in-time recovery [a PostgreSQL cluster of the test\'s own]', { skip: ownClusterUnavailable() ?? false }, () => {
  it('recovers the base backup and the archived WAL to a recorded time: every table as it was then, nothing written after', async () => {
    const archive = postgresDir('tradestore-wal-');
    const base = postgresDir('tradestore-base-');
    const primary = await OwnPostgres.init(archive);
    let recovered: OwnPostgres | null = null;
    try {
      let db = await PostgresDatabase.open({ url: primary.url, max: 2 });
      let target: string;
      let expected;
      try {
        await migrate(db);
        await seed(db);
        await ingest(db, new MemoryBus(), batch('a', 100));
        await asPostgres('pg_basebackup', ['-h', '127.0.0.1', '-p', String(primary.port), '-U', 'postgres', '-D', join(base, 'data'), '-X', 'stream', '-c', 'fast', '--no-sync']);
        await ingest(db, new MemoryBus(), batch('b', 100));
        // The recorded time: after b committed, before c. Every table's contents at that moment are the expectation.
        target = (await db.query<{ t: string }>('SELECT clock_timestamp()::text AS t')).rows[0]!.t;
        expected = await digestTables(db, await backupTables(db));
        await new Promise((r) => setTimeout(r, 1100));
        await ingest(db, new MemoryBus(), batch('c', 100));
        // The segment holding c is archived before the primary goes.
        const { rows } = await db.query<{ wal: string }>('SELECT pg_walfile_name(pg_switch_wal()) AS wal');
        for (let i = 0; i < 100; i++) {
          const { rows: done } = await db.query<{ last: string | null }>('SELECT last_archived_wal AS last FROM pg_stat_archiver');
          if (done[0]!.last && done[0]!.last >= rows[0]!.wal) break;
          await new Promise((r) => setTimeout(r, 100));
        }
      } finally {
        await db.close();
      }
      await primary.stop();
      recovered = await OwnPostgres.recoverTo(join(base, 'data'), archive, target, base);
      db = await PostgresDatabase.open({ url: recovered.url, max: 1 });
      try {
        for (let i = 0; i < 100 && (await db.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r')).rows[0]!.r; i++) await new Promise((r) => setTimeout(r, 100));
        assert.equal((await db.query<{ r: boolean }>('SELECT pg_is_in_recovery() AS r')).rows[0]!.r, false, 'promoted once the target was reached');
        const { rows } = await db.query<{ batch: string; n: string }>(`SELECT left(id, 1) AS batch, count(*)::text AS n FROM trades GROUP BY 1 ORDER BY 1`);
        assert.deepEqual(rows.map((r) => [r.batch, Number(r.n)]), [['a', 100], ['b', 100]]);
        assert.deepEqual(await digestTables(db, expected.map((d) => d.name)), expected, 'every table as it was at the recorded time');
      } finally {
        await db.close();
      }
    } finally {
      await recovered?.destroy();
      await primary.destroy();
      rmSync(archive, { recursive: true, force: true });
      rmSync(base, { recursive: true, force: true });
    }
  });
});
