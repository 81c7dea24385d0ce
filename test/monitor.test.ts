import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import pg from 'pg';
import parsePrometheus from 'parse-prometheus-text-format';
import { MemoryBus } from '../src/bus/memory.ts';
import { loadConfig } from '../src/config.ts';
import { PostgresDatabase } from '../src/database/postgres.ts';
import { migrate } from '../src/schema/migrator.ts';
import { seed } from '../src/schema/seed.ts';
import { runMaintenanceJobs } from '../src/schema/maintenanceJobs.ts';
import { DEFAULT_THRESHOLDS } from '../src/ops/alerts.ts';
import { checkup } from '../src/ops/checkup.ts';
import { startService, type Service } from '../src/service/service.ts';
import { createServerDatabase, eachBackend, serverUnavailable } from './helpers/backends.ts';
import { ingest, tradeMsg } from './helpers/ingest.ts';
import { OwnPostgres, ownClusterUnavailable, postgresDir } from './helpers/pgcluster.ts';
import { runCli } from './helpers/cli.ts';
import { redisUnavailable, testNames } from './helpers/redis.ts';
import { serviceLog } from './helpers/exposure.ts';

const REQUIRE = process.env.TRADESTORE_REQUIRE_SERVERS === '1';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function alertLog(db: { query: PostgresDatabase['query'] }) {
  const { rows } = await db.query<{ alert: string; state: string }>(
    `SELECT details->>'alert' AS alert, details->>'state' AS state FROM system_logs WHERE category = 'alert' ORDER BY timestamp, id`,
  );
  return rows.map((r) => `${r.alert}:${r.state}`);
}

eachBackend('database report', (get) => {
  before(async () => {
    const { db } = get();
    await migrate(db);
    await seed(db);
    const day = 86_400_000;
    await ingest(db, new MemoryBus(), Array.from({ length: 50 }, (_, i) => tradeMsg('TATA_INR', `m${i}`, '100', '1', Date.now() - (i % 5) * day - 1000)));
  });

  it('reports every table largest first (hypertables with their chunks), connections, statements, jobs; nothing fires on a quiet database', async () => {
    const { db } = get();
    const { report, alerts } = await checkup(db, { bus: new MemoryBus(), thresholds: DEFAULT_THRESHOLDS });
    const names = report.tables.map((t) => t.name);
    for (const table of ['trades', 'orders', 'balances', 'ohlcv_1m', 'system_logs', 'ingest_offsets']) assert.ok(names.includes(table), table);
    assert.deepEqual(report.tables.map((t) => t.totalBytes), [...report.tables.map((t) => t.totalBytes)].sort((a, b) => b - a), 'largest first');
    const trades = report.tables.find((t) => t.name === 'trades')!;
    assert.ok(trades.totalBytes > 0 && trades.totalBytes >= trades.indexBytes);
    if (db.capabilities.timescaledb) {
      assert.equal(trades.kind, 'hypertable');
      assert.ok(trades.chunks! >= 1, 'the trades of five days are in chunks');
    } else assert.equal(trades.kind, 'table');
    assert.ok(report.database.sizeBytes > 0);
    assert.ok(report.connections.max > 0);
    if (db.backend === 'postgres') assert.ok(report.connections.total >= 1 && report.connections.pool !== null);
    if (!report.statements.available) assert.match(report.statements.hint, /shared_preload_libraries/);
    assert.equal(report.ingest?.deadLetters, 0);
    assert.ok(trades.rowsEstimate >= 0 && !trades.estimated);
    if (db.backend === 'embedded') assert.ok(report.disk && report.disk.totalBytes > 0, 'the embedded directory\'s disk');
    assert.deepEqual(alerts, []);
  });
});

