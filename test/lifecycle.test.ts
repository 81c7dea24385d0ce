import { before, it } from 'node:test';
import assert from 'node:assert/strict';
import { migrate } from '../src/schema/migrator.ts';
import { seed } from '../src/schema/seed.ts';
import { AGGREGATES, COMPRESSION, RETENTION, applyLifecycle } from '../src/schema/lifecycle.ts';
import { refreshAggregates, runTimescaleJobs } from '../src/schema/maintenance.ts';
import { runMaintenanceJobs } from '../src/schema/maintenanceJobs.ts';
import { eachBackend } from './helpers/backends.ts';

const HYPERTABLES: Record<string, [string, string]> = {
  trades: ['executed_at', '1 day'],
  balance_history: ['created_at', '7 days'],
  ohlcv_1m: ['open_time', '1 day'],
  ohlcv_5m: ['open_time', '7 days'],
  ohlcv_15m: ['open_time', '7 days'],
  ohlcv_1h: ['open_time', '30 days'],
  ohlcv_4h: ['open_time', '30 days'],
  ohlcv_1d: ['open_time', '360 days'], // TimescaleDB stores '1 year' as 12 × 30 days
  audit_log: ['created_at', '30 days'],
  market_data: ['timestamp', '1 day'],
  market_trades: ['time', '01:00:00'],
  order_book_snapshots: ['timestamp', '01:00:00'],
  order_history: ['timestamp', '30 days'],
  trades_executed: ['executed_at', '1 day'],
  portfolio_snapshots: ['snapshot_time', '7 days'],
  strategy_performance: ['timestamp', '1 day'],
  performance_metrics: ['time', '7 days'],
  risk_events: ['triggered_at', '1 day'],
  backtest_trades: ['entry_time', '30 days'],
  predictions: ['timestamp', '1 day'],
  technical_indicators: ['timestamp', '1 day'],
  system_logs: ['timestamp', '1 day'],
  api_usage: ['timestamp', '1 day'],
};

eachBackend(
  'TimescaleDB lifecycle',
  (get) => {
    before(async () => {
      await migrate(get().db);
    });

    it('creates every hypertable on its time column with the seeds\' chunk interval', async () => {
      const { rows } = await get().db.query<{ hypertable_name: string; column_name: string; interval: string }>(
        `SELECT hypertable_name, column_name, time_interval::text AS interval FROM timescaledb_information.dimensions
          WHERE hypertable_schema = 'public' ORDER BY hypertable_name`,
      );
      const actual = Object.fromEntries(rows.map((r) => [r.hypertable_name, [r.column_name, r.interval]]));
      for (const [table, expected] of Object.entries(HYPERTABLES)) assert.deepEqual(actual[table], expected, table);
    });

    it('sets compression with the configured segmenting and a compression policy', async () => {
      const { db } = get();
      for (const rule of COMPRESSION) {
        const { rows } = await db.query<{ attname: string }>(
          `SELECT attname FROM timescaledb_information.compression_settings
            WHERE hypertable_name = $1 AND segmentby_column_index IS NOT NULL ORDER BY segmentby_column_index`,
          [rule.table],
        );
        assert.deepEqual(rows.map((r) => r.attname), [...rule.segmentBy], rule.table);
        const job = await db.query<{ after: boolean }>(
          `SELECT (config->>'compress_after')::interval = $2::interval AS after FROM timescaledb_information.jobs
            WHERE proc_name = 'policy_compression' AND hypertable_name = $1`,
          [rule.table, rule.after],
        );
        assert.equal(job.rows[0]?.after, true, `compression policy for ${rule.table}`);
      }
    });

    it('has a retention policy for each hypertable rule and refresh policies for both continuous aggregates', async () => {
      const { db } = get();
      for (const rule of RETENTION.filter((r) => r.table in HYPERTABLES && !r.where)) {
        const { rows } = await db.query<{ ok: boolean }>(
          `SELECT (config->>'drop_after')::interval = $2::interval AS ok FROM timescaledb_information.jobs
            WHERE proc_name = 'policy_retention' AND hypertable_name = $1`,
          [rule.table, rule.keep],
        );
        assert.equal(rows[0]?.ok, true, `retention policy for ${rule.table}`);
      }
      const caggs = await db.query<{ view_name: string }>(
        `SELECT view_name FROM timescaledb_information.continuous_aggregates ORDER BY view_name`,
      );
      assert.deepEqual(caggs.rows.map((r) => r.view_name), AGGREGATES.map((a) => a.view).sort());
      const refresh = await db.query<{ n: string }>(
        `SELECT count(*) AS n FROM timescaledb_information.jobs WHERE proc_name = 'policy_refresh_continuous_aggregate'`,
      );
      assert.equal(refresh.rows[0]?.n, String(AGGREGATES.length));
    });

    it('re-applying the lifecycle changes nothing', async () => {
      const { db } = get();
      const before = await db.query(`SELECT job_id FROM timescaledb_information.jobs ORDER BY job_id`);
      await applyLifecycle(db);
      const after = await db.query(`SELECT job_id FROM timescaledb_information.jobs ORDER BY job_id`);
      assert.deepEqual(after.rows, before.rows);
    });
  },
  { only: ['embedded'] },
);

