import type { Effects } from '../ingest/apply/types.ts';
import { CHANNELS } from '../ingest/publish.ts';
import { VENUE } from '../cache/cache.ts';
import { klineSource, KLINE_INTERVALS, timeZoneOffset, type KlineInterval } from '../store/intervals.ts';
import type { Kline } from '../store/klines.ts';
import type { Market } from '../store/market.ts';
import type { Store } from '../store/store.ts';
import { b8, depthObject, ticker24hObject } from './binanceFormat.ts';
import { publicTradeId } from '../store/tradeIds.ts';

/** Receives a stream's events, each already serialized as JSON (the same text for every listener). */
export type Listener = (json: string) => void;

/** A Binance stream name, parsed: `tata_inr@trade`, `tata_inr@kline_1m`, `tata_inr@ticker`. */
export interface StreamName {
  name: string;
  /** The market (every venue market, for `!ticker@arr` and `!miniTicker@arr`). */
  market: Market;
  /**
   * 'book' and 'stats' are internal: a market's book, that its bookTicker and depth streams are
   * cut from, and its 24-hour statistics, that its ticker streams and the all-market arrays are.
   */
  kind: 'trade' | 'aggTrade' | 'kline' | 'ticker' | 'miniTicker' | 'allTickers' | 'allMiniTickers' | 'bookTicker' | 'depth' | 'book' | 'stats';
  interval?: KlineInterval;
  /** A kline stream's time zone (`@+08:00`), in ms east of UTC. */
  offset?: number;
  /** Levels of a partial book stream (depth5, depth10, depth20). */
  levels?: number;
}

const STREAM = /^([a-z0-9_.-]{1,50})@(trade|aggTrade|ticker|miniTicker|bookTicker|depth(5|10|20)|kline_([0-9]{1,2}[smhdwM])(?:@([+-][0-9]{2}:[0-9]{2}))?)$/;
/** Streams of every market at once. */
const ALL_MARKETS = { '!ticker@arr': 'allTickers', '!miniTicker@arr': 'allMiniTickers' } as const;
/** Internal feeds, which listen for streams rather than for sockets. */
const INTERNAL = /@(book|stats)$/;

/** A stream's listeners and what feeds them; its payloads are computed once for all of them. */
interface Feed {
  listeners: Set<Listener>;
  ready: Promise<() => Promise<void>>;
}

/** The ticker is recomputed after trades at most this often per market; the all-market arrays are sent this often. */
const TICKER_INTERVAL_MS = 1000;
/** A market's book is read after its orders change at most this often (bookTicker and depth streams share the read). */
const BOOK_INTERVAL_MS = 100;
/** Levels read: the deepest partial book stream's (depth20). */
const BOOK_LEVELS = 20;
/** A kline is re-read (with its first and last trade ids) after its source changes at most this often. */
const KLINE_INTERVAL_MS = 250;

/**
 * Binance market streams fed by the ingest service's post-commit publications (Redis pub/sub,
 * or the in-process bus). Fan-out: each stream (a market's trades, one kline interval, the
 * ticker) has one feed, which computes and serializes each payload once, whatever the number of
 * sockets listening, and ends when the last listener leaves. A listener that throws does not
 * stop the others.
 */
export class LiveStreams {
  private readonly feeds = new Map<string, Feed>();
  private readonly timers = new Set<NodeJS.Timeout>();
  /** Payloads that a message made need a database read (tickers, klines, books), for the fan-out tests. */
  computations = 0;
  /** What the WebSocket endpoints count (routes/streams.ts), read when /metrics is scraped. */
  readonly sockets = { connections: 0, received: 0, sent: 0, closedByServer: 0 };

  constructor(private readonly store: Store) {}

