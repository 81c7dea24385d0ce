import Big from 'big.js';
import { MemoryBus } from '../src/bus/memory.ts';
import type { CopyValue } from '../src/database/types.ts';
import { storeOver } from '../src/store/store.ts';
import { scratchDatabase, type BenchTarget } from './ingest.ts';

export interface BacktestBenchResults {
  trades: number;
  part_size: number;
  runs: number;
  /** Median: tradestore's addTrades (checking each trade, computing its P&L exactly, COPY) in parts. */
  store_ms: number;
  /** Median: a raw COPY of the same rows, P&L precomputed (the reference). */
  copy_ms: number;
  /** COPY's time over tradestore's: the share of raw COPY's speed reached (target ≥ 0.5). */
  store_vs_copy: number;
  /** Median: the summary of the stored 100,000 trades (completion). */
  summary_ms: number;
}

const DAY = 86_400_000;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/**
 * Storing a 100,000-trade backtest beside a raw COPY of the same rows into backtest_trades, in
 * the same run, on the same scratch database (each run into a fresh backtest).
 */
export async function benchBacktests(target: BenchTarget, count = 100_000, partSize = 10_000, runs = 5): Promise<BacktestBenchResults> {
  const scratch = await scratchDatabase(target.adminUrl);
  try {
    const { db } = scratch;
    const store = storeOver(db, new MemoryBus());
    const strategy = await store.strategies.create({ name: 'bench', symbols: ['TATA_INR'] });
    const t0 = Date.UTC(2025, 0, 6);
    let x = 5;
    const next = () => ((x = (x * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31);
    const trades = Array.from({ length: count }, (_, i) => {
      const entry = t0 + Math.floor((i / count) * 200 * DAY);
      const entryPrice = (100 + next() * 10).toFixed(2);
      return {
        symbol: 'TATA_INR', side: next() < 0.5 ? 'long' : 'short', quantity: String(1 + Math.floor(next() * 20)), entryPrice,
        exitPrice: (Number(entryPrice) * (1 + (next() - 0.47) * 0.04)).toFixed(2), entryTime: entry, exitTime: entry + 3_600_000, commission: '1',
      };
    });
    const create = async () => {
      const b = await store.backtests.create({ strategyId: strategy.id, name: 'bench', symbols: ['TATA_INR'], startDate: new Date(t0), endDate: new Date(t0 + 201 * DAY), initialCapital: '1000000' });
      await store.backtests.start(b.id);
      return b.id;
    };
    // The reference: the same rows as tradestore stores, P&L precomputed, in one COPY.
    const rowsFor = (id: string): CopyValue[][] => trades.map((t) => {
      const move = new Big(t.exitPrice).minus(t.entryPrice).times(t.quantity);
      const pnl = (t.side === 'long' ? move : move.times(-1)).minus(t.commission);
      return [id, t.symbol, t.side, t.quantity, t.entryPrice, t.exitPrice, new Date(t.entryTime), new Date(t.exitTime), pnl.toFixed(), null, t.commission, null];
    });
    const columns = ['backtest_id', 'symbol', 'side', 'quantity', 'entry_price', 'exit_price', 'entry_time', 'exit_time', 'pnl', 'pnl_percentage', 'commission', 'strategy_signal'];
    const copyMs: number[] = [];
    const storeMs: number[] = [];
    const summaryMs: number[] = [];
    for (let run = 0; run <= runs; run++) {
      target.log(`backtests: run ${run} of ${runs} (run 0 warms up)`);
      const reference = await create();
      const rows = rowsFor(reference);
      let t = performance.now();
      await db.copyFrom('backtest_trades', columns, rows);
      const copy = performance.now() - t;
      const id = await create();
      t = performance.now();
      for (let seq = 0; seq * partSize < count; seq++) await store.backtests.addTrades(id, trades.slice(seq * partSize, (seq + 1) * partSize), seq);
      const stored = performance.now() - t;
      t = performance.now();
      await store.backtests.complete(id, { claims: { totalTrades: count } });
      const summary = performance.now() - t;
      if (run > 0) {
        copyMs.push(copy);
        storeMs.push(stored);
        summaryMs.push(summary);
      }
    }
    return {
      trades: count,
      part_size: partSize,
      runs,
      store_ms: Math.round(median(storeMs)),
      copy_ms: Math.round(median(copyMs)),
      store_vs_copy: Number((median(copyMs) / median(storeMs)).toFixed(2)),
      summary_ms: Math.round(median(summaryMs)),
    };
  } finally {
    await scratch.drop();
  }
}
