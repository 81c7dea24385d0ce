-- 001 venue: seed 000's exchange core. Table and column names are seed 000's own, so engines
-- and tools written against that seed keep working. Deviations (see docs/SCHEMA.md):
--  * references that real engine messages lack (orders.user_id, trades' order and user ids) are nullable;
--  * hypertable primary keys include their time column, as TimescaleDB requires;
--  * enum values are lower case everywhere; money is NUMERIC, never float.

CREATE TABLE users (
    id                 TEXT PRIMARY KEY CHECK (id <> '' AND length(id) <= 255),
    email              VARCHAR(255) NOT NULL,
    password_hash      VARCHAR(255),                        -- argon2id; NULL = no password login
    first_name         VARCHAR(100),
    last_name          VARCHAR(100),
    created_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    is_active          BOOLEAN NOT NULL DEFAULT true,
    kyc_status         VARCHAR(20) NOT NULL DEFAULT 'pending'
                       CONSTRAINT users_kyc_status_check CHECK (kyc_status IN ('pending', 'approved', 'rejected')),
    two_factor_enabled BOOLEAN NOT NULL DEFAULT false,
    -- seed 001 / 003
    username           VARCHAR(50),
    last_login         TIMESTAMPTZ,
    risk_profile       VARCHAR(20) NOT NULL DEFAULT 'moderate'
                       CONSTRAINT users_risk_profile_check CHECK (risk_profile IN ('conservative', 'moderate', 'aggressive')),
    max_position_size  NUMERIC CHECK (max_position_size >= 0),
    max_daily_loss     NUMERIC CHECK (max_daily_loss >= 0),
    CONSTRAINT users_email_key UNIQUE (email),
    CONSTRAINT users_username_key UNIQUE (username)
);
CREATE INDEX idx_users_created_at ON users (created_at);
CREATE INDEX idx_users_kyc_status ON users (kyc_status);

CREATE TABLE markets (
    symbol       VARCHAR(20) PRIMARY KEY CHECK (symbol ~ '^[A-Za-z0-9_.-]+$'),
    base_asset   VARCHAR(10) NOT NULL,
    quote_asset  VARCHAR(10) NOT NULL,
    min_quantity DECIMAL(20,8) NOT NULL DEFAULT 0.00000001,
    max_quantity DECIMAL(20,8) NOT NULL DEFAULT 1000000,
    min_price    DECIMAL(20,8) NOT NULL DEFAULT 0.00000001,
    max_price    DECIMAL(20,8) NOT NULL DEFAULT 1000000,
    tick_size    DECIMAL(20,8) NOT NULL DEFAULT 0.00000001 CHECK (tick_size > 0),
    step_size    DECIMAL(20,8) NOT NULL DEFAULT 0.00000001 CHECK (step_size > 0),
    is_active    BOOLEAN NOT NULL DEFAULT true,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT markets_quantity_range CHECK (min_quantity <= max_quantity),
    CONSTRAINT markets_price_range CHECK (min_price <= max_price)
);

CREATE TABLE orders (
    id                 TEXT PRIMARY KEY CHECK (id <> '' AND length(id) <= 255),
    user_id            TEXT REFERENCES users (id),          -- engines built on seed 000 send none
    market             VARCHAR(20) NOT NULL REFERENCES markets (symbol),
    side               VARCHAR(4) NOT NULL CONSTRAINT orders_side_check CHECK (side IN ('buy', 'sell')),
    order_type         VARCHAR(10) NOT NULL DEFAULT 'limit'
                       CONSTRAINT orders_order_type_check CHECK (order_type IN ('limit', 'market', 'stop')),
    price              DECIMAL(20,8) NOT NULL CONSTRAINT orders_price_check CHECK (price >= 0),
    quantity           DECIMAL(20,8) NOT NULL CONSTRAINT orders_quantity_check CHECK (quantity > 0),
    filled_quantity    DECIMAL(20,8) NOT NULL DEFAULT 0
                       CONSTRAINT orders_filled_quantity_check CHECK (filled_quantity >= 0 AND filled_quantity <= quantity),
    remaining_quantity DECIMAL(20,8) GENERATED ALWAYS AS (quantity - filled_quantity) STORED,
    status             VARCHAR(10) NOT NULL DEFAULT 'open'
                       CONSTRAINT orders_status_check CHECK (status IN ('open', 'filled', 'cancelled', 'rejected')),
    time_in_force      VARCHAR(3) NOT NULL DEFAULT 'GTC'
                       CONSTRAINT orders_time_in_force_check CHECK (time_in_force IN ('GTC', 'IOC', 'FOK')),
    created_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at         TIMESTAMPTZ NOT NULL DEFAULT now(),
    filled_at          TIMESTAMPTZ,
    cancelled_at       TIMESTAMPTZ
);
CREATE INDEX idx_orders_user_id ON orders (user_id);
CREATE INDEX idx_orders_market ON orders (market);
CREATE INDEX idx_orders_status ON orders (status);
CREATE INDEX idx_orders_created_at ON orders (created_at);
CREATE INDEX idx_orders_user_market_status ON orders (user_id, market, status);
-- seed 000 names this index twice (idx_orders_market_side_price and idx_orders_active); one is enough.
CREATE INDEX idx_orders_active ON orders (market, side, price) WHERE status = 'open';

-- Venue trades. A trade id is unique within its market (engines number trades per order book),
-- and a hypertable's unique key must contain its time column: hence (market, id, executed_at).
CREATE TABLE trades (
    id               TEXT NOT NULL CHECK (id <> '' AND length(id) <= 255),
    market           VARCHAR(20) NOT NULL REFERENCES markets (symbol),
    buyer_order_id   TEXT,
    seller_order_id  TEXT,
    buyer_id         TEXT,
    seller_id        TEXT,
    price            DECIMAL(20,8) NOT NULL CONSTRAINT trades_price_check CHECK (price > 0),
    quantity         DECIMAL(20,8) NOT NULL CONSTRAINT trades_quantity_check CHECK (quantity > 0),
    quote_quantity   NUMERIC GENERATED ALWAYS AS (price * quantity) STORED,   -- exact product, never rounded
    is_buyer_maker   BOOLEAN NOT NULL,
    trade_fee_buyer  DECIMAL(20,8) NOT NULL DEFAULT 0,
    trade_fee_seller DECIMAL(20,8) NOT NULL DEFAULT 0,
    executed_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    sequence_number  BIGINT GENERATED BY DEFAULT AS IDENTITY,
    CONSTRAINT trades_pkey PRIMARY KEY (market, id, executed_at)
);
CREATE INDEX idx_trades_market ON trades (market, executed_at DESC);
CREATE INDEX idx_trades_buyer_id ON trades (buyer_id, executed_at DESC) WHERE buyer_id IS NOT NULL;
CREATE INDEX idx_trades_seller_id ON trades (seller_id, executed_at DESC) WHERE seller_id IS NOT NULL;
CREATE INDEX idx_trades_sequence ON trades (sequence_number DESC);
CREATE INDEX idx_trades_market_time_brin ON trades USING BRIN (market, executed_at);
-- @if timescaledb
SELECT create_hypertable('trades', 'executed_at', chunk_time_interval => INTERVAL '1 day');
-- @end

CREATE TABLE balances (
    user_id           TEXT NOT NULL REFERENCES users (id),
    asset             VARCHAR(10) NOT NULL,
    available_balance DECIMAL(20,8) NOT NULL DEFAULT 0
                      CONSTRAINT balances_available_non_negative CHECK (available_balance >= 0),
    locked_balance    DECIMAL(20,8) NOT NULL DEFAULT 0
                      CONSTRAINT balances_locked_non_negative CHECK (locked_balance >= 0),
    total_balance     DECIMAL(20,8) GENERATED ALWAYS AS (available_balance + locked_balance) STORED,
    last_updated      TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, asset)
);
CREATE INDEX idx_balances_asset ON balances (asset);

