UPDATE strategy_metrics SET profit_factor = coalesce(profit_factor, 0), max_drawdown = coalesce(max_drawdown, 0),
       max_drawdown_duration = coalesce(max_drawdown_duration, 0), win_rate = coalesce(win_rate, 0);
ALTER TABLE strategy_metrics ALTER COLUMN profit_factor SET NOT NULL, ALTER COLUMN profit_factor SET DEFAULT 0;
ALTER TABLE strategy_metrics ALTER COLUMN max_drawdown SET NOT NULL, ALTER COLUMN max_drawdown SET DEFAULT 0;
ALTER TABLE strategy_metrics ALTER COLUMN max_drawdown_duration SET NOT NULL, ALTER COLUMN max_drawdown_duration SET DEFAULT 0;
ALTER TABLE strategy_metrics ALTER COLUMN win_rate SET NOT NULL, ALTER COLUMN win_rate SET DEFAULT 0;
DROP INDEX IF EXISTS idx_portfolio_snapshots_user_time;
ALTER TABLE strategies DROP CONSTRAINT IF EXISTS strategies_max_drawdown_check;
UPDATE strategies SET max_drawdown = 0 WHERE max_drawdown IS NULL;
ALTER TABLE strategies ALTER COLUMN max_drawdown SET DEFAULT 0;
ALTER TABLE strategies ALTER COLUMN max_drawdown SET NOT NULL;
ALTER TABLE strategies DROP COLUMN IF EXISTS peak_equity;
ALTER TABLE strategies DROP COLUMN IF EXISTS initial_capital;
