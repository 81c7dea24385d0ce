import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { apiCaller } from './helpers/api.ts';
import { MemoryBus } from '../src/bus/memory.ts';
import { migrate } from '../src/schema/migrator.ts';
import { seed } from '../src/schema/seed.ts';
import { storeOver, type Store } from '../src/store/store.ts';
import { InvalidArgumentError, NotFoundError } from '../src/store/errors.ts';
import fc from 'fast-check';
import Big from 'big.js';
import { benchmarkMetrics, periodReturns, returnMetrics, tradeMetrics } from '../src/analytics/metrics.ts';
import { createServerDatabase, eachBackend, serverUnavailable } from './helpers/backends.ts';
import { ingest } from './helpers/ingest.ts';
import { runCli } from './helpers/cli.ts';
import { PostgresDatabase } from '../src/database/postgres.ts';
import { loadConfig } from '../src/config.ts';
import { startService, type Service } from '../src/service/service.ts';
import { serviceLog } from './helpers/exposure.ts';

eachBackend('strategies: managed, versioned', (get) => {
  let store: Store;
  let bus: MemoryBus;
  before(async () => {
    const { db } = get();
    await migrate(db);
    await seed(db);
    await db.query(`INSERT INTO users (id, email) VALUES ('alice', 'a@example.com'), ('bob', 'b@example.com')`);
    bus = new MemoryBus();
    store = storeOver(db, bus);
  });

  it('drops the cached strategy when ingest closes its round trips: the counters read back at once', async () => {
    const s = await store.strategies.create({ name: 'cached', symbols: ['TATA_INR'], userId: 'alice' });
    await store.strategies.update(s.id, { isActive: true });
    assert.equal((await store.strategies.get(s.id)).totalTrades, 0, 'read once, so it is cached');
    assert.ok((await store.strategies.active()).some((x) => x.id === s.id && x.totalTrades === 0));
    const t0 = Date.now() - 3_600_000;
    await ingest(get().db, bus, [1, 2].flatMap((i) => [
      { type: 'STRATEGY_TRADE_OPENED', data: { id: `c${i}`, strategyId: s.id, symbol: 'TATA_INR', side: 'buy', entryPrice: '100', quantity: '1', entryTime: t0 } },
      { type: 'STRATEGY_TRADE_CLOSED', data: { id: `c${i}`, exitPrice: i === 1 ? '110' : '95', exitTime: t0 + i * 60_000 } },
    ]));
    const after = await store.strategies.get(s.id);
    assert.deepEqual([after.totalTrades, after.winningTrades], [2, 1]);
    assert.ok((await store.strategies.active()).some((x) => x.id === s.id && x.totalTrades === 2), 'strategies:active too');
  });

  it('keeps every configuration change as a version: three changes give versions 1 to 3, each readable', async () => {
    const created = await store.strategies.create({ name: 'ema cross', type: 'ema_crossover', timeframe: '1h', symbols: ['TATA_INR'], config: { fast: 9, slow: 21 }, userId: 'alice' }, 'alice');
    assert.deepEqual([created.version, created.isActive, created.executionMode, created.userId], ['1', false, 'paper', 'alice']);
    await store.strategies.update(created.id, { config: { fast: 12, slow: 26 } }, 'alice');
    // State is not configuration: enabling and switching to live add no version.
    await store.strategies.update(created.id, { isActive: true, executionMode: 'live' }, 'alice');
    const third = await store.strategies.update(created.id, { symbols: ['TATA_INR', 'RELIANCE_INR'], timeframe: '4h' }, 'bob');
    assert.deepEqual([third.version, third.isActive, third.executionMode, third.symbols], ['3', true, 'live', ['TATA_INR', 'RELIANCE_INR']]);
    const versions = await store.strategies.versions(created.id);
    assert.deepEqual(versions.map((v) => [v.version, v.configuration.config, v.configuration.timeframe, v.createdBy]), [
      [1, { fast: 9, slow: 21 }, '1h', 'alice'],
      [2, { fast: 12, slow: 26 }, '1h', 'alice'],
      [3, { fast: 12, slow: 26 }, '4h', 'bob'],
    ]);
    // The cached strategy and the active list follow each change.
    assert.ok((await store.strategies.active('alice')).some((s) => s.id === created.id && s.version === '3'));
    await store.strategies.update(created.id, { isActive: false });
    assert.ok(!(await store.strategies.active('alice')).some((s) => s.id === created.id));
    await assert.rejects(store.strategies.update(created.id, { name: 'x' }, 'bob', 'bob'), NotFoundError, "another owner's strategy is not found");
  });

  it('refuses a configuration that fails the checks, naming the field', async () => {
    const bad = async (input: object, field: string) =>
      assert.rejects(store.strategies.create({ name: 'n', symbols: ['TATA_INR'], ...input } as never), (e: Error) => e instanceof InvalidArgumentError && e.parameter === field);
    await bad({ symbols: [] }, 'symbols');
    await bad({ timeframe: '2h' }, 'timeframe');
    await bad({ config: [1, 2] }, 'config');
    await bad({ name: '  ' }, 'name');
    await bad({ executionMode: 'real' }, 'executionMode');
    await store.strategies.create({ name: 'twice', symbols: ['TATA_INR'] });
    await bad({ name: 'twice' }, 'name');
  });

  it('versions a strategy made without the library from its configuration so far, and gives an unowned one an owner', async () => {
    const seeded = (await store.strategies.list()).find((s) => s.userId === null)!;
    assert.ok(seeded, 'the seeds have strategies with no owner');
    const updated = await store.strategies.update(seeded.id, { config: { tuned: true }, userId: 'bob' }, 'bob');
    assert.equal(updated.userId, 'bob');
    const versions = await store.strategies.versions(seeded.id);
    assert.deepEqual(versions.map((v) => v.version), [Number(seeded.version), Number(seeded.version) + 1]);
    assert.deepEqual(versions[0]!.configuration.config, seeded.config);
    assert.deepEqual(versions[1]!.configuration.config, { tuned: true });
  });

  it('keeps max drawdown on every close from the initial capital, recomputes it when the capital changes, and builds the equity curve from round trips', async () => {
    const DAY = 86_400_000;
    const d0 = Date.UTC(2026, 5, 1);
    const s = await store.strategies.create({ name: 'drawdown', symbols: ['TATA_INR'], initialCapital: '1000', userId: 'alice' });
    assert.deepEqual([s.initialCapital, s.maxDrawdown], ['1000', '0']);
    // P&L +100, -300, +50, +400 on days 0, 1, 1, 3: equity 1100, 800, 850, 1250.
    const pnls = [['100', 0], ['-300', 1], ['50', 1], ['400', 3]] as const;
    for (const [i, [pnl, day]] of pnls.entries()) {
      await ingest(get().db, bus, [
        { type: 'STRATEGY_TRADE_OPENED', data: { id: `dd${i}`, strategyId: s.id, symbol: 'TATA_INR', side: 'buy', entryPrice: '100', quantity: '1', entryTime: d0 + day * DAY } },
        { type: 'STRATEGY_TRADE_CLOSED', data: { id: `dd${i}`, exitPrice: '100', exitTime: d0 + day * DAY + (i + 1) * 60_000, pnl } },
      ]);
      const now = await store.strategies.get(s.id);
      assert.equal(now.totalPnl, String([100, -200, -150, 250][i]));
      assert.equal(now.maxDrawdown, ['0', '-0.272727272727', '-0.272727272727', '-0.272727272727'][i], `after close ${i}`);
    }
    // A new capital recomputes from every close: peak 2100, trough 1800.
    const recomputed = await store.strategies.update(s.id, { initialCapital: '2000' });
    assert.equal(recomputed.maxDrawdown, '-0.142857142857');
    assert.equal((await store.strategies.update(s.id, { initialCapital: null })).maxDrawdown, null, 'no capital, no drawdown');
    await store.strategies.update(s.id, { initialCapital: '1000' });
    assert.equal((await store.strategies.create({ name: 'no capital', symbols: ['TATA_INR'] })).maxDrawdown, null);

    // No snapshots: capital plus realized P&L by exit day, from the close of the day before the first.
    const curve = await store.strategies.equity(s.id, { to: new Date(d0 + 5 * DAY) });
    assert.equal(curve.source, 'trades');
    const created = Math.floor(new Date(s.createdAt).getTime() / DAY) * DAY;
    assert.ok(created > d0, 'the strategy was created after its round trips (today)');
    assert.deepEqual(curve.points.map((p) => [Date.parse(p.time) - d0, Number(p.equity)]), [
      [-DAY, 1000], [0, 1100], [DAY, 850], [2 * DAY, 850], [3 * DAY, 1250], [4 * DAY, 1250],
    ]);
    assert.deepEqual(curve.points.map((p) => p.drawdown), ['0', '0', '-0.227272727273', '-0.227272727273', '0', '0'], 'exact, to 12 places');
    const metrics = await store.strategies.analytics(s.id, { to: new Date(d0 + 5 * DAY) });
    assert.deepEqual([metrics.equitySource, metrics.equityDays, metrics.metrics.totalReturn], ['trades', 6, String(1250 / 1000 - 1)]);
    assert.equal((await store.strategies.equity(s.id, { from: new Date(d0 + 2 * DAY), to: new Date(d0 + 4 * DAY) })).points.map((p) => p.equity).join(), '850,1250');
    const none = await store.strategies.analytics((await store.strategies.create({ name: 'bare', symbols: ['TATA_INR'] })).id);
    assert.equal(none.equitySource, null);
    assert.match(none.reasons.sharpeRatio!, /no initial capital/);
  });

  it('annualizes by market (365 for the venue and crypto spot or perpetuals, 252 for exchange-traded), without weekends at 252, against an exchange benchmark', async () => {
    const { db } = get();
    await db.query(`INSERT INTO instruments (exchange, symbol, instrument_type) VALUES ('binance', 'BTCUSDT', 'SPOT'), ('bybit', 'NIFTY', 'PERP') ON CONFLICT DO NOTHING`);
    const periods = async (symbols: string[]) => store.strategies.periodsPerYear({ symbols });
    assert.deepEqual([await periods(['TATA_INR', 'TATA_INR']), await periods(['BTCUSDT', 'TATA_INR']), await periods(['RELIANCE_INR'])], [365, 365, 365]);
    assert.equal(await periods(['NIFTY']), 252, 'an index on NSE (and a perpetual elsewhere) trades on working days');
    await db.query(`DELETE FROM instruments WHERE exchange = 'bybit'`);
    // NSE's daily candles open at midnight in India (18:30 UTC the day before) and close on the UTC day after.
    const monday = Date.UTC(2026, 7, 3);
    const days = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9].map((k) => monday + k * 86_400_000); // Mon … Wed of the next week
    const s = await store.strategies.create({ name: 'nifty', symbols: ['NIFTY'], initialCapital: '100000' });
    await db.query(`UPDATE strategies SET created_at = $2 WHERE id = $1`, [s.id, new Date(monday)]);
    const equity = [100000, 100500, 100200, 101000, 100800, 100800, 100800, 101500, 101200, 101900];
    const closes = [24000, 24100, 24050, 24200, 24150, 24150, 24150, 24300, 24250, 24400];
    for (const [i, day] of days.entries()) {
      await db.query(`INSERT INTO portfolio_snapshots (strategy_id, snapshot_time, total_value, cash_balance) VALUES ($1, $2, $3, 0)`, [s.id, new Date(day + 10 * 3_600_000), equity[i]]);
      await db.query(
        `INSERT INTO market_data (exchange, symbol, timeframe, timestamp, open, high, low, close, volume) VALUES ('NSE', 'NIFTY', '1d', $1, $2, $2, $2, $2, 1)`,
        [new Date(day - 5.5 * 3_600_000), closes[i]],
      );
    }
    const a = await store.strategies.analytics(s.id, { benchmark: 'NSE:NIFTY', to: new Date(monday + 10 * 86_400_000) });
    const weekdays = days.map((d, i) => [d, i] as const).filter(([d]) => ![0, 6].includes(new Date(d).getUTCDay()));
    assert.equal(a.periodsPerYear, 252);
    // The capital point (Sunday before) is a weekend day too: the curve is the 8 weekdays.
    assert.equal(a.equityDays, weekdays.length);
    const e = weekdays.map(([, i]) => equity[i]!);
    const want = returnMetrics(e, weekdays.map(([d]) => d), { periodsPerYear: 252 });
    assert.equal(a.metrics.sharpeRatio, String(want.sharpeRatio!.value));
    const bench = benchmarkMetrics(periodReturns(e), periodReturns(weekdays.map(([, i]) => closes[i]!)), { periodsPerYear: 252 });
    assert.equal(a.metrics.beta, String(bench.beta!.value), 'the NSE candles matched to their UTC days');
    assert.equal(a.benchmark, 'NSE:NIFTY');
    await assert.rejects(store.strategies.analytics(s.id, { benchmark: 'LSE:NIFTY' }), (err: Error) => err instanceof InvalidArgumentError && err.parameter === 'benchmark');
  });

  it('keeps the same max drawdown whatever order the closes arrive in: it is defined in exit order', async () => {
    const t0 = Date.UTC(2026, 3, 1);
    const scenarios = fc.sample(fc.record({
      pnls: fc.array(fc.integer({ min: -400, max: 400 }), { minLength: 8, maxLength: 20 }),
      order: fc.array(fc.nat(), { minLength: 20, maxLength: 20 }),
      batch: fc.integer({ min: 1, max: 6 }),
    }), { numRuns: 3, seed: 7 });
    for (const [k, { pnls, order, batch }] of scenarios.entries()) {
      const s = await store.strategies.create({ name: `order ${k}`, symbols: ['TATA_INR'], initialCapital: '1000' });
      const trips = pnls.map((pnl, i) => ({ id: `o${k}-${i}`, pnl: String(pnl), exit: t0 + (i + 1) * 60_000 }));
      await ingest(get().db, bus, trips.map((t) => ({ type: 'STRATEGY_TRADE_OPENED', data: { id: t.id, strategyId: s.id, symbol: 'TATA_INR', side: 'buy', entryPrice: '100', quantity: '1', entryTime: t0 } })));
      // Closed in a generated order, a few per batch.
      const shuffled = trips.map((t, i) => [order[i] ?? 0, t] as const).sort((a, b) => a[0] - b[0]).map(([, t]) => t);
      for (let i = 0; i < shuffled.length; i += batch) {
        await ingest(get().db, bus, shuffled.slice(i, i + batch).map((t) => ({ type: 'STRATEGY_TRADE_CLOSED', data: { id: t.id, exitPrice: '100', exitTime: t.exit, pnl: t.pnl } })));
      }
      let equity = new Big(1000);
      let peak = new Big(1000);
      let worst = new Big(0);
      for (const t of trips) {
        equity = equity.plus(t.pnl);
        if (equity.gt(peak)) peak = equity;
        const dd = equity.div(peak).minus(1).round(12);
        if (dd.lt(worst)) worst = dd;
      }
      assert.equal((await store.strategies.get(s.id)).maxDrawdown, worst.toFixed(), `scenario ${k}: ${pnls.join(',')}`);
    }
  });

  it("computes the round trips' metrics in the database exactly as the library's definition does, for generated round trips", async () => {
    const { db } = get();
    const s = await store.strategies.create({ name: 'generated trips', symbols: ['TATA_INR'] });
    const t0 = Date.UTC(2026, 0, 1);
    // P&L with up to 8 decimals (zero, winners and losers), durations from 0 to 10 days.
    const trips = fc.sample(fc.record({
      pnl: fc.tuple(fc.integer({ min: -1_000_000_000_000, max: 1_000_000_000_000 }), fc.integer({ min: 0, max: 8 })).map(([units, scale]) => {
        const text = (Math.abs(units) / 10 ** scale).toFixed(scale);
        return units < 0 ? `-${text}` : text;
      }),
      entry: fc.integer({ min: 0, max: 300 * 86_400 }).map((sec) => t0 + sec * 1000),
      minutes: fc.integer({ min: 0, max: 14_400 }),
    }), { numRuns: 400, seed: 12 }).map((t, i) => ({ id: `g${i}`, pnl: t.pnl, entryTime: t.entry, exitTime: t.entry + t.minutes * 60_000 }));
    trips.push({ id: 'gz', pnl: '0', entryTime: t0, exitTime: t0 });
    await db.copyFrom('strategy_trades', ['id', 'strategy_id', 'symbol', 'side', 'entry_price', 'quantity', 'entry_time', 'exit_time', 'exit_price', 'pnl', 'status'],
      trips.map((t) => [t.id, s.id, 'TATA_INR', 'buy', '1', '1', new Date(t.entryTime), new Date(t.exitTime), '1', t.pnl, 'closed']));
    const got = (await store.strategies.analytics(s.id)).metrics;
    const want = tradeMetrics(trips);
    for (const [name, value] of Object.entries(want)) {
      const expected = value !== null && typeof value === 'object' ? value.value : value;
      if (typeof expected === 'number' && !Number.isInteger(expected)) {
        assert.ok(Math.abs(Number(got[name]) - expected) <= 1e-9 * Math.abs(expected), `${name}: ${got[name]} vs ${expected}`);
      } else assert.equal(got[name], expected === null ? null : String(expected), name);
    }
  });
});

