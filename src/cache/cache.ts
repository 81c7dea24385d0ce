import type { Cluster, Redis } from 'ioredis';

/**
 * A read-through cache whose invalidation cannot lose a race with a reader.
 *
 * Every cache group (one market's ticker, one user's balances, …) has a generation counter.
 * An entry is stored together with the generation it was read under, and is served only while
 * that is still the group's generation. Invalidation increments the counter. A reader that
 * loaded from the database before a commit and stores its result after the invalidation stores
 * it under the old generation, so nobody is served it: a stale read never outlives the
 * invalidation, which the ingest service sends right after commit.
 */
export interface Cache {
  /** The cached value of `group` (+ `variant`), or `load()`'s result, stored for `ttlMs`. */
  read<T>(group: string, variant: string, ttlMs: number, load: () => Promise<T>): Promise<T>;
  /** Makes every entry of these groups stale. */
  invalidate(groups: string[]): Promise<void>;
  /** Reads served from the cache, loaded and stored, or loaded without it (Redis away), since start. */
  readonly stats: CacheStats;
}

export interface CacheStats {
  hits: number;
  misses: number;
  bypassed: number;
}

interface Stored {
  g: string;
  v: unknown;
}

const entryKey = (group: string, variant: string) => (variant ? `${group}|${variant}` : group);
const generationKey = (group: string) => `cachegen:${group}`;
/** Generation counters outlive every entry by far; an expired counter only causes misses. */
const GENERATION_TTL_MS = 24 * 60 * 60 * 1000;

export class RedisCache implements Cache {
  readonly stats: CacheStats = { hits: 0, misses: 0, bypassed: 0 };
  /** `prefix` goes before every key (the deployment's TRADESTORE_REDIS_PREFIX). */
  constructor(
    private readonly redis: Redis | Cluster,
    private readonly prefix = '',
  ) {}

  async read<T>(group: string, variant: string, ttlMs: number, load: () => Promise<T>): Promise<T> {
    // Redis away (not connected): read from the database without waiting for the client's retries.
    if (this.redis.status !== 'ready') {
      this.stats.bypassed += 1;
      return load();
    }
    const key = this.prefix + entryKey(group, variant);
    let generation = '0';
    try {
      // Two reads rather than one MGET: in a Redis Cluster the entry and its group's counter may be
      // on different masters. Either order is safe: an entry is served only if it was stored under
      // the generation read here.
      const [entry, g] = await Promise.all([this.redis.get(key), this.redis.get(this.prefix + generationKey(group))]);
      generation = g ?? '0';
      if (entry) {
        const stored = JSON.parse(entry) as Stored;
        if (stored.g === generation) {
          this.stats.hits += 1;
          return stored.v as T;
        }
      }
    } catch {
      // Redis away: read from the database, do not cache.
      this.stats.bypassed += 1;
      return load();
    }
    this.stats.misses += 1;
    const value = await load();
    const stored: Stored = { g: generation, v: value };
    await this.redis.set(key, JSON.stringify(stored), 'PX', ttlMs).catch(() => {});
    return value;
  }

  async invalidate(groups: string[]): Promise<void> {
    if (groups.length === 0) return;
    // One transaction per counter (one key each, so one slot each in a cluster), all sent at once.
    await Promise.all(groups.map((group) => this.redis.multi().incr(this.prefix + generationKey(group)).pexpire(this.prefix + generationKey(group), GENERATION_TTL_MS).exec()));
  }
}

/** The same semantics in process, for the embedded default. Bounded: the oldest entries go first. */
export class MemoryCache implements Cache {
  readonly stats: CacheStats = { hits: 0, misses: 0, bypassed: 0 };
  private readonly entries = new Map<string, { stored: Stored; expires: number }>();
  private readonly generations = new Map<string, number>();

  constructor(private readonly maxEntries = 10_000) {}

  async read<T>(group: string, variant: string, ttlMs: number, load: () => Promise<T>): Promise<T> {
    const key = entryKey(group, variant);
    const generation = String(this.generations.get(group) ?? 0);
    const entry = this.entries.get(key);
    if (entry && entry.expires > Date.now() && entry.stored.g === generation) {
      this.stats.hits += 1;
      return structuredClone(entry.stored.v) as T;
    }
    this.stats.misses += 1;
    const value = await load();
    this.entries.delete(key);
    this.entries.set(key, { stored: { g: generation, v: structuredClone(value) }, expires: Date.now() + ttlMs });
    if (this.entries.size > this.maxEntries) this.entries.delete(this.entries.keys().next().value!);
    return value;
  }

  async invalidate(groups: string[]): Promise<void> {
    for (const group of groups) this.generations.set(group, (this.generations.get(group) ?? 0) + 1);
  }
}

/**
 * A cache that serves nothing and stores nothing, for reads whose answer depends on who reads
 * (row-level security: a shared entry would be another caller's answer); invalidations still
 * reach `shared`.
 */
export function bypassing(shared: Cache): Cache {
  const stats: CacheStats = { hits: 0, misses: 0, bypassed: 0 };
  return {
    stats,
    read: async (_group, _variant, _ttlMs, load) => {
      stats.bypassed += 1;
      return load();
    },
    invalidate: (groups) => shared.invalidate(groups),
  };
}

/**
 * Cache groups. Where a seed defines a Redis key layout, the group is that key (seed 001:
 * price:{exchange}:{symbol}, orderbook:{exchange}:{symbol}, strategies:active,
 * strategy:{strategy_id}); the venue's own markets use the exchange name 'venue'.
 */
export const VENUE = 'venue';
export const CACHE_GROUPS = {
  price: (exchange: string, symbol: string) => `price:${exchange}:${symbol}`,
  orderbook: (exchange: string, symbol: string) => `orderbook:${exchange}:${symbol}`,
  strategiesActive: () => 'strategies:active',
  strategy: (id: string) => `strategy:${id}`,
  ticker: (symbol: string) => `ticker:24hr:${symbol}`,
  recentTrades: (symbol: string) => `trades:recent:${symbol}`,
  klines: (symbol: string, interval: string) => `klines:${symbol}:${interval}`,
  /** Every interval of an exchange instrument (`EXCHANGE:SYMBOL`): its ticks change all its timeframes at once. */
  instrumentKlines: (instrument: string) => `klines:${instrument}`,
  openOrders: (userId: string) => `orders:open:${userId}`,
  balances: (userId: string) => `balances:${userId}`,
  riskLimits: (userId: string) => `risk_limits:${userId}`,
  markets: () => 'markets',
};
