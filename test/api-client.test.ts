import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { generateApi } from 'swagger-typescript-api';
import { loadConfig } from '../src/config.ts';
import { startService, type Service } from '../src/service/service.ts';
import { depositMsg, orderMsg, tradeMsg } from './helpers/ingest.ts';
import { serviceLog } from './helpers/exposure.ts';

const MINUTE = 60_000;

/**
 * What a user of the OpenAPI document does: generate a typed client from /docs/json with a
 * maintained generator (swagger-typescript-api), compile code that reads typed fields of every
 * answer, and call the running service through it. Every documented HTTP operation is called,
 * and every answer is checked against the document's schema for its status.
 */
const EXERCISE = `
import { Api } from './Api.ts';

export interface Call { url: string; status: number; contentType: string; body: string }

export async function exercise(baseUrl: string, keys: { read: string; admin: string }, ids: { order: string; strategy: string; backtest: string; model: string }): Promise<Call[]> {
  const calls: Call[] = [];
  const customFetch = async (input: RequestInfo | URL, init?: RequestInit) => {
    const response = await fetch(input, init);
    calls.push({ url: String(input), status: response.status, contentType: response.headers.get('content-type') ?? '', body: await response.clone().text() });
    return response;
  };
  const client = (key?: string) => new Api({ baseUrl, customFetch, baseApiParams: { headers: key ? { 'X-API-Key': key } : {} } });
  const open = client();
  const reader = client(keys.read);
  const admin = client(keys.admin);
  const symbol = 'TATA_INR';

  // Native market data: typed fields are read below, so a schema that changes breaks this file.
  const markets = (await open.v1.marketsList()).data.markets;
  const tickSize: string | null = markets[0]!.tickSize;
  const one: boolean = (await open.v1.marketsDetail(symbol)).data.active;
  const candles = (await open.v1.marketsKlinesList(symbol, { interval: '1m', limit: 5 })).data.klines;
  const close: string = candles[0]!.close;
  const tradeCount: number = candles[0]!.tradeCount;
  const publicId: number = (await open.v1.marketsTradesList(symbol, { limit: 5 })).data.trades[0]!.publicId;
  const volume: string = (await open.v1.marketsTickerList(symbol)).data.volume;
  const last: string | null = (await open.v1.marketsPriceList(symbol)).data.price;
  const [bidPrice, bidQuantity]: [string, string] = (await open.v1.marketsDepthList(symbol, { limit: 5 })).data.bids[0]!;

  // The caller's own account.
  const page = (await reader.v1.accountOrdersList({ limit: 10 })).data;
  const next: string | null = page.nextCursor;
  const status: string = page.items[0]!.status;
  const openOrders = (await reader.v1.accountOrdersOpenList({})).data.orders;
  const history = (await reader.v1.accountOrdersDetail(ids.order)).data.history;
  const available: string = (await reader.v1.accountBalancesList()).data.balances[0]!.available;
  const change: string = (await reader.v1.accountBalancesHistoryList({ limit: 5 })).data.items[0]!.amount;
  const entryPrice: string = (await reader.v1.accountPositionsList({ status: 'all' })).data.positions[0]!.entryPrice;
  const roundTrips = (await reader.v1.accountTradesList({ status: 'all' })).data;
  const pnl: string | null = roundTrips.items[0]!.pnl;
  const total: number | undefined = roundTrips.total;
  const strategies = (await reader.v1.strategiesList()).data.strategies;
  const symbols: string[] = (await reader.v1.strategiesDetail(ids.strategy)).data.symbols;
  const winning: number = (await reader.v1.strategiesPerformanceList(ids.strategy, {})).data.winningTrades;
  const versions = (await reader.v1.strategiesVersionsList(ids.strategy)).data.versions;
  const sharpe: string | null | undefined = (await reader.v1.strategiesMetricsList(ids.strategy, {})).data.metrics.sharpeRatio;
  const curve = (await reader.v1.strategiesEquityList(ids.strategy, {})).data;
  const source: 'snapshots' | 'trades' | 'trades_then_snapshots' | null = curve.source;
  const drawdowns: string[] = curve.points.map((p) => p.drawdown);
  const strategyTrips: number | undefined = (await reader.v1.strategiesTradesList(ids.strategy, { status: 'all' })).data.total;
  const ranked = (await reader.v1.backtestsList({ strategyId: ids.strategy, orderBy: 'sharpeRatio' })).data.backtests;
  const progress: number = (await reader.v1.backtestsDetail(ids.backtest)).data.progress;
  const backtestPnl: string | null = (await reader.v1.backtestsTradesList(ids.backtest, { limit: 2 })).data.items[0]!.pnl;
  const backtestCurve: string = (await reader.v1.backtestsEquityList(ids.backtest)).data.points[0]!.equity;
  const versusLive = (await reader.v1.backtestsCompareList(ids.backtest)).data.metrics.find((m) => m.name === 'totalTrades')?.difference;
  const riskLevel: 'ok' | 'warning' | 'critical' | undefined = (await reader.v1.accountRiskList()).data.limits[0]?.level;
  const modelIds: string[] = (await reader.v1.modelsList({ active: 'true' })).data.models.map((m) => m.id);
  const activeModel: boolean = (await reader.v1.modelsDetail(ids.model)).data.isActive;
  const mae: string | null = (await reader.v1.modelsAccuracyList(ids.model, {})).data.mae;
  const sent = (await reader.v1.accountExchangeOrdersList({ status: 'open' })).data.items.map((o) => o.externalOrderId);
  const transitions: string[] = (await reader.v1.accountExchangeOrdersDetail('eo-1')).data.history.map((h) => h.status);
  const liveSessions: string[] = (await reader.v1.authSessionsList()).data.sessions.map((s) => s.id);

  // Administration.
  const lag: number = (await admin.v1.adminIngestList()).data.lag;
  const largest: string = (await admin.v1.adminDatabaseList()).data.report.tables[0]!.name;
  const letters = (await admin.v1.adminDeadLettersList({ limit: 10 })).data.deadLetters;
  const reason: string = letters[0]!.reason;
  const limitValues: string[] = (await admin.v1.adminRiskLimitsList({ userId: 'alice' })).data.limits.map((l) => l.limitValue);
  const breached: string[] = (await admin.v1.adminRiskEventsList({ open: 'true' })).data.events.map((e) => e.severity);
  const audited: string[] = (await admin.v1.adminAuditList({ limit: 10 })).data.entries.map((e) => e.action);
  await admin.v1.adminDeadLettersFieldsDetail(letters[0]!.id, 'payload');

  // Binance's format.
  await open.api.v3PingList();
  const serverTime: number = (await open.api.v3TimeList()).data.serverTime;
  const filters = (await open.api.v3ExchangeInfoList({ symbol })).data.symbols[0]!.filters;
  const row = (await open.api.v3KlinesList({ symbol, interval: '1m', limit: 5 })).data[0]!;
  const [openTime, , , , binanceClose]: [number, string, string, string, string, ...unknown[]] = row;
  await open.api.v3UiKlinesList({ symbol, interval: '1h' });
  const tradeId: number = (await open.api.v3TradesList({ symbol, limit: 5 })).data[0]!.id;
  await open.api.v3HistoricalTradesList({ symbol, fromId: String(tradeId), limit: 5 });
  const aggregate: number = (await open.api.v3AggTradesList({ symbol, limit: 5 })).data[0]!.a;
  await open.api.v3Ticker24HrList({ symbol });
  await open.api.v3Ticker24HrList({ symbols: JSON.stringify([symbol]), type: 'MINI' });
  const windowCount: number = ((await open.api.v3TickerList({ symbol, windowSize: '1h' })).data as { count: number }).count;
  await open.api.v3TickerTradingDayList({ symbol, timeZone: '+05:45', type: 'MINI' });
  await open.api.v3TickerPriceList({ symbol });
  await open.api.v3TickerBookTickerList({});
  const average: string = (await open.api.v3AvgPriceList({ symbol })).data.price;
  const lastUpdateId: number = (await open.api.v3DepthList({ symbol, limit: 5 })).data.lastUpdateId;

  // Operations.
  const healthy: 'healthy' | 'degraded' = (await admin.health.healthList()).data.status;
  await admin.metrics.metricsList();

  // Errors are typed too: the client throws the response, with the documented error body.
  try {
    await open.v1.marketsDetail('NOPE');
  } catch (error) {
    const code: string = (error as Awaited<ReturnType<typeof open.v1.marketsDetail>> & { error: { error: { code: string } } }).error.error.code;
    void code;
  }
  void [tickSize, one, close, tradeCount, publicId, volume, last, bidPrice, bidQuantity, next, status, openOrders, available, change, entryPrice,
    windowCount, largest, versions, sharpe, source, drawdowns, strategyTrips, ranked, progress, backtestPnl, backtestCurve, versusLive, riskLevel, limitValues, breached, audited, modelIds, activeModel, mae, sent, transitions, liveSessions, pnl, total, strategies, symbols, winning, lag, reason, serverTime, filters, openTime, binanceClose, aggregate, average, lastUpdateId, healthy, history];
  return calls;
}
`;

