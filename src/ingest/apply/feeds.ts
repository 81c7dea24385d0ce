import Big from 'big.js';
import type { Queryable } from '../../database/types.ts';
import type { EventOf, EventType } from '../events/catalogue.ts';
import { claimIdentities, storedIn, type StoredContent } from './identity.ts';
import { applyTickCandles, type StoredTick } from './tickCandles.ts';
import { excluded, insertRows, withoutMissingReferences, type Column, type Reference } from './rows.ts';
import type { ApplyResult, Effects, Entry } from './types.ts';

type Data<T extends EventType> = EventOf<T>['data'];

/** How one feed message type becomes rows of one table. */
export interface RowSpec<T extends EventType> {
  table: string;
  columns: Column<Data<T>>[];
  /** Fixed SQL after the INSERT: ON CONFLICT … */
  conflict: string;
  /** Messages with equal identity in one batch update the same row: the last one wins. */
  identity?: (d: Data<T>) => string;
  references?: Reference<Data<T>>[];
  /**
   * An identity that does not include the time (an exchange's trade id): claimed in
   * ingest_identities before the row is written, so the same id with other content (another
   * time, another price) is refused with both versions, on TimescaleDB too (see identity.ts).
   */
  claim?: {
    kind: string;
    /** null: this message has no identity of its own (a tick without a trade id). */
    key: (d: Data<T>) => string | null;
    at: (d: Data<T>) => Date;
    content: (d: Data<T>) => Record<string, string>;
    stored: StoredContent<Entry<T>>;
    describe: (d: Data<T>) => string;
  };
  /** What follows from the rows this batch newly wrote (not those a conflict skipped). */
  written?: {
    /** Columns of the written rows to give back. */
    returning: string;
    apply: (tx: Queryable, rows: Record<string, unknown>[], entries: Entry<T>[], effects: Effects) => Promise<void>;
  };
}

const dec = (v: string | null | undefined) => (v === null || v === undefined ? '' : new Big(v).toFixed());
const marketTradeContent = (d: { price: string; quantity: string; isBuyerMaker?: boolean; timestamp: Date }) => ({
  price: dec(d.price), quantity: dec(d.quantity), isBuyerMaker: String(d.isBuyerMaker ?? ''), timestamp: d.timestamp.toISOString(),
});
const fillContent = (d: { side: string; price: string; quantity: string; commission?: string; realizedPnl?: string; timestamp: Date }) => ({
  side: d.side, price: dec(d.price), quantity: dec(d.quantity), commission: dec(d.commission ?? '0'), realizedPnl: dec(d.realizedPnl ?? '0'),
  timestamp: d.timestamp.toISOString(),
});
/** Keys of ingest_identities (migration 008 backfills the same layouts). */
const marketTradeKey = (d: { exchange: string; symbol: string; tradeId?: string }) => (d.tradeId ? `${d.exchange} ${d.symbol} ${d.tradeId}` : null);
export const fillKey = (d: { exchange: string; symbol: string; orderId: string; tradeId: string }) =>
  `${d.exchange} ${d.symbol} ${Buffer.byteLength(d.orderId)}:${d.orderId} ${d.tradeId}`;

const sum = (levels: { quantity: string }[]) => levels.reduce((s, l) => s.plus(l.quantity), new Big(0)).toFixed();

const instrumentRef = <T extends { exchange: string; symbol: string }>(): Reference<T> => ({
  table: 'instruments',
  columns: [['exchange', 'text'], ['symbol', 'text']],
  key: (d) => [d.exchange, d.symbol],
  describe: (d) => `unknown instrument ${d.exchange}:${d.symbol} (register it in instruments first)`,
});
const strategyRef = <T extends { strategyId?: string | undefined }>(): Reference<T> => ({
  table: 'strategies',
  columns: [['id', 'text']],
  key: (d) => (d.strategyId === undefined ? null : [d.strategyId]),
  describe: (d) => `unknown strategy ${d.strategyId}`,
});
const userRef = <T extends { userId?: string | undefined }>(): Reference<T> => ({
  table: 'users',
  columns: [['id', 'text']],
  key: (d) => (d.userId === undefined ? null : [d.userId]),
  describe: (d) => `unknown user ${d.userId}`,
});
const accountRef = <T extends { accountId?: number | undefined }>(): Reference<T> => ({
  table: 'accounts',
  columns: [['id', 'bigint']],
  key: (d) => (d.accountId === undefined ? null : [d.accountId]),
  describe: (d) => `unknown account ${d.accountId}`,
});


