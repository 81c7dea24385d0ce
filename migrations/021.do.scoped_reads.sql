-- 021 every read of the API under a role of row-level security (docs/SECURITY.md).
--
-- The account reader (migration 007) also reads a user's strategies with their versions,
-- metrics and equity, backtests with their results, risk limits and events, sessions and audit
-- rows, each under the policies of migration 018, and the public market and reference data
-- the analytics compare against. The admin reader reads every table (a policy that shows it
-- every row where there is row-level security) and can change nothing: the API's admin reads
-- run as it.
GRANT SELECT ON strategy_versions, strategy_metrics, strategy_performance, strategy_trades_archive, portfolio_snapshots,
    backtests, backtest_results, backtest_trades, backtest_equity, backtest_chunks, risk_limits, risk_events,
    user_sessions, audit_log, instruments, market_data, market_trades, ohlcv_1m, ohlcv_1d
    TO tradestore_account_reader;

DO $$
BEGIN
    CREATE ROLE tradestore_admin_reader NOLOGIN;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;
END $$;
DO $$
BEGIN
    EXECUTE format('GRANT tradestore_admin_reader TO %I', current_user);
EXCEPTION WHEN OTHERS THEN
    NULL;
END $$;
GRANT USAGE ON SCHEMA public TO tradestore_admin_reader;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO tradestore_admin_reader;
DO $$
DECLARE
    t text;
BEGIN
    FOR t IN SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE n.nspname = current_schema() AND c.relrowsecurity ORDER BY 1 LOOP
        EXECUTE format('CREATE POLICY admin_reader ON %I FOR SELECT TO tradestore_admin_reader USING (true)', t);
    END LOOP;
END $$;
