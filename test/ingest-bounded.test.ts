import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import type { RedisBus } from '../src/bus/redis.ts';
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

  it('trims what every group has acknowledged, keeps what any group still needs, and shows length and memory in /metrics', async () => {
    await bus.ensureGroup();
    // Another consumer group (an analytics reader, say) reads the same stream more slowly.
    await redis.xgroup('CREATE', t.names.stream, 'slow-reader', '0');
    const T = Date.now() - 3_600_000;
    const ids: string[] = [];
    for (let i = 0; i < 3000; i++) {
      ids.push(await bus.add(JSON.stringify({ type: 'TRADE_ADDED', data: { market: 'TATA_INR', id: `b-${i}`, price: '100', quantity: '1', isBuyerMaker: true, timestamp: T + i } })));
    }
    const worker = new IngestWorker(fresh.db, bus, { consumer: 'bounded', blockMs: 10, trimIntervalMs: 0 });
    await drain(worker, bus);
    await worker.step();
    assert.equal(await redis.xlen(t.names.stream), 3000, 'the slow group has read nothing: everything stays');

    // The slow group reads and acknowledges the first 2000.
    const read = (await redis.xreadgroup('GROUP', 'slow-reader', 'r', 'COUNT', 2000, 'STREAMS', t.names.stream, '>')) as [string, [string, string[]][]][];
    await redis.xack(t.names.stream, 'slow-reader', ...read[0]![1].map(([id]) => id));
    await worker.step();
    const length = await redis.xlen(t.names.stream);
    assert.ok(length >= 1000 && length <= 1100, `only what the slow group still needs stays (approximate trimming): ${length}`);
    const first = (await redis.xrange(t.names.stream, '-', '+', 'COUNT', 1))[0]![0];
    assert.ok(first <= ids[2000]!, 'nothing the slow group has not acknowledged was removed');

    const text = await ingestRegistry(bus, worker).metrics();
    assert.match(text, new RegExp(`tradestore_ingest_stream_length ${length}`));
    assert.match(text, /tradestore_ingest_stream_memory_bytes [1-9]\d*/);
    assert.match(text, /tradestore_redis_used_memory_bytes [1-9]\d*/);
    await worker.stop();
  });

  it('a dead letter of bytes that are not UTF-8 and of an entry without a payload is replayed exactly as it arrived', async () => {
    await bus.ensureGroup();
    const odd = [
      [Buffer.from('payload'), Buffer.from([0x7b, 0xc3, 0x28, 0xff, 0x7d])],
      [Buffer.from('body'), Buffer.from('{"type":"TRADE_ADDED"}'), Buffer.from('via'), Buffer.from('engine-7')],
    ];
    const ids: string[] = [];
    for (const fields of odd) ids.push((await redis.xadd(t.names.stream, '*', ...fields)) as string);
    const worker = new IngestWorker(fresh.db, bus, { consumer: 'bounded-3', blockMs: 10 });
    await drain(worker, bus);
    await worker.stop();
    const letters = (await bus.listDead({ count: 100 })).filter((l) => ids.includes(l.source));
    assert.deepEqual(letters.map((l) => l.reason), ['payload is not valid UTF-8', 'entry has no "payload" field (its fields: "body", "via")']);
    await redis.xgroup('CREATE', t.names.stream, 'replay-check', '$');
    assert.equal(await bus.replayDead(letters.map((l) => l.id)), 2);
    const back = (await redis.xreadgroupBuffer('GROUP', 'replay-check', 'c', 'COUNT', 10, 'STREAMS', t.names.stream, '>')) as [Buffer, [Buffer, Buffer[]][]][];
    assert.deepEqual(back[0]![1].map(([, fields]) => fields), odd, 'the same fields and bytes, in the same order');
    await redis.xgroup('DESTROY', t.names.stream, 'replay-check');
  });

  it('an entry with thousands of fields is dead-lettered whole too', async () => {
    await bus.ensureGroup();
    const fields: Buffer[] = [Buffer.from('payload'), Buffer.from('{"type":"NOPE","data":{}}')];
    for (let i = 0; i < 5000; i++) fields.push(Buffer.from(`f${i}`), Buffer.from(String(i)));
    const id = (await redis.xadd(t.names.stream, '*', ...fields)) as string;
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
    await redis.del(t.names.dead);
    await redis.xadd(t.names.dead, old, 'source', '1-1', 'stream', t.names.stream, 'reason', 'old', 'attempts', '1', 'failed_at', new Date().toISOString(), 'f:payload', 'x');
    await bus.deadLetter([{ source: '2-2', reason: 'new', attempts: 1, payload: '{}' }]);
    assert.ok((await bus.readDead(old)) !== null, 'writing a new letter does not remove a 40-day-old one');
    await bus.trim(60 * 86_400_000);
    assert.ok((await bus.readDead(old)) !== null, 'kept with a 60-day retention');
    await bus.trim(30 * 86_400_000);
    assert.equal(await bus.readDead(old), null, 'removed with a 30-day retention');
  });

  it('/health names a missing consumer group', async () => {
    const { checkHealth } = await import('../src/service/health.ts');
    const worker = new IngestWorker(fresh.db, bus, { consumer: 'bounded-4', blockMs: 10 });
    await redis.xgroup('DESTROY', t.names.stream, t.names.group);
    const health = await checkHealth(fresh.db, bus, worker, { stallMs: 30_000 });
    assert.equal(health.status, 'degraded');
    assert.ok(health.causes.includes('ingest: the consumer group is missing (Redis lost it); the worker recreates it'), health.causes.join('; '));
    await drain(worker, bus);
    assert.equal((await checkHealth(fresh.db, bus, worker, { stallMs: 30_000 })).status, 'healthy', 'the worker recreated it');
    await worker.stop();
  });

  it('keeps dead letters for the retention, then removes them', async () => {
    await bus.ensureGroup();
    const before = (await bus.stats()).deadLetters;
    await bus.add('{"type":"NOPE","data":{}}');
    const worker = new IngestWorker(fresh.db, bus, { consumer: 'bounded-2', blockMs: 10, trimIntervalMs: 0, deadLetterRetentionMs: 60_000 });
    await drain(worker, bus);
    await worker.step();
    assert.equal((await bus.stats()).deadLetters, before + 1, 'kept within the retention');
    await new Promise((r) => setTimeout(r, 5));
    assert.equal((await bus.trim(0)).dead, before + 1, 'past the retention');
    assert.equal((await bus.stats()).deadLetters, 0);
    await worker.stop();
  });
});
