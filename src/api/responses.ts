import { z } from 'zod';
import type { Balance, BalanceChange, Order, OrderEvent, Position, StrategyTrade } from '../store/account.ts';
import type { Depth, Kline, Market, PublicTrade, Ticker24h } from '../store/market.ts';
import type { Strategy, StrategyPerformance, StrategyVersion } from '../store/strategies.ts';
import type { EquityAndDrawdown, StrategyAnalytics } from '../store/strategyAnalytics.ts';
import type { Backtest, BacktestComparison, BacktestResults, BacktestTradeRow } from '../store/backtests.ts';
import type { RiskEvent, RiskLimit } from '../store/risk.ts';
import type { Accuracy, Model } from '../store/models.ts';
import type { ExchangeOrder, ExchangeOrderTransition } from '../store/exchangeOrders.ts';
import type { BusStats, DeadLetter } from '../bus/types.ts';
import type { Health } from '../service/health.ts';
import type { DatabaseReport } from '../ops/monitor.ts';
import { ALERT_NAMES, type Alert } from '../ops/alerts.ts';
import type { Manifest } from '../ops/manifest.ts';

/**
 * The schema of every successful answer, native and Binance's. The handlers' answers are encoded
 * through them (a field the schema does not name is not sent; an answer that does not fit is a
 * 500), and the OpenAPI document is generated from them. Each native schema is checked at compile
 * time to be exactly the store's type it serializes (`exact` below), so the two cannot drift apart.
 */

const decimal = z.string().describe('A decimal, exact, as a string');
const time = z.string().describe('ISO 8601 time (UTC)');
const millis = z.number().int().describe('Epoch milliseconds');

/** Identical types, compared structurally (not merely assignable either way). */
type Exact<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
/** Compiles only when the schema's type is exactly T. */
const exact = <T>() => <S extends z.ZodType>(schema: S & (Exact<z.output<S>, T> extends true ? unknown : { mismatch: T })) => schema;

// ─── Native: market data ───────────────────────────────────────────────────────────────────────

export const market = exact<Market>()(z.object({
  symbol: z.string(),
  exchange: z.string().describe("'venue' for the venue's own markets, else the exchange of the feed"),
  baseAsset: z.string().nullable(),
  quoteAsset: z.string().nullable(),
  active: z.boolean(),
  tickSize: decimal.nullable(),
  stepSize: decimal.nullable(),
  minPrice: decimal.nullable(),
  maxPrice: decimal.nullable(),
  minQuantity: decimal.nullable(),
  maxQuantity: decimal.nullable(),
}).describe('A market'));

export const kline = exact<Kline>()(z.object({
  openTime: millis,
  closeTime: millis,
  open: decimal,
  high: decimal,
  low: decimal,
  close: decimal,
  volume: decimal,
  quoteVolume: decimal,
  tradeCount: z.number().int(),
  takerBuyVolume: decimal,
  takerBuyQuoteVolume: decimal,
}).describe('A candle'));

export const publicTrade = exact<PublicTrade>()(z.object({
  id: z.string().describe("The engine's (or exchange's) trade id"),
  sequence: z.string().describe('Increases with every stored trade of the venue'),
  publicId: z.number().int().describe("Binance's numeric trade id: the engine's id where it is an integer"),
  price: decimal,
  quantity: decimal,
  quoteQuantity: decimal,
  isBuyerMaker: z.boolean().nullable(),
  time: millis,
}).describe('A public trade'));

export const ticker = exact<Ticker24h>()(z.object({
  symbol: z.string(),
  openTime: millis,
  closeTime: millis,
  open: decimal.nullable(),
  high: decimal.nullable(),
  low: decimal.nullable(),
  last: decimal.nullable(),
  lastQuantity: decimal.nullable(),
  prevClose: decimal.nullable(),
  volume: decimal,
  quoteVolume: decimal,
  count: z.number().int(),
  change: decimal.nullable(),
  changePercent: decimal.nullable(),
  weightedAvgPrice: decimal.nullable(),
  firstTradeId: z.string().nullable(),
  lastTradeId: z.string().nullable(),
}).describe('Rolling 24-hour statistics'));

