import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { RedisBus } from '../src/bus/redis.ts';
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

async function health(service: ServiceProcess): Promise<number | null> {
  const port = /localhost:(\d+)/.exec(service.output())?.[1];
  if (!port) return null;
  try {
    return (await fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(5000) })).status;
  } catch {
    return null;
  }
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
    await bus.ensureGroup();
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
      const applied = async () => Number((await fresh.db.query<{ n: string }>(`SELECT count(*) AS n FROM ingest_applied`)).rows[0]!.n);
      for (const m of messages.slice(0, third)) await bus.add(m);
      await waitFor('first third applied', async () => (await applied()) >= third);

      // Redis restarts: the stream, the group and its pending entries survive on disk.
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
      await waitFor('drained', async () => {
        const s = await bus.stats();
        return s.pending === 0 && s.lag === 0 && (await applied()) >= messages.length;
      }, 60_000);
      assert.equal(await health(service), 200);
    } finally {
      service.child.kill('SIGTERM');
      await service.exited;
    }
    assert.deepEqual(await bus.listDead({ count: 10 }), []);
    assert.equal(Number((await fresh.db.query<{ n: string }>(`SELECT count(*) AS n FROM ingest_applied`)).rows[0]!.n), messages.length);
    assert.deepEqual(await differencesFromSimulator(fresh.db, sim), []);
    assert.deepEqual(await candleMismatches(fresh.db), []);
  });
});
