import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { MemoryBus } from '../src/bus/memory.ts';
import { loadConfig } from '../src/config.ts';
import { migrate } from '../src/schema/migrator.ts';
import { seed } from '../src/schema/seed.ts';
import { keyring } from '../src/security/keyring.ts';
import { redact, runAs } from '../src/security/audit.ts';
import { startService, type Service } from '../src/service/service.ts';
import { createUser } from '../src/users/users.ts';
import { storeOver, type Store } from '../src/store/store.ts';
import { apiCaller } from './helpers/api.ts';
import { eachBackend } from './helpers/backends.ts';
import { runCli } from './helpers/cli.ts';
import { secretUsed, serviceLog } from './helpers/exposure.ts';

it('redacts every secret-named field at any depth, and nothing else', () => {
  const secretKey = fc.constantFrom(
    'apiKey', 'api_key', 'x-api-key', 'API-KEY', 'apiSecret', 'password', 'refreshToken', 'key_hash', 'api_secret_encrypted', 'passphrase', 'privateKey',
    'accessKey', 'access_key', 'authorization', 'Cookie', 'pin', 'totp', 'mnemonic', 'signature', 'credentials', 'api_key_v2',
  );
  const plainKey = fc.constantFrom('maxTokens', 'tokenSymbol', 'isPrivate', 'apikeyId', 'exchange', 'testnet', 'baseUrl', 'keyId', 'limitValue', 'name');
  fc.assert(fc.property(fc.string({ minLength: 1 }), secretKey, plainKey, fc.string({ minLength: 1 }), (marker, key, plain, other) => {
    const value = { a: { [key]: `S3CRET${marker}`, list: [{ [key]: `S3CRET${marker}` }, other] }, [plain]: other };
    const text = JSON.stringify(redact(value));
    assert.equal(text.includes(`S3CRET${marker}`), false, text);
    assert.deepEqual((redact(value) as Record<string, string>)[plain], other, `${plain} kept`);
  }));
});

secretUsed('AUDIT-KEY', 'AUDIT-SECRET', 'STRATEGY-SECRET', 'Correct-Horse-9', 'cli-audit-key', 'cli-audit-secret');

