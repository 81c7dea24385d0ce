import type { Depth, Kline, Market, PublicTrade, Ticker24h } from '../store/market.ts';

/** Binance prints missing decimals as zero. */
const d = (v: string | null | undefined) => v ?? '0.00000000';
const precision = (step: string | null) => (step && step.includes('.') ? step.replace(/0+$/, '').split('.')[1]!.length : 8);

export const klineRow = (k: Kline) => [
  k.openTime, k.open, k.high, k.low, k.close, k.volume, k.closeTime, k.quoteVolume, k.tradeCount, k.takerBuyVolume, k.takerBuyQuoteVolume, '0',
];

export const tradeObject = (t: PublicTrade) => ({
  id: Number(t.sequence),
  price: t.price,
  qty: t.quantity,
  quoteQty: t.quoteQuantity,
  time: t.time,
  isBuyerMaker: t.isBuyerMaker ?? false,
  isBestMatch: true,
});

/** Every venue trade is its own aggregate: the venue does not split one taker order's fills. */
export const aggTradeObject = (t: PublicTrade) => ({
  a: Number(t.sequence),
  p: t.price,
  q: t.quantity,
  f: Number(t.sequence),
  l: Number(t.sequence),
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
  volume: t.volume,
  quoteVolume: t.quoteVolume,
  openTime: t.openTime,
  closeTime: t.closeTime,
  firstId: t.firstSequence === null ? -1 : Number(t.firstSequence),
  lastId: t.lastSequence === null ? -1 : Number(t.lastSequence),
  count: t.count,
});

export const depthObject = (depth: Depth) => ({ lastUpdateId: Number(depth.lastUpdateId), bids: depth.bids, asks: depth.asks });

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
    { filterType: 'PRICE_FILTER', minPrice: d(m.minPrice ?? m.tickSize), maxPrice: d(m.maxPrice), tickSize: d(m.tickSize) },
    { filterType: 'LOT_SIZE', minQty: d(m.minQuantity ?? m.stepSize), maxQty: d(m.maxQuantity), stepSize: d(m.stepSize) },
  ],
  permissions: ['SPOT'],
  /** Not Binance's: where the market's data comes from ('venue', or the exchange of a feed). */
  exchange: m.exchange,
  pricePrecision: precision(m.tickSize),
});
