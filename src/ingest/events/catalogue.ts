import { z } from 'zod';
import { balanceUpdate, orderUpdate, tradeAdded } from './venue.ts';
import {
  apiUsage, candle, fill, indicator, marketTrade, orderBook, performanceMetric, portfolioSnapshot, positionUpdate, prediction,
  riskEvent, strategyPerformance, strategyTradeClosed, strategyTradeOpened, systemLog,
} from './feeds.ts';
import { exchangeOrder } from './exchangeOrders.ts';
import { backtestCompleted, backtestEquity, backtestFailed, backtestProgress, backtestStarted, backtestTrades } from './backtests.ts';

/**
 * Every message type the ingest service accepts: its schema (the code validates against it,
 * docs/EVENTS.md is written from it), what it persists, and its ordering key. Events with the
 * same key are applied in the order they were emitted, also with several workers.
 */
export interface EventSpec<S extends z.ZodType = z.ZodType> {
  schema: S;
  summary: string;
  writes: string;
  /**
   * The ordering key: a prefix and the data fields it is made of. Events with equal keys go to
   * the same shard and are applied in emission order; null means no ordering constraint.
   * The key is `<prefix>:<field>:<field>…` (see bus/routing.ts; docs/EVENTS.md documents it
   * for engines that pick the shard themselves).
   */
  ordering: readonly [prefix: string, ...fields: (keyof z.output<S> & string)[]] | null;
  /**
   * The times at which what the event describes happened. None may be ahead of the server's
   * clock by more than the allowed skew: one engine with a wrong clock must not set the last
   * price for decades. (A prediction's target time is in the future by design and not listed.)
   */
  occurredAt: (data: z.output<S>) => (Date | undefined)[];
  example: Record<string, unknown>;
}

function spec<S extends z.ZodType>(s: EventSpec<S>): EventSpec<S> {
  return s;
}

