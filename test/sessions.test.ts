import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import pg from 'pg';
import { MemoryBus } from '../src/bus/memory.ts';
import { loadConfig } from '../src/config.ts';
import { migrate } from '../src/schema/migrator.ts';
import { keyring } from '../src/security/keyring.ts';
import { AuthFailure } from '../src/security/authFailure.ts';
import { SessionRepository, type Client } from '../src/security/sessions.ts';
import { TwoFactor, totpCode } from '../src/security/twoFactor.ts';
import { startService, type Service } from '../src/service/service.ts';
import { storeOver } from '../src/store/store.ts';
import { createUser, verifyPassword } from '../src/users/users.ts';
import { eachBackend } from './helpers/backends.ts';
import { runCli } from './helpers/cli.ts';
import { REDIS_URL, redisBus, testNames } from './helpers/redis.ts';
import { secretUsed, serviceLog } from './helpers/exposure.ts';

const sha = (t: string) => createHash('sha256').update(t).digest('hex');
const PASSWORD = 'Correct-Horse-Battery-9';
secretUsed(PASSWORD, 'wrong-password', 'Another-Horse-Battery-7', 'Long-Enough-1');
const client = (address: string): Client => ({ address, ip: address, userAgent: 'sessions-test/1' });

describe('sessions through the API', () => {
  let service: Service;
  let base = '';
  const post = async (path: string, body: object, token?: string) => {
    const r = await fetch(`${base}${path}`, {
      method: 'POST', headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) }, body: JSON.stringify(body),
    });
    return { status: r.status, body: (await r.json()) as any, headers: r.headers };
  };
  const get = async (path: string, token: string) => {
    const r = await fetch(`${base}${path}`, { headers: { authorization: `Bearer ${token}` } });
    return { status: r.status, body: (await r.json()) as any };
  };
  const login = (email: string, password = PASSWORD, extra: object = {}) => post('/v1/auth/login', { email, password, ...extra });

  before(async () => {
    const k1 = randomBytes(32).toString('base64');
    secretUsed(k1);
    const ring = JSON.stringify({ current: 'k1', keys: { k1 } });
    service = await startService(loadConfig({
      PORT: '0', TRADESTORE_DATA_DIR: 'memory://', TRADESTORE_MONITOR_INTERVAL_MS: '0', TRADESTORE_KEYRING: ring, TRADESTORE_LOGIN_FAILURE_LIMIT: '3',
    }), { migrate: true, log: serviceLog });
    base = `http://127.0.0.1:${service.port}`;
    await createUser(service.db, { id: 'ses-a', email: 'a@sessions.test', password: PASSWORD });
    await createUser(service.db, { id: 'ses-tf', email: 'tf@sessions.test', password: PASSWORD });
    await createUser(service.db, { id: 'ses-lock', email: 'lock@sessions.test', password: PASSWORD });
    await createUser(service.db, { id: 'ses-off', email: 'off@sessions.test', password: PASSWORD });
    await createUser(service.db, { id: 'ses-nopw', email: 'nopw@sessions.test' });
    await service.db.query(`UPDATE users SET is_active = false WHERE id = 'ses-off'`);
  });
  after(async () => service?.stop());

  it('logs in with a password: a session token that works wherever an API key does, stored only as a digest, with last_login kept', async () => {
    const r = await login('a@sessions.test');
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const t = r.body;
    assert.match(t.sessionToken, /^tss_/);
    assert.match(t.refreshToken, /^tsr_/);
    assert.deepEqual(t.scopes, ['read', 'trade']);
    assert.ok(Date.parse(t.expiresAt) - Date.now() <= 15 * 60_000 && Date.parse(t.refreshExpiresAt) > Date.parse(t.expiresAt));
    assert.equal((await get('/v1/account/balances', t.sessionToken)).status, 200);
    // A trade route with a read-and-trade session: past authorization (a body error, not 401/403).
    assert.equal((await post('/v1/strategies', {}, t.sessionToken)).status, 400);
    const { rows } = await service.db.query<{ token_hash: string; refresh_hash: string; last_login: Date | null; ip: string }>(
      `SELECT s.token_hash, s.refresh_hash, u.last_login, host(s.ip_address) AS ip FROM user_sessions s JOIN users u ON u.id = s.user_id WHERE s.id = $1`, [t.sessionId]);
    assert.deepEqual([rows[0]!.token_hash, rows[0]!.refresh_hash, rows[0]!.ip], [sha(t.sessionToken), sha(t.refreshToken), '127.0.0.1']);
    assert.ok(rows[0]!.last_login && Date.now() - rows[0]!.last_login.getTime() < 60_000);
    const dump = JSON.stringify((await service.db.query(`SELECT * FROM user_sessions`)).rows);
    assert.equal(dump.includes(t.sessionToken) || dump.includes(t.refreshToken), false, 'no token stored as itself');
    const listed = await get('/v1/auth/sessions', t.sessionToken);
    assert.deepEqual(listed.body.sessions.map((s: any) => s.id), [t.sessionId]);
    assert.equal(JSON.stringify(listed.body).includes(t.sessionToken), false);
  });

  it('logs in and refreshes whatever stale bearer the client still sends', async () => {
    const old = (await login('a@sessions.test')).body;
    await service.db.query(`UPDATE user_sessions SET expires_at = now() - interval '1 second' WHERE id = $1`, [old.sessionId]);
    const body = JSON.stringify({ email: 'a@sessions.test', password: PASSWORD });
    const r = await fetch(`${base}/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${old.sessionToken}` }, body });
    assert.equal(r.status, 200);
    const again = await post('/v1/auth/refresh', { refreshToken: old.refreshToken }, old.sessionToken);
    assert.equal(again.status, 200, JSON.stringify(again.body));
  });

  it('answers every failed login the same way, whether the user exists, has no password or is disabled', async () => {
    const answers = await Promise.all([
      login('a@sessions.test', 'wrong-password'), login('nobody@sessions.test'), login('nopw@sessions.test'), login('off@sessions.test'),
    ]);
    for (const a of answers) assert.deepEqual([a.status, a.body], [401, answers[0]!.body]);
    assert.equal(answers[0]!.body.error.code, 'invalid_credentials');
  });

  it('gives a read session 403 on a write route, and refuses scopes beyond the user\'s', async () => {
    const read = await login('a@sessions.test', PASSWORD, { scopes: ['read'] });
    assert.deepEqual(read.body.scopes, ['read']);
    const write = await post('/v1/strategies', { name: 'x', symbols: ['BTCUSDT'], timeframe: '1h' }, read.body.sessionToken);
    assert.deepEqual([write.status, write.body.error.code], [403, 'scope_required']);
    assert.equal((await get('/v1/account/balances', read.body.sessionToken)).status, 200);
    const admin = await login('a@sessions.test', PASSWORD, { scopes: ['admin'] });
    assert.deepEqual([admin.status, admin.body.error.code], [403, 'scope_not_allowed']);
    // A scope taken from the user is taken from their live sessions at once.
    const full = (await login('a@sessions.test')).body.sessionToken;
    await service.db.query(`UPDATE users SET scopes = '{read}' WHERE id = 'ses-a'`);
    try {
      assert.equal((await post('/v1/strategies', { name: 'x', symbols: ['BTCUSDT'], timeframe: '1h' }, full)).status, 403);
      assert.equal((await get('/v1/account/balances', full)).status, 200);
    } finally {
      await service.db.query(`UPDATE users SET scopes = '{read,trade}' WHERE id = 'ses-a'`);
    }
  });

  it('rotates refresh tokens; a refresh token used twice revokes the whole login; expired and revoked tokens fail', async () => {
    const first = (await login('a@sessions.test')).body;
    const second = await post('/v1/auth/refresh', { refreshToken: first.refreshToken });
    assert.equal(second.status, 200, JSON.stringify(second.body));
    assert.notEqual(second.body.refreshToken, first.refreshToken);
    assert.equal(second.body.refreshExpiresAt, first.refreshExpiresAt, 'a refresh does not lengthen the login');
    assert.equal((await get('/v1/account/balances', first.sessionToken)).status, 401, 'the superseded session token stops working');
    assert.equal((await get('/v1/account/balances', second.body.sessionToken)).status, 200);
    // The first refresh token again: someone holds a copy. The whole family ends.
    const replay = await post('/v1/auth/refresh', { refreshToken: first.refreshToken });
    assert.deepEqual([replay.status, replay.body.error.code], [401, 'refresh_token_reused']);
    const dead = await get('/v1/account/balances', second.body.sessionToken);
    assert.deepEqual([dead.status, dead.body.error.code], [401, 'invalid_session']);
    assert.equal((await post('/v1/auth/refresh', { refreshToken: second.body.refreshToken })).status, 401);
    // Expired: a session token past expires_at, a refresh token past refresh_expires_at.
    const third = (await login('a@sessions.test')).body;
    await service.db.query(`UPDATE user_sessions SET expires_at = now() - interval '1 second' WHERE id = $1`, [third.sessionId]);
    assert.equal((await get('/v1/account/balances', third.sessionToken)).status, 401);
    await service.db.query(`UPDATE user_sessions SET refresh_expires_at = now() - interval '1 second' WHERE id = $1`, [third.sessionId]);
    assert.equal((await post('/v1/auth/refresh', { refreshToken: third.refreshToken })).status, 401);
    // Malformed and made-up tokens.
    for (const bad of ['tss_', `tss_${'A'.repeat(43)}`, 'tss_../../etc', `tsr_${'B'.repeat(43)}`]) {
      assert.equal((await get('/v1/account/balances', bad)).status, 401);
      assert.equal((await post('/v1/auth/refresh', { refreshToken: bad })).status, 401);
    }
    const audit = await service.store.audit.list({ userId: 'ses-a', resourceType: 'session', limit: 100 });
    for (const action of ['session.login', 'session.refresh', 'session.refresh_reused']) assert.ok(audit.some((e) => e.action === action), action);
    assert.equal(JSON.stringify(audit).includes(first.refreshToken), false);
  });

  it('logs out one login, or everywhere; API keys are not sessions and stay', async () => {
    const [one, two] = [(await login('a@sessions.test')).body, (await login('a@sessions.test')).body];
    const key = await service.store.apiKeys.create('ses-a', ['read']);
    assert.deepEqual((await post('/v1/auth/logout', {}, one.sessionToken)).body, { revoked: 1 });
    assert.equal((await get('/v1/account/balances', one.sessionToken)).status, 401);
    assert.equal((await post('/v1/auth/refresh', { refreshToken: one.refreshToken })).status, 401);
    assert.equal((await get('/v1/account/balances', two.sessionToken)).status, 200);
    const everywhere = await fetch(`${base}/v1/auth/logout-all`, { method: 'POST', headers: { 'x-api-key': key.key } });
    assert.equal(everywhere.status, 200);
    assert.ok(((await everywhere.json()) as any).revoked >= 1);
    assert.equal((await get('/v1/account/balances', two.sessionToken)).status, 401);
    assert.equal((await fetch(`${base}/v1/account/balances`, { headers: { 'x-api-key': key.key } })).status, 200);
    // Logout needs a session: an API key is not one.
    assert.equal((await fetch(`${base}/v1/auth/logout`, { method: 'POST', headers: { 'x-api-key': key.key } })).status, 403);
    assert.equal((await post('/v1/auth/logout', {})).status, 401);
  });

  it('turns two-factor authentication on with TOTP: a code is needed, never accepted twice, and recovery codes work once', async () => {
    const session = (await login('tf@sessions.test')).body.sessionToken;
    assert.equal((await post('/v1/auth/2fa/setup', { password: 'wrong' }, session)).status, 401);
    const setup = await post('/v1/auth/2fa/setup', { password: PASSWORD }, session);
    assert.equal(setup.status, 200, JSON.stringify(setup.body));
    assert.match(setup.body.uri, /^otpauth:\/\/totp\/tradestore:tf%40sessions\.test\?/);
    const secret: string = setup.body.secret;
    secretUsed(secret);
    const { rows: [raw] } = await service.db.query<{ totp_secret: Uint8Array }>(`SELECT totp_secret FROM users WHERE id = 'ses-tf'`);
    assert.equal(Buffer.from(raw!.totp_secret).toString('latin1').includes(secret), false);
    assert.equal((await post('/v1/auth/2fa/enable', { password: PASSWORD, code: '000000' }, session)).status, 401);
    const enabled = await post('/v1/auth/2fa/enable', { password: PASSWORD, code: totpCode(secret) }, session);
    assert.equal(enabled.status, 200, JSON.stringify(enabled.body));
    const recovery: string[] = enabled.body.recoveryCodes;
    secretUsed(...recovery);
    assert.equal(recovery.length, 10);
    assert.equal((await login('tf@sessions.test')).status, 401, 'no code');
    // The current step was spent by enable: the next one (accepted one step ahead) logs in, once.
    const next = totpCode(secret, Date.now() + 30_000);
    assert.equal((await login('tf@sessions.test', PASSWORD, { code: next })).status, 200);
    assert.equal((await login('tf@sessions.test', PASSWORD, { code: next })).status, 401, 'a code is never taken twice');
    assert.equal((await login('tf@sessions.test', PASSWORD, { recoveryCode: recovery[0]!.toLowerCase() })).status, 200);
    assert.equal((await login('tf@sessions.test', PASSWORD, { recoveryCode: recovery[0] })).status, 401, 'a recovery code works once');
    const { rows: codes } = await service.db.query<{ code_hash: string }>(`SELECT code_hash FROM user_recovery_codes WHERE user_id = 'ses-tf'`);
    assert.equal(JSON.stringify(codes).includes(recovery[1]!), false);
    const s2 = (await login('tf@sessions.test', PASSWORD, { recoveryCode: recovery[1] })).body.sessionToken;
    assert.equal((await post('/v1/auth/2fa/disable', { password: PASSWORD, recoveryCode: recovery[2] }, s2)).status, 200);
    assert.equal((await login('tf@sessions.test')).status, 200, 'off again: the password alone');
    const actions = (await service.store.audit.list({ userId: 'ses-tf', limit: 100 })).map((e) => e.action);
    for (const a of ['two_factor.setup', 'two_factor.enable', 'two_factor.recovery_code_used', 'two_factor.disable']) assert.ok(actions.includes(a), a);
  });

  it('locks a pair of account and address after the limit, with Retry-After, for unknown accounts the same way', async () => {
    // The earlier tests' failures from this address (127.0.0.1) are forgotten: this one counts its own.
    await service.db.query(`DELETE FROM login_failures`);
    for (const email of ['lock@sessions.test', 'ghost@sessions.test']) {
      for (let i = 0; i < 3; i++) assert.equal((await login(email, 'wrong')).status, 401);
      const locked = await login(email, 'wrong');
      assert.deepEqual([locked.status, locked.body.error.code], [429, 'login_locked']);
      assert.ok(Number(locked.headers.get('retry-after')) > 0);
    }
    // Even the right password waits for the lock to end.
    assert.equal((await login('lock@sessions.test')).status, 429);
  });
});

