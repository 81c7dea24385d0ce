import type { EventOf, EventType } from '../events/catalogue.ts';
import type { RaisedRiskEvent } from './risk.ts';

/** One decoded event with where it came from, in the order it was emitted. */
export interface Entry<T extends EventType = EventType> {
  /** Identity of the queue entry, e.g. 'entry:tradestore:events:{3}:1763700000123-0'. */
  key: string;
  event: EventOf<T>;
}

/** An entry that cannot be applied, and why; it goes to the dead letters. */
export interface Rejection {
  key: string;
  reason: string;
  /** How often it was tried (1 unless it failed alone several times). */
  attempts?: number;
}

export interface Candle {
  /** A venue market's symbol, or an exchange instrument's `EXCHANGE:SYMBOL` (with `exchange` set). */
  market: string;
  exchange?: string;
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
  /** executedAt as ISO text, as it is published. */
  trades: { market: string; id: string; sequence: string; price: string; quantity: string; isBuyerMaker: boolean; executedAt: string }[];
  /** Candles as stored after the batch (the upsert returns them). */
  candles: Candle[];
  orders: { id: string; market: string; userId: string | null; status: string; filledQuantity: string }[];
  balances: { userId: string; asset: string; available: string; locked: string }[];
  /** Strategies whose counters a closed round trip moved (their cached entries go stale). */
  strategies: string[];
  /** Risk events raised by the batch, published after commit (docs/RISK.md). */
  riskEvents: RaisedRiskEvent[];
  /** Users whose risk limits' values or levels changed (their cached limits go stale). */
  riskLimitUsers: string[];
}

export const emptyEffects = (): Effects => ({ trades: [], candles: [], orders: [], balances: [], strategies: [], riskEvents: [], riskLimitUsers: [] });

/** An applier's verdict on each of its entries: the rejected ones, and what the rest changed. */
export interface ApplyResult {
  rejected: Rejection[];
}
