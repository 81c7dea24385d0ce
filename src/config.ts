import type { SessionSettings } from './security/sessions.ts';
import { lazyKeyring, type Keyring } from './security/keyring.ts';
import { DEFAULT_THRESHOLDS, type AlertThresholds } from './ops/alerts.ts';
import { hostname } from 'node:os';

/**
 * Configuration comes from the environment. Every variable is checked once, here, and a bad
 * value stops the process with a message that names it.
 */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

export interface Config {
  /** PostgreSQL server; when unset, the embedded database is used. */
  databaseUrl: string | null;
  /** Directory of the embedded database (or 'memory://'). */
  dataDir: string;
  /** Redis server; when unset, the in-process bus is used. */
  redisUrl: string | null;
  /** REDIS_URL is one node of a Redis Cluster. */
  redisCluster: boolean;
  port: number;
  /** The address the HTTP server binds (HOST; default all interfaces). */
  host: string;
  bus: { stream: string; list: string; keyPrefix: string; shards: number };
  /**
   * The keys that seal credentials (TRADESTORE_KEYRING: the keyring's JSON, or its file), read
   * when first asked for; null when unset; a ConfigError when it is not a valid keyring.
   */
  keyring: () => Keyring | null;
  /** Password logins (docs/SECURITY.md): token lifetimes and login limits. */
  sessions: SessionSettings;
  ingest: {
    consumer: string;
    batchSize: number;
    /** A worker that stops renewing its leases loses its shards after this long. */
    leaseMs: number;
    /** Owners that died this many times at one entry make it a dead letter. */
    maxStarts: number;
    /** Larger payloads are dead-lettered without being parsed. */
    maxPayloadBytes: number;
    /** Events stamped further ahead of the server clock are dead-lettered. */
    maxClockSkewMs: number;
    /** /health says degraded when entries wait and nothing has committed for this long. */
    stallMs: number;
    /** Dead letters older than this are removed. */
    deadLetterRetentionMs: number;
  };
  /** How often the service looks for due maintenance jobs (0: never; run them with `tradestore maintenance run`). */
  maintenanceTickMs: number;
  /** How often the service builds portfolio snapshots (0: never; producers may send their own). */
  snapshotIntervalMs: number;
  /** Connections the server pool opens at most (a server only). */
  poolMax: number;
  /** Where backups go (tradestore backup's default --out, POST /v1/admin/backup), and how many are kept. */
  backup: { dir: string; keep: number };
  /** The service checks the database this often (0: never) and raises alerts past these thresholds. */
  monitor: { intervalMs: number; thresholds: AlertThresholds };
  api: {
    /** Requests per key (or per client address, without a key) and endpoint in one window. */
    rateLimit: number;
    rateWindowMs: number;
    /** Invalid API keys from one client address per rate window before the address is refused (429). */
    authFailureLimit: number;
    /** A request (headers and body) that has not arrived whole within this long is answered 408 and closed. */
    requestTimeoutMs: number;
    /** Larger request bodies are refused with 413. */
    bodyLimitBytes: number;
    /** Larger WebSocket frames close the connection with 1009. */
    wsMaxFrameBytes: number;
    /** When set, /metrics needs this token as a bearer (or an admin key). */
    metricsToken: string | null;
    /** WebSocket connections one client (key or address) may open per 5 minutes (Binance: 300). */
    wsConnectLimit: number;
    /** The server pings every WebSocket this often; one that has not answered 3 pings in a row is closed. */
    wsPingMs: number;
  };
}

export const DEFAULT_DATA_DIR = './.tradestore/db';

function url(name: string, value: string | undefined, protocols: readonly string[]): string | null {
  if (value === undefined || value.trim() === '') return null;
  let parsed: URL;
  try {
    parsed = new URL(value);
  } catch {
    throw new ConfigError(`${name} is not a URL: expected ${protocols[0]}//host:port/…`);
  }
  if (!protocols.includes(parsed.protocol)) {
    throw new ConfigError(`${name} must start with ${protocols.join(' or ')} (got ${parsed.protocol})`);
  }
  return value;
}

