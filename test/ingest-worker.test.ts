import { before, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Bus } from '../src/bus/types.ts';
import { IngestWorker } from '../src/ingest/worker.ts';
import type { Fresh } from './helpers/backends.ts';
import { candleMismatches } from './helpers/candles.ts';
import { drain } from './helpers/ingest.ts';
import { eachIngestSetup } from './helpers/setups.ts';

const msg = (type: string, data: object, extra: object = {}) => JSON.stringify({ type, data, ...extra });

eachIngestSetup('ingest worker', (get) => {
  let fresh: Fresh;
  let bus: Bus;
  before(async () => {
    ({ fresh, bus } = get());
    await fresh.db.query(`INSERT INTO users (id, email) VALUES ('u1', 'u1@example.com')`);
  });

  it('applies the seed\'s messages from the list and the stream, and dead-letters bad ones with the reason', async () => {
    const worker = new IngestWorker(fresh.db, bus, { consumer: 'w1', blockMs: 10 });
    await bus.init();
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
    await worker.stop();

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
    await worker.stop();
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
    await worker.stop();
    for (let i = 0; i < 100 && (received.length === 0 || candles.length === 0); i++) await new Promise((r) => setTimeout(r, 10));
    await stop();
    await stopCandles();
    const trades = received.flat() as { id: string; price: string }[];
    assert.deepEqual(trades.map((t) => [t.id, t.price]), [['p-1', '2850.50000000'], ['p-2', '2851.00000000']]);
    const candle = (candles.flat() as { open: string; close: string; volume: string; tradeCount: number }[]).at(-1)!;
    assert.deepEqual([candle.open, candle.close, candle.tradeCount], ['2850.50000000', '2851.00000000', 2]);
  });

  it('an entry at which owners keep stopping is applied alone, and past the limit dead-lettered unapplied', async () => {
    const suspect = await bus.add(msg('BALANCE_UPDATE', { userId: 'u1', asset: 'XYZ', availableChange: '1' }));
    const next = await bus.add(msg('BALANCE_UPDATE', { userId: 'u1', asset: 'XYZ', availableChange: '2' }));
    assert.equal(suspect.shard, next.shard, 'one user, one shard');
    // Owners that got as far as applying and died before committing: each counts a start there.
    for (const name of ['doomed-1', 'doomed-2']) {
      const doomed = new IngestWorker(fresh.db, bus, { consumer: name, leaseMs: 100 });
      await doomed.ownership.rebalance();
      await bus.countStart(suspect.shard, doomed.ownership.offsets.committed.get(suspect.shard)!);
      await new Promise((r) => setTimeout(r, 150));
    }
    const lines: string[] = [];
    const worker = new IngestWorker(fresh.db, bus, { consumer: 'w1', blockMs: 10, maxStarts: 2, log: (l) => lines.push(l) });
    await drain(worker, bus);
    const letter = (await bus.listDead({ count: 100 })).find((d) => d.source === suspect.id)!;
    assert.match(letter.reason, /^owners of shard \d+ started at this entry 3 times, and each stopped before committing it/);
    assert.equal(letter.attempts, 3);
    assert.equal((await fresh.db.query<{ a: string }>(`SELECT available_balance::text AS a FROM balances WHERE asset = 'XYZ'`)).rows[0]!.a, '2.00000000');
    // Below the limit, the entry is applied, alone.
    const again = await bus.add(msg('BALANCE_UPDATE', { userId: 'u1', asset: 'XYZ', availableChange: '4' }));
    await worker.stop();
    const offset = (await fresh.db.query<{ last_id: string }>('SELECT last_id FROM ingest_offsets WHERE stream = $1 AND shard = $2', [bus.stream, again.shard])).rows[0]!.last_id;
    await bus.countStart(again.shard, offset);
    const second = new IngestWorker(fresh.db, bus, { consumer: 'w2', blockMs: 10, maxStarts: 2, log: (l) => lines.push(l) });
    await drain(second, bus);
    await second.stop();
    assert.ok(lines.some((l) => l.includes(`at entry ${again.id} 2 times; applying it alone`)), lines.join('\n'));
    assert.equal((await fresh.db.query<{ a: string }>(`SELECT available_balance::text AS a FROM balances WHERE asset = 'XYZ'`)).rows[0]!.a, '6.00000000');
  });

  it('changes nothing when the same trade or producer eventId is sent again', async () => {
    const worker = new IngestWorker(fresh.db, bus, { consumer: 'w1', blockMs: 10 });
    const trade = msg('TRADE_ADDED', { market: 'HDFC_INR', id: 't-dup', isBuyerMaker: false, price: '10.5', quantity: '2', timestamp: 1763700001000 });
    const deposit = msg('BALANCE_UPDATE', { userId: 'u1', asset: 'HDFC', availableChange: '7' }, { eventId: 'dep-hdfc-1' });
    for (let i = 0; i < 3; i++) {
      await bus.add(trade);
      await bus.add(deposit);
    }
    await drain(worker, bus);
    await worker.stop();
    assert.equal((await fresh.db.query(`SELECT 1 FROM trades WHERE id = 't-dup'`)).rows.length, 1);
    const { rows } = await fresh.db.query<{ available_balance: string }>(`SELECT available_balance::text FROM balances WHERE user_id = 'u1' AND asset = 'HDFC'`);
    assert.equal(rows[0]!.available_balance, '7.00000000');
    assert.ok(worker.metrics.duplicates >= 2);
    assert.deepEqual(await candleMismatches(fresh.db), []);
  });

  it('never applies a committed entry again: not when the bus fails after the commit, not when another worker takes over', async () => {
    // Once entries are applied, the bus refuses to record the commit (and trim), as when Redis drops the connection there.
    let applying = false;
    const flaky = new Proxy(bus, {
      get(target, prop, receiver) {
        if (prop === 'committed' && applying) return async () => Promise.reject(new Error('connection lost (test)'));
        const value = Reflect.get(target, prop, receiver);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    const first = new IngestWorker(fresh.db, flaky, { consumer: 'w1', blockMs: 10 });
    await bus.add(msg('BALANCE_UPDATE', { userId: 'u1', asset: 'ACK', availableChange: '5' }));
    await bus.add(msg('TRADE_ADDED', { market: 'HDFC_INR', id: 't-ack', isBuyerMaker: false, price: '11', quantity: '1', timestamp: 1763700005000 }));
    const deadBefore = (await bus.stats()).deadLetters;
    await first.ownership.rebalance();
    applying = true;
    for (let i = 0; i < 20 && first.metrics.eventsApplied < 2; i++) await first.step();
    assert.equal(first.metrics.eventsApplied, 2);
    assert.ok((await bus.stats()).lag >= 2, 'the entries are still in their shards');
    await first.stop();
    // The next owner starts at the offsets the commit recorded: the entries behind them are trimmed, not applied.
    const next = new IngestWorker(fresh.db, bus, { consumer: 'w2', blockMs: 10 });
    await drain(next, bus);
    await next.stop();
    assert.equal(next.metrics.eventsApplied, 0);
    assert.equal((await bus.stats()).deadLetters, deadBefore, 'nothing was dead-lettered');
    const { rows } = await fresh.db.query<{ available_balance: string }>(`SELECT available_balance::text FROM balances WHERE user_id = 'u1' AND asset = 'ACK'`);
    assert.equal(rows[0]!.available_balance, '5.00000000');
    assert.equal((await fresh.db.query(`SELECT 1 FROM trades WHERE id = 't-ack'`)).rows.length, 1);
  });
});