export const ROW_SPECS: { [T in EventType]?: RowSpec<T> } = {
  MARKET_TRADE: {
    table: 'market_trades',
    columns: [
      { name: 'exchange', type: 'text', value: (d) => d.exchange },
      { name: 'symbol', type: 'text', value: (d) => d.symbol },
      { name: 'trade_id', type: 'text', value: (d) => d.tradeId ?? '' },
      { name: 'time', type: 'timestamptz', value: (d) => d.timestamp },
      { name: 'price', type: 'numeric', value: (d) => d.price },
      { name: 'quantity', type: 'numeric', value: (d) => d.quantity },
      { name: 'is_buyer_maker', type: 'boolean', value: (d) => d.isBuyerMaker },
    ],
    conflict: 'ON CONFLICT DO NOTHING',
    references: [instrumentRef()],
    claim: {
      kind: 'market_trade',
      key: marketTradeKey,
      at: (d) => d.timestamp,
      content: marketTradeContent,
      stored: storedIn<Entry<'MARKET_TRADE'>, { price: string; quantity: string; is_buyer_maker: boolean | null; time: Date }>({
        table: 'market_trades',
        match: [['exchange', 'exchange'], ['symbol', 'symbol'], ['trade_id', 'tradeId']],
        timeColumn: 'time',
        select: 't.price::text, t.quantity::text, t.is_buyer_maker, t.time',
        content: (r) => marketTradeContent({ price: r.price, quantity: r.quantity, isBuyerMaker: r.is_buyer_maker ?? undefined, timestamp: r.time }),
      }),
      describe: (d) => `exchange trade ${d.exchange} ${d.symbol} ${d.tradeId}`,
    },
    // The ticks stored (a tick without a trade id at an instant already taken is not) build the
    // instrument's candles; several with one key in a batch: the first was stored.
    written: {
      returning: 'exchange, symbol, trade_id, time',
      apply: async (tx, rows, entries, effects) => {
        const key = (exchange: string, symbol: string, tradeId: string, time: Date) => [exchange, symbol, tradeId, time.getTime()].join('\u0000');
        const stored = new Set(rows.map((r) => key(r.exchange as string, r.symbol as string, r.trade_id as string, r.time as Date)));
        const ticks: StoredTick[] = [];
        for (const { event: { data: d } } of entries) {
          const k = key(d.exchange, d.symbol, d.tradeId ?? '', d.timestamp);
          if (!stored.delete(k)) continue;
          ticks.push({ exchange: d.exchange, symbol: d.symbol, time: d.timestamp, price: d.price, quantity: d.quantity, isBuyerMaker: d.isBuyerMaker });
        }
        effects.candles.push(...(await applyTickCandles(tx, ticks)));
      },
    },
  },
  CANDLE: {
    table: 'market_data',
    columns: [
      { name: 'exchange', type: 'text', value: (d) => d.exchange },
      { name: 'symbol', type: 'text', value: (d) => d.symbol },
      { name: 'timeframe', type: 'text', value: (d) => d.timeframe },
      { name: 'timestamp', type: 'timestamptz', value: (d) => d.openTime },
      { name: 'open', type: 'numeric', value: (d) => d.open },
      { name: 'high', type: 'numeric', value: (d) => d.high },
      { name: 'low', type: 'numeric', value: (d) => d.low },
      { name: 'close', type: 'numeric', value: (d) => d.close },
      { name: 'volume', type: 'numeric', value: (d) => d.volume },
      { name: 'quote_volume', type: 'numeric', value: (d) => d.quoteVolume },
      { name: 'trades_count', type: 'int', value: (d) => d.tradesCount },
      { name: 'taker_buy_volume', type: 'numeric', value: (d) => d.takerBuyVolume },
      { name: 'taker_buy_quote_volume', type: 'numeric', value: (d) => d.takerBuyQuoteVolume },
      { name: 'vwap', type: 'numeric', value: (d) => d.vwap },
      { name: 'data_source', type: 'text', value: (d) => d.dataSource },
      { name: 'data_quality_score', type: 'smallint', value: (d) => d.qualityScore ?? 100 },
    ],
    // A live candle is sent again as it grows: the latest version replaces the stored one, and
    // the exchange's candle replaces one built from ticks (docs/CANDLES.md).
    conflict: `ON CONFLICT (exchange, symbol, timeframe, timestamp) DO UPDATE SET ${excluded(
      'open', 'high', 'low', 'close', 'volume', 'quote_volume', 'trades_count', 'taker_buy_volume',
      'taker_buy_quote_volume', 'vwap', 'data_source', 'data_quality_score',
    )}, first_tick_at = NULL, last_tick_at = NULL`,
    identity: (d) => [d.exchange, d.symbol, d.timeframe, d.openTime.getTime()].join('\u0000'),
    references: [instrumentRef()],
  },
  ORDER_BOOK: {
    table: 'order_book_snapshots',
    columns: [
      { name: 'exchange', type: 'text', value: (d) => d.exchange },
      { name: 'symbol', type: 'text', value: (d) => d.symbol },
      { name: 'timestamp', type: 'timestamptz', value: (d) => d.timestamp },
      // Arrays of arrays cannot pass through unnest; each side travels as one array literal.
      { name: 'bid_prices', type: 'text', cast: 'numeric[]', value: (d) => `{${d.bids.map((l) => l.price).join(',')}}` },
      { name: 'bid_quantities', type: 'text', cast: 'numeric[]', value: (d) => `{${d.bids.map((l) => l.quantity).join(',')}}` },
      { name: 'ask_prices', type: 'text', cast: 'numeric[]', value: (d) => `{${d.asks.map((l) => l.price).join(',')}}` },
      { name: 'ask_quantities', type: 'text', cast: 'numeric[]', value: (d) => `{${d.asks.map((l) => l.quantity).join(',')}}` },
      { name: 'total_bid_quantity', type: 'numeric', value: (d) => sum(d.bids) },
      { name: 'total_ask_quantity', type: 'numeric', value: (d) => sum(d.asks) },
      { name: 'last_update_id', type: 'bigint', value: (d) => d.lastUpdateId },
    ],
    conflict: `ON CONFLICT (exchange, symbol, timestamp) DO UPDATE SET ${excluded(
      'bid_prices', 'bid_quantities', 'ask_prices', 'ask_quantities', 'total_bid_quantity', 'total_ask_quantity', 'last_update_id',
    )}`,
    identity: (d) => [d.exchange, d.symbol, d.timestamp.getTime()].join('\u0000'),
    references: [instrumentRef()],
  },
  FILL: {
    table: 'trades_executed',
    columns: [
      { name: 'user_id', type: 'text', value: (d) => d.userId ?? 'system' },
      { name: 'account_id', type: 'bigint', value: (d) => d.accountId },
      { name: 'exchange', type: 'text', value: (d) => d.exchange },
      { name: 'symbol', type: 'text', value: (d) => d.symbol },
      { name: 'order_id', type: 'text', value: (d) => d.orderId },
      { name: 'trade_id', type: 'text', value: (d) => d.tradeId },
      { name: 'side', type: 'text', value: (d) => d.side },
      { name: 'quantity', type: 'numeric', value: (d) => d.quantity },
      { name: 'price', type: 'numeric', value: (d) => d.price },
      { name: 'quote_quantity', type: 'numeric', value: (d) => d.quoteQuantity ?? new Big(d.price).times(d.quantity).toFixed() },
      { name: 'commission', type: 'numeric', value: (d) => d.commission ?? '0' },
      { name: 'commission_asset', type: 'text', value: (d) => d.commissionAsset },
      { name: 'realized_pnl', type: 'numeric', value: (d) => d.realizedPnl ?? '0' },
      { name: 'is_maker', type: 'boolean', value: (d) => d.isMaker },
      { name: 'strategy_id', type: 'text', value: (d) => d.strategyId },
      { name: 'executed_at', type: 'timestamptz', value: (d) => d.timestamp },
    ],
    conflict: 'ON CONFLICT (exchange, symbol, trade_id, order_id, executed_at) DO NOTHING',
    references: [userRef(), accountRef()],
    claim: {
      kind: 'fill',
      key: fillKey,
      at: (d) => d.timestamp,
      content: fillContent,
      stored: storedIn<Entry<'FILL'>, { side: string; price: string; quantity: string; commission: string; realized_pnl: string; executed_at: Date }>({
        table: 'trades_executed',
        match: [['exchange', 'exchange'], ['symbol', 'symbol'], ['order_id', 'orderId'], ['trade_id', 'tradeId']],
        timeColumn: 'executed_at',
        select: 't.side, t.price::text, t.quantity::text, t.commission::text, t.realized_pnl::text, t.executed_at',
        content: (r) => fillContent({ side: r.side, price: r.price, quantity: r.quantity, commission: r.commission, realizedPnl: r.realized_pnl, timestamp: r.executed_at }),
      }),
      describe: (d) => `fill ${d.exchange} ${d.symbol} order ${d.orderId} trade ${d.tradeId}`,
    },
  },
  PORTFOLIO_SNAPSHOT: {
    table: 'portfolio_snapshots',
    columns: [
      { name: 'strategy_id', type: 'text', value: (d) => d.strategyId },
      { name: 'user_id', type: 'text', value: (d) => d.userId },
      { name: 'snapshot_time', type: 'timestamptz', value: (d) => d.timestamp },
      { name: 'total_value', type: 'numeric', value: (d) => d.totalValue },
      { name: 'cash_balance', type: 'numeric', value: (d) => d.cashBalance },
      { name: 'unrealized_pnl', type: 'numeric', value: (d) => d.unrealizedPnl ?? '0' },
      { name: 'realized_pnl', type: 'numeric', value: (d) => d.realizedPnl ?? '0' },
      { name: 'positions', type: 'jsonb', value: (d) => d.positions ?? '[]' },
      { name: 'open_orders_count', type: 'int', value: (d) => d.openOrdersCount ?? 0 },
      { name: 'total_exposure', type: 'numeric', value: (d) => d.totalExposure ?? '0' },
      { name: 'leverage', type: 'numeric', value: (d) => d.leverage ?? '0' },
      { name: 'daily_pnl', type: 'numeric', value: (d) => d.dailyPnl },
      { name: 'daily_pnl_percent', type: 'numeric', value: (d) => d.dailyPnlPercent },
    ],
    conflict: '',
    references: [strategyRef(), userRef()],
  },
  PERFORMANCE_METRIC: {
    table: 'performance_metrics',
    columns: [
      { name: 'time', type: 'timestamptz', value: (d) => d.timestamp },
      { name: 'strategy_id', type: 'text', value: (d) => d.strategyId },
      { name: 'metric_name', type: 'text', value: (d) => d.name },
      { name: 'value', type: 'numeric', value: (d) => d.value },
    ],
    conflict: 'ON CONFLICT (strategy_id, metric_name, time) DO UPDATE SET value = EXCLUDED.value',
    identity: (d) => [d.strategyId ?? '', d.name, d.timestamp.getTime()].join('\u0000'),
    references: [strategyRef()],
  },
  STRATEGY_PERFORMANCE: {
    table: 'strategy_performance',
    columns: [
      { name: 'strategy_id', type: 'text', value: (d) => d.strategyId },
      { name: 'timestamp', type: 'timestamptz', value: (d) => d.timestamp },
      { name: 'total_return', type: 'numeric', value: (d) => d.totalReturn },
      { name: 'daily_return', type: 'numeric', value: (d) => d.dailyReturn },
      { name: 'cumulative_return', type: 'numeric', value: (d) => d.cumulativeReturn },
      { name: 'sharpe_ratio', type: 'numeric', value: (d) => d.sharpeRatio },
      { name: 'max_drawdown', type: 'numeric', value: (d) => d.maxDrawdown },
      { name: 'win_rate', type: 'numeric', value: (d) => d.winRate },
      { name: 'profit_factor', type: 'numeric', value: (d) => d.profitFactor },
      { name: 'total_trades', type: 'int', value: (d) => d.totalTrades ?? 0 },
      { name: 'winning_trades', type: 'int', value: (d) => d.winningTrades ?? 0 },
      { name: 'losing_trades', type: 'int', value: (d) => d.losingTrades ?? 0 },
    ],
    conflict: `ON CONFLICT (strategy_id, timestamp) DO UPDATE SET ${excluded(
      'total_return', 'daily_return', 'cumulative_return', 'sharpe_ratio', 'max_drawdown', 'win_rate', 'profit_factor',
      'total_trades', 'winning_trades', 'losing_trades',
    )}`,
    identity: (d) => [d.strategyId, d.timestamp.getTime()].join('\u0000'),
    references: [strategyRef()],
  },
  PREDICTION: {
    table: 'predictions',
    columns: [
      { name: 'model_id', type: 'bigint', value: (d) => d.modelId },
      { name: 'symbol', type: 'text', value: (d) => d.symbol },
      { name: 'timestamp', type: 'timestamptz', value: (d) => d.timestamp },
      { name: 'prediction_timestamp', type: 'timestamptz', value: (d) => d.predictionTimestamp },
      { name: 'prediction_type', type: 'text', value: (d) => d.predictionType },
      { name: 'predicted_value', type: 'numeric', value: (d) => d.predictedValue },
      { name: 'confidence', type: 'numeric', value: (d) => d.confidence },
      { name: 'actual_value', type: 'numeric', value: (d) => d.actualValue },
      { name: 'error', type: 'numeric', value: (d) => (d.actualValue === undefined ? null : new Big(d.actualValue).minus(d.predictedValue).toFixed()) },
      { name: 'features', type: 'jsonb', value: (d) => d.features },
    ],
    // The same prediction sent again with its actual value fills in actual_value and error.
    conflict: `ON CONFLICT (model_id, symbol, prediction_type, prediction_timestamp, timestamp) DO UPDATE SET ${excluded(
      'predicted_value', 'confidence', 'actual_value', 'error', 'features',
    )}`,
    identity: (d) => [d.modelId, d.symbol, d.predictionType, d.predictionTimestamp.getTime(), d.timestamp.getTime()].join('\u0000'),
    references: [
      { table: 'ml_models', columns: [['id', 'bigint']], key: (d) => [d.modelId], describe: (d) => `unknown model ${d.modelId}` },
    ],
  },
  INDICATOR: {
    table: 'technical_indicators',
    columns: [
      { name: 'exchange', type: 'text', value: (d) => d.exchange ?? '' },
      { name: 'symbol', type: 'text', value: (d) => d.symbol },
      { name: 'timeframe', type: 'text', value: (d) => d.timeframe },
      { name: 'timestamp', type: 'timestamptz', value: (d) => d.timestamp },
      { name: 'indicator_name', type: 'text', value: (d) => d.name },
      { name: 'value', type: 'numeric', value: (d) => d.value },
      { name: 'additional_values', type: 'jsonb', value: (d) => d.additionalValues },
    ],
    conflict: `ON CONFLICT (exchange, symbol, timeframe, indicator_name, timestamp) DO UPDATE SET ${excluded('value', 'additional_values')}`,
    identity: (d) => [d.exchange ?? '', d.symbol, d.timeframe, d.name, d.timestamp.getTime()].join('\u0000'),
  },
  RISK_EVENT: {
    table: 'risk_events',
    columns: [
      { name: 'user_id', type: 'text', value: (d) => d.userId },
      { name: 'event_type', type: 'text', value: (d) => d.eventType },
      { name: 'severity', type: 'text', value: (d) => d.severity },
      { name: 'symbol', type: 'text', value: (d) => d.symbol },
      { name: 'strategy_id', type: 'text', value: (d) => d.strategyId },
      { name: 'description', type: 'text', value: (d) => d.description },
      { name: 'details', type: 'jsonb', value: (d) => d.details },
      { name: 'risk_value', type: 'numeric', value: (d) => d.riskValue },
      { name: 'limit_value', type: 'numeric', value: (d) => d.limitValue },
      { name: 'action_taken', type: 'text', value: (d) => d.actionTaken },
      { name: 'triggered_at', type: 'timestamptz', value: (d) => d.timestamp ?? new Date() },
    ],
    conflict: '',
  },
  SYSTEM_LOG: {
    table: 'system_logs',
    columns: [
      { name: 'timestamp', type: 'timestamptz', value: (d) => d.timestamp ?? new Date() },
      { name: 'level', type: 'text', value: (d) => d.level },
      { name: 'category', type: 'text', value: (d) => d.category },
      { name: 'message', type: 'text', value: (d) => d.message },
      { name: 'details', type: 'jsonb', value: (d) => d.details },
      { name: 'strategy_id', type: 'text', value: (d) => d.strategyId },
      { name: 'trade_id', type: 'text', value: (d) => d.tradeId },
      { name: 'order_id', type: 'text', value: (d) => d.orderId },
      { name: 'user_id', type: 'text', value: (d) => d.userId },
      { name: 'session_id', type: 'text', value: (d) => d.sessionId },
      { name: 'ip_address', type: 'inet', value: (d) => d.ipAddress },
    ],
    conflict: '',
  },
  API_USAGE: {
    table: 'api_usage',
    columns: [
      { name: 'timestamp', type: 'timestamptz', value: (d) => d.timestamp ?? new Date() },
      { name: 'user_id', type: 'text', value: (d) => d.userId },
      { name: 'api_key_id', type: 'bigint', value: (d) => d.apiKeyId },
      { name: 'endpoint', type: 'text', value: (d) => d.endpoint },
      { name: 'method', type: 'text', value: (d) => d.method },
      { name: 'status_code', type: 'int', value: (d) => d.statusCode },
      { name: 'response_time', type: 'int', value: (d) => d.responseTime },
      { name: 'ip_address', type: 'inet', value: (d) => d.ipAddress },
      { name: 'user_agent', type: 'text', value: (d) => d.userAgent },
      { name: 'request_size', type: 'int', value: (d) => d.requestSize },
      { name: 'response_size', type: 'int', value: (d) => d.responseSize },
    ],
    conflict: '',
  },
};

