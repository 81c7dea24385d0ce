import { parseArgs } from 'node:util';
import type { Config } from '../config.ts';
import { openBus } from '../bus/open.ts';
import { openDatabase } from '../database/open.ts';
import { InvalidArgumentError, NotFoundError } from '../store/errors.ts';
import type { RiskEvent, RiskLimit } from '../store/risk.ts';
import { storeOver } from '../store/store.ts';
import { intOption, UsageError } from './usage.ts';

const limitLine = (l: RiskLimit) =>
  `${l.id.padStart(5)}  ${l.userId}  ${l.limitType}${l.symbol ? ` ${l.symbol}` : ''}${l.strategyId ? ` strategy ${l.strategyId}` : ''}  ` +
  `${l.currentValue} of ${l.limitValue}  ${l.level}${l.isActive ? '' : ' (inactive)'}${l.measured ? '' : ' (not measured by tradestore)'}${l.source === 'account' ? " (the user's own)" : ''}`;
const eventLine = (e: RiskEvent) =>
  `${e.id.padStart(6)}  ${e.triggeredAt}  ${e.severity.padEnd(8)} ${e.eventType}  ${e.userId ?? '-'}  ${e.description ?? ''}  action ${e.actionTaken ?? '-'}` +
  `${e.acknowledgedBy ? `  acknowledged by ${e.acknowledgedBy}` : ''}${e.resolvedBy ? `  resolved by ${e.resolvedBy}` : ''}`;

/** tradestore risk limits|set|remove|events|ack|resolve: risk limits and events (docs/RISK.md). */
export async function riskCommand(config: Config, args: string[], out: (line: string) => void): Promise<void> {
  const [action, ...rest] = args;
  if (!['limits', 'set', 'remove', 'events', 'ack', 'resolve'].includes(action ?? '')) throw new UsageError('risk needs limits, set, remove, events, ack or resolve');
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    strict: true,
    options: {
      user: { type: 'string' }, type: { type: 'string' }, value: { type: 'string' }, symbol: { type: 'string' }, strategy: { type: 'string' },
      warning: { type: 'string' }, action: { type: 'string' }, inactive: { type: 'boolean' }, open: { type: 'boolean' }, severity: { type: 'string' },
      limit: { type: 'string' }, by: { type: 'string' }, json: { type: 'boolean' },
    },
  });
  const needsId = action === 'remove' || action === 'ack' || action === 'resolve';
  if (needsId !== (positionals.length === 1) || positionals.length > 1) throw new UsageError(needsId ? `risk ${action} needs the id` : `risk ${action} takes no id`);
  if (action === 'set' && (!values.user || !values.type || values.value === undefined)) throw new UsageError('risk set needs --user ID --type TYPE --value V');
  if ((action === 'ack' || action === 'resolve') && !values.by) throw new UsageError(`risk ${action} needs --by (who)`);
  const limit = intOption('limit', values.limit);
  const db = await openDatabase(config);
  const bus = openBus(config);
  const { risk } = storeOver(db, bus);
  const print = (items: object[], line: (x: never) => string, none: string) => {
    if (values.json) return out(JSON.stringify(items, null, 2));
    if (!items.length) return out(none);
    for (const item of items) out(line(item as never));
  };
  try {
    if (action === 'limits') return print(values.user ? await risk.limits(values.user) : await risk.allLimits(), limitLine, 'no risk limits');
    if (action === 'set') {
      const set = await risk.setLimit({
        userId: values.user!, limitType: values.type!, limitValue: values.value!, symbol: values.symbol ?? null, strategyId: values.strategy ?? null,
        warningRatio: values.warning, action: values.action, isActive: values.inactive ? false : undefined,
      });
      return print([set], limitLine, '');
    }
    if (action === 'remove') {
      await risk.removeLimit(positionals[0]!);
      return out(`removed risk limit ${positionals[0]}`);
    }
    if (action === 'events') return print(await risk.events({ userId: values.user, open: values.open, severity: values.severity, limit }), eventLine, 'no risk events');
    const event = action === 'ack' ? await risk.acknowledge(positionals[0]!, values.by!) : await risk.resolve(positionals[0]!, values.by!);
    return print([event], eventLine, '');
  } catch (error) {
    // A bad field is a bad argument (exit 2), named as the option that carries it.
    if (error instanceof InvalidArgumentError) {
      const option = { userId: 'user', limitType: 'type', limitValue: 'value', warningRatio: 'warning', strategyId: 'strategy', symbol: 'symbol', action: 'action', id: 'id' }[error.parameter] ?? error.parameter;
      throw new UsageError(`--${option}: ${error.message.replace(/^[^:]+: /, '')}`);
    }
    if (error instanceof NotFoundError) throw new UsageError(error.message);
    throw error;
  } finally {
    await bus.close();
    await db.close();
  }
}
