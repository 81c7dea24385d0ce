import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { apiCaller } from './helpers/api.ts';
import { MemoryBus } from '../src/bus/memory.ts';
import { migrate } from '../src/schema/migrator.ts';
import { seed } from '../src/schema/seed.ts';
import { storeOver, type Store } from '../src/store/store.ts';
import { InvalidArgumentError } from '../src/store/errors.ts';
import { riskLevel } from '../src/ingest/apply/risk.ts';
import { createServerDatabase, eachBackend, serverUnavailable } from './helpers/backends.ts';
import { runCli } from './helpers/cli.ts';
import { REDIS_URL, redisBus, redisUnavailable, testNames } from './helpers/redis.ts';
import { killAll, spawnService, waitFor } from './helpers/service.ts';
import { PostgresDatabase } from '../src/database/postgres.ts';
import { Redis } from 'ioredis';
import { depositMsg, ingest, orderMsg } from './helpers/ingest.ts';
import { loadConfig } from '../src/config.ts';
import { startService, type Service } from '../src/service/service.ts';
import { serviceLog } from './helpers/exposure.ts';

it('puts a limit at ok, warning or critical by its value, either way round', () => {
  const cases: [string, string, string, string, string][] = [
    ['max_position_value', '79999', '100000', '0.8', 'ok'],
    ['max_position_value', '80000', '100000', '0.8', 'warning'],
    ['max_position_value', '100000', '100000', '0.8', 'warning'],
    ['max_position_value', '100000.01', '100000', '0.8', 'critical'],
    ['max_daily_loss', '0', '0', '0.8', 'ok'],
    ['max_daily_loss', '0.01', '0', '0.8', 'critical'],
    ['min_balance', '1000', '800', '0.8', 'ok'],
    ['min_balance', '999.99', '800', '0.8', 'warning'],
    ['min_balance', '799.99', '800', '0.8', 'critical'],
  ];
  for (const [kind, value, limit, ratio, level] of cases) assert.equal(riskLevel(kind, value, limit, ratio), level, `${kind} ${value} against ${limit}`);
});

