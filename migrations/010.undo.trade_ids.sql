DROP INDEX IF EXISTS idx_trades_market_public_id;