eachBackend('the audit trail', (get) => {
  let store: Store;
  before(async () => {
    const { db } = get();
    await migrate(db);
    await seed(db);
    await db.query(`INSERT INTO users (id, email) VALUES ('aud-u', 'a@example.com')`);
    store = storeOver(db, new MemoryBus(), undefined, keyring('k', new Map([['k', randomBytes(32)]])));
  });

  it('records each change with who, the user it is about, old and new values, in the same transaction as the change', async () => {
    const actor = { who: 'key:77', userId: 'root', ip: '10.1.2.3', userAgent: 'ops-console/2' };
    await runAs(actor, async () => {
      const c = await store.credentials.add({ userId: 'aud-u', exchange: 'binance', apiKey: 'AUDIT-KEY', apiSecret: 'AUDIT-SECRET', config: { testnet: true } });
      await store.credentials.remove(c.id);
      const limit = await store.risk.setLimit({ userId: 'aud-u', limitType: 'max_daily_loss', limitValue: '100' });
      await store.risk.setLimit({ userId: 'aud-u', limitType: 'max_daily_loss', limitValue: '250' });
      await store.risk.removeLimit(limit.id);
      const key = await store.apiKeys.create('aud-u', ['read']);
      // Two revokes at once: one changes the key and is audited, the other finds it revoked.
      const both = await Promise.all([store.apiKeys.revoke(key.keyId), store.apiKeys.revoke(key.keyId)]);
      assert.deepEqual(both.map((b) => b.already).sort(), [false, true]);
      assert.equal(both[0]!.revokedAt.getTime(), both[1]!.revokedAt.getTime());
      // A change that fails leaves no audit row either.
      await assert.rejects(store.risk.setLimit({ userId: 'aud-u', limitType: 'max_daily_loss', limitValue: '1', strategyId: 'no-such-strategy' }));
    });
    const entries = (await store.audit.list({ userId: 'aud-u' })).reverse();
    assert.deepEqual(entries.map((e) => e.action), [
      'credential.add', 'credential.remove', 'risk_limit.set', 'risk_limit.set', 'risk_limit.remove', 'api_key.create', 'api_key.revoke',
    ]);
    // A credential's config goes in with its secret-named fields redacted.
    assert.deepEqual(entries[0]!.newValues, { exchange: 'binance', keyId: 'k', config: { testnet: true } });
    for (const e of entries) assert.deepEqual([e.actor, e.ip, e.userAgent, e.userId], ['key:77', '10.1.2.3', 'ops-console/2', 'aud-u']);
    const [, , first, second] = entries;
    assert.deepEqual([first!.oldValues, (first!.newValues as { limitValue: string }).limitValue], [null, '100']);
    assert.deepEqual([(second!.oldValues as { limitValue: string }).limitValue, (second!.newValues as { limitValue: string }).limitValue], ['100', '250']);
    const text = JSON.stringify(await store.audit.list({ limit: 1000 }));
    assert.equal(/AUDIT-KEY|AUDIT-SECRET|ts_[0-9a-f]{12}_/.test(text), false, 'no secret in the trail');
    // Without a context, the library is the actor.
    await store.risk.setLimit({ userId: 'aud-u', limitType: 'max_orders_per_hour', limitValue: '5' });
    assert.equal((await store.audit.list({ action: 'risk_limit.set', limit: 1 }))[0]!.actor, 'library');
    // Paging back: `until` the oldest entry's time gives the ones before it.
    const newest = await store.audit.list({ userId: 'aud-u', limit: 3 });
    const older = await store.audit.list({ userId: 'aud-u', until: new Date(newest.at(-1)!.at), limit: 1000 });
    assert.ok(older.every((e) => e.at < newest.at(-1)!.at) && older.length > 0);
  });

  it('records users created (never their password) and risk events acknowledged and resolved', async () => {
    const { db } = get();
    const { rows: [event] } = await db.query<{ id: string }>(`INSERT INTO risk_events (user_id, event_type, severity, description) VALUES ('aud-u', 'limit_breach', 'critical', 'x') RETURNING id::text`);
    await runAs({ who: 'cli:ops' }, async () => {
      await createUser(db, { id: 'aud-new', email: 'new@example.com', password: 'Correct-Horse-9' });
      await store.risk.acknowledge(event!.id, 'desk');
      await store.risk.resolve(event!.id, 'desk');
      await assert.rejects(store.risk.resolve(event!.id, 'desk'), /resolved already/);
    });
    const created = await store.audit.list({ action: 'user.create', userId: 'aud-new' });
    assert.deepEqual(created.map((e) => [e.actor, e.newValues]), [['cli:ops', { email: 'new@example.com', firstName: null, lastName: null, scopes: ['read', 'trade'], passwordSet: true }]]);
    assert.equal(JSON.stringify(await store.audit.list({ limit: 1000 })).includes('Correct-Horse-9'), false);
    const marks = await store.audit.list({ resourceType: 'risk_event', resourceId: event!.id });
    assert.deepEqual(marks.map((e) => [e.action, e.userId, e.newValues]).reverse(), [['risk_event.acknowledge', 'aud-u', { by: 'desk' }], ['risk_event.resolve', 'aud-u', { by: 'desk' }]]);
  });

  it('records strategies created, changed (a new version) and turned on, backtests created, models registered and activated, and the seed', async () => {
    const start = Date.UTC(2025, 0, 1);
    const made = await runAs({ who: 'cli:ops' }, async () => {
      const strategy = await store.strategies.create({ name: 'aud-strategy', symbols: ['TATA_INR'], timeframe: '1h', userId: 'aud-u', config: { fast: 5, apiSecret: 'STRATEGY-SECRET' } });
      await store.strategies.update(strategy.id, { config: { fast: 8 } }, 'aud-u');
      await store.strategies.setActive(strategy.id, true);
      const backtest = await store.backtests.create({ strategyId: strategy.id, name: 'aud-bt', symbols: ['TATA_INR'], startDate: new Date(start), endDate: new Date(start + 86_400_000), initialCapital: '1000' });
      const model = await store.models.register({ name: 'aud-model', modelType: 'lstm', version: '1', symbol: 'TATA_INR', timeframe: '1h', features: ['close'] });
      await store.models.activate(model.id);
      return { strategy: strategy.id, backtest: backtest.id, model: model.id };
    });
    const strategy = (await store.audit.list({ resourceType: 'strategy', resourceId: made.strategy })).reverse();
    assert.deepEqual(strategy.map((e) => [e.action, e.actor, e.userId]), [['strategy.create', 'cli:ops', 'aud-u'], ['strategy.update', 'cli:ops', 'aud-u'], ['strategy.enable', 'cli:ops', 'aud-u']]);
    const [, update, enable] = strategy as [unknown, { oldValues: any; newValues: any }, { oldValues: any; newValues: any }];
    assert.deepEqual([update.oldValues.version, update.oldValues.config.fast, update.newValues.version, update.newValues.config.fast], [1, 5, 2, 8]);
    assert.deepEqual([enable.oldValues, enable.newValues], [{ isActive: false }, { isActive: true }]);
    assert.equal(JSON.stringify(strategy).includes('STRATEGY-SECRET'), false, 'a secret-named config field is redacted');
    assert.deepEqual((await store.audit.list({ resourceType: 'backtest', resourceId: made.backtest })).map((e) => [e.action, e.userId]), [['backtest.create', 'aud-u']]);
    assert.deepEqual((await store.audit.list({ resourceType: 'model', resourceId: made.model })).map((e) => e.action).reverse(), ['model.register', 'model.activate']);
    const [seeded] = await store.audit.list({ action: 'configuration.seed' });
    assert.ok(seeded && (seeded.newValues as { systemConfig: number }).systemConfig > 0);
  });

  it('writes the audit row in the change\'s own transaction: when the row cannot be written, the change is not made', async () => {
    const { db } = get();
    // A trigger that refuses one action's audit rows stands in for an audit write that fails.
    await db.exec(`CREATE FUNCTION refuse_audit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'audit refused'; END $$;
                   CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_log FOR EACH ROW WHEN (NEW.action IN ('credential.add', 'api_key.create', 'risk_limit.set')) EXECUTE FUNCTION refuse_audit();`);
    try {
      const counts = async () => (await db.query<{ c: number; k: number; r: number }>(
        `SELECT (SELECT count(*)::int FROM exchange_connections) AS c, (SELECT count(*)::int FROM api_keys) AS k, (SELECT count(*)::int FROM risk_limits) AS r`,
      )).rows[0];
      const before = await counts();
      await assert.rejects(store.credentials.add({ userId: 'aud-u', exchange: 'binance', apiKey: 'a', apiSecret: 'b' }), /audit refused/);
      await assert.rejects(store.apiKeys.create('aud-u', ['read']), /audit refused/);
      await assert.rejects(store.risk.setLimit({ userId: 'aud-u', limitType: 'max_position_value', limitValue: '5' }), /audit refused/);
      assert.deepEqual(await counts(), before);
    } finally {
      await db.exec(`DROP TRIGGER refuse_audit ON audit_log; DROP FUNCTION refuse_audit()`);
    }
  });

  it('records each credential a rotation re-seals, with the key it moved from and to', async () => {
    const [k1, k2] = [randomBytes(32), randomBytes(32)];
    const old = storeOver(get().db, new MemoryBus(), undefined, keyring('r1', new Map([['r1', k1]])));
    const c = await old.credentials.add({ userId: 'aud-u', exchange: 'kite', apiKey: 'x', apiSecret: 'y' });
    const next = storeOver(get().db, new MemoryBus(), undefined, keyring('r2', new Map([['r1', k1], ['r2', k2]])));
    await runAs({ who: 'cli:ops' }, () => next.credentials.rotate());
    const [rotated] = await next.audit.list({ action: 'credential.rotate', resourceId: c.id });
    assert.deepEqual([rotated!.actor, rotated!.userId, rotated!.oldValues, rotated!.newValues], ['cli:ops', 'aud-u', { keyId: 'r1' }, { keyId: 'r2' }]);
  });
});