describe('alerts, each triggered for real [postgres]', async () => {
  const reason = REQUIRE ? null : await serverUnavailable();
  if (reason) {
    it('skipped', { skip: reason }, () => {});
    return;
  }
  let server: { url: string; drop: () => Promise<void> };
  let db: PostgresDatabase;
  before(async () => {
    server = await createServerDatabase();
    db = await PostgresDatabase.open({ url: server.url, max: 3 });
    await migrate(db);
  });
  after(async () => {
    await db?.close();
    await server?.drop();
  });

  it('a blocking lock and a slow query: seen in the report and the CLI (exit 3), written to system_logs as they start and end', async () => {
    const holder = new pg.Client({ connectionString: server.url });
    const waiter = new pg.Client({ connectionString: server.url });
    await Promise.all([holder.connect(), waiter.connect()]);
    try {
      await holder.query('BEGIN');
      await holder.query('LOCK TABLE markets IN ACCESS EXCLUSIVE MODE');
      const blocked = waiter.query('SELECT count(*) FROM markets');
      await sleep(1300);
      const { report, alerts } = await checkup(db, { thresholds: DEFAULT_THRESHOLDS });
      const waits = report.lockWaits.find((w) => w.query.includes('FROM markets'));
      assert.ok(waits && waits.waitingSeconds > 1 && waits.blockedBy.length === 1, JSON.stringify(report.lockWaits));
      assert.ok(report.longRunning.some((q) => q.query.includes('FROM markets') && q.querySeconds! > 1));
      assert.deepEqual(alerts.map((a) => a.name).sort(), ['lock_wait', 'slow_query']);
      const cli = await runCli(['health'], { DATABASE_URL: server.url });
      assert.equal(cli.code, 3, cli.stderr);
      assert.match(cli.stdout, /ALERT lock_wait: 1 session\(s\) waiting for a lock/);
      assert.match(cli.stdout, /pid \d+ blocked by \d+/);
      assert.match(cli.stderr, /2 alerts active: (lock_wait, slow_query|slow_query, lock_wait)/);
      const json = JSON.parse((await runCli(['health', '--json'], { DATABASE_URL: server.url })).stdout);
      assert.ok(json.report.lockWaits.length >= 1);
      await holder.query('COMMIT');
      await blocked;
      assert.deepEqual((await checkup(db, { thresholds: DEFAULT_THRESHOLDS })).alerts, []);
      // Each start and each end written once, however many evaluations saw it (the CLI's included).
      assert.deepEqual((await alertLog(db)).sort(), ['lock_wait:firing', 'lock_wait:resolved', 'slow_query:firing', 'slow_query:resolved'].sort());
      assert.equal((await runCli(['health'], { DATABASE_URL: server.url })).code, 0);
    } finally {
      await holder.end();
      await waiter.end();
    }
  });

  it('a pool in use past 90%, a job that fails twice, dead letters, a disk past its threshold', async () => {
    // Every connection of the pool (3) busy when the checkup starts.
    const busy = Promise.all([1, 2, 3].map(() => db.query('SELECT pg_sleep(0.6)')));
    await sleep(100);
    const pooled = await checkup(db, { thresholds: DEFAULT_THRESHOLDS });
    await busy;
    assert.ok(pooled.alerts.some((a) => a.name === 'pool_utilisation' && a.value > 90), JSON.stringify(pooled.alerts));
    // The sessions job fails for real while its table is away, twice in a row.
    await db.query('ALTER TABLE user_sessions RENAME TO user_sessions_away');
    try {
      for (let i = 0; i < 2; i++) await runMaintenanceJobs(db, { job: 'sessions', force: true });
    } finally {
      await db.query('ALTER TABLE user_sessions_away RENAME TO user_sessions');
    }
    const failing = await checkup(db, { thresholds: DEFAULT_THRESHOLDS });
    assert.ok(failing.alerts.some((a) => a.name === 'failing_job' && a.message.includes('maintenance sessions')), JSON.stringify(failing.alerts));
    assert.ok(failing.report.jobs.some((j) => j.job === 'maintenance sessions' && j.failing && j.lastResult === 'failed'));
    await runMaintenanceJobs(db, { job: 'sessions', force: true });
    assert.ok(!(await checkup(db, { thresholds: DEFAULT_THRESHOLDS })).alerts.some((a) => a.name === 'failing_job'), 'a successful run ends it');
    // A message no one can apply becomes a dead letter: they grow.
    const bus = new MemoryBus();
    await ingest(db, bus, ['{"type":"NOT_A_TYPE","data":{}}']);
    const dead = await checkup(db, { bus, thresholds: DEFAULT_THRESHOLDS });
    assert.ok(dead.alerts.some((a) => a.name === 'dead_letters' && a.value === 1), JSON.stringify(dead.alerts));
    assert.equal((await checkup(db, { bus, thresholds: { ...DEFAULT_THRESHOLDS, deadLetterWindowMs: 1 }, record: false, })).alerts.length, 0, 'not after the window');
    // The disk: its real usage against a threshold it is past (the server's data directory, readable as root here).
    const disk = await checkup(db, { thresholds: { ...DEFAULT_THRESHOLDS, diskPercent: 1 } });
    if (disk.report.disk) assert.ok(disk.alerts.some((a) => a.name === 'disk_usage'));
    else assert.ok(!disk.alerts.some((a) => a.name === 'disk_usage'), 'no disk figure, no disk alert');
    // Each started and ended in system_logs, as the next checkups saw them go.
    await checkup(db, { thresholds: DEFAULT_THRESHOLDS });
    const log = await alertLog(db);
    for (const name of ['pool_utilisation', 'failing_job', 'dead_letters', ...(disk.report.disk ? ['disk_usage'] : [])]) {
      assert.ok(log.includes(`${name}:firing`) && log.includes(`${name}:resolved`), `${name} in ${log.join(', ')}`);
    }
  });
});

