import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { MemoryBus } from '../src/bus/memory.ts';
import { ConfigError } from '../src/config.ts';
import { migrate } from '../src/schema/migrator.ts';
import { seed } from '../src/schema/seed.ts';
import { keyring, loadKeyring, SealError, type Keyring } from '../src/security/keyring.ts';
import { TwoFactor, totpCode } from '../src/security/twoFactor.ts';
import { createUser } from '../src/users/users.ts';
import { storeOver } from '../src/store/store.ts';
import type { Database } from '../src/database/types.ts';
import { eachBackend } from './helpers/backends.ts';
import { runCli } from './helpers/cli.ts';
import { secretUsed } from './helpers/exposure.ts';

/** A key of a test keyring; the secret scan looks for it in every log line and error answer. */
const key = () => {
  const k = randomBytes(32);
  secretUsed(k.toString('base64'));
  return k;
};
const ring = (current: string, keys: Record<string, Buffer>): Keyring => keyring(current, new Map(Object.entries(keys)));
const json = (current: string, keys: Record<string, Buffer>) =>
  JSON.stringify({ current, keys: Object.fromEntries(Object.entries(keys).map(([id, k]) => [id, k.toString('base64')])) });

describe('the keyring', () => {
  it('reads a keyring given inline or as a file, and refuses a bad one without showing a key', () => {
    const k1 = key();
    assert.equal(loadKeyring(json('k1', { k1 }))!.current, 'k1');
    const dir = mkdtempSync(join(tmpdir(), 'tradestore-keyring-'));
    try {
      writeFileSync(join(dir, 'keyring.json'), json('k1', { k1 }));
      assert.deepEqual(loadKeyring(join(dir, 'keyring.json'))!.ids(), ['k1']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    assert.equal(loadKeyring(undefined), null);
    const short = randomBytes(16).toString('base64');
    for (const [value, message] of [
      ['/no/such/keyring.json', /neither a JSON keyring nor the path of a file/],
      ['{"current": "k1"', /not valid JSON/],
      ['{"current": "k1", "keys": {}}', /needs "keys"/],
      [`{"current": "k1", "keys": {"k1": "${short}"}}`, /key 1 must be 32 bytes in base64/],
      [`{"current": "k2", "keys": {"k1": "${k1.toString('base64')}"}}`, /"current" must name one of its keys/],
      [`{"current": "a b", "keys": {"a b": "${k1.toString('base64')}"}}`, /the id of key 1 must be/],
      // An id and a key swapped, in base64 and in base64url: the key is never printed.
      [`{"current": "k1", "keys": {"${k1.toString('base64')}": "k1"}}`, /the id of key 1 must be .* swapped/],
      [`{"current": "k1", "keys": {"${k1.toString('base64url')}": "k1"}}`, /the id of key 1 must be .* swapped/],
    ] as const) {
      assert.throws(() => loadKeyring(value), (e: Error) =>
        e instanceof ConfigError && message.test(e.message) && ![short, k1.toString('base64'), k1.toString('base64url')].some((k) => e.message.includes(k)));
    }
  });

  it('opens what it sealed, and nothing sealed for another place, under another key, or altered in any byte', () => {
    const [k1, k2] = [key(), key()];
    const a = ring('k1', { k1, k2 });
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 300 }), fc.string(), fc.nat(), (bytes, place, flip) => {
        const plain = Buffer.from(bytes);
        const sealed = a.seal(plain, place);
        assert.deepEqual(a.open(sealed, place), plain);
        assert.equal(a.keyOf(sealed), 'k1');
        assert.throws(() => a.open(sealed, `${place}x`), SealError);
        const altered = Buffer.from(sealed);
        altered[flip % altered.length]! ^= 1 << (flip % 8);
        assert.throws(() => a.open(altered, place), SealError);
        // A keyring without k1 cannot open it; another key under k1's id does not either.
        assert.throws(() => ring('k2', { k2 }).open(sealed, place), /sealed under key k1, which is not in the keyring/);
        assert.throws(() => ring('k1', { k1: k2 }).open(sealed, place), SealError);
      }),
      { numRuns: 200 },
    );
    // A key id crafted into a stored value is refused as such, not printed.
    const crafted = a.seal(Buffer.from('x'), 'p');
    const forged = Buffer.concat([Buffer.from([1, 12]), Buffer.from('k\n[INFO] ok\u001b'), crafted.subarray(4)]);
    assert.throws(() => a.open(forged, 'p'), (e: Error) => e instanceof SealError && /key id is malformed/.test(e.message) && !e.message.includes('[INFO]'));
    // Each value has its own nonce: the same secret sealed twice differs.
    assert.notDeepEqual(a.seal(Buffer.from('same'), 'p'), a.seal(Buffer.from('same'), 'p'));
  });
});

