import Big from 'big.js';
import { z } from 'zod';
import type { Depth, Kline, Market, PublicTrade, Ticker24h } from '../store/market.ts';

/**
 * Binance's answers, as its spot API documents them: each formatter below returns exactly its
 * schema's type, and the routes declare these schemas as their answers (the OpenAPI document).
 */
const dec = z.string().describe('A decimal with at least 8 places, e.g. "134.50000000"');
const ms = z.number().int().describe('Epoch milliseconds');
const id = z.number().int();
export const binance = {
  empty: z.object({}),
  time: z.object({ serverTime: ms }),
  kline: z.tuple([ms.describe('open time'), dec.describe('open'), dec.describe('high'), dec.describe('low'), dec.describe('close'), dec.describe('volume'), ms.describe('close time'), dec.describe('quote asset volume'), z.number().int().describe('number of trades'), dec.describe('taker buy base asset volume'), dec.describe('taker buy quote asset volume'), z.string().describe('unused')]).describe('A kline: open time, OHLC, volume, close time, quote volume, trades, taker buy volumes'),
  trade: z.object({ id, price: dec, qty: dec, quoteQty: dec, time: ms, isBuyerMaker: z.boolean(), isBestMatch: z.boolean() }),
  aggTrade: z.object({ a: id.describe('aggregate trade id'), p: dec, q: dec, f: id.describe('first trade id'), l: id.describe('last trade id'), T: ms, m: z.boolean().describe('the buyer is the maker'), M: z.boolean() }),
  ticker24h: z.object({
    symbol: z.string(), priceChange: dec, priceChangePercent: z.string(), weightedAvgPrice: dec, prevClosePrice: dec, lastPrice: dec, lastQty: dec,
    bidPrice: dec, bidQty: dec, askPrice: dec, askQty: dec, openPrice: dec, highPrice: dec, lowPrice: dec, volume: dec, quoteVolume: dec,
    openTime: ms, closeTime: ms, firstId: id, lastId: id, count: z.number().int(),
  }),
  rollingTicker: z.object({
    symbol: z.string(), priceChange: dec, priceChangePercent: z.string(), weightedAvgPrice: dec, openPrice: dec, highPrice: dec, lowPrice: dec, lastPrice: dec,
    volume: dec, quoteVolume: dec, openTime: ms, closeTime: ms, firstId: id, lastId: id, count: z.number().int(),
  }),
  miniTicker: z.object({ symbol: z.string(), openPrice: dec, highPrice: dec, lowPrice: dec, lastPrice: dec, volume: dec, quoteVolume: dec, openTime: ms, closeTime: ms, firstId: id, lastId: id, count: z.number().int() }),
  price: z.object({ symbol: z.string(), price: dec }),
  bookTicker: z.object({ symbol: z.string(), bidPrice: dec, bidQty: dec, askPrice: dec, askQty: dec }),
  avgPrice: z.object({ mins: z.number().int(), price: dec, closeTime: ms }),
  depth: z.object({ lastUpdateId: id, bids: z.array(z.tuple([dec, dec])), asks: z.array(z.tuple([dec, dec])) }),
  symbol: z.object({
    symbol: z.string(), status: z.enum(['TRADING', 'BREAK']), baseAsset: z.string(), baseAssetPrecision: z.number().int(), quoteAsset: z.string(), quotePrecision: z.number().int(),
    quoteAssetPrecision: z.number().int(), baseCommissionPrecision: z.number().int(), quoteCommissionPrecision: z.number().int(), orderTypes: z.array(z.string()),
    icebergAllowed: z.boolean(), ocoAllowed: z.boolean(), isSpotTradingAllowed: z.boolean(), isMarginTradingAllowed: z.boolean(),
    filters: z.array(z.union([
      z.object({ filterType: z.literal('PRICE_FILTER'), minPrice: dec, maxPrice: dec, tickSize: dec }),
      z.object({ filterType: z.literal('LOT_SIZE'), minQty: dec, maxQty: dec, stepSize: dec }),
    ])),
    permissions: z.array(z.string()),
    exchange: z.string().describe("Not Binance's: where the market's data comes from ('venue', or the exchange of a feed)"),
    pricePrecision: z.number().int().describe("Not Binance's: decimal places of the tick size"),
  }),
};
export const exchangeInfo = z.object({
  timezone: z.string(),
  serverTime: ms,
  rateLimits: z.array(z.object({ rateLimitType: z.string(), interval: z.enum(['SECOND', 'MINUTE', 'DAY']), intervalNum: z.number().int(), limit: z.number().int() })),
  exchangeFilters: z.array(z.never()),
  symbols: z.array(binance.symbol),
});
/** One object for `symbol`, an array for `symbols` or none. */
export const oneOrMany = <T extends z.ZodType>(item: T) => z.union([item, z.array(item)]);
/**
 * A full answer, or with type=MINI the mini one. The mini schema is strict: a full answer that
 * does not fit its own schema is a 500, never quietly cut down to the mini fields.
 */
export const fullOrMini = <T extends z.ZodObject>(full: T) => z.union([oneOrMany(full), oneOrMany(z.strictObject(binance.miniTicker.shape))]);
type Of<K extends keyof typeof binance> = z.output<(typeof binance)[K]>;

/**
 * A decimal as Binance prints it: at least 8 places ("134.50000000"). A value with more places
 * than 8 keeps them all (tradestore's decimals are exact; Binance's never need more than 8).
 * Missing decimals are zero, as Binance prints them.
 */
export function b8(v: string | null | undefined): string {
  if (v === null || v === undefined || v === '') return '0.00000000';
  const [whole, fraction = ''] = v.split('.');
  return fraction.length >= 8 ? v : `${whole}.${fraction.padEnd(8, '0')}`;
}
const d = b8;
const precision = (step: string | null) => (step && step.includes('.') ? step.replace(/0+$/, '').split('.')[1]!.length : 8);

