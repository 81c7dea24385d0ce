import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { connect } from 'node:net';
import fc from 'fast-check';
import WebSocket from 'ws';
import { migrate } from '../src/schema/migrator.ts';
import { seed } from '../src/schema/seed.ts';
import { ApiKeyRepository } from '../src/store/apiKeys.ts';
import { freshDatabase, serverUnavailable, type Fresh } from './helpers/backends.ts';
import { freePort, OwnRedis } from './helpers/outages.ts';
import { redisUnavailable, testNames } from './helpers/redis.ts';
import { killAll, spawnService, waitFor, type ServiceProcess } from './helpers/service.ts';

/**
 * A running `tradestore start` (PostgreSQL and Redis, as in production) under hostile HTTP, TCP
 * and WebSocket input, generated with fast-check: nothing a client sends may end the process or
 * produce a 500. The service's last line of defence against a stray rejection (faults.ts) counts
 * what reaches it; the count must stay 0, so every handler's failure is caught where it happens.
 */

const REQUIRE = process.env.TRADESTORE_REQUIRE_SERVERS === '1';
const SEED = Number(process.env.TEST_SEED ?? Date.now() % 1_000_000);
const REQUEST_TIMEOUT_MS = 1500;
const FRAME_LIMIT = 16 * 1024;

type Schema = { type?: string; minimum?: number; maximum?: number; enum?: string[]; pattern?: string; maxLength?: number; minLength?: number };

/** Values a parameter's documented schema declares valid, with its boundaries favoured. */
function valid(name: string, schema: Schema): fc.Arbitrary<string> {
  if (schema.enum) return fc.constantFrom(...schema.enum);
  if (schema.type === 'integer' || schema.type === 'number') {
    const min = schema.minimum ?? Number.MIN_SAFE_INTEGER;
    const max = Math.min(schema.maximum ?? Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER);
    return fc.oneof(fc.constantFrom(min, max, Math.min(min + 1, max), Math.max(max - 1, min)), fc.integer({ min: Math.max(min, -(2 ** 31)), max: Math.min(max, 2 ** 31) }), fc.double({ min, max, noNaN: true }).map(Math.floor)).map(String);
  }
  if (name === 'symbol' || name === 'market') return fc.oneof(fc.constantFrom('TATA_INR', 'tata_inr', 'RELIANCE_INR', 'NOPE'), fc.stringMatching(new RegExp(schema.pattern ?? '^[A-Z_]{1,20}$')));
  if (name === 'symbols') return fc.constantFrom('["TATA_INR"]', '["TATA_INR","HDFC_INR"]', '["NOPE"]', '[]', 'TATA_INR');
  if (name === 'from' || name === 'to') {
    return fc.oneof(fc.constantFrom('1970-01-01T00:00:00.000Z', '9999-12-31T23:59:59.999Z', '0', '253402300799999'), fc.date({ min: new Date(0), max: new Date(253_402_300_799_999), noInvalidDate: true }).map((d) => d.toISOString()));
  }
  if (schema.pattern) return fc.stringMatching(new RegExp(schema.pattern));
  return fc.string({ minLength: schema.minLength ?? 0, maxLength: Math.min(schema.maxLength ?? 50, 50) });
}

const portOf = (service: ServiceProcess) => /listening on \S+:(\d+),/.exec(service.output())?.[1];

async function metric(base: string, name: string): Promise<number> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  assert.ok(line, `${name} in /metrics`);
  return Number(line.split(' ')[1]);
}

/** Opens a WebSocket and collects what happens within `ms`: messages, and the close code and reason. */
function wsSession(url: string, frames: (string | Buffer)[], ms: number): Promise<{ messages: string[]; close: { code: number; reason: string } | null; error: string | null }> {
  return new Promise((resolve) => {
    const messages: string[] = [];
    let close: { code: number; reason: string } | null = null;
    let error: string | null = null;
    let socket: WebSocket;
    try {
      socket = new WebSocket(url);
    } catch (e) {
      return resolve({ messages, close, error: (e as Error).message });
    }
    const done = () => {
      clearTimeout(timer);
      socket.removeAllListeners();
      socket.on('error', () => {});
      socket.terminate();
      resolve({ messages, close, error });
    };
    const timer = setTimeout(done, ms);
    socket.on('open', () => {
      for (const f of frames) {
        try {
          socket.send(f);
        } catch {
          // the server may have closed it meanwhile
        }
      }
    });
    socket.on('message', (data) => messages.push(data.toString()));
    socket.on('close', (code, reason) => {
      close = { code, reason: reason.toString() };
      done();
    });
    socket.on('error', (e) => {
      error = e.message;
    });
  });
}