const level = z.tuple([decimal.describe('price'), decimal.describe('quantity')]);
export const depth = exact<Depth>()(z.object({
  symbol: z.string(),
  lastUpdateId: z.string().describe("The snapshot's update id; for the venue's markets, the time of the read in milliseconds"),
  time: millis,
  bids: z.array(level),
  asks: z.array(level),
}).describe('Order-book depth: price levels, best first'));

export const price = z.object({ symbol: z.string(), price: decimal.nullable(), time: millis.nullable() }).describe('The latest price');

export const markets = z.object({ markets: z.array(market) });
export const klines = z.object({ symbol: z.string(), interval: z.string(), klines: z.array(kline) });
export const trades = z.object({ symbol: z.string(), trades: z.array(publicTrade) });

// ─── Native: account ───────────────────────────────────────────────────────────────────────────

const page = <T extends z.ZodType>(item: T) =>
  z.object({
    items: z.array(item),
    nextCursor: z.string().nullable().describe('Pass as `cursor` to get the next page; null on the last page'),
    total: z.number().int().optional().describe('How many rows match, where the query counts them'),
  });

export const order = exact<Order>()(z.object({
  id: z.string(),
  userId: z.string().nullable(),
  market: z.string(),
  side: z.string(),
  type: z.string(),
  timeInForce: z.string(),
  price: decimal,
  quantity: decimal,
  filledQuantity: decimal,
  remainingQuantity: decimal,
  status: z.string(),
  createdAt: time,
  updatedAt: time,
  filledAt: time.nullable(),
  cancelledAt: time.nullable(),
}).describe('An order'));

const orderEvent = exact<OrderEvent>()(z.object({
  status: z.string(),
  filledQuantity: decimal.nullable(),
  fillQuantity: decimal.nullable(),
  price: decimal.nullable(),
  details: z.unknown(),
  time,
}));
export const orderWithHistory = order.extend({ history: z.array(orderEvent) });

export const balance = exact<Balance>()(z.object({ asset: z.string(), available: decimal, locked: decimal, total: decimal, updatedAt: time }));

export const balanceChange = exact<BalanceChange>()(z.object({
  id: z.string(),
  asset: z.string(),
  changeType: z.string(),
  amount: decimal,
  before: decimal,
  after: decimal,
  lockedChange: decimal.nullable(),
  lockedBefore: decimal.nullable(),
  lockedAfter: decimal.nullable(),
  referenceId: z.string().nullable(),
  description: z.string().nullable(),
  time,
}));

export const position = exact<Position>()(z.object({
  id: z.string(),
  exchange: z.string(),
  symbol: z.string(),
  side: z.string(),
  quantity: decimal,
  entryPrice: decimal,
  markPrice: decimal.nullable(),
  unrealizedPnl: decimal,
  realizedPnl: decimal,
  status: z.string(),
  strategyId: z.string().nullable(),
  openedAt: time,
  closedAt: time.nullable(),
}));

export const strategyTrade = exact<StrategyTrade>()(z.object({
  id: z.string(),
  strategyId: z.string(),
  symbol: z.string(),
  exchange: z.string().nullable(),
  side: z.string(),
  type: z.string(),
  entryPrice: decimal,
  exitPrice: decimal.nullable(),
  quantity: decimal,
  pnl: decimal.nullable(),
  pnlPercent: decimal.nullable(),
  fees: decimal,
  status: z.string(),
  entryTime: time,
  exitTime: time.nullable(),
  exitReason: z.string().nullable(),
}).describe('A round trip of a strategy'));

export const strategy = exact<Strategy>()(z.object({
  id: z.string(),
  userId: z.string().nullable(),
  name: z.string(),
  version: z.string(),
  type: z.string().nullable(),
  timeframe: z.string().nullable(),
  symbols: z.array(z.string()),
  config: z.unknown(),
  isActive: z.boolean(),
  executionMode: z.string(),
  totalTrades: z.number().int(),
  winningTrades: z.number().int(),
  totalPnl: decimal,
  initialCapital: decimal.nullable().describe('Starting capital; the equity curve without snapshots and max drawdown are measured from it'),
  maxDrawdown: decimal.nullable().describe("Realized equity's deepest fall from its running peak, a fraction ≤ 0 kept on every close; null without an initial capital"),
  createdAt: time,
}));

