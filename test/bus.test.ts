import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { MemoryBus } from '../src/bus/memory.ts';
import { RedisBus } from '../src/bus/redis.ts';
import type { Bus } from '../src/bus/types.ts';
import { compareIds } from '../src/bus/types.ts';

import { REDIS_URL, redisUnavailable } from './helpers/redis.ts';

const REQUIRE = process.env.TRADESTORE_REQUIRE_SERVERS === '1';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

for (const kind of ['memory', 'redis'] as const) {
  describe(`bus contract [${kind}]`, async () => {
    const reason = kind === 'redis' && !REQUIRE ? await redisUnavailable() : null;
    if (reason) {
      it('skipped', { skip: reason }, () => {});
      return;
    }
    let bus: Bus;
    const prefix = `tradestore-test:${randomBytes(4).toString('hex')}`;
    before(async () => {
      bus =
        kind === 'memory'
          ? new MemoryBus(`${prefix}:events`)
          : new RedisBus({ url: REDIS_URL, names: { stream: `${prefix}:events`, list: `${prefix}:list`, dead: `${prefix}:dead`, group: 'g', keyPrefix: `${prefix}:` } });
      await bus.ensureGroup();
      await bus.ensureGroup(); // a second time is fine
    });
    after(async () => {
      if (kind === 'redis') {
        const r = new Redis(REDIS_URL);
        const keys = await r.keys(`${prefix}*`);
        if (keys.length) await r.del(...keys);
        r.disconnect();
      }
      await bus.close();
    });

    it('delivers each entry to one consumer of the group, in id order, and forgets it once acknowledged', async () => {
      const ids = [await bus.add('a'), await bus.add('b'), await bus.add('c')];
      assert.ok(compareIds(ids[0]!, ids[1]!) < 0 && compareIds(ids[1]!, ids[2]!) < 0);
      const first = await bus.read('w1', 2, 10);
      const second = await bus.read('w2', 10, 10);
      assert.deepEqual(first.map((e) => [e.payload, e.deliveries]), [['a', 1], ['b', 1]]);
      assert.deepEqual(second.map((e) => e.payload), ['c']);
      const pending = await bus.pendingUpTo(ids[2]!, 10);
      assert.deepEqual(pending.map((p) => [p.id, p.consumer]), [[ids[0], 'w1'], [ids[1], 'w1'], [ids[2], 'w2']]);
      assert.deepEqual(Object.fromEntries(await bus.payloads([ids[1]!])), { [ids[1]!]: 'b' });
      await bus.ack(ids);
      assert.equal((await bus.stats()).pending, 0);
      assert.deepEqual(await bus.read('w1', 10, 10), []);
    });

    it('gives a restarted consumer its own pending entries back, counting the delivery', async () => {
      const id = await bus.add('again');
      await bus.read('w1', 10, 10);
      const back = await bus.readOwnPending('w1', 10);
      assert.deepEqual(back.map((e) => [e.id, e.payload, e.deliveries]), [[id, 'again', 2]]);
      await bus.ack([id]);
    });

    it('lets a live consumer claim what a dead one left idle', async () => {
      const id = await bus.add('orphan');
      await bus.read('dead-worker', 10, 10);
      assert.deepEqual(await bus.claimStale('w2', 60_000, 10), [], 'not idle long enough yet');
      await sleep(60);
      const claimed = await bus.claimStale('w2', 50, 10);
      assert.deepEqual(claimed.map((e) => [e.id, e.payload, e.deliveries]), [[id, 'orphan', 2]]);
      assert.equal((await bus.pendingUpTo(id, 10)).find((p) => p.id === id)?.consumer, 'w2');
      await bus.ack([id]);
    });

    it('moves the seed list into the stream oldest first (LPUSH then RPOP order)', async () => {
      await bus.pushList('first');
      await bus.pushList('second');
      assert.equal((await bus.stats()).listLength, 2);
      assert.equal(await bus.moveList(10), 2);
      assert.equal(await bus.moveList(10), 0);
      const read = await bus.read('w1', 10, 10);
      assert.deepEqual(read.map((e) => e.payload), ['first', 'second']);
      await bus.ack(read.map((e) => e.id));
    });

    it('writes a dead letter once per source with a copy of its entry, lists a preview, reads it whole and replays it', async () => {
      const payload = `{"type":"X","pad":"${'y'.repeat(5000)}"}`;
      const source = await bus.add(payload);
      assert.deepEqual((await bus.read('w1', 10, 10)).map((e) => e.id), [source]);
      const letter = { source, payload: null, reason: 'unknown type', attempts: 1 };
      await bus.deadLetter([letter]);
      await bus.deadLetter([letter]);
      const dead = await bus.listDead({ count: 10, previewBytes: 20 });
      assert.equal(dead.length, 1);
      assert.deepEqual(
        { ...dead[0], id: undefined, failedAt: undefined },
        { id: undefined, failedAt: undefined, source, stream: `${prefix}:events`, reason: 'unknown type', attempts: 1, lost: false, fields: [{ name: 'payload', bytes: payload.length, preview: payload.slice(0, 20) }] },
      );
      assert.deepEqual(await bus.listDead({ count: 10, after: dead[0]!.id }), []);
      const full = await bus.readDead(dead[0]!.id);
      assert.equal(full!.fields[0]!.value.toString(), payload);
      assert.equal((await bus.stats()).deadLetters, 1);
      await bus.ack([source]);
      assert.equal(await bus.replayDead([dead[0]!.id]), 1);
      assert.equal((await bus.stats()).deadLetters, 0);
      const read = await bus.read('w1', 10, 10);
      assert.deepEqual(read.map((e) => e.payload), [payload]);
      await bus.ack(read.map((e) => e.id));
    });

    it('blocks a read until an entry arrives', async () => {
      const reading = bus.read('w1', 10, 2000);
      await sleep(50);
      await bus.add('late');
      const got = await reading;
      assert.deepEqual(got.map((e) => e.payload), ['late']);
      await bus.ack(got.map((e) => e.id));
    });

    it('publishes to subscribers of a channel', async () => {
      const received: string[] = [];
      const stop = await bus.subscribe(`${prefix}:trades:TATA_INR`, (m) => received.push(m));
      await bus.publish(`${prefix}:trades:TATA_INR`, 'hello');
      for (let i = 0; i < 50 && received.length === 0; i++) await sleep(10);
      await stop();
      assert.deepEqual(received, ['hello']);
    });
  });
}