export const CATALOGUE = {
  TRADE_ADDED: spec({
    schema: tradeAdded,
    summary: 'A trade on one of the venue\'s own markets (seed 000). Inserted once; feeds the candles.',
    writes: 'trades, ohlcv_1m … ohlcv_1d',
    ordering: ['market', 'market'],
    occurredAt: (d) => [d.timestamp],
    example: { market: 'TATA_INR', id: '1042', isBuyerMaker: true, price: '134.5', quantity: '2', quoteQuantity: '269', timestamp: 1763700000123 },
  }),
  ORDER_UPDATE: spec({
    schema: orderUpdate,
    summary:
      'A venue order: created when market, price, quantity and side are present and it does not exist yet; ' +
      'executedQty is added to filled_quantity; status cancelled or rejected ends it.',
    writes: 'orders, order_history',
    ordering: ['order', 'orderId'],
    occurredAt: (d) => [d.timestamp],
    example: { orderId: 'o-77', executedQty: 0.5, market: 'TATA_INR', price: '134.5', quantity: '3', side: 'buy' },
  }),
  BALANCE_UPDATE: spec({
    schema: balanceUpdate,
    summary: 'A change of a user\'s available and locked balance of one asset; refused if either would go negative. A fee change (changeType fee) may leave availableChange out and name its venue trade in referenceId: it is charged the fee that trade was charged (docs/FEES.md).',
    writes: 'balances, balance_history',
    ordering: ['user', 'userId'],
    occurredAt: (d) => [d.timestamp],
    example: { userId: 'u1', asset: 'INR', availableChange: '-269', lockedChange: '269', referenceId: 'o-77' },
  }),
  MARKET_TRADE: spec({
    schema: marketTrade,
    summary: 'A trade or tick from an exchange feed (seeds 001, 003; seed 004 ticks without tradeId). Stored once; builds the instrument\'s candles from 1s to 1d (docs/CANDLES.md).',
    writes: 'market_trades, market_data',
    ordering: ['instrument', 'exchange', 'symbol'],
    occurredAt: (d) => [d.timestamp],
    example: { exchange: 'binance', symbol: 'BTCUSDT', tradeId: 3381475012, price: '67012.55', quantity: '0.0031', isBuyerMaker: false, timestamp: 1763700000123 },
  }),
  CANDLE: spec({
    schema: candle,
    summary: 'A candle from an exchange, any timeframe from 1s to 1M (seeds 001-004). A later version of the same candle replaces it, and it replaces the candle built from ticks for its bucket (docs/CANDLES.md).',
    writes: 'market_data',
    ordering: ['instrument', 'exchange', 'symbol'],
    occurredAt: (d) => [d.openTime],
    example: { exchange: 'NSE', symbol: 'NIFTY', timeframe: '5s', openTime: 1763700000000, open: '24011.05', high: '24013.8', low: '24009.9', close: '24012.35', volume: '1200', tradesCount: 41 },
  }),
  ORDER_BOOK: spec({
    schema: orderBook,
    summary: 'An order-book snapshot; levels as [price, quantity] or {price, amount} (seeds 001, 003, 004).',
    writes: 'order_book_snapshots',
    ordering: ['instrument', 'exchange', 'symbol'],
    occurredAt: (d) => [d.timestamp],
    example: { exchange: 'binance', symbol: 'BTCUSDT', timestamp: 1763700000123, lastUpdateId: 1027024, bids: [['67012.5', '1.2']], asks: [['67013', '0.4']] },
  }),
  FILL: spec({
    schema: fill,
    summary: 'One of our own fills at an exchange, with commission and realized P&L (seed 003). Stored once.',
    writes: 'trades_executed',
    ordering: ['instrument', 'exchange', 'symbol'],
    occurredAt: (d) => [d.timestamp],
    example: { exchange: 'binance', symbol: 'BTCUSDT', orderId: '28457', tradeId: '3381475012', side: 'BUY', price: '67012.55', quantity: '0.01', commission: '0.0000075', commissionAsset: 'BNB', timestamp: 1763700000123 },
  }),
  POSITION_UPDATE: spec({
    schema: positionUpdate,
    summary:
      'The current state of a position (seeds 001, 003, 004): updates the open position of the same owner, instrument and side, ' +
      'or opens one; status closed (or quantity 0) closes it. A negative quantity means short (seed 004).',
    writes: 'positions',
    ordering: ['position', 'exchange', 'symbol', 'userId', 'accountId', 'strategyId'],
    occurredAt: (d) => [d.timestamp],
    example: { exchange: 'NSE', symbol: 'NIFTY', strategyId: 'ema_crossover', quantity: '-50', entryPrice: '24010.5', markPrice: '23990', unrealizedPnl: '1025' },
  }),
  STRATEGY_TRADE_OPENED: spec({
    schema: strategyTradeOpened,
    summary: "A strategy entered a round trip (seed 002's trades).",
    writes: 'strategy_trades',
    ordering: ['strategy_trade', 'id'],
    occurredAt: (d) => [d.entryTime],
    example: { id: 'st-1', strategyId: 'ema_crossover', symbol: 'NIFTY', side: 'buy', entryPrice: '24010.5', quantity: '50', entryTime: 1763700000123, stopLossPrice: '23900' },
  }),
  STRATEGY_TRADE_CLOSED: spec({
    schema: strategyTradeClosed,
    summary: 'A round trip ended: exit price and time; P&L is computed exactly when not given. Updates the strategy\'s counters.',
    writes: 'strategy_trades, strategies',
    ordering: ['strategy_trade', 'id'],
    occurredAt: (d) => [d.exitTime],
    example: { id: 'st-1', exitPrice: '24100', exitTime: 1763703600000, exitReason: 'TAKE_PROFIT', fees: '40' },
  }),
  PORTFOLIO_SNAPSHOT: spec({
    schema: portfolioSnapshot,
    summary: "A point-in-time portfolio state (seed 002's portfolio_snapshots).",
    writes: 'portfolio_snapshots',
    ordering: ['strategy', 'strategyId'],
    occurredAt: (d) => [d.timestamp],
    example: { strategyId: 'ema_crossover', timestamp: 1763700000123, totalValue: '1002500', cashBalance: '802500', positions: [{ symbol: 'NIFTY', quantity: 50 }] },
  }),
  PERFORMANCE_METRIC: spec({
    schema: performanceMetric,
    summary: "A named metric of a strategy at a time (seed 001's performance_metrics); resending replaces the value.",
    writes: 'performance_metrics',
    ordering: ['strategy', 'strategyId'],
    occurredAt: (d) => [d.timestamp],
    example: { strategyId: 'ema_crossover', name: 'sharpe_ratio', value: '1.84', timestamp: 1763700000123 },
  }),
  STRATEGY_PERFORMANCE: spec({
    schema: strategyPerformance,
    summary: "A strategy's performance at a time (seed 003's strategy_performance).",
    writes: 'strategy_performance',
    ordering: ['strategy', 'strategyId'],
    occurredAt: (d) => [d.timestamp],
    example: { strategyId: 'ema_crossover', timestamp: 1763700000123, totalReturn: '0.125', sharpeRatio: '1.84', totalTrades: 40, winningTrades: 24 },
  }),
  EXCHANGE_ORDER: spec({
    schema: exchangeOrder,
    summary:
      'An order a strategy sent to an exchange or broker (seeds 001-004): placed, acknowledged, partially_filled, filled, cancelled, rejected, ' +
      'expired, applied as a state machine (docs/ORDERS.md); every transition goes to order_history, fills with a tradeId to the own fills. ' +
      'An unknown order or an impossible transition is dead-lettered.',
    writes: 'exchange_orders, order_history, trades_executed',
    ordering: ['exchange_order', 'orderId'],
    occurredAt: (d) => [d.timestamp],
    example: { event: 'partially_filled', orderId: 'ema-42', userId: 'u1', externalOrderId: '230918000123', fillQuantity: '25', fillPrice: '24010.5', fee: '12', tradeId: 't-9', timestamp: 1763700000123 },
  }),
  BACKTEST_STARTED: spec({
    schema: backtestStarted,
    summary: 'A backtest created through the library, the CLI or /v1 starts running (PENDING → RUNNING); docs/BACKTESTS.md.',
    writes: 'backtests',
    ordering: ['backtest', 'backtestId'],
    occurredAt: (d) => [d.timestamp],
    example: { backtestId: 42, timestamp: 1763700000123 },
  }),
  BACKTEST_PROGRESS: spec({
    schema: backtestProgress,
    summary: "A running backtest's progress, 0 to 100; it never goes back.",
    writes: 'backtests',
    ordering: ['backtest', 'backtestId'],
    occurredAt: () => [],
    example: { backtestId: 42, progress: 35 },
  }),
  BACKTEST_TRADES: spec({
    schema: backtestTrades,
    summary:
      "Part `seq` (from 0) of a running backtest's trades, up to 10,000 (and the payload limit); stored in bulk. A closed trade's P&L is " +
      'computed exactly when not given. A part number sent twice is refused.',
    writes: 'backtest_trades, backtest_chunks',
    ordering: ['backtest', 'backtestId'],
    occurredAt: (d) => d.trades.flatMap((t) => [t.entryTime, t.exitTime]),
    example: { backtestId: 42, seq: 0, trades: [{ symbol: 'NIFTY', side: 'long', quantity: '50', entryPrice: '24010.5', exitPrice: '24100', entryTime: 1763700000000, exitTime: 1763703600000, commission: '40' }] },
  }),
  BACKTEST_EQUITY: spec({
    schema: backtestEquity,
    summary: "Part `seq` of a running backtest's equity curve (any frequency; the summary reads each UTC day's last value).",
    writes: 'backtest_equity, backtest_chunks',
    ordering: ['backtest', 'backtestId'],
    occurredAt: (d) => d.points.map((p) => p.time),
    example: { backtestId: 42, seq: 0, points: [{ time: 1763700000000, equity: '1000000' }, { time: 1763786400000, equity: '1004480' }] },
  }),
  BACKTEST_COMPLETED: spec({
    schema: backtestCompleted,
    summary:
      'A running backtest finished: tradestore computes its summary from the stored trades and curve (docs/ANALYTICS.md). An engine summary ' +
      'whose values disagree with the trades is refused (dead-lettered with each disagreement) and the backtest stays RUNNING.',
    writes: 'backtests, backtest_results',
    ordering: ['backtest', 'backtestId'],
    occurredAt: (d) => [d.timestamp],
    example: { backtestId: 42, executionTimeMs: 8200, summary: { totalTrades: 1, winningTrades: 1, grossProfit: '4435' } },
  }),
  BACKTEST_FAILED: spec({
    schema: backtestFailed,
    summary: 'A backtest stopped with an error (PENDING or RUNNING → FAILED).',
    writes: 'backtests',
    ordering: ['backtest', 'backtestId'],
    occurredAt: (d) => [d.timestamp],
    example: { backtestId: 42, error: 'no data for NIFTY before 2020-01-01' },
  }),
  PREDICTION: spec({
    schema: prediction,
    summary: "A model's prediction (seed 003); sending it again with actualValue fills in the actual value and the error.",
    writes: 'predictions',
    ordering: ['model', 'modelId'],
    occurredAt: (d) => [d.timestamp],
    example: { modelId: 1, symbol: 'BTCUSDT', timestamp: 1763700000000, predictionTimestamp: 1763703600000, predictionType: 'price', predictedValue: '67500', confidence: '0.71' },
  }),
  INDICATOR: spec({
    schema: indicator,
    summary: 'A technical indicator value (seed 003); resending replaces it.',
    writes: 'technical_indicators',
    ordering: ['indicator', 'symbol', 'exchange'],
    occurredAt: (d) => [d.timestamp],
    example: { exchange: 'binance', symbol: 'BTCUSDT', timeframe: '1h', timestamp: 1763700000000, name: 'rsi_14', value: '61.27' },
  }),
  RISK_EVENT: spec({
    schema: riskEvent,
    summary: 'A risk event such as a limit breach (seeds 001, 003).',
    writes: 'risk_events',
    ordering: null,
    occurredAt: (d) => [d.timestamp],
    example: { userId: 'u1', eventType: 'limit_breach', severity: 'warning', symbol: 'NIFTY', riskValue: '120000', limitValue: '100000', actionTaken: 'orders_blocked' },
  }),
  SYSTEM_LOG: spec({
    schema: systemLog,
    summary: 'An application log line (seeds 002, 003).',
    writes: 'system_logs',
    ordering: null,
    occurredAt: (d) => [d.timestamp],
    example: { level: 'ERROR', category: 'ORDER', message: 'broker rejected order', orderId: 'o-77', details: { code: 'MARGIN' } },
  }),
  API_USAGE: spec({
    schema: apiUsage,
    summary: 'One API request (seed 003).',
    writes: 'api_usage',
    ordering: null,
    occurredAt: (d) => [d.timestamp],
    example: { userId: 'u1', endpoint: '/api/v3/klines', method: 'GET', statusCode: 200, responseTime: 12 },
  }),
} as const;

/** The ordering key of a decoded event's data (the same layout, from the validated values). */
export function orderingKey(ordering: readonly string[] | null, data: Record<string, unknown>): string | null {
  if (!ordering) return null;
  const [prefix, ...fields] = ordering;
  const texts = fields.map((f) => {
    const v = data[f];
    return v === undefined || v === null ? '' : String(v);
  });
  return texts[0] === '' ? null : `${prefix}:${texts.join(':')}`;
}

export type EventType = keyof typeof CATALOGUE;
export const EVENT_TYPES = Object.keys(CATALOGUE) as EventType[];

/** The newest message schema version this code understands. */
export const SCHEMA_VERSION = 1;

export type EventOf<T extends EventType> = {
  type: T;
  version: number;
  /** The producer's own id of this event, when it sends one; used to drop repeats. */
  eventId: string | null;
  data: z.output<(typeof CATALOGUE)[T]['schema']>;
  key: string | null;
};

export type IngestEvent = { [T in EventType]: EventOf<T> }[EventType];
