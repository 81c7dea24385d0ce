-- Risk limits evaluated as data arrives (docs/RISK.md). A limit's level is what it was last
-- evaluated at; an event is raised when the level rises, so once per breach.
ALTER TABLE risk_limits ADD COLUMN warning_ratio NUMERIC NOT NULL DEFAULT 0.8
    CONSTRAINT risk_limits_warning_ratio_check CHECK (warning_ratio > 0 AND warning_ratio <= 1);
ALTER TABLE risk_limits ADD COLUMN action VARCHAR(100) NOT NULL DEFAULT 'notify';
ALTER TABLE risk_limits ADD COLUMN level VARCHAR(10) NOT NULL DEFAULT 'ok'
    CONSTRAINT risk_limits_level_check CHECK (level IN ('ok', 'warning', 'critical'));
-- account: the user's own limits (users.max_position_size, users.max_daily_loss), kept here to be evaluated alike.
ALTER TABLE risk_limits ADD COLUMN source VARCHAR(10) NOT NULL DEFAULT 'limit'
    CONSTRAINT risk_limits_source_check CHECK (source IN ('limit', 'account'));
ALTER TABLE risk_limits ADD COLUMN evaluated_at TIMESTAMPTZ;
CREATE INDEX idx_risk_limits_user_active ON risk_limits (user_id) WHERE is_active;

ALTER TABLE risk_events ADD COLUMN limit_id BIGINT;
ALTER TABLE risk_events ADD COLUMN acknowledged_at TIMESTAMPTZ;
ALTER TABLE risk_events ADD COLUMN acknowledged_by TEXT;
CREATE INDEX idx_risk_events_id ON risk_events (id);

-- What the evaluation reads for a user: the hour's orders, the day's closed round trips.
CREATE INDEX idx_orders_user_created ON orders (user_id, created_at DESC) WHERE user_id IS NOT NULL;
CREATE INDEX idx_strategy_trades_strategy_exit ON strategy_trades (strategy_id, exit_time) WHERE status = 'closed';
