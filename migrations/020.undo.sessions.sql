DROP TABLE IF EXISTS login_failures;
DROP TABLE IF EXISTS user_recovery_codes;
ALTER TABLE users DROP COLUMN IF EXISTS totp_last_step, DROP COLUMN IF EXISTS totp_secret, DROP COLUMN IF EXISTS scopes;
DROP INDEX IF EXISTS idx_user_sessions_family;
ALTER TABLE user_sessions
    DROP CONSTRAINT IF EXISTS user_sessions_refresh_hash_key,
    DROP COLUMN IF EXISTS user_agent, DROP COLUMN IF EXISTS ip_address, DROP COLUMN IF EXISTS scopes,
    DROP COLUMN IF EXISTS revoked_reason, DROP COLUMN IF EXISTS revoked_at, DROP COLUMN IF EXISTS refreshed_at,
    DROP COLUMN IF EXISTS refresh_expires_at, DROP COLUMN IF EXISTS refresh_hash, DROP COLUMN IF EXISTS family_id;
