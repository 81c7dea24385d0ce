import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { Redis } from 'ioredis';
import { MemoryBus } from '../src/bus/memory.ts';
import { RedisBus } from '../src/bus/redis.ts';
import { fnv1a, ROUTING, shardOf } from '../src/bus/routing.ts';
import type { Bus } from '../src/bus/types.ts';
import { compareIds, ShardCountError } from '../src/bus/types.ts';
import { REDIS_URL, redisUnavailable } from './helpers/redis.ts';

const REQUIRE = process.env.TRADESTORE_REQUIRE_SERVERS === '1';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const trade = (market: string, id: string) => JSON.stringify({ type: 'TRADE_ADDED', data: { market, id, price: '1', quantity: '1', timestamp: 1763700000000 } });

describe('routing rule', () => {
  it('is FNV-1a over the UTF-8 key (published test vectors), modulo the shard count', () => {
    assert.equal(fnv1a(''), 0x811c9dc5);
    assert.equal(fnv1a('a'), 0xe40c292c);
    assert.equal(fnv1a('foobar'), 0xbf9cf968);
    assert.equal(shardOf(trade('TATA_INR', '1'), 8), fnv1a('market:TATA_INR') % 8);
    const position = JSON.stringify({ type: 'POSITION_UPDATE', data: { exchange: 'NSE', symbol: 'NIFTY', userId: 42, quantity: '1' } });
    assert.equal(shardOf(position, 16), fnv1a('position:NSE:NIFTY:42::') % 16);
    assert.equal(shardOf(JSON.stringify({ type: 'SYSTEM_LOG', data: { message: 'x' } }), 8), null, 'no ordering key: any shard');
    assert.equal(shardOf('not json', 8), null);
  });
});

describe('stream ids', () => {
  it('compare numerically, as Redis orders them', () => {
    const id = fc.tuple(fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }));
    fc.assert(
      fc.property(id, id, ([am, as], [bm, bs]) => {
        const want = am === bm ? (as === bs ? 0 : as < bs ? -1 : 1) : am < bm ? -1 : 1;
        return compareIds(`${am}-${as}`, `${bm}-${bs}`) === want;
      }),
      { numRuns: 2000 },
    );
    assert.equal(compareIds('1763700000123-9', '1763700000123-10'), -1);
    assert.equal(compareIds('999-0', '1000-0'), -1);
  });
});

