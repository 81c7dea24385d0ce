ALTER TABLE balance_history DROP COLUMN IF EXISTS event_id, DROP COLUMN IF EXISTS locked_after,
    DROP COLUMN IF EXISTS locked_before, DROP COLUMN IF EXISTS locked_change;
ALTER TABLE ohlcv_1d DROP COLUMN IF EXISTS last_trade_at, DROP COLUMN IF EXISTS first_trade_at;
ALTER TABLE ohlcv_4h DROP COLUMN IF EXISTS last_trade_at, DROP COLUMN IF EXISTS first_trade_at;
ALTER TABLE ohlcv_1h DROP COLUMN IF EXISTS last_trade_at, DROP COLUMN IF EXISTS first_trade_at;
ALTER TABLE ohlcv_15m DROP COLUMN IF EXISTS last_trade_at, DROP COLUMN IF EXISTS first_trade_at;
ALTER TABLE ohlcv_5m DROP COLUMN IF EXISTS last_trade_at, DROP COLUMN IF EXISTS first_trade_at;
ALTER TABLE ohlcv_1m DROP COLUMN IF EXISTS last_trade_at, DROP COLUMN IF EXISTS first_trade_at;
DROP TABLE IF EXISTS ingest_applied CASCADE;
