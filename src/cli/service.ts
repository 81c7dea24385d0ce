import { parseArgs } from 'node:util';
import type { Config } from '../config.ts';
import { openBus } from '../bus/open.ts';
import { openDatabase } from '../database/open.ts';
import { migrate, migrationStatus } from '../schema/migrator.ts';
import { boundAt, startService } from '../service/service.ts';
import { EngineSimulator } from '../simulator/engine.ts';
import { ensureSimulatorUsers, runSimulator } from '../simulator/run.ts';
import { UsageError, intOption } from './usage.ts';

/** Refuses to serve a database whose schema is behind the code, unless asked to migrate it. */
async function ensureSchema(config: Config, apply: boolean, out: (line: string) => void): Promise<void> {
  const db = await openDatabase(config);
  try {
    const status = await migrationStatus(db);
    if (status.databaseVersion === status.latestVersion) return;
    if (!apply) {
      throw new UsageError(
        `the database schema is at version ${status.databaseVersion}, this tradestore needs ${status.latestVersion}: ` +
          'run `tradestore migrate up` first, or start with --migrate',
      );
    }
    const result = await migrate(db);
    out(`migrated the database from version ${result.from} to ${result.to}`);
  } finally {
    await db.close();
  }
}

export async function startCommand(config: Config, args: string[], out: (line: string) => void): Promise<void> {
  const { values } = parseArgs({
    args,
    options: { migrate: { type: 'boolean' }, simulate: { type: 'string' }, 'no-ingest': { type: 'boolean' }, 'no-api': { type: 'boolean' } },
    strict: true,
  });
  const rate = intOption('simulate', values.simulate);
  if (values['no-ingest'] && values['no-api']) throw new UsageError('--no-ingest and --no-api together leave nothing to run');
  await ensureSchema(config, Boolean(values.migrate), out);
  const service = await startService(config, { ingest: !values['no-ingest'], api: !values['no-api'] });
  const at = boundAt(service);
  out(
    `tradestore listening on ${at.bound}, ${at.url} (${values['no-api'] ? '' : 'API: /v1, /api/v3, /ws; docs: /docs; '}health: /health, metrics: /metrics); ` +
      `database ${service.db.backend}, bus ${service.bus.kind}${config.redisUrl ? ` stream ${config.bus.stream}, list ${config.bus.list}` : ''}`,
  );
  const controller = new AbortController();
  let simulation: Promise<number> | null = null;
  if (rate) {
    const sim = new EngineSimulator();
    await ensureSimulatorUsers(service.db, sim);
    simulation = runSimulator(service.bus, sim, { rate, signal: controller.signal });
    out(`simulator: ${rate} events/s into ${service.bus.kind === 'redis' ? config.bus.stream : 'the in-process bus'}`);
  }
  await new Promise<void>((resolve) => {
    const shutdown = (signal: string) => {
      out(`${signal}: finishing the batch in flight…`);
      resolve();
    };
    process.once('SIGTERM', () => shutdown('SIGTERM'));
    process.once('SIGINT', () => shutdown('SIGINT'));
  });
  controller.abort();
  await simulation;
  await service.stop();
  out('stopped');
}

export async function simulateCommand(config: Config, args: string[], out: (line: string) => void): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      rate: { type: 'string' },
      count: { type: 'string' },
      via: { type: 'string' },
      users: { type: 'string' },
      seed: { type: 'string' },
      prefix: { type: 'string' },
    },
    strict: true,
  });
  if (!config.redisUrl) {
    throw new UsageError('simulate sends to Redis: set REDIS_URL (for the embedded default, use `tradestore start --simulate RATE`)');
  }
  const via = values.via ?? 'stream';
  if (via !== 'stream' && via !== 'list') throw new UsageError(`--via must be stream or list (got ${JSON.stringify(via)})`);
  const rate = intOption('rate', values.rate) ?? 100;
  if (rate < 1) throw new UsageError('--rate must be at least 1');
  const count = intOption('count', values.count);
  const sim = new EngineSimulator({ users: intOption('users', values.users), seed: intOption('seed', values.seed), prefix: values.prefix });
  const db = await openDatabase(config);
  try {
    await ensureSimulatorUsers(db, sim);
  } finally {
    await db.close();
  }
  const bus = openBus(config);
  const controller = new AbortController();
  process.once('SIGINT', () => controller.abort());
  process.once('SIGTERM', () => controller.abort());
  const target = via === 'list' ? `list ${config.bus.list}` : `stream ${config.bus.stream}`;
  out(`simulating ${sim.users.length} users on ${sim.markets.map((m) => m.symbol).join(', ')} at ${rate} events/s into ${target}`);
  const started = Date.now();
  const sent = await runSimulator(bus, sim, {
    rate, count, via, signal: controller.signal,
    onProgress: (n) => out(`simulate: sent ${n}${count !== undefined ? ` of ${count}` : ''} events (${Math.round(n / ((Date.now() - started) / 1000))}/s)`),
  });
  await bus.close();
  out(`sent ${sent} events (${sim.expected.trades} trades)`);
}
