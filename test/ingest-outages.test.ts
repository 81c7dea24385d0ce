import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { Redis } from 'ioredis';
import { RedisBus } from '../src/bus/redis.ts';
import { shardOf } from '../src/bus/routing.ts';
import { shardKey } from '../src/bus/types.ts';
import { ApiKeyRepository } from '../src/store/apiKeys.ts';
import { migrate } from '../src/schema/migrator.ts';
import { seed } from '../src/schema/seed.ts';
import { EngineSimulator } from '../src/simulator/engine.ts';
import { ensureSimulatorUsers } from '../src/simulator/run.ts';
import { freshDatabase, serverUnavailable, type Fresh } from './helpers/backends.ts';
import { candleMismatches } from './helpers/candles.ts';
import { OwnRedis, TcpProxy, freePort } from './helpers/outages.ts';
import { differencesFromSimulator, spawnService, waitFor, type ServiceProcess } from './helpers/service.ts';

const REQUIRE = process.env.TRADESTORE_REQUIRE_SERVERS === '1';

function hasRedisServer(): string | null {
  try {
    execFileSync('redis-server', ['--version']);
    return null;
  } catch {
    return 'redis-server is not installed';
  }
}

async function healthBody(service: ServiceProcess, key?: string): Promise<{ status: number; body: Record<string, unknown> } | null> {
  const port = /localhost:(\d+)/.exec(service.output())?.[1];
  if (!port) return null;
  try {
    const response = await fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(5000), headers: key ? { 'x-api-key': key } : {} });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  } catch {
    return null;
  }
}

async function health(service: ServiceProcess): Promise<number | null> {
  return (await healthBody(service))?.status ?? null;
}

