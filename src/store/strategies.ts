import { audit } from '../security/audit.ts';
import type { Database, Queryable } from '../database/types.ts';
import { CACHE_GROUPS, type Cache } from '../cache/cache.ts';
import { InvalidArgumentError, NotFoundError } from './errors.ts';
import { recomputeDrawdown } from '../ingest/apply/strategyTrades.ts';
import { rebaseOwnSnapshots } from './portfolioSnapshots.ts';
import { roundTripPage, type StrategyTrade, type TradeHistoryFilters } from './account.ts';
import type { Page } from './pagination.ts';
import { equityAndDrawdown, periodsPerYear, strategyAnalytics, type Benchmark, type EquityAndDrawdown, type StrategyAnalytics } from './strategyAnalytics.ts';

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
  /** Starting capital (a decimal string), from which the equity curve and max drawdown are measured; null if not given. */
  initialCapital: string | null;
  /** The deepest fall of realized equity from its running peak, a fraction ≤ 0; null without an initial capital. */
  maxDrawdown: string | null;
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
  initialCapital: r.initial_capital as string | null,
  maxDrawdown: r.max_drawdown as string | null,
  createdAt: (r.created_at as Date).toISOString(),
});

const COLUMNS = `id, user_id, name, version, strategy_type, timeframe, symbols, config, is_active, execution_mode, total_trades,
  winning_trades, total_pnl::text, initial_capital::text, max_drawdown::text, created_at`;

/** What a strategy is configured with; every change of it is a new version (strategy_versions). */
export interface StrategyConfiguration {
  name: string;
  type: string | null;
  timeframe: string | null;
  symbols: string[];
  config: Record<string, unknown>;
}

export interface StrategyInput extends Partial<StrategyConfiguration> {
  name: string;
  symbols: string[];
  executionMode?: 'paper' | 'live';
  /** The owner; null or absent for a strategy with no owner (a single-operator bot). */
  userId?: string | null;
  /** Starting capital, a positive decimal string. */
  initialCapital?: string | null;
}

export interface StrategyVersion {
  strategyId: string;
  version: number;
  configuration: StrategyConfiguration;
  createdBy: string | null;
  createdAt: string;
}

/** seed 003's timeframes (the strategies_timeframe_check constraint). */
export const STRATEGY_TIMEFRAMES = ['1s', '5s', '1m', '5m', '15m', '30m', '1h', '4h', '1d'] as const;

/** Checks a configuration as seed 002's constraints do, naming the field at fault. */
export function checkConfiguration(c: StrategyConfiguration): void {
  if (typeof c.name !== 'string' || !c.name.trim() || c.name.length > 200) throw new InvalidArgumentError('name', 'must be 1 to 200 characters');
  if (c.type !== null && (typeof c.type !== 'string' || c.type.length > 50)) throw new InvalidArgumentError('type', 'must be at most 50 characters');
  if (c.timeframe !== null && !STRATEGY_TIMEFRAMES.includes(c.timeframe as never)) throw new InvalidArgumentError('timeframe', `must be one of ${STRATEGY_TIMEFRAMES.join(', ')}`);
  if (!Array.isArray(c.symbols) || c.symbols.length === 0 || c.symbols.length > 500 || !c.symbols.every((s) => typeof s === 'string' && /^[A-Za-z0-9_.\-/:]{1,50}$/.test(s))) {
    throw new InvalidArgumentError('symbols', 'must be a non-empty list of market symbols');
  }
  if (typeof c.config !== 'object' || c.config === null || Array.isArray(c.config)) throw new InvalidArgumentError('config', 'must be a JSON object (seed 002\'s valid_config)');
}

export class StrategyRepository {
  constructor(
    private readonly db: Database,
    private readonly cache: Cache,
  ) {}

