-- 007 account security: row-level security on the rows that belong to one user.
--
-- The API reads account data as the role tradestore_account_reader, inside a transaction that
-- sets tradestore.user_id to the API key's user (src/store/account.ts). The policies below let
-- that role see only that user's rows, so a query that forgot its user filter still returns
-- nothing of anyone else. The ingest service and the CLI keep the connecting role, which owns
-- the tables and is not subject to these policies.
--
-- Roles belong to the whole server, not to one database: the role is created when missing and
-- left in place by the undo migration (other databases on the server may use it).
DO $$
BEGIN
    CREATE ROLE tradestore_account_reader NOLOGIN;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;
END $$;
CREATE INDEX idx_api_keys_prefix ON api_keys (key_prefix);

-- The connecting role must be able to switch to it (a superuser always can).
DO $$
BEGIN
    EXECUTE format('GRANT tradestore_account_reader TO %I', current_user);
EXCEPTION WHEN OTHERS THEN
    NULL;
END $$;

GRANT USAGE ON SCHEMA public TO tradestore_account_reader;
GRANT SELECT ON orders, order_history, balances, balance_history, positions, strategies, strategy_trades, markets
    TO tradestore_account_reader;

ALTER TABLE orders ENABLE ROW LEVEL SECURITY;
CREATE POLICY account_owner ON orders FOR SELECT TO tradestore_account_reader
    USING (user_id = current_setting('tradestore.user_id', true));
ALTER TABLE order_history ENABLE ROW LEVEL SECURITY;
CREATE POLICY account_owner ON order_history FOR SELECT TO tradestore_account_reader
    USING (source = 'venue' AND EXISTS (SELECT 1 FROM orders o WHERE o.id = order_history.order_id));
ALTER TABLE balances ENABLE ROW LEVEL SECURITY;
CREATE POLICY account_owner ON balances FOR SELECT TO tradestore_account_reader
    USING (user_id = current_setting('tradestore.user_id', true));
ALTER TABLE balance_history ENABLE ROW LEVEL SECURITY;
CREATE POLICY account_owner ON balance_history FOR SELECT TO tradestore_account_reader
    USING (user_id = current_setting('tradestore.user_id', true));
ALTER TABLE positions ENABLE ROW LEVEL SECURITY;
CREATE POLICY account_owner ON positions FOR SELECT TO tradestore_account_reader
    USING (user_id = current_setting('tradestore.user_id', true));
ALTER TABLE strategies ENABLE ROW LEVEL SECURITY;
CREATE POLICY account_owner ON strategies FOR SELECT TO tradestore_account_reader
    USING (user_id = current_setting('tradestore.user_id', true));
ALTER TABLE strategy_trades ENABLE ROW LEVEL SECURITY;
CREATE POLICY account_owner ON strategy_trades FOR SELECT TO tradestore_account_reader
    USING (EXISTS (SELECT 1 FROM strategies s WHERE s.id = strategy_trades.strategy_id));
