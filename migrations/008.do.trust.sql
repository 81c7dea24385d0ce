-- 008 trust: identities that do not depend on time, and aggregates that hold what their parts hold.

-- A trade id is a trade's identity. On TimescaleDB a unique index must include the time column,
-- so trades' key (market, id, executed_at) lets the same id with another time in twice. This
-- plain table holds each identity once, with the time its row was stored at: an applier claims
-- the identity here (INSERT … ON CONFLICT DO NOTHING) before it writes the row, in the same
-- transaction, and compares a repeat with the stored row (src/ingest/apply/identity.ts).
-- Keys (names of markets, exchanges and symbols have no spaces):
--   'trade'        → '<market> <id>'                                   (venue trades)
--   'market_trade' → '<exchange> <symbol> <trade id>'                  (exchange trades with an id)
--   'fill'         → '<exchange> <symbol> <bytes of order id>:<order id> <trade id>'   (our fills)
CREATE TABLE ingest_identities (
    kind        VARCHAR(20) NOT NULL,
    key         TEXT NOT NULL,
    occurred_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (kind, key)
);
CREATE INDEX idx_ingest_identities_time ON ingest_identities (occurred_at);
INSERT INTO ingest_identities (kind, key, occurred_at)
SELECT DISTINCT ON (market, id) 'trade', market || ' ' || id, executed_at FROM trades ORDER BY market, id, executed_at;
INSERT INTO ingest_identities (kind, key, occurred_at)
SELECT DISTINCT ON (exchange, symbol, trade_id) 'market_trade', exchange || ' ' || symbol || ' ' || trade_id, time
  FROM market_trades WHERE trade_id <> '' ORDER BY exchange, symbol, trade_id, time;
INSERT INTO ingest_identities (kind, key, occurred_at)
SELECT DISTINCT ON (exchange, symbol, order_id, trade_id)
       'fill', exchange || ' ' || symbol || ' ' || octet_length(order_id) || ':' || order_id || ' ' || trade_id, executed_at
  FROM trades_executed ORDER BY exchange, symbol, order_id, trade_id, executed_at;

-- Columns that add up stored values must hold their sum: two trades of 6e11 fit DECIMAL(20,8)
-- each, their candle volume does not. Candle volumes become NUMERIC (like quote_volume), balances
-- NUMERIC(38,8) (each change still fits seed 000's DECIMAL(20,8)). TimescaleDB cannot change a
-- column type while compression is enabled: the candle table is decompressed first, and
-- `migrate up` enables compression again (src/schema/lifecycle.ts).
-- @if timescaledb
DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM timescaledb_information.hypertables
              WHERE hypertable_schema = 'public' AND hypertable_name = 'ohlcv_1m' AND compression_enabled) THEN
    PERFORM decompress_chunk(c, if_compressed => true) FROM show_chunks('ohlcv_1m') c;
    PERFORM remove_compression_policy('ohlcv_1m', if_exists => true);
    ALTER TABLE ohlcv_1m SET (timescaledb.compress = false);
  END IF;
END $$;
-- @end
ALTER TABLE ohlcv_1m ALTER COLUMN volume TYPE NUMERIC, ALTER COLUMN taker_buy_volume TYPE NUMERIC;
ALTER TABLE ohlcv_5m ALTER COLUMN volume TYPE NUMERIC, ALTER COLUMN taker_buy_volume TYPE NUMERIC;
ALTER TABLE ohlcv_15m ALTER COLUMN volume TYPE NUMERIC, ALTER COLUMN taker_buy_volume TYPE NUMERIC;
ALTER TABLE ohlcv_1h ALTER COLUMN volume TYPE NUMERIC, ALTER COLUMN taker_buy_volume TYPE NUMERIC;
ALTER TABLE ohlcv_4h ALTER COLUMN volume TYPE NUMERIC, ALTER COLUMN taker_buy_volume TYPE NUMERIC;
ALTER TABLE ohlcv_1d ALTER COLUMN volume TYPE NUMERIC, ALTER COLUMN taker_buy_volume TYPE NUMERIC;
ALTER TABLE balances DROP COLUMN total_balance;
ALTER TABLE balances ALTER COLUMN available_balance TYPE NUMERIC(38,8), ALTER COLUMN locked_balance TYPE NUMERIC(38,8);
ALTER TABLE balances ADD COLUMN total_balance NUMERIC(38,8) GENERATED ALWAYS AS (available_balance + locked_balance) STORED;
ALTER TABLE balance_history
    ALTER COLUMN balance_before TYPE NUMERIC(38,8), ALTER COLUMN balance_after TYPE NUMERIC(38,8),
    ALTER COLUMN locked_before TYPE NUMERIC(38,8), ALTER COLUMN locked_after TYPE NUMERIC(38,8);

-- What the service's maintenance jobs did and when (tradestore maintenance status): one row per
-- run, written by whichever instance held the maintenance lock.
CREATE TABLE maintenance_runs (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job         VARCHAR(50) NOT NULL,
    started_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    finished_at TIMESTAMPTZ,
    status      VARCHAR(10) NOT NULL CONSTRAINT maintenance_runs_status_check CHECK (status IN ('running', 'ok', 'failed')),
    detail      JSONB,
    error       TEXT,
    runner      TEXT
);
CREATE INDEX idx_maintenance_runs_job ON maintenance_runs (job, started_at DESC);