  /** A new strategy, inactive, at version 1 (its first strategy_versions row); `by` is the user who made it. */
  async create(input: StrategyInput, by: string | null = null): Promise<Strategy> {
    const configuration: StrategyConfiguration = { name: input.name, type: input.type ?? null, timeframe: input.timeframe ?? null, symbols: input.symbols, config: input.config ?? {} };
    checkConfiguration(configuration);
    if (input.executionMode !== undefined && input.executionMode !== 'paper' && input.executionMode !== 'live') throw new InvalidArgumentError('executionMode', 'must be paper or live');
    checkCapital(input.initialCapital);
    const id = await this.db.transaction(async (tx) => {
      const { rows } = await tx.query<{ id: string }>(
        `INSERT INTO strategies (user_id, name, strategy_type, timeframe, symbols, config, execution_mode, version, initial_capital, peak_equity, max_drawdown)
         VALUES ($1, $2, $3, $4, $5, $6, $7, '1', $8, $8, CASE WHEN $8::numeric IS NULL THEN NULL ELSE 0 END) RETURNING id`,
        [input.userId ?? null, configuration.name, configuration.type, configuration.timeframe, configuration.symbols, JSON.stringify(configuration.config), input.executionMode ?? 'paper',
          input.initialCapital ?? null],
      ).catch((error: { code?: string }) => {
        if (error.code === '23505') throw new InvalidArgumentError('name', `a strategy named ${JSON.stringify(configuration.name)} exists already`);
        throw error;
      });
      await tx.query(`INSERT INTO strategy_versions (strategy_id, version_number, config, created_by) VALUES ($1, 1, $2, $3)`, [rows[0]!.id, JSON.stringify(configuration), by]);
      await audit(tx, { action: 'strategy.create', resourceType: 'strategy', resourceId: rows[0]!.id, userId: input.userId ?? null, new: { ...configuration, version: 1, executionMode: input.executionMode ?? 'paper', initialCapital: input.initialCapital ?? null } });
      return rows[0]!.id;
    });
    await this.cache.invalidate([CACHE_GROUPS.strategy(id), CACHE_GROUPS.strategiesActive()]);
    return this.get(id);
  }

