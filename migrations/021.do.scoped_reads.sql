-- 021 every read of the API, and its account writes, under a role of row-level security
-- (docs/SECURITY.md).
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

-- A strategy's snapshots are its owner's whatever their own user_id (the service's and an
-- engine's snapshots of a strategy carry none): the strategy's policy applies inside the EXISTS.
CREATE POLICY account_owner_strategy ON portfolio_snapshots FOR SELECT TO tradestore_account_reader
    USING (EXISTS (SELECT 1 FROM strategies s WHERE s.id = portfolio_snapshots.strategy_id));

-- The two new roles, made when missing (roles belong to the server, as in migration 007), and
-- the connecting role made able to switch to them.
DO $$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['tradestore_admin_reader', 'tradestore_account_writer'] LOOP
        BEGIN
            EXECUTE format('CREATE ROLE %I NOLOGIN', r);
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;
        END;
        BEGIN
            EXECUTE format('GRANT %I TO %I', r, current_user);
        EXCEPTION WHEN OTHERS THEN
            NULL;
        END;
    END LOOP;
END $$;

GRANT USAGE ON SCHEMA public TO tradestore_admin_reader;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO tradestore_admin_reader;
-- Tables later migrations create (as this role) are readable by it too.
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO tradestore_admin_reader;
DO $$
DECLARE
    t text;
BEGIN
    FOR t IN SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE n.nspname = current_schema() AND c.relrowsecurity ORDER BY 1 LOOP
        EXECUTE format('CREATE POLICY admin_reader ON %I FOR SELECT TO tradestore_admin_reader USING (true)', t);
    END LOOP;
END $$;

-- The account writer: the API's changes of a user's own strategies (their versions, their own
-- snapshots rebased when the capital changes) and backtests, their sessions ended and their
-- two-factor settings, and their audit rows, run as it with the user set. It sees and changes
-- only the user's rows; a row it writes must be the user's (WITH CHECK), so a change that picked
-- another user's row, or gave one away, fails.
GRANT USAGE ON SCHEMA public TO tradestore_account_writer;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO tradestore_account_writer;
GRANT SELECT, INSERT, UPDATE, DELETE ON strategies, strategy_versions, portfolio_snapshots, backtests TO tradestore_account_writer;
GRANT SELECT ON strategy_trades, strategy_trades_archive, backtest_results, markets, instruments TO tradestore_account_writer;
GRANT INSERT ON audit_log TO tradestore_account_writer;
-- Their own sessions ended (logout) and two-factor settings changed: of users only those columns.
GRANT SELECT ON users, user_sessions TO tradestore_account_writer;
GRANT UPDATE (two_factor_enabled, totp_secret, totp_last_step, updated_at) ON users TO tradestore_account_writer;
GRANT UPDATE (revoked_at, revoked_reason) ON user_sessions TO tradestore_account_writer;
GRANT SELECT, INSERT, UPDATE, DELETE ON user_recovery_codes TO tradestore_account_writer;
CREATE POLICY account_writer ON users FOR ALL TO tradestore_account_writer
    USING (id = current_setting('tradestore.user_id', true)) WITH CHECK (id = current_setting('tradestore.user_id', true));
CREATE POLICY account_writer ON user_sessions FOR ALL TO tradestore_account_writer
    USING (user_id = current_setting('tradestore.user_id', true)) WITH CHECK (user_id = current_setting('tradestore.user_id', true));
CREATE POLICY account_writer ON user_recovery_codes FOR ALL TO tradestore_account_writer
    USING (user_id = current_setting('tradestore.user_id', true)) WITH CHECK (user_id = current_setting('tradestore.user_id', true));

CREATE POLICY account_writer ON strategies FOR ALL TO tradestore_account_writer
    USING (user_id = current_setting('tradestore.user_id', true)) WITH CHECK (user_id = current_setting('tradestore.user_id', true));
CREATE POLICY account_writer ON backtests FOR ALL TO tradestore_account_writer
    USING (user_id = current_setting('tradestore.user_id', true)) WITH CHECK (user_id = current_setting('tradestore.user_id', true));
CREATE POLICY account_writer ON audit_log FOR INSERT TO tradestore_account_writer
    WITH CHECK (user_id = current_setting('tradestore.user_id', true));
-- Through the strategy (its own policy applies inside the EXISTS): only the user's strategies'.
CREATE POLICY account_writer ON strategy_versions FOR ALL TO tradestore_account_writer
    USING (EXISTS (SELECT 1 FROM strategies s WHERE s.id = strategy_versions.strategy_id))
    WITH CHECK (EXISTS (SELECT 1 FROM strategies s WHERE s.id = strategy_versions.strategy_id));
-- A snapshot it writes names no other user and no other user's strategy, and at least one of the user or their strategy.
CREATE POLICY account_writer ON portfolio_snapshots FOR ALL TO tradestore_account_writer
    USING (user_id = current_setting('tradestore.user_id', true) OR EXISTS (SELECT 1 FROM strategies s WHERE s.id = portfolio_snapshots.strategy_id))
    WITH CHECK ((user_id IS NULL OR user_id = current_setting('tradestore.user_id', true))
                AND (strategy_id IS NULL OR EXISTS (SELECT 1 FROM strategies s WHERE s.id = portfolio_snapshots.strategy_id))
                AND (user_id IS NOT NULL OR strategy_id IS NOT NULL));
CREATE POLICY account_writer ON strategy_trades FOR SELECT TO tradestore_account_writer
    USING (EXISTS (SELECT 1 FROM strategies s WHERE s.id = strategy_trades.strategy_id));
CREATE POLICY account_writer ON strategy_trades_archive FOR SELECT TO tradestore_account_writer
    USING (EXISTS (SELECT 1 FROM strategies s WHERE s.id = strategy_trades_archive.strategy_id));
CREATE POLICY account_writer ON backtest_results FOR SELECT TO tradestore_account_writer
    USING (EXISTS (SELECT 1 FROM backtests b WHERE b.id = backtest_results.backtest_id));
