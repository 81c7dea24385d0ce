import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import Big from 'big.js';
import fc from 'fast-check';
import { Redis } from 'ioredis';
import { MemoryBus } from '../src/bus/memory.ts';
import type { Bus } from '../src/bus/types.ts';
import { APPLIERS } from '../src/ingest/apply/batch.ts';
import { IngestWorker } from '../src/ingest/worker.ts';
import { migrate } from '../src/schema/migrator.ts';
import { seed } from '../src/schema/seed.ts';
import { freshDatabase, serverUnavailable, type Fresh } from './helpers/backends.ts';
import { candleMismatches } from './helpers/candles.ts';
import { REDIS_URL, redisBus, redisUnavailable, testNames } from './helpers/redis.ts';
import { drain } from './helpers/ingest.ts';

const REQUIRE = process.env.TRADESTORE_REQUIRE_SERVERS === '1';
/** Fixed by default so a failure reproduces; FUZZ_SEED explores others. */
const SEED = Number(process.env.FUZZ_SEED ?? 20261121);
const HOSTILE = Number(process.env.FUZZ_RUNS ?? 2000);
const T = Date.now() - 3_600_000;

/** Messages that go near the good ones' tables but never touch the good ones' keys. */
const TEMPLATES = [
  { type: 'TRADE_ADDED', data: { market: 'HDFC_INR', id: 'h-1', price: '10.5', quantity: '1', isBuyerMaker: true, timestamp: T } },
  { type: 'BALANCE_UPDATE', data: { userId: 'fuzz-u', asset: 'HDFC', availableChange: '5', lockedChange: '0', changeType: 'deposit' } },
  { type: 'ORDER_UPDATE', data: { orderId: 'h-o', market: 'HDFC_INR', price: '1', quantity: '2', side: 'buy', userId: 'fuzz-u', executedQty: '1' } },
  { type: 'CANDLE', data: { exchange: 'NSE', symbol: 'NIFTY', timeframe: '1m', openTime: T, open: '1', high: '2', low: '1', close: '2', volume: '3' } },
  { type: 'ORDER_BOOK', data: { exchange: 'NSE', symbol: 'NIFTY', timestamp: T, bids: [['1', '2']], asks: [['3', '4']] } },
  { type: 'POSITION_UPDATE', data: { exchange: 'NSE', symbol: 'NIFTY', userId: 'fuzz-u', quantity: '-5', entryPrice: '10' } },
  { type: 'PORTFOLIO_SNAPSHOT', data: { userId: 'fuzz-u', timestamp: T, totalValue: '1', cashBalance: '1', positions: [{ q: 1 }] } },
  { type: 'SYSTEM_LOG', data: { level: 'info', category: 'x', message: 'm', details: { a: [1, { b: 2 }] } } },
  { type: 'STRATEGY_TRADE_OPENED', data: { id: 'h-st', strategyId: 'ema_crossover', symbol: 'NIFTY', side: 'buy', entryPrice: '1', quantity: '1', entryTime: T } },
] as const;

const deep = (n: number, open: string, close: string, inner = '1') => open.repeat(n) + inner + close.repeat(n);

/** Values no schema expects: decimals in every odd spelling, wrong types, huge and deep values. */
const weirdValue = fc.oneof(
  fc.constantFrom(
    '+1', '+0.5', '-0', '0', '1e999', '1e-999', '1E+3', '.5', '1.', 'NaN', 'Infinity', '-Infinity', '0x10', '1_000', '١٢٣', '',
    ' 1', '1 ', '9'.repeat(70), '9'.repeat(13), `0.${'0'.repeat(7)}1`, `0.${'0'.repeat(9)}1`, '-1', '1e400', '600000000000', '\u0000',
    'true', 'buy', 'SELL', 'x'.repeat(300), '2026-11-21T00:00:00Z', '2099-01-01T00:00:00Z', String(Date.now() + 3_600_000),
  ),
  fc.jsonValue({ maxDepth: 4 }),
  fc.string({ unit: 'grapheme', maxLength: 40 }),
  fc.integer(),
  fc.double(),
  fc.bigInt({ min: -(10n ** 30n), max: 10n ** 30n }).map(String),
  fc.integer({ min: 1, max: 200 }).map((n) => JSON.parse(deep(n, '[', ']'))),
);

const mutatedMessage = fc
  .record({
    template: fc.constantFrom(...TEMPLATES),
    where: fc.constantFrom('data', 'data', 'data', 'envelope'),
    key: fc.oneof(fc.constantFrom('price', 'quantity', 'timestamp', 'id', 'market', 'availableChange', 'userId', 'bids', 'openTime', 'high', 'quantity', 'details', 'type', 'data', 'version', 'eventId'), fc.string({ maxLength: 8 })),
    value: weirdValue,
    drop: fc.boolean(),
  })
  .map(({ template, where, key, value, drop }) => {
    const message: Record<string, unknown> = { type: template.type, data: { ...template.data } };
    const target = where === 'envelope' ? message : (message.data as Record<string, unknown>);
    if (drop && key in target) delete target[key];
    else target[key] = value;
    // JSON.stringify turns a bigint-like string into a string; a literal huge number is written raw too.
    return JSON.stringify(message, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : v));
  });

