import Big from 'big.js';

/**
 * A trading engine in miniature that emits seed 000's messages: users deposit, rest limit
 * orders (locking funds), take them (a trade, both orders' updates, four balance changes) and
 * cancel them (unlocking). It keeps every balance exactly, so each change it sends is feasible,
 * and it knows the state the database must end up in.
 */
export interface SimulatorOptions {
  markets?: { symbol: string; base: string; quote: string; mid: string }[];
  users?: number;
  /** Seed of the pseudo-random sequence: equal seeds give equal streams. */
  seed?: number;
  /**
   * A simulated clock starting here (epoch ms), each event a little later: for tests that need
   * the same stream every time. Without it, events are stamped with the real clock, as an engine's are.
   */
  startMs?: number;
  /** Prefix of user, order and trade ids, so that several simulators can share a database. */
  prefix?: string;
  /**
   * Part of every order and trade id, so that a restarted simulator never reuses an id (an
   * engine's ids are unique for good). Default: the start time in base 36.
   */
  runId?: string;
}

interface Resting {
  id: string;
  market: string;
  userId: string;
  side: 'buy' | 'sell';
  price: Big;
  remaining: Big;
}

export const DEFAULT_MARKETS = [
  { symbol: 'TATA_INR', base: 'TATA', quote: 'INR', mid: '134.50' },
  { symbol: 'RELIANCE_INR', base: 'RELIANCE', quote: 'INR', mid: '2850.00' },
  { symbol: 'HDFC_INR', base: 'HDFC', quote: 'INR', mid: '1620.25' },
];

const msg = (type: string, data: Record<string, unknown>) => JSON.stringify({ type, data });

export class EngineSimulator {
  readonly users: string[];
  readonly markets: NonNullable<SimulatorOptions['markets']>;
  /** What the database must hold once every message is applied. */
  readonly expected = {
    balances: new Map<string, { available: Big; locked: Big }>(),
    filled: new Map<string, Big>(),
    trades: 0,
    events: 0,
  };
  private state: number;
  private clock: number;
  private readonly simulatedClock: boolean;
  private readonly prefix: string;
  private readonly idPrefix: string;
  private readonly resting: Resting[] = [];
  private readonly mids = new Map<string, Big>();
  private nextOrder = 0;
  private nextTrade = 0;

  constructor(options: SimulatorOptions = {}) {
    this.markets = options.markets ?? DEFAULT_MARKETS;
    this.prefix = options.prefix ?? 'sim';
    this.users = Array.from({ length: options.users ?? 10 }, (_, i) => `${this.prefix}-u${i + 1}`);
    this.state = options.seed ?? 42;
    this.simulatedClock = options.startMs !== undefined;
    this.clock = options.startMs ?? Date.now();
    this.idPrefix = `${this.prefix}-${options.runId ?? Date.now().toString(36)}`;
    for (const m of this.markets) this.mids.set(m.symbol, new Big(m.mid));
  }

  private random(): number {
    // xorshift32: small, deterministic, good enough to vary prices and sizes.
    let x = this.state;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.state = x >>> 0;
    return this.state / 4294967296;
  }

