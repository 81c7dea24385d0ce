import { before, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { MemoryBus } from '../src/bus/memory.ts';
import type { Database } from '../src/database/types.ts';
import { migrate } from '../src/schema/migrator.ts';
import { seed } from '../src/schema/seed.ts';
import { keyring } from '../src/security/keyring.ts';
import { ACCOUNT_READER_ROLE, readAsUser } from '../src/store/account.ts';
import { storeOver, type Store } from '../src/store/store.ts';
import { eachBackend } from './helpers/backends.ts';
import { ingest } from './helpers/ingest.ts';

/** Tables whose rows are a user's through a parent (a strategy, a backtest, an order) rather than a user_id column. */
const THROUGH_A_PARENT = [
  'order_history', 'strategy_trades', 'strategy_versions', 'strategy_metrics', 'strategy_performance', 'performance_metrics',
  'strategy_trades_archive', 'backtest_results', 'backtest_trades', 'backtest_chunks', 'backtest_equity',
];

// Row-level security needs roles, which the embedded database does not enforce: the server only.
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

  it("shows user A none of user B's rows in any of them, as the account reader", async () => {
    // Rows of both users in the tables the API reads as a user, through the real paths.
    const strategy = (user: string) => store.strategies.create({ name: `s-${user}`, symbols: ['TATA_INR'], userId: user });
    const [sa, sb] = [await strategy('rls-a'), await strategy('rls-b')];
    for (const [user, s] of [['rls-a', sa], ['rls-b', sb]] as const) {
      await store.risk.setLimit({ userId: user, limitType: 'max_daily_loss', limitValue: '100' });
      await store.credentials.add({ userId: user, exchange: 'binance', apiKey: `k-${user}`, apiSecret: `s-${user}` });
      await store.apiKeys.create(user, ['read']);
      await store.backtests.create({ strategyId: s.id, name: 'b', symbols: ['TATA_INR'], startDate: new Date(Date.UTC(2026, 0, 1)), endDate: new Date(Date.UTC(2026, 1, 1)), initialCapital: '1000' });
    }
    const at = Date.now() - 60_000;
    await ingest(db, new MemoryBus(), ['rls-a', 'rls-b'].flatMap((user, i) => [
      { type: 'FILL', data: { exchange: 'NSE', symbol: 'NIFTY', userId: user, orderId: `o-${user}`, tradeId: `t-${i}`, side: 'BUY', price: '24000', quantity: '1', timestamp: at } },
      { type: 'EXCHANGE_ORDER', data: { event: 'placed', orderId: `eo-${user}`, userId: user, exchange: 'NSE', symbol: 'NIFTY', side: 'buy', orderType: 'limit', price: '24000', quantity: '1', timestamp: at } },
      { type: 'EXCHANGE_ORDER', data: { event: 'cancelled', orderId: `eo-${user}`, userId: user, timestamp: at + 1 } },
    ]));
    assert.deepEqual((await db.query(`SELECT count(*)::int AS n FROM ingest_rejects`)).rows, [{ n: 0 }], 'every event applied');
    const { rows: tables } = await db.query<{ table: string; column: string | null }>(
      `SELECT c.relname AS table, CASE WHEN EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'user_id' AND NOT a.attisdropped) THEN 'user_id' END AS column
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public'
        WHERE c.relkind IN ('r', 'p') AND c.relrowsecurity ORDER BY 1`,
    );
    const seen: Record<string, number> = {};
    for (const { table, column } of tables) {
      const owners = await readAsUser(db, 'rls-a', async (q) => {
        try {
          const { rows } = await q.query<{ owner: string | null; n: number }>(
            column ? `SELECT user_id AS owner, count(*)::int AS n FROM "${table}" GROUP BY 1` : `SELECT NULL AS owner, count(*)::int AS n FROM "${table}"`,
          );
          return rows;
        } catch (error) {
          // No SELECT for the reader at all (read only as the owner): nothing to see either.
          if ((error as { code?: string }).code === '42501') return [];
          throw error;
        }
      });
      for (const o of owners) if (column) assert.equal(o.owner, 'rls-a', `${table}: a row of ${o.owner} is visible to rls-a`);
      seen[table] = owners.reduce((s, o) => s + o.n, 0);
    }
    // The tables filled for both users show user A's rows, and only those.
    for (const table of ['risk_limits', 'backtests', 'exchange_orders', 'trades_executed', 'strategies']) assert.equal(seen[table], 1, table);
    const history = await readAsUser(db, 'rls-a', (q) => q.query<{ order_id: string }>(`SELECT DISTINCT order_id FROM order_history WHERE source = 'exchange'`));
    assert.deepEqual(history.rows.map((r) => r.order_id), ['eo-rls-a']);
    // Through the repository: B's order is not there for A.
    assert.equal((await store.exchangeOrders.list({ userId: 'rls-a' })).items.length, 1);
    await assert.rejects(store.exchangeOrders.get('eo-rls-b', 'rls-a'), /unknown order/);
  });
}, { only: ['postgres'] });