eachBackend('risk limits evaluated as data arrives', (get) => {
  let store: Store;
  let bus: MemoryBus;
  const published: { userId: string; eventType: string; limitType: string; riskValue: string }[] = [];
  before(async () => {
    const { db } = get();
    await migrate(db);
    await seed(db);
    await db.query(`INSERT INTO users (id, email) VALUES ('rita', 'r@example.com'), ('sam', 's@example.com')`);
    bus = new MemoryBus();
    store = storeOver(db, bus);
    await bus.subscribe('tradestore:risk_events', (message) => published.push(...JSON.parse(message)));
  });
  const position = (quantity: string) => ({ type: 'POSITION_UPDATE', data: { exchange: 'NSE', symbol: 'NIFTY', userId: 'rita', quantity, entryPrice: '24000', markPrice: '24000' } });
  const events = async (userId: string, limitType: string) =>
    (await store.risk.events({ userId })).reverse().filter((e) => e.description?.startsWith(`${limitType} `));

  it('raises one event per breach of a position limit: a warning, a breach, nothing while it stays breached, a breach again after it came back', async () => {
    const { db } = get();
    const limit = await store.risk.setLimit({ userId: 'rita', limitType: 'max_position_value', symbol: 'NIFTY', limitValue: '100000', action: 'block_new_orders' });
    assert.deepEqual([limit.level, limit.currentValue, limit.measured], ['ok', '0', true]);
    const steps: [string, string, string][] = [
      ['3', '72000', 'ok'], ['3.5', '84000', 'warning'], ['5', '120000', 'critical'], ['6', '144000', 'critical'], ['2', '48000', 'ok'], ['5', '120000', 'critical'],
    ];
    for (const [quantity, value, level] of steps) {
      await ingest(db, bus, [position(quantity)]);
      const now = (await store.risk.limits('rita')).find((l) => l.id === limit.id)!;
      assert.deepEqual([now.currentValue, now.level], [value, level], `at quantity ${quantity}`);
    }
    const raised = (await events('rita', 'max_position_value'));
    assert.deepEqual(raised.map((e) => [e.eventType, e.severity, e.riskValue, e.limitValue, e.actionTaken]), [
      ['limit_warning', 'warning', '84000', '100000', 'warn'],
      ['limit_breach', 'critical', '120000', '100000', 'block_new_orders'],
      ['limit_breach', 'critical', '120000', '100000', 'block_new_orders'],
    ]);
    assert.deepEqual(published.filter((p) => p.limitType === 'max_position_value').map((p) => [p.userId, p.eventType, p.riskValue]), [
      ['rita', 'limit_warning', '84000'], ['rita', 'limit_breach', '120000'], ['rita', 'limit_breach', '120000'],
    ], 'published on the channel after commit');
  });

  it("measures the day's loss from closed round trips, orders per hour, a balance floor, and the users' own limits", async () => {
    const { db } = get();
    const strategy = await store.strategies.create({ name: 'risky', symbols: ['TATA_INR'], userId: 'sam', initialCapital: '1000' });
    await store.risk.setLimit({ userId: 'sam', limitType: 'max_daily_loss', limitValue: '100' });
    await store.risk.setLimit({ userId: 'sam', limitType: 'max_orders_per_hour', limitValue: '2' });
    await store.risk.setLimit({ userId: 'sam', limitType: 'min_balance', symbol: 'INR', limitValue: '500', warningRatio: '0.5' });
    await store.risk.setLimit({ userId: 'sam', limitType: 'max_drawdown', strategyId: strategy.id, limitValue: '0.05' });
    await store.risk.setLimit({ userId: 'sam', limitType: 'max_leverage', limitValue: '3' });
    const now = Date.now();
    const close = (id: string, pnl: string, k: number) => [
      { type: 'STRATEGY_TRADE_OPENED', data: { id, strategyId: strategy.id, symbol: 'TATA_INR', side: 'buy', entryPrice: '100', quantity: '1', entryTime: now - 60_000 * (10 - k) } },
      { type: 'STRATEGY_TRADE_CLOSED', data: { id, exitPrice: '100', exitTime: now - 60_000 * (9 - k), pnl } },
    ];
    await ingest(db, bus, close('l1', '-60', 0));
    await ingest(db, bus, close('l2', '-30', 1));
    await ingest(db, bus, close('l3', '-20', 2));
    const byType = async () => new Map((await store.risk.limits('sam')).map((l) => [l.limitType, l]));
    let limits = await byType();
    assert.deepEqual([limits.get('max_daily_loss')!.currentValue, limits.get('max_daily_loss')!.level], ['110', 'critical']);
    // Realized equity 1000 → 890 from a peak of 1000: 11 % down.
    assert.deepEqual([limits.get('max_drawdown')!.currentValue, limits.get('max_drawdown')!.level], ['0.11', 'critical']);
    await ingest(db, bus, [depositMsg('sam', 'INR', '1200'), ...[1, 2, 3].map((i) => orderMsg(`sam-o${i}`, 'TATA_INR', 'buy', '100', '1', 'sam'))]);
    await ingest(db, bus, [{ type: 'BALANCE_UPDATE', data: { userId: 'sam', asset: 'INR', availableChange: '-750', changeType: 'withdrawal' } }]);
    limits = await byType();
    assert.deepEqual([limits.get('max_orders_per_hour')!.currentValue, limits.get('max_orders_per_hour')!.level], ['3', 'critical']);
    assert.deepEqual([limits.get('min_balance')!.currentValue, limits.get('min_balance')!.level], ['450', 'critical']);
    assert.deepEqual([limits.get('max_leverage')!.measured, limits.get('max_leverage')!.level], [false, 'ok'], 'a type tradestore does not measure is kept, not evaluated');
    const sam = await store.risk.events({ userId: 'sam' });
    // The floor was breached when it was set (no balance yet), came back with the deposit, and was breached again.
    assert.deepEqual(sam.map((e) => `${e.eventType} ${e.description}`).sort(), [
      'limit_breach max_daily_loss 110 against 100',
      'limit_breach max_drawdown 0.06 against 0.05',
      'limit_breach max_orders_per_hour 3 against 2',
      'limit_breach min_balance 0 below 500',
      'limit_breach min_balance 450 below 500',
      'limit_warning max_daily_loss 90 against 100',
    ]);

    // A day's loss breached yesterday (and not evaluated since) is a new breach today.
    await db.query(`UPDATE risk_limits SET evaluated_at = now() - interval '1 day' WHERE user_id = 'sam' AND limit_type = 'max_daily_loss'`);
    await ingest(db, bus, close('l4', '-1', 3));
    assert.equal((await store.risk.events({ userId: 'sam' })).filter((e) => e.description?.startsWith('max_daily_loss ') && e.eventType === 'limit_breach').length, 2);
    // A limit of one strategy counts that strategy's exchange orders, not the user's venue orders.
    const scoped = await store.risk.setLimit({ userId: 'sam', limitType: 'max_orders_per_hour', strategyId: strategy.id, limitValue: '1' });
    assert.deepEqual([scoped.currentValue, scoped.level], ['0', 'ok']);

    // The user's own limit (seed 003's users.max_daily_loss) takes part like any other.
    await db.query(`INSERT INTO users (id, email, max_daily_loss) VALUES ('una', 'u@example.com', 50)`);
    const own = await store.strategies.create({ name: 'own', symbols: ['TATA_INR'], userId: 'una' });
    await ingest(db, bus, [
      { type: 'STRATEGY_TRADE_OPENED', data: { id: 'u1', strategyId: own.id, symbol: 'TATA_INR', side: 'buy', entryPrice: '100', quantity: '1', entryTime: now - 60_000 } },
      { type: 'STRATEGY_TRADE_CLOSED', data: { id: 'u1', exitPrice: '100', exitTime: now - 1000, pnl: '-75' } },
    ]);
    const una = await store.risk.limits('una');
    assert.deepEqual(una.map((l) => [l.limitType, l.source, l.limitValue, l.currentValue, l.level]), [['max_daily_loss', 'account', '50', '75', 'critical']]);
  });

  it('acknowledges and resolves an event once, with who and when; refuses bad limits naming the field', async () => {
    const [event] = await store.risk.events({ userId: 'sam', open: true, limit: 1 });
    const acknowledged = await store.risk.acknowledge(event!.id, 'ops');
    assert.equal(acknowledged.acknowledgedBy, 'ops');
    assert.ok(acknowledged.acknowledgedAt);
    await assert.rejects(store.risk.acknowledge(event!.id, 'other'), /acknowledged already, by ops/);
    const resolved = await store.risk.resolve(event!.id, 'lead');
    assert.deepEqual([resolved.resolvedBy, resolved.acknowledgedBy], ['lead', 'ops']);
    assert.ok(!(await store.risk.events({ userId: 'sam', open: true })).some((e) => e.id === event!.id), 'no longer open');
    const bad = async (input: object, field: string) =>
      assert.rejects(store.risk.setLimit({ userId: 'sam', limitType: 'max_daily_loss', limitValue: '1', ...input } as never), (e: Error) => e instanceof InvalidArgumentError && e.parameter === field);
    await bad({ limitValue: '-1' }, 'limitValue');
    await bad({ limitType: 'Max Loss' }, 'limitType');
    await bad({ warningRatio: '1.5' }, 'warningRatio');
    await bad({ limitType: 'min_balance' }, 'symbol');
    await bad({ userId: 'nobody' }, 'userId');
  });
});

