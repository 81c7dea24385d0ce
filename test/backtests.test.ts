import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { apiCaller } from './helpers/api.ts';
import Big from 'big.js';
import { MemoryBus } from '../src/bus/memory.ts';
import { migrate } from '../src/schema/migrator.ts';
import { seed } from '../src/schema/seed.ts';
import { storeOver, type Store } from '../src/store/store.ts';
import fc from 'fast-check';
import { BacktestStateError, tradePnl } from '../src/store/backtestRuns.ts';
import { InvalidArgumentError, NotFoundError } from '../src/store/errors.ts';
import { returnMetrics, tradeMetrics } from '../src/analytics/metrics.ts';
import { createServerDatabase, eachBackend, serverUnavailable } from './helpers/backends.ts';
import { runCli } from './helpers/cli.ts';
import { redisBus, redisUnavailable, testNames } from './helpers/redis.ts';
import { killAll, spawnService, waitFor } from './helpers/service.ts';
import { PostgresDatabase } from '../src/database/postgres.ts';
import { loadConfig } from '../src/config.ts';
import { startService, type Service } from '../src/service/service.ts';
import { ingest } from './helpers/ingest.ts';
import { serviceLog } from './helpers/exposure.ts';

const DAY = 86_400_000;
const t0 = Date.UTC(2025, 0, 6); // a Monday