eachBackend('logins, their limits and their sessions', (get) => {
  let sessions: SessionRepository;
  let checked: string[];
  const settings = { ttlMs: 60_000, refreshTtlMs: 3_600_000, login: { failures: 3, lockMs: 1500 } };
  before(async () => {
    await migrate(get().db);
    await createUser(get().db, { id: 'lim-u', email: 'u@limits.test', password: PASSWORD });
    checked = [];
    const counting = { verify: (hash: string, password: string) => (checked.push(hash), verifyPassword(hash, password)) };
    sessions = new SessionRepository(get().db, settings, new TwoFactor(get().db, null), null, counting);
  });

  it('checks a password the same way whether the account exists or not', async () => {
    checked.length = 0;
    await assert.rejects(sessions.login({ email: 'u@limits.test', password: 'wrong-1' }, client('10.9.0.1')), { code: 'invalid_credentials' });
    await assert.rejects(sessions.login({ email: 'missing@limits.test', password: 'wrong-1' }, client('10.9.0.1')), { code: 'invalid_credentials' });
    assert.equal(checked.length, 2);
    // Both are argon2id hashes with the same parameters: the same work.
    const params = checked.map((h) => h.split('$').slice(1, 4).join('$'));
    assert.equal(params[0], params[1]);
    assert.match(params[0]!, /^argon2id\$v=19\$(?=.*m=\d+)(?=.*t=\d+)(?=.*p=\d+)/);
  });

  it('counts concurrent attempts before checking: past the limit, none reaches the password', async () => {
    checked.length = 0;
    const tries = await Promise.allSettled(Array.from({ length: 12 }, () => sessions.login({ email: 'u@limits.test', password: 'wrong-2' }, client('10.9.0.2'))));
    const codes = tries.map((t) => (t.status === 'rejected' ? (t.reason as { code: string }).code : 'ok'));
    assert.equal(codes.filter((c) => c === 'invalid_credentials').length, 3);
    assert.equal(codes.filter((c) => c === 'login_locked').length, 9);
    assert.equal(checked.length, 3);
    // Another address is not locked out of the account by it.
    assert.ok(await sessions.login({ email: 'u@limits.test', password: PASSWORD }, client('10.9.0.3')));
    // The lock ends by itself.
    await new Promise((resolve) => setTimeout(resolve, settings.login.lockMs + 200));
    assert.ok(await sessions.login({ email: 'u@limits.test', password: PASSWORD }, client('10.9.0.2')));
  });

  it('locks the account from many addresses, but not from an address the user logged in from before', async () => {
    await createUser(get().db, { id: 'lim-v', email: 'v@limits.test', password: PASSWORD });
    const slow = new SessionRepository(get().db, { ...settings, login: { failures: 3, lockMs: 60_000 } }, new TwoFactor(get().db, null));
    assert.ok(await slow.login({ email: 'v@limits.test', password: PASSWORD }, client('10.6.0.1')));
    // An attacker spreads 61 wrong passwords over as many addresses: past 20 × 3, the account is locked.
    for (let i = 0; i < 61; i++) {
      await slow.login({ email: 'v@limits.test', password: 'wrong-3' }, client(`10.8.${i}.1`)).catch(() => undefined);
    }
    await assert.rejects(slow.login({ email: 'v@limits.test', password: PASSWORD }, client('10.7.0.1')), { code: 'login_locked' });
    // Not for the user at an address they logged in from: the attacker cannot keep them out.
    assert.ok(await slow.login({ email: 'v@limits.test', password: PASSWORD }, client('10.6.0.1')));
  });

  it('writes last_accessed at most once a minute per session', async () => {
    const t = await sessions.login({ email: 'u@limits.test', password: PASSWORD }, client('10.9.0.5'));
    const at = async () => (await get().db.query<{ t: Date }>(`SELECT last_accessed AS t FROM user_sessions WHERE id = $1`, [t.sessionId])).rows[0]!.t.getTime();
    const first = await at();
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.ok(await sessions.verify(t.sessionToken));
    assert.equal(await at(), first, 'not written again within the minute');
    await get().db.query(`UPDATE user_sessions SET last_accessed = now() - interval '2 minutes' WHERE id = $1`, [t.sessionId]);
    assert.ok(await sessions.verify(t.sessionToken));
    assert.ok(Date.now() - (await at()) < 10_000, 'written once a minute has passed');
  });

  it('counts a wrong second-factor code as a failed login', async () => {
    const wrong = () => sessions.limitedCheck('lim-u', client('10.9.0.6'), async () => {
      throw new AuthFailure(401, 'invalid_two_factor_code', 'wrong');
    });
    for (let i = 0; i < 3; i++) await assert.rejects(wrong(), { code: 'invalid_two_factor_code' });
    await assert.rejects(wrong(), { code: 'login_locked' });
    await assert.rejects(sessions.login({ email: 'u@limits.test', password: PASSWORD }, client('10.9.0.6')), { code: 'login_locked' });
  });

  it('knows an IPv6 user by their /64, so an attacker cannot lock them out when their address changes', async () => {
    await createUser(get().db, { id: 'lim-w', email: 'w@limits.test', password: PASSWORD });
    const slow = new SessionRepository(get().db, { ...settings, login: { failures: 3, lockMs: 60_000 } }, new TwoFactor(get().db, null));
    assert.ok(await slow.login({ email: 'w@limits.test', password: PASSWORD }, { address: '2001:db8:1:2::/64', ip: '2001:db8:1:2::10', userAgent: null }));
    for (let i = 0; i < 61; i++) await slow.login({ email: 'w@limits.test', password: 'wrong-4' }, client(`10.5.${i}.1`)).catch(() => undefined);
    await assert.rejects(slow.login({ email: 'w@limits.test', password: PASSWORD }, client('10.4.0.1')), { code: 'login_locked' });
    assert.ok(await slow.login({ email: 'w@limits.test', password: PASSWORD }, { address: '2001:db8:1:2::/64', ip: '2001:db8:1:2::99', userAgent: null }));
  });

  it('a successful login gives its attempt back: a user who mistypes sometimes is never locked', async () => {
    for (let i = 0; i < 10; i++) {
      await assert.rejects(sessions.login({ email: 'u@limits.test', password: 'typo' }, client('10.9.0.4')), { code: 'invalid_credentials' });
      assert.ok(await sessions.login({ email: 'u@limits.test', password: PASSWORD }, client('10.9.0.4')));
    }
  });
});

