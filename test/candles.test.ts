import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import Big from 'big.js';
import fc from 'fast-check';
import { CANDLE_INTERVALS, fromFixed, mergeMinutes, rollUp, toFixed, type InsertedTrade } from '../src/ingest/apply/candles.ts';

/** The candle of each bucket computed the plain way, with big.js, straight from the trades. */
function recompute(trades: InsertedTrade[], intervalMs: number) {
  const sorted = [...trades].sort((a, b) => a.executedAt.getTime() - b.executedAt.getTime() || Number(a.sequence - b.sequence));
  const out = new Map<string, { open: Big; high: Big; low: Big; close: Big; volume: Big; quote: Big; count: number; tbv: Big; tbq: Big }>();
  for (const t of sorted) {
    const key = `${t.market} ${Math.floor(t.executedAt.getTime() / intervalMs) * intervalMs}`;
    const p = new Big(t.price);
    const q = new Big(t.quantity);
    const c = out.get(key) ?? { open: p, high: p, low: p, close: p, volume: new Big(0), quote: new Big(0), count: 0, tbv: new Big(0), tbq: new Big(0) };
    c.high = p.gt(c.high) ? p : c.high;
    c.low = p.lt(c.low) ? p : c.low;
    c.close = p;
    c.volume = c.volume.plus(q);
    c.quote = c.quote.plus(p.times(q));
    c.count += 1;
    if (!t.isBuyerMaker) {
      c.tbv = c.tbv.plus(q);
      c.tbq = c.tbq.plus(p.times(q));
    }
    out.set(key, c);
  }
  return out;
}

const decimal8 = fc.bigInt({ min: 1n, max: 10n ** 20n - 1n }).map((v) => fromFixed(v).replace(/\.?0+$/, ''));
const trade = fc.record({
  market: fc.constantFrom('A_INR', 'B_INR'),
  price: decimal8,
  quantity: decimal8,
  isBuyerMaker: fc.boolean(),
  // Within a few days, so that every interval has buckets with several minutes in them.
  offset: fc.integer({ min: 0, max: 3 * 86_400_000 }),
});

describe('candles in fixed point', () => {
  it('fixed-point text round-trips and refuses a ninth decimal that is not zero', () => {
    assert.equal(toFixed('134.5'), 13_450_000_000n);
    assert.equal(fromFixed(13_450_000_000n), '134.50000000');
    assert.equal(toFixed('0.00000001'), 1n);
    assert.equal(toFixed('1.000000000'), 100_000_000n);
    assert.equal(fromFixed(toFixed('-2.5')), '-2.50000000');
    assert.equal(fromFixed(5n, 16), '0.0000000000000005');
    assert.throws(() => toFixed('0.000000001'), /more than 8 decimals/);
  });

  it('merging 1m buckets and rolling them up equals recomputing every interval from the trades (property)', () => {
    fc.assert(
      fc.property(fc.array(trade, { minLength: 1, maxLength: 300 }), (generated) => {
        const base = Date.UTC(2026, 0, 1);
        const trades: InsertedTrade[] = generated.map((g, i) => ({
          market: g.market, price: g.price, quantity: g.quantity, isBuyerMaker: g.isBuyerMaker,
          executedAt: new Date(base + g.offset), sequence: BigInt(i + 1),
        }));
        const minutes = mergeMinutes(trades);
        for (const { ms } of Object.values(CANDLE_INTERVALS)) {
          const buckets = ms === 60_000 ? minutes : rollUp(minutes, ms);
          const want = recompute(trades, ms);
          assert.equal(buckets.length, want.size);
          for (const b of buckets) {
            const w = want.get(`${b.market} ${b.openTime}`)!;
            assert.ok(w, 'the same buckets');
            const eq = (got: string, expected: Big, what: string) => assert.ok(new Big(got).eq(expected), `${what}: ${got} != ${expected}`);
            eq(fromFixed(b.open), w.open, 'open');
            eq(fromFixed(b.high), w.high, 'high');
            eq(fromFixed(b.low), w.low, 'low');
            eq(fromFixed(b.close), w.close, 'close');
            eq(fromFixed(b.volume), w.volume, 'volume');
            eq(fromFixed(b.quoteVolume, 16), w.quote, 'quote volume');
            eq(fromFixed(b.takerBuyVolume), w.tbv, 'taker buy volume');
            eq(fromFixed(b.takerBuyQuoteVolume, 16), w.tbq, 'taker buy quote volume');
            assert.equal(b.count, w.count);
          }
        }
      }),
      { numRuns: 200, seed: 20261122 },
    );
  });
});
