import { before, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { MemoryBus } from '../src/bus/memory.ts';
import type { Database } from '../src/database/types.ts';
import { migrate } from '../src/schema/migrator.ts';
import { seed } from '../src/schema/seed.ts';
import { keyring } from '../src/security/keyring.ts';
import { ACCOUNT_READER_ROLE } from '../src/store/account.ts';
import { ACCOUNT_WRITER_ROLE, ADMIN_READER_ROLE, scopedDatabase } from '../src/store/scoped.ts';
import { storeOver, type Store } from '../src/store/store.ts';
import { eachBackend } from './helpers/backends.ts';
import { ingest } from './helpers/ingest.ts';

/**
 * Tables whose rows are a user's by another column (users) or through a parent (a strategy, a
 * backtest, an order). The venue's trades are left out: TimescaleDB cannot compress a table
 * with row security (docs/SECURITY.md).
 */
const THROUGH_A_PARENT = [
  'users',
  'order_history', 'strategy_trades', 'strategy_versions', 'strategy_metrics', 'strategy_performance', 'performance_metrics',
  'strategy_trades_archive', 'backtest_results', 'backtest_trades', 'backtest_chunks', 'backtest_equity',
];

// The catalogue-wide checks run on the server; the embedded database enforces the same roles (below).
eachBackend('row-level security on every table that holds a user\'s rows', (get) => {
  let db: Database;
  let store: Store;
  before(async () => {
    db = get().db;
    await migrate(db);
    await seed(db);
    store = storeOver(db, new MemoryBus(), undefined, keyring('k', new Map([['k', randomBytes(32)]])));
    await db.query(`INSERT INTO users (id, email) VALUES ('rls-a', 'a@example.com'), ('rls-b', 'b@example.com')`);
  });

  it('has a policy for the account reader on every table with a user_id column, and on the tables owned through a parent', async () => {
    const { rows } = await db.query<{ table: string; rls: boolean; policies: number }>(
      `SELECT c.relname AS table, c.relrowsecurity AS rls,
              (SELECT count(*)::int FROM pg_policy p WHERE p.polrelid = c.oid AND $1::regrole::oid = ANY (p.polroles)) AS policies
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public'
        WHERE c.relkind IN ('r', 'p')
          AND (EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'user_id' AND NOT a.attisdropped) OR c.relname = ANY($2::text[]))
        ORDER BY 1`,
      [ACCOUNT_READER_ROLE, THROUGH_A_PARENT],
    );
    assert.ok(rows.length >= 30, `${rows.length} tables`);
    assert.deepEqual(rows.filter((r) => !r.rls || r.policies === 0).map((r) => r.table), [], 'tables without row-level security for the account reader');
  });

  it("shows user A none of user B's rows in any of them, whatever the reader were granted", async () => {
    // Rows of both users in the tables, through the real paths where there is one.
    const strategy = (user: string) => store.strategies.create({ name: `s-${user}`, symbols: ['TATA_INR'], userId: user });
    const [sa, sb] = [await strategy('rls-a'), await strategy('rls-b')];
    const start = Date.UTC(2026, 0, 1);
    for (const [user, s] of [['rls-a', sa], ['rls-b', sb]] as const) {
      await store.risk.setLimit({ userId: user, limitType: 'max_daily_loss', limitValue: '100' });
      await store.credentials.add({ userId: user, exchange: 'binance', apiKey: `k-${user}`, apiSecret: `s-${user}` });
      await store.apiKeys.create(user, ['read']);
      await store.strategies.update(s.id, { config: { changed: user } });
      const b = await store.backtests.create({ strategyId: s.id, name: 'b', symbols: ['TATA_INR'], startDate: new Date(start), endDate: new Date(start + 30 * 86_400_000), initialCapital: '1000' });
      await store.backtests.start(b.id);
      await store.backtests.addTrades(b.id, [{ symbol: 'TATA_INR', side: 'buy', quantity: '1', entryPrice: '100', exitPrice: '101', entryTime: start + 3_600_000, exitTime: start + 7_200_000 }], 0);
      await db.query(`INSERT INTO risk_events (user_id, event_type, severity, description) VALUES ($1, 'limit_breach', 'warning', 'test')`, [user]);
    }
    const at = Date.now() - 60_000;
    await ingest(db, new MemoryBus(), ['rls-a', 'rls-b'].flatMap((user, i) => [
      { type: 'BALANCE_UPDATE', data: { userId: user, asset: 'INR', availableChange: '1000', changeType: 'deposit' } },
      { type: 'ORDER_UPDATE', data: { orderId: `vo-${user}`, market: 'TATA_INR', side: 'buy', price: '100', quantity: '1', userId: user, timestamp: at } },
      { type: 'TRADE_ADDED', data: { market: 'TATA_INR', id: `vt-${user}`, price: '100', quantity: '1', isBuyerMaker: false, timestamp: at, buyerId: user, sellerId: 'rls-c' } },
      { type: 'FILL', data: { exchange: 'NSE', symbol: 'NIFTY', userId: user, orderId: `o-${user}`, tradeId: `t-${i}`, side: 'BUY', price: '24000', quantity: '1', timestamp: at } },
      { type: 'POSITION_UPDATE', data: { exchange: 'NSE', symbol: 'NIFTY', userId: user, quantity: '1', side: 'LONG', entryPrice: '24000', timestamp: at } },
      { type: 'EXCHANGE_ORDER', data: { event: 'placed', orderId: `eo-${user}`, userId: user, exchange: 'NSE', symbol: 'NIFTY', side: 'buy', orderType: 'limit', price: '24000', quantity: '1', timestamp: at } },
      { type: 'EXCHANGE_ORDER', data: { event: 'cancelled', orderId: `eo-${user}`, userId: user, timestamp: at + 1 } },
    ]));
    const rejects = (await db.query<{ reason: string }>(`SELECT reason FROM ingest_rejects`)).rows;
    assert.deepEqual(rejects, [], 'every event applied');
    // A role of this run that inherits the reader's policies and may read every table: what it
    // sees is what the policies let through, not what the grants happen to allow.
    const role = `tradestore_test_rls_${randomBytes(4).toString('hex')}`;
    await db.exec(`CREATE ROLE ${role} NOLOGIN IN ROLE ${ACCOUNT_READER_ROLE}; GRANT SELECT ON ALL TABLES IN SCHEMA public TO ${role}; GRANT ${role} TO CURRENT_USER`);
    try {
      const { rows: tables } = await db.query<{ table: string; user_column: boolean }>(
        `SELECT c.relname AS table, EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'user_id' AND NOT a.attisdropped) AS user_column
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public'
          WHERE c.relkind IN ('r', 'p') AND c.relrowsecurity ORDER BY 1`,
      );
      const parents: Record<string, [string, string]> = Object.fromEntries(THROUGH_A_PARENT.filter((t) => t !== 'order_history').map((t) => [t, t.startsWith('backtest') ? ['backtests', 'backtest_id'] : ['strategies', 'strategy_id']]));
      const asA = <T>(sql: string) => db.transaction(async (tx) => {
        await tx.query(`SELECT set_config('tradestore.user_id', 'rls-a', true)`);
        await tx.exec(`SET LOCAL ROLE ${role}`);
        return (await tx.query<T>(sql)).rows;
      });
      const seen: Record<string, number> = {};
      for (const { table, user_column } of tables) {
        let owners: string[];
        if (user_column) owners = (await asA<{ o: string | null }>(`SELECT user_id AS o FROM "${table}"`)).map((r) => r.o ?? '(none)');
        else if (table === 'users') owners = (await asA<{ o: string }>(`SELECT id AS o FROM users`)).map((r) => r.o);
        else if (table === 'order_history') {
          const visible = await asA<{ source: string; order_id: string; u: string | null }>(`SELECT source, order_id, details->>'userId' AS u FROM order_history`);
          const venue = await db.query<{ id: string; user_id: string }>(`SELECT id, user_id FROM orders WHERE id = ANY($1::text[])`, [visible.filter((v) => v.source === 'venue').map((v) => v.order_id)]);
          const ownerOf = new Map(venue.rows.map((r) => [r.id, r.user_id]));
          owners = visible.map((v) => (v.source === 'venue' ? ownerOf.get(v.order_id) ?? '(none)' : v.u ?? '(none)'));
        } else {
          const [parent, fk] = parents[table] ?? assert.fail(`${table}: no owner known to the test`);
          const keys = (await asA<{ k: string }>(`SELECT "${fk}"::text AS k FROM "${table}"`)).map((r) => r.k);
          const { rows } = await db.query<{ id: string; user_id: string | null }>(`SELECT id::text, user_id FROM "${parent}" WHERE id::text = ANY($1::text[])`, [keys]);
          const ownerOf = new Map(rows.map((r) => [r.id, r.user_id ?? '(none)']));
          owners = keys.map((k) => ownerOf.get(k) ?? '(none)');
        }
        assert.deepEqual([...new Set(owners)].filter((o) => o !== 'rls-a'), [], `${table}: rows of others visible to rls-a`);
        seen[table] = owners.length;
      }
      // Every table filled for both users shows user A's rows.
      for (const table of ['risk_limits', 'risk_events', 'backtests', 'backtest_trades', 'exchange_orders', 'exchange_connections', 'api_keys', 'trades_executed',
        'strategies', 'strategy_versions', 'balances', 'balance_history', 'orders', 'positions', 'users', 'order_history']) {
        assert.ok((seen[table] ?? 0) > 0, `${table}: user A's rows are visible`);
      }
    } finally {
      await db.exec(`REVOKE ${role} FROM CURRENT_USER; REVOKE SELECT ON ALL TABLES IN SCHEMA public FROM ${role}; DROP ROLE ${role}`);
    }
    // Through the repository: B's order is not there for A.
    assert.equal((await store.exchangeOrders.list({ userId: 'rls-a' })).items.length, 1);
    await assert.rejects(store.exchangeOrders.get('eo-rls-b', 'rls-a'), /unknown order/);
  });

  it('lets each policy through only by its owner: the expression of every policy is the one the migration wrote', async () => {
    const { rows } = await db.query<{ table: string; qual: string }>(
      `SELECT tablename AS table, qual FROM pg_policies WHERE schemaname = 'public' AND $1 = ANY (roles) ORDER BY 1, policyname`, [ACCOUNT_READER_ROLE],
    );
    const own = /^\(user_id = current_setting\('tradestore\.user_id'::text, true\)\)$/;
    const through = /^\(EXISTS \( SELECT 1\s+FROM (strategies|backtests) [ps]\s+WHERE \(\w\.id = \w+\.(strategy_id|backtest_id)\)\)\)$/;
    for (const { table, qual } of rows) {
      const q = qual.replace(/\s+/g, ' ');
      const ok = own.test(q) || through.test(qual.replace(/\s+/g, ' ').replace(/\( SELECT/, '( SELECT')) ||
        (table === 'users' && /^\(id = current_setting\('tradestore\.user_id'::text, true\)\)$/.test(q)) ||
        (table === 'order_history' && (/source\)::text = 'venue'.*EXISTS/.test(q) || /source\)::text = 'exchange'.*details ->> 'userId'.*current_setting/.test(q)));
      assert.ok(ok, `${table}: unexpected policy ${q}`);
    }
  });

  it('gives the admin reader every row of every table, and no way to change one', async () => {
    const { rows: missing } = await db.query<{ table: string }>(
      `SELECT c.relname AS table FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public'
        WHERE c.relrowsecurity AND NOT EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = c.oid AND $1::regrole::oid = ANY (p.polroles) AND p.polcmd = 'r')
        ORDER BY 1`, [ADMIN_READER_ROLE]);
    assert.deepEqual(missing.map((r) => r.table), [], 'row-level security tables without the admin reader\'s policy');
    const tables = (await db.query<{ t: string }>(`SELECT c.relname AS t FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public' WHERE c.relkind IN ('r', 'p') ORDER BY 1`)).rows.map((r) => r.t);
    const counts: Record<string, number> = {};
    await scopedDatabase(db, ADMIN_READER_ROLE, null).transaction(async (tx) => {
      for (const t of tables) counts[t] = Number((await tx.query<{ n: string }>(`SELECT count(*)::text AS n FROM "${t}"`)).rows[0]!.n);
    });
    const owner = (t: string) => db.query<{ n: string }>(`SELECT count(*)::text AS n FROM "${t}"`).then((r) => Number(r.rows[0]!.n));
    for (const t of ['users', 'strategies', 'risk_limits', 'exchange_connections', 'audit_log', 'api_keys']) assert.equal(counts[t], await owner(t), `${t}: every row`);
    await assert.rejects(scopedDatabase(db, ADMIN_READER_ROLE, null).query(`UPDATE users SET email = email`), /permission denied/);
    await assert.rejects(scopedDatabase(db, ADMIN_READER_ROLE, null).query(`DELETE FROM audit_log`), /permission denied/);
    // The API's scoped reads: user A's repositories find none of B's strategies, backtests, risk or audit rows.
    const a = store.readsAs({ userId: 'rls-a', admin: false });
    const bStrategy = (await store.strategies.list('rls-b'))[0]!;
    await assert.rejects(a.strategies.get(bStrategy.id), /unknown strategy/);
    assert.deepEqual((await a.backtests.list({})).map((b) => b.userId).filter((u) => u !== 'rls-a'), []);
    assert.deepEqual(await a.risk.events({ userId: 'rls-b' }), []);
    assert.deepEqual((await a.audit.list({ userId: 'rls-b' })), []);
    assert.ok((await store.readsAs({ userId: 'root', admin: true }).audit.list({ userId: 'rls-b' })).length > 0, 'the admin reader sees them');
  });

  it('lets the account writer change only the user\'s own strategies and backtests, and give none away', async () => {
    const writer = scopedDatabase(db, ACCOUNT_WRITER_ROLE, 'rls-a');
    const own = Number((await db.query<{ n: string }>(`SELECT count(*)::text AS n FROM strategies WHERE user_id = 'rls-a'`)).rows[0]!.n);
    // An UPDATE without its user filter changes the user's rows only.
    assert.equal((await writer.query(`UPDATE strategies SET description = 'touched'`)).rowCount, own);
    assert.equal((await db.query(`SELECT 1 FROM strategies WHERE description = 'touched' AND user_id <> 'rls-a'`)).rows.length, 0);
    assert.equal((await writer.query(`DELETE FROM backtests WHERE user_id = 'rls-b'`)).rowCount, 0);
    await assert.rejects(writer.query(`INSERT INTO strategies (name, user_id, symbols) VALUES ('planted', 'rls-b', ARRAY['TATA_INR'])`), /row-level security/);
    await assert.rejects(writer.query(`UPDATE strategies SET user_id = 'rls-b' WHERE user_id = 'rls-a'`), /row-level security/);
    await assert.rejects(writer.query(`INSERT INTO audit_log (user_id, action) VALUES ('rls-b', 'forged')`), /row-level security/);
    await assert.rejects(writer.query(`UPDATE risk_limits SET limit_value = 0`), /permission denied/);
    // Snapshots: a strategy's (no user_id of their own) are its owner's to read; none can be planted for B.
    const aStrategy = (await store.strategies.list('rls-a'))[0]!;
    const bOwn = (await store.strategies.list('rls-b'))[0]!;
    await db.query(`INSERT INTO portfolio_snapshots (strategy_id, snapshot_time, total_value, cash_balance) VALUES ($1, now(), 1, 1)`, [aStrategy.id]);
    const seen = async (user: string) => Number((await scopedDatabase(db, ACCOUNT_READER_ROLE, user).query<{ n: string }>(
      `SELECT count(*)::text AS n FROM portfolio_snapshots WHERE strategy_id = $1`, [aStrategy.id])).rows[0]!.n);
    assert.deepEqual([await seen('rls-a'), await seen('rls-b')], [1, 0]);
    for (const [strategyId, userId] of [[aStrategy.id, 'rls-b'], [bOwn.id, 'rls-a'], [bOwn.id, null]] as const) {
      await assert.rejects(writer.query(`INSERT INTO portfolio_snapshots (strategy_id, user_id, snapshot_time, total_value, cash_balance) VALUES ($1, $2, now(), 1, 1)`, [strategyId, userId]), /row-level security/, `${strategyId} ${userId}`);
    }
    assert.equal((await writer.query(`INSERT INTO portfolio_snapshots (strategy_id, user_id, snapshot_time, total_value, cash_balance) VALUES ($1, 'rls-a', now(), 1, 1)`, [aStrategy.id])).rowCount, 1);
    // Sessions and two-factor settings: the user's own only, and of users only those columns.
    assert.equal((await writer.query(`UPDATE user_sessions SET revoked_at = now() WHERE user_id = 'rls-b'`)).rowCount, 0);
    assert.equal((await writer.query(`UPDATE users SET two_factor_enabled = two_factor_enabled WHERE id = 'rls-b'`)).rowCount, 0);
    await assert.rejects(writer.query(`UPDATE users SET scopes = '{read,trade,admin}' WHERE id = 'rls-a'`), /permission denied/);
    await assert.rejects(writer.query(`UPDATE users SET is_active = true WHERE id = 'rls-a'`), /permission denied/);
    await assert.rejects(writer.query(`INSERT INTO user_recovery_codes (user_id, code_hash) VALUES ('rls-b', 'x')`), /row-level security/);
    // Through the repositories: A's writer finds none of B's strategies to change.
    const bStrategy = (await store.strategies.list('rls-b'))[0]!;
    await assert.rejects(store.writesAs('rls-a').strategies.update(bStrategy.id, { name: 'taken' }, 'rls-a', 'rls-a'), /unknown strategy/);
  });
}, { only: ['postgres'] });

eachBackend('row-level security on the embedded database too', (get) => {
  it('switches roles and enforces the policies there as on the server', async () => {
    const { db } = get();
    await migrate(db);
    await db.query(`INSERT INTO users (id, email) VALUES ('emb-a', 'a@emb.test'), ('emb-b', 'b@emb.test')`);
    await db.query(`INSERT INTO strategies (id, user_id, name, symbols) VALUES ('emb-sa', 'emb-a', 'a', ARRAY['X']), ('emb-sb', 'emb-b', 'b', ARRAY['X'])`);
    assert.equal(db.capabilities.rowLevelSecurity, true);
    const seen = await scopedDatabase(db, ACCOUNT_READER_ROLE, 'emb-a').query<{ id: string }>(`SELECT id FROM strategies`);
    assert.deepEqual(seen.rows.map((r) => r.id), ['emb-sa']);
    await assert.rejects(scopedDatabase(db, ADMIN_READER_ROLE, null).query(`DELETE FROM users WHERE id = 'emb-b'`), /permission denied/);
  });
}, { only: ['embedded'] });
