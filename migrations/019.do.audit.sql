-- Who made a change in the audit trail (docs/SECURITY.md): an API key (key:<id>), the CLI's
-- operating-system user (cli:<user>), or the library. audit_log.user_id is the user the changed
-- resource belongs to, so a user's audit rows are theirs under row-level security (migration 018).
ALTER TABLE audit_log ADD COLUMN actor VARCHAR(200);
CREATE INDEX idx_audit_log_action ON audit_log (action, created_at DESC);