describe('strategies through /v1', () => {
  let service: Service;
  const keys = { alice: '', bob: '', reader: '', admin: '' };
  before(async () => {
    service = await startService(loadConfig({ PORT: '0', TRADESTORE_DATA_DIR: 'memory://', TRADESTORE_MONITOR_INTERVAL_MS: '0' }), { migrate: true, log: serviceLog });
    await service.db.query(`INSERT INTO users (id, email) VALUES ('alice', 'a@example.com'), ('bob', 'b@example.com'), ('root', 'r@example.com')`);
    keys.alice = (await service.store.apiKeys.create('alice', ['read', 'trade'])).key;
    keys.bob = (await service.store.apiKeys.create('bob', ['read', 'trade'])).key;
    keys.reader = (await service.store.apiKeys.create('alice', ['read'])).key;
    keys.admin = (await service.store.apiKeys.create('root', ['read', 'trade', 'admin'])).key;
  });
  after(async () => service?.stop());

  const call = apiCaller(() => service.port);

  it('creates, changes and versions a strategy; keys see their own; admin keys give an unowned one an owner', async () => {
    const created = await call('POST', '/v1/strategies', keys.alice, { name: 'breakout', timeframe: '15m', symbols: ['TATA_INR'], config: { lookback: 20 } });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const id = created.body.id;
    assert.deepEqual([created.body.userId, created.body.version, created.body.isActive], ['alice', '1', false]);
    assert.equal((await call('PATCH', `/v1/strategies/${id}`, keys.alice, { config: { lookback: 30 } })).body.version, '2');
    assert.equal((await call('PATCH', `/v1/strategies/${id}`, keys.alice, { isActive: true, executionMode: 'live' })).body.version, '2');
    assert.equal((await call('PATCH', `/v1/strategies/${id}`, keys.alice, { symbols: ['TATA_INR', 'RELIANCE_INR'] })).body.version, '3');
    const versions = await call('GET', `/v1/strategies/${id}/versions`, keys.reader);
    assert.deepEqual(versions.body.versions.map((v: { version: number; configuration: { config: object } }) => [v.version, v.configuration.config]), [[1, { lookback: 20 }], [2, { lookback: 30 }], [3, { lookback: 30 }]]);
    assert.ok((await call('GET', '/v1/strategies', keys.alice)).body.strategies.some((s: { id: string }) => s.id === id));
    // The read scope reads, the trade scope changes; another user's strategy does not exist for a key.
    assert.equal((await call('POST', '/v1/strategies', keys.reader, { name: 'x', symbols: ['TATA_INR'] })).status, 403);
    assert.equal((await call('PATCH', `/v1/strategies/${id}`, keys.bob, { isActive: false })).status, 404);
    assert.equal((await call('GET', `/v1/strategies/${id}`, keys.bob)).status, 404);
    // A bad configuration is a 400 that names the field.
    const bad = await call('PATCH', `/v1/strategies/${id}`, keys.alice, { symbols: [] });
    assert.deepEqual([bad.status, bad.body.error.parameter], [400, 'symbols']);
    const badFrame = await call('POST', '/v1/strategies', keys.alice, { name: 'y', symbols: ['TATA_INR'], timeframe: '2h' });
    assert.deepEqual([badFrame.status, badFrame.body.error.parameter], [400, 'timeframe']);
    // Unowned strategies (the seeds'): invisible to user keys, visible to an admin key, which can give one an owner.
    const all = await call('GET', '/v1/strategies?status=all', keys.admin);
    const unowned = all.body.strategies.find((s: { userId: string | null }) => s.userId === null);
    assert.ok(unowned, 'the seeds have unowned strategies');
    assert.equal((await call('GET', `/v1/strategies/${unowned.id}`, keys.bob)).status, 404);
    assert.equal((await call('PATCH', `/v1/strategies/${unowned.id}`, keys.bob, { isActive: true })).status, 404);
    assert.equal((await call('PATCH', `/v1/strategies/${unowned.id}`, keys.bob, { userId: 'bob' })).status, 403, 'only an admin key gives an owner');
    assert.equal((await call('PATCH', `/v1/strategies/${id}`, keys.alice, { userId: 'bob' })).status, 403);
    const owned = await call('PATCH', `/v1/strategies/${unowned.id}`, keys.admin, { userId: 'bob' });
    assert.equal(owned.body.userId, 'bob');
    assert.equal((await call('GET', `/v1/strategies/${unowned.id}`, keys.bob)).status, 200);
    // Capital, round trips and the equity curve of a strategy, under the same owner rule.
    assert.equal((await call('PATCH', `/v1/strategies/${id}`, keys.alice, { initialCapital: '-5' })).body.error.parameter, 'initialCapital');
    assert.equal((await call('PATCH', `/v1/strategies/${id}`, keys.alice, { initialCapital: '5000' })).body.initialCapital, '5000');
    await service.db.query(
      `INSERT INTO strategy_trades (id, strategy_id, symbol, side, entry_price, quantity, entry_time, status) VALUES ('open1', $1, 'TATA_INR', 'buy', 100, 2, now() - interval '1 hour', 'open')`,
      [id],
    );
    const open = await call('GET', `/v1/strategies/${id}/trades?status=open`, keys.reader);
    assert.deepEqual([open.status, open.body.total, open.body.items[0].id], [200, 1, 'open1']);
    assert.equal((await call('GET', `/v1/strategies/${id}/trades`, keys.bob)).status, 404);
    const curve = await call('GET', `/v1/strategies/${id}/equity`, keys.reader);
    assert.deepEqual([curve.status, curve.body.source, curve.body.points.at(-1).equity, curve.body.points.at(-1).drawdown], [200, 'trades', '5000', '0']);
    assert.equal((await call('GET', `/v1/strategies/${id}/equity`, keys.bob)).status, 404);
    assert.equal((await call('GET', `/v1/strategies/${id}/equity?from=2026-02-01&to=2026-01-01`, keys.reader)).status, 400);
  });
});

