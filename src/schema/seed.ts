import { audit } from '../security/audit.ts';
import type { Database, Queryable } from '../database/types.ts';

/**
 * Reference data from the seeds: seed 000's markets and default fees, seed 004's instruments
 * and example strategies, and default system configuration. Idempotent: rows that exist are
 * left as they are (an operator's edits survive a second run).
 */
export interface SeedReport {
  markets: number;
  instruments: number;
  strategies: number;
  tradingFees: number;
  systemConfig: number;
}

const MARKETS = [
  ['TATA_INR', 'TATA', 'INR', '0.01', '0.001'],
  ['RELIANCE_INR', 'RELIANCE', 'INR', '0.01', '0.001'],
  ['HDFC_INR', 'HDFC', 'INR', '0.01', '0.001'],
] as const;

const INSTRUMENTS = [
  ['NSE', 'NIFTY', 'INDEX', '0.05', '1'],
  ['NSE', 'BANKNIFTY', 'INDEX', '0.05', '1'],
] as const;

const STRATEGIES = [
  {
    id: 'ema_crossover',
    name: 'EMA Crossover Strategy',
    description: 'Simple EMA crossover with risk management',
    className: 'EMACrossoverStrategy',
    config: { fast_ema: 9, slow_ema: 21, risk_percent: 1.0, instruments: ['NIFTY', 'BANKNIFTY'] },
  },
  {
    id: 'support_resistance',
    name: 'Support Resistance Strategy',
    description: 'Price action at key levels',
    className: 'SupportResistanceStrategy',
    config: { lookback_periods: 20, min_touches: 2, risk_percent: 0.5, instruments: ['NIFTY'] },
  },
];

/** [key, value, data_type, category, description] */
const SYSTEM_CONFIG = [
  ['trading.enabled', 'true', 'boolean', 'trading', 'Master switch the engine reads before accepting orders'],
  ['fees.default_tier', 'basic', 'string', 'fees', 'Fee tier (trading_fees.user_tier) for users without one'],
  ['market_data.default_exchange', 'NSE', 'string', 'market_data', 'Exchange assumed for feed messages that name none'],
  ['risk.max_open_orders_per_user', '200', 'number', 'risk', 'Open venue orders one user may hold'],
] as const;

async function count(q: Queryable, sql: string, params: unknown[]): Promise<number> {
  return (await q.query(sql, params)).rowCount;
}

export async function seed(db: Database): Promise<SeedReport> {
  return db.transaction(async (tx) => {
    const markets = await count(
      tx,
      `INSERT INTO markets (symbol, base_asset, quote_asset, tick_size, step_size)
       SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::numeric[], $5::numeric[])
       ON CONFLICT (symbol) DO NOTHING`,
      [0, 1, 2, 3, 4].map((i) => MARKETS.map((m) => m[i])),
    );
    const instruments = await count(
      tx,
      `INSERT INTO instruments (exchange, symbol, instrument_type, tick_size, lot_size)
       SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::numeric[], $5::numeric[])
       ON CONFLICT (exchange, symbol) DO NOTHING`,
      [0, 1, 2, 3, 4].map((i) => INSTRUMENTS.map((m) => m[i])),
    );
    let strategies = 0;
    for (const s of STRATEGIES) {
      strategies += await count(
        tx,
        `INSERT INTO strategies (id, name, description, class_name, config, symbols, execution_mode, is_active)
         VALUES ($1, $2, $3, $4, $5::jsonb, $6::text[], 'paper', false)
         ON CONFLICT (id) DO NOTHING`,
        [s.id, s.name, s.description, s.className, JSON.stringify(s.config), s.config.instruments],
      );
    }
    const tradingFees = await count(
      tx,
      `INSERT INTO trading_fees (market, user_tier, maker_fee, taker_fee)
       SELECT symbol, 'basic', 0.001, 0.001 FROM markets WHERE symbol = ANY($1::text[])
       ON CONFLICT (market, user_tier) DO NOTHING`,
      [MARKETS.map((m) => m[0])],
    );
    const systemConfig = await count(
      tx,
      `INSERT INTO system_config (key, value, data_type, category, description)
       SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[])
       ON CONFLICT (key) DO NOTHING`,
      [0, 1, 2, 3, 4].map((i) => SYSTEM_CONFIG.map((c) => c[i])),
    );
    const report = { markets, instruments, strategies, tradingFees, systemConfig };
    // Configuration and reference data the deployment starts with: recorded when anything was added.
    // (A schema from before the audit trail's actor column, migration 019, seeded during an upgrade: not recorded.)
    const trail = await tx.query(`SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = 'audit_log' AND column_name = 'actor'`);
    if (trail.rows.length && Object.values(report).some((n) => n > 0)) await audit(tx, { action: 'configuration.seed', resourceType: 'configuration', resourceId: null, userId: null, new: report });
    return report;
  });
}