export const strategyPerformance = exact<StrategyPerformance>()(z.object({
  strategyId: z.string(),
  totalTrades: z.number().int(),
  winningTrades: z.number().int(),
  totalPnl: decimal.nullable(),
  avgPnl: decimal.nullable(),
  pnlStddev: decimal.nullable(),
  worstTrade: decimal.nullable(),
  bestTrade: decimal.nullable(),
  avgDurationMinutes: decimal.nullable(),
}));

export const orderPage = page(order);
export const orders = z.object({ orders: z.array(order) });
export const balances = z.object({ balances: z.array(balance) });
export const balanceChangePage = page(balanceChange);
export const positions = z.object({ positions: z.array(position) });
export const strategyTradePage = page(strategyTrade);
export const strategies = z.object({ strategies: z.array(strategy) });
export const strategyMetrics = exact<StrategyAnalytics>()(z.object({
  strategyId: z.string(),
  from: time.nullable(),
  to: time.nullable(),
  periodsPerYear: z.number().int(),
  riskFree: z.number(),
  benchmark: z.string().nullable(),
  equitySource: z.enum(['snapshots', 'trades', 'trades_then_snapshots']).nullable().describe("snapshots: each UTC day's closing portfolio snapshot; trades: initial capital plus realized P&L by exit day; trades_then_snapshots: the latter before the first snapshot; null: no curve"),
  equityDays: z.number().int(),
  metrics: z.record(z.string(), z.string().nullable()).describe('sharpeRatio, sortinoRatio, calmarRatio, maxDrawdown, maxDrawdownDuration, var95, cvar95, beta, alpha, marketCorrelation, winRate, profitFactor, totalReturn, annualReturn, volatility, …'),
  reasons: z.record(z.string(), z.string()).describe('Why a metric is null'),
}));
export const strategyEquity = exact<EquityAndDrawdown>()(z.object({
  strategyId: z.string(),
  source: z.enum(['snapshots', 'trades', 'trades_then_snapshots']).nullable(),
  reason: z.string().nullable().describe('Why there is no curve'),
  points: z.array(z.object({ time: time.describe("The UTC day's start"), equity: decimal.describe("The day's closing equity"), drawdown: decimal.describe('Fall from the running peak, a fraction ≤ 0') })),
}));
export const strategyVersions = z.object({
  versions: z.array(exact<StrategyVersion>()(z.object({
    strategyId: z.string(),
    version: z.number().int(),
    configuration: z.object({ name: z.string(), type: z.string().nullable(), timeframe: z.string().nullable(), symbols: z.array(z.string()), config: z.record(z.string(), z.unknown()) }),
    createdBy: z.string().nullable(),
    createdAt: time,
  }))),
});

// ─── Native: administration and operations ─────────────────────────────────────────────────────

export const busStats = exact<BusStats>()(z.object({
  shards: z.number().int(),
  lag: z.number().int(),
  entryStreamLength: z.number().int(),
  listLength: z.number().int(),
  unroutable: z.number().int(),
  deadLetters: z.number().int(),
  lastDeadLetterAt: z.number().int().nullable().describe('When the newest dead letter was written (epoch ms)'),
  streamMemoryBytes: z.number().int().nullable(),
  serverMemoryBytes: z.number().int().nullable(),
  workers: z.array(z.string()),
  perShard: z.array(z.object({ shard: z.number().int(), length: z.number().int(), owner: z.string().nullable(), offset: z.string().nullable() })),
}));

/** A dead letter as listed, with its time as ISO text. */
export type DeadLetterListed = Omit<DeadLetter, 'failedAt'> & { failedAt: string };
const deadLetter = z.object({
  id: z.string().describe('"<shard>:<id in the shard\'s dead-letter stream>"'),
  shard: z.number().int(),
  source: z.string(),
  stream: z.string(),
  reason: z.string(),
  attempts: z.number().int(),
  failedAt: time,
  fields: z.array(z.object({ name: z.string(), bytes: z.number().int(), preview: z.string() })),
  lost: z.boolean(),
});
exact<Omit<DeadLetter, 'failedAt'>>()(deadLetter.omit({ failedAt: true }));
export const deadLetters = z.object({ deadLetters: z.array(deadLetter), next: z.string().nullable().describe('Pass as `after` for the next page') });