describe('risk through /v1', () => {
  let service: Service;
  const keys = { admin: '', rita: '', ritaTrade: '' };
  before(async () => {
    service = await startService(loadConfig({ PORT: '0', TRADESTORE_DATA_DIR: 'memory://', TRADESTORE_MONITOR_INTERVAL_MS: '0' }), { migrate: true, log: serviceLog });
    await service.db.query(`INSERT INTO users (id, email) VALUES ('rita', 'r@example.com'), ('root', 'root@example.com')`);
    keys.admin = (await service.store.apiKeys.create('root', ['read', 'admin'])).key;
    keys.rita = (await service.store.apiKeys.create('rita', ['read'])).key;
    keys.ritaTrade = (await service.store.apiKeys.create('rita', ['read', 'trade'])).key;
  });
  after(async () => service?.stop());
  const call = apiCaller(() => service.port);

  it('manages limits and events with the admin scope; a user reads their own', async () => {
    const body = { userId: 'rita', limitType: 'min_balance', symbol: 'INR', limitValue: '100' };
    assert.equal((await call('PUT', '/v1/admin/risk/limits', keys.ritaTrade, body)).status, 403);
    const set = await call('PUT', '/v1/admin/risk/limits', keys.admin, body);
    assert.equal(set.status, 200, JSON.stringify(set.body));
    assert.deepEqual([set.body.level, set.body.currentValue], ['critical', '0'], 'no balance: below the floor at once');
    assert.equal((await call('PUT', '/v1/admin/risk/limits', keys.admin, { ...body, limitValue: 'lots' })).status, 400);
    const mine = await call('GET', '/v1/account/risk', keys.rita);
    assert.deepEqual([mine.body.limits.length, mine.body.events.length, mine.body.events[0].eventType], [1, 1, 'limit_breach']);
    const listed = await call('GET', '/v1/admin/risk/events?userId=rita&open=true', keys.admin);
    const id = listed.body.events[0].id;
    assert.equal((await call('POST', `/v1/admin/risk/events/${id}/acknowledge`, keys.rita)).status, 403);
    assert.equal((await call('POST', `/v1/admin/risk/events/${id}/acknowledge`, keys.admin)).body.acknowledgedBy, 'root');
    assert.equal((await call('POST', `/v1/admin/risk/events/${id}/acknowledge`, keys.admin)).status, 400, 'once');
    assert.equal((await call('POST', `/v1/admin/risk/events/${id}/resolve`, keys.admin)).body.resolvedBy, 'root');
    assert.deepEqual((await call('GET', '/v1/account/risk', keys.rita)).body.events, [], 'resolved: no longer open');
    assert.equal((await call('GET', '/v1/admin/risk/limits?level=critical', keys.admin)).body.limits.length, 1);
    assert.equal((await call('POST', '/v1/admin/risk/events/999999/resolve', keys.admin)).status, 404);
    assert.equal((await call('DELETE', `/v1/admin/risk/limits/${set.body.id}`, keys.admin)).status, 204);
    assert.deepEqual((await call('GET', '/v1/admin/risk/limits?userId=rita', keys.admin)).body.limits, [], 'the cached limits were dropped');
  });
});

