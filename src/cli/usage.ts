/** A command that ends with its own exit code and message (e.g. health with alerts active: 3). */
export class CommandExit extends Error {
  constructor(
    readonly exitCode: number,
    message: string,
  ) {
    super(message);
    this.name = 'CommandExit';
  }
}

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
  tradestore user create --id ID --email EMAIL [--password-stdin | --prompt-password] [--scopes read,trade,admin]
                                        create a user; the password (from standard input, the
                                        terminal or TRADESTORE_PASSWORD) is hashed with argon2id;
                                        scopes: what their sessions may do (default read,trade)
  tradestore user password --id ID [--password-stdin | --prompt-password]
                                        set a user's password; ends their sessions
  tradestore user list [--json]         users, with their active API keys (never a password hash)
  tradestore apikey create --user ID [--scopes read,trade,admin] [--name NAME] [--json]
                                        create an API key (shown once, stored hashed)
  tradestore apikey list [--user ID] [--json]
                                        API keys with their prefix, scopes and status (never the key)
  tradestore apikey revoke --id N       revoke an API key
  tradestore strategy create --name N --symbols A,B [--timeframe 1h] [--type T] [--config JSON] [--capital C] [--mode paper|live] [--user ID]
  tradestore strategy update --id ID [--name N] [--symbols A,B] [--timeframe T] [--type T] [--config JSON] [--capital C|none] [--mode paper|live] [--user ID] [--by ID]
  tradestore strategy enable|disable --id ID
  tradestore strategy list [--user ID] [--json]
  tradestore strategy show --id ID [--version N] [--json]
                                        strategies and their versions (every configuration change is one)
  tradestore analytics ID [--from T] [--to T] [--benchmark SYMBOL] [--risk-free RATE] [--json]
                                        a strategy's metrics (docs/ANALYTICS.md): returns, risk,
                                        drawdown, against a benchmark, round trips
  tradestore backtest list [--strategy ID] [--status S] [--order-by METRIC] [--limit N] [--json]
  tradestore backtest show ID [--json]
  tradestore backtest compare ID [--json]
                                        backtests with their progress and summary, ranked by a
                                        metric, against the strategy live (docs/BACKTESTS.md)
  tradestore risk limits [--user ID] [--json]
  tradestore risk set --user ID --type TYPE --value V [--symbol S] [--strategy ID] [--warning 0.8] [--action A] [--inactive]
  tradestore risk remove ID
  tradestore risk events [--user ID] [--open] [--severity warning|critical] [--limit N] [--json]
  tradestore risk ack|resolve ID --by WHO
                                        risk limits, evaluated as data arrives, and the events
                                        they raise (docs/RISK.md)
  tradestore models list [--symbol S] [--timeframe T] [--name N] [--active] [--json]
  tradestore models register --name N --type T --version V --symbol S --timeframe T --features JSON [--hyperparameters JSON]
                             [--trained-from T] [--trained-to T] [--validation X] [--test X] [--path P]
  tradestore models show|activate ID [--json]
  tradestore models accuracy ID [--from T] [--to T] [--json]
                                        the model registry (one active version per symbol and
                                        timeframe) and its predictions' accuracy (docs/MODELS.md)
  tradestore credentials add --exchange NAME [--user ID] [--config JSON] [--json]   (API key, then secret, on standard input)
  tradestore credentials list [--user ID] [--json]
  tradestore credentials remove ID
                                        exchange and broker credentials, sealed under
                                        TRADESTORE_KEYRING; never shown (docs/SECURITY.md)
  tradestore audit [--user ID] [--resource TYPE] [--id ID] [--action A] [--actor WHO] [--since T] [--until T] [--limit N] [--json]
                                        the audit trail: who changed what, old and new values
                                        (secrets redacted), from where (docs/SECURITY.md)
  tradestore sessions list|revoke|two-factor-off --user ID [--json]
                                        a user's password sessions (never a token); log them out
                                        everywhere; turn two-factor authentication off (lost device)
  tradestore keys status [--json]
  tradestore keys rotate [--batch N]
  tradestore keys retire KEY_ID
                                        which keys seal how many credentials; re-seal all under the
                                        current key (resumable); check a key can leave the keyring
  tradestore start [--migrate] [--simulate RATE] [--no-ingest] [--no-api]
                                        run the ingest service and the API (/v1, /api/v3, /ws, /docs)
                                        with /health and /metrics on PORT
  tradestore simulate [--rate N] [--count N] [--via stream|list] [--users N] [--seed N]
                                        send seed-000 engine events to Redis at a steady rate
  tradestore dlq list [--json] [--limit N] [--after ID]
                                        dead letters with reason and a preview of each field
  tradestore dlq show --id ID [--json | --raw [--field payload]]
                                        one dead letter in full (--raw: the field's bytes as they arrived)
  tradestore dlq replay (--id ID ... | --all)
                                        put dead letters back on their shard, fields unchanged
  tradestore dlq purge (--id ID ... | --all)
                                        remove dead letters for good (after reading them)
  tradestore ingest status [--json]     shards: owner, entries waiting, committed offset; live workers
  tradestore ingest reshard --shards N  change the number of shards of a drained bus (docs/SCALING.md)
  tradestore maintenance run [--job NAME] [--json]
                                        run the lifecycle jobs now (policies, aggregates, retention,
                                        archive, sessions); the service runs them on a schedule
  tradestore maintenance status [--json]
                                        each job, its schedule, its last run and what it did
  tradestore export candles|trades|TABLE [--market M] [--exchange E] [--interval I] [--from T]
                   [--to T] [--time-column C] [--format csv|jsonl] [--out FILE]
                                        stream rows out with COPY TO (times in [from, to)), with
                                        progress; --out FILE is written whole or not at all
  tradestore health [--json] [--slow-query-ms N]
                                        table sizes, sessions and pool, long-running queries, lock waits,
                                        statements, replication, jobs, ingest, and the alerts firing;
                                        exits 3 while an alert is active
  tradestore backup [--out DIR] [--tables a,b | --since T] [--keep N]
                                        a server's pg_dump archive (one snapshot), or the embedded
                                        data directory, with a manifest of each table's rows and
                                        checksum; --since: the time-series tables' rows from T on,
                                        as CSV; keeps the newest N of each kind (default 7)
  tradestore restore ARCHIVE [--into DATABASE_URL|DIR] [--tables a,b] [--force]
                                        restore into an empty database (or chosen tables), then
                                        verify every table against the manifest
  tradestore demo [--rate N] [--no-simulate]
                                        the whole system on the configured database (embedded by
                                        default): ingest, API, simulated engine, dashboard at /,
                                        a demo strategy's page at /dashboard/strategies#key=…
  tradestore help                       this text (tradestore <command> --help: that command's part)
  tradestore --version                  the version

Configuration (environment):
  DATABASE_URL         PostgreSQL server (postgres://…); unset = embedded database
  TRADESTORE_DATA_DIR  embedded database directory (default ./.tradestore/db)
  REDIS_URL            Redis server (redis://…); unset = in-process bus
  TRADESTORE_REDIS_CLUSTER  1: REDIS_URL is a node of a Redis Cluster
  PORT, HOST           HTTP port (default 8080) and address (default 0.0.0.0) of start and demo
  TRADESTORE_REDIS_PREFIX  the deployment's namespace for every Redis key and channel (default empty)
  TRADESTORE_KEYRING   the keys that seal credentials: {"current": ID, "keys": {ID: base64 of 32 bytes}},
                       or the path of a file holding it (docs/SECURITY.md)
  TRADESTORE_RATE_LIMIT, TRADESTORE_RATE_WINDOW_MS  API requests per user and endpoint per window
  TRADESTORE_AUTH_FAILURE_LIMIT, TRADESTORE_SESSION_TTL_MS, TRADESTORE_REFRESH_TTL_MS, TRADESTORE_LOGIN_FAILURE_LIMIT, TRADESTORE_LOGIN_LOCK_MS,
  TRADESTORE_REQUEST_TIMEOUT_MS, TRADESTORE_BODY_LIMIT_BYTES,
  TRADESTORE_WS_MAX_FRAME_BYTES, TRADESTORE_WS_CONNECT_LIMIT, TRADESTORE_WS_PING_MS  limits per client
  TRADESTORE_STREAM, TRADESTORE_LIST, TRADESTORE_SHARDS, TRADESTORE_CONSUMER, TRADESTORE_LEASE_MS,
  TRADESTORE_BATCH_SIZE, TRADESTORE_MAX_STARTS, TRADESTORE_MAX_PAYLOAD_BYTES,
  TRADESTORE_MAX_CLOCK_SKEW_MS, TRADESTORE_STALL_MS, TRADESTORE_DEAD_LETTER_DAYS, TRADESTORE_MAINTENANCE_TICK_MS, TRADESTORE_SNAPSHOT_INTERVAL_MS,
  TRADESTORE_DB_POOL_MAX, TRADESTORE_MONITOR_INTERVAL_MS, TRADESTORE_ALERT_*  (see README)
`;

/** Parses a non-negative integer option, naming the option when it is not one. */
export function intOption(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value)) throw new UsageError(`--${name} must be a non-negative integer (got ${JSON.stringify(value)})`);
  return Number(value);
}

/** Parses a time option: an ISO 8601 date or time, or epoch milliseconds. */
export function dateOption(name: string, value: string | undefined): Date | undefined {
  if (value === undefined) return undefined;
  const date = /^\d{1,15}$/.test(value) ? new Date(Number(value)) : /^\d{4}-\d{2}-\d{2}/.test(value) ? new Date(value) : new Date(NaN);
  if (Number.isNaN(date.getTime())) throw new UsageError(`--${name} must be an ISO 8601 date or time, or epoch milliseconds (got ${JSON.stringify(value)})`);
  return date;
}

/** Commands that have a part of their own in the usage. */
export const USAGE_COMMANDS = new Set(
  [...USAGE.matchAll(/^ {2}tradestore ([a-z]+)/gm)].map((m) => m[1]!).filter((c) => c !== 'help'),
);

/** A command's lines of the usage (its forms and their descriptions), and where the rest is. */
export function commandHelp(command: string): string {
  const lines = USAGE.split('\n');
  const picked: string[] = [];
  let inside = false;
  for (const line of lines) {
    if (/^ {2}tradestore /.test(line)) inside = line.startsWith(`  tradestore ${command} `) || line === `  tradestore ${command}`;
    else if (!/^ {10,}/.test(line)) inside = false;
    if (inside) picked.push(line);
  }
  return `Usage:\n${picked.join('\n')}\n\nConfiguration and the other commands: tradestore help\n`;
}