function port(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined || value.trim() === '') return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new ConfigError(`${name} must be a port number 0–65535 (got ${JSON.stringify(value)})`);
  return n;
}

function host(name: string, value: string | undefined): string {
  if (value === undefined || value.trim() === '') return '0.0.0.0';
  const v = value.trim();
  // An IPv4 or IPv6 address, or a host name (letters, digits, dots and dashes).
  if (!/^[A-Za-z0-9.-]{1,253}$/.test(v) && !/^[0-9A-Fa-f:.]{2,45}$/.test(v)) throw new ConfigError(`${name} must be an address or host name to listen on, such as 127.0.0.1 or :: (got ${JSON.stringify(value)})`);
  return v;
}

function secret(name: string, value: string | undefined): string | null {
  if (value === undefined || value === '') return null;
  if (value.length < 16 || /\s/.test(value)) throw new ConfigError(`${name} must be at least 16 characters without spaces`);
  // A bearer starting with ts_ is taken for an API key.
  if (value.startsWith('ts_')) throw new ConfigError(`${name} must not start with ts_ (API keys do)`);
  return value;
}

function int(name: string, value: string | undefined, fallback: number, min: number, max: number): number {
  if (value === undefined || value.trim() === '') return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) throw new ConfigError(`${name} must be an integer from ${min} to ${max} (got ${JSON.stringify(value)})`);
  return n;
}

function flag(name: string, value: string | undefined): boolean {
  if (value === undefined || value.trim() === '') return false;
  if (/^(1|true|yes|on)$/i.test(value.trim())) return true;
  if (/^(0|false|no|off)$/i.test(value.trim())) return false;
  throw new ConfigError(`${name} must be 1 or 0 (true/false, yes/no, on/off; got ${JSON.stringify(value)})`);
}

function key(name: string, value: string | undefined, fallback: string): string {
  if (value === undefined || value.trim() === '') return fallback;
  if (!/^[A-Za-z0-9_:.-]{1,200}$/.test(value)) throw new ConfigError(`${name} must be 1-200 characters of letters, digits and _ : . - (got ${JSON.stringify(value)})`);
  return value;
}

/** Variables of earlier versions whose meaning is gone: set, they would silently do nothing. */
const RETIRED: Record<string, string> = {
  TRADESTORE_GROUP: 'workers no longer share a consumer group: each shard has one owner (docs/SCALING.md)',
  TRADESTORE_DEAD_LETTERS: "dead letters are kept beside their shard, under the stream's name",
  TRADESTORE_CLAIM_IDLE_MS: 'shards are taken over when their lease expires: use TRADESTORE_LEASE_MS',
  TRADESTORE_MAX_DELIVERIES: 'use TRADESTORE_MAX_STARTS',
};

export const isPowerOfTwo = (n: number) => Number.isInteger(n) && n >= 1 && (n & (n - 1)) === 0;

function shardCount(name: string, value: string | undefined): number {
  const n = int(name, value, 8, 1, 1024);
  if (!isPowerOfTwo(n)) throw new ConfigError(`${name} must be a power of two from 1 to 1024 (got ${JSON.stringify(value)})`);
  return n;
}

/**
 * The deployment's Redis namespace: TRADESTORE_REDIS_PREFIX goes before every key and channel
 * tradestore touches: cache, cache generations, rate limits, pub/sub, and the stream and list
 * (with their shards, leases, offsets and dead letters) unless TRADESTORE_STREAM or
 * TRADESTORE_LIST name them exactly. Its older name, TRADESTORE_KEY_PREFIX, prefixes all but the
 * stream and the list, as it always did. Empty by
 * default, so seed 001's layouts (price:{exchange}:{symbol}) and the seed's db_processor list keep
 * their names.
 */
