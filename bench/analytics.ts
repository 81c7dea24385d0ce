import pg from 'pg';
import type { CopyValue } from '../src/database/types.ts';
import { MemoryBus } from '../src/bus/memory.ts';
import { storeOver } from '../src/store/store.ts';
import { scratchDatabase, type BenchTarget } from './ingest.ts';

export interface AnalyticsResults {
  days: number;
  snapshots: number;
  round_trips: number;
  runs: number;
  /** Median of the runs, each: GET …/metrics's work (equity curve, round trips, every metric). */
  snapshots_ms: number;
  /** The same for a strategy without snapshots: the curve from capital plus realized P&L. */
  trades_only_ms: number;
  /** Median: the raw SQL that reads the same rows (the snapshots and the round trips), nothing computed. */
  raw_sql_ms: number;
  snapshots_vs_raw: number;
  trades_only_vs_raw: number;
}

const DAY = 86_400_000;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/**
 * A strategy's metrics over 5 years of daily equity (and a week of minute snapshots) and 100,000
 * round trips, beside the raw SQL
 * that reads the same rows through the same driver, in the same run (target ≤ 2×).
 */
export async function benchAnalytics(target: BenchTarget, days = 5 * 365 + 1, trips = 100_000, runs = 7): Promise<AnalyticsResults> {
  const scratch = await scratchDatabase(target.adminUrl);
  try {
    const { db } = scratch;
    const store = storeOver(db, new MemoryBus());
    const start = Math.floor(Date.now() / DAY) * DAY - days * DAY;
    const withSnapshots = await store.strategies.create({ name: 'bench snapshots', symbols: ['TATA_INR'], initialCapital: '1000000' });
    const tradesOnly = await store.strategies.create({ name: 'bench trades', symbols: ['TATA_INR'], initialCapital: '1000000' });
    await db.query(`UPDATE strategies SET created_at = $1`, [new Date(start)]);
    target.log(`analytics: loading ${days} days of equity and ${trips} round trips for each of two strategies`);
    // A deterministic walk: daily equity, and round trips of a few hours each spread over the period.
    let seed = 42;
    const random = () => ((seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31);
    let equity = 1_000_000;
    const snapshots: CopyValue[][] = [];
    for (let i = 0; i < days; i++) {
      equity *= 1 + (random() - 0.48) * 0.02;
      snapshots.push([withSnapshots.id, new Date(start + i * DAY + 23 * 3_600_000), equity.toFixed(2), equity.toFixed(2)]);
    }
    // As the service keeps them: one a day (its close), and the last 7 days' minute snapshots.
    for (let m = 0; m < 7 * 1440; m++) {
      const at = start + (days - 7) * DAY + m * 60_000;
      snapshots.push([withSnapshots.id, new Date(at), equity.toFixed(2), equity.toFixed(2)]);
    }
    await db.copyFrom('portfolio_snapshots', ['strategy_id', 'snapshot_time', 'total_value', 'cash_balance'], snapshots);
    const rows: CopyValue[][] = [];
    for (const strategy of [withSnapshots.id, tradesOnly.id]) {
      for (let i = 0; i < trips; i++) {
        const entry = start + Math.floor((i / trips) * days * DAY);
        const exit = entry + Math.floor(random() * 6 * 3_600_000) + 60_000;
        const pnl = ((random() - 0.45) * 200).toFixed(2);
        rows.push([`${strategy}-${i}`, strategy, 'TATA_INR', 'buy', '100', '1', new Date(entry), new Date(exit), '101', pnl, 'closed']);
      }
    }
    await db.copyFrom('strategy_trades', ['id', 'strategy_id', 'symbol', 'side', 'entry_price', 'quantity', 'entry_time', 'exit_time', 'exit_price', 'pnl', 'status'], rows);
    await db.query('VACUUM ANALYZE strategy_trades');
    await db.query('VACUUM ANALYZE portfolio_snapshots');

    const time = async (fn: () => Promise<unknown>) => {
      await fn(); // warm-up
      const out: number[] = [];
      for (let i = 0; i < runs; i++) {
        const t0 = performance.now();
        await fn();
        out.push(performance.now() - t0);
      }
      return median(out);
    };
    target.log('analytics: tradestore, from snapshots');
    const snapshotsMs = await time(async () => {
      const a = await store.strategies.analytics(withSnapshots.id);
      if (a.equityDays < days || a.metrics.totalTrades !== String(trips)) throw new Error(`analytics read ${a.equityDays} days and ${a.metrics.totalTrades} trips`);
    });
    target.log('analytics: tradestore, from round trips only');
    const tradesMs = await time(async () => {
      const a = await store.strategies.analytics(tradesOnly.id);
      if (a.equitySource !== 'trades' || a.metrics.totalTrades !== String(trips)) throw new Error('the trades-only strategy did not use its round trips');
    });
    target.log('analytics: raw SQL reading the same rows (reference)');
    const client = new pg.Client({ connectionString: scratch.url });
    await client.connect();
    let rawMs = 0;
    try {
      rawMs = await time(async () => {
        await client.query(`SELECT snapshot_time, total_value::text FROM portfolio_snapshots WHERE strategy_id = $1`, [withSnapshots.id]);
        const r = await client.query(`SELECT pnl::text, entry_time, exit_time FROM strategy_trades WHERE strategy_id = $1 AND status = 'closed'`, [withSnapshots.id]);
        if (r.rows.length !== trips) throw new Error('raw SQL read the wrong rows');
      });
    } finally {
      await client.end();
    }
    const ratio = (a: number, b: number) => Number((a / b).toFixed(2));
    return {
      days,
      snapshots: snapshots.length,
      round_trips: trips,
      runs,
      snapshots_ms: Math.round(snapshotsMs),
      trades_only_ms: Math.round(tradesMs),
      raw_sql_ms: Math.round(rawMs),
      snapshots_vs_raw: ratio(snapshotsMs, rawMs),
      trades_only_vs_raw: ratio(tradesMs, rawMs),
    };
  } finally {
    await scratch.drop();
  }
}
