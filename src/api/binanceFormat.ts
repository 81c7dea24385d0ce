import Big from 'big.js';
import type { Depth, Kline, Market, PublicTrade, Ticker24h } from '../store/market.ts';

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

export const klineRow = (k: Kline) => [
  k.openTime, d(k.open), d(k.high), d(k.low), d(k.close), d(k.volume), k.closeTime, d(k.quoteVolume), k.tradeCount, d(k.takerBuyVolume), d(k.takerBuyQuoteVolume), '0',
];

export const tradeObject = (t: PublicTrade) => ({
  id: t.publicId,
  price: d(t.price),
  qty: d(t.quantity),
  quoteQty: d(t.quoteQuantity),
  time: t.time,
  isBuyerMaker: t.isBuyerMaker ?? false,
  isBestMatch: true,
});

/** Every venue trade is its own aggregate: the venue does not split one taker order's fills. */
export const aggTradeObject = (t: PublicTrade) => ({
  a: t.publicId,
  p: d(t.price),
  q: d(t.quantity),
  f: t.publicId,
  l: t.publicId,
  T: t.time,
  m: t.isBuyerMaker ?? false,
  M: true,
});

export const ticker24hObject = (t: Ticker24h, depth: Depth | null) => ({
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

const levels = (side: [string, string][]) => side.map(([price, quantity]) => [d(price), d(quantity)]);
export const depthObject = (depth: Depth) => ({ lastUpdateId: Number(depth.lastUpdateId), bids: levels(depth.bids), asks: levels(depth.asks) });

/** Binance's ticker/24hr?type=MINI: the statistics without the order book and the changes. */
export const miniTickerObject = (full: ReturnType<typeof ticker24hObject>) => ({
  symbol: full.symbol, openPrice: full.openPrice, highPrice: full.highPrice, lowPrice: full.lowPrice, lastPrice: full.lastPrice, volume: full.volume,
  quoteVolume: full.quoteVolume, openTime: full.openTime, closeTime: full.closeTime, firstId: full.firstId, lastId: full.lastId, count: full.count,
});

/** Binance's ticker/bookTicker: the best bid and ask. */
export const bookTickerObject = (symbol: string, depth: Depth) => ({
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

export const symbolObject = (m: Market) => ({
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