export const health = exact<Health>()(z.object({
  status: z.enum(['healthy', 'degraded']),
  causes: z.array(z.string()),
  database: z.object({ ok: z.boolean(), backend: z.string() }),
  bus: z.object({ ok: z.boolean(), kind: z.string(), shards: z.number().int(), workers: z.number().int().nullable(), lag: z.number().int().nullable() }),
  ingest: z.object({
    running: z.boolean(),
    eventsPerSecond: z.number(),
    eventsApplied: z.number().int(),
    deadLettered: z.number().int(),
    waiting: z.number().int(),
    lastCommitAt: time.nullable(),
  }).nullable(),
  api: z.object({ cache: z.enum(['redis', 'bypassed']), rateLimits: z.enum(['redis', 'in process']) }).nullable(),
  failingJobs: z.array(z.object({ job: z.string(), failures: z.number().int(), lastRunAt: time.nullable() })),
  detail: z.record(z.string(), z.string()).optional().describe('The errors behind the causes: for an API key with the admin scope only'),
}));

const count = z.number().int();
const bytes = z.number().int().describe('Bytes');
export const databaseReport = exact<DatabaseReport>()(z.object({
  at: time,
  backend: z.enum(['postgres', 'embedded']),
  serverVersion: z.string(),
  timescaledb: z.string().nullable(),
  database: z.object({ name: z.string(), sizeBytes: bytes }),
  disk: z.object({ path: z.string(), totalBytes: bytes, freeBytes: bytes, usedPercent: z.number() }).nullable().describe("The data's filesystem, where this process can read it"),
  tables: z.array(z.object({
    name: z.string(),
    kind: z.enum(['table', 'hypertable']),
    estimated: z.boolean().describe("Sizes from the catalog's page counts: another session held the table exclusively"),
    rowsEstimate: count,
    totalBytes: bytes,
    dataBytes: bytes,
    indexBytes: bytes,
    toastBytes: bytes,
    chunks: count.nullable(),
    compressedChunks: count.nullable(),
    beforeCompressionBytes: bytes.nullable(),
    afterCompressionBytes: bytes.nullable(),
    compressionRatio: z.number().nullable(),
  })).describe('Largest first'),
  connections: z.object({
    total: count,
    active: count,
    idle: count,
    idleInTransaction: count,
    max: count,
    pool: z.object({ size: count, idle: count, waiting: count, max: count }).nullable(),
  }),
  longRunning: z.array(z.object({ pid: count, state: z.string(), querySeconds: z.number().nullable(), transactionSeconds: z.number().nullable(), query: z.string() })),
  lockWaits: z.array(z.object({ pid: count, blockedBy: z.array(count), waitingSeconds: z.number(), query: z.string() })),
  statements: z.discriminatedUnion('available', [
    z.object({ available: z.literal(true), slowest: z.array(z.object({ query: z.string(), calls: count, meanMs: z.number(), totalMs: z.number(), rows: count })), mostFrequent: z.array(z.object({ query: z.string(), calls: count, meanMs: z.number(), totalMs: z.number(), rows: count })) }),
    z.object({ available: z.literal(false), hint: z.string() }),
  ]),
  replication: z.array(z.object({ name: z.string(), clientAddress: z.string().nullable(), state: z.string(), replayLagSeconds: z.number().nullable(), replayLagBytes: z.number().nullable() })),
  jobs: z.array(z.object({ job: z.string(), lastRunAt: time.nullable(), lastResult: z.string().nullable(), failures: count, failing: z.boolean() })),
  ingest: z.object({ lag: count, pending: count, deadLetters: count, lastDeadLetterAt: time.nullable(), lastCommitAt: time.nullable() }).nullable(),
}));
const alert = exact<Alert>()(z.object({ name: z.enum(ALERT_NAMES), message: z.string(), value: z.number(), threshold: z.number() }));
export const checkup = z.object({ report: databaseReport, alerts: z.array(alert) });