/** Writes raw bytes to the server and resolves with what it answered when it closed the connection (or after `ms`). */
function rawTcp(port: number, chunks: { data: Buffer | string; delayMs?: number }[], ms: number): Promise<{ answer: string; closedAfterMs: number | null }> {
  return new Promise((resolve) => {
    const started = Date.now();
    const socket = connect(port, '127.0.0.1');
    let answer = '';
    let finished = false;
    const finish = (closed: boolean) => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ answer, closedAfterMs: closed ? Date.now() - started : null });
    };
    const timer = setTimeout(() => finish(false), ms);
    socket.on('data', (d) => (answer += d.toString('latin1')));
    socket.on('close', () => finish(true));
    socket.on('error', () => finish(true));
    socket.on('connect', async () => {
      for (const c of chunks) {
        if (c.delayMs) await new Promise((r) => setTimeout(r, c.delayMs));
        if (socket.destroyed) return;
        socket.write(c.data);
      }
    });
  });
}

describe('hostile clients against a running service [postgres+redis]', async () => {
  const reason = REQUIRE ? null : ((await serverUnavailable()) ?? (await redisUnavailable()));
  if (reason) {
    it('skipped', { skip: reason }, () => {});
    return;
  }
  let fresh: Fresh & { dispose: () => Promise<void> };
  let names: ReturnType<typeof testNames>;
  let service: ServiceProcess;
  let base: string;
  let port: number;
  let readKey: string;
  let adminKey: string;
  let documented: { paths: string[]; parameters: string[] };
  let operations: { path: string; parameters: { name: string; in: string; required?: boolean; schema: Schema }[] }[];

  before(async () => {
    fresh = await freshDatabase('postgres');
    await migrate(fresh.db);
    await seed(fresh.db);
    await fresh.db.query(`INSERT INTO users (id, email) VALUES ('alice', 'alice@example.com')`);
    readKey = (await new ApiKeyRepository(fresh.db).create('alice', ['read'])).key;
    adminKey = (await new ApiKeyRepository(fresh.db).create('alice', ['read', 'trade', 'admin'])).key;
    names = testNames();
    service = spawnService({
      ...fresh.env, ...names.env, TRADESTORE_CONSUMER: 'hostile', TRADESTORE_MAINTENANCE_TICK_MS: '0',
      TRADESTORE_REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS), TRADESTORE_RATE_LIMIT: '1000000', TRADESTORE_AUTH_FAILURE_LIMIT: '1000000',
    });
    await waitFor('the service to listen', async () => Boolean(portOf(service)) || service.child.exitCode !== null);
    assert.ok(portOf(service), `the service did not start: ${service.output()}`);
    port = Number(portOf(service));
    base = `http://127.0.0.1:${port}`;
    const doc = (await (await fetch(`${base}/docs/json`)).json()) as { paths: Record<string, Record<string, { parameters?: { name: string }[] }>> };
    const parameters = new Set<string>();
    for (const ops of Object.values(doc.paths)) for (const op of Object.values(ops)) for (const p of op.parameters ?? []) parameters.add(p.name);
    documented = { paths: Object.keys(doc.paths), parameters: [...parameters] };
    operations = Object.entries(doc.paths).flatMap(([path, ops]) => (ops.get ? [{ path, parameters: (ops.get.parameters ?? []) as never }] : []));
  });

  after(async () => {
    service?.child.kill('SIGTERM');
    await service?.exited;
    killAll();
    await names?.cleanup();
    await fresh?.dispose();
  });

  it(`answers generated HTTP requests without a 500, and keeps running (seed ${SEED})`, async () => {
    const value = fc.oneof(
      fc.string({ maxLength: 30 }),
      fc.string({ unit: 'binary', maxLength: 30 }),
      fc.integer().map(String),
      fc.constantFrom('0', '-1', '1e309', 'NaN', '9007199254740993', '99999999999999999999', '1M', '1w', '3d', '1s', '[]', '["NOPE"]', '["TATA_INR"]', 'TATA_INR', '%', "' OR 1=1--"),
    );
    const request = fc.record({
      method: fc.constantFrom('GET', 'GET', 'GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD'),
      path: fc.oneof(
        fc.constantFrom(...documented.paths),
        fc.tuple(fc.constantFrom(...documented.paths), fc.string({ unit: 'binary', maxLength: 40 })).map(([p, s]) => p.replace(/\{[^}]+\}/, encodeURIComponent(s) || 'x')),
        fc.string({ unit: 'binary', maxLength: 60 }).map((s) => `/${encodeURIComponent(s)}`),
      ),
      query: fc.dictionary(fc.oneof(fc.constantFrom(...documented.parameters), fc.string({ maxLength: 10 })), value, { maxKeys: 5 }),
      key: fc.option(fc.oneof(fc.string({ maxLength: 80 }), fc.constant(readKey)), { nil: undefined }),
      body: fc.option(fc.oneof(fc.string({ maxLength: 200 }), fc.json()), { nil: undefined }),
      contentType: fc.constantFrom('application/json', 'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'nonsense'),
    });
    const failures: string[] = [];
    await fc.assert(
      fc.asyncProperty(request, async (r) => {
        const url = new URL(r.path, base);
        for (const [k, v] of Object.entries(r.query)) url.searchParams.append(k, v);
        const headers: Record<string, string> = { 'content-type': r.contentType };
        if (r.key !== undefined) headers['x-api-key'] = r.key;
        let response: Response;
        try {
          const hasBody = r.body !== undefined && r.method !== 'GET' && r.method !== 'HEAD';
          response = await fetch(url, { method: r.method, headers, body: hasBody ? r.body : undefined, signal: AbortSignal.timeout(10_000) });
        } catch (error) {
          // The client refused to send it (a header it cannot encode): nothing reached the server.
          if ((error as Error).name === 'TypeError' && !/fetch failed/.test((error as Error).message)) return true;
          throw new Error(`${r.method} ${url.pathname}${url.search}: no answer (${(error as Error).message}; cause ${String((error as { cause?: Error }).cause?.message)})`);
        }
        await response.arrayBuffer();
        // /health answers 503 when the service is degraded: that is its job, not a failure.
        if (response.status >= 500 && !(url.pathname === '/health' && response.status === 503)) failures.push(`${r.method} ${url.pathname}${url.search} → ${response.status}`);
        return true;
      }),
      { numRuns: 400, seed: SEED },
    );
    assert.deepEqual(failures.slice(0, 10), [], `requests answered with a server error (${failures.length})`);
    assert.equal(service.child.exitCode, null, 'the service is running');
  });

  it(`answers every documented endpoint, with parameters its document declares valid, without a server error (seed ${SEED})`, async () => {
    const request = fc.constantFrom(...operations).chain((op) =>
      fc.tuple(fc.constant(op), fc.tuple(...op.parameters.map((p) => (p.required ? valid(p.name, p.schema) : fc.option(valid(p.name, p.schema), { nil: undefined }))))),
    );
    const failures: string[] = [];
    await fc.assert(
      fc.asyncProperty(request, async ([op, values]) => {
        let path = op.path;
        const query = new URLSearchParams();
        op.parameters.forEach((p, i) => {
          const v = values[i];
          if (v === undefined) return;
          if (p.in === 'path') path = path.replace(`{${p.name}}`, encodeURIComponent(v));
          else query.append(p.name, v);
        });
        const url = `${base}${path}${query.size ? `?${query}` : ''}`;
        const response = await fetch(url, { headers: { 'x-api-key': adminKey }, signal: AbortSignal.timeout(10_000) });
        const body = await response.text();
        if (response.status >= 500) failures.push(`${path}?${query} → ${response.status} ${body.slice(0, 200)}`);
        return true;
      }),
      { numRuns: 500, seed: SEED },
    );
    assert.deepEqual(failures.slice(0, 10), [], `${failures.length} requests with declared-valid parameters got a server error`);
  });

  it('answers an inverted time range with the same 400 on every endpoint that takes one', async () => {
    const ranged = operations.flatMap((op) => {
      const names = op.parameters.map((p) => p.name);
      const pair = names.includes('startTime') ? (['startTime', 'endTime'] as const) : names.includes('from') ? (['from', 'to'] as const) : null;
      return pair ? [{ op, pair }] : [];
    });
    assert.ok(ranged.length >= 6, ranged.map((r) => r.op.path).join(', '));
    for (const { op, pair } of ranged) {
      const query = new URLSearchParams();
      for (const p of op.parameters) if (p.required && p.in === 'query') query.set(p.name, p.name === 'interval' ? '1h' : 'TATA_INR');
      const [start, end] = pair[0] === 'startTime' ? ['2000', '1000'] : ['2026-02-01T00:00:00Z', '2026-01-01T00:00:00Z'];
      query.set(pair[0], start);
      query.set(pair[1], end);
      // An id every kind of {id} accepts (strategies' text ids, backtests' and models' numbers).
      const path = op.path.replace('{symbol}', 'TATA_INR').replace('{id}', '1');
      const response = await fetch(`${base}${path}?${query}`, { headers: { 'x-api-key': adminKey } });
      const body = (await response.json()) as { error?: { code: string; message: string; parameter: string }; code?: number; msg?: string };
      assert.equal(response.status, 400, `${path}: ${JSON.stringify(body)}`);
      if (path.startsWith('/api/v3/')) assert.deepEqual(body, { code: -1130, msg: `Invalid data sent for a parameter '${pair[0]}': ${pair[0]}: must not be after ${pair[1]}` });
      else assert.deepEqual(body, { error: { code: 'invalid_parameter', message: `${pair[0]}: must not be after ${pair[1]}`, parameter: pair[0] } });
    }
  });

  it('answers raw TCP garbage with an error or a closed connection, and keeps running', async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.uint8Array({ maxLength: 300 }), fc.string({ maxLength: 300 }).map((s) => `GET /${s} HTTP/1.1\r\nHost: x\r\n\r\n`)), async (bytes) => {
        await rawTcp(port, [{ data: typeof bytes === 'string' ? bytes : Buffer.from(bytes) }], 300);
        return true;
      }),
      { numRuns: 60, seed: SEED },
    );
    assert.equal(service.child.exitCode, null, 'the service is running');
  });

  it('closes a trickled request at the request timeout, and refuses a body above the limit with 413', async () => {
    const trickle = [{ data: 'POST /v1/markets HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n' }];
    for (let i = 0; i < 40; i++) trickle.push({ data: ' ', delayMs: 200 } as never);
    const slow = await rawTcp(port, trickle, 8000);
    assert.ok(slow.closedAfterMs !== null && slow.closedAfterMs < REQUEST_TIMEOUT_MS + 3000, `closed after ${slow.closedAfterMs} ms (timeout ${REQUEST_TIMEOUT_MS} ms)`);
    const slowHeaders = await rawTcp(port, [{ data: 'GET /v1/markets HTTP/1.1\r\n' }, ...Array.from({ length: 40 }, () => ({ data: 'X-A: b\r\n', delayMs: 200 }))], 8000);
    assert.ok(slowHeaders.closedAfterMs !== null && slowHeaders.closedAfterMs < REQUEST_TIMEOUT_MS + 3000, `headers: closed after ${slowHeaders.closedAfterMs} ms`);
    const big = await fetch(`${base}/v1/markets`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ x: 'a'.repeat(2 * 1024 * 1024) }) });
    assert.equal(big.status, 413);
  });

  it('closes WebSockets on hostile paths and frames, with reasons the protocol allows, and keeps running', async () => {
    const ws = `ws://127.0.0.1:${port}`;
    // The example of the class: a long non-ASCII stream name, whose reason would pass 123 bytes.
    const long = await wsSession(`${ws}/stream?streams=${encodeURIComponent('é'.repeat(200))}`, [], 3000);
    assert.equal(long.close?.code, 1008, JSON.stringify(long));
    assert.ok(Buffer.byteLength(long.close!.reason) <= 123);
    const oversized = await wsSession(`${ws}/ws`, ['x'.repeat(FRAME_LIMIT + 1)], 3000);
    assert.equal(oversized.close?.code, 1009, JSON.stringify(oversized));
    const flood = await wsSession(`${ws}/ws`, Array.from({ length: 30 }, (_, i) => JSON.stringify({ method: 'LIST_SUBSCRIPTIONS', id: i })), 3000);
    assert.equal(flood.close?.code, 1008, JSON.stringify(flood.close));
    const frame = fc.oneof(
      fc.string({ maxLength: 200 }),
      fc.json(),
      fc.record({
        method: fc.oneof(fc.constantFrom('SUBSCRIBE', 'UNSUBSCRIBE', 'LIST_SUBSCRIPTIONS'), fc.string()),
        params: fc.oneof(fc.array(fc.oneof(fc.string({ unit: 'binary', maxLength: 80 }), fc.constantFrom('tata_inr@trade', 'tata_inr@kline_1M', 'tata_inr@ticker', 'tata_inr@kline_3d'))), fc.anything()),
        id: fc.anything(),
      }).map((f) => JSON.stringify(f) ?? 'null'),
      fc.uint8Array({ maxLength: 100 }).map((b) => Buffer.from(b)),
    );
    const path = fc.oneof(
      fc.string({ unit: 'binary', maxLength: 150 }).map((s) => `/ws/${encodeURIComponent(s)}`),
      fc.array(fc.string({ unit: 'binary', maxLength: 40 }), { maxLength: 5 }).map((a) => `/stream?streams=${encodeURIComponent(a.join('/'))}`),
      fc.constant('/ws'),
    );
    await fc.assert(
      fc.asyncProperty(path, fc.array(frame, { maxLength: 5 }), async (p, frames) => {
        await wsSession(`${ws}${p}`, frames, 250);
        return true;
      }),
      { numRuns: 120, seed: SEED },
    );
    assert.equal(service.child.exitCode, null, 'the service is running');
  });

  it('is still serving afterwards, and no rejection reached the last line of defence', async () => {
    const health = await fetch(`${base}/health`);
    assert.ok([200, 503].includes(health.status));
    assert.ok(((await health.json()) as { database: { ok: boolean } }).database.ok);
    const markets = await fetch(`${base}/api/v3/exchangeInfo`);
    assert.equal(markets.status, 200);
    assert.equal(await metric(base, 'tradestore_unhandled_errors_total'), 0, service.output().slice(-2000));
    assert.doesNotMatch(service.output(), /unhandled rejection/);
  });
});

