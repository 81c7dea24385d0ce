import { AUDIT_COLUMNS, auditParams } from '../security/audit.ts';
import Big from 'big.js';
import type { Database } from '../database/types.ts';
import { backtestClaims, backtestEquity, backtestTrade, type BacktestClaims, type BacktestTrade } from '../ingest/events/backtests.ts';
import { InvalidArgumentError, NotFoundError } from './errors.ts';
import { decodeCursor, pageOf, pageSize, type Page } from './pagination.ts';
import { PNL_PERCENT, cancelRun, completeRun, failRun, reportProgress, startRun, storeEquity, storeTrades, type BacktestStatus, type BacktestSummary } from './backtestRuns.ts';
import type { StrategyRepository } from './strategies.ts';

export interface BacktestInput {
  strategyId: string;
  name: string;
  description?: string | null;
  symbols: string[];
  timeframes?: string[];
  startDate: Date;
  endDate: Date;
  /** Decimal strings. */
  initialCapital: string;
  commission?: string;
  slippage?: string;
  parameters?: Record<string, unknown> | null;
}

export interface Backtest {
  id: string;
  strategyId: string;
  userId: string | null;
  name: string;
  description: string | null;
  symbols: string[];
  timeframes: string[];
  startDate: string;
  endDate: string;
  initialCapital: string;
  commission: string;
  slippage: string;
  parameters: unknown;
  status: BacktestStatus;
  progress: number;
  errorMessage: string | null;
  createdAt: string;
  startedAt: string | null;
  completedAt: string | null;
  /** Stored trades so far (visible while it runs). */
  tradesStored: number;
  /** The summary, once completed: each metric as a decimal string or null (docs/ANALYTICS.md names). */
  results: BacktestResults | null;
}

export interface BacktestResults {
  equitySource: string | null;
  finalCapital: string | null;
  metrics: Record<string, string | null>;
  reasons: Record<string, string>;
  executionTimeMs: number | null;
  dataPointsProcessed: number | null;
}

export interface BacktestTradeRow {
  id: string;
  symbol: string;
  side: string;
  quantity: string;
  entryPrice: string;
  exitPrice: string | null;
  entryTime: string;
  exitTime: string | null;
  pnl: string | null;
  pnlPercent: string | null;
  commission: string;
  signal: string | null;
}

/** The metrics a list of backtests can be ranked by, and their backtest_results column. */
export const RANKABLE = {
  sharpeRatio: 'sharpe_ratio',
  sortinoRatio: 'sortino_ratio',
  calmarRatio: 'calmar_ratio',
  totalReturn: 'total_return',
  annualReturn: 'annual_return',
  maxDrawdown: 'max_drawdown',
  winRate: 'win_rate',
  profitFactor: 'profit_factor',
  totalTrades: 'total_trades',
  finalCapital: 'final_capital',
  volatility: 'volatility',
} as const;
export type RankBy = keyof typeof RANKABLE;

const STATUSES = ['pending', 'running', 'completed', 'failed', 'cancelled'] as const;
const decimalText = /^\d{1,20}(\.\d{1,18})?$/;

const iso = (d: Date | null) => (d ? d.toISOString() : null);

const COLUMNS = `b.id::text, b.strategy_id, b.user_id, b.name, b.description, b.symbols, b.timeframes, b.start_date, b.end_date,
  b.initial_capital::text, b.commission::text, b.slippage::text, b.parameters, b.status, b.progress, b.error_message, b.created_at, b.started_at,
  b.completed_at, b.trade_count AS trades_stored,
  r.detailed_results, r.final_capital::text AS final_capital, r.equity_source, r.execution_time_ms, r.data_points_processed`;

function toBacktest(r: Record<string, unknown>): Backtest {
  const detailed = r.detailed_results as { metrics?: Record<string, string | null>; reasons?: Record<string, string> } | null;
  return {
    id: r.id as string,
    strategyId: r.strategy_id as string,
    userId: r.user_id as string | null,
    name: r.name as string,
    description: r.description as string | null,
    symbols: r.symbols as string[],
    timeframes: r.timeframes as string[],
    startDate: (r.start_date as Date).toISOString(),
    endDate: (r.end_date as Date).toISOString(),
    initialCapital: r.initial_capital as string,
    commission: r.commission as string,
    slippage: r.slippage as string,
    parameters: r.parameters ?? null,
    status: r.status as BacktestStatus,
    progress: Number(r.progress),
    errorMessage: r.error_message as string | null,
    createdAt: (r.created_at as Date).toISOString(),
    startedAt: iso(r.started_at as Date | null),
    completedAt: iso(r.completed_at as Date | null),
    tradesStored: Number(r.trades_stored),
    results: detailed
      ? {
          equitySource: r.equity_source as string | null,
          finalCapital: r.final_capital as string | null,
          metrics: detailed.metrics ?? {},
          reasons: detailed.reasons ?? {},
          executionTimeMs: r.execution_time_ms === null ? null : Number(r.execution_time_ms),
          dataPointsProcessed: r.data_points_processed === null ? null : Number(r.data_points_processed),
        }
      : null,
  };
}

