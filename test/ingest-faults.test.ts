import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { MemoryBus } from '../src/bus/memory.ts';
import { PostgresDatabase } from '../src/database/postgres.ts';
import { IngestWorker } from '../src/ingest/worker.ts';
import { migrate } from '../src/schema/migrator.ts';
import { seed } from '../src/schema/seed.ts';
import { checkHealth } from '../src/service/health.ts';
import { freshDatabase, serverUnavailable, type Fresh } from './helpers/backends.ts';
import { drain, tradeMsg } from './helpers/ingest.ts';

const REQUIRE = process.env.TRADESTORE_REQUIRE_SERVERS === '1';
const T = Date.now() - 3_600_000;

/**
 * Infrastructure errors are not bad data: for each family (a missing relation, a permission
 * error, a read-only database, a lost connection) the worker keeps the batch, retries it with
 * backoff, reports it in /health, dead-letters nothing, and applies it once the cause is gone.
 */
describe('ingest through database faults [postgres]', async () => {
  const reason = REQUIRE ? null : await serverUnavailable();
  if (reason) {
    it('skipped', { skip: reason }, () => {});
    return;
  }
  let fresh: Fresh & { dispose: () => Promise<void> };
  let worker: PostgresDatabase;
  const role = `tradestore_test_writer_${randomBytes(4).toString('hex')}`;
  const app = `tradestore-fault-${randomBytes(3).toString('hex')}`;
  let dbName = '';
  before(async () => {
    fresh = await freshDatabase('postgres');
    await migrate(fresh.db);
    await seed(fresh.db);
    dbName = new URL(fresh.env.DATABASE_URL!).pathname.slice(1);
    await fresh.db.exec(`CREATE ROLE ${role} LOGIN; GRANT ALL ON ALL TABLES IN SCHEMA public TO ${role}; GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO ${role}`);
    const url = new URL(fresh.env.DATABASE_URL!);
    url.username = role;
    worker = await PostgresDatabase.open({ url: url.toString(), max: 2, applicationName: app });
  });
  after(async () => {
    await worker?.close().catch(() => {});
    await fresh?.db.exec(`ALTER DATABASE ${dbName} RESET default_transaction_read_only`).catch(() => {});
    await fresh?.db.exec(`DROP OWNED BY ${role}`).catch(() => {});
    await fresh?.dispose();
    // The role belongs to the cluster, not to the dropped database.
    const admin = await freshDatabase('postgres');
    await admin.db.exec(`DROP ROLE IF EXISTS ${role}`);
    await admin.dispose();
  });

  const kick = () => fresh.db.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1`, [app]);

  it('retries a missing relation, a permission error, a read-only database and a lost connection; dead-letters nothing', async () => {
    const bus = new MemoryBus();
    const ingest = new IngestWorker(worker, bus, { consumer: 'faults', blockMs: 10 });
    let n = 0;
    const send = async () => {
      for (let i = 0; i < 5; i++) await bus.add(JSON.stringify(tradeMsg('TATA_INR', `f-${n++}`, '100', '1', T + n)));
    };
    const stuck = async (family: string, cause: RegExp) => {
      for (let i = 0; i < 4; i++) await ingest.step();
      assert.equal(ingest.databaseHealthy, false, `${family}: the batch failed`);
      assert.match(ingest.lastError ?? '', cause, family);
      assert.equal((await bus.stats()).deadLetters, 0, `${family}: nothing dead-lettered`);
      const health = await checkHealth(worker, bus, ingest, { stallMs: 30_000, detail: true });
      assert.equal(health.status, 'degraded');
      assert.ok(health.causes.includes('ingest: the last batch failed to apply and is being retried'), `${family}: ${health.causes}`);
      assert.match(health.detail?.ingest ?? '', cause);
    };

    // A relation the appliers write to is missing (42P01).
    await fresh.db.exec('ALTER TABLE ohlcv_5m RENAME TO ohlcv_5m_away');
    await send();
    await stuck('missing relation', /relation "ohlcv_5m" does not exist/);
    await fresh.db.exec('ALTER TABLE ohlcv_5m_away RENAME TO ohlcv_5m');
    await drain(ingest, bus);

    // The service's role may not insert (42501).
    await fresh.db.exec(`REVOKE INSERT ON trades FROM ${role}`);
    await send();
    await stuck('permission', /permission denied for table trades/);
    await fresh.db.exec(`GRANT INSERT ON trades TO ${role}`);
    await drain(ingest, bus);

    // The connection is lost, and the database comes back read-only (25006).
    await fresh.db.exec(`ALTER DATABASE ${dbName} SET default_transaction_read_only = on`);
    await kick();
    await send();
    // The lost connection reaches the driver as the server's notice, the closed client, or a reset socket.
    await stuck('read-only after a lost connection', /read-only transaction|terminating connection|Connection terminated|ECONNRESET/);
    for (let i = 0; i < 5 && !/read-only/.test(ingest.lastError ?? ''); i++) await ingest.step();
    assert.match(ingest.lastError ?? '', /cannot execute (INSERT|UPDATE) in a read-only transaction/);
    await fresh.db.exec(`ALTER DATABASE ${dbName} RESET default_transaction_read_only`);
    await kick();
    await drain(ingest, bus);

    assert.equal(ingest.databaseHealthy, true);
    assert.equal((await bus.stats()).deadLetters, 0);
    const { rows } = await fresh.db.query<{ n: string }>(`SELECT count(*) AS n FROM trades WHERE id LIKE 'f-%'`);
    assert.equal(Number(rows[0]!.n), n, 'every trade applied once');
    assert.equal((await checkHealth(worker, bus, ingest, { stallMs: 30_000 })).status, 'healthy');
    await ingest.stop();
    await bus.close();
  });
});
