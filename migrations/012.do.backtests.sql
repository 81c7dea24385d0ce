-- Backtests run by an engine outside tradestore, kept by it (docs/BACKTESTS.md).

ALTER TABLE backtests ADD COLUMN updated_at TIMESTAMPTZ NOT NULL DEFAULT now();
-- Trades stored so far, kept by the store (a list of big runs does not count their rows).
ALTER TABLE backtests ADD COLUMN trade_count BIGINT NOT NULL DEFAULT 0 CHECK (trade_count >= 0);
ALTER TABLE backtests ADD CONSTRAINT backtests_started_when_running CHECK (status NOT IN ('running', 'completed') OR started_at IS NOT NULL);

-- The parts of a backtest's trades and equity already stored, by the engine's sequence number:
-- a part sent twice is refused instead of doubling the trades.
CREATE TABLE backtest_chunks (
    backtest_id BIGINT NOT NULL REFERENCES backtests (id) ON DELETE CASCADE,
    kind        VARCHAR(10) NOT NULL CONSTRAINT backtest_chunks_kind_check CHECK (kind IN ('trades', 'equity')),
    seq         INTEGER NOT NULL CHECK (seq >= 0),
    row_count   INTEGER NOT NULL CHECK (row_count >= 0),
    received_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (backtest_id, kind, seq)
);

-- The engine's equity curve as it reports it (any frequency); the summary reads its daily closes.
CREATE TABLE backtest_equity (
    backtest_id BIGINT NOT NULL REFERENCES backtests (id) ON DELETE CASCADE,
    time        TIMESTAMPTZ NOT NULL,
    equity      NUMERIC NOT NULL,
    PRIMARY KEY (backtest_id, time)
);

-- The summary's metrics beyond the seeds' columns, and where its equity curve came from.
ALTER TABLE backtest_results ADD COLUMN gross_profit NUMERIC;
ALTER TABLE backtest_results ADD COLUMN gross_loss NUMERIC;
ALTER TABLE backtest_results ADD COLUMN var_95 NUMERIC;
ALTER TABLE backtest_results ADD COLUMN cvar_95 NUMERIC;
ALTER TABLE backtest_results ADD COLUMN equity_source VARCHAR(20);
CREATE INDEX idx_backtest_trades_exit ON backtest_trades (backtest_id, exit_time);