const rawPayload = fc.oneof(
  fc.string({ unit: 'grapheme', maxLength: 200 }),
  fc.json({ maxDepth: 5 }),
  fc.integer({ min: 1000, max: 6000 }).map((n) => deep(n, '[', ']')),
  fc.integer({ min: 1000, max: 6000 }).map((n) => `{"type":"SYSTEM_LOG","data":{"level":"info","category":"c","message":"m","details":${deep(n, '{"a":', '}')}}}`),
  fc.integer({ min: 100, max: 3000 }).map((n) => `{"type":"TRADE_ADDED","data":{"market":"HDFC_INR","id":"n","price":${'9'.repeat(n)},"quantity":1,"isBuyerMaker":true,"timestamp":${T}}}`),
  fc.constantFrom(...TEMPLATES).chain((t) => fc.nat({ max: JSON.stringify(t).length - 1 }).map((cut) => JSON.stringify(t).slice(0, cut))),
);

const hostile = fc.oneof({ weight: 3, arbitrary: mutatedMessage }, { weight: 1, arbitrary: rawPayload });

interface Good {
  trades: { id: string; price: string; quantity: string }[];
  deposits: string[];
  payloads: string[];
}

function goodMessages(count: number, rnd: () => number): Good {
  const trades: Good['trades'] = [];
  const deposits: string[] = [];
  const payloads: string[] = [];
  for (let i = 0; i < count; i++) {
    if (i % 4 === 3) {
      const amount = `${1 + Math.floor(rnd() * 1000)}.${String(Math.floor(rnd() * 100)).padStart(2, '0')}`;
      deposits.push(amount);
      payloads.push(JSON.stringify({ type: 'BALANCE_UPDATE', data: { userId: 'good-u', asset: 'INR', availableChange: amount, changeType: 'deposit' } }));
    } else {
      const trade = { id: `good-${i}`, price: `${100 + Math.floor(rnd() * 50)}.${String(Math.floor(rnd() * 100)).padStart(2, '0')}`, quantity: `0.${1 + Math.floor(rnd() * 998)}` };
      trades.push(trade);
      payloads.push(JSON.stringify({ type: 'TRADE_ADDED', data: { market: 'TATA_INR', ...trade, isBuyerMaker: rnd() < 0.5, timestamp: T + i } }));
    }
  }
  return { trades, deposits, payloads };
}

