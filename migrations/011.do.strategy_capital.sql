-- A strategy's starting capital, and the running peak of its realized equity (initial capital plus
-- the P&L of its closed round trips) from which ingest keeps max_drawdown on every close.
-- max_drawdown is a fraction <= 0 (empyrical's sign, docs/ANALYTICS.md), and NULL while the
-- strategy has no initial capital: a drawdown needs something to fall from.
ALTER TABLE strategies ADD COLUMN initial_capital NUMERIC CONSTRAINT strategies_initial_capital_check CHECK (initial_capital > 0);
ALTER TABLE strategies ADD COLUMN peak_equity NUMERIC;
ALTER TABLE strategies ALTER COLUMN max_drawdown DROP NOT NULL;
ALTER TABLE strategies ALTER COLUMN max_drawdown DROP DEFAULT;
-- Nothing computed the counter before: 0 was its default. A value set by hand is kept, with the
-- sign of a fall (seed 002 stored its magnitude).
UPDATE strategies SET max_drawdown = CASE WHEN max_drawdown = 0 THEN NULL ELSE -abs(max_drawdown) END;
ALTER TABLE strategies ADD CONSTRAINT strategies_max_drawdown_check CHECK (max_drawdown <= 0);

-- The service's own portfolio snapshots are marked metadata.source = 'tradestore'; a producer's
-- snapshot of the same day wins in the equity curve. Day-end snapshots are found by this index.
CREATE INDEX idx_portfolio_snapshots_user_time ON portfolio_snapshots (user_id, snapshot_time DESC) WHERE user_id IS NOT NULL;

-- strategy_metrics: a metric the data cannot support is NULL (docs/ANALYTICS.md), never a made-up
-- 0, as seed 002 has these columns (nullable, DEFAULT 0).
ALTER TABLE strategy_metrics ALTER COLUMN profit_factor DROP NOT NULL, ALTER COLUMN profit_factor DROP DEFAULT;
ALTER TABLE strategy_metrics ALTER COLUMN max_drawdown DROP NOT NULL, ALTER COLUMN max_drawdown DROP DEFAULT;
ALTER TABLE strategy_metrics ALTER COLUMN max_drawdown_duration DROP NOT NULL, ALTER COLUMN max_drawdown_duration DROP DEFAULT;
ALTER TABLE strategy_metrics ALTER COLUMN win_rate DROP NOT NULL, ALTER COLUMN win_rate DROP DEFAULT;