  /** Resolves a stream name against the venue's markets (symbols compare case-insensitively); null if it names nothing. */
  async parse(name: string): Promise<StreamName | null> {
    const venue = (await this.store.market.list()).filter((m) => m.exchange === VENUE);
    if (Object.hasOwn(ALL_MARKETS, name) && venue[0]) return { name, market: venue[0], kind: ALL_MARKETS[name as keyof typeof ALL_MARKETS] };
    const match = STREAM.exec(name);
    if (!match) return null;
    const market = venue.find((m) => m.symbol.toLowerCase() === match[1]);
    if (!market) return null;
    if (match[2] === 'trade' || match[2] === 'ticker' || match[2] === 'miniTicker' || match[2] === 'aggTrade' || match[2] === 'bookTicker') return { name, market, kind: match[2] };
    if (match[3]) return { name, market, kind: 'depth', levels: Number(match[3]) };
    const interval = match[4]!;
    const offset = match[5] === undefined ? 0 : timeZoneOffset(match[5]);
    if (!Object.hasOwn(KLINE_INTERVALS, interval) || offset === null) return null;
    return { name, market, kind: 'kline', interval: interval as KlineInterval, offset };
  }

  /** Starts sending the stream's events to `listener`; returns the function that stops it. Rejects when the bus cannot subscribe. */
  async subscribe(stream: StreamName, listener: Listener): Promise<() => Promise<void>> {
    let feed = this.feeds.get(stream.name);
    if (!feed) {
      const listeners = new Set<Listener>();
      const broadcast = (payload: object) => {
        const json = JSON.stringify(payload);
        for (const l of listeners) {
          try {
            l(json);
          } catch {
            // one bad listener does not stop the others
          }
        }
      };
      const created: Feed = { listeners, ready: this.start(stream, broadcast) };
      feed = created;
      this.feeds.set(stream.name, created);
      created.ready.catch(() => {
        if (this.feeds.get(stream.name) === created) this.feeds.delete(stream.name);
      });
    }
    const current = feed;
    current.listeners.add(listener);
    try {
      await current.ready;
    } catch (error) {
      current.listeners.delete(listener);
      throw error;
    }
    let stopped = false;
    return async () => {
      if (stopped) return;
      stopped = true;
      current.listeners.delete(listener);
      if (current.listeners.size === 0 && this.feeds.get(stream.name) === current) {
        this.feeds.delete(stream.name);
        await (await current.ready)();
      }
    };
  }

