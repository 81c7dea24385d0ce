import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { toolConnection } from '../src/ops/backup.ts';
import { createServerDatabase } from './helpers/backends.ts';
import { runCli } from './helpers/cli.ts';
import { secretUsed } from './helpers/exposure.ts';
import { freePort, OwnRedis } from './helpers/outages.ts';
import { killAll, spawnService, waitFor, type ServiceProcess } from './helpers/service.ts';

const secret = (what: string) => `${what}-${randomBytes(9).toString('base64url')}`;

it('gives pg_dump and pg_restore the database password in their environment, never on their command line', () => {
  const { args, env } = toolConnection(['--format=custom', '--dbname=postgres://root:p%40ss%2Fword@db.example:5432/trading?sslmode=require']);
  assert.deepEqual(args, ['--format=custom', '--dbname=postgres://root@db.example:5432/trading?sslmode=require']);
  assert.equal(env.PGPASSWORD, 'p@ss/word');
  assert.equal(toolConnection(['--dbname=postgres://root@h/d']).env.PGPASSWORD, process.env.PGPASSWORD);
});

/**
 * A deployment's own secrets (the database and Redis passwords in their URLs, the keyring, the
 * metrics token) and its users' (passwords, tokens, credential values) used the way an operator
 * and an attacker would, failures included: none of them appears in anything the service or the
 * CLI writes, nor in any error answer.
 */
describe('the secrets of a deployment in its logs and error answers', () => {
  const s = {
    db: secret('dbpw'), redis: secret('redispw'), metrics: secret('metrics'), key: randomBytes(32).toString('base64'),
    password: secret('Password'), exchangeKey: secret('exkey'), exchangeSecret: secret('exsecret'),
  };
  secretUsed(...Object.values(s));
  let redis: OwnRedis;
  let drop: () => Promise<void>;
  let service: ServiceProcess;
  let env: Record<string, string>;
  let base = '';
  const seen: string[] = [];
  const cli = async (args: string[], extra: Record<string, string> = {}, stdin?: string) => {
    const r = await runCli(args, { ...env, ...extra }, stdin);
    seen.push(`tradestore ${args.join(' ')}: ${r.stderr}`);
    return r;
  };
  const call = async (path: string, init: RequestInit = {}) => {
    const r = await fetch(`${base}${path}`, init);
    const text = await r.text();
    if (r.status >= 400) seen.push(`${path} ${r.status} ${[...r.headers].join(' ')} ${text}`);
    return { status: r.status, text };
  };
  const json = (body: object) => ({ method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });

  before(async () => {
    const created = await createServerDatabase();
    drop = created.drop;
    const url = new URL(created.url);
    url.password = s.db; // the server trusts local connections: the password is carried, never checked
    redis = new OwnRedis(await freePort(), false, s.redis);
    await redis.start();
    env = {
      DATABASE_URL: url.toString(), REDIS_URL: redis.url, TRADESTORE_REDIS_PREFIX: `tradestore-test-secrets-${randomBytes(3).toString('hex')}:`,
      TRADESTORE_KEYRING: JSON.stringify({ current: 'k', keys: { k: s.key } }), TRADESTORE_METRICS_TOKEN: s.metrics, HOST: '127.0.0.1',
      TRADESTORE_MAINTENANCE_TICK_MS: '0', TRADESTORE_MONITOR_INTERVAL_MS: '0',
    };
    assert.equal((await cli(['migrate', 'up'])).code, 0);
    assert.equal((await cli(['user', 'create', '--id', 'sec-u', '--email', 'u@secrets.test', '--password-stdin'], {}, `${s.password}\n`)).code, 0);
    assert.equal((await cli(['credentials', 'add', '--exchange', 'binance', '--user', 'sec-u'], {}, `${s.exchangeKey}\n${s.exchangeSecret}\n`)).code, 0);
    service = spawnService(env);
    await waitFor('the service to listen', async () => /listening on \S+:\d+,/.test(service.output()) || service.child.exitCode !== null);
    base = `http://127.0.0.1:${/listening on \S+:(\d+),/.exec(service.output())![1]}`;
  });
  after(async () => {
    service?.child.kill('SIGKILL');
    killAll();
    await redis?.destroy();
    await drop?.();
  });

  it('shows none of them, whatever is tried', async () => {
    // Logins that fail and succeed, tokens refreshed, reused and made up.
    assert.equal((await call('/v1/auth/login', json({ email: 'u@secrets.test', password: `${s.password}x` }))).status, 401);
    const tokens = JSON.parse((await call('/v1/auth/login', json({ email: 'u@secrets.test', password: s.password }))).text);
    secretUsed(tokens.sessionToken, tokens.refreshToken);
    assert.equal((await call('/v1/auth/refresh', json({ refreshToken: tokens.refreshToken }))).status, 200);
    assert.equal((await call('/v1/auth/refresh', json({ refreshToken: tokens.refreshToken }))).status, 401);
    assert.equal((await call('/v1/account/balances', { headers: { authorization: `Bearer ${tokens.sessionToken}` } })).status, 401);
    assert.equal((await call('/v1/auth/login', json({ email: 'u@secrets.test', password: s.password, extra: s.password }))).status, 400);
    // The metrics token, wrong and right.
    assert.equal((await call('/metrics', { headers: { authorization: `Bearer ${s.metrics}x` } })).status, 401);
    assert.equal((await call('/metrics', { headers: { authorization: `Bearer ${s.metrics}` } })).status, 200);
    // The operator's commands, with the deployment's configuration.
    const dir = mkdtempSync(join(tmpdir(), 'tradestore-secrets-'));
    try {
      assert.equal((await cli(['backup', '--out', dir])).code, 0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    assert.equal((await cli(['credentials', 'list'])).code, 0);
    assert.equal((await cli(['health'])).code, 0);
    assert.equal((await cli(['keys', 'status'])).code, 0);
    // Configuration that does not work: a database and a Redis that do not answer, a keyring that is not one.
    const closed = await freePort();
    const unreachable = await cli(['migrate', 'status'], { DATABASE_URL: `postgres://root:${s.db}@127.0.0.1:${closed}/x` });
    assert.notEqual(unreachable.code, 0);
    assert.match(unreachable.stderr, /postgres:\/\/root:\*\*\*@127\.0\.0\.1/, 'the URL is shown with its password as ***');
    assert.notEqual((await cli(['ingest', 'status'], { REDIS_URL: `redis://:${s.redis}@127.0.0.1:${closed}` })).code, 0);
    assert.notEqual((await cli(['keys', 'status'], { TRADESTORE_KEYRING: `{"current": "k", "keys": {"k": "${s.key}"` })).code, 0);
    assert.notEqual((await cli(['keys', 'status'], { TRADESTORE_KEYRING: `{"current": "k", "keys": {"k": "${s.key.slice(0, 20)}"}}` })).code, 0);
    // Redis goes away under the running service, and comes back.
    await redis.stop();
    await call('/v1/account/balances', { headers: { 'x-api-key': `ts_000000000000_${'A'.repeat(32)}` } });
    await new Promise((resolve) => setTimeout(resolve, 1500));
    await redis.start();
    service.child.kill('SIGTERM');
    await service.exited;
    seen.push(service.output());
    assert.ok(seen.join('\n').length > 1000, 'something was written');
    for (const text of seen) for (const [name, value] of Object.entries({ ...s, session: tokens.sessionToken, refresh: tokens.refreshToken })) {
      assert.equal(text.includes(value), false, `the ${name} secret in: ${text.slice(0, 200)}`);
    }
  });
});