export const backup = z.object({
  archive: z.string().describe('Where the archive was written, on the service\'s machine'),
  manifest: exact<Manifest>()(z.object({
    format: z.literal('tradestore-backup/1'),
    kind: z.enum(['pg_dump', 'embedded', 'timeseries']),
    at: time,
    since: time.optional(),
    archive: z.string(),
    archiveBytes: bytes,
    schemaVersion: count,
    serverVersion: z.string(),
    timescaledb: z.string().nullable(),
    tables: z.array(z.object({ name: z.string(), rows: count, checksum: z.string() })),
  })),
});

/** A body that is not JSON: its media type and what it holds. */
export const raw = (mediaType: string, description: string) => ({ description, content: { [mediaType]: { schema: z.string().describe(description) } } });

const backtestResults = exact<BacktestResults>()(z.object({
  equitySource: z.string().nullable().describe('engine: the daily closes of the curve the engine sent; trades: initial capital plus realized P&L by exit day'),
  finalCapital: decimal.nullable(),
  metrics: z.record(z.string(), z.string().nullable()).describe("The summary's metrics by docs/ANALYTICS.md's names, as decimal strings"),
  reasons: z.record(z.string(), z.string()).describe('Why a metric is null'),
  executionTimeMs: z.number().int().nullable(),
  dataPointsProcessed: z.number().int().nullable(),
}));
export const backtest = exact<Backtest>()(z.object({
  id: z.string(),
  strategyId: z.string(),
  userId: z.string().nullable(),
  name: z.string(),
  description: z.string().nullable(),
  symbols: z.array(z.string()),
  timeframes: z.array(z.string()),
  startDate: time,
  endDate: time,
  initialCapital: decimal,
  commission: decimal,
  slippage: decimal,
  parameters: z.unknown(),
  status: z.enum(['pending', 'running', 'completed', 'failed', 'cancelled']),
  progress: z.number().int().describe('0 to 100, as the engine reports it'),
  errorMessage: z.string().nullable(),
  createdAt: time,
  startedAt: time.nullable(),
  completedAt: time.nullable(),
  tradesStored: z.number().int(),
  results: backtestResults.nullable().describe('The summary tradestore computed, once completed'),
}));
export const backtests = z.object({ backtests: z.array(backtest) });
export const backtestTradePage = page(exact<BacktestTradeRow>()(z.object({
  id: z.string(),
  symbol: z.string(),
  side: z.string(),
  quantity: decimal,
  entryPrice: decimal,
  exitPrice: decimal.nullable(),
  entryTime: time,
  exitTime: time.nullable(),
  pnl: decimal.nullable(),
  pnlPercent: decimal.nullable(),
  commission: decimal,
  signal: z.string().nullable(),
})));
export const backtestEquity = z.object({
  backtestId: z.string(),
  source: z.string().nullable(),
  points: z.array(z.object({ time: time.describe("The UTC day's start"), equity: decimal.describe("The day's closing equity") })),
});
export const backtestComparison = exact<BacktestComparison>()(z.object({
  backtestId: z.string(),
  strategyId: z.string(),
  from: time,
  to: time,
  metrics: z.array(z.object({ name: z.string(), backtest: z.string().nullable(), live: z.string().nullable(), difference: z.string().nullable().describe('live − backtest') })),
  liveReasons: z.record(z.string(), z.string()),
}));