export interface BacktestComparison {
  backtestId: string;
  strategyId: string;
  from: string;
  to: string;
  /** For each metric: the backtest's, the strategy's live one over the same period, and live − backtest. */
  metrics: { name: string; backtest: string | null; live: string | null; difference: string | null }[];
  liveReasons: Record<string, string>;
}

/**
 * Seeds 002 and 003's backtests: created here, run by an engine outside tradestore that reports
 * through events (BACKTEST_*) or these methods, summarized by tradestore (docs/BACKTESTS.md).
 * `ownerId` restricts a read or change to that user's backtests.
 */
export class BacktestRepository {
  constructor(
    private readonly db: Database,
    private readonly strategies: StrategyRepository,
  ) {}

  /** A new backtest of a strategy, PENDING; it belongs to the strategy's owner. */
  async create(input: BacktestInput, ownerId?: string): Promise<Backtest> {
    const strategy = await this.strategies.get(input.strategyId, ownerId).catch((error) => {
      if (error instanceof NotFoundError) throw new InvalidArgumentError('strategyId', `no strategy ${input.strategyId}`);
      throw error;
    });
    if (typeof input.name !== 'string' || !input.name.trim() || input.name.length > 200) throw new InvalidArgumentError('name', 'must be 1 to 200 characters');
    if (!Array.isArray(input.symbols) || !input.symbols.length || !input.symbols.every((s) => typeof s === 'string' && /^[A-Za-z0-9_.\-/:]{1,50}$/.test(s))) {
      throw new InvalidArgumentError('symbols', 'must be a non-empty list of market symbols');
    }
    // The period is bounded as event times are (2000 to 2100): its curve has a point a day.
    const inRange = (d: unknown) => d instanceof Date && d.getTime() >= Date.UTC(2000, 0, 1) && d.getTime() < Date.UTC(2100, 0, 1);
    if (!inRange(input.startDate)) throw new InvalidArgumentError('startDate', 'must be a time from 2000 to 2100');
    if (!inRange(input.endDate) || !(input.endDate > input.startDate)) throw new InvalidArgumentError('endDate', 'must be after startDate, before 2100');
    if (!decimalText.test(String(input.initialCapital)) || !/[1-9]/.test(String(input.initialCapital))) throw new InvalidArgumentError('initialCapital', 'must be a positive decimal string');
    for (const field of ['commission', 'slippage'] as const) {
      if (input[field] !== undefined && !decimalText.test(String(input[field]))) throw new InvalidArgumentError(field, 'must be a decimal string, 0 or more');
    }
    if (input.parameters !== undefined && input.parameters !== null && (typeof input.parameters !== 'object' || Array.isArray(input.parameters))) {
      throw new InvalidArgumentError('parameters', 'must be a JSON object');
    }
    const change = auditParams({ action: 'backtest.create', resourceType: 'backtest', resourceId: null, userId: strategy.userId, new: { strategyId: strategy.id, name: input.name, symbols: input.symbols, parameters: input.parameters ?? null } });
    const { rows } = await this.db.query<{ id: string }>(
      // The backtest and its audit row in one statement (one transaction).
      `WITH b AS (INSERT INTO backtests (user_id, strategy_id, name, description, symbols, timeframes, start_date, end_date, initial_capital, commission, slippage, parameters)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING id),
            a AS (INSERT INTO audit_log (${AUDIT_COLUMNS}) SELECT $13, $14, $15, coalesce($16::text, b.id::text), $17::jsonb, $18::jsonb, $19::inet, $20, $21 FROM b)
       SELECT id::text FROM b`,
      [strategy.userId, strategy.id, input.name, input.description ?? null, input.symbols, input.timeframes ?? [], input.startDate, input.endDate,
        input.initialCapital, input.commission ?? '0', input.slippage ?? '0', input.parameters ? JSON.stringify(input.parameters) : null, ...change],
    );
    return this.get(rows[0]!.id);
  }

