// The public surface of the tradestore package. Everything else is internal.
export { openStore, storeOver, type Store, type StoreOptions } from './store/store.ts';
export type { Market, Kline, PublicTrade, Ticker24h, Depth, KlineQuery } from './store/market.ts';
export type { Order, OrderEvent, Balance, BalanceChange, Position, StrategyTrade, TradeHistoryFilters } from './store/account.ts';
export type { Strategy, StrategyPerformance } from './store/strategies.ts';
export type { ApiKeyIdentity, CreatedKey, Scope } from './store/apiKeys.ts';
export type { Page } from './store/pagination.ts';
export { KLINE_INTERVALS, type KlineInterval } from './store/intervals.ts';
export { InvalidArgumentError, NotFoundError } from './store/errors.ts';
export type { Database, Queryable } from './database/types.ts';
export type { Bus } from './bus/types.ts';
