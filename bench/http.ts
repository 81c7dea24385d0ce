import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import pg from 'pg';
import { PostgresDatabase } from '../src/database/postgres.ts';
import { migrate } from '../src/schema/migrator.ts';
import { seed } from '../src/schema/seed.ts';
import { ApiKeyRepository } from '../src/store/apiKeys.ts';
import { applyInBatches, decodeEntries } from './apply.ts';
import type { BenchTarget } from './ingest.ts';

export interface HttpResults {
  concurrency: number;
  requests_per_endpoint: number;
  health_p50_ms: number;
  health_p99_ms: number;
  klines_p50_ms: number;
  klines_p99_ms: number;
  trades_p50_ms: number;
  trades_p99_ms: number;
  ticker_p50_ms: number;
  ticker_p99_ms: number;
  balances_p50_ms: number;
  balances_p99_ms: number;
  sql_klines_p50_ms: number;
  sql_klines_p99_ms: number;
}

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const DAY = 86_400_000;

function percentiles(samples: number[]): [number, number] {
  const s = [...samples].sort((a, b) => a - b);
  const at = (p: number) => s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
  return [Number(at(50).toFixed(2)), Number(at(99).toFixed(2))];
}

/** Runs `one` `total` times with `concurrency` in flight; returns each call's milliseconds. */
async function load(total: number, concurrency: number, one: () => Promise<void>): Promise<number[]> {
  const times: number[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < total) {
        next += 1;
        const t0 = performance.now();
        await one();
        times.push(performance.now() - t0);
      }
    }),
  );
  return times;
}

/** A day of TATA_INR trades (one every 4 s: 1,440 one-minute candles) and a user with balances, applied in batches. */
async function prepare(db: PostgresDatabase): Promise<void> {
  await db.query(`INSERT INTO users (id, email) VALUES ('bench', 'bench@example.com')`);
  const now = Date.now();
  const messages: string[] = [];
  for (let i = 0; i < DAY / 4000; i++) {
    const price = (130 + Math.sin(i / 200) * 5 + (i % 7) / 100).toFixed(2);
    messages.push(JSON.stringify({ type: 'TRADE_ADDED', data: { market: 'TATA_INR', id: `b${i}`, price, quantity: `${1 + (i % 9)}.25`, isBuyerMaker: i % 2 === 0, timestamp: now - DAY + i * 4000 } }));
  }
  for (const asset of ['INR', 'TATA', 'RELIANCE', 'HDFC']) {
    messages.push(JSON.stringify({ type: 'BALANCE_UPDATE', data: { userId: 'bench', asset, availableChange: '1000.5', changeType: 'deposit' } }));
  }
  await applyInBatches(db, decodeEntries(messages, 'bench-http'), 2000);
}

export async function benchHttp(target: BenchTarget, options = { concurrency: 16, requests: 2000 }): Promise<HttpResults> {
  const name = `tradestore_bench_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: target.adminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(target.adminUrl);
  url.pathname = `/${name}`;
  const db = await PostgresDatabase.open({ url: url.toString(), max: options.concurrency });
  const prefix = `tradestore-bench-http:${randomBytes(4).toString('hex')}`;
  let child: ReturnType<typeof spawn> | null = null;
  try {
    await migrate(db);
    await seed(db);
    await prepare(db);
    const key = (await new ApiKeyRepository(db).create('bench', ['read'])).key;
    // The API as its own process (as deployed), against the same PostgreSQL and Redis.
    child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'start', '--no-ingest'], {
      cwd: ROOT,
      env: { ...process.env, DATABASE_URL: url.toString(), REDIS_URL: target.redisUrl, PORT: '0', TRADESTORE_RATE_LIMIT: '10000000', TRADESTORE_STREAM: `${prefix}:events`, TRADESTORE_REDIS_PREFIX: `${prefix}:` },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout!.on('data', (d) => (output += d));
    child.stderr!.on('data', (d) => (output += d));
    const deadline = Date.now() + 30_000;
    let port = '';
    while (!(port = /localhost:(\d+)/.exec(output)?.[1] ?? '')) {
      if (Date.now() > deadline || child.exitCode !== null) throw new Error(`the API did not start:\n${output}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    const base = `http://127.0.0.1:${port}`;
    const get = (path: string, headers: Record<string, string> = {}) => async () => {
      const response = await fetch(`${base}${path}`, { headers });
      if (response.status !== 200) throw new Error(`${path} answered ${response.status}: ${await response.text()}`);
      await response.arrayBuffer();
    };
    const endpoints = {
      health: get('/health'),
      klines: get('/api/v3/klines?symbol=TATA_INR&interval=1m&limit=500'),
      trades: get('/api/v3/trades?symbol=TATA_INR&limit=500'),
      ticker: get('/api/v3/ticker/24hr?symbol=TATA_INR'),
      balances: get('/v1/account/balances', { 'X-API-Key': key }),
    };
    const klinesSql = async () => {
      await db.query(
        `SELECT open_time, open_price::text, high_price::text, low_price::text, close_price::text, volume::text, quote_volume::text, trade_count,
                taker_buy_volume::text, taker_buy_quote_volume::text
           FROM ohlcv_1m WHERE market = $1 ORDER BY open_time DESC LIMIT 500`,
        ['TATA_INR'],
      );
    };
    // Warm up every path (connections, JIT, caches), then measure one endpoint at a time.
    for (const f of [...Object.values(endpoints), klinesSql]) await load(200, options.concurrency, f);
    const result: Record<string, number> = { concurrency: options.concurrency, requests_per_endpoint: options.requests };
    for (const [endpoint, f] of Object.entries(endpoints)) {
      target.log(`http: ${endpoint}, ${options.requests} requests at concurrency ${options.concurrency}…`);
      [result[`${endpoint}_p50_ms`], result[`${endpoint}_p99_ms`]] = percentiles(await load(options.requests, options.concurrency, f));
    }
    target.log(`http: the klines SQL directly, ${options.requests} queries at concurrency ${options.concurrency}…`);
    [result.sql_klines_p50_ms, result.sql_klines_p99_ms] = percentiles(await load(options.requests, options.concurrency, klinesSql));
    return result as unknown as HttpResults;
  } finally {
    if (child && child.exitCode === null) {
      child.kill('SIGTERM');
      await new Promise((r) => child!.once('exit', r));
    }
    await db.close();
    const redis = new Redis(target.redisUrl);
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length) await redis.del(...keys);
    redis.disconnect();
    const a = new pg.Client({ connectionString: target.adminUrl });
    await a.connect();
    await a.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await a.end();
  }
}