CREATE TABLE balance_history (
    id             BIGINT GENERATED BY DEFAULT AS IDENTITY,
    user_id        TEXT NOT NULL,
    asset          VARCHAR(10) NOT NULL,
    change_type    VARCHAR(20) NOT NULL
                   CONSTRAINT balance_history_change_type_check
                   CHECK (change_type IN ('deposit', 'withdrawal', 'trade', 'fee', 'adjustment')),
    amount         DECIMAL(20,8) NOT NULL,
    balance_before DECIMAL(20,8) NOT NULL,
    balance_after  DECIMAL(20,8) NOT NULL,
    reference_id   VARCHAR(255),
    description    TEXT,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (id, created_at)
);
CREATE INDEX idx_balance_history_user_asset ON balance_history (user_id, asset, created_at DESC);
CREATE INDEX idx_balance_history_user_time ON balance_history (user_id, created_at DESC, asset);
CREATE INDEX idx_balance_history_reference ON balance_history (reference_id);
-- @if timescaledb
SELECT create_hypertable('balance_history', 'created_at', chunk_time_interval => INTERVAL '1 week');
-- @end

-- Candles of the venue's own markets, built from its trades; buckets are aligned in UTC.
CREATE TABLE ohlcv_1m (
    market                 VARCHAR(20) NOT NULL,
    open_time              TIMESTAMPTZ NOT NULL,
    close_time             TIMESTAMPTZ NOT NULL,
    open_price             DECIMAL(20,8) NOT NULL,
    high_price             DECIMAL(20,8) NOT NULL,
    low_price              DECIMAL(20,8) NOT NULL,
    close_price            DECIMAL(20,8) NOT NULL,
    volume                 DECIMAL(20,8) NOT NULL,
    quote_volume           NUMERIC NOT NULL,
    trade_count            INTEGER NOT NULL,
    taker_buy_volume       DECIMAL(20,8) NOT NULL DEFAULT 0,
    taker_buy_quote_volume NUMERIC NOT NULL DEFAULT 0,
    PRIMARY KEY (market, open_time),
    CONSTRAINT ohlcv_valid_prices CHECK (high_price >= low_price AND high_price >= open_price AND high_price >= close_price
                                         AND low_price <= open_price AND low_price <= close_price),
    CONSTRAINT ohlcv_valid_volume CHECK (volume >= 0 AND trade_count >= 0 AND close_time > open_time)
);
CREATE TABLE ohlcv_5m (LIKE ohlcv_1m INCLUDING ALL);
CREATE TABLE ohlcv_15m (LIKE ohlcv_1m INCLUDING ALL);
CREATE TABLE ohlcv_1h (LIKE ohlcv_1m INCLUDING ALL);
CREATE TABLE ohlcv_4h (LIKE ohlcv_1m INCLUDING ALL);
CREATE TABLE ohlcv_1d (LIKE ohlcv_1m INCLUDING ALL);
-- @if timescaledb
SELECT create_hypertable('ohlcv_1m', 'open_time', chunk_time_interval => INTERVAL '1 day');
SELECT create_hypertable('ohlcv_5m', 'open_time', chunk_time_interval => INTERVAL '1 week');
SELECT create_hypertable('ohlcv_15m', 'open_time', chunk_time_interval => INTERVAL '1 week');
SELECT create_hypertable('ohlcv_1h', 'open_time', chunk_time_interval => INTERVAL '1 month');
SELECT create_hypertable('ohlcv_4h', 'open_time', chunk_time_interval => INTERVAL '1 month');
SELECT create_hypertable('ohlcv_1d', 'open_time', chunk_time_interval => INTERVAL '1 year');
-- @end