  async get(id: string, ownerId?: string): Promise<Backtest> {
    if (!/^[1-9]\d{0,17}$/.test(id)) throw new NotFoundError('backtest', id);
    const { rows } = await this.db.query(`SELECT ${COLUMNS} FROM backtests b LEFT JOIN backtest_results r ON r.backtest_id = b.id WHERE b.id = $1::bigint`, [id]);
    const found = rows[0] ? toBacktest(rows[0]) : null;
    if (!found || (ownerId !== undefined && found.userId !== ownerId)) throw new NotFoundError('backtest', id);
    return found;
  }

  /**
   * Backtests, newest first, or ranked by a metric (best first: highest, or for maxDrawdown and
   * volatility the smallest fall); completed ones only when ranked.
   */
  async list(filters: { strategyId?: string; status?: BacktestStatus; orderBy?: RankBy; limit?: number } = {}, ownerId?: string): Promise<Backtest[]> {
    if (filters.status !== undefined && !STATUSES.includes(filters.status)) throw new InvalidArgumentError('status', `must be one of ${STATUSES.join(', ')}`);
    if (filters.orderBy !== undefined && !(filters.orderBy in RANKABLE)) throw new InvalidArgumentError('orderBy', `must be one of ${Object.keys(RANKABLE).join(', ')}`);
    const limit = pageSize(filters.limit);
    const column = filters.orderBy ? RANKABLE[filters.orderBy] : null;
    // A drawdown is ≤ 0: the best is the largest (nearest 0); volatility: the smallest.
    const direction = filters.orderBy === 'volatility' ? 'ASC' : 'DESC';
    const { rows } = await this.db.query(
      `SELECT ${COLUMNS} FROM backtests b LEFT JOIN backtest_results r ON r.backtest_id = b.id
        WHERE ($1::text IS NULL OR b.strategy_id = $1) AND ($2::text IS NULL OR b.status = $2) AND ($3::text IS NULL OR b.user_id = $3)
          ${column ? `AND r.${column} IS NOT NULL` : ''}
        ORDER BY ${column ? `r.${column} ${direction}, ` : ''}b.created_at DESC, b.id DESC LIMIT $4`,
      [filters.strategyId ?? null, filters.status ?? null, ownerId ?? null, limit],
    );
    return rows.map(toBacktest);
  }

  /** A backtest's trades, by entry time, in keyset pages. */
  async trades(id: string, options: { cursor?: string; limit?: number } = {}, ownerId?: string): Promise<Page<BacktestTradeRow>> {
    await this.get(id, ownerId);
    const limit = pageSize(options.limit);
    const after = decodeCursor(options.cursor);
    const { rows } = await this.db.query<Record<string, unknown>>(
      `SELECT id::text, symbol, side, quantity::text, entry_price::text, exit_price::text, entry_time, exit_time, pnl::text, ${PNL_PERCENT}::text AS pnl_percentage,
              commission::text, strategy_signal
         FROM backtest_trades WHERE backtest_id = $1::bigint AND ($2::timestamptz IS NULL OR (entry_time, id) > ($2, $3::bigint))
        ORDER BY entry_time, id LIMIT $4`,
      [id, after?.time ?? null, after?.id ?? '0', limit + 1],
    );
    const { rows: total } = await this.db.query<{ n: string }>(`SELECT trade_count::text AS n FROM backtests WHERE id = $1::bigint`, [id]);
    return pageOf(
      rows,
      limit,
      (r) => ({ time: r.entry_time as Date, id: r.id as string }),
      (r): BacktestTradeRow => ({
        id: r.id as string,
        symbol: r.symbol as string,
        side: r.side as string,
        quantity: r.quantity as string,
        entryPrice: r.entry_price as string,
        exitPrice: r.exit_price as string | null,
        entryTime: (r.entry_time as Date).toISOString(),
        exitTime: iso(r.exit_time as Date | null),
        pnl: r.pnl as string | null,
        pnlPercent: r.pnl_percentage as string | null,
        commission: r.commission as string,
        signal: r.strategy_signal as string | null,
      }),
      Number(total[0]!.n),
    );
  }

