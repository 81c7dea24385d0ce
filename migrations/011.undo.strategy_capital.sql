DROP INDEX IF EXISTS idx_portfolio_snapshots_user_time;
ALTER TABLE strategies DROP CONSTRAINT IF EXISTS strategies_max_drawdown_check;
UPDATE strategies SET max_drawdown = 0 WHERE max_drawdown IS NULL;
ALTER TABLE strategies ALTER COLUMN max_drawdown SET DEFAULT 0;
ALTER TABLE strategies ALTER COLUMN max_drawdown SET NOT NULL;
ALTER TABLE strategies DROP COLUMN IF EXISTS peak_equity;
ALTER TABLE strategies DROP COLUMN IF EXISTS initial_capital;
