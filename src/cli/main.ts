import { ConfigError, loadConfig } from '../config.ts';
import { openDatabase } from '../database/open.ts';
import { DirectoryLockedError } from '../database/lockFile.ts';
import { MigrationError } from '../schema/migrator.ts';
import { UserInputError } from '../users/users.ts';
import { NotFoundError } from '../store/errors.ts';
import { apiKeyCommand, seedCommand, userCommand } from './admin.ts';
import { demoCommand } from './demo.ts';
import { maintenanceCommand } from './maintenance.ts';
import { migrateCommand } from './migrate.ts';
import { MaintenanceBusyError } from '../schema/maintenanceJobs.ts';
import { dlqCommand } from './dlq.ts';
import { ingestCommand } from './ingest.ts';
import { ShardCountError } from '../bus/types.ts';
import { simulateCommand, startCommand } from './service.ts';
import { USAGE, UsageError } from './usage.ts';
import { installFaultHandler } from '../service/faults.ts';

const out = (line: string) => process.stdout.write(line + '\n');

/** Commands that serve until stopped: a stray rejection is logged there, not fatal (service/faults.ts). */
const LONG_RUNNING = new Set(['start', 'demo']);

/** Runs one CLI command and returns the exit code: 0 done, 1 failed, 2 bad usage or configuration. */
export async function run(argv: string[]): Promise<number> {
  const [command, ...args] = argv;
  if (!command || command === 'help' || command === '--help' || command === '-h') {
    out(USAGE);
    return command ? 0 : 2;
  }
  const withDatabase: Record<string, true> = { migrate: true, seed: true, user: true, apikey: true, maintenance: true };
  const standalone: Record<string, typeof startCommand> = { start: startCommand, simulate: simulateCommand, dlq: dlqCommand, ingest: ingestCommand, demo: demoCommand };
  try {
    if (!withDatabase[command] && !standalone[command]) throw new UsageError(`unknown command ${JSON.stringify(command)}`);
    const config = loadConfig();
    if (standalone[command]) {
      if (LONG_RUNNING.has(command)) installFaultHandler((line) => process.stderr.write(`${line}\n`));
      await standalone[command](config, args, out);
      return 0;
    }
    const db = await openDatabase(config);
    try {
      if (command === 'migrate') await migrateCommand(db, args, out);
      else if (command === 'seed') await seedCommand(db, args, out);
      else if (command === 'user') await userCommand(db, args, out);
      else if (command === 'maintenance') await maintenanceCommand(db, args, out);
      else await apiKeyCommand(db, args, out);
    } finally {
      await db.close();
    }
    return 0;
  } catch (error) {
    const e = error as Error;
    if (e instanceof UsageError || e instanceof ConfigError || (e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`tradestore: ${e.message}\n\n${USAGE}`);
      return 2;
    }
    const known =
      e instanceof MigrationError || e instanceof ShardCountError || e instanceof UserInputError || e instanceof DirectoryLockedError || e instanceof NotFoundError || e instanceof MaintenanceBusyError;
    process.stderr.write(`tradestore: ${e.message}\n`);
    const cause = (e as { cause?: Error }).cause;
    if (cause instanceof DirectoryLockedError) process.stderr.write(`  ${cause.message}\n`);
    if (!known && process.env.TRADESTORE_DEBUG) process.stderr.write(`${e.stack}\n`);
    return 1;
  }
}

const code = await run(process.argv.slice(2));
process.exitCode = code;
// Whatever a command leaves open (a connection that retries, a timer) must not keep it alive:
// after two seconds of grace for the output to drain, the process ends with its code.
setTimeout(() => process.exit(code), 2000).unref();