for (const kind of ['memory', 'redis'] as const) {
  describe(`bus contract [${kind}]`, async () => {
    const reason = kind === 'redis' && !REQUIRE ? await redisUnavailable() : null;
    if (reason) {
      it('skipped', { skip: reason }, () => {});
      return;
    }
    let bus: Bus;
    const prefix = `tradestore-test:${randomBytes(4).toString('hex')}`;
    const open = (shards = 4) =>
      kind === 'memory'
        ? new MemoryBus(`${prefix}:events`, undefined, shards)
        : new RedisBus({ url: REDIS_URL, shards, names: { stream: `${prefix}:events`, list: `${prefix}:list`, keyPrefix: `${prefix}:` } });
    before(async () => {
      bus = open();
      await bus.init();
      await bus.init(); // a second time is fine
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
    const all = () => new Map([0, 1, 2, 3].map((s) => [s, '0-0']));

    it('puts an event in the shard of its ordering key; a shard is read in id order after a position', async () => {
      const a = await bus.add(trade('AAA_INR', '1'));
      const b = await bus.add(trade('AAA_INR', '2'));
      const c = await bus.add(trade('AAA_INR', '3'));
      assert.equal(a.shard, shardOf(trade('AAA_INR', '1'), 4));
      assert.ok(a.shard === b.shard && b.shard === c.shard);
      assert.ok(compareIds(a.id, b.id) < 0 && compareIds(b.id, c.id) < 0);
      const read = await bus.read(new Map([[a.shard, '0-0']]), 2, 10);
      assert.deepEqual(read.map((e) => [e.shard, e.id]), [[a.shard, a.id], [a.shard, b.id]]);
      assert.deepEqual((await bus.read(new Map([[a.shard, b.id]]), 10, 10)).map((e) => e.id), [c.id]);
      assert.equal((await bus.stats()).lag, 3);
      await bus.committed(a.shard, b.id);
      assert.equal((await bus.stats()).lag, 1, 'what is committed is trimmed');
      await bus.committed(a.shard, a.id);
      assert.equal((await bus.stats()).perShard[a.shard]!.offset, b.id, 'the recorded offset never moves back');
      await bus.committed(a.shard, c.id);
      assert.equal((await bus.stats()).lag, 0);
    });

    it('moves the seed list and the entry stream into the shards, oldest first, each item exactly once', async () => {
      await bus.pushList(trade('LIST_INR', 'first'));
      await bus.pushList(trade('LIST_INR', 'second'));
      await bus.addEntry(trade('LIST_INR', 'third'));
      await bus.addEntry('not json at all');
      let stats = await bus.stats();
      assert.deepEqual([stats.listLength, stats.entryStreamLength, stats.lag], [2, 2, 2]);
      assert.equal(await bus.route(100), 4);
      assert.equal(await bus.route(100), 0);
      stats = await bus.stats();
      assert.deepEqual([stats.listLength, stats.entryStreamLength, stats.lag], [0, 0, 4]);
      const read = await bus.read(all(), 100, 10);
      const shard = shardOf(trade('LIST_INR', 'x'), 4)!;
      // (the entry that is not JSON goes to any shard, perhaps this one)
      assert.deepEqual(read.filter((e) => e.shard === shard && e.payload!.startsWith('{')).map((e) => JSON.parse(e.payload!).data.id), ['first', 'second', 'third']);
      assert.ok(read.some((e) => e.payload === 'not json at all'));
      for (const e of read) await bus.committed(e.shard, e.id);
      assert.equal((await bus.stats()).lag, 0);
    });

    if (kind === 'redis') {
      it('the Lua router and the TypeScript rule pick the same shard for generated messages', async () => {
        const types = Object.keys(ROUTING);
        const value = fc.oneof(
          fc.string({ unit: 'grapheme', maxLength: 12 }),
          fc.string({ maxLength: 6 }),
          fc.integer({ min: -(2 ** 40), max: 2 ** 40 }),
          fc.constant(null),
          fc.double({ noNaN: true, noDefaultInfinity: true }),
          fc.boolean(),
          fc.constant(undefined),
        );
        const message = fc.record({ type: fc.constantFrom(...types), values: fc.array(value, { minLength: 6, maxLength: 6 }) });
        const samples = fc.sample(message, 400).map(({ type, values }) => {
          const data: Record<string, unknown> = {};
          ROUTING[type]!.slice(1).forEach((field, i) => {
            if (values[i] !== undefined) data[field] = values[i];
          });
          return JSON.stringify({ type, data });
        });
        const expected = samples.map((p) => shardOf(p, 4));
        for (const [i, p] of samples.entries()) {
          if (i % 2) await bus.pushList(p);
          else await bus.addEntry(p);
        }
        assert.equal(await bus.route(10_000), samples.length);
        const read = await bus.read(all(), 10_000, 10);
        assert.equal(read.length, samples.length);
        const landed = new Map<string, number[]>();
        for (const e of read) landed.set(e.payload!, [...(landed.get(e.payload!) ?? []), e.shard]);
        samples.forEach((p, i) => {
          if (expected[i] !== null) assert.ok(landed.get(p)!.every((s) => s === expected[i]), `${p}: Lua put it in ${landed.get(p)}, the rule says ${expected[i]}`);
        });
        for (const e of read) await bus.committed(e.shard, e.id);
      });

      it('routes an entry with more fields than a script can pass on, whole, exactly once, while an engine keeps adding', { timeout: 60_000 }, async () => {
        const r = new Redis(REDIS_URL);
        const engine = new Redis(REDIS_URL);
        const fields = Array.from({ length: 5000 }, (_, i) => [`f${i}`, `v${i}`]).flat();
        await r.xadd(`${prefix}:events`, '*', 'payload', trade('WIDE_INR', 'w'), ...fields);
        // An engine writing the entry stream all the time (a router that watched the stream itself would never get through).
        let sending = true;
        let sent = 0;
        const sender = (async () => {
          while (sending) await Promise.all(Array.from({ length: 20 }, () => engine.xadd(`${prefix}:events`, '*', 'payload', trade('BUSY_INR', `b${sent++}`))));
        })();
        try {
          let moved = 0;
          for (let i = 0; i < 50 && moved < 50; i++) moved += await bus.route(10);
        } finally {
          sending = false;
          await sender;
        }
        while ((await bus.route(1000)) > 0);
        const shard = shardOf(trade('WIDE_INR', 'w'), 4)!;
        const read = await bus.read(all(), 100_000, 10);
        const wide = read.filter((e) => e.payload && JSON.parse(e.payload).data.market === 'WIDE_INR');
        assert.equal(wide.length, 1, 'moved once');
        assert.equal(wide[0]!.shard, shard);
        assert.equal(read.length, sent + 1, 'every entry moved once');
        assert.equal((await bus.stats()).entryStreamLength, 0);
        assert.deepEqual(await r.keys(`${prefix}:events:routing:*`), [], 'no claim left behind');
        for (const e of read) await bus.committed(e.shard, e.id);
        r.disconnect();
        engine.disconnect();
      });

      it('leaves a wide entry that another router has claimed, without spinning on it, and moves it once the claim is gone', { timeout: 30_000 }, async () => {
        const r = new Redis(REDIS_URL);
        const fields = Array.from({ length: 5000 }, (_, i) => [`f${i}`, `v${i}`]).flat();
        const id = await r.xadd(`${prefix}:events`, '*', 'payload', trade('CLAIMED_INR', 'c'), ...fields);
        await r.set(`${prefix}:events:routing:${id}`, 'another-router', 'PX', 60_000);
        const t0 = Date.now();
        assert.equal(await bus.route(10), 0);
        assert.ok(Date.now() - t0 < 1000, 'returned at once');
        assert.equal((await bus.stats()).entryStreamLength, 1, 'left where it is');
        await r.del(`${prefix}:events:routing:${id}`);
        assert.equal(await bus.route(10), 1);
        const read = await bus.read(all(), 10, 10);
        assert.equal(read.length, 1);
        await bus.committed(read[0]!.shard, read[0]!.id);
        r.disconnect();
      });

      it('replays a dead letter into its own shard, whatever stream its fields name', async () => {
        const r = new Redis(REDIS_URL);
        const id = await r.xadd(`${bus.shardStream(1)}:dead`, '*', 'source', '5-0', 'stream', `${prefix}:elsewhere`, 'reason', 'old', 'attempts', '1', 'failed_at', new Date().toISOString(), 'f:payload', trade('OLD_INR', 'o1'));
        assert.equal(await bus.replayDead([`1:${id}`]), 1);
        assert.equal(await r.exists(`${prefix}:elsewhere`), 0);
        const [entry] = await bus.read(new Map([[1, '0-0']]), 10, 10);
        assert.equal(JSON.parse(entry!.payload!).data.market, 'OLD_INR');
        await bus.committed(1, entry!.id);
        r.disconnect();
      });
    }

    it('leases: one holder at a time, renewed by it, given up by it, lost when not renewed', async () => {
      assert.equal(await bus.acquire(0, 'w1', 200), true);
      assert.equal(await bus.acquire(0, 'w2', 200), false);
      assert.equal(await bus.acquire(0, 'w1', 200), true, 'the holder may take it again');
      assert.deepEqual(await bus.renew([0, 1], 'w1', 200), [0, 1]);
      assert.equal((await bus.stats()).perShard[0]!.owner, 'w1');
      await bus.release(0, 'w2');
      assert.equal(await bus.acquire(0, 'w2', 200), false, 'only the holder can give it up');
      await bus.release(0, 'w1');
      assert.equal(await bus.acquire(0, 'w2', 200), true);
      await sleep(300);
      assert.equal(await bus.acquire(0, 'w3', 200), true, 'an expired lease is free');
      assert.deepEqual(await bus.renew([0], 'w2', 200), [], 'and lost to its old holder');
      await bus.release(0, 'w3');
      await bus.release(1, 'w1');
    });

    it('membership: live workers, sorted; a worker that stops renewing drops out', async () => {
      assert.deepEqual(await bus.heartbeat('b', 200), ['b']);
      assert.deepEqual(await bus.heartbeat('a', 5000), ['a', 'b']);
      await sleep(300);
      assert.deepEqual(await bus.heartbeat('a', 5000), ['a']);
      await bus.leave('a');
      assert.deepEqual((await bus.stats()).workers, []);
    });

    it('counts owners that started at one offset; the count restarts when the offset moves', async () => {
      assert.equal(await bus.countStart(2, '5-0'), 1);
      assert.equal(await bus.countStart(2, '5-0'), 2);
      assert.equal(await bus.countStart(2, '6-0'), 1);
    });

    it('writes a dead letter once per source with a copy of its entry, lists previews over all shards, reads it whole and replays it', async () => {
      const payload = `{"type":"X","pad":"${'y'.repeat(5000)}"}`;
      const first = await bus.add(trade('DEAD_INR', 'd1'));
      const source = await bus.add(payload);
      await bus.deadLetter([{ shard: first.shard, source: first.id, payload: null, reason: 'first', attempts: 1 }]);
      await sleep(3); // letters of one millisecond in two shards are ordered by shard: this one is older
      const letter = { shard: source.shard, source: source.id, payload: null, reason: 'unknown type', attempts: 1 };
      await bus.deadLetter([letter]);
      await bus.deadLetter([letter]);
      const dead = await bus.listDead({ count: 10, previewBytes: 20 });
      assert.deepEqual(dead.map((d) => d.reason), ['first', 'unknown type'], 'oldest first over all shards');
      assert.deepEqual(
        { ...dead[1], id: undefined, failedAt: undefined },
        {
          id: undefined, failedAt: undefined, shard: source.shard, source: source.id, stream: bus.shardStream(source.shard), reason: 'unknown type', attempts: 1,
          lost: false, fields: [{ name: 'payload', bytes: payload.length, preview: payload.slice(0, 20) }],
        },
      );
      assert.match(dead[1]!.id, new RegExp(`^${source.shard}:\\d+-\\d+$`));
      assert.deepEqual((await bus.listDead({ count: 1, after: dead[0]!.id })).map((d) => d.id), [dead[1]!.id], 'paging');
      assert.deepEqual(await bus.listDead({ count: 10, after: dead[1]!.id }), []);
      const full = await bus.readDead(dead[1]!.id);
      assert.equal(full!.fields[0]!.value.toString(), payload);
      assert.equal(await bus.readDead('9:1-0'), null);
      assert.equal((await bus.stats()).deadLetters, 2);
      await bus.committed(source.shard, source.id);
      await bus.committed(first.shard, first.id);
      assert.equal(await bus.replayDead([dead[1]!.id]), 1);
      assert.equal((await bus.stats()).deadLetters, 1);
      const read = await bus.read(new Map([[source.shard, source.id]]), 10, 10);
      assert.deepEqual(read.map((e) => e.payload), [payload], 'back on its shard');
      await bus.committed(source.shard, read[0]!.id);
      assert.equal(await bus.replayDead('all'), 1);
      const again = await bus.read(new Map([[first.shard, first.id]]), 10, 10);
      assert.equal(again.length, 1);
      await bus.committed(first.shard, again[0]!.id);
    });

    it('blocks a read until an entry arrives', async () => {
      const from = new Map((await bus.stats()).perShard.map((p) => [p.shard, p.offset ?? '0-0']));
      const reading = bus.read(from, 10, 2000);
      await sleep(50);
      const late = await bus.add(trade('LATE_INR', 'l'));
      const got = await reading;
      assert.deepEqual(got.map((e) => e.id), [late.id]);
      await bus.committed(late.shard, late.id);
    });

    it('keeps the shard count: another count is refused, and resharding waits for an empty, unowned bus', async () => {
      if (kind === 'memory') {
        // Each process has its own in-process bus: its count is the configured one.
        await assert.rejects(bus.reshard(8), /set TRADESTORE_SHARDS and restart/);
        return;
      }
      const other = open(8);
      try {
        await assert.rejects(other.init(), (e: unknown) => e instanceof ShardCountError && /has 4 shards but TRADESTORE_SHARDS is 8/.test(e.message));
        const waiting = await bus.add(trade('WAIT_INR', 'w'));
        await assert.rejects(bus.reshard(8), /entries are waiting \(1 in the streams/);
        await bus.committed(waiting.shard, waiting.id);
        await bus.acquire(1, 'w1', 5000);
        await assert.rejects(bus.reshard(8), /workers still hold shards \(1: w1\)/);
        await bus.release(1, 'w1');
        await bus.reshard(8);
        await other.init();
        await bus.reshard(4);
      } finally {
        await other.close();
      }
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
