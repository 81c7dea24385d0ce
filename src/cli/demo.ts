import type { Database } from '../database/types.ts';
import { migrate } from '../schema/migrator.ts';
import { seed } from '../schema/seed.ts';
import { describe } from './migrate.ts';

/**
 * Prepares the configured database (the embedded one by default) and shows what is in it.
 * The live feed, the API and the dashboard join the demo with the ingest service and the API.
 */
export async function demoCommand(db: Database, out: (line: string) => void, where: string): Promise<void> {
  const result = await migrate(db);
  out(`tradestore demo: ${describe(db)} at ${where}`);
  out(`schema at version ${result.to}${result.steps.length ? ` (applied ${result.steps.length} migrations)` : ''}`);
  const seeded = await seed(db);
  out(`seed data: ${seeded.markets + seeded.instruments + seeded.strategies} new reference rows`);
  const { rows } = await db.query<{ kind: string; n: string }>(
    `SELECT CASE c.relkind WHEN 'm' THEN 'materialized views' WHEN 'v' THEN 'views' ELSE 'tables' END AS kind, count(*)::text AS n
       FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'm', 'v') AND NOT c.relispartition
      GROUP BY 1 ORDER BY 1`,
  );
  out(`public schema: ${rows.map((r) => `${r.n} ${r.kind}`).join(', ')}`);
  const markets = await db.query<{ symbol: string; tick_size: string; step_size: string }>(
    'SELECT symbol, tick_size, step_size FROM markets ORDER BY symbol',
  );
  for (const m of markets.rows) out(`  market ${m.symbol.padEnd(14)} tick ${m.tick_size}  step ${m.step_size}`);
  if (db.capabilities.timescaledb) {
    const ht = await db.query<{ n: string }>('SELECT count(*)::text AS n FROM timescaledb_information.hypertables');
    const jobs = await db.query<{ n: string }>(
      "SELECT count(*)::text AS n FROM timescaledb_information.jobs WHERE proc_name LIKE 'policy_%'",
    );
    out(`TimescaleDB: ${ht.rows[0]?.n} hypertables, ${jobs.rows[0]?.n} lifecycle policies`);
  }
  out('Live feed: `npx tradestore start --simulate 200` runs the ingest service on this database with a simulated engine');
  out('(health and metrics on http://localhost:8080). The read API and the dashboard are not part of the demo yet.');
}
