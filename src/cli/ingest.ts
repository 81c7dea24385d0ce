import { parseArgs } from 'node:util';
import { isPowerOfTwo, type Config } from '../config.ts';
import { openBus } from '../bus/open.ts';
import type { Bus } from '../bus/types.ts';
import { openDatabase } from '../database/open.ts';
import { UsageError, intOption } from './usage.ts';

/** The bus as recorded on the server (its shard count may differ from TRADESTORE_SHARDS during a reshard). */
async function recordedBus(config: Config): Promise<Bus> {
  const probe = openBus(config);
  const recorded = await probe.recordedShards();
  if (recorded === null || recorded === config.bus.shards) return probe;
  await probe.close();
  return openBus({ ...config, bus: { ...config.bus, shards: recorded } });
}

/**
 * tradestore ingest status | reshard --shards N. Status shows each shard's owner, waiting entries
 * and committed offset (the database's, which is the truth) and the live workers. Reshard changes
 * the number of shards of a drained bus: it is refused while anything waits or any worker holds a
 * lease, and while dead letters of a shard that would go, or not yet written ones, remain.
 */
export async function ingestCommand(config: Config, args: string[], out: (line: string) => void): Promise<void> {
  const [action, ...rest] = args;
  const { values } = parseArgs({ args: rest, options: { json: { type: 'boolean' }, shards: { type: 'string' } }, strict: true });
  if (action !== 'status' && action !== 'reshard') throw new UsageError('ingest needs status or reshard');
  if (!config.redisUrl) throw new UsageError("the embedded default's bus lives in the running service's process; ingest status and reshard need REDIS_URL");
  const shards = action === 'reshard' ? intOption('shards', values.shards) : undefined;
  if (action === 'reshard' && (shards === undefined || !isPowerOfTwo(shards) || shards > 1024)) {
    throw new UsageError('ingest reshard needs --shards N, a power of two from 1 to 1024');
  }
  const bus = await recordedBus(config);
  const db = await openDatabase(config);
  try {
    const offsets = new Map(
      (await db.query<{ shard: number; last_id: string }>('SELECT shard, last_id FROM ingest_offsets WHERE stream = $1', [config.bus.stream])).rows.map((r) => [Number(r.shard), r.last_id]),
    );
    const outbox = Number((await db.query<{ n: string }>('SELECT count(*) AS n FROM ingest_rejects WHERE stream = $1', [config.bus.stream])).rows[0]!.n);
    if (action === 'status') {
      const stats = await bus.stats();
      const shardsStatus = stats.perShard.map((p) => ({ shard: p.shard, owner: p.owner, waiting: p.length, offset: offsets.get(p.shard) ?? null }));
      if (values.json) {
        return out(JSON.stringify({ shards: stats.shards, workers: stats.workers, lag: stats.lag, entryStream: stats.entryStreamLength, list: stats.listLength, deadLetters: stats.deadLetters, unwrittenDeadLetters: outbox, perShard: shardsStatus }, null, 2));
      }
      out(`${stats.shards} shards, ${stats.workers.length} worker${stats.workers.length === 1 ? '' : 's'} (${stats.workers.join(', ') || 'none'}); ${stats.lag} entries waiting, ${stats.listLength} in the list, ${stats.deadLetters} dead letters`);
      for (const s of shardsStatus) out(`  shard ${String(s.shard).padStart(3)}  ${(s.owner ?? '(no owner)').padEnd(24)}  ${String(s.waiting).padStart(8)} waiting  offset ${s.offset ?? '(none yet)'}`);
      return;
    }
    if (outbox > 0) throw new UsageError(`${outbox} dead letters are committed but not yet written to the bus: start a worker to write them, then reshard`);
    await bus.reshard(shards!).catch((error: Error) => {
      throw new UsageError(`cannot reshard: ${error.message}`);
    });
    await db.query('DELETE FROM ingest_offsets WHERE stream = $1 AND shard >= $2', [config.bus.stream, shards]);
    out(`the bus has ${shards} shards now: set TRADESTORE_SHARDS=${shards} for every worker (and for engines that pick shards), then start them`);
  } finally {
    await bus.close();
    await db.close();
  }
}
