import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServerDatabase, serverUnavailable } from './helpers/backends.ts';
import fc from 'fast-check';
import { runCli } from './helpers/cli.ts';
import { USAGE_COMMANDS } from '../src/cli/usage.ts';
import { redisBus, redisUnavailable, testNames } from './helpers/redis.ts';
import { secretUsed } from './helpers/exposure.ts';

const REQUIRE = process.env.TRADESTORE_REQUIRE_SERVERS === '1';
const SEED = Number(process.env.TEST_SEED ?? Date.now() % 1_000_000);

for (const backend of ['embedded', 'postgres'] as const) {
  describe(`tradestore CLI [${backend}]`, async () => {
    const reason = backend === 'postgres' && !REQUIRE ? await serverUnavailable() : null;
    if (reason) {
      it('skipped', { skip: reason }, () => {});
      return;
    }
    let env: Record<string, string> = {};
    let cleanup = async () => {};
    before(async () => {
      if (backend === 'postgres') {
        const server = await createServerDatabase();
        env = { DATABASE_URL: server.url };
        cleanup = server.drop;
      } else {
        const dir = await mkdtemp(join(tmpdir(), 'tradestore-cli-'));
        env = { TRADESTORE_DATA_DIR: join(dir, 'db') };
        cleanup = () => rm(dir, { recursive: true, force: true });
      }
    });
    after(() => cleanup());

    it('migrate up, status, seed (twice), user create, migrate down', async () => {
      const up = await runCli(['migrate', 'up'], env);
      assert.equal(up.code, 0, up.stderr);
      assert.match(up.stdout, /applied 001 venue/);
      assert.match(up.stdout, /database version 21 \(was 0/);

      const status = await runCli(['migrate', 'status', '--json'], env);
      assert.equal(status.code, 0, status.stderr);
      const parsed = JSON.parse(status.stdout) as { databaseVersion: number; entries: { checksum: string }[] };
      assert.equal(parsed.databaseVersion, 21);
      assert.ok(parsed.entries.every((e) => e.checksum === 'ok'));
      const trail = JSON.parse((await runCli(['audit', '--action', 'schema.migrate', '--json'], env)).stdout) as { actor: string; oldValues: unknown; newValues: { version: number } }[];
      assert.deepEqual(trail.map((e) => [e.oldValues, e.newValues.version]), [[{ version: 0 }, 21]]);
      assert.match(trail[0]!.actor, /^cli:/);

      const seed1 = await runCli(['seed'], env);
      assert.equal(seed1.code, 0, seed1.stderr);
      assert.match(seed1.stdout, /seeded: 3 markets, 2 instruments, 2 strategies, 3 trading fees, 4 config keys/);
      const seed2 = await runCli(['seed'], env);
      assert.match(seed2.stdout, /seeded: 0 markets, 0 instruments, 0 strategies, 0 trading fees, 0 config keys/);

      secretUsed('correct horse', 'battery staple', 'visible in ps');
      const user = await runCli(['user', 'create', '--id', 'alice', '--email', 'alice@example.com', '--password-stdin'], env, 'correct horse\n');
      assert.equal(user.code, 0, user.stderr);
      assert.match(user.stdout, /created user alice <alice@example.com> \(password hashed with argon2id\); sessions may read, trade/);
      const fromEnv = await runCli(['user', 'create', '--id', 'carol', '--email', 'carol@example.com'], { ...env, TRADESTORE_PASSWORD: 'battery staple' });
      assert.match(fromEnv.stdout, /created user carol <carol@example.com> \(password hashed with argon2id\)/);
      const onCommandLine = await runCli(['user', 'create', '--id', 'dave', '--email', 'dave@example.com', '--password', 'visible in ps'], env);
      assert.equal(onCommandLine.code, 2);
      assert.match(onCommandLine.stderr, /--password would show the password to anyone who lists processes/);
      const users = await runCli(['user', 'list', '--json'], env);
      assert.equal(users.code, 0, users.stderr);
      const listed = JSON.parse(users.stdout) as { id: string; hasPassword: boolean }[];
      assert.deepEqual(listed.filter((u) => ['alice', 'carol'].includes(u.id)).map((u) => [u.id, u.hasPassword]), [['alice', true], ['carol', true]]);
      assert.doesNotMatch(users.stdout, /argon2/, 'never a password hash');
      const dup = await runCli(['user', 'create', '--id', 'alice', '--email', 'other@example.com'], env);
      assert.equal(dup.code, 1);
      assert.match(dup.stderr, /a user with id alice already exists/);

      const key = await runCli(['apikey', 'create', '--user', 'alice', '--scopes', 'read,trade', '--json'], env);
      assert.equal(key.code, 0, key.stderr);
      const created = JSON.parse(key.stdout) as { id: string; key: string; scopes: string[] };
      assert.match(created.key, /^ts_[0-9a-f]{12}_[A-Za-z0-9_-]{32}$/);
      assert.deepEqual(created.scopes, ['read', 'trade']);
      const noUser = await runCli(['apikey', 'create', '--user', 'nobody'], env);
      assert.equal(noUser.code, 1);
      assert.match(noUser.stderr, /unknown user "nobody"/);
      const badScope = await runCli(['apikey', 'create', '--user', 'alice', '--scopes', 'read,root'], env);
      assert.equal(badScope.code, 2);
      assert.match(badScope.stderr, /--scopes: must be a comma-separated list of read, trade, admin; got root/);
      const keys = await runCli(['apikey', 'list', '--user', 'alice'], env);
      assert.equal(keys.code, 0, keys.stderr);
      assert.match(keys.stdout, new RegExp(`${created.id}\\s+ts_${created.key.split('_')[1]}_…\\s+alice\\s+active\\s+read,trade`));
      // The secret is what follows ts_<12 hex>_ (it may itself hold an underscore).
      assert.ok(!keys.stdout.includes(created.key.slice(16)), 'never the key');
      const revoke = await runCli(['apikey', 'revoke', '--id', created.id], env);
      assert.equal(revoke.code, 0, revoke.stderr);
      assert.match(revoke.stdout, new RegExp(`revoked API key ${created.id}`));
      const again = await runCli(['apikey', 'revoke', '--id', created.id], env);
      assert.equal(again.code, 0, again.stderr);
      assert.match(again.stdout, /was already revoked \(at .+\); nothing changed/);
      const unknownKey = await runCli(['apikey', 'revoke', '--id', '999999'], env);
      assert.equal(unknownKey.code, 1);
      assert.match(unknownKey.stderr, /unknown API key "999999"/);
      assert.match((await runCli(['apikey', 'list', '--json'], env)).stdout, /"status": "revoked"/);

      const down = await runCli(['migrate', 'down', '--to', '2'], env);
      assert.equal(down.code, 0, down.stderr);
      assert.match(down.stdout, /undone  006 ingest[\s\S]*undone  005 operations[\s\S]*undone  003 trading/);
      const zero = await runCli(['migrate', 'down'], env);
      assert.equal(zero.code, 0, zero.stderr);
      assert.match(zero.stdout, /database version 0 \(was 2/);
    });

    it('rejects bad arguments with exit code 2 and says which', async () => {
      const badTo = await runCli(['migrate', 'down', '--to', 'two'], env);
      assert.equal(badTo.code, 2);
      assert.match(badTo.stderr, /--to must be a non-negative integer \(got "two"\)/);
      const unknown = await runCli(['frobnicate'], env);
      assert.equal(unknown.code, 2);
      assert.match(unknown.stderr, /unknown command "frobnicate"/);
      const noEmail = await runCli(['user', 'create', '--id', 'bob'], env);
      assert.equal(noEmail.code, 2);
      assert.match(noEmail.stderr, /user create needs --email/);
      const badEmail = await runCli(['user', 'create', '--id', 'bob', '--email', 'not-an-email'], env);
      assert.equal(badEmail.code, 2);
      assert.match(badEmail.stderr, /email is not a valid address/);
      const badUrl = await runCli(['migrate', 'status'], { DATABASE_URL: 'mysql://x' });
      assert.equal(badUrl.code, 2);
      assert.match(badUrl.stderr, /DATABASE_URL must start with postgres: or postgresql:/);
    });
  });
}

describe('tradestore CLI arguments, before anything is opened', () => {
  // Unreachable servers: a command that opened either before checking its arguments would fail
  // on the connection (exit 1, or hang) instead of answering 2 with the argument at fault.
  const nowhere = { DATABASE_URL: 'postgres://127.0.0.1:1/nowhere', REDIS_URL: 'redis://127.0.0.1:1' };
  const commands = [...USAGE_COMMANDS];

  it('prints the version, and each command\'s own help with exit 0', async () => {
    const version = await runCli(['--version'], nowhere);
    assert.equal(version.code, 0);
    assert.match(version.stdout, /^tradestore \d+\.\d+\.\d+\n$/);
    const helps = await Promise.all(commands.map((c) => runCli([c, '--help'], nowhere)));
    helps.forEach((h, i) => {
      assert.equal(h.code, 0, `${commands[i]} --help: ${h.stderr}`);
      assert.match(h.stdout, new RegExp(`^Usage:\\n  tradestore ${commands[i]}\\b`), commands[i]);
    });
  });

  it(`answers an unknown option or subcommand of every command with exit 2, naming it (seed ${SEED})`, async () => {
    const bad = fc.record({
      command: fc.constantFrom(...commands),
      extra: fc.oneof(fc.stringMatching(/^--zz-[a-z]{1,8}$/), fc.constantFrom('--limit=x', '--rate', '--to=-1')),
    });
    const cases = fc.sample(bad, { numRuns: 24, seed: SEED });
    for (let i = 0; i < cases.length; i += 4) {
      await Promise.all(cases.slice(i, i + 4).map(async ({ command, extra }) => {
        const subcommand = { migrate: 'status', user: 'list', apikey: 'list', dlq: 'list', ingest: 'status', maintenance: 'status' }[command];
        const result = await runCli([command, ...(subcommand ? [subcommand] : []), extra], nowhere);
        assert.equal(result.code, 2, `${command} ${subcommand ?? ''} ${extra}: ${result.code} ${result.stderr}`);
        assert.match(result.stderr, /^tradestore: /);
        assert.doesNotMatch(result.stderr, /unreachable|ECONNREFUSED|connect/i, `${command}: checked before connecting`);
      }));
    }
    for (const command of ['migrate', 'user', 'apikey', 'dlq', 'ingest', 'maintenance']) {
      const result = await runCli([command, 'frobnicate'], nowhere);
      assert.equal(result.code, 2, `${command} frobnicate: ${result.stderr}`);
    }
  });
});

describe('tradestore simulate [postgres+redis]', async () => {
  const reason = REQUIRE ? null : ((await serverUnavailable()) ?? (await redisUnavailable()));
  if (reason) {
    it('skipped', { skip: reason }, () => {});
    return;
  }
  const t = testNames();
  let server: { url: string; drop: () => Promise<void> };
  before(async () => {
    server = await createServerDatabase();
    assert.equal((await runCli(['migrate', 'up'], { DATABASE_URL: server.url })).code, 0);
  });
  after(async () => {
    await t.cleanup();
    await server.drop();
  });

  it('sends exactly --count events, and shows its progress', async () => {
    const run = await runCli(['simulate', '--count', '3000', '--rate', '500', '--seed', '3'], { ...t.env, DATABASE_URL: server.url });
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /simulate: sent \d+ of 3000 events \(\d+\/s\)/, 'progress while it runs (about every 5 s)');
    assert.match(run.stdout, /sent 3000 events/);
    const bus = redisBus(t.names);
    assert.equal((await bus.stats()).lag, 3000);
    await bus.close();
  });
});
