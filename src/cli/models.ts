import { parseArgs } from 'node:util';
import type { Config } from '../config.ts';
import { openBus } from '../bus/open.ts';
import { openDatabase } from '../database/open.ts';
import { InvalidArgumentError, NotFoundError } from '../store/errors.ts';
import type { Model } from '../store/models.ts';
import { storeOver } from '../store/store.ts';
import { dateOption, UsageError } from './usage.ts';

const line = (m: Model) =>
  `${m.id.padStart(5)}  ${m.name} v${m.version}  ${m.modelType}  ${m.symbol} ${m.timeframe}  ${m.isActive ? 'ACTIVE' : 'inactive'}` +
  `${m.validationScore ? `  validation ${m.validationScore}` : ''}${m.testScore ? `  test ${m.testScore}` : ''}`;

/** tradestore models list|show|register|activate|accuracy: the model registry and its predictions' accuracy (docs/MODELS.md). */
export async function modelsCommand(config: Config, args: string[], out: (line: string) => void): Promise<void> {
  const [action, ...rest] = args;
  if (!['list', 'show', 'register', 'activate', 'accuracy'].includes(action ?? '')) throw new UsageError('models needs list, show, register, activate or accuracy');
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    strict: true,
    options: {
      symbol: { type: 'string' }, timeframe: { type: 'string' }, name: { type: 'string' }, active: { type: 'boolean' }, type: { type: 'string' },
      version: { type: 'string' }, features: { type: 'string' }, hyperparameters: { type: 'string' }, 'trained-from': { type: 'string' },
      'trained-to': { type: 'string' }, validation: { type: 'string' }, test: { type: 'string' }, path: { type: 'string' }, from: { type: 'string' },
      to: { type: 'string' }, json: { type: 'boolean' },
    },
  });
  const needsId = ['show', 'activate', 'accuracy'].includes(action!);
  if (needsId ? positionals.length !== 1 : positionals.length !== 0) throw new UsageError(needsId ? `models ${action} needs the model id` : `models ${action} takes no id`);
  const json = (text: string | undefined, option: string) => {
    if (text === undefined) return undefined;
    try {
      return JSON.parse(text) as never;
    } catch {
      throw new UsageError(`--${option} must be JSON`);
    }
  };
  const range = { from: dateOption('from', values.from), to: dateOption('to', values.to) };
  const trained = { trainingDataStart: dateOption('trained-from', values['trained-from']), trainingDataEnd: dateOption('trained-to', values['trained-to']) };
  if (action === 'register' && (!values.name || !values.type || !values.version || !values.symbol || !values.timeframe || !values.features)) {
    throw new UsageError('models register needs --name --type --version --symbol --timeframe --features JSON');
  }
  const features = json(values.features, 'features');
  const hyperparameters = json(values.hyperparameters, 'hyperparameters');
  const db = await openDatabase(config);
  const bus = openBus(config);
  const { models } = storeOver(db, bus);
  try {
    if (action === 'list') {
      const list = await models.list({ symbol: values.symbol, timeframe: values.timeframe, name: values.name, active: values.active });
      if (values.json) return out(JSON.stringify(list, null, 2));
      if (!list.length) return out('no models');
      for (const m of list) out(line(m));
      return;
    }
    if (action === 'register') {
      const m = await models.register({
        name: values.name!, modelType: values.type!, version: values.version!, symbol: values.symbol!, timeframe: values.timeframe!, features: features!,
        hyperparameters, ...trained, validationScore: values.validation, testScore: values.test, modelPath: values.path,
      });
      return out(values.json ? JSON.stringify(m, null, 2) : line(m));
    }
    const id = positionals[0]!;
    if (action === 'show' || action === 'activate') {
      const m = action === 'show' ? await models.get(id) : await models.activate(id);
      return out(values.json ? JSON.stringify(m, null, 2) : line(m));
    }
    const a = await models.accuracy(id, range);
    if (values.json) return out(JSON.stringify(a, null, 2));
    out(`model ${a.modelId}: ${a.predictions} predictions with their actual value, ${a.pending} pending`);
    out(`  MAE ${a.mae ?? '—'}  RMSE ${a.rmse ?? '—'}  MAPE ${a.mape ?? '—'} %  directional accuracy ${a.directionalAccuracy ?? '—'}`);
    for (const b of a.calibration) out(`  confidence ${b.lower}–${b.upper}: ${b.predictions} predictions, mean ${b.meanConfidence}, directional accuracy ${b.directionalAccuracy ?? '—'}`);
  } catch (error) {
    if (error instanceof InvalidArgumentError) {
      const option = { modelType: 'type', validationScore: 'validation', testScore: 'test', trainingDataEnd: 'trained-to', modelPath: 'path' }[error.parameter] ?? error.parameter;
      throw new UsageError(`--${option}: ${error.message.replace(/^[^:]+: /, '')}`);
    }
    if (error instanceof NotFoundError) throw new UsageError(error.message);
    throw error;
  } finally {
    await bus.close();
    await db.close();
  }
}