export const klineRow = (k: Kline): Of<'kline'> => [
  k.openTime, d(k.open), d(k.high), d(k.low), d(k.close), d(k.volume), k.closeTime, d(k.quoteVolume), k.tradeCount, d(k.takerBuyVolume), d(k.takerBuyQuoteVolume), '0',
];

export const tradeObject = (t: PublicTrade): Of<'trade'> => ({
  id: t.publicId,
  price: d(t.price),
  qty: d(t.quantity),
  quoteQty: d(t.quoteQuantity),
  time: t.time,
  isBuyerMaker: t.isBuyerMaker ?? false,
  isBestMatch: true,
});

/** Every venue trade is its own aggregate: the venue does not split one taker order's fills. */
export const aggTradeObject = (t: PublicTrade): Of<'aggTrade'> => ({
  a: t.publicId,
  p: d(t.price),
  q: d(t.quantity),
  f: t.publicId,
  l: t.publicId,
  T: t.time,
  m: t.isBuyerMaker ?? false,
  M: true,
});

/** Binance's rolling-window and trading-day tickers: the 24-hour ticker without the book and the previous close. */
export const rollingTickerObject = (t: Ticker24h): Of<'rollingTicker'> => {
  const { prevClosePrice: _p, lastQty: _q, bidPrice: _bp, bidQty: _bq, askPrice: _ap, askQty: _aq, ...rolling } = ticker24hObject(t, null);
  return rolling;
};

export const ticker24hObject = (t: Ticker24h, depth: Depth | null): Of<'ticker24h'> => ({
  symbol: t.symbol,
  priceChange: d(t.change),
  priceChangePercent: t.changePercent ?? '0.000',
  weightedAvgPrice: d(t.weightedAvgPrice),
  prevClosePrice: d(t.prevClose),
  lastPrice: d(t.last),
  lastQty: d(t.lastQuantity),
  bidPrice: d(depth?.bids[0]?.[0]),
  bidQty: d(depth?.bids[0]?.[1]),
  askPrice: d(depth?.asks[0]?.[0]),
  askQty: d(depth?.asks[0]?.[1]),
  openPrice: d(t.open),
  highPrice: d(t.high),
  lowPrice: d(t.low),
  volume: d(t.volume),
  quoteVolume: d(t.quoteVolume),
  openTime: t.openTime,
  closeTime: t.closeTime,
  firstId: t.firstTradeId === null ? -1 : Number(t.firstTradeId),
  lastId: t.lastTradeId === null ? -1 : Number(t.lastTradeId),
  count: t.count,
});

const levels = (side: [string, string][]) => side.map(([price, quantity]): [string, string] => [d(price), d(quantity)]);
export const depthObject = (depth: Depth): Of<'depth'> => ({ lastUpdateId: Number(depth.lastUpdateId), bids: levels(depth.bids), asks: levels(depth.asks) });

/** Binance's ticker/24hr?type=MINI: the statistics without the order book and the changes. */
export const miniTickerObject = (full: Of<'rollingTicker'>): Of<'miniTicker'> => ({
  symbol: full.symbol, openPrice: full.openPrice, highPrice: full.highPrice, lowPrice: full.lowPrice, lastPrice: full.lastPrice, volume: full.volume,
  quoteVolume: full.quoteVolume, openTime: full.openTime, closeTime: full.closeTime, firstId: full.firstId, lastId: full.lastId, count: full.count,
});

/** Binance's ticker/bookTicker: the best bid and ask. */
export const bookTickerObject = (symbol: string, depth: Depth): Of<'bookTicker'> => ({
  symbol, bidPrice: d(depth.bids[0]?.[0]), bidQty: d(depth.bids[0]?.[1]), askPrice: d(depth.asks[0]?.[0]), askQty: d(depth.asks[0]?.[1]),
});

/**
 * The smallest valid value: at least `min` and on the step (Binance's filters accept a price when
 * (price − minPrice) is a multiple of tickSize, so minPrice itself must be on the tick).
 */
function onStep(min: string | null, step: string | null): string | null {
  if (!step || new Big(step).lte(0)) return min;
  const floor = new Big(min ?? '0');
  const steps = floor.div(step).round(0, Big.roundUp);
  return (steps.lt(1) ? new Big(1) : steps).times(step).toFixed();
}

export const symbolObject = (m: Market): Of<'symbol'> => ({
  symbol: m.symbol,
  status: m.active ? 'TRADING' : 'BREAK',
  baseAsset: m.baseAsset ?? '',
  baseAssetPrecision: 8,
  quoteAsset: m.quoteAsset ?? '',
  quotePrecision: 8,
  quoteAssetPrecision: 8,
  baseCommissionPrecision: 8,
  quoteCommissionPrecision: 8,
  orderTypes: ['LIMIT', 'MARKET'],
  icebergAllowed: false,
  ocoAllowed: false,
  isSpotTradingAllowed: true,
  isMarginTradingAllowed: false,
  filters: [
    { filterType: 'PRICE_FILTER', minPrice: d(onStep(m.minPrice, m.tickSize)), maxPrice: d(m.maxPrice), tickSize: d(m.tickSize) },
    { filterType: 'LOT_SIZE', minQty: d(onStep(m.minQuantity, m.stepSize)), maxQty: d(m.maxQuantity), stepSize: d(m.stepSize) },
  ],
  permissions: ['SPOT'],
  /** Not Binance's: where the market's data comes from ('venue', or the exchange of a feed). */
  exchange: m.exchange,
  pricePrecision: precision(m.tickSize),
});