describe('a breach through a real service process, published on Redis, and tradestore risk [postgres, Redis]', async () => {
  const reason = process.env.TRADESTORE_REQUIRE_SERVERS === '1' ? null : (await serverUnavailable()) ?? (await redisUnavailable());
  if (reason) {
    it('skipped', { skip: reason }, () => {});
    return;
  }
  const names = testNames();
  let server: { url: string; drop: () => Promise<void> };
  let subscriber: Redis | null = null;
  after(async () => {
    killAll();
    subscriber?.disconnect();
    await server?.drop();
    await names.cleanup();
  });

  it('raises one event for a breach a fill makes, publishes it on the deployment\'s channel, and the CLI manages it', async () => {
    server = await createServerDatabase();
    const env = { DATABASE_URL: server.url };
    const db = await PostgresDatabase.open({ url: server.url, max: 1 });
    await migrate(db);
    await seed(db);
    await db.query(`INSERT INTO users (id, email) VALUES ('tina', 't@example.com')`);
    await db.close();
    const set = await runCli(['risk', 'set', '--user', 'tina', '--type', 'max_daily_loss', '--value', '500', '--action', 'flatten', '--json'], env);
    assert.equal(set.code, 0, set.stderr);
    assert.equal(JSON.parse(set.stdout)[0].level, 'ok');
    assert.equal((await runCli(['risk', 'set', '--user', 'tina', '--type', 'max_daily_loss', '--value', 'lots'], env)).code, 2);
    assert.match((await runCli(['risk', 'set', '--user', 'tina', '--type', 'min_balance', '--value', '1'], env)).stderr, /--symbol: a min_balance limit names its asset/);

    subscriber = new Redis(REDIS_URL);
    const received: { eventType: string; userId: string; riskValue: string; actionTaken: string }[] = [];
    subscriber.on('message', (_channel: string, message: string) => received.push(...JSON.parse(message)));
    await subscriber.subscribe(`${names.names.keyPrefix}tradestore:risk_events`);
    const service = spawnService({ ...env, ...names.env, TRADESTORE_MONITOR_INTERVAL_MS: '0', TRADESTORE_MAINTENANCE_TICK_MS: '0' });
    await waitFor('the service to listen', async () => /listening on/.test(service.output()) || service.child.exitCode !== null, 60_000);
    const bus = redisBus(names.names);
    const fill = (id: string, pnl: string) => ({ type: 'FILL', data: { exchange: 'NSE', symbol: 'NIFTY', userId: 'tina', orderId: `o-${id}`, tradeId: id, side: 'SELL', price: '24000', quantity: '1', realizedPnl: pnl, timestamp: Date.now() - 1000 } });
    for (const [id, pnl] of [['1', '-300'], ['2', '-300'], ['3', '-100']] as const) await bus.add(JSON.stringify(fill(id, pnl)));
    await bus.close();
    await waitFor('the breach published', async () => received.some((r) => r.eventType === 'limit_breach'), 30_000);
    await new Promise((r) => setTimeout(r, 300));
    // 300: ok; 600: past 500, one breach; 700: still breached, nothing more. (When the worker takes
    // the fills in one batch, the limit is evaluated once, at 700.)
    assert.equal(received.length, 1, JSON.stringify(received));
    assert.deepEqual(received.map((r) => [r.eventType, r.userId, r.actionTaken]), [['limit_breach', 'tina', 'flatten']]);
    assert.ok(['600', '700'].includes(received[0]!.riskValue), received[0]!.riskValue);
    const events = JSON.parse((await runCli(['risk', 'events', '--user', 'tina', '--open', '--json'], env)).stdout);
    assert.equal(events.length, 1);
    assert.match((await runCli(['risk', 'limits', '--user', 'tina'], env)).stdout, /max_daily_loss  700 of 500  critical/);
    assert.match((await runCli(['risk', 'ack', events[0].id, '--by', 'desk'], env)).stdout, /acknowledged by desk/);
    assert.match((await runCli(['risk', 'resolve', events[0].id, '--by', 'desk'], env)).stdout, /resolved by desk/);
    assert.equal((await runCli(['risk', 'resolve', events[0].id, '--by', 'desk'], env)).code, 2, 'once');
    assert.equal((await runCli(['risk', 'ack', events[0].id], env)).code, 2, 'who');
    service.child.kill('SIGTERM');
    assert.equal(await service.exited, 0);
  });
});