describe('the Redis copies of sessions (seed 001\'s session:{token} and refresh_token:{token})', () => {
  const names = testNames();
  let redis: Redis;
  after(async () => {
    redis?.disconnect();
    await names.cleanup();
  });
  eachBackend('in Redis', (get) => {
    it('writes them under the deployment prefix, keyed by digest, expiring with the tokens, and removes them on logout and rotation', async () => {
      await migrate(get().db);
      await createUser(get().db, { id: 'red-u', email: 'u@redis.test', password: PASSWORD });
      redis = new Redis(REDIS_URL);
      const bus = redisBus(names.names);
      const store = storeOver(get().db, bus, undefined, keyring('k', new Map([['k', randomBytes(32)]])), { ttlMs: 60_000, refreshTtlMs: 3_600_000, login: { failures: 5, lockMs: 60_000 } });
      for (let i = 0; i < 100 && bus.client.status !== 'ready'; i++) await new Promise((resolve) => setTimeout(resolve, 20));
      try {
        const t = await store.sessions.login({ email: 'u@redis.test', password: PASSWORD }, client('10.1.1.1'));
        const sessionKey = `${names.names.keyPrefix}session:${sha(t.sessionToken)}`;
        const refreshKey = `${names.names.keyPrefix}refresh_token:${sha(t.refreshToken)}`;
        const stored = JSON.parse((await redis.get(sessionKey))!);
        assert.deepEqual(Object.keys(stored).sort(), ['expires_at', 'last_accessed', 'user_id']);
        assert.equal(stored.user_id, 'red-u');
        const ttl = await redis.pttl(sessionKey);
        assert.ok(ttl > 50_000 && ttl <= 60_000, String(ttl));
        assert.deepEqual(Object.keys(JSON.parse((await redis.get(refreshKey))!)).sort(), ['expires_at', 'user_id']);
        const all = await redis.keys(`${names.names.keyPrefix}*`);
        assert.equal(all.some((k) => k.includes(t.sessionToken) || k.includes(t.refreshToken)), false);
        const next = await store.sessions.refresh(t.refreshToken, client('10.1.1.1'));
        assert.equal(await redis.exists(refreshKey), 0, 'a used refresh token leaves Redis');
        assert.equal(await redis.exists(`${names.names.keyPrefix}session:${sha(next.sessionToken)}`), 1);
        const identity = await store.sessions.verify(next.sessionToken);
        await store.sessions.logout(identity!);
        assert.equal(await redis.exists(`${names.names.keyPrefix}session:${sha(next.sessionToken)}`), 0);
        assert.equal(await redis.exists(`${names.names.keyPrefix}refresh_token:${sha(next.refreshToken)}`), 0);
      } finally {
        await bus.close();
      }
    });
  }, { only: ['postgres'] });
});