export const riskLimit = exact<RiskLimit>()(z.object({
  id: z.string(),
  userId: z.string(),
  limitType: z.string().describe('max_position_value, max_daily_loss, max_drawdown, max_orders_per_hour, min_balance (measured by tradestore), or any other type (kept for engines)'),
  symbol: z.string().nullable(),
  strategyId: z.string().nullable(),
  limitValue: decimal,
  currentValue: decimal.describe('As last evaluated'),
  warningRatio: decimal,
  action: z.string().describe('What the engine is to do on a breach, as recorded in the event'),
  level: z.enum(['ok', 'warning', 'critical']),
  source: z.string().describe("limit: set through tradestore; account: the user's own (users.max_position_size, max_daily_loss)"),
  isActive: z.boolean(),
  measured: z.boolean(),
  evaluatedAt: time.nullable(),
  updatedAt: time,
}));
export const riskLimits = z.object({ limits: z.array(riskLimit) });
export const riskEvent = exact<RiskEvent>()(z.object({
  id: z.string(),
  userId: z.string().nullable(),
  eventType: z.string(),
  severity: z.string(),
  symbol: z.string().nullable(),
  strategyId: z.string().nullable(),
  limitId: z.string().nullable(),
  description: z.string().nullable(),
  riskValue: decimal.nullable(),
  limitValue: decimal.nullable(),
  actionTaken: z.string().nullable(),
  triggeredAt: time,
  acknowledgedAt: time.nullable(),
  acknowledgedBy: z.string().nullable(),
  resolvedAt: time.nullable(),
  resolvedBy: z.string().nullable(),
}));
export const riskEvents = z.object({ events: z.array(riskEvent) });

export const model = exact<Model>()(z.object({
  id: z.string(),
  name: z.string(),
  modelType: z.string(),
  version: z.string(),
  symbol: z.string(),
  timeframe: z.string(),
  features: z.unknown(),
  hyperparameters: z.unknown(),
  trainingDataStart: time.nullable(),
  trainingDataEnd: time.nullable(),
  validationScore: decimal.nullable(),
  testScore: decimal.nullable(),
  modelPath: z.string().nullable(),
  isActive: z.boolean(),
  createdAt: time,
}));
export const models = z.object({ models: z.array(model) });
export const modelAccuracy = exact<Accuracy>()(z.object({
  modelId: z.string(),
  from: time.nullable(),
  to: time.nullable(),
  predictions: z.number().int().describe('Predictions made in the window that have their actual value'),
  pending: z.number().int().describe('Made in the window and still without one'),
  mae: decimal.nullable(),
  rmse: decimal.nullable(),
  mape: decimal.nullable().describe('In percent, over the predictions whose actual value is not 0'),
  directionalAccuracy: decimal.nullable().describe('The share of predictions whose direction was right, 0 to 1'),
  calibration: z.array(z.object({ lower: decimal, upper: decimal, predictions: z.number().int(), meanConfidence: decimal.nullable(), directionalAccuracy: decimal.nullable() })),
}));

export const exchangeOrder = exact<ExchangeOrder>()(z.object({
  id: z.string().describe("The strategy's own id of the order"),
  userId: z.string(),
  strategyId: z.string().nullable(),
  exchange: z.string(),
  symbol: z.string(),
  side: z.string(),
  orderType: z.string(),
  timeInForce: z.string(),
  quantity: decimal,
  price: decimal.nullable(),
  stopPrice: decimal.nullable(),
  filledQuantity: decimal,
  avgFillPrice: decimal.nullable(),
  fees: decimal,
  status: z.string(),
  reduceOnly: z.boolean(),
  clientOrderId: z.string().nullable(),
  externalOrderId: z.string().nullable().describe("The exchange's or broker's id"),
  errorMessage: z.string().nullable(),
  retryCount: z.number().int(),
  createdAt: time,
  updatedAt: time,
}));
export const exchangeOrderPage = page(exchangeOrder);
export const exchangeOrderWithHistory = exchangeOrder.extend({
  history: z.array(exact<ExchangeOrderTransition>()(z.object({
    status: z.string(), filledQuantity: decimal.nullable(), fillQuantity: decimal.nullable(), price: decimal.nullable(), fees: decimal.nullable(), details: z.unknown(), at: time,
  }))),
});

/** One row of the audit trail (docs/SECURITY.md). */
export const auditEntries = z.object({
  entries: z.array(z.object({
    id: z.string(), at: z.string(), actor: z.string().nullable(), userId: z.string().nullable(), action: z.string(), resourceType: z.string().nullable(),
    resourceId: z.string().nullable(), oldValues: z.unknown(), newValues: z.unknown(), ip: z.string().nullable(), userAgent: z.string().nullable(),
  })),
});
