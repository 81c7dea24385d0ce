-- A user's fee tier (trading_fees.user_tier); NULL: system_config 'fees.default_tier' (docs/FEES.md).
ALTER TABLE users ADD COLUMN fee_tier VARCHAR(20);