describe('strategy metrics through /v1', () => {
  let service: Service;
  let key = '';
  let id = '';
  const DAY = 86_400_000;
  const start = Date.UTC(2026, 10, 1);
  const equity = [10_000, 10_150, 9_900, 10_400, 10_300, 10_700, 10_650, 10_900];
  const closes = [100, 101, 99.5, 102, 101.5, 104, 103, 105];
  before(async () => {
    service = await startService(loadConfig({ PORT: '0', TRADESTORE_DATA_DIR: 'memory://', TRADESTORE_MONITOR_INTERVAL_MS: '0' }), { migrate: true, log: serviceLog });
    await service.db.query(`INSERT INTO users (id, email) VALUES ('carol', 'c@example.com')`);
    key = (await service.store.apiKeys.create('carol', ['read'])).key;
    id = (await service.store.strategies.create({ name: 'metrics', symbols: ['TATA_INR'], userId: 'carol' })).id;
    for (const [i, value] of equity.entries()) {
      // Two snapshots a day: the day's last one is its close.
      await service.db.query(
        `INSERT INTO portfolio_snapshots (strategy_id, user_id, snapshot_time, total_value, cash_balance) VALUES ($1, 'carol', $2, $3, 0), ($1, 'carol', $4, $5, 0)`,
        [id, new Date(start + i * DAY + 3_600_000), value - 500, new Date(start + i * DAY + 20 * 3_600_000), value],
      );
      await service.bus.add(JSON.stringify({ type: 'TRADE_ADDED', data: { market: 'TATA_INR', id: `m${i}`, price: String(closes[i]), quantity: '1', isBuyerMaker: false, timestamp: start + i * DAY + 12 * 3_600_000 } }));
    }
    await service.db.query(
      `INSERT INTO strategy_trades (id, strategy_id, symbol, side, entry_price, quantity, entry_time, exit_time, exit_price, pnl, status)
       VALUES ('w1', $1, 'TATA_INR', 'buy', 100, 1, $2, $3, 110, 10, 'closed'), ('l1', $1, 'TATA_INR', 'buy', 100, 1, $2, $4, 96, -4, 'closed')`,
      [id, new Date(start), new Date(start + 2 * 3_600_000), new Date(start + 4 * 3_600_000)],
    );
    for (let i = 0; i < 200 && Number((await service.db.query<{ n: string }>(`SELECT count(*)::text AS n FROM ohlcv_1d WHERE market = 'TATA_INR'`)).rows[0]!.n) < equity.length; i++) {
      await new Promise((r) => setTimeout(r, 50));
    }
  });
  after(async () => service?.stop());

  it('computes the metrics from the daily equity, against a benchmark, and from the round trips, as the library does', async () => {
    const response = await fetch(`http://127.0.0.1:${service.port}/v1/strategies/${id}/metrics?benchmark=TATA_INR`, { headers: { 'x-api-key': key } });
    assert.equal(response.status, 200);
    const body = (await response.json()) as { periodsPerYear: number; equityDays: number; metrics: Record<string, string | null>; reasons: Record<string, string> };
    assert.deepEqual([body.periodsPerYear, body.equityDays], [365, equity.length]);
    const times = equity.map((_, i) => start + i * DAY);
    const want = returnMetrics(equity, times, { periodsPerYear: 365 });
    for (const name of ['totalReturn', 'annualReturn', 'volatility', 'sharpeRatio', 'sortinoRatio', 'calmarRatio', 'maxDrawdown', 'maxDrawdownDuration', 'var95', 'cvar95']) {
      assert.equal(body.metrics[name], String(want[name]!.value), name);
    }
    const bench = benchmarkMetrics(periodReturns(equity), periodReturns(closes), { periodsPerYear: 365 });
    for (const name of ['beta', 'alpha', 'marketCorrelation']) assert.equal(body.metrics[name], String(bench[name]!.value), name);
    assert.deepEqual([body.metrics.totalTrades, body.metrics.winRate, body.metrics.profitFactor, body.metrics.grossProfit], ['2', '0.5', '2.5', '10']);
    const none = (await (await fetch(`http://127.0.0.1:${service.port}/v1/strategies/${id}/metrics?from=2020-01-01&to=2020-02-01`, { headers: { 'x-api-key': key } })).json()) as typeof body;
    assert.equal(none.metrics.sharpeRatio, null);
    assert.match(none.reasons.sharpeRatio!, /no portfolio snapshots/);
    assert.match(none.reasons.beta!, /no benchmark/);
    const bad = await fetch(`http://127.0.0.1:${service.port}/v1/strategies/${id}/metrics?benchmark=NOPE`, { headers: { 'x-api-key': key } });
    assert.equal(bad.status, 400);
  });
});

