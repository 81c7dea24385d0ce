import { before, it } from 'node:test';
import assert from 'node:assert/strict';
import { migrate } from '../src/schema/migrator.ts';
import { seed } from '../src/schema/seed.ts';
import { eachBackend } from './helpers/backends.ts';

eachBackend('database layer', (get) => {
  before(async () => {
    await migrate(get().db);
    await seed(get().db);
  });

  it('detects the capabilities of the server', () => {
    const { db, backend } = get();
    const caps = db.capabilities;
    assert.equal(caps.backend, backend === 'embedded' ? 'embedded' : 'postgres');
    assert.ok(caps.serverVersionNum >= 150000, caps.serverVersion);
    if (backend === 'embedded') {
      assert.match(caps.timescaledb ?? '', /^2\./, 'the embedded database has TimescaleDB');
      assert.equal(caps.jobScheduler, false, 'PGlite runs no background workers');
    }
    if (!caps.timescaledb) assert.equal(caps.jobScheduler, false);
    if (backend === 'timescaledb') {
      assert.match(caps.timescaledb ?? '', /^2\./, 'a TimescaleDB server');
      assert.equal(caps.jobScheduler, true, 'its scheduler runs the policies');
    }
    assert.equal(typeof caps.pgStatStatements, 'boolean');
    assert.equal(typeof caps.rowLevelSecurity, 'boolean');
  });

  it('returns NUMERIC and BIGINT as strings, DATE as text, timestamps as UTC Dates', async () => {
    const { rows } = await get().db.query<{ n: unknown; b: unknown; d: unknown; t: unknown; na: unknown; ba: unknown; c: unknown }>(
      `SELECT 12345678901234567.123456789::numeric AS n, 9007199254740993::bigint AS b, DATE '2026-03-01' AS d,
              TIMESTAMPTZ '2026-03-01 00:00:00+05:30' AS t, ARRAY[1.10, 22001.05]::numeric[] AS na,
              ARRAY[9007199254740993, NULL]::bigint[] AS ba, count(*) AS c`,
    );
    assert.deepEqual(rows[0]!.na, ['1.10', '22001.05']);
    assert.deepEqual(rows[0]!.ba, ['9007199254740993', null]);
    assert.equal(rows[0]!.c, '1');
    assert.equal(rows[0]!.n, '12345678901234567.123456789');
    assert.equal(rows[0]!.b, '9007199254740993');
    assert.equal(rows[0]!.d, '2026-03-01');
    assert.equal((rows[0]!.t as Date).toISOString(), '2026-02-28T18:30:00.000Z');
  });

  it('bulk-loads rows through COPY, with exact decimals and awkward text', async () => {
    const { db } = get();
    const rows = Array.from({ length: 500 }, (_, i) => [
      `c-${i}`, 'TATA_INR', '134.57', `0.${String(i + 1).padStart(3, '0')}`, i % 2 === 0, new Date(Date.UTC(2026, 0, 1, 0, 0, i)), i === 0 ? 'tab\there' : null,
    ]);
    const n = await db.copyFrom('trades', ['id', 'market', 'price', 'quantity', 'is_buyer_maker', 'executed_at', 'buyer_id'], rows);
    assert.equal(n, 500);
    const { rows: sums } = await db.query<{ n: string; q: string; buyer: string }>(
      `SELECT count(*) AS n, sum(quantity)::text AS q, max(buyer_id) AS buyer FROM trades WHERE id LIKE 'c-%'`,
    );
    assert.equal(sums[0]!.n, '500');
    // 0.001 + 0.002 + … + 0.500 = 125.25
    assert.equal(sums[0]!.q.replace(/0+$/, ''), '125.25');
    assert.equal(sums[0]!.buyer, 'tab\there');
  });

  it('bulk load inside a transaction commits with it, and rolls back with it', async () => {
    const { db } = get();
    await assert.rejects(
      db.transaction(async (tx) => {
        await tx.copyFrom('system_logs', ['level', 'category', 'message'], [['info', 'test', 'rolled back']]);
        await tx.query(`INSERT INTO system_logs (level, category, message) VALUES ('nope', 'test', 'bad level')`);
      }),
      /system_logs_level_check/,
    );
    const { rows } = await db.query(`SELECT 1 FROM system_logs WHERE message = 'rolled back'`);
    assert.equal(rows.length, 0);
    await db.transaction((tx) => tx.copyFrom('system_logs', ['level', 'category', 'message'], [['info', 'test', 'kept']]));
    assert.equal((await db.query(`SELECT 1 FROM system_logs WHERE message = 'kept'`)).rows.length, 1);
  });

  it('runs multi-statement scripts and reports affected rows', async () => {
    const { db } = get();
    const rowCount = await db.transaction(async (tx) => {
      await tx.exec(`CREATE TEMP TABLE scratch (v int) ON COMMIT DROP; INSERT INTO scratch VALUES (1), (2), (3);`);
      return (await tx.query('UPDATE scratch SET v = v + 1 WHERE v > 1')).rowCount;
    });
    assert.equal(rowCount, 2);
  });
});
