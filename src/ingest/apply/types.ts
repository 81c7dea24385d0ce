import type { EventOf, EventType } from '../events/catalogue.ts';

/** One decoded event with where it came from, in the order it was emitted. */
export interface Entry<T extends EventType = EventType> {
  /** Idempotency key of the queue entry, e.g. 'entry:tradestore:events:1763700000123-0'. */
  key: string;
  event: EventOf<T>;
  /**
   * False when the group hands this entry out for the first time: it cannot have been applied
   * before, so its key need not be looked up. Undefined means "unknown": look it up.
   */
  redelivered?: boolean;
}

/** An entry that cannot be applied, and why; it goes to the dead letters. */
export interface Rejection {
  key: string;
  reason: string;
}

export interface Candle {
  market: string;
  interval: string;
  openTime: Date;
  closeTime: Date;
  open: string;
  high: string;
  low: string;
  close: string;
  volume: string;
  quoteVolume: string;
  tradeCount: number;
  takerBuyVolume: string;
  takerBuyQuoteVolume: string;
}

/** What a committed batch changed, for post-commit publication and cache invalidation. */
export interface Effects {
  trades: { market: string; id: string; sequence: string; price: string; quantity: string; isBuyerMaker: boolean; executedAt: Date }[];
  /** Candles as stored after the batch (the upsert returns them). */
  candles: Candle[];
  orders: { id: string; market: string; userId: string | null; status: string; filledQuantity: string }[];
  balances: { userId: string; asset: string; available: string; locked: string }[];
}

export const emptyEffects = (): Effects => ({ trades: [], candles: [], orders: [], balances: [] });

/** An applier's verdict on each of its entries: the rejected ones, and what the rest changed. */
export interface ApplyResult {
  rejected: Rejection[];
}