describe('tradestore strategy [postgres]', async () => {
  const reason = process.env.TRADESTORE_REQUIRE_SERVERS === '1' ? null : await serverUnavailable();
  if (reason) {
    it('skipped', { skip: reason }, () => {});
    return;
  }
  let server: { url: string; drop: () => Promise<void> };
  before(async () => {
    server = await createServerDatabase();
    const db = await PostgresDatabase.open({ url: server.url, max: 1 });
    await migrate(db);
    await seed(db);
    await db.query(`INSERT INTO users (id, email) VALUES ('alice', 'a@example.com')`);
    await db.close();
  });
  after(async () => server?.drop());

  it('creates, updates, enables and shows a strategy with its versions; a bad field is exit 2 naming the option', async () => {
    const env = { DATABASE_URL: server.url };
    const created = await runCli(['strategy', 'create', '--name', 'rsi', '--symbols', 'TATA_INR', '--timeframe', '1h', '--config', '{"period":14}', '--user', 'alice', '--json'], env);
    assert.equal(created.code, 0, created.stderr);
    const id = JSON.parse(created.stdout).id;
    assert.equal((await runCli(['strategy', 'update', '--id', id, '--config', '{"period":21}', '--by', 'alice'], env)).code, 0);
    const enabled = await runCli(['strategy', 'enable', '--id', id], env);
    assert.match(enabled.stdout, new RegExp(`${id}  rsi  v2  enabled  PAPER  1h  TATA_INR  owner alice`));
    const shown = await runCli(['strategy', 'show', '--id', id], env);
    assert.match(shown.stdout, /version 1 .*by alice\n.*version 2 .*by alice/s);
    const first = await runCli(['strategy', 'show', '--id', id, '--version', '1', '--json'], env);
    assert.deepEqual(JSON.parse(first.stdout).configuration.config, { period: 14 });
    assert.match((await runCli(['strategy', 'list', '--user', 'alice'], env)).stdout, /rsi  v2/);
    const bad = await runCli(['strategy', 'update', '--id', id, '--timeframe', '2h'], env);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--timeframe: must be one of/);
    assert.equal((await runCli(['strategy', 'create', '--name', 'x', '--symbols', 'TATA_INR', '--config', 'not json'], env)).code, 2);
    assert.equal((await runCli(['strategy', 'show', '--id', 'nope'], env)).code, 1);
    // Its metrics: none without snapshots, each with the reason; the round trips' counts.
    const analytics = await runCli(['analytics', id, '--benchmark', 'TATA_INR'], env);
    assert.equal(analytics.code, 0, analytics.stderr);
    assert.match(analytics.stdout, /sharpeRatio +— +\(no portfolio snapshots/);
    assert.match(analytics.stdout, /totalTrades +0/);
    assert.equal(JSON.parse((await runCli(['analytics', id, '--json'], env)).stdout).periodsPerYear, 365);
    assert.equal((await runCli(['analytics', id, '--from', 'yesterday'], env)).code, 2);
    assert.equal((await runCli(['analytics', id, '--benchmark', 'NOPE_INR'], env)).code, 2);
    assert.equal((await runCli(['analytics', 'nope'], env)).code, 1);
  });
});
