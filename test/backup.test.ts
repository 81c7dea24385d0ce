import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryBus } from '../src/bus/memory.ts';
import { loadConfig } from '../src/config.ts';
import { EmbeddedDatabase } from '../src/database/embedded.ts';
import { PostgresDatabase } from '../src/database/postgres.ts';
import { migrate } from '../src/schema/migrator.ts';
import { seed } from '../src/schema/seed.ts';
import { TIME_SERIES } from '../src/schema/lifecycle.ts';
import { backupEmbedded, backupServer, BackupError, restoreEmbedded, restoreServer } from '../src/ops/backup.ts';
import { digestTables, backupTables } from '../src/ops/manifest.ts';
import { startService, type Service } from '../src/service/service.ts';
import { createServerDatabase, serverUnavailable } from './helpers/backends.ts';
import { ingest, orderMsg, tradeMsg } from './helpers/ingest.ts';
import { redisUnavailable, testNames } from './helpers/redis.ts';
import { runCli } from './helpers/cli.ts';
import { serviceLog } from './helpers/exposure.ts';

const REQUIRE = process.env.TRADESTORE_REQUIRE_SERVERS === '1';

describe('backup and restore [postgres+redis]', async () => {
  const reason = REQUIRE ? null : ((await serverUnavailable()) ?? (await redisUnavailable()));
  if (reason) {
    it('skipped', { skip: reason }, () => {});
    return;
  }
  const names = testNames();
  const dir = mkdtempSync(join(tmpdir(), 'tradestore-backup-'));
  const servers: { url: string; drop: () => Promise<void> }[] = [];
  const server = async () => {
    const s = await createServerDatabase();
    servers.push(s);
    return s;
  };
  let source: { url: string };
  let service: Service;
  let archive: string;

  before(async () => {
    source = await server();
    service = await startService(loadConfig({ PORT: '0', DATABASE_URL: source.url, ...names.env, TRADESTORE_MONITOR_INTERVAL_MS: '0' }), { migrate: true, log: serviceLog });
    await seed(service.db);
    await service.db.query(`INSERT INTO users (id, email) VALUES ('alice', 'a@example.com')`);
  });
  after(async () => {
    await service?.stop();
    await names.cleanup();
    for (const s of servers) await s.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('backs up while ingest runs, restores into a fresh database, and every table matches the snapshot', async () => {
    let sending = true;
    let sent = 0;
    const t0 = Date.now() - 3_600_000;
    const engine = (async () => {
      while (sending) {
        await service.bus.add(JSON.stringify(tradeMsg('TATA_INR', `b${sent}`, (100 + (sent % 50) / 4).toFixed(2), '1.5', t0 + sent * 10)));
        if (sent % 10 === 0) await service.bus.add(JSON.stringify(orderMsg(`bo${sent}`, 'TATA_INR', 'buy', '99', '1', 'alice')));
        sent += 1;
        if (sent % 50 === 0) await new Promise((r) => setTimeout(r, 5));
      }
    })();
    await new Promise((r) => setTimeout(r, 1500));
    const lines: string[] = [];
    const { archive: made, manifest } = await backupServer(source.url, { outDir: dir, keep: 5, progress: (l) => lines.push(l) });
    archive = made;
    sending = false;
    await engine;
    const trades = manifest.tables.find((t) => t.name === 'trades')!;
    assert.ok(trades.rows > 0 && trades.rows < sent, `a snapshot in the middle of ingest: ${trades.rows} of ${sent} trades`);
    assert.ok(manifest.schemaVersion >= 10 && manifest.serverVersion && manifest.archiveBytes > 0);
    assert.ok(lines.some((l) => /manifest trades: \d+ rows/.test(l)), 'progress');
    assert.deepEqual(new Set(manifest.tables.map((t) => t.name)), new Set(await backupTables(service.db)));
    const target = await server();
    const results = await restoreServer(archive, target.url);
    assert.deepEqual(results.filter((r) => !r.ok), []);
    assert.equal(results.length, manifest.tables.length);
    // The restored rows are the source's rows of that instant: the same trades, value for value.
    const restored = await PostgresDatabase.open({ url: target.url, max: 1 });
    try {
      const { rows } = await restored.query<{ id: string; price: string; quote: string }>(`SELECT id, price::text, quote_quantity::text AS quote FROM trades ORDER BY sequence_number`);
      const { rows: original } = await service.db.query<{ id: string; price: string; quote: string }>(
        `SELECT id, price::text, quote_quantity::text AS quote FROM trades ORDER BY sequence_number LIMIT $1`,
        [trades.rows],
      );
      assert.deepEqual(rows, original);
    } finally {
      await restored.close();
    }
  });

  it('refuses a non-empty target, a truncated or corrupted archive, and restores chosen tables only', async () => {
    await assert.rejects(restoreServer(archive, source.url), /has \d+ tables: restore into an empty database, or pass --force/);
    const truncated = join(dir, 'truncated.dump');
    copyFileSync(archive, truncated);
    copyFileSync(`${archive}.manifest.json`, `${truncated}.manifest.json`);
    writeFileSync(truncated, readFileSync(truncated).subarray(0, 1000));
    const empty = await server();
    await assert.rejects(restoreServer(truncated, empty.url), (e: Error) => e instanceof BackupError && /truncated or corrupted/.test(e.message));
    const garbled = join(dir, 'garbled.dump');
    const bytes = readFileSync(archive);
    bytes.fill(0x41, 0, 64);
    writeFileSync(garbled, bytes);
    copyFileSync(`${archive}.manifest.json`, `${garbled}.manifest.json`);
    await assert.rejects(restoreServer(garbled, empty.url), /not a readable pg_dump archive/);
    // Chosen tables into a database with the schema: refused while they hold rows, replaced with --force.
    const chosen = await server();
    const db = await PostgresDatabase.open({ url: chosen.url, max: 2 });
    try {
      await migrate(db);
      await seed(db);
      await db.query(`INSERT INTO users (id, email) VALUES ('alice', 'a@example.com')`);
      const first = await restoreServer(archive, chosen.url, { tables: ['trades'] });
      assert.deepEqual(first.map((r) => [r.table, r.ok]), [['trades', true]]);
      await assert.rejects(restoreServer(archive, chosen.url, { tables: ['trades'] }), /trades \(\d+ rows\) not empty: pass --force/);
      await db.query(`DELETE FROM trades WHERE id = (SELECT min(id) FROM trades)`);
      const forced = await restoreServer(archive, chosen.url, { tables: ['trades'], force: true });
      assert.ok(forced[0]!.ok);
      assert.equal((await digestTables(db, ['orders']))[0]!.rows, 0, 'other tables untouched');
      await assert.rejects(restoreServer(archive, chosen.url, { tables: ['no_such'] }), /the archive has no table no_such/);
      await assert.rejects(restoreServer(archive, chosen.url, { tables: ['markets'], force: true }), /cannot empty markets before the restore: .*other tables refer to them/);
    } finally {
      await db.close();
    }
    // The whole archive over a database that has one (--force): it is made again, then restored and verified.
    const replaced = await restoreServer(archive, chosen.url, { force: true });
    assert.deepEqual(replaced.filter((r) => !r.ok), []);
  });

  it('takes time-series backups (--since): the window\'s rows of every time-series table, replaced and verified on restore', async () => {
    const out = join(dir, 'ts');
    const since = new Date(Date.now() - 3 * 3_600_000);
    const made = await runCli(['backup', '--since', since.toISOString(), '--out', out, '--keep', '2'], { DATABASE_URL: source.url });
    assert.equal(made.code, 0, made.stderr);
    const archive = join(out, readdirSync(out).find((f) => /^tradestore-ts-\d{8}T\d{9}Z$/.test(f))!);
    const manifest = JSON.parse(readFileSync(`${archive}.manifest.json`, 'utf8'));
    assert.equal(manifest.kind, 'timeseries');
    assert.ok(manifest.tables.find((t: { name: string; rows: number }) => t.name === 'trades').rows > 0);
    assert.ok(manifest.tables.some((t: { name: string }) => t.name === 'ohlcv_1m') && !manifest.tables.some((t: { name: string }) => t.name === 'markets'), 'time series only');
    const target = await server();
    const db = await PostgresDatabase.open({ url: target.url, max: 2 });
    try {
      await migrate(db);
      await seed(db);
      await db.query(`INSERT INTO users (id, email) VALUES ('alice', 'a@example.com')`);
      const restored = await runCli(['restore', archive, '--into', target.url], {});
      assert.equal(restored.code, 0, restored.stderr);
      assert.match(restored.stdout, /verified trades: \d+ rows, checksum matches/);
      // Rows came with their sequence numbers: the next trade is numbered after them.
      const { rows: numbers } = await db.query<{ next: string; max: string }>(
        `WITH n AS (INSERT INTO trades (id, market, price, quantity, is_buyer_maker, executed_at) VALUES ('after-restore', 'TATA_INR', 1, 1, false, now()) RETURNING sequence_number)
         SELECT (SELECT sequence_number FROM n)::text AS next, (SELECT max(sequence_number) FROM trades WHERE id <> 'after-restore')::text AS max`,
      );
      assert.ok(BigInt(numbers[0]!.next) > BigInt(numbers[0]!.max), JSON.stringify(numbers));
      await db.query(`DELETE FROM trades WHERE id = 'after-restore'`);
      const again = await runCli(['restore', archive, '--into', target.url], {});
      assert.equal(again.code, 1);
      assert.match(again.stderr, /already hold rows since .*: pass --force/);
      await db.query(`DELETE FROM trades WHERE id = (SELECT min(id) FROM trades)`);
      assert.equal((await runCli(['restore', archive, '--into', target.url, '--force'], {})).code, 0, 'the window replaced');
    } finally {
      await db.close();
    }
    for (let i = 0; i < 2; i++) assert.equal((await runCli(['backup', '--since', since.toISOString(), '--out', out, '--keep', '2'], { DATABASE_URL: source.url })).code, 0);
    assert.equal(readdirSync(out).filter((f) => /^tradestore-ts-\d{8}T\d{9}Z$/.test(f)).length, 2, 'the newest two time-series backups');
    assert.equal((await runCli(['backup', '--since', 'yesterday'], { DATABASE_URL: source.url })).code, 2);
  });

  it('is the CLI\'s backup and restore: a verification that fails exits 1, rotation keeps the newest', async () => {
    const out = join(dir, 'cli');
    for (let i = 0; i < 3; i++) {
      const made = await runCli(['backup', '--out', out, '--keep', '2'], { DATABASE_URL: source.url });
      assert.equal(made.code, 0, made.stderr);
      assert.match(made.stdout, /backup: .*tradestore-\d{8}T\d{9}Z\.dump \([\d.]+ MB, \d+ tables, \d+ rows; manifest beside it\)/);
    }
    const kept = readdirSync(out).filter((f) => f.endsWith('.dump'));
    assert.equal(kept.length, 2, 'the newest two');
    const target = await server();
    const restored = await runCli(['restore', join(out, kept[1]!), '--into', target.url], {});
    assert.equal(restored.code, 0, restored.stderr);
    assert.match(restored.stdout, /verified trades: \d+ rows, checksum matches/);
    assert.match(restored.stdout, /tables restored and verified/);
    // Recorded in the restored database's audit trail: who restored which archive.
    const trail = await PostgresDatabase.open({ url: target.url, max: 1 });
    try {
      const { rows } = await trail.query<{ actor: string; new_values: { archive: string; kind: string; mismatched: string[] } }>(`SELECT actor, new_values FROM audit_log WHERE action = 'database.restore'`);
      assert.deepEqual(rows.map((r) => [r.new_values.archive, r.new_values.kind, r.new_values.mismatched]), [[kept[1], 'pg_dump', []]]);
      assert.match(rows[0]!.actor, /^cli:/);
    } finally {
      await trail.close();
    }
    // A manifest that does not match its archive's contents: the restore reports the table and fails.
    const manifestFile = join(out, `${kept[0]}.manifest.json`);
    const manifest = JSON.parse(readFileSync(manifestFile, 'utf8'));
    manifest.tables.find((t: { name: string }) => t.name === 'markets').checksum = '1';
    writeFileSync(manifestFile, JSON.stringify(manifest));
    const other = await server();
    const failed = await runCli(['restore', join(out, kept[0]!), '--into', other.url], {});
    assert.equal(failed.code, 1);
    assert.match(failed.stdout, /MISMATCH markets/);
    assert.match(failed.stderr, /verification failed for 1 of \d+ tables: markets/);
    assert.equal((await runCli(['restore'], {})).code, 2);
    assert.equal((await runCli(['backup', '--tables', 'Bad Name'], { DATABASE_URL: source.url })).code, 2);
  });
});

describe('backup and restore [embedded, TimescaleDB]', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tradestore-backup-embedded-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('archives the data directory with its manifest and restores it into a new directory, verified', async () => {
    const db = await EmbeddedDatabase.open({ dataDir: join(dir, 'db') });
    let archive: string;
    try {
      await migrate(db);
      await seed(db);
      await ingest(db, new MemoryBus(), Array.from({ length: 200 }, (_, i) => tradeMsg('TATA_INR', `e${i}`, '100.5', '2', Date.now() - 86_400_000 * (i % 3) - 1000)));
      ({ archive } = await backupEmbedded(db, { outDir: join(dir, 'backups') }));
    } finally {
      await db.close();
    }
    const manifest = JSON.parse(readFileSync(`${archive}.manifest.json`, 'utf8'));
    assert.equal(manifest.kind, 'embedded');
    assert.ok(manifest.timescaledb);
    assert.equal(manifest.tables.find((t: { name: string }) => t.name === 'trades').rows, 200);
    const results = await restoreEmbedded(archive, join(dir, 'restored'));
    assert.deepEqual(results.filter((r) => !r.ok), []);
    assert.ok(results.length > 40);
    await assert.rejects(restoreEmbedded(archive, join(dir, 'restored')), /is not empty: restore into a new directory, or pass --force/);
    assert.ok(existsSync(join(dir, 'restored')));
    // The time-series tables are the database's hypertables.
    const restored = await EmbeddedDatabase.open({ dataDir: join(dir, 'restored') });
    try {
      const { rows } = await restored.query<{ name: string; column: string }>(
        `SELECT hypertable_name AS name, column_name AS column FROM timescaledb_information.dimensions WHERE hypertable_schema = 'public' ORDER BY 1`,
      );
      assert.deepEqual(Object.fromEntries(rows.map((r) => [r.name, r.column])), Object.fromEntries(Object.entries(TIME_SERIES).sort()));
    } finally {
      await restored.close();
    }
  });

  it('is taken by the running service (POST /v1/admin/backup) while ingest runs; the CLI points there', async () => {
    const dataDir = join(dir, 'live');
    const backups = join(dir, 'live-backups');
    const service = await startService(loadConfig({ PORT: '0', TRADESTORE_DATA_DIR: dataDir, TRADESTORE_BACKUP_DIR: backups, TRADESTORE_MONITOR_INTERVAL_MS: '0', TRADESTORE_MAINTENANCE_TICK_MS: '0' }), { migrate: true, log: serviceLog });
    let archive: string;
    try {
      await seed(service.db);
      await service.db.query(`INSERT INTO users (id, email) VALUES ('root', 'r@example.com')`);
      const admin = (await service.store.apiKeys.create('root', ['read', 'admin'])).key;
      let sending = true;
      let sent = 0;
      const engine = (async () => {
        while (sending) {
          await service.bus.add(JSON.stringify(tradeMsg('TATA_INR', `l${sent}`, '100', '1', Date.now() - 5000)));
          sent += 1;
          await new Promise((r) => setTimeout(r, 2));
        }
      })();
      await new Promise((r) => setTimeout(r, 500));
      const cli = await runCli(['backup'], { TRADESTORE_DATA_DIR: dataDir });
      assert.equal(cli.code, 1);
      assert.match(cli.stderr, /POST \/v1\/admin\/backup/);
      const response = await fetch(`http://127.0.0.1:${service.port}/v1/admin/backup`, { method: 'POST', headers: { 'x-api-key': admin } });
      const body = (await response.json()) as { archive: string; manifest: { kind: string; tables: { name: string; rows: number }[] } };
      assert.equal(response.status, 200, JSON.stringify(body));
      archive = body.archive;
      await new Promise((r) => setTimeout(r, 300));
      sending = false;
      await engine;
      const trades = body.manifest.tables.find((t) => t.name === 'trades')!;
      assert.ok(trades.rows > 0 && trades.rows < sent, `a state in the middle of ingest: ${trades.rows} of ${sent}`);
    } finally {
      await service.stop();
    }
    const results = await restoreEmbedded(archive, join(dir, 'live-restored'));
    assert.deepEqual(results.filter((r) => !r.ok), []);
  });
});