// The same lifecycle on both kinds of database: TimescaleDB policy jobs (run by the service
// where no scheduler runs them), or the service's own deletes and refreshes on plain PostgreSQL.
eachBackend('maintenance', (get) => {
  before(async () => {
    const { db } = get();
    await migrate(db);
    await seed(db);
    await db.exec(`
      INSERT INTO trades (id, market, price, quantity, is_buyer_maker, executed_at) VALUES
        ('old-1', 'TATA_INR', 100, 1, true, now() - interval '3 years'),
        ('new-1', 'TATA_INR', 100, '1.5', true, now() - interval '5 hours'),
        ('new-2', 'TATA_INR', 104, '0.5', false, now() - interval '5 hours' + interval '1 minute'),
        ('new-3', 'HDFC_INR', 10, 2, false, now() - interval '4 hours');
      INSERT INTO system_logs (timestamp, level, category, message) VALUES
        (now() - interval '2 years', 'info', 'test', 'old'), (now(), 'info', 'test', 'new');
      INSERT INTO users (id, email) VALUES ('u1', 'u1@example.com');
      INSERT INTO user_sessions (user_id, token_hash, expires_at, created_at) VALUES
        ('u1', 'old', now() - interval '40 days', now() - interval '41 days'), ('u1', 'new', now() + interval '1 day', now());
      INSERT INTO positions (exchange, symbol, side, quantity, entry_price, status, opened_at, closed_at) VALUES
        ('NSE', 'NIFTY', 'long', 1, 1, 'closed', now() - interval '9 years', now() - interval '8 years'),
        ('NSE', 'NIFTY', 'long', 1, 1, 'closed', now() - interval '2 years', now() - interval '1 year');
      INSERT INTO strategy_trades (id, strategy_id, symbol, side, entry_price, quantity, status, entry_time, exit_time) VALUES
        ('st-old', 'ema_crossover', 'NIFTY', 'buy', 1, 1, 'closed', now() - interval '3 years', now() - interval '3 years'),
        ('st-open', 'ema_crossover', 'NIFTY', 'buy', 1, 1, 'open', now() - interval '3 years', NULL),
        ('st-new', 'ema_crossover', 'NIFTY', 'buy', 1, 1, 'closed', now() - interval '1 day', now());
    `);
  });

  it('enforces retention: old rows go, recent rows stay', async () => {
    const { db } = get();
    await runMaintenanceJobs(db, { force: true });
    // Where TimescaleDB's scheduler runs the policies, it would on its own schedule; the test runs them now.
    if (db.capabilities.jobScheduler) await runTimescaleJobs(db);
    const trades = await db.query<{ id: string }>(`SELECT id FROM trades ORDER BY id`);
    assert.deepEqual(trades.rows.map((r) => r.id), ['new-1', 'new-2', 'new-3']);
    const logs = await db.query<{ message: string }>(`SELECT message FROM system_logs`);
    assert.deepEqual(logs.rows.map((r) => r.message), ['new']);
    const sessions = await db.query<{ token_hash: string }>(`SELECT token_hash FROM user_sessions`);
    assert.deepEqual(sessions.rows.map((r) => r.token_hash), ['new']);
    const positions = await db.query<{ n: string }>(`SELECT count(*) AS n FROM positions`);
    assert.equal(positions.rows[0]!.n, '1');
  });

  it('archives closed strategy round trips older than two years', async () => {
    const { db } = get();
    const live = await db.query<{ id: string }>(`SELECT id FROM strategy_trades ORDER BY id`);
    assert.deepEqual(live.rows.map((r) => r.id), ['st-new', 'st-open']);
    const archived = await db.query<{ id: string }>(`SELECT id FROM strategy_trades_archive`);
    assert.deepEqual(archived.rows.map((r) => r.id), ['st-old']);
  });

  it('refreshes the hourly trade summary to what the trades say', async () => {
    const { db } = get();
    await refreshAggregates(db);
    const { rows } = await db.query<{ market: string; trade_count: string; volume: string; quote_volume: string; max_price: string }>(
      `SELECT market, trade_count, volume::text, quote_volume::text, max_price::text FROM trades_hourly_summary ORDER BY market, hour`,
    );
    const expected = await db.query(
      `SELECT market, count(*)::text AS trade_count, sum(quantity)::text AS volume, sum(quote_quantity)::text AS quote_volume,
              max(price)::text AS max_price
         FROM trades WHERE executed_at < now() - interval '1 hour'
        GROUP BY market, date_bin('1 hour', executed_at, '2000-01-01Z') ORDER BY market, date_bin('1 hour', executed_at, '2000-01-01Z')`,
    );
    assert.ok(rows.length >= 2);
    assert.deepEqual(rows.map((r) => ({ ...r, trade_count: String(r.trade_count) })), expected.rows);
  });
});
