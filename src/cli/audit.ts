import { parseArgs } from 'node:util';
import type { Config } from '../config.ts';
import { openDatabase } from '../database/open.ts';
import { AuditRepository, type AuditEntry } from '../store/auditTrail.ts';
import { InvalidArgumentError } from '../store/errors.ts';
import { intOption, UsageError } from './usage.ts';

const line = (e: AuditEntry) =>
  `${e.at}  ${(e.actor ?? '-').padEnd(16)} ${e.action.padEnd(20)} ${e.resourceType ?? '-'} ${e.resourceId ?? '-'}${e.userId ? `  user ${e.userId}` : ''}${e.ip ? `  from ${e.ip}` : ''}`;

/** tradestore audit: the audit trail, newest first, with filters (docs/SECURITY.md). */
export async function auditCommand(config: Config, args: string[], out: (line: string) => void): Promise<void> {
  const { values, positionals } = parseArgs({
    args, allowPositionals: true, strict: true,
    options: { user: { type: 'string' }, resource: { type: 'string' }, id: { type: 'string' }, action: { type: 'string' }, actor: { type: 'string' }, since: { type: 'string' }, until: { type: 'string' }, limit: { type: 'string' }, json: { type: 'boolean' } },
  });
  if (positionals.length) throw new UsageError('audit takes no arguments besides its options');
  const time = (name: 'since' | 'until') => {
    const value = values[name];
    const t = value === undefined ? undefined : new Date(value);
    if (t && Number.isNaN(t.getTime())) throw new UsageError(`--${name} must be a time, such as 2026-12-01 or 2026-12-01T09:00:00Z`);
    return t;
  };
  const [since, until] = [time('since'), time('until')];
  const limit = intOption('limit', values.limit);
  const db = await openDatabase(config);
  try {
    const entries = await new AuditRepository(db).list({ userId: values.user, resourceType: values.resource, resourceId: values.id, action: values.action, actor: values.actor, since, until, limit });
    if (values.json) return out(JSON.stringify(entries, null, 2));
    if (!entries.length) return out('no audit entries');
    for (const e of entries) out(line(e));
  } catch (error) {
    if (error instanceof InvalidArgumentError) throw new UsageError(`--${error.parameter}: ${error.message.replace(/^[^:]+: /, '')}`);
    throw error;
  } finally {
    await db.close();
  }
}