describe('ingest through outages [postgres+redis]', async () => {
  const reason = REQUIRE ? hasRedisServer() : ((await serverUnavailable()) ?? hasRedisServer());
  if (reason) {
    it('skipped', { skip: reason }, () => {});
    return;
  }
  let fresh: Fresh & { dispose: () => Promise<void> };
  let redis: OwnRedis;
  let proxy: TcpProxy;
  let bus: RedisBus;
  before(async () => {
    fresh = await freshDatabase('postgres');
    await migrate(fresh.db);
    await seed(fresh.db);
    redis = new OwnRedis(await freePort());
    await redis.start();
    const server = new URL(fresh.env.DATABASE_URL!);
    proxy = new TcpProxy(await freePort(), { host: server.hostname, port: Number(server.port || 5432) });
    await proxy.start();
    bus = new RedisBus({ url: redis.url });
    await bus.init();
  });
  after(async () => {
    await bus?.close();
    await proxy?.stop();
    await redis?.destroy();
    await fresh?.dispose();
  });

  it('a Redis restart and a PostgreSQL outage lose nothing; /health says unhealthy meanwhile', async () => {
    const sim = new EngineSimulator({ seed: 23, prefix: 'outage', startMs: Date.now() - 3_600_000 });
    await ensureSimulatorUsers(fresh.db, sim);
    const messages = [...sim.deposits(), ...sim.batch(3000)];
    const third = Math.floor(messages.length / 3);
    const viaProxy = new URL(fresh.env.DATABASE_URL!);
    viaProxy.hostname = '127.0.0.1';
    viaProxy.port = String(proxy.port);
    const service = spawnService({ DATABASE_URL: viaProxy.toString(), REDIS_URL: redis.url, TRADESTORE_CONSUMER: 'outage', TRADESTORE_BATCH_SIZE: '100' });
    try {
      await waitFor('service up', async () => (await health(service)) === 200);
      const drained = async () => (await bus.stats()).lag === 0;
      for (const m of messages.slice(0, third)) await bus.add(m);
      await waitFor('first third applied', drained);

      // Redis restarts: the shard streams survive on disk (the leases expire meanwhile, and are taken again).
      await bus.close();
      await redis.stop();
      await waitFor('unhealthy without Redis', async () => (await health(service)) === 503);
      await redis.start();
      bus = new RedisBus({ url: redis.url });
      for (const m of messages.slice(third, 2 * third)) await bus.add(m);
      await waitFor('healthy again', async () => (await health(service)) === 200);

      // PostgreSQL goes away while events keep arriving, then comes back.
      await proxy.cut();
      for (const m of messages.slice(2 * third)) await bus.add(m);
      await waitFor('unhealthy without PostgreSQL', async () => (await health(service)) === 503);
      await new Promise((r) => setTimeout(r, 1500));
      await proxy.restore();
      await waitFor('drained', drained, 60_000);
      assert.equal(await health(service), 200);
    } finally {
      service.child.kill('SIGTERM');
      await service.exited;
    }
    assert.deepEqual(await bus.listDead({ count: 10 }), []);
    assert.deepEqual(await differencesFromSimulator(fresh.db, sim), []);
    assert.deepEqual(await candleMismatches(fresh.db), []);
  });

  it('a Redis that comes back empty (no persistence, failover, deleted stream): the shards are taken again and nothing added afterwards is skipped', async () => {
    const empty = new OwnRedis(await freePort(), false);
    await empty.start();
    let engine = new RedisBus({ url: empty.url });
    const service = spawnService({ DATABASE_URL: fresh.env.DATABASE_URL!, REDIS_URL: empty.url, TRADESTORE_CONSUMER: 'lost-group' });
    const trade = (i: number) => JSON.stringify({ type: 'TRADE_ADDED', data: { market: 'RELIANCE_INR', id: `lg-${i}`, price: '2850', quantity: '1', isBuyerMaker: true, timestamp: Date.now() - 60_000 } });
    const count = async () => Number((await fresh.db.query<{ n: string }>(`SELECT count(*) AS n FROM trades WHERE id LIKE 'lg-%'`)).rows[0]!.n);
    try {
      await waitFor('service up', async () => (await health(service)) === 200);
      for (let i = 0; i < 50; i++) await engine.add(trade(i));
      await waitFor('first 50 applied', async () => (await count()) === 50);
      // Redis restarts with nothing: no streams, no leases, no shard count. The engine goes on at once.
      await engine.close();
      await empty.stop();
      await empty.start();
      engine = new RedisBus({ url: empty.url });
      for (let i = 50; i < 100; i++) await engine.add(trade(i));
      await waitFor('the 50 sent after the loss applied', async () => (await count()) === 100, 30_000);
      // The shard's stream is deleted outright while the service runs.
      const admin = new Redis(empty.url);
      await admin.del(shardKey('tradestore:events', shardOf(trade(0), 8)!));
      admin.disconnect();
      for (let i = 100; i < 150; i++) await engine.add(trade(i));
      await waitFor('the 50 sent after the deletion applied', async () => (await count()) === 150, 30_000);
      await waitFor('healthy again', async () => (await health(service)) === 200);
      assert.deepEqual(await engine.listDead({ count: 10 }), []);
    } finally {
      service.child.kill('SIGTERM');
      await service.exited;
      await engine.close();
      await empty.destroy();
    }
  });

  it('/health says degraded with the cause when ingest stops moving, without internals unless the caller is an admin', async () => {
    await fresh.db.query(`INSERT INTO users (id, email) VALUES ('ops', 'ops@example.com') ON CONFLICT DO NOTHING`);
    const key = (await new ApiKeyRepository(fresh.db).create('ops', ['admin'])).key;
    const engine = new RedisBus({ url: redis.url, names: { stream: 'stall:events', list: 'stall:list' } });
    const service = spawnService({
      DATABASE_URL: fresh.env.DATABASE_URL!, REDIS_URL: redis.url, TRADESTORE_CONSUMER: 'stall', TRADESTORE_STALL_MS: '1500',
      TRADESTORE_STREAM: 'stall:events', TRADESTORE_LIST: 'stall:list',
    });
    try {
      await waitFor('service up', async () => (await health(service)) === 200);
      await fresh.db.exec('ALTER TABLE ohlcv_1h RENAME TO ohlcv_1h_away');
      await engine.add(JSON.stringify({ type: 'TRADE_ADDED', data: { market: 'TATA_INR', id: 'stall-1', price: '1', quantity: '1', isBuyerMaker: true, timestamp: Date.now() - 1000 } }));
      await waitFor('degraded', async () => (await health(service)) === 503);
      await waitFor('stalled', async () => ((await healthBody(service))?.body.causes as string[]).some((c) => c.startsWith('ingest stalled: ')));
      const open = (await healthBody(service))!;
      assert.equal(open.body.status, 'degraded');
      assert.ok((open.body.causes as string[]).includes('ingest: the last batch failed to apply and is being retried'));
      assert.doesNotMatch(JSON.stringify(open.body), /ohlcv|relation|127\.0\.0\.1|SELECT|INSERT/, 'no internals for anyone');
      const admin = (await healthBody(service, key))!;
      assert.match(JSON.stringify(admin.body.detail), /relation \\"ohlcv_1h\\" does not exist/);
      await fresh.db.exec('ALTER TABLE ohlcv_1h_away RENAME TO ohlcv_1h');
      await waitFor('healthy once it moves', async () => (await health(service)) === 200);
      assert.equal((await fresh.db.query(`SELECT 1 FROM trades WHERE id = 'stall-1'`)).rows.length, 1);
    } finally {
      service.child.kill('SIGTERM');
      await service.exited;
      await engine.close();
    }
  });
});
