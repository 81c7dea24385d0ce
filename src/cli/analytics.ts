import { parseArgs } from 'node:util';
import type { Config } from '../config.ts';
import { openBus } from '../bus/open.ts';
import { openDatabase } from '../database/open.ts';
import { InvalidArgumentError } from '../store/errors.ts';
import { storeOver } from '../store/store.ts';
import { dateOption, UsageError } from './usage.ts';

/** tradestore analytics ID [--from T] [--to T] [--benchmark SYMBOL] [--risk-free RATE] [--json]: a strategy's metrics (docs/ANALYTICS.md). */
export async function analyticsCommand(config: Config, args: string[], out: (line: string) => void): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    strict: true,
    options: { from: { type: 'string' }, to: { type: 'string' }, benchmark: { type: 'string' }, 'risk-free': { type: 'string' }, json: { type: 'boolean' } },
  });
  if (positionals.length !== 1) throw new UsageError('analytics needs the strategy id');
  const riskFree = values['risk-free'] === undefined ? undefined : Number(values['risk-free']);
  if (riskFree !== undefined && !(riskFree >= 0 && riskFree < 1)) throw new UsageError('--risk-free must be an annual rate from 0 to 1 (0.04 for 4 %)');
  const options = { from: dateOption('from', values.from), to: dateOption('to', values.to), benchmark: values.benchmark, riskFree };
  const db = await openDatabase(config);
  const bus = openBus(config);
  try {
    const a = await storeOver(db, bus).strategies.analytics(positionals[0]!, options);
    if (values.json) return out(JSON.stringify(a, null, 2));
    out(`strategy ${a.strategyId}: ${a.equityDays} days of equity (${a.equitySource ?? 'none'}), ${a.periodsPerYear} periods a year, risk-free ${a.riskFree}${a.benchmark ? `, against ${a.benchmark}` : ''}`);
    for (const [name, value] of Object.entries(a.metrics)) out(`  ${name.padEnd(22)} ${value ?? `—  (${a.reasons[name]})`}`);
  } catch (error) {
    if (error instanceof InvalidArgumentError) throw new UsageError(`--${error.message.replace(/^riskFree/, 'risk-free')}`);
    throw error;
  } finally {
    await bus.close();
    await db.close();
  }
}
