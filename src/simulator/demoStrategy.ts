import Big from 'big.js';
import type { Bus } from '../bus/types.ts';
import type { Database } from '../database/types.ts';
import type { Store } from '../store/store.ts';

const DAY = 86_400_000;
const HOUR = 3_600_000;

export const DEMO_USER = 'demo';
export const DEMO_STRATEGY = 'TATA mean reversion (demo)';

export const DEMO_CAPITAL = '250000';

export interface DemoStrategyPlan {
  /**
   * STRATEGY_TRADE_OPENED and STRATEGY_TRADE_CLOSED messages in the order an engine would send
   * them, then the engine's PORTFOLIO_SNAPSHOT of each day's end.
   */
  payloads: string[];
  closed: number;
  open: number;
  snapshots: number;
}

/**
 * About `days` days of a strategy's round trips on TATA_INR up to yesterday (UTC), one or two a day
 * and each within its day, with pseudo-random P&L (a fixed seed: every run is the same relative to
 * `now`), and two positions still open, entered in the last hours. Prices end near the simulator's
 * TATA_INR mid (134.50). With them, the engine's portfolio snapshot at each UTC day's end (capital
 * plus realized P&L; flat, every round trip of the day closed), from the day before the first:
 * the day closes the equity curve is made of, which the service's own snapshots (from the day the
 * strategy was created on) do not replace.
 */
export function demoStrategyEvents(strategyId: string, options: { now: number; capital?: string; days?: number; seed?: number }): DemoStrategyPlan {
  const { now, capital = DEMO_CAPITAL, days = 120, seed = 20240601 } = options;
  let state = seed >>> 0;
  // mulberry32: small and deterministic.
  const random = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const normal = () => Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
  // A daily price walk, computed backwards from today's price.
  const prices = new Array<number>(days + 1);
  prices[days] = 134.5;
  for (let d = days; d > 0; d -= 1) prices[d - 1] = prices[d]! / (1 + 0.012 * normal());
  const price = (p: number) => new Big(p).round(2).toFixed(2);
  const today = Math.floor(now / DAY) * DAY;
  const payloads: string[] = [];
  const message = (type: string, data: Record<string, unknown>) => payloads.push(JSON.stringify({ type, data }));
  let n = 0;
  let closed = 0;
  // Realized P&L at each day's end, exactly as the ingest computes it.
  const dayEnds: { time: number; realized: Big; day: Big }[] = [{ time: today - days * DAY - 1, realized: new Big(0), day: new Big(0) }];
  for (let d = 0; d < days; d += 1) {
    const dayStart = today - (days - d) * DAY;
    let dayPnl = new Big(0);
    const trips = random() < 0.35 ? 2 : 1;
    for (let k = 0; k < trips; k += 1) {
      n += 1;
      const id = `${strategyId}-${n}`;
      const side = random() < 0.6 ? 'buy' : 'sell';
      const entry = prices[d]! * (1 + 0.004 * normal());
      // The strategy's edge: a small positive mean move in its favour, with noise.
      const move = 0.0035 + 0.011 * normal();
      const exit = side === 'buy' ? entry * (1 + move) : entry * (1 - move);
      const quantity = 400 + 10 * Math.floor(random() * 120);
      // Entered from 02:00 or 12:00 UTC, out within 2¼ hours: before the day's end.
      const entryTime = dayStart + (k === 0 ? 2 : 12) * HOUR + Math.floor(random() * 9 * HOUR);
      const exitTime = entryTime + 15 * 60_000 + Math.floor(random() * 2 * HOUR);
      const fees = new Big(price(entry)).plus(price(exit)).times(quantity).times('0.001').round(2).toFixed(2);
      message('STRATEGY_TRADE_OPENED', {
        id, strategyId, symbol: 'TATA_INR', exchange: 'venue', side, type: 'market', entryPrice: price(entry), quantity: String(quantity), entryTime,
      });
      message('STRATEGY_TRADE_CLOSED', {
        id, exitPrice: price(exit), exitTime, fees, exitReason: move > 0.012 ? 'TAKE_PROFIT' : move < -0.012 ? 'STOP_LOSS' : 'SIGNAL',
      });
      const gain = new Big(price(exit)).minus(price(entry)).times(quantity);
      dayPnl = dayPnl.plus(side === 'buy' ? gain : gain.times(-1)).minus(fees);
      closed += 1;
    }
    dayEnds.push({ time: dayStart + DAY - 1, realized: dayEnds.at(-1)!.realized.plus(dayPnl), day: dayPnl });
  }
  // Two positions entered today (or in the last hours), still open.
  for (const [i, ago] of [[1, 3 * HOUR], [2, 40 * 60_000]] as const) {
    const entry = prices[days]! * (1 + 0.003 * normal());
    message('STRATEGY_TRADE_OPENED', {
      id: `${strategyId}-open-${i}`, strategyId, symbol: 'TATA_INR', exchange: 'venue', side: i === 1 ? 'buy' : 'sell', type: 'market',
      entryPrice: price(entry), quantity: String(500 + 250 * i), entryTime: now - ago,
      stopLossPrice: price(i === 1 ? entry * 0.985 : entry * 1.015), takeProfitPrice: price(i === 1 ? entry * 1.02 : entry * 0.98),
    });
  }
  let previous = new Big(capital);
  for (const end of dayEnds) {
    const value = new Big(capital).plus(end.realized);
    message('PORTFOLIO_SNAPSHOT', {
      strategyId, timestamp: end.time, totalValue: value.toFixed(2), cashBalance: value.toFixed(2), unrealizedPnl: '0', realizedPnl: end.realized.toFixed(2),
      positions: [], dailyPnl: end.day.toFixed(2), dailyPnlPercent: end.day.div(previous).times(100).toFixed(4),
    });
    previous = value;
  }
  return { payloads, closed, open: 2, snapshots: dayEnds.length };
}

