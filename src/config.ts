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
  port: number;
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

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  return {
    databaseUrl: url('DATABASE_URL', env.DATABASE_URL, ['postgres:', 'postgresql:']),
    dataDir: env.TRADESTORE_DATA_DIR?.trim() || DEFAULT_DATA_DIR,
    redisUrl: url('REDIS_URL', env.REDIS_URL, ['redis:', 'rediss:']),
    port: port('PORT', env.PORT, 8080),
  };
}
