import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { RedisBus } from '../src/bus/redis.ts';
import { fnv1a } from '../src/bus/routing.ts';
import { IngestWorker } from '../src/ingest/worker.ts';
import { migrate } from '../src/schema/migrator.ts';
import { seed } from '../src/schema/seed.ts';
import { freshDatabase, serverUnavailable, type Fresh } from './helpers/backends.ts';
import { candleMismatches } from './helpers/candles.ts';
import { OwnCluster } from './helpers/cluster.ts';
import { testNames } from './helpers/redis.ts';
import { killAll, spawnService, waitFor } from './helpers/service.ts';

const REQUIRE = process.env.TRADESTORE_REQUIRE_SERVERS === '1';
const SHARDS = 8;

function hasRedisTools(): string | null {
  try {
    execFileSync('redis-server', ['--version']);
    execFileSync('redis-cli', ['--version']);
    return null;
  } catch {
    return 'redis-server and redis-cli are not installed';
  }
}

describe('ingest on a Redis Cluster [postgres+redis-cluster]', async () => {
  const reason = REQUIRE ? hasRedisTools() : ((await serverUnavailable()) ?? hasRedisTools());
  if (reason) {
    it('skipped', { skip: reason }, () => {});
    return;
  }
  let fresh: Fresh & { dispose: () => Promise<void> };
  let cluster: OwnCluster;
  const t = testNames();
  // One market per shard, so that every shard (and so every master) carries trades.
  const markets: string[] = [];
  for (let i = 0; markets.length < SHARDS; i++) {
    const name = `C${i}_INR`;
    if (!markets.some((m) => fnv1a(`market:${m}`) % SHARDS === fnv1a(`market:${name}`) % SHARDS)) markets.push(name);
  }
  before(async () => {
    fresh = await freshDatabase('postgres');
    await migrate(fresh.db);
    await seed(fresh.db);
    await fresh.db.query(
      `INSERT INTO markets (symbol, base_asset, quote_asset, tick_size, step_size) SELECT m, split_part(m, '_', 1), 'INR', 0.01, 0.001 FROM unnest($1::text[]) m`,
      [markets],
    );
    cluster = await OwnCluster.start(3, 1);
  });
  after(async () => {
    killAll();
    await cluster?.destroy();
    await fresh?.dispose();
  });

  it('spreads the shards over the masters; a master killed mid-stream fails over: nothing is applied twice, candles stay exact, and only what the dead master had not replicated can be lost', async () => {
    const open = () => new RedisBus({ url: cluster.url, cluster: true, names: t.names, shards: SHARDS });
    const engine = open();
    await engine.init();
    const masters = await Promise.all(markets.map((_, shard) => cluster.masterOf(engine.shardStream(shard))));
    assert.ok(new Set(masters).size >= 2, `the shards are on ${new Set(masters).size} master(s)`);

    const worker = new IngestWorker(fresh.db, open(), { consumer: 'cluster-w', blockMs: 50, leaseMs: 1500 });
    const running = worker.start();
    const total = 3000;
    const acked = new Map<string, number>(); // trade id → when the engine got its OK
    let killedAt = 0;
    let failedOverAt = 0;
    let failover: Promise<unknown> = Promise.resolve();
    const T = Date.now() - 3_600_000;
    for (let i = 0; i < total; i++) {
      const market = markets[i % markets.length]!;
      const payload = JSON.stringify({ type: 'TRADE_ADDED', data: { market, id: `c-${i}`, price: `${100 + (i % 50)}.5`, quantity: '1', isBuyerMaker: i % 2 === 0, timestamp: T + i } });
      // An engine retries what failed (the same trade again: its id makes a repeat change nothing).
      for (let attempt = 0; ; attempt++) {
        try {
          await engine.add(payload);
          acked.set(`c-${i}`, Date.now());
          break;
        } catch (error) {
          if (attempt > 200) throw error;
          await new Promise((r) => setTimeout(r, 50));
        }
      }
      if (i === Math.floor(total / 3)) {
        // The engine goes on sending at once; what goes to the dead master's shards waits for its replica.
        await cluster.kill(masters[0]!);
        killedAt = Date.now();
        failover = cluster.waitServed(engine.shardStream(0)).then(() => (failedOverAt = Date.now()));
      }
    }
    await failover;
    const deadline = Date.now() + 60_000;
    while ((await engine.stats()).lag > 0) {
      if (Date.now() > deadline) throw new Error(`not drained: ${worker.lastError}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    await worker.stop();
    await running;

    const { rows } = await fresh.db.query<{ id: string; market: string; n: string }>(`SELECT id, market, count(*) OVER (PARTITION BY market, id) AS n FROM trades WHERE id LIKE 'c-%' ORDER BY market, sequence_number`);
    assert.ok(rows.every((r) => r.n === '1'), 'no trade stored twice');
    const stored = new Set(rows.map((r) => r.id));
    const lost = [...acked.keys()].filter((id) => !stored.has(id));
    const lostAfterFailover = lost.filter((id) => acked.get(id)! > failedOverAt);
    process.stderr.write(
      `# cluster: master on port ${masters[0]} killed; failover took ${failedOverAt - killedAt} ms; ${stored.size} of ${acked.size} acknowledged trades stored, ` +
        `${lost.length} lost (acknowledged by the dead master, not yet on its replica)\n`,
    );
    assert.deepEqual(lostAfterFailover, [], 'everything acknowledged after the failover is stored');
    assert.ok(lost.length < total / 10, `${lost.length} lost`);
    // Each market's trades are in the order the engine sent them.
    const byMarket = new Map<string, number[]>();
    for (const r of rows) byMarket.set(r.market, [...(byMarket.get(r.market) ?? []), Number(r.id.slice(2))]);
    for (const [market, ids] of byMarket) assert.deepEqual(ids, [...ids].sort((a, b) => a - b), `order of ${market}`);
    assert.deepEqual(await candleMismatches(fresh.db), []);
    assert.equal((await engine.stats()).deadLetters, 0);
    await engine.close();
  });

  it('the service runs on the cluster: /health, cached reads and their invalidation after a commit', async () => {
    const service = spawnService({ ...fresh.env, ...t.env, REDIS_URL: cluster.url, TRADESTORE_REDIS_CLUSTER: '1', TRADESTORE_SHARDS: String(SHARDS), TRADESTORE_CONSUMER: 'cluster-svc' });
    const engine = new RedisBus({ url: cluster.url, cluster: true, names: t.names, shards: SHARDS });
    try {
      await waitFor('service up', async () => /localhost:\d+/.test(service.output()));
      const base = `http://127.0.0.1:${/localhost:(\d+)/.exec(service.output())![1]}`;
      await waitFor('healthy', async () => (await fetch(`${base}/health`).catch(() => null))?.status === 200, 30_000);
      const trades = async () => (await (await fetch(`${base}/api/v3/trades?symbol=${markets[1]}&limit=1000`)).json()) as unknown[];
      const before = (await trades()).length;
      assert.ok(before > 0);
      await engine.add(JSON.stringify({ type: 'TRADE_ADDED', data: { market: markets[1], id: 'svc-1', price: '1', quantity: '1', isBuyerMaker: true, timestamp: Date.now() } }));
      await waitFor('the new trade stored', async () => (await fresh.db.query(`SELECT 1 FROM trades WHERE id = 'svc-1'`)).rows.length === 1, 15_000).catch((error: Error) => {
        throw new Error(`${error.message}\n${service.output()}`);
      });
      await waitFor('the new trade served (the cache was invalidated on the cluster)', async () => (await trades()).length === Math.min(1000, before + 1), 5_000);
    } finally {
      service.child.kill('SIGTERM');
      assert.equal(await service.exited, 0, service.output());
      await engine.close();
    }
  });
});
