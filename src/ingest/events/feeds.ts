import Big from 'big.js';
import { isLosslessNumber } from 'lossless-json';
import { z } from 'zod';
import { bool, count, decimal, externalId, jsonArray, jsonObject, side, symbol, timestamp } from './fields.ts';

/**
 * What the other seeds persist through a feed: exchange market data (001, 002, 003, 004), own
 * fills and positions (001, 003, 004), strategy records (001, 002, 003), ML output (003),
 * risk events, logs and API usage. Every instrument is named by (exchange, symbol).
 */

const exchange = z.string().regex(/^[A-Za-z0-9_.-]{1,50}$/, { error: 'expected an exchange name like NSE or binance' });
const instrument = { exchange, symbol: symbol(50) };
const lower = <T extends readonly [string, ...string[]]>(values: T) =>
  z
    .string()
    .transform((v) => v.toLowerCase().replace(/-/g, '_'))
    .pipe(z.enum(values, { error: (i) => `expected one of ${values.join(', ')}, got ${JSON.stringify(i.input)}` }));

export const TIMEFRAMES = ['1s', '5s', '15s', '30s', '1m', '3m', '5m', '15m', '30m', '1h', '2h', '4h', '6h', '8h', '12h', '1d', '3d', '1w', '1M'] as const;
export type Timeframe = (typeof TIMEFRAMES)[number];
/** market_data.data_source of the candles built from MARKET_TRADE ticks (docs/CANDLES.md); no producer may claim it. */
export const TICKS_SOURCE = 'ticks';
/** The length of each timeframe's candle as a PostgreSQL interval (a month is a calendar month). */
export const TIMEFRAME_LENGTHS: Record<Timeframe, string> = {
  '1s': '1 second', '5s': '5 seconds', '15s': '15 seconds', '30s': '30 seconds', '1m': '1 minute', '3m': '3 minutes', '5m': '5 minutes', '15m': '15 minutes',
  '30m': '30 minutes', '1h': '1 hour', '2h': '2 hours', '4h': '4 hours', '6h': '6 hours', '8h': '8 hours', '12h': '12 hours', '1d': '1 day', '3d': '3 days',
  '1w': '7 days', '1M': '1 month',
};
const timeframe = z.enum(TIMEFRAMES, { error: (i) => `expected a timeframe such as 1s, 1m, 1h, 1d, got ${JSON.stringify(i.input)}` });

export const marketTrade = z
  .object({
    ...instrument,
    /** Absent for a tick without an exchange trade id (seed 004's tick_data). */
    tradeId: externalId(100).optional(),
    price: decimal('positive'),
    quantity: decimal('nonNegative'),
    isBuyerMaker: bool.optional(),
    /** The taker's side (seed 001); isBuyerMaker is derived from it when absent. */
    side: side.optional(),
    timestamp,
  })
  .transform((d) => ({ ...d, isBuyerMaker: d.isBuyerMaker ?? (d.side === undefined ? undefined : d.side === 'sell') }));

export const candle = z
  .object({
    ...instrument,
    timeframe,
    openTime: timestamp,
    open: decimal('positive'),
    high: decimal('positive'),
    low: decimal('positive'),
    close: decimal('positive'),
    volume: decimal('nonNegative'),
    quoteVolume: decimal('nonNegative').optional(),
    tradesCount: count.optional(),
    takerBuyVolume: decimal('nonNegative').optional(),
    takerBuyQuoteVolume: decimal('nonNegative').optional(),
    vwap: decimal('positive').optional(),
    dataSource: z
      .string()
      .max(20)
      .refine((v) => v.toLowerCase() !== TICKS_SOURCE, { error: `dataSource "${TICKS_SOURCE}" is reserved for the candles tradestore builds from ticks` })
      .optional(),
    qualityScore: count.pipe(z.number().max(100, { error: 'qualityScore is 0-100' })).optional(),
  })
  .superRefine((c, ctx) => {
    const [o, h, l, cl] = [c.open, c.high, c.low, c.close].map((v) => new Big(v));
    if (h!.lt(l!) || h!.lt(o!) || h!.lt(cl!) || l!.gt(o!) || l!.gt(cl!)) {
      ctx.addIssue({ code: 'custom', message: `high ${c.high} and low ${c.low} must bound open ${c.open} and close ${c.close}` });
    }
  });