eachBackend('credentials sealed at rest', (get) => {
  const [k1, k2] = [key(), key()];
  const secret = `sk-${randomBytes(12).toString('hex')}`;
  secretUsed(secret, 'secret-B', 'secret-C', 'cli-secret-value');
  before(async () => {
    const { db } = get();
    await migrate(db);
    await seed(db);
    await db.query(`INSERT INTO users (id, email) VALUES ('cred-u1', 'c1@example.com')`);
  });

  it('stores no secret in the clear, refuses a value moved to another row or column, and lists without secrets', async () => {
    const { db } = get();
    const store = storeOver(db, new MemoryBus(), undefined, ring('k1', { k1 }));
    const a = await store.credentials.add({ userId: 'cred-u1', exchange: 'binance', apiKey: 'key-A', apiSecret: secret, config: { testnet: true } });
    const b = await store.credentials.add({ exchange: 'zerodha', apiKey: 'key-B', apiSecret: 'secret-B' });
    assert.deepEqual([a.userId, a.keyId, a.config], ['cred-u1', 'k1', { testnet: true }]);
    const raw = await db.query<{ k: Buffer; s: Buffer }>(`SELECT api_key_encrypted AS k, api_secret_encrypted AS s FROM exchange_connections`);
    for (const r of raw.rows) for (const v of [r.k, r.s]) for (const plain of ['key-A', secret, 'key-B', 'secret-B']) assert.equal(Buffer.from(v).includes(plain), false);
    assert.deepEqual(await store.credentials.reveal(a.id), { id: a.id, exchange: 'binance', apiKey: 'key-A', apiSecret: secret, config: { testnet: true } });
    const listed = JSON.stringify(await store.credentials.list());
    assert.equal(listed.includes(secret) || listed.includes('key-A'), false);
    // b's secret copied into a's row, then a's key copied into a's secret column: neither opens.
    await db.query(`UPDATE exchange_connections SET api_secret_encrypted = (SELECT api_secret_encrypted FROM exchange_connections WHERE id = $2) WHERE id = $1`, [a.id, b.id]);
    await assert.rejects(store.credentials.reveal(a.id), /does not open under key k1: it was altered, or it belongs to another row or column/);
    await db.query(`UPDATE exchange_connections SET api_secret_encrypted = api_key_encrypted WHERE id = $1`, [a.id]);
    await assert.rejects(store.credentials.reveal(a.id), SealError);
    // Whoever can write the table cannot give a credential another owner, exchange or config (an endpoint of theirs).
    const c = await store.credentials.add({ userId: 'cred-u1', exchange: 'binance', apiKey: 'key-C', apiSecret: 'secret-C', config: { b: 1, a: [true, null] } });
    assert.equal((await store.credentials.reveal(c.id)).apiSecret, 'secret-C', 'the config read back from jsonb (keys reordered) still opens');
    for (const change of [`user_id = NULL`, `exchange = 'evil'`, `config = '{"baseUrl": "https://attacker.example"}'`]) {
      const saved = (await db.query(`SELECT user_id, exchange, config FROM exchange_connections WHERE id = $1`, [c.id])).rows[0] as { user_id: string; exchange: string; config: object };
      await db.query(`UPDATE exchange_connections SET ${change} WHERE id = $1`, [c.id]);
      await assert.rejects(store.credentials.reveal(c.id), /credential \d+: the value does not open/, change);
      await db.query(`UPDATE exchange_connections SET user_id = $2, exchange = $3, config = $4 WHERE id = $1`, [c.id, saved.user_id, saved.exchange, JSON.stringify(saved.config)]);
    }
    assert.equal((await store.credentials.reveal(c.id)).apiKey, 'key-C');
    await store.credentials.remove(c.id);
    await store.credentials.remove(a.id);
    await store.credentials.remove(b.id);
    await assert.rejects(store.credentials.reveal(a.id), /unknown credential/);
    await assert.rejects(storeOver(db, new MemoryBus()).credentials.add({ exchange: 'x', apiKey: 'a', apiSecret: 'b' }), /TRADESTORE_KEYRING.*is not set/);
  });

  it('rotates every credential to the current key in batches, resumable, and a key leaves only when nothing uses it', async () => {
    const { db } = get();
    const old = storeOver(db, new MemoryBus(), undefined, ring('k1', { k1 }));
    const made: { id: string }[] = [];
    for (let i = 0; i < 25; i++) made.push(await old.credentials.add({ exchange: 'binance', apiKey: `key-${i}`, apiSecret: `secret-${i}` }));
    const next = storeOver(db, new MemoryBus(), undefined, ring('k2', { k1, k2 }));
    const seen: number[] = [];
    // Interrupted after two batches of 10: what was re-sealed is kept.
    assert.deepEqual(await next.credentials.rotate({ batchSize: 10, maxBatches: 2, onProgress: (p) => seen.push(p.remaining) }), { rotated: 20, remaining: 5, failed: [] });
    assert.deepEqual(seen, [15, 5]);
    assert.deepEqual((await next.credentials.keyUsage()).map((u) => [u.keyId, u.credentials]), [['k1', 5], ['k2', 20]]);
    assert.deepEqual(await next.credentials.rotate({ batchSize: 10 }), { rotated: 5, remaining: 0, failed: [] });
    const onlyK2 = storeOver(db, new MemoryBus(), undefined, ring('k2', { k2 }));
    for (const [i, c] of made.entries()) assert.equal((await onlyK2.credentials.reveal(c.id)).apiSecret, `secret-${i}`);
    assert.deepEqual((await next.credentials.keyUsage()).map((u) => [u.keyId, u.credentials, u.current]), [['k1', 0, false], ['k2', 25, true]]);
    // Usage counts the key each value names, whatever the row's column says; a row that does not
    // open is reported with its id and left as it is, and the rotation goes on past it.
    const k3 = key();
    const third = storeOver(db, new MemoryBus(), undefined, ring('k3', { k1, k2, k3 }));
    await db.query(`UPDATE exchange_connections SET encryption_key_id = 'k3' WHERE id = $1`, [made[0]!.id]);
    await db.query(`UPDATE exchange_connections SET api_secret_encrypted = api_key_encrypted WHERE id = $1`, [made[1]!.id]);
    assert.deepEqual((await third.credentials.keyUsage()).map((u) => [u.keyId, u.credentials]), [['k1', 0], ['k2', 25], ['k3', 1]]);
    const done = await third.credentials.rotate({ batchSize: 10 });
    assert.deepEqual([done.rotated, done.remaining, done.failed.map((f) => f.id)], [24, 1, [made[1]!.id]]);
    assert.match(done.failed[0]!.reason, new RegExp(`^credential ${made[1]!.id}: the value does not open`));
    assert.equal((await third.credentials.reveal(made[0]!.id)).apiSecret, 'secret-0', 'the row whose column lied was re-sealed too');
    await db.query(`DELETE FROM exchange_connections`);
  });
});

