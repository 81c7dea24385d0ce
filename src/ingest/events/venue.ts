import { z } from 'zod';
import { bool, decimal, externalId, side, symbol, timestamp } from './fields.ts';

/**
 * Seed 000's three messages, accepted as real engines built on it send them: numbers as JSON
 * numbers or strings, optional counterparties, orders without a user id.
 */

export const tradeAdded = z.object({
  market: symbol(20),
  id: externalId(),
  price: decimal('positive'),
  quantity: decimal('positive'),
  isBuyerMaker: bool,
  timestamp,
  /** The engine's own price × quantity; tradestore computes it exactly and ignores this one. */
  quoteQuantity: decimal('nonNegative').optional(),
  buyerOrderId: externalId().optional(),
  sellerOrderId: externalId().optional(),
  buyerId: externalId().optional(),
  sellerId: externalId().optional(),
  tradeFeeBuyer: decimal('nonNegative').optional(),
  tradeFeeSeller: decimal('nonNegative').optional(),
});
export type TradeAdded = z.output<typeof tradeAdded>;

const orderStatus = z
  .string()
  .transform((v) => v.toLowerCase())
  .pipe(z.enum(['open', 'filled', 'cancelled', 'rejected'], { error: (i) => `expected open, filled, cancelled or rejected, got ${JSON.stringify(i.input)}` }));

export const orderUpdate = z
  .object({
    orderId: externalId(),
    /** Quantity filled by this event; added to filled_quantity (seed 000's OrderManager). */
    executedQty: decimal('nonNegative').optional(),
    market: symbol(20).optional(),
    price: decimal('nonNegative').optional(),
    quantity: decimal('positive').optional(),
    side: side.optional(),
    status: orderStatus.optional(),
    userId: externalId().optional(),
    orderType: z.string().transform((v) => v.toLowerCase()).pipe(z.enum(['limit', 'market', 'stop'])).optional(),
    timeInForce: z.string().transform((v) => v.toUpperCase()).pipe(z.enum(['GTC', 'IOC', 'FOK'])).optional(),
    timestamp: timestamp.optional(),
  })
  .superRefine((order, ctx) => {
    const creating = [order.market, order.price, order.quantity, order.side];
    const given = creating.filter((v) => v !== undefined).length;
    if (given > 0 && given < 4) {
      ctx.addIssue({ code: 'custom', message: 'an order is created from market, price, quantity and side together; some are missing' });
    }
    const fills = order.executedQty !== undefined && order.executedQty !== '0';
    if (!fills && order.status === undefined && given === 0) {
      ctx.addIssue({ code: 'custom', message: 'ORDER_UPDATE needs executedQty, status, or market, price, quantity and side' });
    }
  });
export type OrderUpdate = z.output<typeof orderUpdate>;

const changeType = z
  .string()
  .transform((v) => v.toLowerCase())
  .pipe(z.enum(['deposit', 'withdrawal', 'trade', 'fee', 'adjustment']));

export const balanceUpdate = z
  .object({
    userId: externalId(),
    asset: z.string().regex(/^[A-Za-z0-9_.-]{1,10}$/, { error: 'expected an asset code of 1-10 letters or digits' }),
    /** Absent on a `fee` change that names its trade in referenceId: the trade's fee is charged (docs/FEES.md). */
    availableChange: decimal().optional(),
    lockedChange: decimal().default('0'),
    referenceId: externalId().optional(),
    /** The market of the trade a fee change without availableChange names (trade ids are unique within a market). */
    market: symbol(20).optional(),
    changeType: changeType.default('trade'),
    description: z.string().max(1000).optional(),
    timestamp: timestamp.optional(),
  })
  .refine((b) => b.availableChange !== undefined || b.changeType !== 'fee' || (b.referenceId !== undefined && b.market !== undefined), {
    error: 'a fee change without availableChange names its trade: market and referenceId',
  })
  .transform((b) => ({ ...b, availableChange: b.availableChange ?? '0', feeOfTrade: b.availableChange === undefined && b.changeType === 'fee' }))
  .refine((b) => b.feeOfTrade || b.availableChange !== '0' || b.lockedChange !== '0', {
    error: 'BALANCE_UPDATE changes nothing: availableChange and lockedChange are both 0',
  });
export type BalanceUpdate = z.output<typeof balanceUpdate>;