/** One book level: [price, quantity] (Binance, seed 003) or {price, amount|quantity} (seed 001). */
const level = z.preprocess(
  (v) => {
    if (Array.isArray(v)) return { price: v[0], quantity: v[1] };
    if (v && typeof v === 'object' && !isLosslessNumber(v)) {
      const o = v as Record<string, unknown>;
      return { price: o.price, quantity: o.quantity ?? o.amount ?? o.qty };
    }
    return v;
  },
  z.object({ price: decimal('positive'), quantity: decimal('nonNegative') }, { error: 'expected [price, quantity] or {price, amount}' }),
);

export const orderBook = z.object({
  ...instrument,
  timestamp,
  bids: z.array(level).max(5000),
  asks: z.array(level).max(5000),
  lastUpdateId: count.optional(),
});

export const fill = z.object({
  ...instrument,
  orderId: externalId(100),
  tradeId: externalId(100),
  side,
  price: decimal('positive'),
  quantity: decimal('positive'),
  quoteQuantity: decimal('nonNegative').optional(),
  commission: decimal('nonNegative').optional(),
  commissionAsset: z.string().max(20).optional(),
  realizedPnl: decimal().optional(),
  isMaker: bool.optional(),
  userId: externalId().optional(),
  accountId: count.optional(),
  strategyId: externalId(100).optional(),
  timestamp,
});

const positionSide = z
  .string()
  .transform((v) => ({ buy: 'long', sell: 'short' })[v.toLowerCase()] ?? v.toLowerCase())
  .pipe(z.enum(['long', 'short'], { error: (i) => `expected long or short, got ${JSON.stringify(i.input)}` }));

export const positionUpdate = z
  .object({
    ...instrument,
    /** long or short; a signed quantity (seed 004) may give the side instead. */
    side: positionSide.optional(),
    quantity: decimal(),
    entryPrice: decimal('nonNegative'),
    markPrice: decimal('nonNegative').optional(),
    exitPrice: decimal('nonNegative').optional(),
    unrealizedPnl: decimal().optional(),
    realizedPnl: decimal().optional(),
    pnlPercentage: decimal().optional(),
    fees: decimal('nonNegative').optional(),
    margin: decimal('nonNegative').optional(),
    isolatedMargin: decimal('nonNegative').optional(),
    stopLossPrice: decimal('nonNegative').optional(),
    takeProfitPrice: decimal('nonNegative').optional(),
    positionId: externalId(100).optional(),
    userId: externalId().optional(),
    accountId: count.optional(),
    strategyId: externalId(100).optional(),
    status: lower(['open', 'closed']).optional(),
    timestamp: timestamp.optional(),
  })
  .transform((d, ctx) => {
    const negative = d.quantity.startsWith('-');
    const side = d.side ?? (negative ? 'short' : 'long');
    if (d.side === 'long' && negative) {
      ctx.issues.push({ code: 'custom', message: 'a long position cannot have a negative quantity', input: d.quantity });
      return z.NEVER;
    }
    return { ...d, side, quantity: negative ? d.quantity.slice(1) : d.quantity };
  });

export const strategyTradeOpened = z.object({
  id: externalId(100),
  strategyId: externalId(100),
  symbol: symbol(50),
  exchange: exchange.optional(),
  side,
  type: lower(['market', 'limit', 'stop_loss', 'take_profit']).optional(),
  entryPrice: decimal('positive'),
  quantity: decimal('positive'),
  entryTime: timestamp,
  externalOrderId: externalId(100).optional(),
  fees: decimal('nonNegative').optional(),
  stopLossPrice: decimal('positive').optional(),
  takeProfitPrice: decimal('positive').optional(),
  entrySignal: jsonObject.optional(),
  entryTag: z.string().max(100).optional(),
  metadata: jsonObject.optional(),
});