function busNames(env: NodeJS.ProcessEnv): Config['bus'] {
  const prefix = key('TRADESTORE_REDIS_PREFIX', env.TRADESTORE_REDIS_PREFIX, '');
  const older = key('TRADESTORE_KEY_PREFIX', env.TRADESTORE_KEY_PREFIX, '');
  if (prefix && older && prefix !== older) throw new ConfigError('TRADESTORE_REDIS_PREFIX and TRADESTORE_KEY_PREFIX (its older name) differ: set only TRADESTORE_REDIS_PREFIX');
  const keyPrefix = prefix || older;
  // Under its older name the prefix never named the stream and the list: a deployment upgraded
  // with it keeps reading where its engines write.
  const streamPrefix = prefix;
  return {
    stream: key('TRADESTORE_STREAM', env.TRADESTORE_STREAM, `${streamPrefix}tradestore:events`),
    list: key('TRADESTORE_LIST', env.TRADESTORE_LIST, `${streamPrefix}db_processor`),
    keyPrefix,
    shards: shardCount('TRADESTORE_SHARDS', env.TRADESTORE_SHARDS),
  };
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  for (const [name, why] of Object.entries(RETIRED)) {
    if (env[name] !== undefined && env[name]!.trim() !== '') throw new ConfigError(`${name} is no longer used: ${why}`);
  }
  return {
    databaseUrl: url('DATABASE_URL', env.DATABASE_URL, ['postgres:', 'postgresql:']),
    dataDir: env.TRADESTORE_DATA_DIR?.trim() || DEFAULT_DATA_DIR,
    redisUrl: url('REDIS_URL', env.REDIS_URL, ['redis:', 'rediss:']),
    redisCluster: flag('TRADESTORE_REDIS_CLUSTER', env.TRADESTORE_REDIS_CLUSTER),
    port: port('PORT', env.PORT, 8080),
    host: host('HOST', env.HOST),
    bus: busNames(env),
    keyring: lazyKeyring(env.TRADESTORE_KEYRING),
    sessions: {
      ttlMs: int('TRADESTORE_SESSION_TTL_MS', env.TRADESTORE_SESSION_TTL_MS, 15 * 60_000, 1000, 86_400_000),
      refreshTtlMs: int('TRADESTORE_REFRESH_TTL_MS', env.TRADESTORE_REFRESH_TTL_MS, 30 * 86_400_000, 1000, 365 * 86_400_000),
      login: {
        failures: int('TRADESTORE_LOGIN_FAILURE_LIMIT', env.TRADESTORE_LOGIN_FAILURE_LIMIT, 5, 1, 1000),
        lockMs: int('TRADESTORE_LOGIN_LOCK_MS', env.TRADESTORE_LOGIN_LOCK_MS, 15 * 60_000, 1000, 86_400_000),
      },
    },
    ingest: {
      consumer: key('TRADESTORE_CONSUMER', env.TRADESTORE_CONSUMER, `${hostname()}-${process.pid}`),
      batchSize: int('TRADESTORE_BATCH_SIZE', env.TRADESTORE_BATCH_SIZE, 2000, 1, 10_000),
      leaseMs: int('TRADESTORE_LEASE_MS', env.TRADESTORE_LEASE_MS, 3000, 500, 600_000),
      maxStarts: int('TRADESTORE_MAX_STARTS', env.TRADESTORE_MAX_STARTS, 5, 2, 1000),
      maxPayloadBytes: int('TRADESTORE_MAX_PAYLOAD_BYTES', env.TRADESTORE_MAX_PAYLOAD_BYTES, 1024 * 1024, 1024, 512 * 1024 * 1024),
      maxClockSkewMs: int('TRADESTORE_MAX_CLOCK_SKEW_MS', env.TRADESTORE_MAX_CLOCK_SKEW_MS, 5 * 60_000, 0, 7 * 86_400_000),
      stallMs: int('TRADESTORE_STALL_MS', env.TRADESTORE_STALL_MS, 30_000, 1000, 86_400_000),
      deadLetterRetentionMs: int('TRADESTORE_DEAD_LETTER_DAYS', env.TRADESTORE_DEAD_LETTER_DAYS, 30, 1, 3650) * 86_400_000,
    },
    maintenanceTickMs: int('TRADESTORE_MAINTENANCE_TICK_MS', env.TRADESTORE_MAINTENANCE_TICK_MS, 60_000, 0, 86_400_000),
    snapshotIntervalMs: int('TRADESTORE_SNAPSHOT_INTERVAL_MS', env.TRADESTORE_SNAPSHOT_INTERVAL_MS, 60_000, 0, 86_400_000),
    poolMax: int('TRADESTORE_DB_POOL_MAX', env.TRADESTORE_DB_POOL_MAX, 10, 1, 1000),
    backup: { dir: env.TRADESTORE_BACKUP_DIR?.trim() || './backups', keep: int('TRADESTORE_BACKUP_KEEP', env.TRADESTORE_BACKUP_KEEP, 7, 1, 10_000) },
    monitor: {
      intervalMs: int('TRADESTORE_MONITOR_INTERVAL_MS', env.TRADESTORE_MONITOR_INTERVAL_MS, 30_000, 0, 86_400_000),
      thresholds: {
        poolPercent: int('TRADESTORE_ALERT_POOL_PERCENT', env.TRADESTORE_ALERT_POOL_PERCENT, DEFAULT_THRESHOLDS.poolPercent, 1, 100),
        slowQueryMs: int('TRADESTORE_ALERT_SLOW_QUERY_MS', env.TRADESTORE_ALERT_SLOW_QUERY_MS, DEFAULT_THRESHOLDS.slowQueryMs, 1, 86_400_000),
        lockWaitMs: int('TRADESTORE_ALERT_LOCK_WAIT_MS', env.TRADESTORE_ALERT_LOCK_WAIT_MS, DEFAULT_THRESHOLDS.lockWaitMs, 1, 86_400_000),
        diskPercent: int('TRADESTORE_ALERT_DISK_PERCENT', env.TRADESTORE_ALERT_DISK_PERCENT, DEFAULT_THRESHOLDS.diskPercent, 1, 100),
        replicationLagMs: int('TRADESTORE_ALERT_REPLICATION_LAG_MS', env.TRADESTORE_ALERT_REPLICATION_LAG_MS, DEFAULT_THRESHOLDS.replicationLagMs, 1, 86_400_000),
        deadLetterWindowMs: int('TRADESTORE_ALERT_DEAD_LETTER_WINDOW_MS', env.TRADESTORE_ALERT_DEAD_LETTER_WINDOW_MS, DEFAULT_THRESHOLDS.deadLetterWindowMs, 1000, 30 * 86_400_000),
      },
    },
    api: {
      rateLimit: int('TRADESTORE_RATE_LIMIT', env.TRADESTORE_RATE_LIMIT, 1200, 1, 10_000_000),
      rateWindowMs: int('TRADESTORE_RATE_WINDOW_MS', env.TRADESTORE_RATE_WINDOW_MS, 60_000, 100, 86_400_000),
      authFailureLimit: int('TRADESTORE_AUTH_FAILURE_LIMIT', env.TRADESTORE_AUTH_FAILURE_LIMIT, 20, 1, 1_000_000),
      requestTimeoutMs: int('TRADESTORE_REQUEST_TIMEOUT_MS', env.TRADESTORE_REQUEST_TIMEOUT_MS, 30_000, 100, 3_600_000),
      bodyLimitBytes: int('TRADESTORE_BODY_LIMIT_BYTES', env.TRADESTORE_BODY_LIMIT_BYTES, 1024 * 1024, 1024, 100 * 1024 * 1024),
      metricsToken: secret('TRADESTORE_METRICS_TOKEN', env.TRADESTORE_METRICS_TOKEN),
      wsConnectLimit: int('TRADESTORE_WS_CONNECT_LIMIT', env.TRADESTORE_WS_CONNECT_LIMIT, 300, 1, 1_000_000),
      wsMaxFrameBytes: int('TRADESTORE_WS_MAX_FRAME_BYTES', env.TRADESTORE_WS_MAX_FRAME_BYTES, 16 * 1024, 1024, 1024 * 1024),
      wsPingMs: int('TRADESTORE_WS_PING_MS', env.TRADESTORE_WS_PING_MS, 20_000, 100, 3_600_000),
    },
  };
}