describe('the service monitor: /metrics, /v1/admin/database and seed 001\'s metrics keys [postgres+redis]', async () => {
  const reason = REQUIRE ? null : ((await serverUnavailable()) ?? (await redisUnavailable()));
  if (reason) {
    it('skipped', { skip: reason }, () => {});
    return;
  }
  let service: Service;
  let server: { url: string; drop: () => Promise<void> };
  const names = testNames();
  before(async () => {
    server = await createServerDatabase();
    service = await startService(loadConfig({ PORT: '0', DATABASE_URL: server.url, ...names.env, TRADESTORE_MONITOR_INTERVAL_MS: '60000', TRADESTORE_ALERT_SLOW_QUERY_MS: '300' }), { migrate: true, log: serviceLog });
  });
  after(async () => {
    await service?.stop();
    await names.cleanup();
    await server?.drop();
  });

  it('exposes each alert as tradestore_alert_active and the latest values under metrics:{component}:{name}', async () => {
    const slow = service.db.query('SELECT pg_sleep(0.8)');
    await sleep(500);
    const seen = await service.monitor!.runNow();
    await slow;
    assert.ok(seen?.alerts.some((a) => a.name === 'slow_query'), JSON.stringify(seen?.alerts));
    const text = await (await fetch(`http://127.0.0.1:${service.port}/metrics`)).text();
    const families = new Map(parsePrometheus(text).map((f) => [f.name, f]));
    const active = families.get('tradestore_alert_active')!;
    assert.equal(active.metrics.find((m) => m.labels?.alert === 'slow_query')?.value, '1');
    assert.equal(active.metrics.find((m) => m.labels?.alert === 'lock_wait')?.value, '0');
    assert.ok(Number(families.get('tradestore_database_size_bytes')!.metrics[0]!.value) > 0);
    assert.ok(families.get('tradestore_table_size_bytes')!.metrics.some((m) => m.labels?.table === 'trades'));
    const redis = (service.store.bus as unknown as { client: { get(k: string): Promise<string | null> } }).client;
    assert.ok(Number(await redis.get(`${names.names.keyPrefix}metrics:database:size_bytes`)) > 0);
    assert.equal(await redis.get(`${names.names.keyPrefix}metrics:alerts:slow_query`), '1');
    assert.equal(await redis.get('metrics:database:size_bytes'), null, 'under the deployment\'s prefix only');
  });

  it('ships a Grafana dashboard that parses and queries only metrics /metrics has', async () => {
    const dashboard = JSON.parse(readFileSync(new URL('../docs/grafana-dashboard.json', import.meta.url), 'utf8')) as { panels: { title: string; targets: { expr: string }[] }[] };
    const text = await (await fetch(`http://127.0.0.1:${service.port}/metrics`)).text();
    const families = new Set(parsePrometheus(text).map((f) => f.name));
    const queried = new Set(dashboard.panels.flatMap((p) => p.targets.flatMap((t) => [...t.expr.matchAll(/\b(tradestore|process|nodejs)_[a-z0-9_]+/g)].map((m) => m[0]))));
    assert.ok(queried.size >= 20, `${queried.size} metrics queried`);
    // A histogram's series are its name with _bucket, _sum and _count.
    const missing = [...queried].filter((m) => !families.has(m) && !families.has(m.replace(/_(bucket|sum|count)$/, '')));
    assert.deepEqual(missing, []);
    assert.ok(dashboard.panels.every((p) => p.title && p.targets.length > 0));
  });

  it('answers GET /v1/admin/database to the admin scope only', async () => {
    await service.db.query(`INSERT INTO users (id, email) VALUES ('root', 'r@example.com'), ('alice', 'a@example.com')`);
    const admin = (await service.store.apiKeys.create('root', ['read', 'admin'])).key;
    const reader = (await service.store.apiKeys.create('alice', ['read'])).key;
    const url = `http://127.0.0.1:${service.port}/v1/admin/database`;
    assert.equal((await fetch(url, { headers: { 'x-api-key': reader } })).status, 403);
    const response = await fetch(url, { headers: { 'x-api-key': admin } });
    assert.equal(response.status, 200);
    const body = (await response.json()) as { report: { tables: { name: string }[]; ingest: { lag: number } }; alerts: unknown[] };
    assert.ok(body.report.tables.some((t) => t.name === 'trades'));
    assert.equal(body.report.ingest.lag, 0);
  });
});

