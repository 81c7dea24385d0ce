import type { Bus } from '../bus/types.ts';
import type { Effects } from './apply/types.ts';

/** Channel names of the post-commit publications (the API's live streams subscribe to them). */
export const CHANNELS = {
  trades: (market: string) => `tradestore:trades:${market}`,
  candles: (market: string, interval: string) => `tradestore:candles:${market}:${interval}`,
  ordersByMarket: (market: string) => `tradestore:orders:${market}`,
  ordersByUser: (userId: string) => `tradestore:orders:user:${userId}`,
  balances: (userId: string) => `tradestore:balances:${userId}`,
};

/** Cache keys a committed change makes stale; the read API caches under these names. */
export const CACHE_KEYS = {
  recentTrades: (market: string) => `cache:trades:recent:${market}`,
  ticker: (market: string) => `cache:ticker:24hr:${market}`,
  klines: (market: string, interval: string) => `cache:klines:${market}:${interval}`,
  depth: (market: string) => `cache:depth:${market}`,
  openOrders: (userId: string) => `cache:orders:open:${userId}`,
  balances: (userId: string) => `cache:balances:${userId}`,
};

/**
 * After commit: publishes what changed, one message per channel per commit (a JSON array of
 * the changed items), and invalidates the cache keys the change made stale.
 */
export async function publishEffects(bus: Bus, effects: Effects): Promise<void> {
  const messages = new Map<string, unknown[]>();
  const push = (channel: string, item: unknown) => {
    const list = messages.get(channel);
    if (list) list.push(item);
    else messages.set(channel, [item]);
  };
  const stale = new Set<string>();
  for (const t of effects.trades) {
    push(CHANNELS.trades(t.market), t);
    stale.add(CACHE_KEYS.recentTrades(t.market)).add(CACHE_KEYS.ticker(t.market));
  }
  for (const c of effects.candles) {
    push(CHANNELS.candles(c.market, c.interval), c);
    stale.add(CACHE_KEYS.klines(c.market, c.interval));
  }
  for (const o of effects.orders) {
    push(CHANNELS.ordersByMarket(o.market), o);
    stale.add(CACHE_KEYS.depth(o.market));
    if (o.userId) {
      push(CHANNELS.ordersByUser(o.userId), o);
      stale.add(CACHE_KEYS.openOrders(o.userId));
    }
  }
  for (const b of effects.balances) {
    push(CHANNELS.balances(b.userId), b);
    stale.add(CACHE_KEYS.balances(b.userId));
  }
  if (stale.size) await bus.invalidate([...stale]);
  // Sent together: the Redis client pipelines commands issued without waiting in between.
  await Promise.all([...messages].map(([channel, items]) => bus.publish(channel, JSON.stringify(items))));
}
