import { before, it } from 'node:test';
import assert from 'node:assert/strict';
import { migrate } from '../src/schema/migrator.ts';
import { MaintenanceBusyError, maintenanceStatus, runMaintenanceJobs } from '../src/schema/maintenanceJobs.ts';
import { seed } from '../src/schema/seed.ts';
import { scheduleMaintenance } from '../src/service/maintenance.ts';
import { checkHealth } from '../src/service/health.ts';
import { MemoryBus } from '../src/bus/memory.ts';
import { PostgresDatabase } from '../src/database/postgres.ts';
import { eachBackend } from './helpers/backends.ts';
import { runCli } from './helpers/cli.ts';
import { spawnService, waitFor } from './helpers/service.ts';

const LOCK = 7_265_738_776_103;

eachBackend('maintenance runs on its own', (get) => {
  before(async () => {
    const { db } = get();
    await migrate(db);
    await seed(db);
    await db.exec(`
      INSERT INTO users (id, email) VALUES ('m1', 'm1@example.com');
      INSERT INTO user_sessions (user_id, token_hash, expires_at, created_at) VALUES
        ('m1', 'expired', now() - interval '1 hour', now() - interval '2 days'), ('m1', 'live', now() + interval '1 day', now());
      -- A session token past its time whose refresh token is not: kept, it can still be refreshed.
      INSERT INTO user_sessions (user_id, token_hash, refresh_hash, expires_at, refresh_expires_at) VALUES ('m1', 'refreshable', 'r1', now() - interval '1 hour', now() + interval '1 day');
      INSERT INTO login_failures (subject, failures, window_ends, locked_until) VALUES
        ('pair:old|10.0.0.1', 3, now() - interval '1 hour', now() - interval '1 minute'), ('pair:locked|10.0.0.1', 0, now() - interval '1 hour', now() + interval '1 hour');
      INSERT INTO market_data (exchange, symbol, timeframe, timestamp, open, high, low, close, volume)
      SELECT 'NSE', 'NIFTY', '1m', date_trunc('day', now()) - interval '2 days' + g * interval '1 minute', 100 + g, 200 + g, 50, 150, 1
        FROM generate_series(0, 9) g;
      INSERT INTO system_logs (timestamp, level, category, message) VALUES (now() - interval '2 years', 'info', 'm', 'old');`);
  });

  it('the scheduler runs every job that applies, records what each did, and populates daily_ohlcv', async () => {
    const { db } = get();
    assert.deepEqual(await maintenanceStatus(db).then((s) => s.filter((x) => x.last)), [], 'nothing ran before');
    const lines: string[] = [];
    const scheduler = scheduleMaintenance(db, { tickMs: 50, log: (l) => lines.push(l) });
    try {
      await waitFor('a maintenance pass', async () => (await maintenanceStatus(db)).filter((s) => s.applies).every((s) => s.last !== null), 60_000);
    } finally {
      await scheduler.stop();
    }
    const status = await maintenanceStatus(db);
    const applies = status.filter((s) => s.applies).map((s) => s.job);
    assert.deepEqual(applies, db.capabilities.timescaledb ? (db.capabilities.jobScheduler ? ['retention', 'archive', 'snapshots', 'strategy-metrics', 'predictions', 'sessions'] : ['policies', 'retention', 'archive', 'snapshots', 'strategy-metrics', 'predictions', 'sessions']) : ['aggregates', 'retention', 'archive', 'snapshots', 'strategy-metrics', 'predictions', 'sessions']);
    for (const s of status.filter((x) => x.applies)) assert.equal(s.last!.status, 'ok', `${s.job}: ${s.last!.error}`);
    const sessions = status.find((s) => s.job === 'sessions')!;
    assert.deepEqual(sessions.last!.detail, { expired: 1, loginFailures: 1 });
    assert.deepEqual((await db.query<{ token_hash: string }>('SELECT token_hash FROM user_sessions ORDER BY token_hash')).rows.map((r) => r.token_hash), ['live', 'refreshable']);
    assert.deepEqual((await db.query<{ subject: string }>('SELECT subject FROM login_failures')).rows.map((r) => r.subject), ['pair:locked|10.0.0.1']);
    assert.ok(lines.some((l) => l.startsWith('maintenance: sessions {"expired":1,"loginFailures":1}')), lines.join('\n'));
    if (db.capabilities.jobScheduler) return; // TimescaleDB's own scheduler drops old chunks and refreshes aggregates on its schedule
    assert.equal((await db.query(`SELECT 1 FROM system_logs WHERE message = 'old'`)).rows.length, 0, 'retention ran (system_logs: 1 year)');
    const daily = await db.query<{ open: string; high: string; volume: string }>(`SELECT open::text, high::text, volume::text FROM daily_ohlcv WHERE symbol = 'NIFTY'`);
    assert.deepEqual(daily.rows.map((r) => [Number(r.open), Number(r.high), Number(r.volume)]), [[100, 209, 10]], 'daily_ohlcv is populated');
  });

  it('a job is not run again within its interval', async () => {
    assert.deepEqual(await runMaintenanceJobs(get().db), []);
  });

  it('runs one job at a time across instances: a second runner finds the lock taken', async () => {
    const { db, backend } = get();
    if (backend === 'embedded') return; // one process per embedded database: nothing to share
    const other = await PostgresDatabase.open({ url: get().env.DATABASE_URL!, max: 1 });
    try {
      await other.session(async (s) => {
        await s.query('SELECT pg_advisory_lock($1)', [LOCK]);
        await assert.rejects(runMaintenanceJobs(db, { force: true }), MaintenanceBusyError);
        const cli = await runCli(['maintenance', 'run'], get().env);
        assert.equal(cli.code, 1);
        assert.match(cli.stderr, /another tradestore instance is running maintenance/);
        await s.query('SELECT pg_advisory_unlock($1)', [LOCK]);
      });
    } finally {
      await other.close();
    }
    const cli = await runCli(['maintenance', 'run', '--job', 'sessions'], get().env);
    assert.equal(cli.code, 0, cli.stderr);
    assert.match(cli.stdout, /^sessions +ok +\S+ +\{"expired":0,"loginFailures":0\}/);
    const status = await runCli(['maintenance', 'status', '--json'], get().env);
    const parsed = JSON.parse(status.stdout) as { job: string; last: { status: string } | null }[];
    assert.equal(parsed.find((s) => s.job === 'sessions')!.last!.status, 'ok');
    const bad = await runCli(['maintenance', 'run', '--job', 'vacuum'], get().env);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--job must be one of policies, aggregates, retention, archive, snapshots, strategy-metrics, predictions, sessions/);
  });

  it('/health is degraded while a background job keeps failing', async () => {
    const { db } = get();
    const bus = new MemoryBus();
    const healthy = async () => (await checkHealth(db, bus, null, { stallMs: 30_000 })).causes.filter((c) => c.startsWith('background job failing'));
    assert.deepEqual(await healthy(), []);
    if (db.capabilities.jobScheduler) {
      // TimescaleDB's own scheduler: a job whose runs fail.
      await db.exec(`CREATE PROCEDURE failing_job(job_id int, config jsonb) LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'broken on purpose'; END $$`);
      const { rows } = await db.query<{ id: number }>(`SELECT add_job('failing_job', '1 second') AS id`);
      try {
        await waitFor('the job failed twice', async () => (await healthy()).some((c) => c.includes(`job ${rows[0]!.id})`)), 60_000);
      } finally {
        await db.query('SELECT delete_job($1)', [rows[0]!.id]);
      }
    } else {
      await db.exec(`INSERT INTO maintenance_runs (job, started_at, finished_at, status, error) VALUES
        ('archive', now() + interval '1 minute', now() + interval '1 minute', 'failed', 'disk full'),
        ('archive', now() + interval '2 minutes', now() + interval '2 minutes', 'failed', 'disk full')`);
      assert.deepEqual(await healthy(), ['background job failing: maintenance archive, 2 failures']);
      await db.exec(`INSERT INTO maintenance_runs (job, started_at, finished_at, status, detail) VALUES ('archive', now() + interval '3 minutes', now() + interval '3 minutes', 'ok', '{}')`);
      assert.deepEqual(await healthy(), [], 'healthy again once it succeeds');
    }
    await bus.close();
  });

  it('the service runs them on its schedule', async () => {
    const { db, backend, env } = get();
    if (backend === 'embedded') return; // the embedded directory is held by this test; the scheduler test above covers it
    await db.query(`INSERT INTO user_sessions (user_id, token_hash, expires_at) VALUES ('m1', 'soon', now() - interval '1 second')`);
    await db.query(`DELETE FROM maintenance_runs`);
    const service = spawnService({ ...env, TRADESTORE_MAINTENANCE_TICK_MS: '200' }, ['--no-ingest']);
    try {
      await waitFor('the service expired the session', async () => (await db.query(`SELECT 1 FROM user_sessions WHERE token_hash = 'soon'`)).rows.length === 0, 30_000);
      // The line is written once the run is recorded, a moment after the session is gone.
      await waitFor('the run logged', async () => /maintenance: sessions \{"expired":1,"loginFailures":0\}/.test(service.output()), 10_000);
      const runs = await db.query<{ job: string; runner: string }>(`SELECT job, runner FROM maintenance_runs WHERE job = 'sessions'`);
      assert.equal(runs.rows.length, 1);
    } finally {
      service.child.kill('SIGTERM');
      await service.exited;
    }
  });
});
