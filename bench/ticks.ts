// Exchange ticks: what building their candles (src/ingest/apply/tickCandles.ts) costs the ingest
// of MARKET_TRADE, beside the same ticks' rows written alone and a raw COPY of them, in one run.
import { applyInBatches, decodeEntries } from './apply.ts';
import { scratchDatabase, type BenchTarget } from './ingest.ts';

export interface TicksBenchResults {
  ticks: number;
  batch_size: number;
  runs: number;
  /** Median ticks/s of the database apply (rows, identity claims and candles of 8 timeframes). */
  apply_ticks_per_s: number;
  /** Median ticks/s of the same rows written by the applier's INSERT alone, in the same batches (no claims, no candles). */
  insert_only_ticks_per_s: number;
  /** Median rows/s of a raw COPY of the same rows. */
  copy_rows_per_s: number;
  apply_vs_insert_only: number;
  candles_written: number;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** Ticks of two instruments, 20 a second each, half with an exchange trade id. */
function ticks(count: number, run: number) {
  const t0 = Date.UTC(2026, 10, 20) + run * 86_400_000;
  return Array.from({ length: count }, (_, i) => ({
    exchange: i % 2 ? 'NSE' : 'binance',
    symbol: i % 2 ? 'NIFTY' : 'BTCUSDT',
    ...(i % 4 < 2 ? { tradeId: String(i) } : {}),
    price: (24000 + ((i * 7919) % 400) / 4).toFixed(2),
    quantity: String(1 + (i % 75)),
    isBuyerMaker: i % 3 === 0,
    timestamp: t0 + Math.floor(i / 2) * 50,
  }));
}

export async function benchTicks(target: BenchTarget, count = 50_000, runs = 3, batchSize = 2000): Promise<TicksBenchResults> {
  const apply: number[] = [];
  const insert: number[] = [];
  const copy: number[] = [];
  let candles = 0;
  for (let run = 0; run <= runs; run++) {
    const scratch = await scratchDatabase(target.adminUrl);
    try {
      await scratch.db.query(`INSERT INTO instruments (exchange, symbol, instrument_type, base_asset, quote_asset) VALUES ('binance', 'BTCUSDT', 'SPOT', 'BTC', 'USDT') ON CONFLICT DO NOTHING`);
      const list = ticks(count, run);
      const entries = decodeEntries(list.map((data) => JSON.stringify({ type: 'MARKET_TRADE', data })), `ticks-${run}`);
      let t0 = performance.now();
      await applyInBatches(scratch.db, entries, batchSize);
      const applyRate = count / ((performance.now() - t0) / 1000);
      candles = Number((await scratch.db.query<{ n: string }>(`SELECT count(*)::text AS n FROM market_data WHERE data_source = 'ticks'`)).rows[0]!.n);
      // The applier's own INSERT of the same rows, batch by batch, into an empty copy of the table.
      await scratch.db.query(`CREATE TABLE bench_ticks (LIKE market_trades INCLUDING ALL)`);
      t0 = performance.now();
      for (let i = 0; i < list.length; i += batchSize) {
        const part = list.slice(i, i + batchSize);
        await scratch.db.query(
          `INSERT INTO bench_ticks (exchange, symbol, trade_id, time, price, quantity, is_buyer_maker)
           SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::numeric[], $6::numeric[], $7::boolean[]) ON CONFLICT DO NOTHING`,
          [part.map((t) => t.exchange), part.map((t) => t.symbol), part.map((t) => t.tradeId ?? ''), part.map((t) => new Date(t.timestamp).toISOString()),
            part.map((t) => t.price), part.map((t) => t.quantity), part.map((t) => t.isBuyerMaker)],
        );
      }
      const insertRate = count / ((performance.now() - t0) / 1000);
      await scratch.db.query(`TRUNCATE bench_ticks`);
      t0 = performance.now();
      await scratch.db.copyFrom('bench_ticks', ['exchange', 'symbol', 'trade_id', 'time', 'price', 'quantity', 'is_buyer_maker'],
        list.map((t) => [t.exchange, t.symbol, t.tradeId ?? '', new Date(t.timestamp).toISOString(), t.price, t.quantity, t.isBuyerMaker]));
      const copyRate = count / ((performance.now() - t0) / 1000);
      target.log(`ticks: run ${run}${run === 0 ? ' (warm-up)' : ''}: apply ${Math.round(applyRate)}/s, insert alone ${Math.round(insertRate)}/s, COPY ${Math.round(copyRate)}/s`);
      if (run > 0) {
        apply.push(applyRate);
        insert.push(insertRate);
        copy.push(copyRate);
      }
    } finally {
      await scratch.drop();
    }
  }
  const [a, i, c] = [median(apply), median(insert), median(copy)];
  return {
    ticks: count, batch_size: batchSize, runs,
    apply_ticks_per_s: Math.round(a), insert_only_ticks_per_s: Math.round(i), copy_rows_per_s: Math.round(c),
    apply_vs_insert_only: Math.round((a / i) * 1000) / 1000, candles_written: candles,
  };
}
