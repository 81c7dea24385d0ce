import { parseArgs } from 'node:util';
import type { Config } from '../config.ts';
import { openBus } from '../bus/open.ts';
import { openDatabase } from '../database/open.ts';
import { InvalidArgumentError } from '../store/errors.ts';
import { storeOver } from '../store/store.ts';
import type { Strategy } from '../store/strategies.ts';
import { intOption, UsageError } from './usage.ts';

const describe = (s: Strategy) =>
  `${s.id}  ${s.name}  v${s.version}  ${s.isActive ? 'enabled' : 'disabled'}  ${s.executionMode.toUpperCase()}  ${s.timeframe ?? '-'}  ${s.symbols.join(',')}  ` +
  `owner ${s.userId ?? '(none)'}  trades ${s.totalTrades} (${s.winningTrades} won)  P&L ${s.totalPnl}  capital ${s.initialCapital ?? '-'}  max drawdown ${s.maxDrawdown ?? '-'}`;

const parseConfig = (text: string | undefined) => {
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text) as Record<string, unknown>;
  } catch {
    throw new UsageError('--config must be a JSON object, e.g. \'{"fast":9,"slow":21}\'');
  }
};
const list = (text: string | undefined) => (text === undefined ? undefined : text.split(',').map((s) => s.trim()).filter(Boolean));

/**
 * tradestore strategy create|update|enable|disable|list|show: strategies and their versions. The
 * cache entries a running service keeps of them (in Redis, when REDIS_URL is set) are dropped.
 */
export async function strategyCommand(config: Config, args: string[], out: (line: string) => void): Promise<void> {
  const [action, ...rest] = args;
  const options = {
    id: { type: 'string' }, name: { type: 'string' }, type: { type: 'string' }, timeframe: { type: 'string' }, symbols: { type: 'string' },
    config: { type: 'string' }, capital: { type: 'string' }, mode: { type: 'string' }, user: { type: 'string' }, by: { type: 'string' }, version: { type: 'string' }, json: { type: 'boolean' },
  } as const;
  const { values } = parseArgs({ args: rest, options, strict: true });
  if (!['create', 'update', 'enable', 'disable', 'list', 'show'].includes(action ?? '')) throw new UsageError('strategy needs create, update, enable, disable, list or show');
  if (action !== 'create' && action !== 'list' && !values.id) throw new UsageError(`strategy ${action} needs --id ID`);
  if (values.mode !== undefined && values.mode !== 'paper' && values.mode !== 'live') throw new UsageError('--mode must be paper or live');
  const version = intOption('version', values.version);
  const changes = {
    name: values.name,
    type: values.type,
    timeframe: values.timeframe,
    symbols: list(values.symbols),
    config: parseConfig(values.config),
    executionMode: values.mode as 'paper' | 'live' | undefined,
    // --capital none takes the initial capital away.
    initialCapital: values.capital === 'none' ? null : values.capital,
  };
  const db = await openDatabase(config);
  const bus = openBus(config);
  const store = storeOver(db, bus);
  try {
    let result: Strategy | Strategy[];
    if (action === 'create') {
      if (!values.name || !changes.symbols) throw new UsageError('strategy create needs --name and --symbols A,B');
      result = await store.strategies.create({ ...changes, initialCapital: changes.initialCapital ?? null, name: values.name, symbols: changes.symbols, userId: values.user ?? null }, values.by ?? values.user ?? null);
    } else if (action === 'update') {
      result = await store.strategies.update(values.id!, { ...Object.fromEntries(Object.entries(changes).filter(([, v]) => v !== undefined)), ...(values.user ? { userId: values.user } : {}) }, values.by ?? null);
    } else if (action === 'enable' || action === 'disable') {
      result = await store.strategies.update(values.id!, { isActive: action === 'enable' });
    } else if (action === 'list') {
      result = await store.strategies.list(values.user);
    } else {
      const strategy = await store.strategies.get(values.id!);
      const versions = await store.strategies.versions(values.id!);
      const chosen = version === undefined ? null : versions.find((v) => v.version === version);
      if (version !== undefined && !chosen) throw new UsageError(`strategy ${values.id} has no version ${version} (versions: ${versions.map((v) => v.version).join(', ') || 'none recorded'})`);
      if (values.json) return out(JSON.stringify(chosen ?? { ...strategy, versions }, null, 2));
      if (chosen) return out(`${values.id} version ${chosen.version}, ${chosen.createdAt}${chosen.createdBy ? ` by ${chosen.createdBy}` : ''}:\n${JSON.stringify(chosen.configuration, null, 2)}`);
      out(describe(strategy));
      out(`config: ${JSON.stringify(strategy.config)}`);
      for (const v of versions) out(`  version ${v.version}  ${v.createdAt}${v.createdBy ? `  by ${v.createdBy}` : ''}`);
      return;
    }
    if (values.json) return out(JSON.stringify(result, null, 2));
    for (const s of Array.isArray(result) ? result : [result]) out(describe(s));
    if (Array.isArray(result) && result.length === 0) out('no strategies');
  } catch (error) {
    // A bad field is a bad argument (exit 2), named as the option that carries it.
    if (error instanceof InvalidArgumentError) {
      const option = { symbols: 'symbols', timeframe: 'timeframe', config: 'config', name: 'name', type: 'type', executionMode: 'mode', userId: 'user', initialCapital: 'capital' }[error.parameter] ?? error.parameter;
      throw new UsageError(`--${option}: ${error.message.replace(/^[^:]+: /, '')}`);
    }
    throw error;
  } finally {
    await bus.close();
    await db.close();
  }
}
