import { before, it } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { shardOf } from '../src/bus/routing.ts';
import type { Bus } from '../src/bus/types.ts';
import type { Database, Queryable } from '../src/database/types.ts';
import { APPLIERS, applyBatch, type BatchItem } from '../src/ingest/apply/batch.ts';
import type { Effects, Entry } from '../src/ingest/apply/types.ts';
import { decodeEvent } from '../src/ingest/events/decode.ts';
import { IngestWorker } from '../src/ingest/worker.ts';
import type { Fresh } from './helpers/backends.ts';
import { REDIS_URL } from './helpers/redis.ts';
import { eachIngestSetup } from './helpers/setups.ts';
import { drain } from './helpers/ingest.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const balance = (userId: string, asset: string, change: string) =>
  JSON.stringify({ type: 'BALANCE_UPDATE', data: { userId, asset, availableChange: change } });

/** `target` with some of its methods replaced (the rest bound to it). */
function patched<T extends object>(target: T, replace: (prop: string | symbol) => unknown): T {
  return new Proxy(target, {
    get(t, prop, receiver) {
      const replacement = replace(prop);
      if (replacement) return replacement;
      const value = Reflect.get(t, prop, receiver);
      return typeof value === 'function' ? value.bind(t) : value;
    },
  });
}

/**
 * What shard ownership must survive besides a clean run: owners that stop at one entry again and
 * again, a batch that outlasts the lease, an owner that committed and died before its dead
 * letters, completions that keep failing while reads succeed, and a rebalance that fails half-way.
 */
