import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { apiCaller } from './helpers/api.ts';
import { MemoryBus } from '../src/bus/memory.ts';
import { migrate } from '../src/schema/migrator.ts';
import { seed } from '../src/schema/seed.ts';
import { storeOver, type Store } from '../src/store/store.ts';
import { InvalidArgumentError } from '../src/store/errors.ts';
import { runMaintenanceJobs } from '../src/schema/maintenanceJobs.ts';
import { createServerDatabase, eachBackend, serverUnavailable } from './helpers/backends.ts';
import { runCli } from './helpers/cli.ts';
import { loadConfig } from '../src/config.ts';
import { startService, type Service } from '../src/service/service.ts';
import { ingest, tradeMsg } from './helpers/ingest.ts';
import { serviceLog } from './helpers/exposure.ts';

const HOUR = 3_600_000;

eachBackend('ML models and predictions', (get) => {
  let store: Store;
  let bus: MemoryBus;
  const h0 = Math.floor(Date.now() / HOUR) * HOUR - 48 * HOUR;
  // Hourly closes of TATA_INR (venue trades) and NIFTY (an exchange's candles) for hours h0-1 … h0+5.
  const tata = [100, 102, 101, 105, 104, 108, 107];
  const nifty = [24000, 24100, 24050, 24300, 24200, 24400, 24350];
  before(async () => {
    const { db } = get();
    await migrate(db);
    await seed(db);
    bus = new MemoryBus();
    store = storeOver(db, bus);
    await ingest(db, bus, [
      ...tata.map((close, i) => tradeMsg('TATA_INR', `m${i}`, String(close), '1', h0 + (i - 1) * HOUR + 30 * 60_000)),
      ...nifty.map((close, i) => ({ type: 'CANDLE', data: { exchange: 'NSE', symbol: 'NIFTY', timeframe: '1h', openTime: h0 + (i - 1) * HOUR, open: close, high: close, low: close, close, volume: '10' } })),
    ]);
  });

  it('registers versions and keeps one active per symbol and timeframe', async () => {
    const model = { name: 'lstm', modelType: 'lstm', symbol: 'TATA_INR', timeframe: '1h', features: ['close', 'rsi_14'], validationScore: '0.61' };
    const v1 = await store.models.register({ ...model, version: '1' });
    const v2 = await store.models.register({ ...model, version: '2', hyperparameters: { layers: 2 } });
    assert.equal(v1.isActive, false);
    await store.models.activate(v1.id);
    await store.models.activate(v2.id);
    const active = await store.models.list({ symbol: 'TATA_INR', active: true });
    assert.deepEqual(active.map((m) => m.version), ['2'], 'activating v2 deactivated v1');
    await assert.rejects(get().db.query(`UPDATE ml_models SET is_active = true WHERE id = $1::bigint`, [v1.id]), /idx_ml_models_one_active|duplicate/);
    await assert.rejects(store.models.register({ ...model, version: '2' }), (e: Error) => e instanceof InvalidArgumentError && e.parameter === 'version');
    await assert.rejects(store.models.register({ ...model, version: '3', timeframe: '7m' }), (e: Error) => e instanceof InvalidArgumentError && e.parameter === 'timeframe');
  });

  it('fills in actual values from the candles in bulk once the moment has passed, and measures accuracy and calibration', async () => {
    const { db } = get();
    const tataModel = (await store.models.list({ symbol: 'TATA_INR', active: true }))[0]!;
    const niftyModel = await store.models.register({ name: 'gbm', modelType: 'xgboost', version: '1', symbol: 'NIFTY', timeframe: '1h', features: { window: 24 } });
    // Made at hour i (the close of hour i-1 known), about hour i+1 (the close of hour i).
    const predictions: { model: string; symbol: string; i: number; ahead?: number; type: string; value: string; confidence?: string }[] = [
      { model: tataModel.id, symbol: 'TATA_INR', i: 0, type: 'price', value: '103', confidence: '0.85' }, // base 100 → actual 102: up, right
      { model: tataModel.id, symbol: 'TATA_INR', i: 1, type: 'price', value: '104', confidence: '0.65' }, // base 102 → 101: wrong
      { model: tataModel.id, symbol: 'TATA_INR', i: 2, type: 'price', value: '104', confidence: '0.62' }, // base 101 → 105: right
      { model: tataModel.id, symbol: 'TATA_INR', i: 3, type: 'price', value: '106', confidence: '0.91' }, // base 105 → 104: wrong
      { model: niftyModel.id, symbol: 'NIFTY', i: 0, type: 'return', value: '0.01', confidence: '0.7' }, // 24000 → 24100
      { model: niftyModel.id, symbol: 'NIFTY', i: 1, type: 'direction', value: '-1', confidence: '0.55' }, // 24100 → 24050: right
      { model: niftyModel.id, symbol: 'NIFTY', i: 2, type: 'volatility', value: '0.2' }, // not a type tradestore fills in
      { model: niftyModel.id, symbol: 'NIFTY', i: 47, ahead: 5, type: 'price', value: '25000' }, // about the future
    ];
    await ingest(db, bus, predictions.map((p) => ({
      type: 'PREDICTION',
      data: { modelId: Number(p.model), symbol: p.symbol, timestamp: h0 + p.i * HOUR, predictionTimestamp: h0 + (p.i + (p.ahead ?? 1)) * HOUR, predictionType: p.type, predictedValue: p.value, ...(p.confidence ? { confidence: p.confidence } : {}) },
    })));
    // The maintenance job does it (here forced).
    const [run] = await runMaintenanceJobs(db, { job: 'predictions', force: true });
    assert.deepEqual(run!.detail, { filled: 6 });
    const { rows } = await db.query<{ symbol: string; prediction_type: string; actual: string | null; error: string | null; base: string | null }>(
      `SELECT symbol, prediction_type, trim_scale(actual_value)::text AS actual, trim_scale(error)::text AS error, trim_scale(base_value)::text AS base
         FROM predictions ORDER BY symbol, timestamp`,
    );
    assert.deepEqual(rows.slice(1).map((r) => [r.symbol, r.prediction_type, r.actual, r.error, r.base]), [
      ['NIFTY', 'direction', '-1', '0', '24100'],
      ['NIFTY', 'volatility', null, null, null],
      ['NIFTY', 'price', null, null, null],
      ['TATA_INR', 'price', '102', '-1', '100'],
      ['TATA_INR', 'price', '101', '-3', '102'],
      ['TATA_INR', 'price', '105', '1', '101'],
      ['TATA_INR', 'price', '104', '-2', '105'],
    ]);
    assert.deepEqual([rows[0]!.prediction_type, rows[0]!.base], ['return', '24000']);
    assert.ok(Math.abs(Number(rows[0]!.actual) - (24100 / 24000 - 1)) < 1e-15, rows[0]!.actual!);
    assert.ok(Math.abs(Number(rows[0]!.error) - (24100 / 24000 - 1 - 0.01)) < 1e-15, rows[0]!.error!);
    assert.equal(await store.models.backfill(), 0, 'filled once');

    const a = await store.models.accuracy(tataModel.id);
    const errors = [-1, -3, 1, -2];
    const actuals = [102, 101, 105, 104];
    assert.deepEqual([a.predictions, a.pending], [4, 0]);
    assert.equal(Number(a.mae), errors.reduce((s, e) => s + Math.abs(e), 0) / 4);
    assert.ok(Math.abs(Number(a.rmse) - Math.sqrt(errors.reduce((s, e) => s + e * e, 0) / 4)) < 1e-12);
    assert.ok(Math.abs(Number(a.mape) - (errors.reduce((s, e, i) => s + Math.abs(e) / actuals[i]!, 0) / 4) * 100) < 1e-12);
    assert.equal(Number(a.directionalAccuracy), 0.5);
    assert.deepEqual(a.calibration.map((b) => [b.lower, b.upper, b.predictions, Number(b.directionalAccuracy)]), [
      ['0.6', '0.7', 2, 0.5], ['0.8', '0.9', 1, 1], ['0.9', '1.0', 1, 0],
    ]);
    const nifty = await store.models.accuracy(niftyModel.id);
    assert.deepEqual([nifty.predictions, nifty.pending, Number(nifty.directionalAccuracy)], [2, 2, 1]);
    const none = await store.models.accuracy(niftyModel.id, { from: new Date(h0 + 100 * HOUR) });
    assert.deepEqual([none.predictions, none.mae, none.directionalAccuracy, none.calibration], [0, null, null, []]);
  });
});

