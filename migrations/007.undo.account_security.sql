DROP POLICY IF EXISTS account_owner ON strategy_trades;
DROP POLICY IF EXISTS account_owner ON strategies;
DROP POLICY IF EXISTS account_owner ON positions;
DROP POLICY IF EXISTS account_owner ON balance_history;
DROP POLICY IF EXISTS account_owner ON balances;
DROP POLICY IF EXISTS account_owner ON order_history;
DROP POLICY IF EXISTS account_owner ON orders;
ALTER TABLE strategy_trades DISABLE ROW LEVEL SECURITY;
ALTER TABLE strategies DISABLE ROW LEVEL SECURITY;
ALTER TABLE positions DISABLE ROW LEVEL SECURITY;
ALTER TABLE balance_history DISABLE ROW LEVEL SECURITY;
ALTER TABLE balances DISABLE ROW LEVEL SECURITY;
ALTER TABLE order_history DISABLE ROW LEVEL SECURITY;
ALTER TABLE orders DISABLE ROW LEVEL SECURITY;
REVOKE ALL ON orders, order_history, balances, balance_history, positions, strategies, strategy_trades, markets
    FROM tradestore_account_reader;
REVOKE USAGE ON SCHEMA public FROM tradestore_account_reader;
DROP INDEX IF EXISTS idx_api_keys_prefix;
