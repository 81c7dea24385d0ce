import type { Bus } from '../bus/types.ts';
import { CACHE_GROUPS, VENUE } from '../cache/cache.ts';
import type { Effects } from './apply/types.ts';

/** Channel names of the post-commit publications (the API's live streams subscribe to them). */
export const CHANNELS = {
  trades: (market: string) => `tradestore:trades:${market}`,
  candles: (market: string, interval: string) => `tradestore:candles:${market}:${interval}`,
  ordersByMarket: (market: string) => `tradestore:orders:${market}`,
  ordersByUser: (userId: string) => `tradestore:orders:user:${userId}`,
  balances: (userId: string) => `tradestore:balances:${userId}`,
  /** Every risk event raised (docs/RISK.md), and each user's. */
  riskEvents: () => 'tradestore:risk_events',
  riskEventsByUser: (userId: string) => `tradestore:risk_events:${userId}`,
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
    stale.add(CACHE_GROUPS.recentTrades(t.market)).add(CACHE_GROUPS.ticker(t.market)).add(CACHE_GROUPS.price(VENUE, t.market));
  }
  for (const c of effects.candles) {
    push(CHANNELS.candles(c.market, c.interval), c);
    // Derived intervals (3m, 1w, …) are cached in the group of the stored interval they are merged
    // from; every interval of an exchange instrument (EXCHANGE:SYMBOL, candles from ticks) in one.
    stale.add(c.exchange !== undefined ? CACHE_GROUPS.instrumentKlines(c.market) : CACHE_GROUPS.klines(c.market, c.interval));
  }
  for (const o of effects.orders) {
    push(CHANNELS.ordersByMarket(o.market), o);
    stale.add(CACHE_GROUPS.orderbook(VENUE, o.market));
    if (o.userId) {
      push(CHANNELS.ordersByUser(o.userId), o);
      stale.add(CACHE_GROUPS.openOrders(o.userId));
    }
  }
  for (const b of effects.balances) {
    push(CHANNELS.balances(b.userId), b);
    stale.add(CACHE_GROUPS.balances(b.userId));
  }
  for (const e of effects.riskEvents) {
    push(CHANNELS.riskEvents(), e);
    push(CHANNELS.riskEventsByUser(e.userId), e);
  }
  for (const userId of effects.riskLimitUsers) stale.add(CACHE_GROUPS.riskLimits(userId));
  // Seed 001's strategy:{id} and strategies:active carry the counters a close moved.
  for (const id of effects.strategies) stale.add(CACHE_GROUPS.strategy(id)).add(CACHE_GROUPS.strategiesActive());
  if (stale.size) await bus.cache.invalidate([...stale]);
  // Sent together: the Redis client pipelines commands issued without waiting in between.
  await Promise.all([...messages].map(([channel, items]) => bus.publish(channel, JSON.stringify(items))));
}
