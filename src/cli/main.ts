import { ConfigError, loadConfig } from '../config.ts';
import { openDatabase } from '../database/open.ts';
import { DirectoryLockedError } from '../database/lockFile.ts';
import { MigrationError } from '../schema/migrator.ts';
import { UserInputError } from '../users/users.ts';
import { NotFoundError } from '../store/errors.ts';
import { apiKeyCommand, seedCommand, userCommand } from './admin.ts';
import { demoCommand } from './demo.ts';
import { maintenanceCommand } from './maintenance.ts';
import { backtestCommand } from './backtest.ts';
import { riskCommand } from './risk.ts';
import { credentialsCommand, keysCommand } from './credentials.ts';
import { sessionsCommand } from './sessions.ts';
import { modelsCommand } from './models.ts';
import { migrateCommand } from './migrate.ts';
import { MaintenanceBusyError } from '../schema/maintenanceJobs.ts';
import { dlqCommand } from './dlq.ts';
import { exportCommand } from './export.ts';
import { healthCommand } from './health.ts';
import { strategyCommand } from './strategy.ts';
import { analyticsCommand } from './analytics.ts';
import { backupCommand, restoreCommand } from './backup.ts';
import { BackupError } from '../ops/backup.ts';
import { ingestCommand } from './ingest.ts';
import { ShardCountError } from '../bus/types.ts';
import { simulateCommand, startCommand } from './service.ts';
import { CommandExit, commandHelp, USAGE, USAGE_COMMANDS, UsageError } from './usage.ts';
import { readFileSync } from 'node:fs';
import type { Database } from '../database/types.ts';
import type { OpenDatabase } from './admin.ts';
import { installFaultHandler } from '../service/faults.ts';
import { actAs } from '../security/audit.ts';
import { userInfo } from 'node:os';
import { auditCommand } from './audit.ts';

const cliUser = () => {
  try {
    return userInfo().username;
  } catch {
    return `uid ${process.getuid?.() ?? '?'}`;
  }
};

const out = (line: string) => process.stdout.write(line + '\n');

/** Commands that serve until stopped: a stray rejection is logged there, not fatal (service/faults.ts). */
const LONG_RUNNING = new Set(['start', 'demo']);

const VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

/** A client error of ioredis's whose message alone would not say that Redis is unreachable. */
const redisUnreachable = (e: Error) => e.name === 'MaxRetriesPerRequestError' || /Connection is closed|Stream isn't writeable/.test(e.message);

/** Runs one CLI command and returns the exit code: 0 done, 1 failed, 2 bad usage or configuration. */
export async function run(argv: string[]): Promise<number> {
  const [command, ...args] = argv;
  if (!command || command === 'help' || command === '--help' || command === '-h') {
    out(USAGE);
    return command ? 0 : 2;
  }
  if (command === '--version' || command === '-V' || command === 'version') {
    out(`tradestore ${VERSION}`);
    return 0;
  }
  const withDatabase: Record<string, (open: OpenDatabase, args: string[], out: (line: string) => void) => Promise<void>> = {
    migrate: migrateCommand, seed: seedCommand, user: userCommand, apikey: apiKeyCommand, maintenance: maintenanceCommand, export: exportCommand,
  };
  const standalone: Record<string, typeof startCommand> = { start: startCommand, simulate: simulateCommand, dlq: dlqCommand, ingest: ingestCommand, demo: demoCommand, health: healthCommand, backup: backupCommand, restore: restoreCommand, strategy: strategyCommand, analytics: analyticsCommand, backtest: backtestCommand, risk: riskCommand, models: modelsCommand, credentials: credentialsCommand, keys: keysCommand, sessions: sessionsCommand, audit: auditCommand };
  try {
    if (!withDatabase[command] && !standalone[command]) throw new UsageError(`unknown command ${JSON.stringify(command)}`);
    // `tradestore <command> [...] --help`: that command's part of the usage, nothing run.
    if (args.includes('--help') || args.includes('-h')) {
      out(commandHelp(command));
      return 0;
    }
    const config = loadConfig();
    // What the command changes is the operating-system user's doing (the audit trail); a
    // service's changes are its requests' keys' (set per request), not whoever started it.
    if (!LONG_RUNNING.has(command)) actAs({ who: `cli:${cliUser()}` });
    if (standalone[command]) {
      if (LONG_RUNNING.has(command)) installFaultHandler((line) => process.stderr.write(`${line}\n`));
      await standalone[command](config, args, out);
      return 0;
    }
    // The database is opened only once the command has checked its arguments.
    let db: Database | null = null;
    try {
      await withDatabase[command]!(async () => (db ??= await openDatabase(config)), args, out);
    } finally {
      await (db as Database | null)?.close();
    }
    return 0;
  } catch (error) {
    const e = error as Error;
    if (e instanceof UsageError || e instanceof ConfigError || (e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`tradestore: ${e.message}\n\n${command && USAGE_COMMANDS.has(command) ? commandHelp(command) : USAGE}`);
      return 2;
    }
    if (e instanceof CommandExit) {
      process.stderr.write(`tradestore: ${e.message}\n`);
      return e.exitCode;
    }
    if (redisUnreachable(e)) {
      process.stderr.write(`tradestore: Redis at ${redisAddress()} is unreachable (${e.message}): is it running, and is REDIS_URL right?\n`);
      return 1;
    }
    const known =
      e instanceof MigrationError || e instanceof ShardCountError || e instanceof UserInputError || e instanceof DirectoryLockedError || e instanceof NotFoundError || e instanceof MaintenanceBusyError || e instanceof BackupError;
    process.stderr.write(`tradestore: ${e.message}\n`);
    const cause = (e as { cause?: Error }).cause;
    if (cause instanceof DirectoryLockedError) process.stderr.write(`  ${cause.message}\n`);
    if (!known && process.env.TRADESTORE_DEBUG) process.stderr.write(`${e.stack}\n`);
    return 1;
  }
}

/** REDIS_URL without its password, for messages. */
function redisAddress(): string {
  try {
    const url = new URL(process.env.REDIS_URL ?? '');
    return `${url.hostname}:${url.port || 6379}`;
  } catch {
    return 'REDIS_URL';
  }
}

const code = await run(process.argv.slice(2));
process.exitCode = code;
// Whatever a command leaves open (a connection that retries, a timer) must not keep it alive:
// after two seconds of grace for the output to drain, the process ends with its code.
setTimeout(() => process.exit(code), 2000).unref();
