import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import Big from 'big.js';
import WebSocket from 'ws';
import parsePrometheus from 'parse-prometheus-text-format';
import { loadConfig } from '../src/config.ts';
import { startService, type Service } from '../src/service/service.ts';
import { createServerDatabase, serverUnavailable } from './helpers/backends.ts';
import { redisUnavailable, testNames } from './helpers/redis.ts';
import { depositMsg, orderMsg, tradeMsg } from './helpers/ingest.ts';
import { serviceLog } from './helpers/exposure.ts';

const REQUIRE = process.env.TRADESTORE_REQUIRE_SERVERS === '1';
const REDIS_URL = process.env.TEST_REDIS_URL || 'redis://127.0.0.1:6379';
const MINUTE = 60_000;
const METRICS_TOKEN = 'metrics-token-0123456789';

async function waitFor<T>(what: string, probe: () => Promise<T | undefined | null | false>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const norm = (v: string) => new Big(v).toFixed();

for (const setup of ['embedded+memory', 'postgres+redis'] as const) {
  describe(`API [${setup}]`, async () => {
    const reason = setup === 'postgres+redis' && !REQUIRE ? ((await serverUnavailable()) ?? (await redisUnavailable())) : null;
    if (reason) {
      it('skipped', { skip: reason }, () => {});
      return;
    }
    let service: Service;
    let base: string;
    let cleanup = async () => {};
    let aliceKey: string;
    let bobKey: string;
    let adminKey: string;
    let keyPrefix = '';
    const now = Date.now();
    const t0 = Math.floor(now / MINUTE) * MINUTE - 30 * MINUTE;

    /** Events through the service's own bus and worker, then waits until all are applied. */
    async function send(messages: object[]) {
      for (const m of messages) await service.bus.add(JSON.stringify(m));
      await waitFor('ingest', async () => {
        const s = await service.bus.stats();
        return s.lag === 0 && s.listLength === 0;
      });
    }
    const get = async (path: string, key?: string) => {
      const response = await fetch(`${base}${path}`, { headers: key ? { 'X-API-Key': key } : {} });
      return { status: response.status, headers: response.headers, body: (await response.json()) as any };
    };

    before(async () => {
      const env: Record<string, string> = { PORT: '0', TRADESTORE_RATE_LIMIT: '100', TRADESTORE_RATE_WINDOW_MS: '60000', TRADESTORE_WS_CONNECT_LIMIT: '1000', TRADESTORE_METRICS_TOKEN: METRICS_TOKEN };
      if (setup === 'embedded+memory') env.TRADESTORE_DATA_DIR = 'memory://';
      else {
        const server = await createServerDatabase();
        const t = testNames();
        Object.assign(env, { DATABASE_URL: server.url, ...t.env });
        keyPrefix = t.names.keyPrefix;
        cleanup = async () => {
          await t.cleanup();
          await server.drop();
        };
      }
      service = await startService(loadConfig(env), { migrate: true, log: serviceLog });
      base = `http://127.0.0.1:${service.port}`;
      await service.db.query(`INSERT INTO users (id, email) VALUES ('alice', 'a@example.com'), ('bob', 'b@example.com'), ('root', 'r@example.com')`);
      aliceKey = (await service.store.apiKeys.create('alice', ['read'])).key;
      bobKey = (await service.store.apiKeys.create('bob', ['read', 'trade'])).key;
      adminKey = (await service.store.apiKeys.create('root', ['read', 'admin'])).key;
      const trades: object[] = [];
      for (let i = 0; i < 120; i++) {
        trades.push(tradeMsg('TATA_INR', `h${i}`, (130 + (i % 17) / 4).toFixed(2), `${1 + (i % 5)}.5`, t0 + i * 14_000 + (i % 3), i % 2 === 0));
      }
      await send([
        ...trades,
        depositMsg('alice', 'INR', '1000'),
        depositMsg('bob', 'INR', '50'),
        orderMsg('ao-1', 'TATA_INR', 'buy', '131', '2', 'alice'),
        orderMsg('ao-2', 'TATA_INR', 'sell', '140', '1', 'alice'),
        orderMsg('bo-1', 'TATA_INR', 'buy', '132', '1', 'bob'),
      ]);
    });
    after(async () => {
      await service?.stop();
      await cleanup();
    });

    it('serves Binance klines equal to the native ones and to the stored candles, in Binance\'s array shape', async () => {
      const { status, body } = await get('/api/v3/klines?symbol=TATA_INR&interval=1m&limit=1000');
      assert.equal(status, 200);
      assert.ok(body.length >= 28);
      const native = await get('/v1/markets/TATA_INR/klines?interval=1m&limit=1000');
      for (const [i, row] of (body as unknown[][]).entries()) {
        assert.equal(row.length, 12);
        const [openTime, open, high, low, close, volume, closeTime, quoteVolume, count, takerBase, takerQuote, ignore] = row;
        assert.equal(typeof openTime, 'number');
        assert.equal(closeTime, (openTime as number) + MINUTE - 1);
        for (const v of [open, high, low, close, volume, quoteVolume, takerBase, takerQuote, ignore]) assert.equal(typeof v, 'string');
        assert.equal(typeof count, 'number');
        const k = native.body.klines[i];
        assert.deepEqual([k.openTime, k.open, k.close, k.volume, k.tradeCount], [openTime, open, close, volume, count]);
      }
      // Recomputation from the raw trades of the same minutes.
      const { rows } = await service.db.query<{ t: Date; n: number; v: string }>(
        `SELECT date_bin('1 minute', executed_at, TIMESTAMPTZ '1970-01-01') AS t, count(*)::int AS n, sum(quantity)::text AS v FROM trades WHERE market = 'TATA_INR' GROUP BY 1 ORDER BY 1`,
      );
      assert.deepEqual((body as unknown[][]).map((r) => [r[0], r[8], norm(r[5] as string)]), rows.map((r) => [r.t.getTime(), r.n, norm(r.v)]));
      const derived = await get('/api/v3/klines?symbol=TATA_INR&interval=3m&limit=5');
      assert.equal(derived.status, 200);
      assert.ok(derived.body.every((r: unknown[]) => (r[0] as number) % (3 * MINUTE) === 0 && (r[6] as number) === (r[0] as number) + 3 * MINUTE - 1));
    });

    it('matches Binance\'s documented shapes for trades, aggTrades, tickers, avgPrice, depth, exchangeInfo, ping and time', async () => {
      const trades = await get('/api/v3/trades?symbol=TATA_INR&limit=3');
      assert.deepEqual(Object.keys(trades.body[0]).sort(), ['id', 'isBestMatch', 'isBuyerMaker', 'price', 'qty', 'quoteQty', 'time'].sort());
      assert.equal(typeof trades.body[0].id, 'number');
      const agg = await get('/api/v3/aggTrades?symbol=TATA_INR&limit=3');
      assert.deepEqual(Object.keys(agg.body[0]).sort(), ['M', 'T', 'a', 'f', 'l', 'm', 'p', 'q'].sort());
      const ticker = await get('/api/v3/ticker/24hr?symbol=TATA_INR');
      assert.deepEqual(Object.keys(ticker.body).sort(), [
        'askPrice', 'askQty', 'bidPrice', 'bidQty', 'closeTime', 'count', 'firstId', 'highPrice', 'lastId', 'lastPrice', 'lastQty', 'lowPrice',
        'openPrice', 'openTime', 'prevClosePrice', 'priceChange', 'priceChangePercent', 'quoteVolume', 'symbol', 'volume', 'weightedAvgPrice',
      ].sort());
      assert.equal(ticker.body.count, 120);
      assert.equal(norm(ticker.body.bidPrice), '132');
      assert.equal(norm(ticker.body.askPrice), '140');
      const all = await get('/api/v3/ticker/24hr');
      assert.ok(Array.isArray(all.body) && all.body.some((t: { symbol: string }) => t.symbol === 'TATA_INR'));
      const price = await get('/api/v3/ticker/price?symbol=TATA_INR');
      assert.deepEqual(Object.keys(price.body).sort(), ['price', 'symbol']);
      const avg = await get('/api/v3/avgPrice?symbol=TATA_INR');
      assert.deepEqual(Object.keys(avg.body).sort(), ['closeTime', 'mins', 'price']);
      const depth = await get('/api/v3/depth?symbol=TATA_INR&limit=5');
      assert.deepEqual(depth.body.bids.map((l: string[]) => l.map(norm)), [['132', '1'], ['131', '2']]);
      assert.deepEqual(depth.body.asks.map((l: string[]) => l.map(norm)), [['140', '1']]);
      assert.equal(typeof depth.body.lastUpdateId, 'number');
      const info = await get('/api/v3/exchangeInfo?symbol=TATA_INR');
      const s = info.body.symbols[0];
      assert.equal(s.symbol, 'TATA_INR');
      assert.equal(s.status, 'TRADING');
      assert.deepEqual(s.filters.map((f: { filterType: string }) => f.filterType), ['PRICE_FILTER', 'LOT_SIZE']);
      assert.deepEqual(Object.keys(s.filters[0]).sort(), ['filterType', 'maxPrice', 'minPrice', 'tickSize']);
      assert.deepEqual(Object.keys(s.filters[1]).sort(), ['filterType', 'maxQty', 'minQty', 'stepSize']);
      assert.deepEqual((await get('/api/v3/ping')).body, {});
      assert.equal(typeof (await get('/api/v3/time')).body.serverTime, 'number');
    });

    it('prints decimals as Binance does, and answers symbols, MINI, bookTicker, uiKlines, rateLimits and unknown endpoints as Binance does', async () => {
      // Every decimal string of every /api/v3 answer has at least 8 places (Binance's "134.50000000").
      const paths = [
        '/api/v3/klines?symbol=TATA_INR&interval=1m&limit=5', '/api/v3/uiKlines?symbol=TATA_INR&interval=1h', '/api/v3/trades?symbol=TATA_INR&limit=5',
        '/api/v3/aggTrades?symbol=TATA_INR&limit=5', '/api/v3/ticker/24hr?symbol=TATA_INR', '/api/v3/ticker/24hr', '/api/v3/ticker/price',
        '/api/v3/ticker/bookTicker', '/api/v3/avgPrice?symbol=TATA_INR', '/api/v3/depth?symbol=TATA_INR&limit=5', '/api/v3/exchangeInfo',
      ];
      const loose: string[] = [];
      const walk = (path: string, key: string, v: unknown) => {
        if (Array.isArray(v)) v.forEach((x, i) => walk(path, `${key}[${i}]`, x));
        else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) walk(path, k, x);
        // priceChangePercent has 3 places at Binance too; a kline's last field is Binance's unused "0".
        else if (typeof v === 'string' && /^-?\d+(\.\d+)?$/.test(v) && key !== 'priceChangePercent' && !/\[11\]$/.test(key) && !/^-?\d+\.\d{8,}$/.test(v)) loose.push(`${path} ${key}=${v}`);
      };
      for (const path of paths) {
        const r = await get(path);
        assert.equal(r.status, 200, `${path}: ${JSON.stringify(r.body)}`);
        walk(path, '', r.body);
      }
      assert.deepEqual(loose.slice(0, 10), []);
      assert.deepEqual((await get('/api/v3/uiKlines?symbol=TATA_INR&interval=1m&limit=3')).body, (await get('/api/v3/klines?symbol=TATA_INR&interval=1m&limit=3')).body);
      const prices = await get('/api/v3/ticker/price?symbols=%5B%22TATA_INR%22%5D');
      assert.deepEqual(prices.body.map((p: { symbol: string }) => p.symbol), ['TATA_INR'], 'symbols is honoured');
      for (const endpoint of ['ticker/24hr', 'ticker/price', 'ticker/bookTicker']) {
        const nope = await get(`/api/v3/${endpoint}?symbols=%5B%22NOPE%22%5D`);
        assert.deepEqual([nope.status, nope.body], [400, { code: -1121, msg: 'Invalid symbol.' }], endpoint);
      }
      const mini = await get('/api/v3/ticker/24hr?symbol=TATA_INR&type=MINI');
      assert.deepEqual(Object.keys(mini.body).sort(), ['closeTime', 'count', 'firstId', 'highPrice', 'lastId', 'lastPrice', 'lowPrice', 'openPrice', 'openTime', 'quoteVolume', 'symbol', 'volume']);
      const book = await get('/api/v3/ticker/bookTicker?symbol=TATA_INR');
      assert.deepEqual(Object.keys(book.body), ['symbol', 'bidPrice', 'bidQty', 'askPrice', 'askQty']);
      const info = await get('/api/v3/exchangeInfo');
      assert.deepEqual(info.body.rateLimits, [{ rateLimitType: 'RAW_REQUESTS', interval: 'MINUTE', intervalNum: 1, limit: 100 }]);
      assert.ok(info.body.symbols.every((m: { baseAsset: string; quoteAsset: string }) => m.baseAsset && m.quoteAsset), 'instruments without assets are not listed as spot markets');
      for (const m of info.body.symbols as { symbol: string; filters: Record<string, string>[] }[]) {
        const price = m.filters.find((f) => f.filterType === 'PRICE_FILTER')!;
        const lot = m.filters.find((f) => f.filterType === 'LOT_SIZE')!;
        // The minimums are on the tick and the step, as Binance's filters require.
        assert.ok(new Big(price.minPrice!).mod(price.tickSize!).eq(0) && new Big(price.minPrice!).gt(0), `${m.symbol} ${JSON.stringify(price)}`);
        assert.ok(new Big(lot.minQty!).mod(lot.stepSize!).eq(0) && new Big(lot.minQty!).gt(0), `${m.symbol} ${JSON.stringify(lot)}`);
      }
      const unknown = await fetch(`${base}/api/v3/nope`);
      assert.equal(unknown.status, 404);
      const badKey = await fetch(`${base}/api/v3/klines?symbol=TATA_INR&interval=1m`, { headers: { 'X-MBX-APIKEY': 'ts_000000000000_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' } });
      assert.deepEqual([badKey.status, ((await badKey.json()) as { code: number }).code], [401, -1002]);
    });

    it('answers bad input with a 400 that names the parameter, and Binance\'s error codes under /api/v3', async () => {
      assert.deepEqual((await get('/api/v3/klines?symbol=NOPE_INR&interval=1m')).body, { code: -1121, msg: 'Invalid symbol.' });
      assert.deepEqual((await get('/api/v3/klines?symbol=TATA_INR&interval=7m')).body, { code: -1120, msg: 'Invalid interval.' });
      const missing = await get('/api/v3/klines?symbol=TATA_INR');
      assert.equal(missing.status, 400);
      assert.equal(missing.body.code, -1102);
      const badLimit = await get('/api/v3/klines?symbol=TATA_INR&interval=1m&limit=abc');
      assert.equal(badLimit.body.code, -1130);
      assert.match(badLimit.body.msg, /limit/);
      const native = await get('/v1/markets/TATA_INR/klines?interval=1m&startTime=yesterday');
      assert.equal(native.status, 400);
      assert.equal(native.body.error.parameter, 'startTime');
      assert.equal((await get('/v1/markets/NOPE_INR/ticker')).status, 404);
      // Limits are capped, not refused.
      assert.ok((await get('/api/v3/klines?symbol=TATA_INR&interval=1m&limit=100000')).status === 200);
    });

    it('serves 1s klines from the trades and klines in a time zone (timeZone), and refuses a zone Binance would', async () => {
      const seconds = await get('/api/v3/klines?symbol=TATA_INR&interval=1s&limit=1000');
      assert.equal(seconds.status, 200);
      assert.equal(seconds.body.length, 120, 'one second kline per second with trades (each trade here has its own second)');
      assert.ok(seconds.body.every((r: unknown[]) => (r[0] as number) % 1000 === 0 && r[6] === (r[0] as number) + 999 && r[8] === 1));
      // +05:45 moves 1h buckets by 45 minutes; an unencoded "+" (a space once decoded) means the same.
      for (const zone of ['%2B05:45', '+05:45', '5:45']) {
        const shifted = await get(`/api/v3/klines?symbol=TATA_INR&interval=1h&timeZone=${zone}`);
        assert.equal(shifted.status, 200, zone);
        assert.ok(shifted.body.every((r: unknown[]) => ((r[0] as number) + 45 * MINUTE) % (60 * MINUTE) === 0), zone);
        assert.equal(shifted.body.reduce((n: number, r: unknown[]) => n + (r[8] as number), 0), 120);
      }
      const native = await get('/v1/markets/TATA_INR/klines?interval=1d&timeZone=-3:30');
      assert.ok(native.body.klines.every((k: { openTime: number }) => (k.openTime - 3.5 * 60 * MINUTE) % (24 * 60 * MINUTE) === 0));
      for (const zone of ['15', '-13', '1:60', '0:01', '5:50', 'UTC', 'Europe/Paris']) {
        assert.equal((await get(`/api/v3/klines?symbol=TATA_INR&interval=1h&timeZone=${zone}`)).body.code, -1130, zone);
        assert.equal((await get(`/v1/markets/TATA_INR/klines?interval=1h&timeZone=${zone}`)).body.error.parameter, 'timeZone', zone);
      }
    });

    it('serves the rolling-window and trading-day tickers, each equal to the trades of its window', async () => {
      const count = async (from: number, to: number) =>
        Number((await service.db.query<{ n: string }>(`SELECT count(*)::text AS n FROM trades WHERE market = 'TATA_INR' AND executed_at >= $1 AND executed_at <= $2`, [new Date(from), new Date(to)])).rows[0]!.n);
      const rolling = await get('/api/v3/ticker?symbol=TATA_INR&windowSize=15m');
      assert.equal(rolling.status, 200);
      assert.deepEqual(Object.keys(rolling.body).sort(), ['closeTime', 'count', 'firstId', 'highPrice', 'lastId', 'lastPrice', 'lowPrice', 'openPrice', 'openTime', 'priceChange', 'priceChangePercent', 'quoteVolume', 'symbol', 'volume', 'weightedAvgPrice']);
      assert.equal(rolling.body.closeTime - rolling.body.openTime, 15 * MINUTE);
      assert.equal(rolling.body.count, await count(rolling.body.openTime, rolling.body.closeTime));
      assert.ok(rolling.body.count > 0 && rolling.body.count < 120);
      const day = await get('/api/v3/ticker?symbols=["TATA_INR"]&windowSize=1d&type=MINI');
      const full = await get('/api/v3/ticker/24hr?symbol=TATA_INR');
      assert.deepEqual([day.body[0].count, day.body[0].volume, day.body[0].firstId, day.body[0].lastId], [full.body.count, full.body.volume, full.body.firstId, full.body.lastId]);
      assert.equal(day.body[0].priceChange, undefined, 'MINI leaves out the changes');
      for (const zone of ['0', '-12:00', '14']) {
        const trading = await get(`/api/v3/ticker/tradingDay?symbol=TATA_INR&timeZone=${zone}`);
        assert.equal(trading.status, 200, zone);
        assert.equal(trading.body.closeTime - trading.body.openTime, 24 * 60 * MINUTE - 1);
        assert.ok(trading.body.openTime <= Date.now() && Date.now() <= trading.body.closeTime);
        assert.equal(trading.body.count, await count(trading.body.openTime, trading.body.closeTime), zone);
      }
      assert.equal((await get('/api/v3/ticker?windowSize=1h')).body.code, -1102, 'a symbol is required');
      for (const size of ['60m', '24h', '8d', '0m', '1w', '1']) assert.equal((await get(`/api/v3/ticker?symbol=TATA_INR&windowSize=${size}`)).body.code, -1130, size);
    });

    it('refuses injection strings in every kind of parameter, and the tables are still there', async () => {
      const attacks = ["TATA_INR'; DROP TABLE trades; --", "1m; DROP TABLE ohlcv_1m", "1 OR 1=1", '../../etc/passwd', '"><script>'];
      for (const a of attacks) {
        const q = encodeURIComponent(a);
        for (const path of [
          `/api/v3/klines?symbol=${q}&interval=1m`, `/api/v3/klines?symbol=TATA_INR&interval=${q}`, `/api/v3/klines?symbol=TATA_INR&interval=1m&limit=${q}`,
          `/api/v3/trades?symbol=${q}`, `/api/v3/depth?symbol=TATA_INR&limit=${q}`, `/v1/markets/${q}/klines?interval=1m`,
          `/v1/markets/TATA_INR/klines?interval=${q}`, `/v1/account/orders?cursor=${q}`, `/v1/account/orders?status=${q}`,
          `/v1/account/trades?symbol=${q}`, `/v1/account/orders/${q}`,
        ]) {
          const r = await get(path, aliceKey);
          assert.ok([400, 404].includes(r.status), `${path} → ${r.status}`);
        }
      }
      const { rows } = await service.db.query<{ n: string }>(`SELECT count(*)::text AS n FROM trades`);
      assert.equal(rows[0]!.n, '120');
      assert.ok((await service.db.query(`SELECT 1 FROM ohlcv_1m LIMIT 1`)).rows.length);
    });

    it("requires a key for account data, and a key never sees another user's orders or balances", async () => {
      assert.equal((await get('/v1/account/balances')).status, 401);
      assert.equal((await get('/v1/account/balances', 'ts_000000000000_' + 'x'.repeat(32))).status, 401);
      const a = await get('/v1/account/orders/open', aliceKey);
      assert.deepEqual(a.body.orders.map((o: { id: string }) => o.id).sort(), ['ao-1', 'ao-2']);
      const b = await get('/v1/account/orders/open', bobKey);
      assert.deepEqual(b.body.orders.map((o: { id: string }) => o.id), ['bo-1']);
      assert.equal((await get('/v1/account/orders/ao-1', bobKey)).status, 404);
      const ab = await get('/v1/account/balances', aliceKey);
      assert.deepEqual(ab.body.balances.map((x: { asset: string; available: string }) => [x.asset, norm(x.available)]), [['INR', '1000']]);
      const bb = await get('/v1/account/balances', bobKey);
      assert.deepEqual(bb.body.balances.map((x: { asset: string; available: string }) => [x.asset, norm(x.available)]), [['INR', '50']]);
      const page = await get('/v1/account/orders?limit=1', aliceKey);
      assert.equal(page.body.items.length, 1);
      const next = await get(`/v1/account/orders?limit=1&cursor=${page.body.nextCursor}`, aliceKey);
      assert.notEqual(next.body.items[0].id, page.body.items[0].id);
      assert.equal((await get('/v1/admin/dead-letters', aliceKey)).status, 403);
      assert.equal((await get('/v1/admin/dead-letters', adminKey)).status, 200);
    });

    it('lists dead letters with previews, never whole payloads, and serves one field byte for byte', async () => {
      const payload = JSON.stringify({ type: 'NOT_A_TYPE', data: { pad: 'p'.repeat(5000) } });
      await service.bus.add(payload);
      await waitFor('dead-lettered', async () => (await service.bus.stats()).deadLetters > 0 && (await service.bus.stats()).lag === 0);
      const list = await get('/v1/admin/dead-letters?limit=1000', adminKey);
      assert.equal(list.status, 200);
      const letter = list.body.deadLetters.find((l: { reason: string }) => l.reason.startsWith('unknown type "NOT_A_TYPE"'));
      assert.deepEqual(letter.fields.map((f: { name: string; bytes: number; preview: string }) => [f.name, f.bytes, f.preview.length]), [['payload', payload.length, 200]]);
      assert.ok(JSON.stringify(list.body).length < 20_000, 'a listing carries previews only');
      const whole = await fetch(`${base}/v1/admin/dead-letters/${letter.id}/fields/payload`, { headers: { 'X-API-Key': adminKey } });
      assert.equal(whole.status, 200);
      assert.equal(whole.headers.get('content-type'), 'application/octet-stream');
      assert.equal(await whole.text(), payload);
      assert.equal((await get(`/v1/admin/dead-letters/${letter.id}/fields/nope`, adminKey)).status, 404);
      assert.equal((await get('/v1/admin/dead-letters/0:1-0/fields/payload', adminKey)).status, 404);
      assert.equal((await get('/v1/admin/dead-letters/1-0/fields/payload', adminKey)).status, 400, 'an id without its shard');
      assert.equal((await get('/v1/admin/dead-letters/not-an-id/fields/payload', adminKey)).status, 400);
      assert.equal((await get(`/v1/admin/dead-letters/${letter.id}/fields/payload`, aliceKey)).status, 403);
      const after = await get(`/v1/admin/dead-letters?after=${letter.id}`, adminKey);
      assert.deepEqual(after.body, { deadLetters: [], next: null });
    });

    it('serves the OpenAPI document at /docs', async () => {
      const doc = await get('/docs/json');
      assert.equal(doc.status, 200);
      assert.ok(doc.body.openapi.startsWith('3.'));
      for (const path of ['/api/v3/klines', '/v1/markets/{symbol}/klines', '/v1/account/balances', '/health', '/metrics', '/ws', '/ws/{stream}', '/stream']) assert.ok(doc.body.paths[path], path);
      for (const [path, ops] of Object.entries<any>(doc.body.paths)) {
        for (const [method, op] of Object.entries<any>(ops)) {
          const codes = Object.keys(op.responses ?? {});
          // Every operation documents its errors, the rate limit included; a WebSocket its upgrade.
          const expected = path.startsWith('/ws') || path === '/stream' ? ['101', '429'] : path.startsWith('/api/v3/') ? ['400', '401', '429', '500'] : ['400', '401', '403', '404', '429', '500'];
          for (const code of expected) assert.ok(codes.includes(code), `${method} ${path} documents ${code} (has ${codes.join(',')})`);
          for (const p of op.parameters ?? []) {
            if (p.name !== 'limit') continue;
            const max = path.startsWith('/api/v3/') ? 2_147_483_647 : 5000;
            assert.ok(p.schema.maximum <= max, `${path} limit maximum ${p.schema.maximum}`);
            assert.match(p.description ?? p.schema.description ?? '', /At most \d+/, `${path} says how many it returns`);
          }
        }
      }
      const error = doc.body.paths['/v1/markets/{symbol}'].get.responses['404'].content['application/json'].schema;
      assert.deepEqual(Object.keys(error.properties), ['error']);
      const binanceError = doc.body.paths['/api/v3/klines'].get.responses['400'].content['application/json'].schema;
      assert.deepEqual(Object.keys(binanceError.properties), ['code', 'msg']);
    });

    it('pushes a trade to a WebSocket subscriber within a second of its ingest', async () => {
      const ws = new WebSocket(`${base.replace('http', 'ws')}/ws`);
      const frames: any[] = [];
      ws.on('message', (m) => frames.push(JSON.parse(String(m))));
      await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
      ws.send(JSON.stringify({ method: 'SUBSCRIBE', params: ['tata_inr@trade', 'tata_inr@kline_1m', 'tata_inr@kline_1s', 'tata_inr@kline_1h@+05:45'], id: 7 }));
      await waitFor('subscription', async () => frames.find((f) => f.id === 7));
      assert.deepEqual(frames.find((f) => f.id === 7), { result: null, id: 7 });
      const sentAt = Date.now();
      await service.bus.add(JSON.stringify(tradeMsg('TATA_INR', 'ws-1', '133.25', '2', sentAt)));
      const trade = await waitFor('trade frame', async () => frames.find((f) => f.e === 'trade'), 5000);
      const latency = Date.now() - sentAt;
      assert.ok(latency < 1000, `trade arrived after ${latency} ms`);
      assert.deepEqual([trade.s, norm(trade.p), norm(trade.q), trade.T, typeof trade.t], ['TATA_INR', '133.25', '2', sentAt, 'number']);
      const kline = await waitFor('kline frame', async () => frames.find((f) => f.e === 'kline' && f.k.i === '1m'), 5000);
      assert.equal(kline.k.t, Math.floor(sentAt / MINUTE) * MINUTE);
      // f and L: the first and last trade id of the candle, as the REST trades name them.
      assert.equal(kline.k.L, trade.t);
      assert.ok(kline.k.f !== -1 && kline.k.f <= kline.k.L);
      const second = await waitFor('1s kline frame', async () => frames.find((f) => f.e === 'kline' && f.k.i === '1s'), 5000);
      // With no trade after it, the second's kline is sent final (x) at its close time.
      const final = await waitFor('final 1s kline', async () => frames.find((f) => f.e === 'kline' && f.k.i === '1s' && f.k.t === second.k.t && f.k.x === true), 5000);
      assert.equal(final.k.L, trade.t);
      assert.deepEqual([second.k.t, second.k.T, second.k.f, second.k.L, second.k.n, norm(second.k.c)], [Math.floor(sentAt / 1000) * 1000, Math.floor(sentAt / 1000) * 1000 + 999, trade.t, trade.t, 1, '133.25']);
      const zoned = await waitFor('1h kline in +05:45', async () => frames.find((f) => f.e === 'kline' && f.k.i === '1h'), 5000);
      assert.equal((zoned.k.t + 45 * MINUTE) % (60 * MINUTE), 0);
      assert.ok(zoned.k.t <= sentAt && sentAt <= zoned.k.T);
      ws.send(JSON.stringify({ method: 'SUBSCRIBE', params: ['nope@trade'], id: 8 }));
      const refused = await waitFor('refusal', async () => frames.find((f) => f.id === 8));
      assert.ok(refused.error);
      ws.close();
      // Combined stream endpoint.
      const combined = new WebSocket(`${base.replace('http', 'ws')}/stream?streams=tata_inr@trade/tata_inr@ticker`);
      const got: any[] = [];
      combined.on('message', (m) => got.push(JSON.parse(String(m))));
      await new Promise((resolve, reject) => combined.once('open', resolve).once('error', reject));
      await new Promise((r) => setTimeout(r, 100));
      await service.bus.add(JSON.stringify(tradeMsg('TATA_INR', 'ws-2', '133.5', '1', Date.now())));
      const wrapped = await waitFor('combined frame', async () => got.find((f) => f.stream === 'tata_inr@trade'), 5000);
      assert.equal(wrapped.data.e, 'trade');
      const ticker = await waitFor('ticker frame', async () => got.find((f) => f.stream === 'tata_inr@ticker'), 5000);
      assert.equal(ticker.data.e, '24hrTicker');
      assert.equal(ticker.data.n, 122);
      combined.close();
    });

    it('streams miniTickers and every market\'s tickers (!ticker@arr, !miniTicker@arr), all cut from one computation', async () => {
      const url = base.replace('http', 'ws');
      const socket = new WebSocket(`${url}/stream?streams=tata_inr@miniTicker/!ticker@arr/!miniTicker@arr/tata_inr@ticker`);
      const frames: any[] = [];
      socket.on('message', (m) => frames.push(JSON.parse(String(m))));
      await new Promise((resolve, reject) => socket.once('open', resolve).once('error', reject));
      await waitFor('subscriptions', async () => service.live!.listeners >= 4);
      await new Promise((r) => setTimeout(r, 1100));
      const before = service.live!.computations;
      await service.bus.add(JSON.stringify(tradeMsg('TATA_INR', 'mini-1', '134.5', '1', Date.now())));
      const of = (stream: string) => frames.find((f) => f.stream === stream)?.data;
      await waitFor('every stream', async () => of('tata_inr@miniTicker') && of('!ticker@arr') && of('!miniTicker@arr') && of('tata_inr@ticker'), 10_000);
      const [mini, all, allMini, ticker] = [of('tata_inr@miniTicker'), of('!ticker@arr'), of('!miniTicker@arr'), of('tata_inr@ticker')];
      assert.deepEqual(Object.keys(mini).sort(), ['E', 'c', 'e', 'h', 'l', 'o', 'q', 's', 'v']);
      assert.deepEqual([mini.e, mini.s, norm(mini.c)], ['24hrMiniTicker', 'TATA_INR', '134.5']);
      assert.deepEqual([mini.o, mini.h, mini.l, mini.v, mini.q], [ticker.o, ticker.h, ticker.l, ticker.v, ticker.q]);
      assert.ok(Array.isArray(all) && all.length === 1, 'only the markets that changed');
      assert.deepEqual(all[0], ticker);
      assert.deepEqual(allMini, [mini]);
      // One statistics computation for the four streams.
      assert.equal(service.live!.computations - before, 1);
      socket.close();
      await waitFor('closed', async () => service.live!.listeners === 0);
    });

    it('computes each stream\'s payload once per commit for all its subscribers (fan-out)', async (t) => {
      const url = base.replace('http', 'ws');
      const open = (path: string) =>
        new Promise<{ socket: WebSocket; frames: any[] }>((resolve, reject) => {
          const socket = new WebSocket(`${url}${path}`);
          const frames: any[] = [];
          socket.on('message', (m) => frames.push(JSON.parse(String(m))));
          socket.once('open', () => resolve({ socket, frames })).once('error', reject);
        });
      // One subscriber first, for comparison (a figure, not a bound: the ticker waits up to 1 s after the previous one).
      const alone = await open('/ws/tata_inr@ticker');
      await waitFor('one subscription', async () => service.live!.listeners >= 1);
      await new Promise((r) => setTimeout(r, 1100));
      const aloneAt = Date.now();
      await service.bus.add(JSON.stringify(tradeMsg('TATA_INR', 'fan-0', '133.5', '1', aloneAt)));
      await waitFor('the one ticker', async () => alone.frames.some((f) => f.e === '24hrTicker'), 10_000);
      t.diagnostic(`ticker on 1 socket ${Date.now() - aloneAt} ms after the trade was sent`);
      alone.socket.close();
      await waitFor('closed', async () => service.live!.listeners === 0);
      await new Promise((r) => setTimeout(r, 1100));
      const tickers = await Promise.all(Array.from({ length: 500 }, () => open('/ws/tata_inr@ticker')));
      const derived = await Promise.all(Array.from({ length: 20 }, () => open('/ws/tata_inr@kline_3m')));
      await waitFor('subscriptions', async () => service.live!.listeners >= 520);
      const before = service.live!.computations;
      const sentAt = Date.now();
      await service.bus.add(JSON.stringify(tradeMsg('TATA_INR', 'fan-1', '133.75', '1', sentAt)));
      await waitFor('every ticker subscriber', async () => tickers.every((c) => c.frames.some((f) => f.e === '24hrTicker')), 10_000);
      const allTickers = Date.now() - sentAt;
      await waitFor('every 3m subscriber', async () => derived.every((c) => c.frames.some((f) => f.e === 'kline' && f.k.i === '3m')), 10_000);
      // One ticker and one derived kline computed for the commit, not one per socket.
      assert.equal(service.live!.computations - before, 2);
      const first = JSON.stringify(tickers[0]!.frames.find((f) => f.e === '24hrTicker'));
      assert.ok(tickers.every((c) => JSON.stringify(c.frames.find((f) => f.e === '24hrTicker')) === first), 'every subscriber got the same payload');
      t.diagnostic(`ticker on 500 sockets ${allTickers} ms after the trade was sent (the ticker waits up to 1 s after the previous one)`);
      for (const c of [...tickers, ...derived]) c.socket.close();
      await waitFor('sockets closed', async () => service.live!.listeners === 0);
    });

    it('exposes its own metrics (HTTP, WebSocket, cache, runtime, batch durations) to the metrics token or an admin key', async () => {
      await get('/v1/markets');
      await get('/v1/markets');
      await get('/no/such/route');
      assert.equal((await fetch(`${base}/metrics`)).status, 401);
      assert.equal((await fetch(`${base}/metrics`, { headers: { authorization: 'Bearer wrong-token-0123456789' } })).status, 401);
      // As long in characters as the token, longer in bytes: still a 401, never a 500.
      assert.equal((await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${'é'.repeat(METRICS_TOKEN.length)}` } })).status, 401);
      assert.equal((await fetch(`${base}/metrics`, { headers: { 'x-api-key': adminKey } })).status, 200);
      const text = await (await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } })).text();
      const families = new Map(parsePrometheus(text).map((f) => [f.name, f]));
      const family = (name: string, type: string) => {
        const f = families.get(name);
        assert.ok(f, `${name} in /metrics`);
        assert.equal(f.type, type, name);
        return f;
      };
      const requests = family('tradestore_http_requests_total', 'COUNTER');
      const markets = requests.metrics.find((m) => m.labels?.route === '/v1/markets' && m.labels.status === '200' && m.labels.method === 'GET');
      assert.ok(markets && Number(markets.value) >= 2, JSON.stringify(requests.metrics.slice(0, 5)));
      assert.ok(requests.metrics.some((m) => m.labels?.route === 'unmatched' && m.labels.status === '404'), 'unmatched URLs share one label');
      assert.ok(!requests.metrics.some((m) => m.labels?.route?.includes('/no/such')), 'no series per raw URL');
      // The parser keeps a histogram's buckets but not its labels: those are read from its _count series.
      assert.ok(family('tradestore_http_request_duration_seconds', 'HISTOGRAM').metrics.length > 0);
      const count = /^tradestore_http_request_duration_seconds_count\{method="GET",route="\/v1\/markets",status="200"\} (\d+)$/m.exec(text);
      assert.ok(count && Number(count[1]) >= 2, 'latency per route and status');
      assert.ok(Number(family('tradestore_ws_messages_received_total', 'COUNTER').metrics[0]!.value) > 0, 'the WebSocket tests sent frames');
      assert.ok(Number(family('tradestore_ws_messages_sent_total', 'COUNTER').metrics[0]!.value) > 0);
      family('tradestore_ws_connections', 'GAUGE');
      const cache = family('tradestore_cache_reads_total', 'COUNTER');
      assert.ok(cache.metrics.some((m) => m.labels?.result === 'hit' && Number(m.value) > 0), JSON.stringify(cache.metrics));
      assert.ok(cache.metrics.some((m) => m.labels?.result === 'miss' && Number(m.value) > 0));
      assert.ok(Number(family('tradestore_ingest_batch_duration_seconds', 'HISTOGRAM').metrics[0]!.buckets!['+Inf']) > 0, 'batches observed');
      family('process_cpu_user_seconds_total', 'COUNTER');
      family('nodejs_eventloop_lag_seconds', 'GAUGE');
      family('tradestore_unhandled_errors_total', 'COUNTER');
    });

    it('gives trades the engine\'s integer ids as Binance trade ids: REST, aggTrades from an id, the ticker and the trade stream', async () => {
      const ws = new WebSocket(`${base.replace('http', 'ws')}/ws/hdfc_inr@trade`);
      const frames: any[] = [];
      ws.on('message', (m) => frames.push(JSON.parse(String(m))));
      await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
      await waitFor('subscribed', async () => service.live!.listeners > 0);
      const at = Date.now() - 5 * MINUTE;
      await send([7001, 7002, 7003, 7004].map((id, i) => tradeMsg('HDFC_INR', String(id), `${1500 + i}.5`, '1', at + i * 1000)));
      const trades = await get('/api/v3/trades?symbol=HDFC_INR');
      assert.deepEqual(trades.body.map((t: { id: number }) => t.id), [7001, 7002, 7003, 7004]);
      const older = await get('/api/v3/historicalTrades?symbol=HDFC_INR&fromId=7002&limit=2');
      assert.deepEqual(older.body.map((t: { id: number }) => t.id), [7002, 7003]);
      const agg = await get('/api/v3/aggTrades?symbol=HDFC_INR&fromId=7003');
      assert.deepEqual(agg.body.map((t: { a: number; f: number; l: number }) => [t.a, t.f, t.l]), [[7003, 7003, 7003], [7004, 7004, 7004]]);
      const ticker = await get('/api/v3/ticker/24hr?symbol=HDFC_INR');
      assert.deepEqual([ticker.body.firstId, ticker.body.lastId, ticker.body.count], [7001, 7004, 4]);
      assert.equal(ticker.body.count, ticker.body.lastId - ticker.body.firstId + 1);
      await waitFor('trade frames', async () => frames.length >= 4, 5000);
      assert.deepEqual(frames.map((f) => f.t), [7001, 7002, 7003, 7004]);
      ws.close();
      // Ids that are not integers fall back to the store's sequence (TATA_INR's are h0, h1, …): still numbers.
      const tata = await get('/api/v3/trades?symbol=TATA_INR&limit=3');
      assert.ok(tata.body.every((t: { id: unknown }) => Number.isInteger(t.id)));
      const badFrom = await get('/api/v3/aggTrades?symbol=HDFC_INR&fromId=abc');
      assert.equal(badFrom.status, 400);
    });

    it('handles a socket\'s frames in order: racing SUBSCRIBE and UNSUBSCRIBE frames leave no subscription behind', async () => {
      const ws = new WebSocket(`${base.replace('http', 'ws')}/ws`);
      const replies: any[] = [];
      ws.on('message', (m) => replies.push(JSON.parse(String(m))));
      await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
      for (let i = 0; i < 3; i++) ws.send(JSON.stringify({ method: 'SUBSCRIBE', params: ['tata_inr@trade', 'tata_inr@ticker'], id: i }));
      ws.send(JSON.stringify({ method: 'UNSUBSCRIBE', params: ['tata_inr@ticker'], id: 3 }));
      ws.send(JSON.stringify({ method: 'LIST_SUBSCRIPTIONS', id: 4 }));
      const list = await waitFor('the list', async () => replies.find((r) => r.id === 4), 5000);
      assert.deepEqual(list.result, ['tata_inr@trade']);
      assert.deepEqual(replies.map((r) => r.id), [0, 1, 2, 3, 4], 'answered in order');
      assert.equal(service.live!.listeners, 1);
      ws.close();
      await waitFor('nothing left subscribed', async () => service.live!.listeners === 0);
    });

    it('streams aggregate trades, the best bid and ask, and partial books as Binance does', async () => {
      const combined = new WebSocket(`${base.replace('http', 'ws')}/stream?streams=reliance_inr@aggTrade/reliance_inr@bookTicker/reliance_inr@depth5/reliance_inr@depth10/reliance_inr@depth20`);
      const got: any[] = [];
      combined.on('message', (m) => got.push(JSON.parse(String(m))));
      await new Promise((resolve, reject) => combined.once('open', resolve).once('error', reject));
      await waitFor('subscribed', async () => service.live!.listeners >= 5);
      const at = Date.now();
      await send([orderMsg('rel-bid', 'RELIANCE_INR', 'buy', '2400.5', '3', 'alice', at), orderMsg('rel-ask', 'RELIANCE_INR', 'sell', '2410', '1', 'bob', at), tradeMsg('RELIANCE_INR', '9001', '2405', '2', at)]);
      const agg = await waitFor('aggTrade', async () => got.find((f) => f.stream === 'reliance_inr@aggTrade'), 5000);
      assert.deepEqual([agg.data.e, agg.data.a, agg.data.f, agg.data.l, agg.data.p, agg.data.q], ['aggTrade', 9001, 9001, 9001, '2405.00000000', '2.00000000']);
      const book = await waitFor('bookTicker', async () => got.findLast((f) => f.stream === 'reliance_inr@bookTicker' && f.data.b !== '0.00000000' && f.data.a !== '0.00000000'), 5000);
      assert.deepEqual([book.data.s, book.data.b, book.data.B, book.data.a, book.data.A], ['RELIANCE_INR', '2400.50000000', '3.00000000', '2410.00000000', '1.00000000']);
      assert.equal(typeof book.data.u, 'number');
      const depth = await waitFor('depth5', async () => got.find((f) => f.stream === 'reliance_inr@depth5' && f.data.bids.length > 0), 5000);
      assert.deepEqual(Object.keys(depth.data), ['lastUpdateId', 'bids', 'asks']);
      assert.deepEqual(depth.data.bids[0], ['2400.50000000', '3.00000000']);
      assert.ok(depth.data.bids.length <= 5 && depth.data.asks.length <= 5);
      // One order change: the book is read once for the bookTicker and the three depth streams.
      await new Promise((r) => setTimeout(r, 300));
      const before = service.live!.computations;
      got.length = 0;
      await send([orderMsg('rel-bid-2', 'RELIANCE_INR', 'buy', '2401', '1', 'alice', Date.now())]);
      await waitFor('four book streams', async () => ['bookTicker', 'depth5', 'depth10', 'depth20'].every((s) => got.some((f) => f.stream === `reliance_inr@${s}`)), 5000);
      assert.equal(service.live!.computations - before, 1);
      assert.deepEqual(got.find((f) => f.stream === 'reliance_inr@depth20').data.bids[0], ['2401.00000000', '1.00000000']);
      combined.close();
      await waitFor('closed', async () => service.live!.listeners === 0);
    });

    it('returns 429 with Retry-After once a key goes over its limit on an endpoint', async () => {
      let last = { status: 0, headers: new Headers(), body: null as any };
      for (let i = 0; i < 105 && last.status !== 429; i++) last = await get('/v1/account/positions', bobKey);
      assert.equal(last.status, 429);
      assert.ok(Number(last.headers.get('retry-after')) > 0);
      assert.match(last.body.error.message, /rate limit/);
      // Under /api/v3 in Binance's format: 429 with -1003.
      let ping = { status: 0, body: null as any };
      for (let i = 0; i < 105 && ping.status !== 429; i++) ping = await get('/api/v3/ping', bobKey);
      assert.deepEqual([ping.status, ping.body.code], [429, -1003]);
      // Another endpoint, and another key, are counted apart.
      assert.equal((await get('/v1/account/balances', bobKey)).status, 200);
      assert.equal((await get('/v1/account/positions', aliceKey)).status, 200);
      if (setup === 'postgres+redis') {
        const { Redis } = await import('ioredis');
        const redis = new Redis(REDIS_URL);
        const ttl = await redis.pttl(`${keyPrefix}rate_limit:bob:/v1/account/positions`);
        redis.disconnect();
        assert.ok(ttl > 0, 'seed 001 layout rate_limit:{user}:{endpoint}, after the deployment\'s key prefix');
      }
    });
  });
}

describe('WebSocket pings', () => {
  it('pings every connection as Binance does, and closes one that leaves 3 pings unanswered', async () => {
    const service = await startService(loadConfig({ PORT: '0', TRADESTORE_DATA_DIR: 'memory://', TRADESTORE_WS_PING_MS: '100' }), { migrate: true, log: serviceLog });
    try {
      const url = `ws://127.0.0.1:${service.port}/ws/tata_inr@trade`;
      const answering = new WebSocket(url);
      const silent = new WebSocket(url, { autoPong: false });
      let pings = 0;
      answering.on('ping', () => (pings += 1));
      const closed = new Promise<number>((resolve) => silent.once('close', (code) => resolve(code)));
      await Promise.all([answering, silent].map((s) => new Promise((resolve, reject) => s.once('open', resolve).once('error', reject))));
      assert.equal(await closed, 1006, 'the silent client is cut off (it would not answer a close handshake either)');
      await waitFor('pings', async () => pings >= 5, 5000);
      assert.equal(answering.readyState, WebSocket.OPEN, 'the client that answers stays');
      answering.close();
    } finally {
      await service.stop();
    }
  });
});