  /**
   * Changes a strategy. A change of its configuration (name, type, timeframe, symbols, config)
   * appends a version; the execution mode, being active and the owner are its state, not versioned.
   * `ownerId` restricts the change to that owner's strategy.
   */
  async update(
    id: string,
    changes: Partial<StrategyConfiguration> & { executionMode?: 'paper' | 'live'; isActive?: boolean; userId?: string | null; initialCapital?: string | null },
    by: string | null = null,
    ownerId?: string,
  ): Promise<Strategy> {
    const current = await this.get(id, ownerId);
    const next: StrategyConfiguration = {
      name: changes.name ?? current.name,
      type: changes.type !== undefined ? changes.type : current.type,
      timeframe: changes.timeframe !== undefined ? changes.timeframe : current.timeframe,
      symbols: changes.symbols ?? current.symbols,
      config: changes.config ?? (current.config as Record<string, unknown>),
    };
    checkConfiguration(next);
    if (changes.executionMode !== undefined && changes.executionMode !== 'paper' && changes.executionMode !== 'live') throw new InvalidArgumentError('executionMode', 'must be paper or live');
    checkCapital(changes.initialCapital);
    const before: StrategyConfiguration = { name: current.name, type: current.type, timeframe: current.timeframe, symbols: current.symbols, config: current.config as Record<string, unknown> };
    const changed = JSON.stringify(next) !== JSON.stringify(before);
    await this.db.transaction(async (tx) => {
      let version = Number(current.version);
      if (changed) {
        const { rows } = await tx.query<{ n: number | null }>(`SELECT max(version_number) AS n FROM strategy_versions WHERE strategy_id = $1`, [id]);
        let last = rows[0]?.n === null || rows[0]?.n === undefined ? null : Number(rows[0].n);
        if (last === null) {
          // A strategy made without the library (the seeds' examples, a producer's): its configuration so far is recorded first.
          last = Math.max(1, Number(current.version) || 1);
          await tx.query(`INSERT INTO strategy_versions (strategy_id, version_number, config, created_at) VALUES ($1, $2, $3, $4)`, [id, last, JSON.stringify(before), current.createdAt]);
        }
        version = last + 1;
        await tx.query(`INSERT INTO strategy_versions (strategy_id, version_number, config, created_by) VALUES ($1, $2, $3, $4)`, [id, version, JSON.stringify(next), by]);
      }
      await tx.query(
        `UPDATE strategies SET name = $2, strategy_type = $3, timeframe = $4, symbols = $5, config = $6, version = $7,
                execution_mode = coalesce($8, execution_mode), is_active = coalesce($9, is_active),
                user_id = CASE WHEN $10 THEN $11 ELSE user_id END, updated_at = now()
          WHERE id = $1`,
        [id, next.name, next.type, next.timeframe, next.symbols, JSON.stringify(next.config), String(version), changes.executionMode ?? null, changes.isActive ?? null,
          changes.userId !== undefined, changes.userId ?? null],
      ).catch((error: { code?: string }) => {
        if (error.code === '23505') throw new InvalidArgumentError('name', `a strategy named ${JSON.stringify(next.name)} exists already`);
        if (error.code === '23503') throw new InvalidArgumentError('userId', 'no such user');
        throw error;
      });
      if (changes.initialCapital !== undefined) {
        await recomputeDrawdown(tx, id, changes.initialCapital);
        await rebaseOwnSnapshots(tx, id, current.initialCapital, changes.initialCapital);
      }
      const state = (s: { executionMode: string; isActive: boolean; userId: string | null; initialCapital: string | null }) =>
        ({ executionMode: s.executionMode, isActive: s.isActive, userId: s.userId, initialCapital: s.initialCapital });
      const after = {
        executionMode: changes.executionMode ?? current.executionMode, isActive: changes.isActive ?? current.isActive,
        userId: changes.userId !== undefined ? changes.userId : current.userId, initialCapital: changes.initialCapital !== undefined ? changes.initialCapital : current.initialCapital,
      };
      await audit(tx, {
        action: 'strategy.update', resourceType: 'strategy', resourceId: id, userId: after.userId ?? current.userId,
        old: { ...before, version: Number(current.version), ...state(current) }, new: { ...next, version, ...state(after) },
      });
    });
    await this.cache.invalidate([CACHE_GROUPS.strategy(id), CACHE_GROUPS.strategiesActive()]);
    return this.get(id);
  }

  /**
   * The strategy's metrics over [from, to) (docs/ANALYTICS.md). Annualized with 365 periods when
   * it trades only the venue's own markets, else 252; `benchmark` names a market (the venue's, or
   * an exchange instrument with daily candles).
   */
  async analytics(id: string, options: { from?: Date; to?: Date; benchmark?: string; riskFree?: number } = {}, ownerId?: string): Promise<StrategyAnalytics> {
    const strategy = await this.get(id, ownerId);
    checkRange(options);
    if (options.riskFree !== undefined && !(options.riskFree >= 0 && options.riskFree < 1)) throw new InvalidArgumentError('riskFree', 'must be an annual rate from 0 to 1 (0.04 for 4 %)');
    const benchmark = options.benchmark ? await this.benchmark(options.benchmark) : null;
    return strategyAnalytics(this.db, strategy, { from: options.from, to: options.to, benchmark, riskFree: options.riskFree, periodsPerYear: await this.periodsPerYear(strategy) });
  }

