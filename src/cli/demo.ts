import { parseArgs } from 'node:util';
import type { Config } from '../config.ts';
import { boundAt, startService } from '../service/service.ts';
import { EngineSimulator } from '../simulator/engine.ts';
import { ensureSimulatorUsers, runSimulator } from '../simulator/run.ts';
import { setupDemoStrategy } from '../simulator/demoStrategy.ts';
import { describe } from './migrate.ts';
import { intOption, UsageError } from './usage.ts';

/**
 * The whole system on the configured database (the embedded one by default) and bus (in
 * process by default): migrate and seed, then the ingest service, the API, the dashboard and
 * a simulated engine, until SIGINT or SIGTERM. A demo user's strategy with about 120 days of round
 * trips and day-end snapshots (sent through the bus) is shown on the strategy page, whose address carries a new read key
 * of that user in its fragment.
 */
export async function demoCommand(config: Config, args: string[], out: (line: string) => void): Promise<void> {
  const { values } = parseArgs({ args, options: { rate: { type: 'string' }, 'no-simulate': { type: 'boolean' } }, strict: true });
  const rate = intOption('rate', values.rate) ?? 50;
  if (rate < 1) throw new UsageError('--rate must be at least 1');
  const service = await startService(config, { migrate: true, log: (line) => out(line) });
  const where = config.databaseUrl ? 'DATABASE_URL' : config.dataDir;
  out(`tradestore demo: ${describe(service.db)} at ${where}, bus ${service.bus.kind}`);
  const { rows } = await service.db.query<{ n: string }>(`SELECT count(*)::text AS n FROM markets`);
  out(`schema up to date and seeded (${rows[0]!.n} markets)`);
  // Before the simulator starts, so its round trips are first on the bus.
  const strategy = await setupDemoStrategy({ db: service.db, bus: service.bus, store: service.store, ingesting: service.worker !== null });
  out(strategy.sent
    ? `demo strategy: ${strategy.sent} round trips and ${strategy.snapshots} day-end snapshots sent through the bus${strategy.ingested ? ' and ingested' : ', not ingested yet'}`
    : 'demo strategy: kept from an earlier run');
  const controller = new AbortController();
  let simulation: Promise<number> | null = null;
  if (!values['no-simulate']) {
    const sim = new EngineSimulator();
    await ensureSimulatorUsers(service.db, sim);
    simulation = runSimulator(service.bus, sim, { rate, signal: controller.signal });
    out(`simulated engine: ${rate} events/s on ${sim.markets.map((m) => m.symbol).join(', ')}`);
  }
  const at = boundAt(service);
  out(`listening on ${at.bound}`);
  out(`dashboard: ${at.url}/`);
  // The key (read scope, the demo user's) travels in the fragment, which the browser never sends.
  out(`strategies: ${at.url}/dashboard/strategies#key=${strategy.key}`);
  out(`API docs:  ${at.url}/docs   (Binance format: /api/v3/klines?symbol=TATA_INR&interval=1m)`);
  out('Ctrl-C stops the demo.');
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', () => resolve());
    process.once('SIGINT', () => resolve());
  });
  controller.abort();
  await simulation;
  await service.stop();
  out('stopped');
}
