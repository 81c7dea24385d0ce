import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { createServerDatabase } from './helpers/backends.ts';
import { runCli } from './helpers/cli.ts';
import { redisBus, redisUnavailable, testNames } from './helpers/redis.ts';

const REQUIRE = process.env.TRADESTORE_REQUIRE_SERVERS === '1';

describe('tradestore dlq [redis]', async () => {
  const reason = REQUIRE ? null : await redisUnavailable();
  if (reason) {
    it('skipped', { skip: reason }, () => {});
    return;
  }
  const names = testNames();
  const bus = redisBus(names.names);
  // Replays and purges are recorded in the database's audit trail.
  const t = { env: { ...names.env } as Record<string, string> };
  let drop: (() => Promise<void>) | undefined;
  before(async () => {
    const server = await createServerDatabase();
    drop = server.drop;
    t.env.DATABASE_URL = server.url;
    assert.equal((await runCli(['migrate', 'up'], t.env)).code, 0);
  });
  after(async () => {
    await bus.close();
    await names.cleanup();
    await drop?.();
  });
  const audited = async () => {
    const client = new pg.Client({ connectionString: t.env.DATABASE_URL });
    await client.connect();
    try {
      return (await client.query<{ action: string; resource_id: string; actor: string }>(`SELECT action, resource_id, actor FROM audit_log WHERE resource_type = 'dead_letter' ORDER BY id`)).rows;
    } finally {
      await client.end();
    }
  };

  it('lists dead letters and replays one, then all', async () => {
    await bus.init();
    // Sources that are no longer in their shard: the worker's copy of the payload is kept.
    await bus.deadLetter([{ shard: 3, source: '1-0', payload: '{"type":"BALANCE_UPDATE","data":{"userId":"ghost"}}', reason: 'unknown user ghost', attempts: 1 }]);
    await bus.deadLetter([{ shard: 6, source: '2-0', payload: '{"type":"NOPE","data":{}}', reason: 'unknown type "NOPE"', attempts: 2 }]);
    const list = await runCli(['dlq', 'list', '--json'], t.env);
    assert.equal(list.code, 0, list.stderr);
    const letters = JSON.parse(list.stdout) as { id: string; source: string; reason: string; attempts: number }[];
    assert.deepEqual(letters.map((l) => [l.source, l.reason, l.attempts]), [['1-0', 'unknown user ghost', 1], ['2-0', 'unknown type "NOPE"', 2]]);
    const text = await runCli(['dlq', 'list'], t.env);
    assert.match(text.stdout, /source 1-0  attempts 1[\s\S]*reason:  unknown user ghost\n  payload: \{"type":"BALANCE_UPDATE"/);
    const show = await runCli(['dlq', 'show', '--id', letters[1]!.id, '--raw'], t.env);
    assert.equal(show.stdout, '{"type":"NOPE","data":{}}');

    const one = await runCli(['dlq', 'replay', '--id', letters[0]!.id], t.env);
    assert.equal(one.code, 0, one.stderr);
    assert.match(one.stdout, /replayed 1 dead letter onto its shard/);
    const all = await runCli(['dlq', 'replay', '--all'], t.env);
    assert.match(all.stdout, /replayed 1 dead letter onto its shard/);
    const entries = await bus.read(new Map([[3, '0-0'], [6, '0-0']]), 10, 10);
    assert.deepEqual(entries.map((e) => [e.shard, e.payload]), [[3, '{"type":"BALANCE_UPDATE","data":{"userId":"ghost"}}'], [6, '{"type":"NOPE","data":{}}']]);
    assert.equal((await bus.stats()).deadLetters, 0);
    const trail = await audited();
    assert.deepEqual(trail.map((r) => [r.action, r.resource_id]), [['dead_letter.replay', letters[0]!.id], ['dead_letter.replay', 'all']]);
    assert.match(trail[0]!.actor, /^cli:/);
  });

  it('refuses a replay it cannot record, and changes nothing', async () => {
    await bus.deadLetter([{ shard: 4, source: '9-0', payload: 'x', reason: 'r', attempts: 1 }]);
    const refused = await runCli(['dlq', 'replay', '--all'], { ...t.env, DATABASE_URL: 'postgres://root@127.0.0.1:1/nowhere' });
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /cannot connect to PostgreSQL/);
    assert.equal((await bus.stats()).deadLetters, 1);
    assert.equal((await runCli(['dlq', 'purge', '--all'], t.env)).code, 0);
  });

  it('purges one dead letter, then all, for good', async () => {
    await bus.deadLetter([{ shard: 1, source: '5-0', payload: 'a', reason: 'r1', attempts: 1 }]);
    await bus.deadLetter([{ shard: 2, source: '6-0', payload: 'b', reason: 'r2', attempts: 1 }, { shard: 5, source: '7-0', payload: 'c', reason: 'r3', attempts: 1 }]);
    const letters = JSON.parse((await runCli(['dlq', 'list', '--json'], t.env)).stdout) as { id: string }[];
    assert.equal(letters.length, 3);
    const lagBefore = (await bus.stats()).lag;
    const one = await runCli(['dlq', 'purge', '--id', letters[0]!.id], t.env);
    assert.equal(one.code, 0, one.stderr);
    assert.match(one.stdout, /removed 1 dead letter for good/);
    assert.equal((await bus.stats()).deadLetters, 2);
    const all = await runCli(['dlq', 'purge', '--all'], t.env);
    assert.match(all.stdout, /removed 2 dead letters for good/);
    assert.equal((await bus.stats()).deadLetters, 0);
    assert.equal((await bus.stats()).lag, lagBefore, 'nothing was put back on a shard');
    const neither = await runCli(['dlq', 'purge'], t.env);
    assert.equal(neither.code, 2);
    assert.match(neither.stderr, /dlq purge needs --id ID \(repeatable\) or --all/);
  });

  it('shows its progress while replaying many', async () => {
    const before = (await bus.stats()).lag;
    await bus.deadLetter(Array.from({ length: 2500 }, (_, i) => ({ shard: i % 8, source: `${100 + i}-0`, payload: `p${i}`, reason: 'r', attempts: 1 })));
    const all = await runCli(['dlq', 'replay', '--all'], t.env);
    assert.equal(all.code, 0, all.stderr);
    assert.match(all.stdout, /dlq replay: 1000 replayed so far…\ndlq replay: 2000 replayed so far…\nreplayed 2500 dead letters onto their shards/);
    assert.equal((await bus.stats()).lag, before + 2500);
  });

  it('says what is wrong with bad arguments', async () => {
    const none = await runCli(['dlq', 'replay'], t.env);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /dlq replay needs --id ID \(repeatable\) or --all/);
    const unknown = await runCli(['dlq', 'replay', '--id', '2:999-9'], t.env);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /no dead letter with id 2:999-9/);
    const malformed = await runCli(['dlq', 'show', '--id', '999-9'], t.env);
    assert.equal(malformed.code, 2);
    assert.match(malformed.stderr, /no dead letter with id 999-9 \(ids are shard:id, e.g. 3:1763700000123-0; see tradestore dlq list\)/);
    const noRedis = await runCli(['dlq', 'list'], {});
    assert.equal(noRedis.code, 2);
    assert.match(noRedis.stderr, /dlq needs REDIS_URL/);
  });
});
