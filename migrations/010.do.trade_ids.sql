-- Public (Binance) trade ids: the engine's id when it is an integer of at most 15 digits, else the
-- store's sequence number (src/store/tradeIds.ts). fromId and the ticker's first and last ids are
-- found through this index instead of a scan of the market's trades.
CREATE INDEX idx_trades_market_public_id ON trades (market, (CASE WHEN id ~ '^[0-9]{1,15}$' THEN id::bigint ELSE sequence_number END));