interface Call {
  url: string;
  status: number;
  contentType: string;
  body: string;
}
interface Operation {
  responses: Record<string, { content?: Record<string, { schema: object }> }>;
}

describe('A client generated from the OpenAPI document', () => {
  let service: Service;
  let base: string;
  let dir: string;
  const keys = { read: '', admin: '' };
  const ids = { order: 'c-1', strategy: 'client-strategy', backtest: '', model: '' };

  before(async () => {
    service = await startService(loadConfig({ PORT: '0', TRADESTORE_DATA_DIR: 'memory://' }), { migrate: true, log: serviceLog });
    base = `http://127.0.0.1:${service.port}`;
    await service.db.query(`INSERT INTO users (id, email) VALUES ('alice', 'a@example.com'), ('root', 'r@example.com')`);
    await service.db.query(`INSERT INTO strategies (id, user_id, name, is_active, symbols) VALUES ($1, 'alice', 'client', true, ARRAY['TATA_INR'])`, [ids.strategy]);
    keys.read = (await service.store.apiKeys.create('alice', ['read'])).key;
    // A completed backtest of the strategy.
    const day = 86_400_000;
    const start = Date.UTC(2025, 0, 1);
    ids.backtest = (await service.store.backtests.create({ strategyId: ids.strategy, name: 'client', symbols: ['TATA_INR'], startDate: new Date(start), endDate: new Date(start + 5 * day), initialCapital: '10000' })).id;
    await service.store.backtests.start(ids.backtest);
    await service.store.backtests.addTrades(ids.backtest, [1, 2, 3].map((i) => ({ symbol: 'TATA_INR', side: 'long', quantity: '1', entryPrice: '100', exitPrice: String(100 + i * (i === 2 ? -1 : 2)), entryTime: start + i * day, exitTime: start + i * day + 3_600_000 })));
    await service.store.backtests.complete(ids.backtest);
    await service.store.risk.setLimit({ userId: 'alice', limitType: 'max_orders_per_hour', limitValue: '0' });
    ids.model = (await service.store.models.activate((await service.store.models.register({ name: 'client', modelType: 'lstm', version: '1', symbol: 'TATA_INR', timeframe: '1h', features: ['close'] })).id)).id;
    keys.admin = (await service.store.apiKeys.create('root', ['read', 'admin'])).key;
    const t0 = Math.floor(Date.now() / MINUTE) * MINUTE - 10 * MINUTE;
    const messages: object[] = [];
    for (let i = 0; i < 20; i++) messages.push(tradeMsg('TATA_INR', String(1000 + i), (130 + i / 4).toFixed(2), '1.5', t0 + i * 20_000, i % 2 === 0));
    messages.push(
      depositMsg('alice', 'INR', '1000'),
      orderMsg(ids.order, 'TATA_INR', 'buy', '131', '2', 'alice'),
      orderMsg('c-2', 'TATA_INR', 'sell', '140', '1', 'alice'),
      { type: 'POSITION_UPDATE', data: { exchange: 'venue', symbol: 'TATA_INR', userId: 'alice', side: 'long', quantity: '2', entryPrice: '131' } },
      { type: 'STRATEGY_TRADE_OPENED', data: { id: 'rt-1', strategyId: ids.strategy, symbol: 'TATA_INR', side: 'buy', entryPrice: '130', quantity: '2', entryTime: t0 } },
      { type: 'STRATEGY_TRADE_CLOSED', data: { id: 'rt-1', exitPrice: '133', exitTime: t0 + 5 * MINUTE } },
      { type: 'EXCHANGE_ORDER', data: { event: 'placed', orderId: 'eo-1', userId: 'alice', exchange: 'NSE', symbol: 'NIFTY', side: 'buy', orderType: 'limit', quantity: '50', price: '24000', timestamp: t0 } },
      { type: 'EXCHANGE_ORDER', data: { event: 'acknowledged', orderId: 'eo-1', userId: 'alice', externalOrderId: 'x-77', timestamp: t0 + 1 } },
      { type: 'NOT_A_TYPE', data: {} },
    );
    for (const m of messages) await service.bus.add(JSON.stringify(m));
    for (const deadline = Date.now() + 30_000; ; ) {
      const s = await service.bus.stats();
      if (s.lag === 0 && s.listLength === 0 && s.deadLetters > 0) break;
      if (Date.now() > deadline) throw new Error(`events not applied: ${JSON.stringify(s)}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    dir = await mkdtemp(join(tmpdir(), 'tradestore-client-'));
  });

  after(async () => {
    await service?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('compiles, calls every documented HTTP operation of the running service, and gets what the document promises', async () => {
    const document = (await (await fetch(`${base}/docs/json`)).json()) as { openapi: string; paths: Record<string, Record<string, Operation>> };
    assert.equal(document.openapi, '3.1.0');
    const generated = await generateApi({ spec: document as never, output: false, httpClientType: 'fetch', silent: true });
    assert.equal(generated.files.length, 1);
    await writeFile(join(dir, 'Api.ts'), generated.files[0]!.fileContent);
    await writeFile(join(dir, 'exercise.ts'), EXERCISE);

    // The generated client and the code that reads its typed answers compile under strict settings.
    const tsc = join(process.cwd(), 'node_modules', '.bin', 'tsc');
    const compiled = await promisify(execFile)(tsc, [
      '--ignoreConfig', '--noEmit', '--strict', '--target', 'es2022', '--module', 'nodenext', '--lib', 'es2022,dom', '--types', 'node',
      '--typeRoots', join(process.cwd(), 'node_modules', '@types'), '--allowImportingTsExtensions', '--skipLibCheck', join(dir, 'exercise.ts'),
    ]).catch((error: { stdout: string; stderr: string }) => ({ stdout: error.stdout, stderr: error.stderr, failed: true }));
    assert.ok(!('failed' in compiled), `the generated client does not compile:\n${compiled.stdout}${compiled.stderr}`);

    const { exercise } = (await import(pathToFileURL(join(dir, 'exercise.ts')).href)) as {
      exercise: (base: string, k: typeof keys, i: typeof ids) => Promise<Call[]>;
    };
    const calls = await exercise(base, keys, ids);

    // Each request, matched to the documented operation it called.
    const templates = Object.keys(document.paths).map((path) => ({ path, pattern: new RegExp(`^${path.replace(/\{[^}]+\}/g, '[^/]+')}$`) }));
    const operationOf = (url: string) => {
      const { pathname } = new URL(url);
      return templates.find((t) => t.pattern.test(pathname))?.path;
    };
    const ajv = new Ajv2020({ strict: false, allErrors: true });
    const called = new Set<string>();
    for (const call of calls) {
      const path = operationOf(call.url);
      assert.ok(path, `${call.url} is not a documented path`);
      called.add(path);
      const documented = document.paths[path]!.get!.responses[String(call.status)];
      assert.ok(documented, `${call.url} answered ${call.status}, which the document does not list`);
      if (call.status !== 404) assert.equal(call.status, 200, `${call.url} answered ${call.status}: ${call.body}`);
      const [mediaType, { schema }] = Object.entries(documented.content ?? {})[0]!;
      assert.ok(call.contentType.startsWith(mediaType), `${call.url}: ${call.contentType} is not the documented ${mediaType}`);
      const body = mediaType === 'application/json' ? JSON.parse(call.body) : call.body;
      const validate = ajv.compile(schema);
      assert.ok(validate(body), `${call.url}: the answer does not match the document: ${ajv.errorsText(validate.errors)}\n${call.body.slice(0, 500)}`);
    }
    // Every HTTP operation the document lists was called (the WebSocket endpoints are upgrades).
    const http = Object.keys(document.paths).filter((p) => !p.startsWith('/ws') && p !== '/stream' && document.paths[p]!.get);
    assert.deepEqual(http.filter((p) => !called.has(p)), [], 'operations the client did not call');
    assert.ok(calls.some((c) => c.status === 404), 'a documented error answer was read through the client');
  });
});