describe('the audit trail through the API and the CLI', () => {
  let service: Service;
  const keys = { admin: '', reader: '' };
  let adminKeyId = '';
  before(async () => {
    service = await startService(loadConfig({ PORT: '0', TRADESTORE_DATA_DIR: 'memory://', TRADESTORE_MONITOR_INTERVAL_MS: '0' }), { migrate: true, log: serviceLog });
    await service.db.query(`INSERT INTO users (id, email) VALUES ('aud-api', 'x@example.com'), ('root', 'r@example.com')`);
    const admin = await service.store.apiKeys.create('root', ['read', 'admin']);
    [keys.admin, adminKeyId] = [admin.key, admin.keyId];
    keys.reader = (await service.store.apiKeys.create('aud-api', ['read'])).key;
  });
  after(async () => service?.stop());
  const call = apiCaller(() => service.port);

  it('attributes an API change to its key and client, and serves the trail to admin keys only', async () => {
    const set = await fetch(`http://127.0.0.1:${service.port}/v1/admin/risk/limits`, {
      method: 'PUT', headers: { 'x-api-key': keys.admin, 'content-type': 'application/json', 'user-agent': 'audit-test/1' },
      body: JSON.stringify({ userId: 'aud-api', limitType: 'max_daily_loss', limitValue: '300' }),
    });
    assert.equal(set.status, 200);
    const listed = await call('GET', '/v1/admin/audit?userId=aud-api&action=risk_limit.set', keys.admin);
    assert.equal(listed.status, 200, JSON.stringify(listed.body));
    assert.deepEqual(listed.body.entries.map((e: any) => [e.actor, e.ip, e.userId, e.newValues.limitValue]), [[`key:${adminKeyId}`, '127.0.0.1', 'aud-api', '300']]);
    assert.equal((await call('GET', '/v1/admin/audit', keys.reader)).status, 403);
    assert.equal((await call('GET', '/v1/admin/audit?limit=0', keys.admin)).status, 400);
  });
});

eachBackend('tradestore audit', (get) => {
  before(async () => {
    await migrate(get().db);
    await seed(get().db);
  });
  it('attributes a CLI change to the operating-system user and lists the trail with filters', async () => {
    const k = randomBytes(32).toString('base64');
    secretUsed(k);
    const env = { ...get().env, TRADESTORE_KEYRING: JSON.stringify({ current: 'k', keys: { k } }) };
    assert.equal((await runCli(['credentials', 'add', '--exchange', 'zerodha'], env, 'cli-audit-key\ncli-audit-secret\n')).code, 0);
    const listed = await runCli(['audit', '--resource', 'credential', '--json'], env);
    assert.equal(listed.code, 0, listed.stderr);
    const [entry] = JSON.parse(listed.stdout);
    assert.equal(entry.action, 'credential.add');
    assert.match(entry.actor, /^cli:.+/);
    assert.equal(/cli-audit-(key|secret)/.test(listed.stdout), false);
    assert.equal((await runCli(['audit', '--since', 'yesterday-ish'], env)).code, 2);
  });
}, { only: ['postgres'] });