  /** The feed's source: a bus subscription whose messages become payloads, computed once. */
  private async start(stream: StreamName, broadcast: (payload: object) => void): Promise<() => Promise<void>> {
    const symbol = stream.market.symbol;
    if (stream.kind === 'trade' || stream.kind === 'aggTrade') {
      // Every venue trade is its own aggregate (as /api/v3/aggTrades): the two differ in their names only.
      return this.store.bus.subscribe(CHANNELS.trades(symbol), (message) => {
        const now = Date.now();
        for (const t of parseList<Effects['trades'][number]>(message)) {
          const id = publicTradeId(t.id, t.sequence);
          const [p, q, T] = [b8(t.price), b8(t.quantity), new Date(t.executedAt).getTime()];
          broadcast(stream.kind === 'trade'
            ? { e: 'trade', E: now, s: symbol, t: id, p, q, T, m: t.isBuyerMaker, M: true }
            : { e: 'aggTrade', E: now, s: symbol, a: id, p, q, f: id, l: id, T, m: t.isBuyerMaker, M: true });
        }
      });
    }
    if (stream.kind === 'kline') {
      // After the candles it is made of change (the trades, for 1s), the stream's klines from
      // the last one sent are re-read: the one that closed in between is sent with its final
      // values, then the current one. Each with its first and last trade id; once for every
      // listener, one read at a time.
      const interval = stream.interval!;
      const timeZoneOffset = stream.offset ?? 0;
      const source = klineSource(interval, timeZoneOffset);
      // A kline that closes with no trade after it is sent final at its close time.
      let since: number | undefined;
      return this.throttled(source === 'trades' ? CHANNELS.trades(symbol) : CHANNELS.candles(symbol, source), KLINE_INTERVAL_MS, async (wakeAt) => {
        const klines = await this.store.market.klines(stream.market, since === undefined ? { interval, limit: 1, timeZoneOffset } : { interval, startTime: since, timeZoneOffset });
        for (const k of klines) {
          const ids = await this.store.market.tradeIdRange(stream.market, k.openTime, k.closeTime);
          broadcast(klineEvent(symbol, interval, k, ids));
          since = k.openTime;
        }
        const last = klines.at(-1);
        if (last && Date.now() <= last.closeTime) wakeAt(last.closeTime + 1);
      });
    }
    if (stream.kind === 'book') {
      // The market's book (20 levels), read after its orders change, at most every 100 ms: one
      // read for every bookTicker and depth stream of the market and all their listeners.
      return this.throttled(CHANNELS.ordersByMarket(symbol), BOOK_INTERVAL_MS, async () => {
        broadcast(depthObject(await this.store.market.depth(stream.market, BOOK_LEVELS)));
      });
    }
    if (stream.kind === 'bookTicker' || stream.kind === 'depth') {
      const levels = stream.levels ?? 1;
      const book: StreamName = { name: `${symbol.toLowerCase()}@book`, market: stream.market, kind: 'book' };
      return this.subscribe(book, (json) => {
        const b = JSON.parse(json) as ReturnType<typeof depthObject>;
        if (stream.kind === 'depth') {
          broadcast({ lastUpdateId: b.lastUpdateId, bids: b.bids.slice(0, levels), asks: b.asks.slice(0, levels) });
          return;
        }
        const [bid, ask] = [b.bids[0], b.asks[0]];
        broadcast({ u: b.lastUpdateId, s: symbol, b: bid?.[0] ?? b8(null), B: bid?.[1] ?? b8(null), a: ask?.[0] ?? b8(null), A: ask?.[1] ?? b8(null) });
      });
    }
    if (stream.kind === 'stats') {
      // The market's 24-hour statistics, recomputed after trades at most once a second: one
      // computation for its ticker and miniTicker streams, the all-market arrays and their listeners.
      return this.throttled(CHANNELS.trades(symbol), TICKER_INTERVAL_MS, async () => {
        const [t, depth] = await Promise.all([this.store.market.ticker(stream.market), this.store.market.depth(stream.market, 1)]);
        broadcast(tickerEvent(ticker24hObject(t, depth)));
      });
    }
    if (stream.kind === 'ticker' || stream.kind === 'miniTicker') {
      return this.subscribe(this.statsOf(stream.market), (json) => broadcast(stream.kind === 'ticker' ? JSON.parse(json) : miniTickerEvent(JSON.parse(json))));
    }
    // Every market's tickers: those that changed, as one array at most once a second.
    const changed = new Map<string, object>();
    const subscribed = await Promise.allSettled(
      (await this.store.market.list())
        .filter((m) => m.exchange === VENUE)
        .map((m) => this.subscribe(this.statsOf(m), (json) => {
          const event = JSON.parse(json) as TickerEvent;
          changed.set(event.s, stream.kind === 'allTickers' ? event : miniTickerEvent(event));
        })),
    );
    const stops = subscribed.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
    const stopAll = async () => {
      await Promise.allSettled(stops.map((stop) => stop()));
    };
    // One market that cannot be subscribed fails the stream, and leaves none of the others behind.
    const failed = subscribed.find((s) => s.status === 'rejected');
    if (failed) {
      await stopAll();
      throw failed.reason;
    }
    const timer = setInterval(() => {
      if (changed.size === 0) return;
      broadcast([...changed.values()]);
      changed.clear();
    }, TICKER_INTERVAL_MS);
    return async () => {
      clearInterval(timer);
      await stopAll();
    };
  }

  /** A market's internal statistics feed. */
  private statsOf(market: Market): StreamName {
    return { name: `${market.symbol.toLowerCase()}@stats`, market, kind: 'stats' };
  }

