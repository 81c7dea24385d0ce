import { z } from 'zod';
import { balanceUpdate, orderUpdate, tradeAdded } from './venue.ts';

/**
 * Every message type the ingest service accepts: its schema (the code validates against it,
 * docs/EVENTS.md is written from it), what it persists, and its ordering key. Events with the
 * same key are applied in the order they were emitted, also with several workers.
 */
export interface EventSpec<S extends z.ZodType = z.ZodType> {
  schema: S;
  summary: string;
  writes: string;
  /** Events with equal keys are applied in emission order; null means no ordering constraint. */
  orderingKey: (data: z.output<S>) => string | null;
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
    orderingKey: (d) => `market:${d.market}`,
    example: { market: 'TATA_INR', id: '1042', isBuyerMaker: true, price: '134.5', quantity: '2', quoteQuantity: '269', timestamp: 1763700000123 },
  }),
  ORDER_UPDATE: spec({
    schema: orderUpdate,
    summary:
      'A venue order: created when market, price, quantity and side are present and it does not exist yet; ' +
      'executedQty is added to filled_quantity; status cancelled or rejected ends it.',
    writes: 'orders, order_history',
    orderingKey: (d) => `order:${d.orderId}`,
    example: { orderId: 'o-77', executedQty: 0.5, market: 'TATA_INR', price: '134.5', quantity: '3', side: 'buy' },
  }),
  BALANCE_UPDATE: spec({
    schema: balanceUpdate,
    summary: 'A change of a user\'s available and locked balance of one asset; refused if either would go negative.',
    writes: 'balances, balance_history',
    orderingKey: (d) => `user:${d.userId}`,
    example: { userId: 'u1', asset: 'INR', availableChange: '-269', lockedChange: '269', referenceId: 'o-77' },
  }),
} as const;

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
