ALTER TABLE market_data DROP COLUMN IF EXISTS first_tick_at, DROP COLUMN IF EXISTS last_tick_at;