  /**
   * Runs `compute` after messages on `channel`, at most once per `intervalMs` (a message in between
   * schedules one run at the interval's end): a payload that needs a database read is computed
   * once for all listeners, however many commits and sockets there are. `compute` may ask for one
   * more run at a time of its choosing (`wakeAt`, epoch ms; a later request replaces it).
   */
  private async throttled(channel: string, intervalMs: number, compute: (wakeAt: (at: number) => void) => Promise<void>): Promise<() => Promise<void>> {
    let pending: NodeJS.Timeout | null = null;
    let wake: NodeJS.Timeout | null = null;
    // Once stopped, a computation still under way schedules nothing more.
    let stopped = false;
    const wakeAt = (at: number) => {
      if (stopped) return;
      if (wake) {
        clearTimeout(wake);
        this.timers.delete(wake);
      }
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        wake = null;
        schedule(true);
      }, Math.max(0, at - Date.now()));
      wake = timer;
      this.timers.add(timer);
    };
    let last = 0;
    // One computation at a time: while the database is slow, messages meanwhile ask for one more
    // run after it, never for a pile of reads (which could also reach listeners out of order).
    let running = false;
    let again = false;
    /** `timed`: asked for by `wakeAt`, not by a message (not counted in `computations`). */
    const schedule = (timed = false) => {
      if (pending || stopped) return;
      if (running) {
        again = true;
        return;
      }
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        pending = null;
        last = Date.now();
        running = true;
        if (!timed) this.computations += 1;
        void compute(wakeAt)
          .catch(() => {})
          .finally(() => {
            running = false;
            if (again) {
              again = false;
              schedule();
            }
          });
      }, Math.max(0, intervalMs - (Date.now() - last)));
      pending = timer;
      this.timers.add(timer);
    };
    const stop = await this.store.bus.subscribe(channel, () => schedule());
    return async () => {
      stopped = true;
      for (const timer of [pending, wake]) {
        if (!timer) continue;
        clearTimeout(timer);
        this.timers.delete(timer);
      }
      pending = wake = null;
      await stop();
    };
  }

  /** Sockets listening, summed over the streams. */
  get listeners(): number {
    let n = 0;
    // A market's internal book feed listens for its streams, not for sockets.
    for (const [name, f] of this.feeds) if (!INTERNAL.test(name)) n += f.listeners.size;
    return n;
  }

  async close(): Promise<void> {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    for (const [name, feed] of this.feeds) {
      this.feeds.delete(name);
      await (await feed.ready.catch(() => async () => {}))().catch(() => {});
    }
  }
}

/** A publication is a JSON array; anything else on the channel is ignored. */
function parseList<T>(message: string): T[] {
  try {
    const value = JSON.parse(message) as unknown;
    return Array.isArray(value) ? (value as T[]) : [];
  } catch {
    return [];
  }
}

type TickerEvent = ReturnType<typeof tickerEvent>;

/** Binance's 24hrTicker event. */
function tickerEvent(b: ReturnType<typeof ticker24hObject>) {
  return {
    e: '24hrTicker', E: Date.now(), s: b.symbol, p: b.priceChange, P: b.priceChangePercent, w: b.weightedAvgPrice, x: b.prevClosePrice,
    c: b.lastPrice, Q: b.lastQty, b: b.bidPrice, B: b.bidQty, a: b.askPrice, A: b.askQty, o: b.openPrice, h: b.highPrice, l: b.lowPrice,
    v: b.volume, q: b.quoteVolume, O: b.openTime, C: b.closeTime, F: b.firstId, L: b.lastId, n: b.count,
  };
}

/** Binance's 24hrMiniTicker event: the ticker's close, open, high, low and volumes. */
const miniTickerEvent = (t: TickerEvent) => ({ e: '24hrMiniTicker', E: t.E, s: t.s, c: t.c, o: t.o, h: t.h, l: t.l, v: t.v, q: t.q });

function klineEvent(symbol: string, interval: KlineInterval, k: Kline, ids: { first: number; last: number } | null) {
  return {
    e: 'kline',
    E: Date.now(),
    s: symbol,
    k: {
      t: k.openTime, T: k.closeTime, s: symbol, i: interval, f: ids?.first ?? -1, L: ids?.last ?? -1, o: b8(k.open), c: b8(k.close), h: b8(k.high), l: b8(k.low), v: b8(k.volume),
      n: k.tradeCount, x: Date.now() > k.closeTime, q: b8(k.quoteVolume), V: b8(k.takerBuyVolume), Q: b8(k.takerBuyQuoteVolume), B: '0',
    },
  };
}
