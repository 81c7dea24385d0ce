import { parseArgs } from 'node:util';
import type { Config } from '../config.ts';
import { openBus } from '../bus/open.ts';
import { openDatabase } from '../database/open.ts';
import { InvalidArgumentError, NotFoundError } from '../store/errors.ts';
import { RANKABLE, type Backtest, type RankBy } from '../store/backtests.ts';
import { storeOver } from '../store/store.ts';
import { intOption, UsageError } from './usage.ts';

const STATUSES = ['pending', 'running', 'completed', 'failed', 'cancelled'] as const;

const line = (b: Backtest) =>
  `${b.id.padStart(6)}  ${b.status.padEnd(9)} ${String(b.progress).padStart(3)} %  ${b.name}  strategy ${b.strategyId}  ${b.startDate.slice(0, 10)} → ${b.endDate.slice(0, 10)}  ` +
  `trades ${b.tradesStored}${b.results ? `  return ${b.results.metrics.totalReturn ?? '—'}  sharpe ${b.results.metrics.sharpeRatio ?? '—'}` : ''}`;

/** tradestore backtest list|show|compare: backtests, their progress and summary (docs/BACKTESTS.md). */
export async function backtestCommand(config: Config, args: string[], out: (line: string) => void): Promise<void> {
  const [action, ...rest] = args;
  if (!['list', 'show', 'compare'].includes(action ?? '')) throw new UsageError('backtest needs list, show or compare');
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    strict: true,
    options: { strategy: { type: 'string' }, status: { type: 'string' }, 'order-by': { type: 'string' }, limit: { type: 'string' }, json: { type: 'boolean' } },
  });
  if (action === 'list' && positionals.length) throw new UsageError('backtest list takes no id (use --strategy ID)');
  if (action !== 'list' && positionals.length !== 1) throw new UsageError(`backtest ${action} needs the backtest id`);
  if (values.status !== undefined && !STATUSES.includes(values.status as never)) throw new UsageError(`--status must be one of ${STATUSES.join(', ')}`);
  const orderBy = values['order-by'];
  if (orderBy !== undefined && !(orderBy in RANKABLE)) throw new UsageError(`--order-by must be one of ${Object.keys(RANKABLE).join(', ')}`);
  const limit = intOption('limit', values.limit);
  const db = await openDatabase(config);
  const bus = openBus(config);
  const store = storeOver(db, bus);
  try {
    if (action === 'list') {
      const list = await store.backtests.list({ strategyId: values.strategy, status: values.status as (typeof STATUSES)[number] | undefined, orderBy: orderBy as RankBy | undefined, limit });
      if (values.json) return out(JSON.stringify(list, null, 2));
      if (!list.length) return out('no backtests');
      for (const b of list) out(line(b));
      return;
    }
    const id = positionals[0]!;
    if (action === 'show') {
      const b = await store.backtests.get(id);
      if (values.json) return out(JSON.stringify(b, null, 2));
      out(line(b));
      out(`  capital ${b.initialCapital}, commission ${b.commission}, slippage ${b.slippage}, symbols ${b.symbols.join(',')}${b.timeframes.length ? `, timeframes ${b.timeframes.join(',')}` : ''}`);
      if (b.errorMessage) out(`  error: ${b.errorMessage}`);
      if (b.results) {
        out(`  final capital ${b.results.finalCapital}, equity from ${b.results.equitySource}`);
        for (const [name, value] of Object.entries(b.results.metrics)) out(`  ${name.padEnd(22)} ${value ?? `—  (${b.results.reasons[name]})`}`);
      }
      return;
    }
    const c = await store.backtests.compare(id);
    if (values.json) return out(JSON.stringify(c, null, 2));
    out(`backtest ${c.backtestId} against strategy ${c.strategyId} live, ${c.from} → ${c.to}`);
    out(`  ${'metric'.padEnd(22)} ${'backtest'.padStart(24)} ${'live'.padStart(24)} ${'live − backtest'.padStart(24)}`);
    for (const m of c.metrics) out(`  ${m.name.padEnd(22)} ${(m.backtest ?? '—').padStart(24)} ${(m.live ?? '—').padStart(24)} ${(m.difference ?? '—').padStart(24)}`);
  } catch (error) {
    if (error instanceof NotFoundError) throw new UsageError(`no backtest ${positionals[0]}`);
    if (error instanceof InvalidArgumentError) throw new UsageError(error.message);
    throw error;
  } finally {
    await bus.close();
    await db.close();
  }
}