for (const setup of ['embedded+memory', 'postgres+redis'] as const) {
  describe(`ingest under hostile input [${setup}]`, async () => {
    const reason = setup === 'postgres+redis' && !REQUIRE ? ((await serverUnavailable()) ?? (await redisUnavailable())) : null;
    if (reason) {
      it('skipped', { skip: reason }, () => {});
      return;
    }
    let fresh: Fresh & { dispose: () => Promise<void> };
    let bus: Bus;
    let names: ReturnType<typeof testNames> | null = null;
    before(async () => {
      fresh = await freshDatabase(setup === 'embedded+memory' ? 'embedded' : 'postgres');
      await migrate(fresh.db);
      await seed(fresh.db);
      await fresh.db.query(`INSERT INTO users (id, email) VALUES ('good-u', 'g@example.com'), ('fuzz-u', 'f@example.com')`);
      if (setup === 'embedded+memory') bus = new MemoryBus();
      else {
        names = testNames();
        bus = redisBus(names.names);
      }
      await bus.init();
    });
    after(async () => {
      await bus.close();
      await names?.cleanup();
      await fresh.dispose();
    });

    it(`${HOSTILE} generated hostile payloads among good ones: nothing escapes, each bad one is dead-lettered with a reason, the good ones are applied exactly`, async () => {
      const bad = fc.sample(hostile, { numRuns: HOSTILE, seed: SEED });
      let state = SEED;
      const rnd = () => ((state = (state * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
      const good = goodMessages(600, rnd);
      const all = [...good.payloads.map((p) => ({ p, good: true })), ...bad.map((p) => ({ p, good: false }))].sort(() => rnd() - 0.5);
      const sent = new Map<string, boolean>();
      // Half straight to their shards, half through the entry stream and the router (the Lua script parses them too).
      for (const [i, m] of all.entries()) {
        sent.set(m.p, m.good);
        if (i % 2) await bus.add(m.p);
        else await bus.addEntry(m.p);
      }
      // Entries no engine should send, but Redis accepts: no payload field, bytes that are not UTF-8.
      const raw: { fields: Buffer[] }[] = [];
      if (names) {
        const r = new Redis(REDIS_URL);
        for (const fields of [[Buffer.from('data'), Buffer.from('{"type":"TRADE_ADDED"}')], [Buffer.from('payload'), Buffer.from([0x7b, 0xff, 0xfe, 0x22, 0x7d])]]) {
          await r.xadd(names.names.stream, '*', ...fields);
          raw.push({ fields });
        }
        r.disconnect();
      }
      const worker = new IngestWorker(fresh.db, bus, { consumer: 'fuzz', blockMs: 10, batchSize: 500 });
      await drain(worker, bus, 240_000);
      assert.equal(worker.databaseHealthy && worker.busHealthy, true, `the worker is healthy: ${worker.lastError}`);

      const total = all.length + raw.length;
      const m = worker.metrics;
      assert.equal(m.eventsApplied + m.duplicates + m.deadLettered, total, 'every entry was applied, found to be a repeat, or dead-lettered');
      const letters = [];
      for (let after: string | undefined; ; ) {
        const page = await bus.listDead({ count: 1000, after });
        letters.push(...page);
        if (page.length < 1000) break;
        after = page[page.length - 1]!.id;
      }
      assert.equal(letters.length, m.deadLettered);
      const full = await Promise.all(letters.map(async (l) => ({ letter: l, fields: (await bus.readDead(l.id))!.fields })));
      const dead = new Set<string>();
      for (const { letter, fields } of full) {
        assert.ok(letter.reason.length > 0, `dead letter ${letter.id} has a reason`);
        const payload = fields.find((f) => f.name === 'payload')?.value.toString();
        if (payload === undefined || !sent.has(payload)) continue;
        dead.add(payload);
        assert.equal(sent.get(payload), false, `a good message was dead-lettered: ${letter.reason}`);
      }
      // Whatever is not even JSON, or nests thousands deep, is certainly among them.
      for (const [p] of sent) {
        let parses = true;
        try {
          JSON.parse(p);
        } catch {
          parses = false;
        }
        if (!parses || /^(\[|\{"a":){1000}/.test(p) || p.includes('{"a":{"a":'.repeat(500))) assert.ok(dead.has(p), `not dead-lettered: ${p.slice(0, 80)}`);
      }
      for (const [i, r] of raw.entries()) {
        const letter = full.find((f) => Buffer.concat(f.fields.flatMap((x) => [Buffer.from(x.name), x.value])).equals(Buffer.concat(r.fields)));
        assert.ok(letter, `raw entry ${i} is dead-lettered, kept as it arrived, byte for byte`);
        assert.match(letter.letter.reason, i === 0 ? /no "payload" field/ : /not valid UTF-8/);
      }

      const trades = await fresh.db.query<{ id: string; price: string; quantity: string }>(`SELECT id, price::text, quantity::text FROM trades WHERE market = 'TATA_INR' ORDER BY id`);
      const want = [...good.trades].sort((a, b) => (a.id < b.id ? -1 : 1));
      assert.equal(trades.rows.length, want.length);
      trades.rows.forEach((row, i) => {
        assert.equal(row.id, want[i]!.id);
        assert.ok(new Big(row.price).eq(want[i]!.price) && new Big(row.quantity).eq(want[i]!.quantity), `trade ${row.id} exact`);
      });
      const balance = await fresh.db.query<{ a: string }>(`SELECT available_balance::text AS a FROM balances WHERE user_id = 'good-u' AND asset = 'INR'`);
      assert.ok(new Big(balance.rows[0]!.a).eq(good.deposits.reduce((s, d) => s.plus(d), new Big(0))), 'the good deposits add up exactly');
      assert.deepEqual(await candleMismatches(fresh.db), []);
    });

    it('an exception thrown while applying one message dead-letters that message alone, with the reason', async () => {
      const original = APPLIERS.TRADE_ADDED;
      APPLIERS.TRADE_ADDED = async (tx, entries, effects) => {
        if (entries.some((e) => e.event.data.id === 'boom')) throw new TypeError('cannot read properties of undefined (test)');
        return original(tx, entries, effects);
      };
      try {
        const trade = (id: string) => JSON.stringify({ type: 'TRADE_ADDED', data: { market: 'RELIANCE_INR', id, price: '2850', quantity: '1', isBuyerMaker: true, timestamp: T } });
        const boom = (await bus.add(trade('boom'))).id;
        for (const id of ['r-1', 'r-2', 'r-3']) await bus.add(trade(id));
        const worker = new IngestWorker(fresh.db, bus, { consumer: 'fuzz-2', blockMs: 10 });
        await drain(worker, bus);
        const letter = (await bus.listDead({ count: 10_000 })).find((l) => l.source === boom);
        assert.match(letter?.reason ?? '', /^could not be applied: TypeError: cannot read properties of undefined \(test\)/);
        const { rows } = await fresh.db.query<{ id: string }>(`SELECT id FROM trades WHERE market = 'RELIANCE_INR' ORDER BY id`);
        assert.deepEqual(rows.map((r) => r.id), ['r-1', 'r-2', 'r-3']);
      } finally {
        APPLIERS.TRADE_ADDED = original;
      }
    });
  });
}
