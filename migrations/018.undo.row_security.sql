REVOKE SELECT ON exchange_orders, exchange_orders_p0, exchange_orders_p1, exchange_orders_p2, exchange_orders_p3 FROM tradestore_account_reader;
DROP POLICY IF EXISTS account_owner_exchange ON order_history;
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY[
    'accounts', 'api_keys', 'api_usage', 'audit_log', 'backtests', 'exchange_connections', 'exchange_orders',
    'exchange_orders_p0', 'exchange_orders_p1', 'exchange_orders_p2', 'exchange_orders_p3', 'pending_fee_charges',
    'portfolio_snapshots', 'risk_events', 'risk_limits', 'system_logs', 'trades_executed', 'user_sessions',
    'strategy_versions', 'strategy_metrics', 'strategy_performance', 'performance_metrics', 'strategy_trades_archive',
    'backtest_results', 'backtest_trades', 'backtest_chunks', 'backtest_equity', 'users'
    ] LOOP
        EXECUTE format('DROP POLICY IF EXISTS account_owner ON %I', t);
        EXECUTE format('ALTER TABLE %I DISABLE ROW LEVEL SECURITY', t);
    END LOOP;
END $$;