// Concurrent transactions: the server only (the embedded database runs one at a time).
eachBackend('credentials under load and through the CLI', (get) => {
  let db: Database;
  const [k1, k2] = [key(), key()];
  before(async () => {
    db = get().db;
    await migrate(db);
    await seed(db);
  });

  it('loses nothing when credentials are added and read while a rotation runs', async () => {
    const old = storeOver(db, new MemoryBus(), undefined, ring('k1', { k1 }));
    const existing: { id: string }[] = [];
    for (let i = 0; i < 300; i++) existing.push(await old.credentials.add({ exchange: 'binance', apiKey: `k${i}`, apiSecret: `s${i}` }));
    const store = storeOver(db, new MemoryBus(), undefined, ring('k2', { k1, k2 }));
    const added: { id: string; i: number }[] = [];
    let stop = false;
    const load = (async () => {
      for (let i = 0; !stop; i++) {
        added.push({ id: (await store.credentials.add({ exchange: 'kite', apiKey: `new-k${i}`, apiSecret: `new-s${i}` })).id, i });
        const j = (i * 7) % existing.length;
        assert.equal((await store.credentials.reveal(existing[j]!.id)).apiSecret, `s${j}`);
      }
    })();
    const done = await store.credentials.rotate({ batchSize: 20 });
    stop = true;
    await load;
    assert.deepEqual(done, { rotated: 300, remaining: 0, failed: [] });
    assert.ok(added.length > 0);
    const onlyNew = storeOver(db, new MemoryBus(), undefined, ring('k2', { k2 }));
    for (const [i, c] of existing.entries()) assert.equal((await onlyNew.credentials.reveal(c.id)).apiSecret, `s${i}`);
    for (const a of added) assert.equal((await onlyNew.credentials.reveal(a.id)).apiSecret, `new-s${a.i}`);
    await db.query(`DELETE FROM exchange_connections`);
  });

  it('adds from standard input, lists without secrets, rotates with progress and retires a key only when unused', async () => {
    const env1 = { ...get().env, TRADESTORE_KEYRING: json('k1', { k1 }) };
    const env2 = { ...get().env, TRADESTORE_KEYRING: json('k2', { k1, k2 }) };
    const added = await runCli(['credentials', 'add', '--exchange', 'binance', '--json'], env1, 'cli-key\ncli-secret-value\n');
    assert.equal(added.code, 0, added.stderr);
    const id = JSON.parse(added.stdout).id as string;
    const listed = await runCli(['credentials', 'list'], env1);
    assert.match(listed.stdout, new RegExp(`^\\s*${id}  binance  \\(deployment\\)  key k1`, 'm'));
    assert.equal(/cli-key|cli-secret-value/.test(listed.stdout + listed.stderr + added.stdout + added.stderr), false);
    assert.match((await runCli(['credentials', 'add', '--exchange', 'binance'], env1, 'only-a-key\n')).stderr, /API key and the secret from standard input/);
    assert.equal((await runCli(['credentials', 'list'], { ...get().env, TRADESTORE_KEYRING: '{"current": "k1"' })).code, 2);
    // A user's TOTP secret is sealed under the same keyring, and moves with the credentials.
    await createUser(get().db, { id: 'cred-2fa', email: '2fa@cred.test' });
    const setup = await new TwoFactor(get().db, ring('k1', { k1 })).setup('cred-2fa');
    const retireEarly = await runCli(['keys', 'retire', 'k1'], env2);
    assert.deepEqual([retireEarly.code, /still seals 1 credential: run tradestore keys rotate first/.test(retireEarly.stderr)], [1, true]);
    const rotated = await runCli(['keys', 'rotate', '--batch', '1'], env2);
    assert.equal(rotated.code, 0, rotated.stderr);
    assert.match(rotated.stdout, /rotate: 1 re-sealed under k2, 0 to go\nrotate: 1 two-factor secret re-sealed under k2\nevery credential and two-factor secret is sealed under k2/);
    assert.match((await runCli(['keys', 'status'], env2)).stdout, /k1: 0 credentials, 0 two-factor secrets\nk2 \(current\): 1 credential, 1 two-factor secret/);
    // Opens under the new key alone.
    assert.equal((await new TwoFactor(get().db, ring('k2', { k2 })).enable('cred-2fa', totpCode(setup.secret))).recoveryCodes.length, 10);
    assert.match((await runCli(['keys', 'retire', 'k1'], env2)).stdout, /key k1 seals no stored credential: remove it from TRADESTORE_KEYRING once no backup/);
    // A broken keyring fails only the commands that use it.
    const broken = { ...get().env, TRADESTORE_KEYRING: '/no/such/keyring.json' };
    assert.equal((await runCli(['migrate', 'status'], broken)).code, 0);
    assert.equal((await runCli(['keys', 'status'], broken)).code, 2);
    assert.equal((await runCli(['credentials', 'remove', id], env2)).code, 0);
    assert.match((await runCli(['credentials', 'remove', id], env2)).stderr, /unknown credential/);
  });
}, { only: ['postgres'] });
