import type { Bus } from '../bus/types.ts';
import type { Database } from '../database/types.ts';
import { CANDLE_INTERVALS, type CandleInterval } from './apply/candles.ts';
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
 * After commit: publishes what changed and invalidates the cache keys it made stale. Candle
 * messages carry the candle as stored, read back once per interval for the touched buckets.
 */
export async function publishEffects(db: Database, bus: Bus, effects: Effects): Promise<void> {
  const messages: [string, unknown][] = [];
  const stale = new Set<string>();
  for (const t of effects.trades) {
    messages.push([CHANNELS.trades(t.market), { ...t, executedAt: t.executedAt.toISOString() }]);
    stale.add(CACHE_KEYS.recentTrades(t.market)).add(CACHE_KEYS.ticker(t.market));
  }
  const byInterval = new Map<string, { market: string; openTime: Date }[]>();
  for (const c of effects.candles) {
    const list = byInterval.get(c.interval) ?? [];
    list.push(c);
    byInterval.set(c.interval, list);
    stale.add(CACHE_KEYS.klines(c.market, c.interval));
  }
  for (const [interval, list] of byInterval) {
    const table = CANDLE_INTERVALS[interval as CandleInterval].table;
    const { rows } = await db.query<Record<string, unknown>>(
      `SELECT c.market, c.open_time, c.close_time, c.open_price::text, c.high_price::text, c.low_price::text,
              c.close_price::text, c.volume::text, c.quote_volume::text, c.trade_count,
              c.taker_buy_volume::text, c.taker_buy_quote_volume::text
         FROM ${table} c JOIN unnest($1::text[], $2::timestamptz[]) AS k(market, open_time) USING (market, open_time)`,
      [list.map((c) => c.market), list.map((c) => c.openTime)],
    );
    for (const row of rows) messages.push([CHANNELS.candles(String(row.market), interval), { interval, ...row }]);
  }
  for (const o of effects.orders) {
    messages.push([CHANNELS.ordersByMarket(o.market), o]);
    stale.add(CACHE_KEYS.depth(o.market));
    if (o.userId) {
      messages.push([CHANNELS.ordersByUser(o.userId), o]);
      stale.add(CACHE_KEYS.openOrders(o.userId));
    }
  }
  for (const b of effects.balances) {
    messages.push([CHANNELS.balances(b.userId), b]);
    stale.add(CACHE_KEYS.balances(b.userId));
  }
  if (stale.size) await bus.invalidate([...stale]);
  // Sent together: the Redis client pipelines commands issued without waiting in between.
  await Promise.all(messages.map(([channel, message]) => bus.publish(channel, JSON.stringify(message))));
}