eachBackend('tradestore sessions', (get) => {
  it('lists a user\'s sessions, logs them out everywhere and turns two-factor authentication off for them', async () => {
    await migrate(get().db);
    await createUser(get().db, { id: 'cli-s', email: 's@cli.test', password: PASSWORD });
    const sessions = storeOver(get().db, new MemoryBus()).sessions;
    const t = await sessions.login({ email: 's@cli.test', password: PASSWORD }, client('10.2.2.2'));
    await get().db.query(`UPDATE users SET two_factor_enabled = true WHERE id = 'cli-s'`);
    const listed = await runCli(['sessions', 'list', '--user', 'cli-s'], get().env);
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stdout, new RegExp(`^ +${t.sessionId}  read,trade +from 10\\.2\\.2\\.2`, 'm'));
    assert.equal(listed.stdout.includes(t.sessionToken), false);
    const revoked = await runCli(['sessions', 'revoke', '--user', 'cli-s'], get().env);
    assert.match(revoked.stdout, /revoked 1 live session\(s\) of user cli-s/);
    assert.equal(await sessions.verify(t.sessionToken), null);
    assert.equal((await runCli(['sessions', 'two-factor-off', '--user', 'cli-s'], get().env)).code, 0);
    assert.equal((await get().db.query(`SELECT two_factor_enabled FROM users WHERE id = 'cli-s'`)).rows[0]!.two_factor_enabled, false);
    // A new password ends the sessions it leaves: the old one no longer logs in.
    const again = await sessions.login({ email: 's@cli.test', password: PASSWORD }, client('10.2.2.2'));
    const changed = await runCli(['user', 'password', '--id', 'cli-s', '--password-stdin'], get().env, 'Another-Horse-Battery-7\n');
    assert.equal(changed.code, 0, changed.stderr);
    assert.match(changed.stdout, /password of user cli-s set \(argon2id\); 1 live session\(s\) ended/);
    assert.equal(await sessions.verify(again.sessionToken), null);
    await assert.rejects(sessions.login({ email: 's@cli.test', password: PASSWORD }, client('10.2.2.3')), { code: 'invalid_credentials' });
    assert.ok(await sessions.login({ email: 's@cli.test', password: 'Another-Horse-Battery-7' }, client('10.2.2.3')));
    assert.equal((await runCli(['user', 'password', '--id', 'cli-s', '--password-stdin'], get().env, 'short\n')).code, 2);
    assert.equal((await runCli(['user', 'password', '--id', 'nobody', '--password-stdin'], get().env, 'Long-Enough-1\n')).code, 2);
    const actions = (await get().db.query<{ action: string }>(`SELECT action FROM audit_log WHERE user_id = 'cli-s' ORDER BY id`)).rows.map((r) => r.action);
    for (const a of ['session.revoke_all', 'two_factor.disable', 'user.password']) assert.ok(actions.includes(a), a);
    assert.equal((await runCli(['sessions', 'list', '--user', 'nobody'], get().env)).code, 2);
    assert.equal((await runCli(['sessions', 'list'], get().env)).code, 2);
  });
}, { only: ['postgres'] });

