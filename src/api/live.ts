import type { Candle, Effects } from '../ingest/apply/types.ts';
import { CHANNELS } from '../ingest/publish.ts';
import { VENUE } from '../cache/cache.ts';
import { isStored, KLINE_INTERVALS, type KlineInterval } from '../store/intervals.ts';
import { klineOf, type Kline } from '../store/klines.ts';
import type { Market } from '../store/market.ts';
import type { Store } from '../store/store.ts';
import { ticker24hObject } from './binanceFormat.ts';

type Send = (payload: object) => void;

/** A Binance stream name, parsed: `tata_inr@trade`, `tata_inr@kline_1m`, `tata_inr@ticker`. */
export interface StreamName {
  name: string;
  market: Market;
  kind: 'trade' | 'kline' | 'ticker';
  interval?: KlineInterval;
}

const STREAM = /^([a-z0-9_.-]{1,50})@(trade|ticker|kline_([0-9]{1,2}[smhdwM]))$/;

/**
 * Binance market streams fed by the ingest service's post-commit publications (Redis pub/sub,
 * or the in-process bus). One bus subscription per channel, shared by every socket that
 * listens; it ends when the last listener leaves.
 */
export class LiveStreams {
  private readonly channels = new Map<string, { listeners: Set<(message: string) => void>; stop: Promise<() => Promise<void>> }>();
  private readonly tickerTimers = new Set<NodeJS.Timeout>();

  constructor(private readonly store: Store) {}

  /** Resolves a stream name against the venue's markets (symbols compare case-insensitively); null if it names nothing. */
  async parse(name: string): Promise<StreamName | null> {
    const match = STREAM.exec(name);
    if (!match) return null;
    const market = (await this.store.market.list()).find((m) => m.exchange === VENUE && m.symbol.toLowerCase() === match[1]);
    if (!market) return null;
    if (match[2] === 'trade' || match[2] === 'ticker') return { name, market, kind: match[2] };
    const interval = match[3]!;
    if (!Object.hasOwn(KLINE_INTERVALS, interval)) return null;
    return { name, market, kind: 'kline', interval: interval as KlineInterval };
  }

  /** Starts sending the stream's events to `send`; returns the function that stops it. */
  async subscribe(stream: StreamName, send: Send): Promise<() => Promise<void>> {
    const symbol = stream.market.symbol;
    if (stream.kind === 'trade') {
      return this.listen(CHANNELS.trades(symbol), (message) => {
        const now = Date.now();
        for (const t of JSON.parse(message) as Effects['trades']) {
          send({ e: 'trade', E: now, s: symbol, t: Number(t.sequence), p: t.price, q: t.quantity, T: new Date(t.executedAt).getTime(), m: t.isBuyerMaker, M: true });
        }
      });
    }
    if (stream.kind === 'kline') {
      const interval = stream.interval!;
      const source = KLINE_INTERVALS[interval].source;
      return this.listen(CHANNELS.candles(symbol, source), (message) => {
        const candles = JSON.parse(message) as Candle[];
        if (isStored(interval)) {
          for (const c of candles) send(klineEvent(symbol, interval, klineOf(c)));
          return;
        }
        // A derived interval: its current candle is re-read, merged from the stored one.
        void this.store.market.klines(stream.market, { interval, limit: 1 }).then((k) => k[0] && send(klineEvent(symbol, interval, k[0])), () => {});
      });
    }
    // Ticker: recomputed after trades, at most once a second per listener.
    let pending: NodeJS.Timeout | null = null;
    let last = 0;
    const emit = async () => {
      pending = null;
      last = Date.now();
      const [t, depth] = await Promise.all([this.store.market.ticker(stream.market), this.store.market.depth(stream.market, 1)]);
      const b = ticker24hObject(t, depth);
      send({
        e: '24hrTicker', E: Date.now(), s: symbol, p: b.priceChange, P: b.priceChangePercent, w: b.weightedAvgPrice, x: b.prevClosePrice,
        c: b.lastPrice, Q: b.lastQty, b: b.bidPrice, B: b.bidQty, a: b.askPrice, A: b.askQty, o: b.openPrice, h: b.highPrice, l: b.lowPrice,
        v: b.volume, q: b.quoteVolume, O: b.openTime, C: b.closeTime, F: b.firstId, L: b.lastId, n: b.count,
      });
    };
    const stop = await this.listen(CHANNELS.trades(symbol), () => {
      if (pending) return;
      pending = setTimeout(() => {
        this.tickerTimers.delete(pending!);
        void emit().catch(() => {});
      }, Math.max(0, 1000 - (Date.now() - last)));
      this.tickerTimers.add(pending);
    });
    return async () => {
      if (pending) clearTimeout(pending);
      await stop();
    };
  }

  private async listen(channel: string, listener: (message: string) => void): Promise<() => Promise<void>> {
    let entry = this.channels.get(channel);
    if (!entry) {
      const listeners = new Set<(message: string) => void>();
      const stop = this.store.bus.subscribe(channel, (message) => {
        for (const l of listeners) {
          try {
            l(message);
          } catch {
            // one bad listener does not stop the others
          }
        }
      });
      entry = { listeners, stop };
      this.channels.set(channel, entry);
    }
    entry.listeners.add(listener);
    await entry.stop;
    const current = entry;
    return async () => {
      current.listeners.delete(listener);
      if (current.listeners.size === 0 && this.channels.get(channel) === current) {
        this.channels.delete(channel);
        await (await current.stop)();
      }
    };
  }

  async close(): Promise<void> {
    for (const t of this.tickerTimers) clearTimeout(t);
    for (const [channel, entry] of this.channels) {
      this.channels.delete(channel);
      await (await entry.stop)().catch(() => {});
    }
  }
}

function klineEvent(symbol: string, interval: KlineInterval, k: Kline) {
  return {
    e: 'kline',
    E: Date.now(),
    s: symbol,
    k: {
      t: k.openTime, T: k.closeTime, s: symbol, i: interval, f: -1, L: -1, o: k.open, c: k.close, h: k.high, l: k.low, v: k.volume,
      n: k.tradeCount, x: Date.now() > k.closeTime, q: k.quoteVolume, V: k.takerBuyVolume, Q: k.takerBuyQuoteVolume, B: '0',
    },
  };
}
