import { audit } from '../security/audit.ts';
import { parseArgs } from 'node:util';
import type { Database } from '../database/types.ts';
import { migrate, migrationStatus } from '../schema/migrator.ts';
import { UsageError, intOption } from './usage.ts';
import type { OpenDatabase } from './admin.ts';

const pad = (n: number) => String(n).padStart(3, '0');

export async function migrateCommand(open: OpenDatabase, args: string[], out: (line: string) => void): Promise<void> {
  const [action, ...rest] = args;
  const { values } = parseArgs({ args: rest, options: { to: { type: 'string' }, json: { type: 'boolean' } }, strict: true });
  if (action !== 'up' && action !== 'down' && action !== 'status') throw new UsageError('migrate needs up, down or status');
  const to = intOption('to', values.to);
  const db = await open();
  if (action === 'status') {
    const status = await migrationStatus(db);
    if (values.json) return out(JSON.stringify(status, null, 2));
    out(`database version ${status.databaseVersion} of ${status.latestVersion} (${describe(db)})`);
    for (const e of status.entries) {
      const state = e.applied ? `applied ${e.runAt?.toISOString() ?? ''}` : 'pending';
      const warn = e.checksum === 'changed' ? '  CHANGED SINCE APPLIED' : e.checksum === 'missing' ? '  FILE MISSING' : '';
      out(`  ${pad(e.version)} ${e.name.padEnd(12)} ${state}${warn}`);
    }
    return;
  }
  const status = await migrationStatus(db);
  if (action === 'up' && to !== undefined && to < status.databaseVersion) {
    throw new UsageError(`migrate up --to ${to} is below the current version ${status.databaseVersion}; use migrate down`);
  }
  if (action === 'down' && to !== undefined && to > status.databaseVersion) {
    throw new UsageError(`migrate down --to ${to} is above the current version ${status.databaseVersion}; use migrate up`);
  }
  const result = await migrate(db, { to: action === 'down' ? (to ?? 0) : to });
  for (const note of result.notes) out(`note: ${note}`);
  for (const step of result.steps) out(`${step.action === 'do' ? 'applied' : 'undone '} ${pad(step.version)} ${step.name}`);
  out(`database version ${result.to} (was ${result.from}; ${describe(db)})`);
  // Recorded in the audit trail when the schema it lands on has one (migration 019 on).
  if (result.steps.length && result.to >= 19) {
    await audit(db, { action: 'schema.migrate', resourceType: 'schema', resourceId: null, userId: null, old: { version: result.from }, new: { version: result.to, steps: result.steps.length } });
  }
  if (result.lifecycle) {
    const l = result.lifecycle;
    out(`lifecycle: ${l.applied.length} TimescaleDB policies, ${l.serviceEnforced.length} carried out by the service's maintenance`);
  }
}

export function describe(db: Database): string {
  const caps = db.capabilities;
  const ts = caps.timescaledb ? `TimescaleDB ${caps.timescaledb}` : 'no TimescaleDB';
  return `${caps.backend} PostgreSQL ${caps.serverVersion.split(' ')[0]}, ${ts}`;
}
