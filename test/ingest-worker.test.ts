import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryBus } from '../src/bus/memory.ts';
import type { Bus } from '../src/bus/types.ts';
import { migrate } from '../src/schema/migrator.ts';
import { seed } from '../src/schema/seed.ts';
import { IngestWorker } from '../src/ingest/worker.ts';
import { freshDatabase, serverUnavailable, type Fresh } from './helpers/backends.ts';
import { redisBus, redisUnavailable, testNames } from './helpers/redis.ts';
import { candleMismatches } from './helpers/candles.ts';
import { drain } from './helpers/ingest.ts';

const REQUIRE = process.env.TRADESTORE_REQUIRE_SERVERS === '1';

const msg = (type: string, data: object, extra: object = {}) => JSON.stringify({ type, data, ...extra });

for (const setup of ['embedded+memory', 'postgres+redis'] as const) {
  describe(`ingest worker [${setup}]`, async () => {
    const reason =
      setup === 'postgres+redis' && !REQUIRE ? ((await serverUnavailable()) ?? (await redisUnavailable())) : null;
    if (reason) {
      it('skipped', { skip: reason }, () => {});
      return;
    }
    let fresh: Fresh & { dispose: () => Promise<void> };
    let bus: Bus;
    let cleanup = async () => {};
    before(async () => {
      fresh = await freshDatabase(setup === 'embedded+memory' ? 'embedded' : 'postgres');
      await migrate(fresh.db);
      await seed(fresh.db);
      await fresh.db.query(`INSERT INTO users (id, email) VALUES ('u1', 'u1@example.com')`);
      if (setup === 'embedded+memory') bus = new MemoryBus();
      else {
        const t = testNames();
        bus = redisBus(t.names);
        cleanup = t.cleanup;
      }
    });
    after(async () => {
      await bus.close();
      await cleanup();
      await fresh.dispose();
    });

    it('applies the seed\'s messages from the list and the stream, and dead-letters bad ones with the reason', async () => {
      const worker = new IngestWorker(fresh.db, bus, { consumer: 'w1', blockMs: 10 });
      await bus.ensureGroup();
      // Seed 000 engines LPUSH onto the list…
      await bus.pushList(msg('BALANCE_UPDATE', { userId: 'u1', asset: 'INR', availableChange: '1000', changeType: 'deposit' }));
      await bus.pushList(msg('ORDER_UPDATE', { orderId: 'o-77', executedQty: 0.5, market: 'TATA_INR', price: '134.5', quantity: '3', side: 'buy' }));
      await bus.pushList(msg('TRADE_ADDED', { market: 'TATA_INR', id: '1042', isBuyerMaker: true, price: '134.5', quantity: '2', quoteQuantity: '269', timestamp: 1763700000123 }));
      // Order is kept within one transport; this engine switches to XADD only after its list was taken up.
      await worker.step();
      // …newer ones XADD to the stream.
      await bus.add(msg('BALANCE_UPDATE', { userId: 'u1', asset: 'INR', availableChange: '-269', lockedChange: '269', referenceId: 'o-77' }));
      await bus.add(msg('ORDER_UPDATE', { orderId: 'o-77', status: 'cancelled' }));
      const bad = [
        '{"type":"TRADE_ADDED",',
        msg('TRADE_DELETED', {}),
        msg('TRADE_ADDED', { market: 'TATA_INR', id: '9', isBuyerMaker: true, price: 'abc', quantity: '1', timestamp: 1763700000123 }),
        msg('TRADE_ADDED', { market: 'TATA_INR', id: '9', isBuyerMaker: true, price: '1', quantity: '-1', timestamp: 1763700000123 }),
        msg('TRADE_ADDED', { market: 'NOPE_INR', id: '9', isBuyerMaker: true, price: '1', quantity: '1', timestamp: 1763700000123 }),
        msg('BALANCE_UPDATE', { userId: 'u1', asset: 'INR', availableChange: '-5000' }),
        `{"type":"TRADE_ADDED","data":{"pad":"${'x'.repeat(10 * 1024 * 1024)}"}}`,
      ];
      for (const payload of bad) await bus.add(payload);
      await drain(worker, bus);

      const dead = await bus.listDead({ count: 100 });
      assert.deepEqual(
        dead.map((d) => d.reason.replace(/:.*$/s, '')).sort(),
        ['insufficient available INR for u1', 'invalid TRADE_ADDED', 'invalid TRADE_ADDED', 'malformed JSON', 'payload too large', 'unknown market NOPE_INR', 'unknown type "TRADE_DELETED"; known types'],
      );
      const tooLarge = dead.find((d) => d.reason.startsWith('payload too large'))!;
      assert.equal(tooLarge.fields[0]!.bytes, bad[6]!.length, 'the 10 MB payload is kept whole');
      assert.equal(tooLarge.fields[0]!.preview.length, 200, 'a listing shows a preview');
      assert.equal((await bus.readDead(tooLarge.id))!.fields[0]!.value.toString(), bad[6]);
      assert.equal(dead.every((d) => d.attempts === 1), true);
      const order = await fresh.db.query<{ status: string; filled_quantity: string }>(`SELECT status, filled_quantity::text FROM orders WHERE id = 'o-77'`);
      assert.deepEqual(order.rows[0], { status: 'cancelled', filled_quantity: '0.50000000' });
      const balance = await fresh.db.query<{ available_balance: string; locked_balance: string }>(`SELECT available_balance::text, locked_balance::text FROM balances WHERE user_id = 'u1'`);
      assert.deepEqual(balance.rows[0], { available_balance: '731.00000000', locked_balance: '269.00000000' });
      assert.equal((await fresh.db.query(`SELECT 1 FROM trades WHERE id = '1042'`)).rows.length, 1);
      assert.equal(worker.metrics.deadLettered, 7);
      assert.deepEqual(await candleMismatches(fresh.db), []);
    });

    it('replays a dead letter once its cause is fixed', async () => {
      const worker = new IngestWorker(fresh.db, bus, { consumer: 'w1', blockMs: 10 });
      await bus.add(msg('BALANCE_UPDATE', { userId: 'late-user', asset: 'INR', availableChange: '50', changeType: 'deposit' }));
      await drain(worker, bus);
      const dead = (await bus.listDead({ count: 100 })).find((d) => d.fields[0]!.preview.includes('late-user'))!;
      assert.equal(dead.reason, 'unknown user late-user');
      await fresh.db.query(`INSERT INTO users (id, email) VALUES ('late-user', 'late@example.com')`);
      assert.equal(await bus.replayDead([dead.id]), 1);
      await drain(worker, bus);
      const { rows } = await fresh.db.query<{ available_balance: string }>(`SELECT available_balance::text FROM balances WHERE user_id = 'late-user'`);
      assert.equal(rows[0]!.available_balance, '50.00000000');
      assert.equal((await bus.listDead({ count: 100 })).some((d) => d.fields[0]!.preview.includes('late-user')), false);
    });

    it('publishes what a commit changed, one message per channel', async () => {
      const worker = new IngestWorker(fresh.db, bus, { consumer: 'w1', blockMs: 10 });
      const received: unknown[] = [];
      const stop = await bus.subscribe('tradestore:trades:RELIANCE_INR', (m) => received.push(JSON.parse(m)));
      const candles: unknown[] = [];
      const stopCandles = await bus.subscribe('tradestore:candles:RELIANCE_INR:1m', (m) => candles.push(JSON.parse(m)));
      await bus.add(msg('TRADE_ADDED', { market: 'RELIANCE_INR', id: 'p-1', isBuyerMaker: false, price: '2850.5', quantity: '1', timestamp: 1763700002000 }));
      await bus.add(msg('TRADE_ADDED', { market: 'RELIANCE_INR', id: 'p-2', isBuyerMaker: true, price: '2851', quantity: '2', timestamp: 1763700003000 }));
      await drain(worker, bus);
      for (let i = 0; i < 100 && (received.length === 0 || candles.length === 0); i++) await new Promise((r) => setTimeout(r, 10));
      await stop();
      await stopCandles();
      const trades = received.flat() as { id: string; price: string }[];
      assert.deepEqual(trades.map((t) => [t.id, t.price]), [['p-1', '2850.50000000'], ['p-2', '2851.00000000']]);
      const candle = (candles.flat() as { open: string; close: string; volume: string; tradeCount: number }[]).at(-1)!;
      assert.deepEqual([candle.open, candle.close, candle.tradeCount], ['2850.50000000', '2851.00000000', 2]);
    });

    it('applies an entry delivered too many times in a batch of its own, and decides on it like any other', async () => {
      // Workers that read entries and died before applying them, twice; the third reader takes them one at a time.
      const suspect = await bus.add(msg('BALANCE_UPDATE', { userId: 'u1', asset: 'XYZ', availableChange: '1' }));
      const poison = await bus.add(msg('BALANCE_UPDATE', { userId: 'u1', asset: 'XYZ', availableChange: '-5' }));
      await bus.read('doomed', 10, 10);
      await new Promise((r) => setTimeout(r, 30));
      await bus.claimStale('doomed-2', 20, 10);
      await new Promise((r) => setTimeout(r, 30));
      const lines: string[] = [];
      const worker = new IngestWorker(fresh.db, bus, { consumer: 'w1', blockMs: 10, claimIdleMs: 20, maxDeliveries: 2, log: (l) => lines.push(l) });
      await drain(worker, bus);
      assert.ok(lines.some((l) => l.includes(`entry ${suspect} was delivered 3 times; applying it alone`)), lines.join('\n'));
      assert.ok(lines.some((l) => l.includes(`entry ${poison} was delivered 3 times; applying it alone`)), lines.join('\n'));
      const letter = (await bus.listDead({ count: 100 })).find((d) => d.source === poison)!;
      assert.match(letter.reason, /^insufficient available XYZ/);
      assert.equal(letter.attempts, 3);
      assert.equal((await fresh.db.query<{ a: string }>(`SELECT available_balance::text AS a FROM balances WHERE asset = 'XYZ'`)).rows[0]!.a, '1.00000000');
    });

    it('changes nothing when the same events are delivered twice', async () => {
      const worker = new IngestWorker(fresh.db, bus, { consumer: 'w1', blockMs: 10 });
      const trade = msg('TRADE_ADDED', { market: 'HDFC_INR', id: 't-dup', isBuyerMaker: false, price: '10.5', quantity: '2', timestamp: 1763700001000 });
      const deposit = msg('BALANCE_UPDATE', { userId: 'u1', asset: 'HDFC', availableChange: '7' }, { eventId: 'dep-hdfc-1' });
      for (let i = 0; i < 3; i++) {
        await bus.add(trade);
        await bus.add(deposit);
      }
      await drain(worker, bus);
      assert.equal((await fresh.db.query(`SELECT 1 FROM trades WHERE id = 't-dup'`)).rows.length, 1);
      const { rows } = await fresh.db.query<{ available_balance: string }>(`SELECT available_balance::text FROM balances WHERE user_id = 'u1' AND asset = 'HDFC'`);
      assert.equal(rows[0]!.available_balance, '7.00000000');
      assert.ok(worker.metrics.duplicates >= 2);
      assert.deepEqual(await candleMismatches(fresh.db), []);
    });

    it('never applies a committed batch again when its acknowledgement fails', async () => {
      // The bus refuses the first acknowledgement after the commit, as when Redis drops the connection there.
      let failures = 1;
      const flaky = new Proxy(bus, {
        get(target, prop, receiver) {
          if (prop === 'ack') {
            return async (ids: string[]) => {
              if (failures-- > 0) throw new Error('connection lost (test)');
              return target.ack(ids);
            };
          }
          const value = Reflect.get(target, prop, receiver);
          return typeof value === 'function' ? value.bind(target) : value;
        },
      });
      const worker = new IngestWorker(fresh.db, flaky, { consumer: 'w1', blockMs: 10 });
      await bus.add(msg('BALANCE_UPDATE', { userId: 'u1', asset: 'ACK', availableChange: '5' }));
      await bus.add(msg('TRADE_ADDED', { market: 'HDFC_INR', id: 't-ack', isBuyerMaker: false, price: '11', quantity: '1', timestamp: 1763700005000 }));
      const deadBefore = (await bus.stats()).deadLetters;
      await drain(worker, bus);
      assert.equal(failures, -1, 'the acknowledgement failed once and was retried');
      assert.equal((await bus.stats()).deadLetters, deadBefore, 'nothing was dead-lettered');
      const { rows } = await fresh.db.query<{ available_balance: string }>(`SELECT available_balance::text FROM balances WHERE user_id = 'u1' AND asset = 'ACK'`);
      assert.equal(rows[0]!.available_balance, '5.00000000');
      assert.equal((await fresh.db.query(`SELECT 1 FROM trades WHERE id = 't-ack'`)).rows.length, 1);
    });
  });
}