export const strategyTradeClosed = z.object({
  id: externalId(100),
  exitPrice: decimal('positive'),
  exitTime: timestamp,
  exitReason: z.string().max(50).optional(),
  exitSignal: jsonObject.optional(),
  exitTag: z.string().max(100).optional(),
  /** Total fees of the round trip; P&L is computed from prices, quantity and fees when not given. */
  fees: decimal('nonNegative').optional(),
  pnl: decimal().optional(),
});

export const portfolioSnapshot = z.object({
  strategyId: externalId(100).optional(),
  userId: externalId().optional(),
  timestamp,
  totalValue: decimal(),
  cashBalance: decimal(),
  unrealizedPnl: decimal().optional(),
  realizedPnl: decimal().optional(),
  positions: jsonArray.optional(),
  openOrdersCount: count.optional(),
  totalExposure: decimal().optional(),
  leverage: decimal('nonNegative').optional(),
  dailyPnl: decimal().optional(),
  dailyPnlPercent: decimal().optional(),
});

export const performanceMetric = z.object({
  strategyId: externalId(100).optional(),
  name: z.string().regex(/^[A-Za-z0-9_.:-]{1,50}$/, { error: 'expected a metric name of 1-50 letters, digits and _ . : -' }),
  value: decimal(),
  timestamp,
});

export const strategyPerformance = z.object({
  strategyId: externalId(100),
  timestamp,
  totalReturn: decimal().optional(),
  dailyReturn: decimal().optional(),
  cumulativeReturn: decimal().optional(),
  sharpeRatio: decimal().optional(),
  maxDrawdown: decimal().optional(),
  winRate: decimal('nonNegative').optional(),
  profitFactor: decimal().optional(),
  totalTrades: count.optional(),
  winningTrades: count.optional(),
  losingTrades: count.optional(),
});

export const prediction = z.object({
  modelId: count,
  symbol: symbol(50),
  timestamp,
  predictionTimestamp: timestamp,
  predictionType: z.string().min(1).max(20),
  predictedValue: decimal(),
  confidence: decimal('nonNegative').optional(),
  actualValue: decimal().optional(),
  features: jsonObject.optional(),
});

export const indicator = z.object({
  exchange: exchange.optional(),
  symbol: symbol(50),
  timeframe,
  timestamp,
  name: z.string().regex(/^[A-Za-z0-9_.:()-]{1,50}$/, { error: 'expected an indicator name such as rsi_14' }),
  value: decimal().optional(),
  additionalValues: jsonObject.optional(),
});

export const riskEvent = z.object({
  userId: externalId().optional(),
  eventType: z.string().min(1).max(50),
  severity: lower(['info', 'warning', 'critical']),
  symbol: symbol(50).optional(),
  strategyId: externalId(100).optional(),
  description: z.string().max(10_000).optional(),
  details: jsonObject.optional(),
  riskValue: decimal().optional(),
  limitValue: decimal().optional(),
  actionTaken: z.string().max(100).optional(),
  timestamp: timestamp.optional(),
});

export const systemLog = z.object({
  level: lower(['debug', 'info', 'warn', 'error', 'fatal']),
  category: z.string().min(1).max(50).transform((v) => v.toLowerCase()),
  message: z.string().min(1).max(100_000),
  details: jsonObject.optional(),
  strategyId: externalId(100).optional(),
  tradeId: externalId(100).optional(),
  orderId: externalId(100).optional(),
  userId: externalId().optional(),
  sessionId: z.string().max(100).optional(),
  ipAddress: z.ipv4().or(z.ipv6()).optional(),
  timestamp: timestamp.optional(),
});

export const apiUsage = z.object({
  userId: externalId().optional(),
  apiKeyId: count.optional(),
  endpoint: z.string().min(1).max(255),
  method: z.string().regex(/^[A-Za-z]{3,10}$/).transform((v) => v.toUpperCase()),
  statusCode: count.pipe(z.number().min(100).max(599)),
  responseTime: count.optional(),
  ipAddress: z.ipv4().or(z.ipv6()).optional(),
  userAgent: z.string().max(1000).optional(),
  requestSize: count.optional(),
  responseSize: count.optional(),
  timestamp: timestamp.optional(),
});
