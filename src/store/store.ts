import { openBus } from '../bus/open.ts';
import type { Bus } from '../bus/types.ts';
import { loadConfig, type Config } from '../config.ts';
import { openDatabase } from '../database/open.ts';
import type { Database } from '../database/types.ts';
import { migrate } from '../schema/migrator.ts';
import { AccountRepository } from './account.ts';
import { ApiKeyRepository } from './apiKeys.ts';
import { MarketRepository } from './market.ts';
import { StrategyRepository } from './strategies.ts';
import { BacktestRepository } from './backtests.ts';
import { RiskRepository } from './risk.ts';
import { ModelRepository } from './models.ts';
import { ExchangeOrderRepository } from './exchangeOrders.ts';
import { CredentialRepository } from './credentials.ts';
import { AuditRepository } from './auditTrail.ts';
import type { Keyring } from '../security/keyring.ts';
import { redisMirror, SessionRepository, type SessionSettings } from '../security/sessions.ts';
import { TwoFactor } from '../security/twoFactor.ts';
import { RedisBus } from '../bus/redis.ts';
import { bypassing } from '../cache/cache.ts';
import { ACCOUNT_READER_ROLE, ACCOUNT_WRITER_ROLE, ADMIN_READER_ROLE, scopedDatabase } from './scoped.ts';

/** The typed data layer: what the service, the CLI and the tests are built on. */
export interface Store {
  readonly db: Database;
  /** Redis (or the in-process bus): the cache, the event stream and the live channels. */
  readonly bus: Bus;
  readonly market: MarketRepository;
  readonly account: AccountRepository;
  readonly strategies: StrategyRepository;
  readonly backtests: BacktestRepository;
  readonly risk: RiskRepository;
  readonly models: ModelRepository;
  readonly exchangeOrders: ExchangeOrderRepository;
  readonly apiKeys: ApiKeyRepository;
  /** Exchange and broker credentials, sealed under the keyring (docs/SECURITY.md). */
  readonly credentials: CredentialRepository;
  /** The audit trail of changes made through the API, the CLI and the library (docs/SECURITY.md). */
  readonly audit: AuditRepository;
  readonly sessions: SessionRepository;
  readonly twoFactor: TwoFactor;
  /**
   * Repositories whose reads run under row-level security as the caller (docs/SECURITY.md): the
   * account reader with the user set, or for an admin the admin reader, which changes nothing.
   * Reads only: the API's changes go through the repositories above.
   */
  readsAs(who: { userId: string; admin: boolean }): ScopedReads;
  /** Repositories whose changes of a user's own strategies and backtests run as the account writer with the user set. */
  writesAs(userId: string): ScopedWrites;
  close(): Promise<void>;
}

export interface ScopedWrites {
  readonly strategies: StrategyRepository;
  readonly backtests: BacktestRepository;
  /** Ending the user's sessions (logout, logout everywhere). */
  readonly sessions: Pick<SessionRepository, 'logout' | 'logoutAll'>;
  readonly twoFactor: TwoFactor;
}

export interface ScopedReads {
  readonly strategies: StrategyRepository;
  readonly backtests: BacktestRepository;
  readonly risk: RiskRepository;
  readonly audit: AuditRepository;
  readonly sessions: Pick<SessionRepository, 'list'>;
}

export interface StoreOptions {
  /** PostgreSQL server; default DATABASE_URL, else the embedded database. */
  databaseUrl?: string | null;
  /** Embedded database directory (or 'memory://'); default TRADESTORE_DATA_DIR. */
  dataDir?: string;
  /** Redis server; default REDIS_URL, else in process. */
  redisUrl?: string | null;
  /** Bring the schema up to date first (default false: a library should not change a schema unasked). */
  migrate?: boolean;
  /** An open database and bus to use instead (they are closed with the store only when `owned`). */
  db?: Database;
  bus?: Bus;
  owned?: boolean;
  /** The keys credentials are sealed under; default TRADESTORE_KEYRING. */
  keyring?: Keyring | null | (() => Keyring | null);
}

/** Builds the repositories over an open database and bus. */
export function storeOver(
  db: Database,
  bus: Bus,
  close: () => Promise<void> = async () => {},
  keyring: Keyring | null | (() => Keyring | null) = null,
  sessions: SessionSettings = loadConfig({}).sessions,
): Store {
  const strategies = new StrategyRepository(db, bus.cache);
  const twoFactor = new TwoFactor(db, keyring);
  const mirror = bus instanceof RedisBus ? redisMirror(bus.client, bus.names.keyPrefix) : null;
  // Scoped reads bypass the shared cache: an entry one caller's read stored is not another's answer.
  const reads = (over: Database): ScopedReads => {
    const cache = bypassing(bus.cache);
    const s = new StrategyRepository(over, cache);
    return { strategies: s, backtests: new BacktestRepository(over, s), risk: new RiskRepository(over, cache, bus), audit: new AuditRepository(over), sessions: new SessionRepository(over, sessions, twoFactor) };
  };
  return {
    db,
    bus,
    market: new MarketRepository(db, bus.cache),
    account: new AccountRepository(db, bus.cache),
    strategies,
    backtests: new BacktestRepository(db, strategies),
    risk: new RiskRepository(db, bus.cache, bus),
    models: new ModelRepository(db),
    exchangeOrders: new ExchangeOrderRepository(db),
    apiKeys: new ApiKeyRepository(db),
    credentials: new CredentialRepository(db, keyring),
    audit: new AuditRepository(db),
    twoFactor,
    sessions: new SessionRepository(db, sessions, twoFactor, mirror),
    readsAs: ({ userId, admin }) => reads(scopedDatabase(db, admin ? ADMIN_READER_ROLE : ACCOUNT_READER_ROLE, userId)),
    writesAs: (userId) => {
      const over = scopedDatabase(db, ACCOUNT_WRITER_ROLE, userId);
      // Not read from the shared cache, nor filled: what this role cannot see is not "none" for others.
      const s = new StrategyRepository(over, bypassing(bus.cache));
      const twoFactorAs = new TwoFactor(over, keyring);
      return { strategies: s, backtests: new BacktestRepository(over, s), sessions: new SessionRepository(over, sessions, twoFactorAs, mirror), twoFactor: twoFactorAs };
    },
    close,
  };
}

/**
 * Opens the store: `openStore()` reads DATABASE_URL and REDIS_URL like the CLI does, and
 * falls back to the embedded database and the in-process bus.
 */
export async function openStore(options: StoreOptions = {}): Promise<Store> {
  const env: Config = loadConfig();
  const config = {
    ...env,
    databaseUrl: options.databaseUrl === undefined ? env.databaseUrl : options.databaseUrl,
    dataDir: options.dataDir ?? env.dataDir,
    redisUrl: options.redisUrl === undefined ? env.redisUrl : options.redisUrl,
  };
  const db = options.db ?? (await openDatabase(config));
  const bus = options.bus ?? openBus(config);
  const ownsDb = options.db === undefined || options.owned === true;
  const ownsBus = options.bus === undefined || options.owned === true;
  try {
    if (options.migrate) await migrate(db);
  } catch (error) {
    if (ownsBus) await bus.close();
    if (ownsDb) await db.close();
    throw error;
  }
  return storeOver(db, bus, async () => {
    if (ownsBus) await bus.close();
    if (ownsDb) await db.close();
  }, options.keyring === undefined ? env.keyring : options.keyring, env.sessions);
}