  private pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.random() * items.length)]!;
  }

  private balance(userId: string, asset: string) {
    const key = `${userId}\u0000${asset}`;
    let b = this.expected.balances.get(key);
    if (!b) this.expected.balances.set(key, (b = { available: new Big(0), locked: new Big(0) }));
    return b;
  }

  private change(userId: string, asset: string, available: Big, locked: Big, referenceId: string, changeType = 'trade'): string {
    const b = this.balance(userId, asset);
    b.available = b.available.plus(available);
    b.locked = b.locked.plus(locked);
    return msg('BALANCE_UPDATE', {
      userId,
      asset,
      availableChange: available.toFixed(),
      lockedChange: locked.toFixed(),
      referenceId,
      changeType,
    });
  }

  private emit(messages: string[]): string[] {
    this.expected.events += messages.length;
    return messages;
  }

  /** Deposits for every user: quote currency and every base asset. */
  deposits(): string[] {
    const out: string[] = [];
    const assets = new Set(this.markets.flatMap((m) => [m.base, m.quote]));
    for (const user of this.users) {
      for (const asset of assets) {
        out.push(this.change(user, asset, new Big(asset === 'INR' ? '10000000' : '100000'), new Big(0), `dep-${user}-${asset}`, 'deposit'));
      }
    }
    return this.emit(out);
  }

  /** One engine action: rest an order, take one, or cancel one. */
  step(): string[] {
    const jitter = 1 + Math.floor(this.random() * 40);
    this.clock = this.simulatedClock ? this.clock + jitter : Math.max(this.clock, Date.now());
    const roll = this.random();
    if (this.resting.length > 0 && roll < 0.55) return this.emit(this.take());
    if (this.resting.length > 20 && roll < 0.65) return this.emit(this.cancel());
    return this.emit(this.rest());
  }

  private rest(): string[] {
    const market = this.pick(this.markets);
    const userId = this.pick(this.users);
    const side = this.random() < 0.5 ? 'buy' : 'sell';
    const mid = this.mids.get(market.symbol)!;
    const ticks = Math.floor(this.random() * 40) + 1;
    let price = (side === 'buy' ? mid.minus(ticks * 0.01) : mid.plus(ticks * 0.01)).round(2);
    // A resting order never crosses the book: a buy stays below the best ask, a sell above the best bid.
    const opposite = this.resting.filter((o) => o.market === market.symbol && o.side !== side).map((o) => o.price);
    if (opposite.length) {
      const best = opposite.reduce((a, b) => (side === 'buy' ? (b.lt(a) ? b : a) : b.gt(a) ? b : a));
      if (side === 'buy' && price.gte(best)) price = best.minus('0.01');
      if (side === 'sell' && price.lte(best)) price = best.plus('0.01');
    }
    if (price.lte(0)) return [];
    const quantity = new Big(Math.floor(this.random() * 5000) + 1).div(1000);
    const id = `${this.idPrefix}-o${++this.nextOrder}`;
    const [asset, amount] = side === 'buy' ? [market.quote, price.times(quantity)] : [market.base, quantity];
    const available = this.balance(userId, asset).available;
    if (available.lt(amount)) return [];
    this.resting.push({ id, market: market.symbol, userId, side, price, remaining: quantity });
    this.expected.filled.set(id, new Big(0));
    return [
      msg('ORDER_UPDATE', { orderId: id, market: market.symbol, price: price.toFixed(), quantity: quantity.toFixed(), side, userId, timestamp: this.clock }),
      this.change(userId, asset, amount.times(-1), amount, id),
    ];
  }

  private take(): string[] {
    const index = Math.floor(this.random() * this.resting.length);
    const maker = this.resting[index]!;
    const market = this.markets.find((m) => m.symbol === maker.market)!;
    const takerId = this.pick(this.users.filter((u) => u !== maker.userId));
    const quantity = maker.remaining.times(Math.floor(this.random() * 4) + 1).div(4).round(3, Big.roundDown);
    if (quantity.lte(0)) return [];
    const quote = maker.price.times(quantity);
    const takerSide = maker.side === 'buy' ? 'sell' : 'buy';
    const [takerPays, takerPaysAmount] = takerSide === 'buy' ? [market.quote, quote] : [market.base, quantity];
    if (this.balance(takerId, takerPays).available.lt(takerPaysAmount)) return [];
    const takerOrder = `${this.idPrefix}-o${++this.nextOrder}`;
    const tradeId = `${this.idPrefix}-t${++this.nextTrade}`;
    maker.remaining = maker.remaining.minus(quantity);
    if (maker.remaining.eq(0)) this.resting.splice(index, 1);
    this.expected.filled.set(maker.id, this.expected.filled.get(maker.id)!.plus(quantity));
    this.expected.filled.set(takerOrder, quantity);
    this.expected.trades += 1;
    this.mids.set(market.symbol, maker.price);
    const buyer = maker.side === 'buy' ? maker : { id: takerOrder, userId: takerId };
    const seller = maker.side === 'sell' ? maker : { id: takerOrder, userId: takerId };
    const out = [
      msg('TRADE_ADDED', {
        market: market.symbol,
        id: tradeId,
        isBuyerMaker: maker.side === 'buy',
        price: maker.price.toFixed(),
        quantity: quantity.toFixed(),
        quoteQuantity: quote.toFixed(),
        timestamp: this.clock,
        buyerOrderId: buyer.id,
        sellerOrderId: seller.id,
        buyerId: buyer.userId,
        sellerId: seller.userId,
      }),
      msg('ORDER_UPDATE', {
        orderId: takerOrder,
        executedQty: quantity.toFixed(),
        market: market.symbol,
        price: maker.price.toFixed(),
        quantity: quantity.toFixed(),
        side: takerSide,
        userId: takerId,
        timestamp: this.clock,
      }),
      msg('ORDER_UPDATE', { orderId: maker.id, executedQty: quantity.toFixed() }),
    ];
    if (maker.side === 'buy') {
      out.push(
        this.change(maker.userId, market.quote, new Big(0), quote.times(-1), tradeId),
        this.change(maker.userId, market.base, quantity, new Big(0), tradeId),
        this.change(takerId, market.base, quantity.times(-1), new Big(0), tradeId),
        this.change(takerId, market.quote, quote, new Big(0), tradeId),
      );
    } else {
      out.push(
        this.change(maker.userId, market.base, new Big(0), quantity.times(-1), tradeId),
        this.change(maker.userId, market.quote, quote, new Big(0), tradeId),
        this.change(takerId, market.quote, quote.times(-1), new Big(0), tradeId),
        this.change(takerId, market.base, quantity, new Big(0), tradeId),
      );
    }
    return out;
  }

  private cancel(): string[] {
    const index = Math.floor(this.random() * this.resting.length);
    const order = this.resting.splice(index, 1)[0]!;
    const market = this.markets.find((m) => m.symbol === order.market)!;
    const [asset, amount] = order.side === 'buy' ? [market.quote, order.price.times(order.remaining)] : [market.base, order.remaining];
    return [
      msg('ORDER_UPDATE', { orderId: order.id, status: 'cancelled' }),
      this.change(order.userId, asset, amount, amount.times(-1), order.id),
    ];
  }

  /** At least `count` messages (whole engine actions are never split). */
  batch(count: number): string[] {
    const out: string[] = [];
    while (out.length < count) out.push(...this.step());
    return out;
  }
}
