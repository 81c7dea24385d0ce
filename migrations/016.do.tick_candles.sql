-- Candles built from exchange ticks (MARKET_TRADE) are kept in market_data with data_source
-- 'ticks' (docs/CANDLES.md). Like the venue's candles, a tick candle keeps the times of its first
-- and last tick, so a batch of ticks older than the stored ones can still take its open or close.
-- NULL on candles an exchange sends (CANDLE events).
ALTER TABLE market_data ADD COLUMN first_tick_at TIMESTAMPTZ, ADD COLUMN last_tick_at TIMESTAMPTZ;
