import { EngineSimulator } from '../src/simulator/engine.ts';
import { ensureSimulatorUsers } from '../src/simulator/run.ts';
import { applyInBatches, decodeEntries } from './apply.ts';
import { scratchDatabase, type BenchTarget } from './ingest.ts';

export interface RiskBenchResults {
  events: number;
  limits: number;
  runs: number;
  /** Median events/s of the database apply of the mix with no risk limits. */
  none_events_per_s: number;
  /** The same with the limits active on the users the mix moves. */
  limits_events_per_s: number;
  /** limits ÷ none (target ≥ 0.9: within 10 %). */
  limits_vs_none: number;
  risk_events_raised: number;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/**
 * Risk evaluation's cost per ingested event: the database apply of the simulator's mix (orders,
 * trades, balance changes of 10 users), pre-decoded as the ingest benchmark's "apply alone", with
 * no risk limits and with `limits` active limits on those users, alternating, in one run.
 */
export async function benchRisk(target: BenchTarget, events = 30_000, limits = 100, runs = 3, batchSize = 2000): Promise<RiskBenchResults> {
  const none: number[] = [];
  const withLimits: number[] = [];
  let raised = 0;
  for (let run = 0; run <= runs; run++) {
    for (const active of [false, true]) {
      const scratch = await scratchDatabase(target.adminUrl);
      try {
        const sim = new EngineSimulator({ seed: 5 + run, prefix: 'risk', users: 10 });
        await ensureSimulatorUsers(scratch.db, sim);
        if (active) {
          // 10 limits a user: every measured kind, overall and per market and asset; the order count and the INR floor are breached during the run.
          const rows = sim.users.flatMap((user) => [
            [user, 'max_orders_per_hour', null, '300'], [user, 'max_orders_per_hour', 'TATA_INR', '1000'], [user, 'max_daily_loss', null, '100'],
            [user, 'max_position_value', null, '1000000'], [user, 'max_position_value', 'TATA_INR', '50000'], [user, 'max_drawdown', null, '0.2'],
            [user, 'min_balance', 'INR', '9999500'], [user, 'min_balance', 'TATA', '1'], [user, 'max_daily_loss', 'TATA_INR', '50'], [user, 'custom_exposure', null, '5'],
          ]).slice(0, limits);
          await scratch.db.query(
            `INSERT INTO risk_limits (user_id, limit_type, symbol, limit_value) SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::numeric[])`,
            [rows.map((r) => r[0]), rows.map((r) => r[1]), rows.map((r) => r[2]), rows.map((r) => r[3])],
          );
        }
        const entries = decodeEntries([...sim.deposits(), ...sim.batch(events)], `risk-${run}`);
        const t0 = performance.now();
        await applyInBatches(scratch.db, entries, batchSize);
        const rate = entries.length / ((performance.now() - t0) / 1000);
        target.log(`risk: run ${run}${run === 0 ? ' (warm-up)' : ''}, ${active ? `${limits} limits` : 'no limits'}: ${Math.round(rate)} events/s`);
        if (run > 0) (active ? withLimits : none).push(rate);
        if (active && run > 0) raised += Number((await scratch.db.query<{ n: string }>(`SELECT count(*)::text AS n FROM risk_events`)).rows[0]!.n);
      } finally {
        await scratch.drop();
      }
    }
  }
  return {
    events,
    limits,
    runs,
    none_events_per_s: Math.round(median(none)),
    limits_events_per_s: Math.round(median(withLimits)),
    limits_vs_none: Number((median(withLimits) / median(none)).toFixed(3)),
    risk_events_raised: Math.round(raised / runs),
  };
}
