import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import WebSocket from 'ws';
import { loadConfig } from '../src/config.ts';
import { startService, type Service } from '../src/service/service.ts';
import { REDIS_URL, redisUnavailable } from './helpers/redis.ts';
import { depositMsg, tradeMsg } from './helpers/ingest.ts';
import { waitFor } from './helpers/service.ts';
import { serviceLog } from './helpers/exposure.ts';

/**
 * Two deployments on one Redis, each with its own TRADESTORE_REDIS_PREFIX and nothing else
 * named: neither sees the other's events, cache entries, publications or rate limits, and every
 * key they create carries their prefix.
 */

const REQUIRE = process.env.TRADESTORE_REQUIRE_SERVERS === '1';

async function allKeys(redis: Redis): Promise<string[]> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'COUNT', 1000);
    keys.push(...batch);
    cursor = next;
  } while (cursor !== '0');
  return keys;
}

describe('two deployments sharing one Redis [embedded+redis]', async () => {
  const reason = REQUIRE ? null : await redisUnavailable();
  if (reason) {
    it('skipped', { skip: reason }, () => {});
    return;
  }
  const run = `tradestore-test:${randomBytes(4).toString('hex')}`;
  const redis = new Redis(REDIS_URL);
  const deployments: { name: string; prefix: string; service: Service; base: string; key: string }[] = [];
  let keysBefore: Set<string>;

  before(async () => {
    keysBefore = new Set(await allKeys(redis));
    for (const name of ['a', 'b']) {
      const prefix = `${run}:${name}:`;
      const service = await startService(
        loadConfig({
          PORT: '0', TRADESTORE_DATA_DIR: 'memory://', REDIS_URL, TRADESTORE_REDIS_PREFIX: prefix, TRADESTORE_CONSUMER: `ns-${name}`,
          TRADESTORE_MAINTENANCE_TICK_MS: '0', TRADESTORE_RATE_LIMIT: '20',
        }),
        { migrate: true, log: serviceLog },
      );
      await service.db.query(`INSERT INTO users (id, email) VALUES ('alice', 'alice@example.com')`);
      const key = (await service.store.apiKeys.create('alice', ['read'])).key;
      deployments.push({ name, prefix, service, base: `http://127.0.0.1:${service.port}`, key });
    }
  });

  after(async () => {
    for (const d of deployments) await d.service.stop();
    const keys = await redis.keys(`${run}*`);
    if (keys.length) await redis.del(...keys);
    redis.disconnect();
  });

  const send = async (d: (typeof deployments)[number], messages: object[]) => {
    for (const m of messages) await d.service.bus.add(JSON.stringify(m));
    await waitFor(`ingest of ${d.name}`, async () => {
      const s = await d.service.bus.stats();
      return s.lag === 0 && s.listLength === 0 && d.service.worker!.holding === 0;
    });
  };
  const get = async (d: (typeof deployments)[number], path: string) => {
    const response = await fetch(`${d.base}${path}`, { headers: { 'x-api-key': d.key } });
    return { status: response.status, body: (await response.json()) as any };
  };
  const inr = (body: any) => body.balances.find((b: { asset: string }) => b.asset === 'INR')?.available;

  it('names the stream and the list under the prefix when they are not set', () => {
    const config = loadConfig({ TRADESTORE_REDIS_PREFIX: 'p:' });
    assert.deepEqual([config.bus.stream, config.bus.list, config.bus.keyPrefix], ['p:tradestore:events', 'p:db_processor', 'p:']);
    assert.equal(loadConfig({ TRADESTORE_REDIS_PREFIX: 'p:', TRADESTORE_STREAM: 'engine:events' }).bus.stream, 'engine:events');
    assert.deepEqual([loadConfig({}).bus.stream, loadConfig({}).bus.list], ['tradestore:events', 'db_processor'], "seed 000's names without a prefix");
    assert.throws(() => loadConfig({ TRADESTORE_REDIS_PREFIX: 'p:', TRADESTORE_KEY_PREFIX: 'q:' }), /differ/);
    // The older name never named the stream and the list: an upgraded deployment keeps reading where its engines write.
    const older = loadConfig({ TRADESTORE_KEY_PREFIX: 'p:' }).bus;
    assert.deepEqual([older.stream, older.list, older.keyPrefix], ['tradestore:events', 'db_processor', 'p:']);
  });

  it('keeps each deployment\'s events, cached balances and trades to itself', async () => {
    const [a, b] = deployments as [(typeof deployments)[number], (typeof deployments)[number]];
    await send(a, [depositMsg('alice', 'INR', '100')]);
    await send(b, [depositMsg('alice', 'INR', '7')]);
    assert.equal(Number(inr((await get(a, '/v1/account/balances')).body)), 100);
    assert.equal(Number(inr((await get(b, '/v1/account/balances')).body)), 7, "b serves its own balance, not a's cached one");
    // a's invalidation after a commit does not touch b's cache, and b's cached entry is b's.
    await send(a, [depositMsg('alice', 'INR', '50')]);
    assert.equal(Number(inr((await get(a, '/v1/account/balances')).body)), 150);
    assert.equal(Number(inr((await get(b, '/v1/account/balances')).body)), 7);
    await send(a, [tradeMsg('TATA_INR', 'ns-1', '130', '1', Date.now())]);
    assert.equal((await get(a, '/api/v3/trades?symbol=TATA_INR')).body.length, 1);
    assert.equal((await get(b, '/api/v3/trades?symbol=TATA_INR')).body.length, 0);
  });

  it('publishes live streams on prefixed channels that only its own subscribers hear', async () => {
    const [a, b] = deployments as [(typeof deployments)[number], (typeof deployments)[number]];
    const listen = (d: (typeof deployments)[number]) =>
      new Promise<{ socket: WebSocket; frames: any[] }>((resolve, reject) => {
        const socket = new WebSocket(`${d.base.replace('http', 'ws')}/ws/tata_inr@trade`);
        const frames: any[] = [];
        socket.on('message', (m) => frames.push(JSON.parse(String(m))));
        socket.once('open', () => resolve({ socket, frames })).once('error', reject);
      });
    const [onA, onB] = await Promise.all([listen(a), listen(b)]);
    let channels: string[] = [];
    await waitFor('subscriptions', async () => {
      channels = (await redis.pubsub('CHANNELS', '*')) as string[];
      return channels.filter((c) => c.startsWith(run)).length >= 2;
    }, 5000);
    const ours = channels.filter((c) => c.startsWith(run));
    assert.equal(ours.length, 2, channels.join(', '));
    assert.ok(ours.some((c) => c.startsWith(a.prefix)) && ours.some((c) => c.startsWith(b.prefix)));
    await send(a, [tradeMsg('TATA_INR', 'ns-2', '131', '1', Date.now())]);
    await waitFor('a\'s trade frame', async () => onA.frames.some((f) => f.e === 'trade'), 5000);
    await new Promise((r) => setTimeout(r, 300));
    assert.deepEqual(onB.frames, [], 'b hears nothing of a\'s trades');
    onA.socket.close();
    onB.socket.close();
  });

  it('counts rate limits per deployment', async () => {
    const [a, b] = deployments as [(typeof deployments)[number], (typeof deployments)[number]];
    let status = 0;
    for (let i = 0; i < 25 && status !== 429; i++) status = (await get(a, '/v1/account/positions')).status;
    assert.equal(status, 429);
    assert.equal((await get(b, '/v1/account/positions')).status, 200, 'the same user at the other deployment is not limited');
  });

  it('creates no key outside its prefix', async () => {
    const created = (await allKeys(redis)).filter((k) => !keysBefore.has(k));
    assert.ok(created.some((k) => k.startsWith(deployments[0]!.prefix)) && created.some((k) => k.startsWith(deployments[1]!.prefix)), 'both wrote keys');
    // Other test runs may create keys under their own tradestore-test: names meanwhile.
    const outside = created.filter((k) => !k.startsWith('tradestore-test:') || (k.startsWith(run) && !deployments.some((d) => k.startsWith(d.prefix))));
    assert.deepEqual(outside, []);
  });
});