describe('models through /v1 and tradestore models [postgres]', async () => {
  const reason = process.env.TRADESTORE_REQUIRE_SERVERS === '1' ? null : await serverUnavailable();
  if (reason) {
    it('skipped', { skip: reason }, () => {});
    return;
  }
  let server: { url: string; drop: () => Promise<void> };
  let service: Service;
  const keys = { admin: '', reader: '' };
  before(async () => {
    server = await createServerDatabase();
    service = await startService(loadConfig({ PORT: '0', DATABASE_URL: server.url, TRADESTORE_MONITOR_INTERVAL_MS: '0', TRADESTORE_MAINTENANCE_TICK_MS: '0' }), { migrate: true, log: serviceLog });
    await service.db.query(`INSERT INTO users (id, email) VALUES ('root', 'r@example.com'), ('quant', 'q@example.com')`);
    keys.admin = (await service.store.apiKeys.create('root', ['read', 'admin'])).key;
    keys.reader = (await service.store.apiKeys.create('quant', ['read'])).key;
  });
  after(async () => {
    await service?.stop();
    await server?.drop();
  });
  const call = apiCaller(() => service.port);

  it('registers with the admin scope, activates, lists, and reads accuracy; the CLI does the same', async () => {
    const body = { name: 'api', modelType: 'lstm', version: '1', symbol: 'TATA_INR', timeframe: '1h', features: ['close'] };
    assert.equal((await call('POST', '/v1/models', keys.reader, body)).status, 403);
    const created = await call('POST', '/v1/models', keys.admin, body);
    assert.equal(created.status, 201, JSON.stringify(created.body));
    assert.equal((await call('POST', '/v1/models', keys.admin, { ...body, timeframe: '7m' })).status, 400);
    assert.equal((await call('POST', `/v1/models/${created.body.id}/activate`, keys.admin)).body.isActive, true);
    assert.deepEqual((await call('GET', '/v1/models?active=true&symbol=TATA_INR', keys.reader)).body.models.map((m: { id: string }) => m.id), [created.body.id]);
    const accuracy = await call('GET', `/v1/models/${created.body.id}/accuracy`, keys.reader);
    assert.deepEqual([accuracy.status, accuracy.body.predictions, accuracy.body.mae], [200, 0, null]);
    assert.equal((await call('GET', '/v1/models/999999', keys.reader)).status, 404);

    const env = { DATABASE_URL: server.url };
    const registered = await runCli(['models', 'register', '--name', 'cli', '--type', 'gbm', '--version', '2', '--symbol', 'TATA_INR', '--timeframe', '1h', '--features', '{"window":24}', '--validation', '0.58', '--json'], env);
    assert.equal(registered.code, 0, registered.stderr);
    const id = JSON.parse(registered.stdout).id;
    assert.match((await runCli(['models', 'activate', id], env)).stdout, new RegExp(`${id}  cli v2  gbm  TATA_INR 1h  ACTIVE  validation 0.58`));
    assert.match((await runCli(['models', 'list', '--symbol', 'TATA_INR'], env)).stdout, new RegExp(`${created.body.id}  api v1  lstm  TATA_INR 1h  inactive`), 'the one active before was deactivated');
    assert.match((await runCli(['models', 'accuracy', id], env)).stdout, /0 predictions with their actual value, 0 pending/);
    assert.equal((await runCli(['models', 'register', '--name', 'x', '--type', 'y', '--version', '1', '--symbol', 'TATA_INR', '--timeframe', '7m', '--features', '[]'], env)).code, 2);
    assert.equal((await runCli(['models', 'register', '--name', 'x', '--type', 'y', '--version', '1', '--symbol', 'TATA_INR', '--timeframe', '1h', '--features', 'not json'], env)).code, 2);
    assert.equal((await runCli(['models', 'show', '999999'], env)).code, 2);
  });
});
