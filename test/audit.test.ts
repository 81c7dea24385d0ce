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
import { storeOver, type Store } from '../src/store/store.ts';
import { apiCaller } from './helpers/api.ts';
import { eachBackend } from './helpers/backends.ts';
import { runCli } from './helpers/cli.ts';

it('redacts every secret-named field at any depth, and nothing else', () => {
  const secretKey = fc.constantFrom('apiKey', 'api_key', 'apiSecret', 'password', 'refreshToken', 'key_hash', 'api_secret_encrypted', 'passphrase', 'privateKey');
  fc.assert(fc.property(fc.string({ minLength: 1 }), secretKey, fc.string({ minLength: 1 }), (marker, key, other) => {
    const value = { a: { [key]: `S3CRET${marker}`, list: [{ [key]: `S3CRET${marker}` }, other] }, keep: other };
    const text = JSON.stringify(redact(value));
    assert.equal(text.includes(`S3CRET${marker}`), false, text);
    assert.deepEqual((redact(value) as { keep: string }).keep, other);
  }));
});

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
      await store.apiKeys.revoke(key.keyId);
      await store.apiKeys.revoke(key.keyId); // already revoked: no change, no row
      // A change that fails leaves no audit row either.
      await assert.rejects(store.risk.setLimit({ userId: 'aud-u', limitType: 'max_daily_loss', limitValue: '1', strategyId: 'no-such-strategy' }));
    });
    const entries = (await store.audit.list({ userId: 'aud-u' })).reverse();
    assert.deepEqual(entries.map((e) => e.action), [
      'credential.add', 'credential.remove', 'risk_limit.set', 'risk_limit.set', 'risk_limit.remove', 'api_key.create', 'api_key.revoke',
    ]);
    for (const e of entries) assert.deepEqual([e.actor, e.ip, e.userAgent, e.userId], ['key:77', '10.1.2.3', 'ops-console/2', 'aud-u']);
    const [, , first, second] = entries;
    assert.deepEqual([first!.oldValues, (first!.newValues as { limitValue: string }).limitValue], [null, '100']);
    assert.deepEqual([(second!.oldValues as { limitValue: string }).limitValue, (second!.newValues as { limitValue: string }).limitValue], ['100', '250']);
    const text = JSON.stringify(await store.audit.list({ limit: 1000 }));
    assert.equal(/AUDIT-KEY|AUDIT-SECRET|ts_[0-9a-f]{12}_/.test(text), false, 'no secret in the trail');
    // Without a context, the library is the actor.
    await store.risk.setLimit({ userId: 'aud-u', limitType: 'max_orders_per_hour', limitValue: '5' });
    assert.equal((await store.audit.list({ action: 'risk_limit.set', limit: 1 }))[0]!.actor, 'library');
  });
});

describe('the audit trail through the API and the CLI', () => {
  let service: Service;
  const keys = { admin: '', reader: '' };
  let adminKeyId = '';
  before(async () => {
    service = await startService(loadConfig({ PORT: '0', TRADESTORE_DATA_DIR: 'memory://', TRADESTORE_MONITOR_INTERVAL_MS: '0' }), { migrate: true, log: () => {} });
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
