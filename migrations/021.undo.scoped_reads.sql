DROP POLICY IF EXISTS account_owner_strategy ON portfolio_snapshots;
DO $$
DECLARE
    t text;
BEGIN
    FOR t IN SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_policy p ON p.polrelid = c.oid
              WHERE n.nspname = current_schema() AND p.polname = 'account_writer' LOOP
        EXECUTE format('DROP POLICY account_writer ON %I', t);
    END LOOP;
END $$;
REVOKE ALL ON strategies, strategy_versions, portfolio_snapshots, backtests, strategy_trades, strategy_trades_archive, backtest_results, markets, instruments, audit_log,
    users, user_sessions, user_recovery_codes
    FROM tradestore_account_writer;
REVOKE USAGE ON ALL SEQUENCES IN SCHEMA public FROM tradestore_account_writer;
REVOKE USAGE ON SCHEMA public FROM tradestore_account_writer;
DO $$
DECLARE
    t text;
BEGIN
    FOR t IN SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_policy p ON p.polrelid = c.oid
              WHERE n.nspname = current_schema() AND p.polname = 'admin_reader' LOOP
        EXECUTE format('DROP POLICY admin_reader ON %I', t);
    END LOOP;
END $$;
ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE SELECT ON TABLES FROM tradestore_admin_reader;
REVOKE SELECT ON ALL TABLES IN SCHEMA public FROM tradestore_admin_reader;
REVOKE USAGE ON SCHEMA public FROM tradestore_admin_reader;
REVOKE SELECT ON strategy_versions, strategy_metrics, strategy_performance, strategy_trades_archive, portfolio_snapshots,
    backtests, backtest_results, backtest_trades, backtest_equity, backtest_chunks, risk_limits, risk_events,
    user_sessions, audit_log, instruments, market_data, market_trades, ohlcv_1m, ohlcv_1d
    FROM tradestore_account_reader;
