-- 006 ingest: what the DB service needs to apply engine events exactly once in effect.

-- Which queue entries (and producer event ids) a transaction applied, written in that same
-- transaction. A redelivered entry finds its row and changes nothing. Rejected entries are
-- recorded too, so a redelivery after a crash sends them to the dead letters again instead of
-- applying them. Kept 7 days (src/schema/lifecycle.ts): far longer than any redelivery.
CREATE TABLE ingest_applied (
    key        TEXT NOT NULL PRIMARY KEY,        -- 'entry:<stream>:<entry id>' or 'event:<producer event id>'
    outcome    VARCHAR(8) NOT NULL CONSTRAINT ingest_applied_outcome_check CHECK (outcome IN ('applied', 'rejected')),
    reason     TEXT,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX idx_ingest_applied_time ON ingest_applied (applied_at);

-- Candles are merged batch by batch. To keep open and close exact when a batch holds trades
-- older than what a candle already has, each candle remembers its first and last trade time.
ALTER TABLE ohlcv_1m ADD COLUMN first_trade_at TIMESTAMPTZ, ADD COLUMN last_trade_at TIMESTAMPTZ;
ALTER TABLE ohlcv_5m ADD COLUMN first_trade_at TIMESTAMPTZ, ADD COLUMN last_trade_at TIMESTAMPTZ;
ALTER TABLE ohlcv_15m ADD COLUMN first_trade_at TIMESTAMPTZ, ADD COLUMN last_trade_at TIMESTAMPTZ;
ALTER TABLE ohlcv_1h ADD COLUMN first_trade_at TIMESTAMPTZ, ADD COLUMN last_trade_at TIMESTAMPTZ;
ALTER TABLE ohlcv_4h ADD COLUMN first_trade_at TIMESTAMPTZ, ADD COLUMN last_trade_at TIMESTAMPTZ;
ALTER TABLE ohlcv_1d ADD COLUMN first_trade_at TIMESTAMPTZ, ADD COLUMN last_trade_at TIMESTAMPTZ;

-- A balance change moves available and locked together; seed 000 recorded only the available
-- side. The locked side and the event that caused the change are kept beside it.
ALTER TABLE balance_history
    ADD COLUMN locked_change DECIMAL(20,8),
    ADD COLUMN locked_before DECIMAL(20,8),
    ADD COLUMN locked_after  DECIMAL(20,8),
    ADD COLUMN event_id      TEXT;
