import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import ccxt from 'ccxt';
import { loadConfig } from '../src/config.ts';
import { startService, type Service } from '../src/service/service.ts';
import { orderMsg, tradeMsg } from './helpers/ingest.ts';
import { waitFor } from './helpers/service.ts';
import { serviceLog } from './helpers/exposure.ts';

/**
 * Existing Binance clients, unchanged, against a running service: ccxt's binance and binanceus
 * classes with their API URL pointed at it (the only change a user makes), loading the markets
 * and reading candles, trades, tickers, the book and the time. Whatever ccxt parses is compared
 * with what was ingested.
 */

const MINUTE = 60_000;

describe('ccxt (binance, binanceus) against a running service [embedded+memory]', () => {
  let service: Service;
  let base: string;
  const now = Date.now();
  const t0 = Math.floor(now / MINUTE) * MINUTE - 10 * MINUTE;

  before(async () => {
    service = await startService(loadConfig({ PORT: '0', TRADESTORE_DATA_DIR: 'memory://', TRADESTORE_MAINTENANCE_TICK_MS: '0' }), { migrate: true, log: serviceLog });
    base = `http://127.0.0.1:${service.port}`;
    await service.db.query(`INSERT INTO users (id, email) VALUES ('maker', 'maker@example.com')`);
    const messages = [
      ...Array.from({ length: 6 }, (_, i) => tradeMsg('TATA_INR', String(5001 + i), `${130 + i}.25`, `${1 + i}`, t0 + i * 90_000, i % 2 === 0)),
      orderMsg('bid-1', 'TATA_INR', 'buy', '129.5', '3', 'maker', now - 1000),
      orderMsg('ask-1', 'TATA_INR', 'sell', '140.5', '2', 'maker', now - 1000),
    ];
    for (const m of messages) await service.bus.add(JSON.stringify(m));
    await waitFor('ingest', async () => {
      const s = await service.bus.stats();
      return s.lag === 0 && service.worker!.holding === 0;
    });
  });

  after(async () => {
    await service?.stop();
  });

  for (const name of ['binance', 'binanceus'] as const) {
    it(`${name}: markets, candles, trades with the engine's ids, ticker, book and time`, async () => {
      const exchange = new ccxt[name]({ options: { fetchMarkets: ['spot'], fetchCurrencies: false } });
      // The only change a user makes: the REST URL.
      const api = exchange.urls.api as Record<string, unknown>;
      api.public = `${base}/api/v3`;
      const markets = await exchange.loadMarkets();
      assert.ok(markets['TATA/INR'], Object.keys(markets).join(', '));
      assert.equal(markets['TATA/INR']!.id, 'TATA_INR');
      const candles = await exchange.fetchOHLCV('TATA/INR', '1m', t0, 20);
      const stored = (await (await fetch(`${base}/api/v3/klines?symbol=TATA_INR&interval=1m&startTime=${t0}&limit=20`)).json()) as unknown[][];
      assert.deepEqual(candles.map((c) => [c[0], c[1], c[5]]), stored.map((k) => [k[0], Number(k[1]), Number(k[5])]));
      assert.equal(candles.length, 6);
      const trades = await exchange.fetchTrades('TATA/INR', undefined, 10);
      assert.deepEqual(trades.map((t) => [t.id, t.price, t.amount]), Array.from({ length: 6 }, (_, i) => [String(5001 + i), 130 + i + 0.25, 1 + i]));
      assert.deepEqual(trades.map((t) => t.side), trades.map((_, i) => (i % 2 === 0 ? 'sell' : 'buy')), 'the buyer was the maker: a sell');
      const ticker = await exchange.fetchTicker('TATA/INR');
      assert.equal(ticker.last, 135.25);
      assert.equal(ticker.baseVolume, 21);
      assert.equal(ticker.bid, 129.5);
      assert.equal(ticker.ask, 140.5);
      const book = await exchange.fetchOrderBook('TATA/INR');
      assert.deepEqual([book.bids[0], book.asks[0]], [[129.5, 3], [140.5, 2]]);
      assert.ok(Object.keys(await exchange.fetchTickers()).includes('TATA/INR'));
      assert.ok(Math.abs((await exchange.fetchTime())! - Date.now()) < 5000);
    });
  }
});