/**
 * The applier of a row spec: reject messages whose references do not exist, keep the last of
 * several messages for the same row, then write the rest in one statement.
 */
export function rowApplier<T extends EventType>(spec: RowSpec<T>) {
  return async (tx: Queryable, entries: Entry<T>[], effects: Effects): Promise<ApplyResult> => {
    const rejected: ApplyResult['rejected'] = [];
    let accepted = await withoutMissingReferences(tx, spec.references ?? [], entries, rejected);
    if (spec.claim) {
      const claim = spec.claim;
      const identified = accepted.filter((e) => claim.key(e.event.data as Data<T>) !== null);
      const fresh = new Set(
        await claimIdentities(
          tx,
          claim.kind,
          identified.map((e) => {
            const d = e.event.data as Data<T>;
            return { entry: e, key: claim.key(d)!, at: claim.at(d), content: () => claim.content(d) };
          }),
          claim.stored,
          (i) => claim.describe(i.entry.event.data as Data<T>),
          rejected,
        ),
      );
      accepted = accepted.filter((e) => claim.key(e.event.data as Data<T>) === null || fresh.has(e));
    }
    if (spec.identity) {
      const last = new Map<string, Entry<T>>();
      for (const e of accepted) last.set(spec.identity(e.event.data), e);
      const keep = new Set(last.values());
      accepted = accepted.filter((e) => keep.has(e));
    }
    const written = await insertRows(tx, spec.table, spec.columns, accepted.map((e) => ({ data: e.event.data as Data<T>, entry: e })), spec.conflict, spec.written?.returning);
    if (spec.written) await spec.written.apply(tx, written, accepted, effects);
    return { rejected };
  };
}