-- One configuration table for seeds 000 (key/value text), 002 (typed, sensitive flag) and
-- 001's system_settings. Values stay text so seed 000 tools can write them; data_type says how to read them.
CREATE TABLE system_config (
    key          VARCHAR(100) PRIMARY KEY,
    value        TEXT NOT NULL,
    description  TEXT,
    category     VARCHAR(50) NOT NULL DEFAULT 'general',
    data_type    VARCHAR(20) NOT NULL DEFAULT 'string'
                 CONSTRAINT system_config_data_type_check CHECK (data_type IN ('string', 'number', 'boolean', 'object', 'array')),
    is_sensitive BOOLEAN NOT NULL DEFAULT false,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_by   VARCHAR(100),
    CONSTRAINT system_config_value_matches_type CHECK (
        CASE data_type
            WHEN 'number'  THEN value ~ '^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$'
            WHEN 'boolean' THEN value IN ('true', 'false')
            WHEN 'object'  THEN jsonb_typeof(value::jsonb) = 'object'
            WHEN 'array'   THEN jsonb_typeof(value::jsonb) = 'array'
            ELSE true
        END)
);
CREATE INDEX idx_system_config_category ON system_config (category);

CREATE TABLE trading_fees (
    market     VARCHAR(20) NOT NULL REFERENCES markets (symbol) ON DELETE CASCADE,
    user_tier  VARCHAR(20) NOT NULL DEFAULT 'basic',
    maker_fee  DECIMAL(6,6) NOT NULL DEFAULT 0.001 CONSTRAINT trading_fees_maker_fee_check CHECK (maker_fee >= 0),
    taker_fee  DECIMAL(6,6) NOT NULL DEFAULT 0.001 CONSTRAINT trading_fees_taker_fee_check CHECK (taker_fee >= 0),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (market, user_tier)
);