/** Deterministic trades over 20 days: P&L from a fixed walk, some losers, commission 1. */
function makeTrades(n: number, seed = 1) {
  let x = seed;
  const next = () => ((x = (x * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31);
  return Array.from({ length: n }, (_, i) => {
    const entry = t0 + Math.floor((i / n) * 20 * DAY);
    const exit = entry + 60_000 + Math.floor(next() * 5 * 3_600_000);
    const entryPrice = (100 + next() * 10).toFixed(2);
    const exitPrice = (Number(entryPrice) * (1 + (next() - 0.47) * 0.04)).toFixed(2);
    return { symbol: 'TATA_INR', side: next() < 0.5 ? 'long' : 'short', quantity: String(1 + Math.floor(next() * 20)), entryPrice, exitPrice, entryTime: entry, exitTime: exit, commission: '1' };
  });
}

/** What the summary should be, computed here from the trades alone. */
function expected(trades: ReturnType<typeof makeTrades>, capital: string) {
  const withPnl = trades.map((t) => {
    const move = new Big(t.exitPrice).minus(t.entryPrice).times(t.quantity);
    return { ...t, pnl: (t.side === 'long' ? move : move.times(-1)).minus(t.commission).toFixed() };
  });
  const byDay = new Map<number, Big>();
  for (const t of withPnl) {
    const day = Math.floor(t.exitTime / DAY) * DAY;
    byDay.set(day, (byDay.get(day) ?? new Big(0)).plus(t.pnl));
  }
  const last = Math.max(...byDay.keys(), t0 + 20 * DAY - DAY);
  const equity: number[] = [];
  const times: number[] = [];
  let e = new Big(capital);
  for (let day = t0 - DAY; day <= last; day += DAY) {
    e = e.plus(byDay.get(day) ?? 0);
    equity.push(Number(e));
    times.push(day);
  }
  return { withPnl, trips: tradeMetrics(withPnl.map((t) => ({ pnl: t.pnl, entryTime: t.entryTime, exitTime: t.exitTime }))), returns: returnMetrics(equity, times, { periodsPerYear: 365 }), final: e.toFixed() };
}

it("computes a trade's P&L in fixed point exactly as big.js does, for generated trades", () => {
  const dec = (maxUnits: number, places: number) =>
    fc.tuple(fc.integer({ min: 1, max: maxUnits }), fc.integer({ min: 0, max: places })).map(([u, p]) => (u / 10 ** p).toFixed(p));
  fc.assert(
    fc.property(dec(10_000_000, 8), dec(10_000_000, 8), dec(1_000_000, 6), fc.option(dec(100_000, 4), { nil: undefined }), fc.constantFrom('buy', 'sell', 'long', 'short'),
      (entryPrice, exitPrice, quantity, commission, side) => {
        const move = new Big(exitPrice).minus(entryPrice).times(quantity);
        const pnl = (side === 'buy' || side === 'long' ? move : move.times(-1)).minus(commission ?? '0');
        assert.equal(tradePnl({ side: side as 'buy', entryPrice, exitPrice, quantity, commission }), pnl.toFixed());
      }),
    { numRuns: 2000 },
  );
  assert.equal(tradePnl({ side: 'short', entryPrice: '3', exitPrice: '1', quantity: '1', commission: '0' }), '2');
  assert.equal(tradePnl({ side: 'long', entryPrice: '8', exitPrice: '7.999999995', quantity: '1' }), '-0.000000005');
  assert.equal(tradePnl({ side: 'long', entryPrice: '8', quantity: '1' }), null, 'still open');
  assert.equal(tradePnl({ side: 'long', entryPrice: '8', exitPrice: '9', quantity: '1', pnl: '0.5' }), '0.5', "the producer's");
});

eachBackend('backtests', (get) => {
  let store: Store;
  let bus: MemoryBus;
  let strategyId = '';
  before(async () => {
    const { db } = get();
    await migrate(db);
    await seed(db);
    await db.query(`INSERT INTO users (id, email) VALUES ('quant', 'q@example.com'), ('other', 'o@example.com')`);
    bus = new MemoryBus();
    store = storeOver(db, bus);
    strategyId = (await store.strategies.create({ name: 'bt', symbols: ['TATA_INR'], userId: 'quant' })).id;
  });
  const input = (name: string) => ({ strategyId, name, symbols: ['TATA_INR'], timeframes: ['1h'], startDate: new Date(t0), endDate: new Date(t0 + 20 * DAY), initialCapital: '100000', commission: '0.001' });

  it('runs a backtest through the library: PENDING → RUNNING with progress → COMPLETED, with the summary computed from its trades', async () => {
    const b = await store.backtests.create(input('library'));
    assert.deepEqual([b.status, b.progress, b.userId, b.results], ['pending', 0, 'quant', null]);
    await assert.rejects(store.backtests.progress(b.id, 10), BacktestStateError, 'not running yet');
    await store.backtests.start(b.id);
    await store.backtests.progress(b.id, 40);
    await assert.rejects(store.backtests.progress(b.id, 30), /does not go back/);
    const trades = makeTrades(500);
    assert.equal(await store.backtests.addTrades(b.id, trades.slice(0, 250), 0), 250);
    await assert.rejects(store.backtests.addTrades(b.id, trades.slice(0, 250), 0), /part 0 .* stored already/, 'a part sent twice');
    await store.backtests.addTrades(b.id, trades.slice(250), 1);
    const running = await store.backtests.get(b.id);
    assert.deepEqual([running.status, running.progress, running.tradesStored], ['running', 40, 500], 'progress visible while it runs');
    const want = expected(trades, '100000');
    // An engine summary that disagrees with the trades is refused; the backtest keeps running.
    await assert.rejects(store.backtests.complete(b.id, { claims: { totalTrades: 499, grossProfit: want.trips.grossProfit } }), /totalTrades: claimed 499, the stored trades give 500/);
    assert.equal((await store.backtests.get(b.id)).status, 'running');
    // Places the engine wrote count, trailing zeros too: 0.50 is checked to two places.
    await assert.rejects(store.backtests.complete(b.id, { claims: { winRate: '0.50' } }), /winRate: claimed 0.50, the stored trades give/);
    // Rounded the engine's way (cents, 4 places) it agrees.
    const claims = { totalTrades: 500, grossProfit: new Big(want.trips.grossProfit as string).toFixed(2), finalCapital: new Big(want.final).toFixed(2), winRate: Number((want.trips.winRate as { value: number }).value).toFixed(4) };
    const summary = await store.backtests.complete(b.id, { claims, executionTimeMs: 1234 });
    assert.equal(summary.equitySource, 'trades');
    const done = await store.backtests.get(b.id);
    assert.deepEqual([done.status, done.progress, done.results!.finalCapital, done.results!.executionTimeMs], ['completed', 100, want.final, 1234]);
    const m = done.results!.metrics;
    for (const name of ['totalTrades', 'winningTrades', 'losingTrades', 'grossProfit', 'grossLoss', 'largestWin', 'largestLoss']) assert.equal(m[name], String(want.trips[name]), name);
    for (const name of ['sharpeRatio', 'sortinoRatio', 'maxDrawdown', 'volatility', 'annualReturn', 'var95', 'cvar95']) {
      assert.ok(Math.abs(Number(m[name]) - want.returns[name]!.value!) <= 1e-9 * Math.abs(want.returns[name]!.value!), `${name}: ${m[name]} vs ${want.returns[name]!.value}`);
    }
    assert.equal(m.totalReturn, new Big(want.final).div(100000).minus(1).toFixed(12));
    // Stored P&L per trade: exact.
    const page = await store.backtests.trades(b.id, { limit: 3 });
    assert.deepEqual([page.total, page.items.length, page.items[0]!.pnl], [500, 3, want.withPnl.toSorted((x, y) => x.entryTime - y.entryTime)[0]!.pnl]);
    assert.ok(page.nextCursor);
    const curve = await store.backtests.equity(b.id);
    assert.equal(curve.points.at(-1)!.equity, want.final);
    await assert.rejects(store.backtests.addTrades(b.id, trades.slice(0, 1), 2), /is completed: cannot store trades/);
  });

  it('applies the same run from events, dead-lettering what the state does not allow, with the engine curve when it sends one', async () => {
    const { db } = get();
    const b = await store.backtests.create(input('events'));
    const trades = makeTrades(120, 7);
    const points = Array.from({ length: 21 }, (_, i) => ({ time: t0 + i * DAY - 1, equity: String(100000 + i * 150 - (i % 4) * 400) }));
    const worker = await ingest(db, bus, [
      { type: 'BACKTEST_PROGRESS', data: { backtestId: b.id, progress: 5 } }, // not started yet: refused
      { type: 'BACKTEST_STARTED', data: { backtestId: b.id } },
      { type: 'BACKTEST_PROGRESS', data: { backtestId: b.id, progress: 50 } },
      { type: 'BACKTEST_TRADES', data: { backtestId: b.id, seq: 0, trades: trades.slice(0, 60) } },
      { type: 'BACKTEST_TRADES', data: { backtestId: b.id, seq: 0, trades: trades.slice(0, 60) } }, // the same part again: refused
      { type: 'BACKTEST_TRADES', data: { backtestId: b.id, seq: 1, trades: trades.slice(60) } },
      { type: 'BACKTEST_EQUITY', data: { backtestId: b.id, seq: 0, points } },
      { type: 'BACKTEST_COMPLETED', data: { backtestId: b.id, summary: { totalTrades: 119 } } }, // disagrees: refused
      { type: 'BACKTEST_COMPLETED', data: { backtestId: b.id, summary: { totalTrades: 120 }, dataPointsProcessed: 4800 } },
      { type: 'BACKTEST_FAILED', data: { backtestId: b.id, error: 'too late' } }, // completed: refused
      { type: 'BACKTEST_STARTED', data: { backtestId: '999999' } }, // unknown
    ]);
    // Each backtest's reports are applied in order; the unknown backtest's shard may come first.
    const reasons = (await bus.listDead({ count: 100 })).map((l) => l.reason.replace(/\d+/g, 'N')).sort();
    assert.deepEqual(reasons, [
      'backtest N does not exist',
      'backtest N is completed: cannot fail',
      'backtest N is pending: cannot report progress',
      "part N of backtest N's trades was stored already",
      "the engine's summary disagrees with the N stored trades: totalTrades: claimed N, the stored trades give N",
    ]);
    void worker;
    const done = await store.backtests.get(b.id);
    assert.deepEqual([done.status, done.tradesStored, done.results!.equitySource, done.results!.dataPointsProcessed], ['completed', 120, 'engine', 4800]);
    const want = returnMetrics(points.map((p) => Number(p.equity)), points.map((p) => Math.floor(p.time / DAY) * DAY), { periodsPerYear: 365 });
    assert.equal(done.results!.metrics.sharpeRatio, String(want.sharpeRatio!.value), 'from the engine curve');
    assert.equal(done.results!.finalCapital, points.at(-1)!.equity);
  });

  it('fails and cancels, ranks backtests by a metric, compares with the live strategy, and keeps them to their owner', async () => {
    const failed = await store.backtests.create(input('fails'));
    await store.backtests.start(failed.id);
    await store.backtests.fail(failed.id, 'no data');
    assert.deepEqual([(await store.backtests.get(failed.id)).status, (await store.backtests.get(failed.id)).errorMessage], ['failed', 'no data']);
    const cancelled = await store.backtests.create(input('cancelled'));
    await store.backtests.cancel(cancelled.id);
    assert.equal((await store.backtests.get(cancelled.id)).status, 'cancelled');
    const ranked = await store.backtests.list({ strategyId, orderBy: 'sharpeRatio' });
    assert.ok(ranked.length >= 2 && ranked.every((b) => b.status === 'completed'));
    const sharpe = ranked.map((b) => Number(b.results!.metrics.sharpeRatio));
    assert.deepEqual(sharpe, sharpe.toSorted((a, b) => b - a), 'best first');
    assert.equal((await store.backtests.list({ strategyId, status: 'failed' })).length, 1);
    const comparison = await store.backtests.compare(ranked[0]!.id);
    const total = comparison.metrics.find((m) => m.name === 'totalTrades')!;
    assert.equal(total.live, '0', 'the live strategy closed nothing in the period');
    assert.equal(total.difference, String(0 - Number(total.backtest)));
    await assert.rejects(store.backtests.compare(failed.id), InvalidArgumentError);
    await assert.rejects(store.backtests.get(failed.id, 'other'), NotFoundError);
    assert.deepEqual(await store.backtests.list({}, 'other'), []);
    await assert.rejects(store.backtests.create({ ...input('x'), endDate: new Date(t0) }), (e: Error) => e instanceof InvalidArgumentError && e.parameter === 'endDate');
    await assert.rejects(store.backtests.create({ ...input('x'), startDate: new Date(0) }), (e: Error) => e instanceof InvalidArgumentError && e.parameter === 'startDate', 'periods are bounded like event times');
    await assert.rejects(store.backtests.create({ ...input('x'), endDate: new Date(Date.UTC(2500, 0, 1)) }), (e: Error) => e instanceof InvalidArgumentError && e.parameter === 'endDate');
    await assert.rejects(store.backtests.create({ ...input('x'), strategyId: 'nope' }), (e: Error) => e instanceof InvalidArgumentError && e.parameter === 'strategyId');
    // A bad trade deep in a part, found while the part streams to the database: none of it is kept.
    const partly = await store.backtests.create(input('bad part'));
    await store.backtests.start(partly.id);
    await assert.rejects(store.backtests.addTrades(partly.id, [{ symbol: 'X', side: 'up' }]), (e: Error) => e instanceof InvalidArgumentError && e.parameter === 'trades');
    const part = makeTrades(5000, 9) as object[];
    part[4321] = { ...part[4321], quantity: '-3' };
    await assert.rejects(store.backtests.addTrades(partly.id, part, 0), /trade 4321: quantity: must be greater than 0/);
    part[4321] = { ...part[4321], quantity: '3', entryTime: t0 + 400 * DAY, exitTime: t0 + 401 * DAY };
    await assert.rejects(store.backtests.addTrades(partly.id, part, 0), /trade 4321 enters at .* outside the backtest's period/);
    assert.equal((await store.backtests.get(partly.id)).tradesStored, 0);
    part[4321] = { ...part[4321], entryTime: t0, exitTime: t0 + 60_000 };
    assert.equal(await store.backtests.addTrades(partly.id, part, 0), 5000, 'the same part, corrected, is taken: the refused one left no trace');
  });
});

describe('backtests through /v1 and tradestore backtest [postgres]', async () => {
  const reason = process.env.TRADESTORE_REQUIRE_SERVERS === '1' ? null : await serverUnavailable();
  if (reason) {
    it('skipped', { skip: reason }, () => {});
    return;
  }
  let server: { url: string; drop: () => Promise<void> };
  let service: Service;
  const keys = { quant: '', other: '', reader: '', admin: '' };
  let strategyId = '';
  before(async () => {
    server = await createServerDatabase();
    service = await startService(loadConfig({ PORT: '0', DATABASE_URL: server.url, TRADESTORE_MONITOR_INTERVAL_MS: '0', TRADESTORE_MAINTENANCE_TICK_MS: '0' }), { migrate: true, log: serviceLog });
    await service.db.query(`INSERT INTO users (id, email) VALUES ('quant', 'q@example.com'), ('other', 'o@example.com'), ('root', 'r@example.com')`);
    keys.quant = (await service.store.apiKeys.create('quant', ['read', 'trade'])).key;
    keys.reader = (await service.store.apiKeys.create('quant', ['read'])).key;
    keys.other = (await service.store.apiKeys.create('other', ['read', 'trade'])).key;
    keys.admin = (await service.store.apiKeys.create('root', ['read', 'trade', 'admin'])).key;
    strategyId = (await service.store.strategies.create({ name: 'api', symbols: ['TATA_INR'], userId: 'quant' })).id;
  });
  after(async () => {
    await service?.stop();
    await server?.drop();
  });
  const call = apiCaller(() => service.port);

  it('creates with the trade scope, shows progress while running, reads the summary, trades, curve and comparison; keys see their own', async () => {
    const body = { strategyId, name: 'api run', symbols: ['TATA_INR'], startDate: new Date(t0).toISOString(), endDate: t0 + 20 * DAY, initialCapital: '50000' };
    assert.equal((await call('POST', '/v1/backtests', keys.reader, body)).status, 403);
    assert.equal((await call('POST', '/v1/backtests', keys.other, body)).body.error.parameter, 'strategyId', "another user's strategy is not there");
    const bad = await call('POST', '/v1/backtests', keys.quant, { ...body, endDate: body.startDate });
    assert.deepEqual([bad.status, bad.body.error.parameter], [400, 'endDate']);
    const created = await call('POST', '/v1/backtests', keys.quant, body);
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const id = created.body.id as string;
    await service.store.backtests.start(id);
    await service.store.backtests.progress(id, 60);
    await service.store.backtests.addTrades(id, makeTrades(40, 3));
    const running = await call('GET', `/v1/backtests/${id}`, keys.reader);
    assert.deepEqual([running.body.status, running.body.progress, running.body.tradesStored, running.body.results], ['running', 60, 40, null]);
    await service.store.backtests.complete(id);
    const done = await call('GET', `/v1/backtests/${id}`, keys.reader);
    assert.deepEqual([done.body.status, done.body.results.metrics.totalTrades], ['completed', '40']);
    assert.equal((await call('GET', `/v1/backtests/${id}`, keys.other)).status, 404);
    assert.equal((await call('GET', `/v1/backtests/${id}`, keys.admin)).status, 200);
    const page = await call('GET', `/v1/backtests/${id}/trades?limit=15`, keys.reader);
    assert.deepEqual([page.body.total, page.body.items.length], [40, 15]);
    const next = await call('GET', `/v1/backtests/${id}/trades?limit=30&cursor=${page.body.nextCursor}`, keys.reader);
    assert.equal(next.body.items.length, 25);
    assert.ok(new Set([...page.body.items, ...next.body.items].map((t: { id: string }) => t.id)).size === 40, 'every trade once');
    const curve = await call('GET', `/v1/backtests/${id}/equity`, keys.reader);
    assert.deepEqual([curve.body.source, curve.body.points.at(-1).equity], ['trades', done.body.results.finalCapital]);
    const compared = await call('GET', `/v1/backtests/${id}/compare`, keys.reader);
    assert.equal(compared.body.metrics.find((m: { name: string }) => m.name === 'totalTrades').backtest, '40');
    const listed = await call('GET', `/v1/backtests?strategyId=${strategyId}&orderBy=totalReturn`, keys.reader);
    assert.deepEqual(listed.body.backtests.map((b: { id: string }) => b.id), [id]);
    assert.deepEqual((await call('GET', '/v1/backtests', keys.other)).body.backtests, []);
    assert.equal((await call('GET', '/v1/backtests?orderBy=luck', keys.reader)).status, 400);
    const badId = await call('GET', '/v1/backtests/abc', keys.reader);
    assert.deepEqual([badId.status, badId.body.error.code, badId.body.error.parameter], [400, 'invalid_parameter', 'id'], 'a path parameter is sent: invalid, not missing');

    // The CLI reads the same.
    const env = { DATABASE_URL: server.url };
    const list = await runCli(['backtest', 'list', '--strategy', strategyId, '--order-by', 'sharpeRatio'], env);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, new RegExp(`^ +${id}  completed 100 %  api run  strategy ${strategyId}`));
    const shown = await runCli(['backtest', 'show', id], env);
    assert.match(shown.stdout, /totalTrades +40/);
    const json = JSON.parse((await runCli(['backtest', 'compare', id, '--json'], env)).stdout);
    assert.equal(json.backtestId, id);
    assert.equal((await runCli(['backtest', 'list', '--order-by', 'luck'], env)).code, 2);
    assert.equal((await runCli(['backtest', 'show', '999999'], env)).code, 2);
    assert.equal((await runCli(['backtest', 'fly'], env)).code, 2);
  });
});

describe('a 100,000-trade backtest through a real service process [postgres, Redis]', async () => {
  const reason = process.env.TRADESTORE_REQUIRE_SERVERS === '1' ? null : (await serverUnavailable()) ?? (await redisUnavailable());
  if (reason) {
    it('skipped', { skip: reason }, () => {});
    return;
  }
  const names = testNames();
  let server: { url: string; drop: () => Promise<void> };
  let db: PostgresDatabase;
  after(async () => {
    killAll();
    await db?.close();
    await server?.drop();
    await names.cleanup();
  });

  it('stores the trades sent as events in parts and completes with the summary computed independently here', async () => {
    server = await createServerDatabase();
    db = await PostgresDatabase.open({ url: server.url, max: 2 });
    await migrate(db);
    await seed(db);
    const store = storeOver(db, new MemoryBus());
    const strategy = await store.strategies.create({ name: 'big', symbols: ['TATA_INR'] });
    const b = await store.backtests.create({ strategyId: strategy.id, name: '100k', symbols: ['TATA_INR'], startDate: new Date(t0), endDate: new Date(t0 + 20 * DAY), initialCapital: '1000000' });
    const trades = makeTrades(100_000, 11);
    const want = expected(trades, '1000000');
    const service = spawnService({ DATABASE_URL: server.url, ...names.env, TRADESTORE_MONITOR_INTERVAL_MS: '0', TRADESTORE_MAINTENANCE_TICK_MS: '0' });
    await waitFor('the service to listen', async () => /listening on/.test(service.output()) || service.child.exitCode !== null, 60_000);
    const bus = redisBus(names.names);
    await bus.add(JSON.stringify({ type: 'BACKTEST_STARTED', data: { backtestId: b.id } }));
    for (let seq = 0; seq * 2000 < trades.length; seq++) {
      await bus.add(JSON.stringify({ type: 'BACKTEST_TRADES', data: { backtestId: b.id, seq, trades: trades.slice(seq * 2000, (seq + 1) * 2000) } }));
      if (seq % 10 === 9) await bus.add(JSON.stringify({ type: 'BACKTEST_PROGRESS', data: { backtestId: b.id, progress: seq + 1 } }));
    }
    const claims = { totalTrades: 100_000, grossProfit: new Big(want.trips.grossProfit as string).toFixed(2), finalCapital: new Big(want.final).toFixed(2) };
    await bus.add(JSON.stringify({ type: 'BACKTEST_COMPLETED', data: { backtestId: b.id, summary: claims } }));
    await bus.close();
    await waitFor('the backtest completed', async () => (await store.backtests.get(b.id)).status === 'completed', 120_000);
    const done = await store.backtests.get(b.id);
    assert.deepEqual([done.tradesStored, done.results!.finalCapital], [100_000, want.final]);
    const m = done.results!.metrics;
    for (const name of ['totalTrades', 'winningTrades', 'losingTrades', 'grossProfit', 'grossLoss', 'largestWin', 'largestLoss', 'avgWin', 'avgLoss']) assert.equal(m[name], String(want.trips[name]), name);
    for (const name of ['sharpeRatio', 'maxDrawdown', 'var95', 'annualReturn']) {
      assert.ok(Math.abs(Number(m[name]) - want.returns[name]!.value!) <= 1e-9 * Math.abs(want.returns[name]!.value!), `${name}: ${m[name]} vs ${want.returns[name]!.value}`);
    }
    assert.equal((await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM backtest_chunks WHERE backtest_id = $1::bigint`, [b.id])).rows[0]!.n, 50);
    service.child.kill('SIGTERM');
    assert.equal(await service.exited, 0);
  });
});
