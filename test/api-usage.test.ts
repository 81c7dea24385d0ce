import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig } from '../src/config.ts';
import { startService, type Service } from '../src/service/service.ts';
import { UsageRecorder, type UsageRow } from '../src/api/usage.ts';
import type { Database } from '../src/database/types.ts';
import { waitFor } from './helpers/service.ts';
import { serviceLog } from './helpers/exposure.ts';

describe("api_usage: the API's own requests, written in batches off the request path", () => {
  let service: Service;
  let key = '';
  let keyId = '';
  before(async () => {
    service = await startService(loadConfig({ PORT: '0', TRADESTORE_DATA_DIR: 'memory://', TRADESTORE_MONITOR_INTERVAL_MS: '0' }), { migrate: true, log: serviceLog });
    await service.db.query(`INSERT INTO users (id, email) VALUES ('usage-u', 'u@example.com')`);
    const created = await service.store.apiKeys.create('usage-u', ['read']);
    key = created.key;
    keyId = created.keyId;
  });
  after(async () => service?.stop());

  it('records method, route pattern, status, latency, sizes, client and user of each request, but not the monitors\' polling', async () => {
    const base = `http://127.0.0.1:${service.port}`;
    const headers = { 'user-agent': 'usage-test/1.0' };
    assert.equal((await fetch(`${base}/v1/markets/TATA_INR/klines?interval=1m`, { headers })).status, 200);
    assert.equal((await fetch(`${base}/v1/account/balances`, { headers: { ...headers, 'x-api-key': key } })).status, 200);
    assert.equal((await fetch(`${base}/v1/account/balances`, { headers })).status, 401);
    assert.equal((await fetch(`${base}/no/such/path/${'x'.repeat(50)}`, { headers })).status, 404);
    await fetch(`${base}/health`);
    await fetch(`${base}/metrics`);
    type Row = { endpoint: string; method: string; status_code: number; user_id: string | null; api_key_id: string | null; ip_address: string; user_agent: string; response_time: number; response_size: number | null };
    let rows: Row[] = [];
    await waitFor('the usage written', async () => {
      rows = (await service.db.query<Row>(
        `SELECT endpoint, method, status_code, user_id, api_key_id::text, host(ip_address) AS ip_address, user_agent, response_time, response_size FROM api_usage ORDER BY id`,
      )).rows;
      return rows.length >= 4;
    }, 10_000);
    assert.deepEqual(rows.map((r) => [r.method, r.endpoint, r.status_code, r.user_id, r.api_key_id]), [
      ['GET', '/v1/markets/:symbol/klines', 200, null, null],
      ['GET', '/v1/account/balances', 200, 'usage-u', keyId],
      ['GET', '/v1/account/balances', 401, null, null],
      ['GET', 'unmatched', 404, null, null],
    ]);
    for (const r of rows) {
      assert.equal(r.ip_address, '127.0.0.1');
      assert.equal(r.user_agent, 'usage-test/1.0');
      assert.ok(r.response_time >= 0);
    }
    assert.ok(rows[1]!.response_size === null || rows[1]!.response_size > 0);
    const metrics = await (await fetch(`${base}/metrics`)).text();
    assert.match(metrics, /tradestore_api_usage_rows_total\{result="written"\} [4-9]/);
  });
});

describe('the usage recorder', () => {
  const row = (i: number): UsageRow => ({
    at: new Date(), userId: null, apiKeyId: null, endpoint: `/e/${i}`, method: 'GET', status: 200, responseMs: 1, ip: null, userAgent: null, requestBytes: null, responseBytes: null,
  });

  it('never waits for the database to record, bounds what it holds, and counts what it could not write', async () => {
    let release!: () => void;
    const stuck = new Promise<void>((r) => (release = r));
    const calls: number[] = [];
    const db = { query: async (_sql: string, params: unknown[][]) => { calls.push(params[0]!.length); await stuck; throw new Error('database away'); } } as unknown as Database;
    const logged: string[] = [];
    const recorder = new UsageRecorder(db, { maxBuffered: 3, log: (l) => logged.push(l) });
    for (let i = 0; i < 5; i++) recorder.record(row(i));
    assert.equal(recorder.dropped, 2, 'beyond the bound, rows are dropped and counted');
    const flushing = recorder.flush();
    await new Promise((r) => setImmediate(r));
    assert.equal(calls.length, 1, 'the write has started and hangs');
    recorder.record(row(9)); // recorded while the write hangs: does not wait
    release();
    await flushing;
    await recorder.stop();
    assert.deepEqual(calls, [3, 1]);
    assert.equal(recorder.dropped, 6);
    assert.equal(recorder.written, 0);
    assert.match(logged[0]!, /api usage: 3 rows not written \(database away\); counted as dropped/);
  });
});