describe('the service where Redis goes away, or its port is taken [postgres+own redis]', async () => {
  const reason = REQUIRE ? null : await serverUnavailable();
  let noRedisServer: string | null = null;
  try {
    execFileSync('redis-server', ['--version']);
  } catch {
    noRedisServer = 'redis-server is not installed';
  }
  if (reason || noRedisServer) {
    it('skipped', { skip: reason ?? noRedisServer! }, () => {});
    return;
  }
  let fresh: Fresh & { dispose: () => Promise<void> };
  let redis: OwnRedis;
  let service: ServiceProcess;
  let base: string;
  let key: string;

  before(async () => {
    fresh = await freshDatabase('postgres');
    await migrate(fresh.db);
    await seed(fresh.db);
    await fresh.db.query(`INSERT INTO users (id, email) VALUES ('alice', 'alice@example.com')`);
    key = (await new ApiKeyRepository(fresh.db).create('alice', ['read'])).key;
    redis = new OwnRedis(await freePort(), false);
    await redis.start();
    service = spawnService({ ...fresh.env, REDIS_URL: redis.url, HOST: '127.0.0.1', TRADESTORE_CONSUMER: 'no-redis', TRADESTORE_MAINTENANCE_TICK_MS: '0', TRADESTORE_RATE_LIMIT: '30', TRADESTORE_AUTH_FAILURE_LIMIT: '3' });
    await waitFor('the service to listen', async () => Boolean(portOf(service)) || service.child.exitCode !== null);
    assert.ok(portOf(service), service.output());
    base = `http://127.0.0.1:${portOf(service)}`;
  });

  after(async () => {
    service?.child.kill('SIGTERM');
    await service?.exited;
    killAll();
    await redis?.destroy();
    await fresh?.dispose();
  });

  it('logs the address it is bound to (HOST)', () => {
    assert.match(service.output(), new RegExp(`listening on 127\\.0\\.0\\.1:${portOf(service)}`));
  });

  it('refuses invalid keys per client address before looking them up', async () => {
    const bad = 'ts_000000000000_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';
    // Sent at once: each is counted before its lookup, so at most the limit (3) get as far as a lookup.
    const statuses = await Promise.all(Array.from({ length: 12 }, () => fetch(`${base}/v1/account/balances`, { headers: { 'x-api-key': bad } }).then((r) => r.status)));
    assert.ok(statuses.filter((s) => s === 401).length <= 3 && statuses.filter((s) => s === 429).length >= 9, statuses.join(','));
    // No path is exempt from the count (the request rate limit lets /health and the docs through).
    for (const path of ['/health', '/docs/json', '/dashboard/nope']) {
      assert.equal((await fetch(`${base}${path}`, { headers: { 'x-api-key': bad } })).status, 429, path);
    }
    const body = (await (await fetch(`${base}/v1/account/balances`, { headers: { 'x-api-key': key } })).json()) as { error: { code: string } };
    assert.equal(body.error.code, 'too_many_invalid_keys', 'the address is refused whatever the key, until the window ends');
  });

  it('exits non-zero with the reason when its port is taken, leaving nothing running', async () => {
    const port = portOf(service)!;
    const second = spawnService({ ...fresh.env, REDIS_URL: redis.url, HOST: '127.0.0.1', PORT: port, TRADESTORE_CONSUMER: 'second', TRADESTORE_MAINTENANCE_TICK_MS: '0' });
    const code = await Promise.race([second.exited, new Promise((r) => setTimeout(() => r('still running'), 30_000))]);
    assert.equal(code, 1, second.output());
    assert.match(second.output(), /EADDRINUSE|address already in use/);
  });

  it('keeps serving reads from PostgreSQL with Redis down, limits rates in process, and says so in /health', async () => {
    await redis.stop();
    const reads = ['/api/v3/exchangeInfo', '/api/v3/klines?symbol=TATA_INR&interval=1m', '/api/v3/ticker/24hr?symbol=TATA_INR', '/v1/markets', '/api/v3/depth?symbol=TATA_INR'];
    for (const path of reads) {
      const started = Date.now();
      const response = await fetch(`${base}${path}`, { signal: AbortSignal.timeout(10_000) });
      assert.equal(response.status, 200, `${path}: ${await response.text()}`);
      assert.ok(Date.now() - started < 5000, `${path} took ${Date.now() - started} ms`);
    }
    const health = await fetch(`${base}/health`);
    assert.equal(health.status, 503);
    const body = (await health.json()) as { api: { cache: string; rateLimits: string }; causes: string[]; database: { ok: boolean } };
    assert.deepEqual(body.api, { cache: 'bypassed', rateLimits: 'in process' });
    assert.ok(body.database.ok);
    assert.ok(body.causes.some((c) => /api: Redis unreachable/.test(c)), body.causes.join('; '));
    let limited = 0;
    for (let i = 0; i < 40; i++) if ((await fetch(`${base}/v1/markets`)).status === 429) limited++;
    assert.ok(limited > 0, 'the rate limit still holds with Redis down');
    assert.equal(service.child.exitCode, null);
  });

});
