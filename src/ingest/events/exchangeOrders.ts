import { z } from 'zod';
import { bool, count, decimal, externalId, jsonObject, side, symbol, timestamp } from './fields.ts';

/** What happened to an order a strategy sent to an exchange or a broker (docs/ORDERS.md). */
export const EXCHANGE_ORDER_EVENTS = ['placed', 'acknowledged', 'partially_filled', 'filled', 'cancelled', 'rejected', 'expired'] as const;

const lowerEnum = <T extends readonly [string, ...string[]]>(values: T, what: string) =>
  z
    .string({ error: `expected ${what}` })
    .transform((v) => v.toLowerCase().replace(/-/g, '_'))
    .pipe(z.enum(values, { error: (i) => `expected ${what}: ${values.join(', ')}; got ${JSON.stringify(i.input)}` }));

export const ORDER_TYPES = ['market', 'limit', 'stop', 'stop_market', 'stop_limit', 'stop_loss', 'take_profit', 'take_profit_market', 'sl', 'sl_m'] as const;

export const exchangeOrder = z.object({
  event: lowerEnum(EXCHANGE_ORDER_EVENTS, 'an order event'),
  /** The strategy's own id of the order (its client order id, or any id unique for the user). */
  orderId: externalId(100),
  userId: externalId().optional(),
  accountId: count.optional(),
  strategyId: externalId(100).optional(),
  strategyTradeId: externalId(100).optional(),
  exchange: z.string().regex(/^[A-Za-z0-9_.-]{1,50}$/, { error: 'expected an exchange or broker name' }).optional(),
  symbol: symbol(50).optional(),
  side: side.optional(),
  orderType: lowerEnum(ORDER_TYPES, 'an order type').optional(),
  timeInForce: z.string().transform((v) => v.toUpperCase()).pipe(z.enum(['GTC', 'IOC', 'FOK', 'GTX', 'DAY'])).optional(),
  quantity: decimal('positive').optional(),
  price: decimal('nonNegative').optional(),
  stopPrice: decimal('nonNegative').optional(),
  reduceOnly: bool.optional(),
  clientOrderId: externalId(100).optional(),
  /** The exchange's or broker's id, known from acknowledgement on. */
  externalOrderId: externalId(100).optional(),
  /** A fill: its quantity and price (partially_filled, filled), and the exchange's trade id to link it to the own fills. */
  fillQuantity: decimal('positive').optional(),
  fillPrice: decimal('positive').optional(),
  fee: decimal('nonNegative').optional(),
  feeAsset: z.string().max(20).optional(),
  tradeId: externalId(100).optional(),
  error: z.string().max(2000).optional(),
  retryCount: count.optional(),
  metadata: jsonObject.optional(),
  timestamp,
})
  .refine((d) => (d.fillQuantity === undefined) === (d.fillPrice === undefined), { error: 'a fill has both fillQuantity and fillPrice' })
  .refine((d) => d.event !== 'placed' || (d.exchange && d.symbol && d.side && d.orderType && d.quantity), {
    error: 'a placed order has exchange, symbol, side, orderType and quantity',
  });

export type ExchangeOrderEvent = z.output<typeof exchangeOrder>;
