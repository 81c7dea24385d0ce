-- 018 row-level security on every table that holds a user's rows (docs/SECURITY.md), as
-- migration 007 began: the role tradestore_account_reader, with tradestore.user_id set to the
-- caller, sees only that user's rows. Tables with a user_id column are the user's by it; the
-- rows of a strategy or a backtest are the user's through it (the parent's own policy applies
-- inside the EXISTS); a users row is its user's. Only
-- the owner role writes; these policies are for reads, and the role is granted SELECT only where
-- the API reads as the user (migration 007's tables, and exchange orders here).
DO $$
DECLARE
    t text;
    child text[];
BEGIN
    FOREACH t IN ARRAY ARRAY[
        'accounts', 'api_keys', 'api_usage', 'audit_log', 'backtests', 'exchange_connections', 'exchange_orders',
        'exchange_orders_p0', 'exchange_orders_p1', 'exchange_orders_p2', 'exchange_orders_p3', 'pending_fee_charges',
        'portfolio_snapshots', 'risk_events', 'risk_limits', 'system_logs', 'trades_executed', 'user_sessions'
    ] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY account_owner ON %I FOR SELECT TO tradestore_account_reader '
                       'USING (user_id = current_setting(''tradestore.user_id'', true))', t);
    END LOOP;
    FOREACH child SLICE 1 IN ARRAY ARRAY[
        ['strategy_versions', 'strategies', 'strategy_id'], ['strategy_metrics', 'strategies', 'strategy_id'],
        ['strategy_performance', 'strategies', 'strategy_id'], ['performance_metrics', 'strategies', 'strategy_id'],
        ['strategy_trades_archive', 'strategies', 'strategy_id'], ['backtest_results', 'backtests', 'backtest_id'],
        ['backtest_trades', 'backtests', 'backtest_id'], ['backtest_chunks', 'backtests', 'backtest_id'],
        ['backtest_equity', 'backtests', 'backtest_id']
    ] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', child[1]);
        EXECUTE format('CREATE POLICY account_owner ON %I FOR SELECT TO tradestore_account_reader '
                       'USING (EXISTS (SELECT 1 FROM %I p WHERE p.id = %I.%I))', child[1], child[2], child[1], child[3]);
    END LOOP;
END $$;

-- Not the venue's trades: TimescaleDB's compression (columnstore) cannot be used on a table with
-- row security, and they are compressed after 30 days (lifecycle.ts). They are public market data;
-- a user's own are read with the user filter (docs/SECURITY.md).
ALTER TABLE users ENABLE ROW LEVEL SECURITY;
CREATE POLICY account_owner ON users FOR SELECT TO tradestore_account_reader
    USING (id = current_setting('tradestore.user_id', true));

-- An exchange order's transitions carry its user (order_history.details->>'userId').
CREATE POLICY account_owner_exchange ON order_history FOR SELECT TO tradestore_account_reader
    USING (source = 'exchange' AND details->>'userId' = current_setting('tradestore.user_id', true));

GRANT SELECT ON exchange_orders, exchange_orders_p0, exchange_orders_p1, exchange_orders_p2, exchange_orders_p3 TO tradestore_account_reader;