eachIngestSetup('ingest ownership', (get, setup) => {
  let fresh: Fresh;
  let bus: Bus;
  before(async () => {
    ({ fresh, bus } = get());
    await fresh.db.query(`INSERT INTO users (id, email) VALUES ('u1', 'u1@example.com'), ('u2', 'u2@example.com'), ('u3', 'u3@example.com')`);
  });
  const available = async (userId: string, asset: string) =>
    (await fresh.db.query<{ a: string }>('SELECT available_balance::text AS a FROM balances WHERE user_id = $1 AND asset = $2', [userId, asset])).rows[0]?.a;

  it('an entry that stops every owner, anywhere in their batch, is found by itself within a few owners and dead-lettered', async () => {
    const sent = [];
    for (let i = 1; i <= 12; i++) sent.push(await bus.add(balance('u1', 'STP', String(i))));
    const poison = sent[8]!;
    // Applying the poison stops the owner: its transaction fails and the test abandons it, as a kill would.
    let hit = false;
    const original = APPLIERS.BALANCE_UPDATE;
    APPLIERS.BALANCE_UPDATE = async (tx: Queryable, list: Entry<'BALANCE_UPDATE'>[], effects: Effects) => {
      if (list.some((e) => e.key.endsWith(`:${poison.id}`))) {
        hit = true;
        await tx.query(`DO $$ BEGIN RAISE EXCEPTION 'the owner stops here (test)' USING ERRCODE = '57P01'; END $$`);
      }
      return original(tx, list, effects);
    };
    let stopped = 0;
    try {
      for (let owner = 0; owner < 40; owner++) {
        const worker = new IngestWorker(fresh.db, bus, { consumer: `stopping-${owner}`, blockMs: 10, leaseMs: 100, maxStarts: 2 });
        hit = false;
        for (let i = 0; i < 100 && !hit && ((await bus.stats()).lag > 0 || worker.holding > 0 || i === 0); i++) await worker.step();
        if (!hit) {
          await worker.stop();
          break;
        }
        stopped += 1;
        await sleep(150); // its lease lapses
      }
    } finally {
      APPLIERS.BALANCE_UPDATE = original;
    }
    // The first owner stops in a batch; the next applies one by one up to the poison and stops
    // there; from then on the count is at the poison's own offset: 2 + maxStarts owners at most.
    assert.ok(stopped <= 4, `${stopped} owners stopped (one by one from the first stop, it takes at most 4)`);
    const letter = (await bus.listDead({ count: 100 })).find((d) => d.source === poison.id);
    assert.ok(letter, 'the poison is dead-lettered');
    assert.match(letter.reason, /started at this entry 3 times, and each stopped before committing it/);
    assert.equal(await available('u1', 'STP'), `${78 - 9}.00000000`, 'every other entry applied once');
  });

  it('a batch that takes longer than the lease keeps its shards: the leases are renewed beside it', async () => {
    let slow = false;
    const slowDb = patched(fresh.db, (prop) =>
      prop === 'transaction' && slow
        ? async (fn: (tx: Queryable) => Promise<unknown>) => {
            await sleep(3500);
            return fresh.db.transaction(fn);
          }
        : null,
    ) as Database;
    const worker = new IngestWorker(slowDb, bus, { consumer: 'keeper', blockMs: 10, leaseMs: 1000 });
    const running = worker.start();
    for (let i = 0; i < 100 && worker.ownership.owned.size < bus.shards; i++) await sleep(20);
    assert.equal(worker.ownership.owned.size, bus.shards);
    slow = true;
    const entry = await bus.add(balance('u2', 'KEEP', '3'));
    await sleep(200);
    // Three times the lease: without renewal beside the batch, the lease would lapse in the first third.
    const taken: number[] = [];
    for (const until = Date.now() + 3000; Date.now() < until; await sleep(50)) {
      if (await bus.acquire(entry.shard, 'intruder', 300)) {
        taken.push(Date.now());
        await bus.release(entry.shard, 'intruder');
      }
    }
    slow = false;
    for (let i = 0; i < 200 && (await available('u2', 'KEEP')) === undefined; i++) await sleep(20);
    await worker.stop();
    await running;
    assert.deepEqual(taken, [], 'no other worker could take the shard while the batch was applied');
    assert.equal(await available('u2', 'KEEP'), '3.00000000');
  });

  it('an owner that committed and died before its dead letters: the next owner writes them, whole, before it trims', async () => {
    const worker = new IngestWorker(fresh.db, bus, { consumer: 'survivor', blockMs: 10 });
    await worker.ownership.rebalance();
    const refused = balance('u3', 'OUT', '-5');
    const bad = await bus.add(refused);
    const good = await bus.add(balance('u3', 'OUT', '8'));
    assert.equal(bad.shard, good.shard);
    // Another owner of the shard (one that took it while this one stalled) commits the refused
    // entry, with its reject in the outbox, and dies before writing the dead letter.
    const decoded = decodeEvent(refused);
    assert.ok(decoded.ok);
    const key = `entry:${bus.shardStream(bad.shard)}:${bad.id}`;
    const item: BatchItem = { shard: bad.shard, id: bad.id, key, entry: { key, event: decoded.event }, invalid: null };
    const offset = worker.ownership.offsets.committed.get(bad.shard)!;
    const outcome = await applyBatch(fresh.db, [item], { stream: bus.stream, committed: new Map([[bad.shard, offset]]) });
    assert.equal(outcome.rejected.length, 1);
    await drain(worker, bus);
    await worker.stop();
    const letter = (await bus.listDead({ count: 100 })).find((d) => d.source === bad.id);
    assert.ok(letter, 'the dead letter is written');
    assert.equal(letter.lost, false, 'with its entry, copied before the shard was trimmed');
    assert.equal((await bus.readDead(letter.id))!.fields.find((f) => f.name === 'payload')!.value.toString(), refused);
    assert.equal((await fresh.db.query('SELECT 1 FROM ingest_rejects WHERE stream = $1', [bus.stream])).rows.length, 0, 'the outbox is empty');
    assert.equal(await available('u3', 'OUT'), '8.00000000');
  });

  it('completions that keep failing while reads succeed back off instead of spinning', { timeout: 60_000 }, async () => {
    let failing = false;
    let calls = 0;
    const flaky = patched(bus, (prop) =>
      prop === 'committed' && failing
        ? async () => {
            calls += 1;
            throw new Error('connection lost (test)');
          }
        : null,
    );
    const worker = new IngestWorker(fresh.db, flaky, { consumer: 'patient', blockMs: 10 });
    const running = worker.start();
    for (let i = 0; i < 100 && worker.ownership.owned.size < bus.shards; i++) await sleep(20);
    // The shards are taken (which trims them too); from now on the trims after each commit fail.
    failing = true;
    await bus.add(balance('u2', 'SPIN', '1'));
    await sleep(1500);
    const during = calls;
    failing = false;
    for (let i = 0; i < 300 && ((await bus.stats()).lag > 0 || worker.holding > 0); i++) await sleep(20);
    await worker.stop();
    await running;
    assert.ok(during >= 2, `the trim was retried (${during} times)`);
    assert.ok(during <= 12, `with backoff: ${during} tries in 1.5 s`);
    assert.equal((await bus.stats()).lag, 0, 'then trimmed');
    assert.equal(await available('u2', 'SPIN'), '1.00000000');
  });

  // The in-process bus numbers entries with one counter, which never goes back: Redis only.
  if (setup === 'postgres+redis') it('a shard stream that is gone is made again after the offset, whatever the clock; one restored behind it is reported, not applied again', async () => {
    const redis = new Redis(REDIS_URL);
    const shard = shardOf(balance('u3', 'CLK', '1'), bus.shards)!;
    const stream = bus.shardStream(shard);
    // The offset was committed on a Redis whose clock ran an hour ahead of this one's (a failover
    // to a host with a slow clock), and the shard's stream is gone.
    const ahead = `${Date.now() + 3_600_000}-0`;
    await fresh.db.query(
      `INSERT INTO ingest_offsets (stream, shard, last_id) VALUES ($1, $2, $3) ON CONFLICT (stream, shard) DO UPDATE SET last_id = $3`,
      [bus.stream, shard, ahead],
    );
    await redis.del(stream);
    const lines: string[] = [];
    const worker = new IngestWorker(fresh.db, bus, { consumer: 'clock', blockMs: 10, leaseMs: 200, log: (l) => lines.push(l) });
    await worker.step(); // takes the shard: the stream is made again, after the offset
    for (const change of ['1', '2']) await bus.add(balance('u3', 'CLK', change));
    await drain(worker, bus);
    assert.equal(await available('u3', 'CLK'), '3.00000000', 'taken over: what the engine sent afterwards is applied');
    // The same while the worker owns the shard: the stream is deleted, the next round makes it again.
    await redis.del(stream);
    await sleep(60);
    await worker.step();
    await bus.add(balance('u3', 'CLK', '4'));
    await drain(worker, bus);
    await worker.stop();
    assert.equal(await available('u3', 'CLK'), '7.00000000', 'owned: applied, not skipped');
    assert.equal(lines.filter((l) => /its stream was gone; made again/.test(l)).length, 2, lines.join('\n'));
    // A stream restored from an older snapshot: entries behind the offset, already applied. They are
    // reported and trimmed, not applied again.
    await redis.del(stream);
    const before = Date.now() - 60_000;
    for (let i = 0; i < 3; i++) await redis.xadd(stream, `${before}-${i}`, 'payload', balance('u3', 'CLK', '100'));
    const next = new IngestWorker(fresh.db, bus, { consumer: 'clock-2', blockMs: 10, leaseMs: 200, log: (l) => lines.push(l) });
    await drain(next, bus);
    await next.stop();
    redis.disconnect();
    assert.equal(await available('u3', 'CLK'), '7.00000000', 'restored entries are not applied again');
    assert.ok(lines.some((l) => l.includes(`shard ${shard}: WARNING its stream's last id ${before}-2 is behind the shard's offset`)), lines.join('\n'));
  });

  it('a rebalance that gives a shard up and then fails: nothing is applied twice or skipped', async () => {
    let failRelease = false;
    const first = new IngestWorker(
      fresh.db,
      patched(bus, (prop) => (prop === 'release' && failRelease ? async () => Promise.reject(new Error('connection lost (test)')) : null)),
      { consumer: 'a-first', blockMs: 10, leaseMs: 200 },
    );
    const second = new IngestWorker(fresh.db, bus, { consumer: 'b-second', blockMs: 10, leaseMs: 200 });
    await first.step();
    assert.equal(first.ownership.owned.size, bus.shards);
    // u4's shard (1) is the first one the first worker gives up when the second joins; u1's (2) it keeps.
    const users = ['u1', 'u4', 'u2'];
    await fresh.db.query(`INSERT INTO users (id, email) VALUES ('u4', 'u4@example.com')`);
    let expected = 0;
    const send = async (from: number, to: number) => {
      for (let i = from; i <= to; i++) {
        await bus.add(balance(users[i % 3]!, 'REB', String(i)));
        expected += i;
      }
    };
    await send(1, 30);
    await second.ownership.rebalance(); // joins; its shards are still leased to the first
    await sleep(50);
    failRelease = true;
    await first.step(); // gives shard 1 up, fails to release it: the round stops there
    failRelease = false;
    assert.equal(first.ownership.owned.has(1), false);
    await send(31, 60);
    for (let i = 0; i < 400; i++) {
      await first.step();
      await second.step();
      if ((await bus.stats()).lag === 0 && first.holding === 0 && second.holding === 0) break;
      await sleep(5);
    }
    await first.stop();
    await second.stop();
    const { rows } = await fresh.db.query<{ t: string }>(`SELECT sum(available_balance)::text AS t FROM balances WHERE asset = 'REB'`);
    assert.equal(Number(rows[0]!.t), expected);
    assert.ok(first.metrics.eventsApplied > 0 && second.metrics.eventsApplied > 0, `both applied a share (${first.metrics.eventsApplied}, ${second.metrics.eventsApplied})`);
    assert.equal(first.metrics.eventsApplied + second.metrics.eventsApplied, 60);
  });
});