describe('the replication lag alert [a primary and a replica of the test\'s own]', { skip: ownClusterUnavailable() ?? false }, () => {
  it('lists every replica with its lag, and fires when one replays further behind than the threshold', async () => {
    const archive = postgresDir('tradestore-wal-');
    const primary = await OwnPostgres.init(archive);
    let replica: OwnPostgres | null = null;
    try {
      replica = await primary.replica();
      const db = await PostgresDatabase.open({ url: primary.url, max: 2 });
      const standby = await PostgresDatabase.open({ url: replica.url, max: 1 });
      try {
        for (let i = 0; i < 100 && !(await checkup(db, { thresholds: DEFAULT_THRESHOLDS, record: false })).report.replication.length; i++) await sleep(100);
        await standby.query('SELECT pg_wal_replay_pause()');
        await db.query('CREATE TABLE lag_probe (n int)');
        const thresholds = { ...DEFAULT_THRESHOLDS, replicationLagMs: 500 };
        let seen = await checkup(db, { thresholds, record: false });
        for (let i = 0; i < 50 && !seen.alerts.some((a) => a.name === 'replication_lag'); i++) {
          await db.query('INSERT INTO lag_probe SELECT generate_series(1, 100)');
          await sleep(200);
          seen = await checkup(db, { thresholds, record: false });
        }
        const lagging = seen.report.replication[0]!;
        assert.ok(seen.alerts.some((a) => a.name === 'replication_lag'), JSON.stringify(seen.report.replication));
        assert.equal(lagging.state, 'streaming');
        assert.ok(lagging.replayLagSeconds! > 0.5 && lagging.replayLagBytes! > 0, JSON.stringify(lagging));
        await standby.query('SELECT pg_wal_replay_resume()');
      } finally {
        await standby.close();
        await db.close();
      }
    } finally {
      await replica?.destroy();
      await primary.destroy();
      rmSync(archive, { recursive: true, force: true });
    }
  });
});
