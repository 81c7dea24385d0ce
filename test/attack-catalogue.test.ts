import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { loadConfig } from '../src/config.ts';
import { startService, type Service } from '../src/service/service.ts';
import { createUser } from '../src/users/users.ts';
import { createServerDatabase } from './helpers/backends.ts';
import { depositMsg, orderMsg } from './helpers/ingest.ts';
import { secretUsed, serviceLog } from './helpers/exposure.ts';

/**
 * The attack catalogue of docs/SECURITY.md, over every operation the OpenAPI document lists, so a
 * route added later is tried too: without credentials (401), with credentials that are no longer
 * or never were valid (401), with a read-only session on a write (403), and as user A on user B's
 * resources (404, or an answer with nothing of B's in it).
 */
const PASSWORD = 'Attack-Catalogue-Pass-1';
secretUsed(PASSWORD);
/** Operations anyone may call: public market data, logging in, and the operator's probes (/metrics has its own token). */
const PUBLIC = [/^GET \/v1\/markets/, /^POST \/v1\/auth\/(login|refresh)$/, /^GET \/(health|metrics|ws|stream)/, /^GET \/api\/v3\//];
/** Writes a session with any scope may make about itself: ending sessions, its own two-factor settings (with the password). */
const SELF = [/^POST \/v1\/auth\/(logout|logout-all|2fa\/(setup|enable|disable))$/];
/** Not a user's: the model registry is the deployment's. */
const SHARED = [/^\/v1\/models/];
/** What B owns; none of it may appear in anything A is answered. */
const B = { order: 'B-ORDER-SECRET', strategy: 'b-strategy-secret', exchangeOrder: 'b-eo-secret', amount: '777777', backtest: '' };
/** What A owns, read back by A. */
const A = { order: 'a-order', strategy: 'a-strategy', exchangeOrder: 'a-eo', backtest: '', model: '' };

interface Operation { method: string; path: string; security: boolean }

for (const backend of ['embedded', 'postgres'] as const) describe(`the attack catalogue [${backend}]`, () => {
  let service: Service;
  let drop: (() => Promise<void>) | undefined;
  let base = '';
  let operations: Operation[] = [];
  const tokens = { session: '', read: '', key: '', admin: '', expired: '', revoked: '', refreshed: '', disabledUser: '' };

  const call = async (method: string, path: string, auth: Record<string, string>, body?: object) => {
    const r = await fetch(`${base}${path}`, {
      method, headers: { ...auth, ...(body ? { 'content-type': 'application/json' } : {}) }, body: body ? JSON.stringify(body) : undefined,
    });
    return { status: r.status, text: await r.text() };
  };
  const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
  const login = async (email: string, extra: object = {}) => {
    const r = await fetch(`${base}/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email, password: PASSWORD, ...extra }) });
    assert.equal(r.status, 200);
    return (await r.json()) as { sessionToken: string; refreshToken: string; sessionId: string };
  };

  /** The path with B's resource in each parameter; the test fails for a parameter it has nothing of B's for. */
  const asB = (path: string) => path.replace(/\{(\w+)\}/g, (_, name: string) => {
    if (path.startsWith('/v1/account/orders/')) return B.order;
    if (path.startsWith('/v1/account/exchange-orders/')) return B.exchangeOrder;
    if (path.startsWith('/v1/strategies/')) return B.strategy;
    if (path.startsWith('/v1/backtests/')) return B.backtest;
    if (path.startsWith('/v1/admin/dead-letters/') && name === 'id') return '0:1-0';
    if (path.startsWith('/v1/admin/') && name === 'id') return '1';
    if (path.startsWith('/v1/models/')) return '1';
    if (name === 'name') return 'payload';
    throw new Error(`no resource of user B known for ${path} {${name}}: add one to the attack catalogue`);
  });
  /** A body the route accepts, so that what is tried is the authorization and not the validation. */
  const bodyOf = (op: Operation): object | undefined => {
    const key = `${op.method} ${op.path}`;
    const bodies: Record<string, object> = {
      'POST /v1/strategies': { name: 'attack', symbols: ['TATA_INR'], timeframe: '1h' },
      'PATCH /v1/strategies/{id}': { name: 'taken over' },
      'POST /v1/backtests': { strategyId: B.strategy, name: 'attack', symbols: ['TATA_INR'], startDate: 1735689600000, endDate: 1736121600000, initialCapital: '1000' },
      'PUT /v1/admin/risk/limits': { userId: 'atk-b', limitType: 'max_daily_loss', limitValue: '1' },
      'POST /v1/models': { name: 'attack', modelType: 'lstm', version: '9', symbol: 'TATA_INR', timeframe: '1h', features: ['close'] },
      'POST /v1/auth/2fa/setup': { password: PASSWORD },
      'POST /v1/auth/2fa/enable': { password: PASSWORD, code: '123456' },
      'POST /v1/auth/2fa/disable': { password: PASSWORD, code: '123456' },
    };
    return op.method === 'GET' || op.method === 'DELETE' ? undefined : (bodies[key] ?? {});
  };

  before(async () => {
    const k = randomBytes(32).toString('base64');
    secretUsed(k);
    const ring = JSON.stringify({ current: 'k', keys: { k } });
    // On the server, the API's account reads run under row-level security as well.
    let database: Record<string, string> = { TRADESTORE_DATA_DIR: 'memory://' };
    if (backend === 'postgres') {
      const created = await createServerDatabase();
      drop = created.drop;
      database = { DATABASE_URL: created.url };
    }
    service = await startService(loadConfig({ PORT: '0', ...database, TRADESTORE_MONITOR_INTERVAL_MS: '0', TRADESTORE_KEYRING: ring, TRADESTORE_RATE_LIMIT: '100000', TRADESTORE_AUTH_FAILURE_LIMIT: '1000000' }), { migrate: true, log: serviceLog });
    base = `http://127.0.0.1:${service.port}`;
    await createUser(service.db, { id: 'atk-a', email: 'a@attack.test', password: PASSWORD });
    await createUser(service.db, { id: 'atk-b', email: 'b@attack.test', password: PASSWORD });
    await createUser(service.db, { id: 'atk-gone', email: 'gone@attack.test', password: PASSWORD });
    await service.db.query(`INSERT INTO strategies (id, user_id, name, is_active, symbols) VALUES ($1, 'atk-b', 'b only', true, ARRAY['TATA_INR'])`, [B.strategy]);
    const day = 86_400_000;
    B.backtest = (await service.store.backtests.create({ strategyId: B.strategy, name: 'b-backtest-secret', symbols: ['TATA_INR'], startDate: new Date(Date.UTC(2025, 0, 1)), endDate: new Date(Date.UTC(2025, 0, 1) + 5 * day), initialCapital: '10000' })).id;
    await service.store.risk.setLimit({ userId: 'atk-b', limitType: 'max_orders_per_hour', limitValue: '777777' });
    // A's own resources, to read back (every read of the API works under its role).
    await service.db.query(`INSERT INTO strategies (id, user_id, name, is_active, symbols) VALUES ('a-strategy', 'atk-a', 'a own', true, ARRAY['TATA_INR'])`);
    const start = Date.UTC(2025, 0, 1);
    A.backtest = (await service.store.backtests.create({ strategyId: 'a-strategy', name: 'a backtest', symbols: ['TATA_INR'], startDate: new Date(start), endDate: new Date(start + 5 * day), initialCapital: '10000' })).id;
    await service.store.backtests.start(A.backtest);
    await service.store.backtests.addTrades(A.backtest, [1, 2, 3].map((i) => ({ symbol: 'TATA_INR', side: 'long', quantity: '1', entryPrice: '100', exitPrice: String(100 + i), entryTime: start + i * day, exitTime: start + i * day + 3_600_000 })));
    await service.store.backtests.complete(A.backtest);
    await service.store.risk.setLimit({ userId: 'atk-a', limitType: 'max_orders_per_hour', limitValue: '5' });
    A.model = (await service.store.models.register({ name: 'shared', modelType: 'lstm', version: '1', symbol: 'TATA_INR', timeframe: '1h', features: ['close'] })).id;
    const messages = [
      orderMsg(A.order, 'TATA_INR', 'buy', '131', '2', 'atk-a'),
      { type: 'STRATEGY_TRADE_OPENED', data: { id: 'a-round-trip', strategyId: 'a-strategy', symbol: 'TATA_INR', side: 'buy', entryPrice: '130', quantity: '2', entryTime: Date.now() - 60_000 } },
      { type: 'EXCHANGE_ORDER', data: { event: 'placed', orderId: A.exchangeOrder, userId: 'atk-a', exchange: 'NSE', symbol: 'NIFTY', side: 'buy', orderType: 'limit', quantity: '50', price: '24000', timestamp: Date.now() - 60_000 } },
      depositMsg('atk-b', 'INR', B.amount),
      orderMsg(B.order, 'TATA_INR', 'buy', '131', '2', 'atk-b'),
      { type: 'POSITION_UPDATE', data: { exchange: 'venue', symbol: 'TATA_INR', userId: 'atk-b', side: 'long', quantity: '777777', entryPrice: '131' } },
      { type: 'STRATEGY_TRADE_OPENED', data: { id: 'b-round-trip', strategyId: B.strategy, symbol: 'TATA_INR', side: 'buy', entryPrice: '130', quantity: '2', entryTime: Date.now() - 60_000 } },
      { type: 'EXCHANGE_ORDER', data: { event: 'placed', orderId: B.exchangeOrder, userId: 'atk-b', exchange: 'NSE', symbol: 'NIFTY', side: 'buy', orderType: 'limit', quantity: '50', price: '24000', timestamp: Date.now() - 60_000 } },
    ];
    for (const m of messages) await service.bus.add(JSON.stringify(m));
    for (const deadline = Date.now() + 30_000; ; ) {
      const s = await service.bus.stats();
      if (s.lag === 0 && s.listLength === 0) break;
      if (Date.now() > deadline) throw new Error(`events not applied: ${JSON.stringify(s)}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal((await service.db.query(`SELECT 1 FROM orders WHERE id = $1`, [B.order])).rows.length, 1, "B's order is stored");
    assert.equal((await service.db.query(`SELECT 1 FROM exchange_orders WHERE id = $1 AND user_id = 'atk-b'`, [B.exchangeOrder])).rows.length, 1, "B's exchange order is stored");

    tokens.session = (await login('a@attack.test')).sessionToken;
    tokens.read = (await login('a@attack.test', { scopes: ['read'] })).sessionToken;
    tokens.key = (await service.store.apiKeys.create('atk-a', ['read', 'trade'])).key;
    await createUser(service.db, { id: 'atk-admin', email: 'admin@attack.test', password: PASSWORD });
    tokens.admin = (await service.store.apiKeys.create('atk-admin', ['read', 'admin'])).key;
    const expired = await login('a@attack.test');
    await service.db.query(`UPDATE user_sessions SET expires_at = now() - interval '1 second' WHERE id = $1`, [expired.sessionId]);
    tokens.expired = expired.sessionToken;
    const revoked = await login('a@attack.test');
    assert.equal((await call('POST', '/v1/auth/logout', bearer(revoked.sessionToken))).status, 200);
    tokens.revoked = revoked.sessionToken;
    const refreshed = await login('a@attack.test');
    assert.equal((await call('POST', '/v1/auth/refresh', {}, { refreshToken: refreshed.refreshToken })).status, 200);
    tokens.refreshed = refreshed.sessionToken;
    tokens.disabledUser = (await login('gone@attack.test')).sessionToken;
    await service.db.query(`UPDATE users SET is_active = false WHERE id = 'atk-gone'`);

    const document = (await (await fetch(`${base}/docs/json`)).json()) as { paths: Record<string, Record<string, { security?: unknown[] }>> };
    operations = Object.entries(document.paths).flatMap(([path, ops]) =>
      Object.entries(ops).map(([method, op]) => ({ method: method.toUpperCase(), path, security: Boolean(op.security?.length) })));
    assert.ok(operations.length > 50, `${operations.length} operations`);
  });
  after(async () => {
    await service?.stop();
    await drop?.();
  });

  const isPublic = (op: Operation) => PUBLIC.some((p) => p.test(`${op.method} ${op.path}`));

  it('documents a security requirement on every operation that is not public', () => {
    const open = operations.filter((op) => !op.security && !isPublic(op)).map((op) => `${op.method} ${op.path}`);
    assert.deepEqual(open, []);
  });

  it('answers 401 to every such operation without credentials, and with expired, revoked, superseded, made-up or disabled users\' tokens', async () => {
    const invalid: Record<string, Record<string, string>> = {
      none: {}, expired: bearer(tokens.expired), revoked: bearer(tokens.revoked), superseded: bearer(tokens.refreshed), disabledUser: bearer(tokens.disabledUser),
      madeUpSession: bearer(`tss_${randomBytes(32).toString('base64url')}`), madeUpKey: { 'x-api-key': `ts_${randomBytes(6).toString('hex')}_${randomBytes(24).toString('base64url')}` },
      notAToken: bearer('hello'), emptyKey: { 'x-api-key': '' },
    };
    for (const op of operations.filter((o) => !isPublic(o))) {
      for (const [kind, auth] of Object.entries(invalid)) {
        // The body is left out: credentials are checked before the request is validated.
        const r = await call(op.method, asB(op.path), auth, op.method === 'GET' || op.method === 'DELETE' ? undefined : {});
        assert.equal(r.status, 401, `${op.method} ${op.path} with ${kind}: ${r.status} ${r.text}`);
      }
    }
  });

  it('answers 403 to a read-only session on every write, and on every admin operation', async () => {
    for (const op of operations.filter((o) => !isPublic(o) && !SELF.some((p) => p.test(`${o.method} ${o.path}`)))) {
      const write = op.method !== 'GET';
      if (!write && !op.path.startsWith('/v1/admin/')) continue;
      const r = await call(op.method, asB(op.path), bearer(tokens.read), bodyOf(op));
      assert.equal(r.status, 403, `${op.method} ${op.path}: ${r.status} ${r.text}`);
    }
  });

  it("gives user A 404, or nothing of user B's, on every operation aimed at B's resources, with a session and with an API key", async () => {
    for (const auth of [bearer(tokens.session), { 'x-api-key': tokens.key }]) {
      // Not the caller's own session operations: they are about the caller (and would end its session).
      for (const op of operations.filter((o) => !isPublic(o) && !SHARED.some((p) => p.test(o.path)) && !SELF.some((p) => p.test(`${o.method} ${o.path}`)))) {
        const named = /\{\w+\}/.test(op.path);
        const query = op.method === 'GET' ? `?strategyId=${B.strategy}&userId=atk-b` : '';
        const r = await call(op.method, asB(op.path) + (op.path.includes('dead-letters') ? '' : query), auth, bodyOf(op));
        const where = `${op.method} ${op.path}: ${r.status} ${r.text.slice(0, 300)}`;
        if (op.path.startsWith('/v1/admin/')) {
          assert.equal(r.status, 403, where);
          continue;
        }
        if (named) assert.equal(r.status, 404, where);
        else if (op.path === '/v1/backtests' && op.method === 'POST') {
          // A backtest of B's strategy: refused exactly as one of a strategy that does not exist.
          const none = await call(op.method, op.path, auth, { ...bodyOf(op), strategyId: 'no-such-strategy' });
          assert.deepEqual([r.status, r.text.replace(B.strategy, '?')], [none.status, none.text.replace('no-such-strategy', '?')], where);
          assert.equal(r.status, 400, where);
          continue;
        } else assert.ok(r.status < 500, where);
        // A 404 names what was asked for (the caller's own input), and nothing else.
        if (r.status === 404) assert.match(JSON.parse(r.text).error.code, /^unknown_/, where);
        else for (const marker of [B.order, B.strategy, B.exchangeOrder, B.amount, 'b-backtest-secret', 'atk-b']) assert.equal(r.text.includes(marker), false, `${where} shows ${marker}`);
      }
    }
    // B's data is still as B left it: A's writes changed nothing.
    const { rows } = await service.db.query<{ name: string }>(`SELECT name FROM strategies WHERE id = $1`, [B.strategy]);
    assert.equal(rows[0]!.name, 'b only');
  });

  it('makes its owner\'s changes of their own strategies and backtests (as the account writer on the server)', async () => {
    const send = async (method: string, path: string, body: object) => {
      const r = await fetch(`${base}${path}`, { method, headers: { 'content-type': 'application/json', ...bearer(tokens.session) }, body: JSON.stringify(body) });
      return { status: r.status, body: (await r.json()) as any };
    };
    const made = await send('POST', '/v1/strategies', { name: 'a-written', symbols: ['TATA_INR'], timeframe: '1h', initialCapital: '1000' });
    assert.equal(made.status, 201, JSON.stringify(made.body));
    assert.equal(made.body.userId, 'atk-a');
    const changed = await send('PATCH', `/v1/strategies/${made.body.id}`, { config: { fast: 3 }, initialCapital: '2000', isActive: true });
    assert.equal(changed.status, 200, JSON.stringify(changed.body));
    assert.deepEqual([changed.body.version, changed.body.initialCapital, changed.body.isActive], ['2', '2000', true]);
    const backtest = await send('POST', '/v1/backtests', { strategyId: made.body.id, name: 'a-bt', symbols: ['TATA_INR'], startDate: 1735689600000, endDate: 1736121600000, initialCapital: '1000' });
    assert.equal(backtest.status, 201, JSON.stringify(backtest.body));
    const audit = await service.store.audit.list({ userId: 'atk-a', resourceType: 'strategy', resourceId: made.body.id });
    assert.deepEqual(audit.map((e) => e.action).reverse(), ['strategy.create', 'strategy.update']);
  });

  it('answers every read to its owner, and every admin read to an admin key (each under its role of row-level security on the server)', async () => {
    const asA = (path: string) => path.replace(/\{(\w+)\}/g, (_, name: string) => {
      if (path.startsWith('/v1/account/orders/')) return A.order;
      if (path.startsWith('/v1/account/exchange-orders/')) return A.exchangeOrder;
      if (path.startsWith('/v1/strategies/')) return A.strategy;
      if (path.startsWith('/v1/backtests/')) return A.backtest;
      if (path.startsWith('/v1/models/')) return A.model;
      if (path.startsWith('/v1/markets/')) return 'TATA_INR';
      throw new Error(`nothing of user A known for ${path} {${name}}`);
    });
    // Market data is public (and tried elsewhere); a dead letter's field needs a dead letter.
    const reads = operations.filter((o) => o.method === 'GET' && o.path.startsWith('/v1/') && !o.path.startsWith('/v1/markets') && !o.path.startsWith('/v1/admin/dead-letters/'));
    for (const op of reads) {
      const auth = op.path.startsWith('/v1/admin/') ? { 'x-api-key': tokens.admin } : bearer(tokens.session);
      const r = await call('GET', asA(op.path), auth);
      assert.equal(r.status, 200, `${op.path}: ${r.status} ${r.text.slice(0, 300)}`);
    }
    const own = JSON.parse((await call('GET', `/v1/strategies/${A.strategy}/trades?status=all`, bearer(tokens.session))).text);
    assert.deepEqual(own.items.map((t: { id: string }) => t.id), ['a-round-trip']);
  });
});