CREATE TABLE audit_log (
    id            BIGINT GENERATED BY DEFAULT AS IDENTITY,
    user_id       TEXT,
    action        VARCHAR(100) NOT NULL,
    resource_type VARCHAR(50),
    resource_id   VARCHAR(255),
    old_values    JSONB,
    new_values    JSONB,
    ip_address    INET,
    user_agent    TEXT,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (id, created_at)
);
CREATE INDEX idx_audit_log_user ON audit_log (user_id, created_at DESC);
CREATE INDEX idx_audit_log_resource ON audit_log (resource_type, resource_id, created_at DESC);
-- @if timescaledb
SELECT create_hypertable('audit_log', 'created_at', chunk_time_interval => INTERVAL '1 month');
-- @end

-- Hourly trade summary: a continuous aggregate with TimescaleDB, a materialized view that the
-- service refreshes without it. Buckets are UTC hours either way.
-- @if timescaledb
CREATE MATERIALIZED VIEW trades_hourly_summary WITH (timescaledb.continuous) AS
SELECT time_bucket(INTERVAL '1 hour', executed_at) AS hour,
       market,
       count(*)            AS trade_count,
       sum(quantity)       AS volume,
       sum(quote_quantity) AS quote_volume,
       avg(price)          AS avg_price,
       min(price)          AS min_price,
       max(price)          AS max_price
FROM trades
GROUP BY hour, market
WITH NO DATA;
-- @else
CREATE MATERIALIZED VIEW trades_hourly_summary AS
SELECT date_bin(INTERVAL '1 hour', executed_at, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS hour,
       market,
       count(*)            AS trade_count,
       sum(quantity)       AS volume,
       sum(quote_quantity) AS quote_volume,
       avg(price)          AS avg_price,
       min(price)          AS min_price,
       max(price)          AS max_price
FROM trades
GROUP BY 1, market
WITH NO DATA;
CREATE UNIQUE INDEX trades_hourly_summary_key ON trades_hourly_summary (market, hour);
-- @end