  /** The daily equity curve of a completed backtest (as its summary used it). */
  async equity(id: string, ownerId?: string): Promise<{ backtestId: string; source: string | null; points: { time: string; equity: string }[] }> {
    const b = await this.get(id, ownerId);
    const { rows } = await this.db.query<{ curve: { time: string; equity: string }[] | null }>(`SELECT equity_curve AS curve FROM backtest_results WHERE backtest_id = $1::bigint`, [id]);
    return { backtestId: id, source: b.results?.equitySource ?? null, points: rows[0]?.curve ?? [] };
  }

  /** A completed backtest's metrics beside its strategy's live metrics over the backtest's period. */
  async compare(id: string, ownerId?: string): Promise<BacktestComparison> {
    const b = await this.get(id, ownerId);
    if (!b.results) throw new InvalidArgumentError('id', `backtest ${id} is ${b.status}: only a completed backtest has metrics to compare`);
    const live = await this.strategies.analytics(b.strategyId, { from: new Date(b.startDate), to: new Date(b.endDate) });
    const names = [...new Set([...Object.keys(b.results.metrics), ...Object.keys(live.metrics)])];
    return {
      backtestId: id,
      strategyId: b.strategyId,
      from: b.startDate,
      to: b.endDate,
      metrics: names.map((name) => {
        const backtest = b.results!.metrics[name] ?? null;
        const value = live.metrics[name] ?? null;
        return { name, backtest, live: value, difference: backtest !== null && value !== null ? new Big(value).minus(backtest).toFixed() : null };
      }),
      liveReasons: live.reasons,
    };
  }

  // What an engine reports, from its own process (the events BACKTEST_* do the same).

  async start(id: string, at?: Date): Promise<void> {
    await this.db.transaction((tx) => startRun(tx, id, at));
  }

  async progress(id: string, progress: number): Promise<void> {
    await this.db.transaction((tx) => reportProgress(tx, id, progress));
  }

  /** Stores trades in bulk (checked as the BACKTEST_TRADES event's are); `seq` numbers the part. */
  async addTrades(id: string, trades: readonly unknown[], seq: number | null = null): Promise<number> {
    if (!Array.isArray(trades) || trades.length === 0) throw new InvalidArgumentError('trades', 'must be a non-empty list');
    if (seq !== null && !(Number.isInteger(seq) && seq >= 0)) throw new InvalidArgumentError('seq', 'must be a part number, 0 or more');
    // Each trade is checked as it is streamed to the database; the first bad one rolls all back.
    const check = (trade: unknown, index: number): BacktestTrade => {
      const parsed = backtestTrade.safeParse(trade);
      if (!parsed.success) throw new InvalidArgumentError('trades', `trade ${index}: ${parsed.error.issues.map((i) => `${i.path.join('.') || 'trade'}: ${i.message}`).join('; ')}`);
      return parsed.data;
    };
    return this.db.transaction((tx) => storeTrades(tx, id, seq, trades, check));
  }

  async addEquity(id: string, points: readonly unknown[], seq: number | null = null): Promise<number> {
    const parsed = backtestEquity.shape.points.safeParse(points);
    if (!parsed.success) throw new InvalidArgumentError('points', parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).slice(0, 5).join('; '));
    if (seq !== null && !(Number.isInteger(seq) && seq >= 0)) throw new InvalidArgumentError('seq', 'must be a part number, 0 or more');
    return this.db.transaction((tx) => storeEquity(tx, id, seq, parsed.data));
  }

  /** Completes a running backtest; `claims` (the engine's summary) are checked against its trades. */
  async complete(id: string, report: { claims?: unknown; executionTimeMs?: number; dataPointsProcessed?: number } = {}): Promise<BacktestSummary> {
    let claims: BacktestClaims | undefined;
    if (report.claims !== undefined) {
      const parsed = backtestClaims.safeParse(report.claims);
      if (!parsed.success) throw new InvalidArgumentError('claims', parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '));
      claims = parsed.data;
    }
    return this.db.transaction((tx) => completeRun(tx, id, { summary: claims, executionTimeMs: report.executionTimeMs, dataPointsProcessed: report.dataPointsProcessed }));
  }

  async fail(id: string, error: string): Promise<void> {
    await this.db.transaction((tx) => failRun(tx, id, error));
  }

  async cancel(id: string): Promise<void> {
    await this.db.transaction((tx) => cancelRun(tx, id));
  }
}