export interface DemoStrategy {
  strategyId: string;
  /** A read-scope API key of the demo user, who owns the strategy. */
  key: string;
  /** Round trips sent this run (0 when the strategy existed from an earlier run). */
  sent: number;
  /** Day-end portfolio snapshots sent this run. */
  snapshots: number;
  /** False when the ingest did not apply them within the wait (or the service does not ingest). */
  ingested: boolean;
}

/**
 * The demo's strategy: a demo user who owns one paper strategy with a starting capital, its round
 * trips and day-end snapshots sent through the bus as an engine would (the ingest service applies
 * them and keeps the strategy's counters), and a read-only key of that user for the strategy page.
 * A strategy kept from an earlier run (a persistent data directory) is reused as it is.
 */
export async function setupDemoStrategy(
  deps: { db: Database; bus: Bus; store: Store; ingesting: boolean },
  options: { now?: number; waitMs?: number } = {},
): Promise<DemoStrategy> {
  const { db, bus, store } = deps;
  await db.query(`INSERT INTO users (id, email, first_name) VALUES ($1, $2, 'Demo') ON CONFLICT DO NOTHING`, [DEMO_USER, `${DEMO_USER}@demo.invalid`]);
  const existing = (await store.strategies.list(DEMO_USER)).find((s) => s.name === DEMO_STRATEGY);
  let strategyId = existing?.id;
  let sent = 0;
  let snapshots = 0;
  let ingested = true;
  if (!strategyId) {
    const created = await store.strategies.create({
      name: DEMO_STRATEGY, symbols: ['TATA_INR'], initialCapital: DEMO_CAPITAL, userId: DEMO_USER, type: 'mean_reversion', timeframe: '1h',
      config: { lookback: 20, entryZ: 2, exitZ: 0.5, maxPositions: 2 },
    }, DEMO_USER);
    strategyId = created.id;
    await store.strategies.update(strategyId, { isActive: true }, DEMO_USER);
    const plan = demoStrategyEvents(strategyId, { now: options.now ?? Date.now() });
    // In bulk: the ingest applies them in a batch or two.
    await Promise.all(plan.payloads.map((p) => bus.add(p)));
    sent = plan.closed + plan.open;
    snapshots = plan.snapshots;
    ingested = deps.ingesting && (await applied(db, strategyId, plan, options.waitMs ?? 30_000));
  }
  const { key } = await store.apiKeys.create(DEMO_USER, ['read'], 'demo strategy page');
  return { strategyId, key, sent, snapshots, ingested };
}

async function applied(db: Database, strategyId: string, plan: DemoStrategyPlan, waitMs: number): Promise<boolean> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    const { rows } = await db.query<{ trades: number; open: string; snapshots: string }>(
      `SELECT total_trades AS trades,
              (SELECT count(*) FROM strategy_trades WHERE strategy_id = $1 AND status = 'open')::text AS open,
              (SELECT count(*) FROM portfolio_snapshots WHERE strategy_id = $1 AND metadata->>'source' IS DISTINCT FROM 'tradestore')::text AS snapshots
         FROM strategies WHERE id = $1`,
      [strategyId],
    );
    const r = rows[0];
    if (r && r.trades >= plan.closed && Number(r.open) >= plan.open && Number(r.snapshots) >= plan.snapshots) return true;
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
}