eachBackend('revocations and refreshes at the same moment', (get) => {
  it('revokes a session a refresh in flight is making: log out everywhere waits for it and ends it', async () => {
    const { db } = get();
    await migrate(db);
    await createUser(db, { id: 'race-u', email: 'u@race.test', password: PASSWORD });
    const store = storeOver(db, new MemoryBus());
    const t = await store.sessions.login({ email: 'u@race.test', password: PASSWORD }, client('10.3.3.3'));
    // Another connection holds the audit trail: the refresh stops at its audit row, its new session not committed.
    const blocker = new pg.Client({ connectionString: get().env.DATABASE_URL });
    await blocker.connect();
    try {
      await blocker.query('BEGIN');
      await blocker.query('LOCK TABLE audit_log IN SHARE MODE');
      const refreshing = store.sessions.refresh(t.refreshToken, client('10.3.3.3'));
      await new Promise((resolve) => setTimeout(resolve, 300));
      const revoking = store.sessions.logoutAll('race-u');
      await new Promise((resolve) => setTimeout(resolve, 300));
      await blocker.query('COMMIT');
      const [next, revoked] = await Promise.all([refreshing, revoking]);
      assert.equal(revoked, 1, 'the session the refresh made is the one revoked');
      assert.equal(await store.sessions.verify(next.sessionToken), null);
      await assert.rejects(store.sessions.refresh(next.refreshToken, client('10.3.3.3')), { code: 'invalid_refresh_token' });
    } finally {
      await blocker.end();
    }
  });
}, { only: ['postgres'] });
