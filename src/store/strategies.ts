import type { Queryable } from '../database/types.ts';
import { CACHE_GROUPS, type Cache } from '../cache/cache.ts';
import { NotFoundError } from './errors.ts';

export interface Strategy {
  id: string;
  userId: string | null;
  name: string;
  version: string;
  type: string | null;
  timeframe: string | null;
  symbols: string[];
  config: unknown;
  isActive: boolean;
  executionMode: string;
  totalTrades: number;
  winningTrades: number;
  totalPnl: string;
  maxDrawdown: string;
  createdAt: string;
}

/** Seed 002's getStrategyPerformance, exact: decimals as strings. */
export interface StrategyPerformance {
  strategyId: string;
  totalTrades: number;
  winningTrades: number;
  totalPnl: string | null;
  avgPnl: string | null;
  pnlStddev: string | null;
  worstTrade: string | null;
  bestTrade: string | null;
  avgDurationMinutes: string | null;
}

const toStrategy = (r: Record<string, unknown>): Strategy => ({
  id: r.id as string,
  userId: r.user_id as string | null,
  name: r.name as string,
  version: r.version as string,
  type: r.strategy_type as string | null,
  timeframe: r.timeframe as string | null,
  symbols: r.symbols as string[],
  config: r.config,
  isActive: r.is_active as boolean,
  executionMode: r.execution_mode as string,
  totalTrades: r.total_trades as number,
  winningTrades: r.winning_trades as number,
  totalPnl: r.total_pnl as string,
  maxDrawdown: r.max_drawdown as string,
  createdAt: (r.created_at as Date).toISOString(),
});

const COLUMNS = `id, user_id, name, version, strategy_type, timeframe, symbols, config, is_active, execution_mode, total_trades,
  winning_trades, total_pnl::text, max_drawdown::text, created_at`;

export class StrategyRepository {
  constructor(
    private readonly db: Queryable,
    private readonly cache: Cache,
  ) {}

  /** Seed 002's findActiveStrategies (cached under strategies:active for a minute), optionally one user's. */
  async active(userId?: string): Promise<Strategy[]> {
    const all = await this.cache.read(CACHE_GROUPS.strategiesActive(), '', 60_000, async () => {
      const { rows } = await this.db.query(`SELECT ${COLUMNS} FROM strategies WHERE is_active ORDER BY created_at DESC, id`);
      return rows.map(toStrategy);
    });
    return userId === undefined ? all : all.filter((s) => s.userId === userId);
  }

  /** One strategy (cached under strategy:{id}); `userId` restricts it to its owner. */
  async get(id: string, userId?: string): Promise<Strategy> {
    const strategy = await this.cache.read(CACHE_GROUPS.strategy(id), '', 60_000, async () => {
      const { rows } = await this.db.query(`SELECT ${COLUMNS} FROM strategies WHERE id = $1`, [id]);
      return rows[0] ? toStrategy(rows[0]) : null;
    });
    if (!strategy || (userId !== undefined && strategy.userId !== userId)) throw new NotFoundError('strategy', id);
    return strategy;
  }

  /** Turns a strategy on or off, and drops the cache entries that change with it. */
  async setActive(id: string, active: boolean): Promise<void> {
    const { rowCount } = await this.db.query(`UPDATE strategies SET is_active = $2, updated_at = now() WHERE id = $1`, [id, active]);
    if (!rowCount) throw new NotFoundError('strategy', id);
    await this.cache.invalidate([CACHE_GROUPS.strategy(id), CACHE_GROUPS.strategiesActive()]);
  }

  /** Performance of the closed round trips whose entry lies in [from, to] (either bound optional). */
  async performance(id: string, range: { from?: Date; to?: Date } = {}, userId?: string): Promise<StrategyPerformance> {
    await this.get(id, userId);
    const { rows } = await this.db.query<Record<string, string | null>>(
      `SELECT count(*)::text AS total_trades, count(*) FILTER (WHERE pnl > 0)::text AS winning_trades,
              sum(pnl)::text AS total_pnl, avg(pnl)::text AS avg_pnl, stddev(pnl)::text AS pnl_stddev,
              min(pnl)::text AS worst_trade, max(pnl)::text AS best_trade,
              avg(extract(epoch FROM (exit_time - entry_time)) / 60)::text AS avg_duration_minutes
         FROM strategy_trades
        WHERE strategy_id = $1 AND status = 'closed'
          AND ($2::timestamptz IS NULL OR entry_time >= $2) AND ($3::timestamptz IS NULL OR entry_time <= $3)`,
      [id, range.from ?? null, range.to ?? null],
    );
    const r = rows[0]! as Record<string, string | null>;
    return {
      strategyId: id,
      totalTrades: Number(r.total_trades),
      winningTrades: Number(r.winning_trades),
      totalPnl: r.total_pnl ?? null,
      avgPnl: r.avg_pnl ?? null,
      pnlStddev: r.pnl_stddev ?? null,
      worstTrade: r.worst_trade ?? null,
      bestTrade: r.best_trade ?? null,
      avgDurationMinutes: r.avg_duration_minutes ?? null,
    };
  }
}
