import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { migrate } from '../src/schema/migrator.ts';
import { freshDatabase, serverUnavailable, type Fresh } from './helpers/backends.ts';
import { runCli } from './helpers/cli.ts';
import { redisBus, redisUnavailable, testNames } from './helpers/redis.ts';

const REQUIRE = process.env.TRADESTORE_REQUIRE_SERVERS === '1';

describe('tradestore ingest status | reshard [postgres+redis]', async () => {
  const reason = REQUIRE ? null : ((await serverUnavailable()) ?? (await redisUnavailable()));
  if (reason) {
    it('skipped', { skip: reason }, () => {});
    return;
  }
  const t = testNames();
  let fresh: Fresh & { dispose: () => Promise<void> };
  after(async () => {
    await t.cleanup();
    await fresh?.dispose();
  });

  it('shows the shards, and changes their number only on a drained bus that no worker holds', async () => {
    fresh = await freshDatabase('postgres');
    await migrate(fresh.db);
    const env = { ...fresh.env, ...t.env, TRADESTORE_SHARDS: '4' };
    const bus = redisBus(t.names, 4);
    await bus.init();
    const waiting = await bus.add(JSON.stringify({ type: 'TRADE_ADDED', data: { market: 'TATA_INR', id: '1', price: '1', quantity: '1', timestamp: Date.now() } }));
    await fresh.db.query(`INSERT INTO ingest_offsets (stream, shard, last_id) VALUES ($1, 3, '5-0')`, [t.names.stream]);

    const status = await runCli(['ingest', 'status', '--json'], env);
    assert.equal(status.code, 0, status.stderr);
    const parsed = JSON.parse(status.stdout);
    assert.equal(parsed.shards, 4);
    assert.equal(parsed.lag, 1);
    assert.deepEqual(parsed.perShard[3], { shard: 3, owner: null, waiting: waiting.shard === 3 ? 1 : 0, offset: '5-0' });

    const busy = await runCli(['ingest', 'reshard', '--shards', '8'], env);
    assert.equal(busy.code, 2);
    assert.match(busy.stderr, /cannot reshard: entries are waiting \(1 in the streams/);
    await bus.committed(waiting.shard, waiting.id);
    await bus.acquire(2, 'w-held', 60_000);
    const held = await runCli(['ingest', 'reshard', '--shards', '8'], env);
    assert.match(held.stderr, /cannot reshard: workers still hold shards \(2: w-held\)/);
    await bus.release(2, 'w-held');
    assert.match((await runCli(['ingest', 'reshard', '--shards', '6'], env)).stderr, /--shards N, a power of two from 1 to 1024/);

    const done = await runCli(['ingest', 'reshard', '--shards', '2'], env);
    assert.equal(done.code, 0, done.stderr);
    assert.match(done.stdout, /the bus has 2 shards now: set TRADESTORE_SHARDS=2/);
    assert.equal(await bus.recordedShards(), 2);
    const rows = await fresh.db.query<{ shard: number }>('SELECT shard FROM ingest_offsets WHERE stream = $1', [t.names.stream]);
    assert.deepEqual(rows.rows, [], "the offsets of the shards that went are gone");

    // A worker that still has the old count is refused at start, with what to do.
    const stale = await runCli(['start', '--no-api'], { ...env, PORT: '0' });
    assert.equal(stale.code, 1);
    assert.match(stale.stderr, /the bus has 2 shards but TRADESTORE_SHARDS is 4: changing it is an operation/);
    await bus.close();
  });
});
