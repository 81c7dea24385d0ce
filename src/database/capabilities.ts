import type { Capabilities, Queryable } from './types.ts';

interface CapabilityRow {
  server_version: string;
  server_version_num: string;
  timescaledb: string | null;
  timescaledb_available: boolean;
  scheduler_workers: string;
  pgss_installed: boolean;
  preload: string | null;
  can_use_rls_role: boolean;
}

/**
 * Reads what the server offers. Everything is one query so that connecting stays cheap;
 * TimescaleDB's scheduler shows up in pg_stat_activity as a background worker.
 */
export async function detectCapabilities(db: Queryable, backend: Capabilities['backend']): Promise<Capabilities> {
  const { rows } = await db.query<CapabilityRow>(`
    SELECT current_setting('server_version') AS server_version,
           current_setting('server_version_num') AS server_version_num,
           (SELECT extversion FROM pg_extension WHERE extname = 'timescaledb') AS timescaledb,
           EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb') AS timescaledb_available,
           (SELECT count(*) FROM pg_stat_activity
             WHERE backend_type ILIKE 'TimescaleDB%' OR application_name ILIKE 'TimescaleDB Background Worker%')
             AS scheduler_workers,
           EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements') AS pgss_installed,
           -- pg_settings leaves out what the role may not read (no error for a non-superuser service role).
           (SELECT setting FROM pg_settings WHERE name = 'shared_preload_libraries') AS preload,
           (SELECT rolsuper OR rolcreaterole OR NOT rolbypassrls FROM pg_roles WHERE rolname = current_user)
             AS can_use_rls_role`);
  const row = rows[0];
  if (!row) throw new Error('capability query returned no row');
  const timescaledb = row.timescaledb;
  return {
    backend,
    serverVersion: row.server_version,
    serverVersionNum: Number(row.server_version_num),
    timescaledb,
    timescaledbAvailable: row.timescaledb_available || timescaledb !== null,
    jobScheduler: timescaledb !== null && Number(row.scheduler_workers) > 0,
    pgStatStatements: row.pgss_installed && (row.preload ?? '').includes('pg_stat_statements'),
    rowLevelSecurity: Boolean(row.can_use_rls_role),
  };
}
