import { audit } from '../security/audit.ts';
import { openDatabase } from '../database/open.ts';
import { parseArgs } from 'node:util';
import type { Config } from '../config.ts';
import { openBus } from '../bus/open.ts';
import type { DeadLetter } from '../bus/types.ts';
import { UsageError, intOption } from './usage.ts';

const describe = (l: DeadLetter) =>
  [
    `${l.id}  source ${l.source}  attempts ${l.attempts}  ${l.failedAt.toISOString()}`,
    `  reason:  ${l.reason}`,
    ...(l.lost ? ['  (the source entry was gone before it could be copied: nothing to replay)'] : []),
    ...l.fields.map((f) => `  ${f.name}: ${f.preview}${f.bytes > Buffer.byteLength(f.preview) ? `… (${f.bytes} bytes; dlq show --id ${l.id} for all of it)` : ''}`),
  ].join('\n');

/**
 * tradestore dlq list | show | replay | purge. Listing shows previews, never whole payloads, so one
 * huge dead letter cannot flood a terminal or the process; `show --raw` writes one field's
 * bytes exactly as they arrived.
 */
export async function dlqCommand(config: Config, args: string[], out: (line: string) => void): Promise<void> {
  const [action, ...rest] = args;
  const { values } = parseArgs({
    args: rest,
    options: {
      json: { type: 'boolean' },
      limit: { type: 'string' },
      after: { type: 'string' },
      id: { type: 'string', multiple: true },
      all: { type: 'boolean' },
      raw: { type: 'boolean' },
      field: { type: 'string' },
    },
    strict: true,
  });
  if (action !== 'list' && action !== 'show' && action !== 'replay' && action !== 'purge') throw new UsageError('dlq needs list, show, replay or purge');
  if (action === 'replay' || action === 'purge') {
    if (!values.all && !values.id?.length) throw new UsageError(`dlq ${action} needs --id ID (repeatable) or --all`);
    if (values.all && values.id?.length) throw new UsageError(`dlq ${action} takes --id or --all, not both`);
  }
  const count = action === 'list' ? (intOption('limit', values.limit) ?? 100) : 0;
  if (action === 'list' && (count < 1 || count > 10_000)) throw new UsageError('--limit must be from 1 to 10000');
  if (!config.redisUrl) {
    throw new UsageError('dead letters of the embedded default live in the running service\'s in-process bus; dlq needs REDIS_URL');
  }
  const bus = openBus(config);
  try {
    if (action === 'list') {
      const letters = await bus.listDead({ count, after: values.after });
      if (values.json) return out(JSON.stringify(letters, null, 2));
      if (letters.length === 0) return out(`no dead letters${values.after ? ` after ${values.after}` : ''}`);
      for (const l of letters) out(describe(l));
      if (letters.length === count) out(`(more: dlq list --after ${letters[letters.length - 1]!.id})`);
      return;
    }
    if (action === 'show') {
      const id = values.id?.[0];
      if (!id || values.id!.length > 1) throw new UsageError('dlq show needs one --id ID');
      const letter = await bus.readDead(id);
      if (!letter) throw new UsageError(`no dead letter with id ${id} (ids are shard:id, e.g. 3:1763700000123-0; see tradestore dlq list)`);
      if (values.raw) {
        const name = values.field ?? 'payload';
        const field = letter.fields.find((f) => f.name === name);
        if (!field) throw new UsageError(`dead letter ${id} has no field ${JSON.stringify(name)} (it has: ${letter.fields.map((f) => f.name).join(', ') || 'none'})`);
        process.stdout.write(field.value);
        return;
      }
      const fields = letter.fields.map((f): { name: string; bytes: number; text?: string; base64?: string } =>
        isText(f.value) ? { name: f.name, bytes: f.value.length, text: f.value.toString() } : { name: f.name, bytes: f.value.length, base64: f.value.toString('base64') });
      if (values.json) return out(JSON.stringify({ ...letter, fields }, null, 2));
      out(`${letter.id}  source ${letter.source} (${letter.stream})  attempts ${letter.attempts}  ${letter.failedAt.toISOString()}\n  reason:  ${letter.reason}`);
      for (const f of fields) out(`  ${f.name} (${f.bytes} bytes${f.base64 ? ', not UTF-8, shown as base64' : ''}): ${f.text ?? f.base64}`);
      return;
    }
    const ids = values.all ? 'all' : values.id!;
    if (ids !== 'all') {
      const missing: string[] = [];
      for (const id of ids) if (!(await bus.readDead(id))) missing.push(id);
      if (missing.length) throw new UsageError(`no dead letter with id ${missing.join(', ')} (ids are shard:id, e.g. 3:1763700000123-0; see tradestore dlq list)`);
    }
    // The audit row first, in the database (the dead letters are in Redis: no transaction holds
    // both): a replay or purge that cannot be recorded is not made.
    const db = await openDatabase(config);
    try {
      await audit(db, { action: `dead_letter.${action}`, resourceType: 'dead_letter', resourceId: ids === 'all' ? 'all' : ids.join(',').slice(0, 255), userId: null, new: { ids } });
    } finally {
      await db.close();
    }
    if (action === 'purge') {
      const purged = await bus.purgeDead(ids);
      return out(`removed ${purged} dead letter${purged === 1 ? '' : 's'} for good`);
    }
    const replayed = await bus.replayDead(ids, (n) => out(`dlq replay: ${n} replayed so far…`));
    out(`replayed ${replayed} dead letter${replayed === 1 ? '' : 's'} onto ${replayed === 1 ? 'its shard' : 'their shards'}`);
  } finally {
    await bus.close();
  }
}

function isText(value: Buffer): boolean {
  return Buffer.from(value.toString('utf8'), 'utf8').equals(value);
}
