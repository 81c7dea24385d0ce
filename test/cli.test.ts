import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServerDatabase, serverUnavailable } from './helpers/backends.ts';
import { runCli } from './helpers/cli.ts';

const REQUIRE = process.env.TRADESTORE_REQUIRE_SERVERS === '1';

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
      assert.match(up.stdout, /database version 9 \(was 0/);

      const status = await runCli(['migrate', 'status', '--json'], env);
      assert.equal(status.code, 0, status.stderr);
      const parsed = JSON.parse(status.stdout) as { databaseVersion: number; entries: { checksum: string }[] };
      assert.equal(parsed.databaseVersion, 9);
      assert.ok(parsed.entries.every((e) => e.checksum === 'ok'));

      const seed1 = await runCli(['seed'], env);
      assert.equal(seed1.code, 0, seed1.stderr);
      assert.match(seed1.stdout, /seeded: 3 markets, 2 instruments, 2 strategies, 3 trading fees, 4 config keys/);
      const seed2 = await runCli(['seed'], env);
      assert.match(seed2.stdout, /seeded: 0 markets, 0 instruments, 0 strategies, 0 trading fees, 0 config keys/);

      const user = await runCli(['user', 'create', '--id', 'alice', '--email', 'alice@example.com', '--password', 'correct horse'], env);
      assert.equal(user.code, 0, user.stderr);
      assert.match(user.stdout, /created user alice <alice@example.com> \(password hashed with argon2id\)/);
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
      const revoke = await runCli(['apikey', 'revoke', '--id', created.id], env);
      assert.equal(revoke.code, 0, revoke.stderr);

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
      assert.equal(badEmail.code, 1);
      assert.match(badEmail.stderr, /email is not a valid address/);
      const badUrl = await runCli(['migrate', 'status'], { DATABASE_URL: 'mysql://x' });
      assert.equal(badUrl.code, 2);
      assert.match(badUrl.stderr, /DATABASE_URL must start with postgres: or postgresql:/);
    });
  });
}
