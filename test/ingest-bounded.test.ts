import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import type { RedisBus } from '../src/bus/redis.ts';
import { shardKey } from '../src/bus/types.ts';
import { IngestWorker } from '../src/ingest/worker.ts';
import { migrate } from '../src/schema/migrator.ts';
import { seed } from '../src/schema/seed.ts';
import { ingestRegistry } from '../src/service/metrics.ts';
import { freshDatabase, serverUnavailable, type Fresh } from './helpers/backends.ts';
import { drain } from './helpers/ingest.ts';
import { REDIS_URL, redisBus, redisUnavailable, testNames } from './helpers/redis.ts';

const REQUIRE = process.env.TRADESTORE_REQUIRE_SERVERS === '1';

describe('Redis stays bounded [postgres+redis]', async () => {
  const reason = REQUIRE ? null : ((await serverUnavailable()) ?? (await redisUnavailable()));
  if (reason) {
    it('skipped', { skip: reason }, () => {});
    return;
  }
  let fresh: Fresh & { dispose: () => Promise<void> };
  let bus: RedisBus;
  let redis: Redis;
  const t = testNames();
  before(async () => {
    fresh = await freshDatabase('postgres');
    await migrate(fresh.db);
    await seed(fresh.db);
    bus = redisBus(t.names);
    redis = new Redis(REDIS_URL);
  });
  after(async () => {
    redis.disconnect();
    await bus.close();
    await t.cleanup();
    await fresh.dispose();
  });

  it('a shard stream holds only what is not committed yet, and /metrics shows the lag and the memory', async () => {
    await bus.init();
    const T = Date.now() - 3_600_000;
    for (let i = 0; i < 3000; i++) {
      await bus.add(JSON.stringify({ type: 'TRADE_ADDED', data: { market: i % 2 ? 'TATA_INR' : 'HDFC_INR', id: `b-${i}`, price: '100', quantity: '1', isBuyerMaker: true, timestamp: T + i } }));
    }
    const lengths = async () => Promise.all([...Array(bus.shards).keys()].map((s) => redis.xlen(bus.shardStream(s))));
    assert.equal((await lengths()).reduce((a, b) => a + b, 0), 3000);
    const worker = new IngestWorker(fresh.db, bus, { consumer: 'bounded', blockMs: 10 });
    await drain(worker, bus);
    assert.deepEqual(await lengths(), Array(bus.shards).fill(0), 'every committed entry is trimmed from its shard');
    const text = await ingestRegistry(bus, worker).metrics();
    assert.match(text, /tradestore_ingest_lag 0/);
    assert.match(text, /tradestore_ingest_shards_owned 8/);
    assert.match(text, /tradestore_ingest_workers 1/);
    assert.match(text, /tradestore_ingest_stream_memory_bytes [1-9]\d*/);
    assert.match(text, /tradestore_redis_used_memory_bytes [1-9]\d*/);
    await worker.stop();
  });

  it('a dead letter of bytes that are not UTF-8 and of an entry without a payload is replayed exactly as it arrived', async () => {
    const odd = [
      [Buffer.from('payload'), Buffer.from([0x7b, 0xc3, 0x28, 0xff, 0x7d])],
      [Buffer.from('body'), Buffer.from('{"type":"TRADE_ADDED"}'), Buffer.from('via'), Buffer.from('engine-7')],
    ];
    const ids: string[] = [];
    for (const fields of odd) ids.push((await redis.xadd(bus.shardStream(5), '*', ...fields)) as string);
    const worker = new IngestWorker(fresh.db, bus, { consumer: 'bounded-3', blockMs: 10 });
    await drain(worker, bus);
    await worker.stop();
    const letters = (await bus.listDead({ count: 100 })).filter((l) => ids.includes(l.source));
    assert.deepEqual(letters.map((l) => l.reason), ['payload is not valid UTF-8', 'entry has no "payload" field (its fields: "body", "via")']);
    assert.equal(await redis.xlen(bus.shardStream(5)), 0);
    assert.equal(await bus.replayDead(letters.map((l) => l.id)), 2);
    const back = (await redis.xrangeBuffer(bus.shardStream(5), '-', '+')) as [Buffer, Buffer[]][];
    assert.deepEqual(back.map(([, fields]) => fields), odd, 'the same fields and bytes, in the same order, on the same shard');
    await redis.del(bus.shardStream(5));
  });

  it('an entry with thousands of fields is dead-lettered whole too', async () => {
    const fields: Buffer[] = [Buffer.from('payload'), Buffer.from('{"type":"NOPE","data":{}}')];
    for (let i = 0; i < 5000; i++) fields.push(Buffer.from(`f${i}`), Buffer.from(String(i)));
    const id = (await redis.xadd(bus.shardStream(2), '*', ...fields)) as string;
    const worker = new IngestWorker(fresh.db, bus, { consumer: 'bounded-5', blockMs: 10 });
    await drain(worker, bus);
    await worker.stop();
    const letter = (await bus.listDead({ count: 1000 })).find((l) => l.source === id);
    assert.ok(letter, 'dead-lettered');
    assert.match(letter.reason, /^unknown type "NOPE"/);
    const full = await bus.readDead(letter.id);
    assert.deepEqual(full!.fields.flatMap((f) => [Buffer.from(f.name), f.value]), fields);
  });

  it('dead letters are kept as long as TRADESTORE_DEAD_LETTER_DAYS says, even past 30 days', async () => {
    const old = `${Date.now() - 40 * 86_400_000}-0`;
    const dead = shardKey(t.names.stream, 0, ':dead');
    await redis.del(dead);
    await redis.xadd(dead, old, 'source', '1-1', 'stream', bus.shardStream(0), 'reason', 'old', 'attempts', '1', 'failed_at', new Date().toISOString(), 'f:payload', 'x');
    await bus.deadLetter([{ shard: 0, source: '2-2', reason: 'new', attempts: 1, payload: '{}' }]);
    assert.ok((await bus.readDead(`0:${old}`)) !== null, 'writing a new letter does not remove a 40-day-old one');
    await bus.trimDead(60 * 86_400_000);
    assert.ok((await bus.readDead(`0:${old}`)) !== null, 'kept with a 60-day retention');
    await bus.trimDead(30 * 86_400_000);
    assert.equal(await bus.readDead(`0:${old}`), null, 'removed with a 30-day retention');
  });

  it('/health names shards that have entries waiting and no owner', async () => {
    const { checkHealth } = await import('../src/service/health.ts');
    const worker = new IngestWorker(fresh.db, bus, { consumer: 'bounded-4', blockMs: 10 });
    const sent = await bus.add(JSON.stringify({ type: 'TRADE_ADDED', data: { market: 'TATA_INR', id: 'orphan', price: '100', quantity: '1', timestamp: Date.now() } }));
    const health = await checkHealth(fresh.db, bus, worker, { stallMs: 30_000 });
    assert.equal(health.status, 'degraded');
    assert.ok(health.causes.includes(`ingest: shard ${sent.shard} has entries waiting and no owner`), health.causes.join('; '));
    await drain(worker, bus);
    assert.equal((await checkHealth(fresh.db, bus, worker, { stallMs: 30_000 })).status, 'healthy', 'the worker took it');
    await worker.stop();
  });

  it('keeps dead letters for the retention, then removes them', async () => {
    const before = (await bus.stats()).deadLetters;
    await bus.add('{"type":"NOPE","data":{}}');
    const worker = new IngestWorker(fresh.db, bus, { consumer: 'bounded-2', blockMs: 10, trimIntervalMs: 0, deadLetterRetentionMs: 60_000 });
    await drain(worker, bus);
    await worker.step();
    assert.equal((await bus.stats()).deadLetters, before + 1, 'kept within the retention');
    await worker.stop();
    await new Promise((r) => setTimeout(r, 5));
    const expiring = new IngestWorker(fresh.db, bus, { consumer: 'bounded-2', blockMs: 10, trimIntervalMs: 0, deadLetterRetentionMs: 1 });
    await expiring.step();
    assert.equal((await bus.stats()).deadLetters, 0, 'removed by the worker past the retention');
    await expiring.stop();
  });
});