  /**
   * A benchmark named as a venue market (`TATA_INR`), an instrument (`NIFTY`, when one exchange
   * lists it) or `EXCHANGE:SYMBOL`.
   */
  private async benchmark(name: string): Promise<Benchmark> {
    const colon = name.indexOf(':');
    const [exchange, symbol] = colon > 0 ? [name.slice(0, colon), name.slice(colon + 1)] : [null, name];
    const { rows } = await this.db.query<{ exchange: string | null }>(
      `SELECT NULL::text AS exchange FROM markets WHERE $1::text IS NULL AND symbol = $2
       UNION ALL SELECT exchange FROM instruments WHERE symbol = $2 AND ($1::text IS NULL OR exchange = $1) LIMIT 3`,
      [exchange, symbol],
    );
    if (!rows[0]) throw new InvalidArgumentError('benchmark', `no market ${name}`);
    if (rows.length > 1) throw new InvalidArgumentError('benchmark', `${symbol} is listed on several exchanges: name one, as EXCHANGE:${symbol}`);
    return { exchange: rows[0].exchange, symbol };
  }

  /** The strategy's daily equity curve over [from, to) and its drawdown curve (docs/ANALYTICS.md). */
  async equity(id: string, options: { from?: Date; to?: Date } = {}, ownerId?: string): Promise<EquityAndDrawdown> {
    const strategy = await this.get(id, ownerId);
    checkRange(options);
    return equityAndDrawdown(this.db, strategy, { ...options, periodsPerYear: await this.periodsPerYear(strategy) });
  }

  /** The strategy's round trips, newest entry first, a keyset page with the total. */
  async trades(id: string, filters: Omit<TradeHistoryFilters, 'strategyId'> = {}, ownerId?: string): Promise<Page<StrategyTrade>> {
    await this.get(id, ownerId);
    return roundTripPage(this.db, { strategyId: id }, filters);
  }

  /** 365 when every market of the strategy is the venue's own (it trades every day), else 252. */
  periodsPerYear(strategy: Pick<Strategy, 'symbols'>): Promise<number> {
    return periodsPerYear(this.db, strategy.symbols);
  }

  /** Every version of a strategy's configuration, oldest first. */
  async versions(id: string, ownerId?: string): Promise<StrategyVersion[]> {
    await this.get(id, ownerId);
    const { rows } = await this.db.query<{ version_number: number; config: StrategyConfiguration; created_by: string | null; created_at: Date }>(
      `SELECT version_number, config, created_by, created_at FROM strategy_versions WHERE strategy_id = $1 ORDER BY version_number`,
      [id],
    );
    return rows.map((r) => ({ strategyId: id, version: Number(r.version_number), configuration: r.config, createdBy: r.created_by, createdAt: r.created_at.toISOString() }));
  }

  /** Strategies, newest first: a user's, or (without one) every strategy, active or not. */
  async list(userId?: string): Promise<Strategy[]> {
    const { rows } = await this.db.query(`SELECT ${COLUMNS} FROM strategies WHERE $1::text IS NULL OR user_id = $1 ORDER BY created_at DESC, id`, [userId ?? null]);
    return rows.map(toStrategy);
  }

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
    await this.db.transaction(async (tx) => {
      const { rows } = await tx.query<{ user_id: string | null; was: boolean }>(
        `UPDATE strategies s SET is_active = $2, updated_at = now() FROM (SELECT is_active AS was FROM strategies WHERE id = $1 FOR UPDATE) o
          WHERE s.id = $1 RETURNING s.user_id, o.was`, [id, active]);
      if (!rows[0]) throw new NotFoundError('strategy', id);
      await audit(tx, { action: active ? 'strategy.enable' : 'strategy.disable', resourceType: 'strategy', resourceId: id, userId: rows[0].user_id, old: { isActive: rows[0].was }, new: { isActive: active } });
    });
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

function checkRange(range: { from?: Date; to?: Date }): void {
  if (range.from && range.to && range.from > range.to) throw new InvalidArgumentError('from', 'must not be after to');
}

function checkCapital(capital: string | null | undefined): void {
  if (capital === undefined || capital === null) return;
  if (typeof capital !== 'string' || !/^\d{1,20}(\.\d{1,18})?$/.test(capital) || !/[1-9]/.test(capital)) {
    throw new InvalidArgumentError('initialCapital', 'must be a positive decimal string, such as "10000"');
  }
}
