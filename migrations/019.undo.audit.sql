DROP INDEX IF EXISTS idx_audit_log_action;
ALTER TABLE audit_log DROP COLUMN IF EXISTS actor;
