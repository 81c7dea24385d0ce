export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export const USAGE = `tradestore: the data persistence layer of a trading platform

Usage:
  tradestore migrate up [--to N]        apply migrations (default: all)
  tradestore migrate down [--to N]      undo migrations down to version N (default: 0, nothing left)
  tradestore migrate status [--json]    applied and pending migrations, checksums, capabilities
  tradestore seed                       markets, instruments, example strategies, fees, config (idempotent)
  tradestore user create --id ID --email EMAIL [--password P]
                                        create a user; the password is hashed with argon2id
  tradestore demo                       migrate and seed the configured database and describe it
  tradestore help                       this text

Configuration (environment):
  DATABASE_URL         PostgreSQL server (postgres://…); unset = embedded database
  TRADESTORE_DATA_DIR  embedded database directory (default ./.tradestore/db)
`;

/** Parses a non-negative integer option, naming the option when it is not one. */
export function intOption(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value)) throw new UsageError(`--${name} must be a non-negative integer (got ${JSON.stringify(value)})`);
  return Number(value);
}
