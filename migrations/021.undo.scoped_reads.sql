DO $$
DECLARE
    t text;
    p text;
BEGIN
    FOR t, p IN SELECT c.relname, pol.polname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_policy pol ON pol.polrelid = c.oid
              WHERE n.nspname = current_schema() AND pol.polname IN ('account_writer', 'admin_reader', 'account_owner_strategy') LOOP
        EXECUTE format('DROP POLICY %I ON %I', p, t);
    END LOOP;
END $$;
REVOKE ALL ON strategies, strategy_versions, portfolio_snapshots, backtests, strategy_trades, strategy_trades_archive, backtest_results, markets, instruments, audit_log,
    users, user_sessions, user_recovery_codes
    FROM tradestore_account_writer;
REVOKE USAGE ON ALL SEQUENCES IN SCHEMA public FROM tradestore_account_writer;
REVOKE USAGE ON SCHEMA public FROM tradestore_account_writer;
ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE SELECT ON TABLES FROM tradestore_admin_reader;
REVOKE SELECT ON ALL TABLES IN SCHEMA public FROM tradestore_admin_reader;
REVOKE USAGE ON SCHEMA public FROM tradestore_admin_reader;
REVOKE SELECT ON strategy_versions, strategy_metrics, strategy_performance, strategy_trades_archive, portfolio_snapshots,
    backtests, backtest_results, backtest_trades, backtest_equity, backtest_chunks, risk_limits, risk_events,
    user_sessions, audit_log, instruments, market_data, market_trades, ohlcv_1m, ohlcv_1d
    FROM tradestore_account_reader;
