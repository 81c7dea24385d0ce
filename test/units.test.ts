import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { renderSql } from '../src/schema/sqlBlocks.ts';
import { ConfigError, loadConfig } from '../src/config.ts';
import { encodeCopyText, quoteIdent } from '../src/database/copyText.ts';
import { redactUrl } from '../src/database/postgres.ts';
import Big from 'big.js';
import fc from 'fast-check';
import { canonicalDecimal, withScale } from '../src/ingest/apply/decimals.ts';

describe('migration SQL blocks', () => {
  const sql = ['A;', '-- @if timescaledb', 'T;', '-- @else', 'P;', '-- @end', 'B;'].join('\n');
  it('keeps the TimescaleDB branch only where TimescaleDB is installed', () => {
    assert.deepEqual(renderSql(sql, { timescaledb: true }).split('\n').filter(Boolean), ['A;', 'T;', 'B;']);
    assert.deepEqual(renderSql(sql, { timescaledb: false }).split('\n').filter(Boolean), ['A;', 'P;', 'B;']);
  });
  it('keeps line numbers, so database errors point at the file line', () => {
    assert.equal(renderSql(sql, { timescaledb: false }).split('\n').length, 7);
  });
  it('rejects unbalanced or unknown blocks with the file and line', () => {
    assert.throws(() => renderSql('-- @if timescaledb\nX;', { timescaledb: true }, 'f.sql'), /f\.sql:1: @if without @end/);
    assert.throws(() => renderSql('-- @end', { timescaledb: true }, 'f.sql'), /f\.sql:1: @end without @if/);
    assert.throws(() => renderSql('-- @if redis', { timescaledb: true }, 'f.sql'), /unknown feature "redis"/);
  });
});

describe('configuration', () => {
  it('defaults to the embedded database, the in-process bus and port 8080', () => {
    const { keyring, ...config } = loadConfig({});
    assert.equal(keyring(), null);
    assert.deepEqual({ ...config, ingest: { ...config.ingest, consumer: 'x' } }, {
      databaseUrl: null,
      dataDir: './.tradestore/db',
      redisUrl: null,
      redisCluster: false,
      port: 8080,
      host: '0.0.0.0',
      bus: { stream: 'tradestore:events', list: 'db_processor', keyPrefix: '', shards: 8 },
      sessions: { ttlMs: 15 * 60_000, refreshTtlMs: 30 * 86_400_000, login: { failures: 5, lockMs: 15 * 60_000 } },
      ingest: {
        consumer: 'x', batchSize: 2000, leaseMs: 3000, maxStarts: 5, maxPayloadBytes: 1024 * 1024, maxClockSkewMs: 300_000,
        stallMs: 30_000, deadLetterRetentionMs: 30 * 86_400_000,
      },
      maintenanceTickMs: 60_000,
      snapshotIntervalMs: 60_000,
      poolMax: 10,
      backup: { dir: './backups', keep: 7 },
      monitor: {
        intervalMs: 30_000,
        thresholds: { poolPercent: 90, slowQueryMs: 1000, lockWaitMs: 100, diskPercent: 85, replicationLagMs: 60_000, deadLetterWindowMs: 900_000 },
      },
      api: { rateLimit: 1200, rateWindowMs: 60_000, authFailureLimit: 20, requestTimeoutMs: 30_000, bodyLimitBytes: 1024 * 1024, wsMaxFrameBytes: 16 * 1024, wsConnectLimit: 300, wsPingMs: 20_000, metricsToken: null },
    });
    assert.match(config.ingest.consumer, /-\d+$/, 'host name and pid');
  });
  it('names the variable that is wrong', () => {
    assert.throws(() => loadConfig({ DATABASE_URL: 'not a url' }), (e: Error) => e instanceof ConfigError && /DATABASE_URL is not a URL/.test(e.message));
    assert.throws(() => loadConfig({ REDIS_URL: 'http://x' }), /REDIS_URL must start with redis: or rediss:/);
    assert.throws(() => loadConfig({ PORT: '80a' }), /PORT must be a port number/);
    assert.throws(() => loadConfig({ HOST: 'a b' }), /HOST must be an address or host name/);
    assert.throws(() => loadConfig({ TRADESTORE_REQUEST_TIMEOUT_MS: '5' }), /TRADESTORE_REQUEST_TIMEOUT_MS must be an integer from 100/);
    assert.throws(() => loadConfig({ TRADESTORE_BATCH_SIZE: '0' }), /TRADESTORE_BATCH_SIZE must be an integer from 1 to 10000/);
    assert.throws(() => loadConfig({ TRADESTORE_STREAM: 'a b' }), /TRADESTORE_STREAM must be 1-200 characters/);
    assert.throws(() => loadConfig({ TRADESTORE_RATE_LIMIT: '-1' }), /TRADESTORE_RATE_LIMIT must be an integer from 1/);
    assert.throws(() => loadConfig({ TRADESTORE_MAX_PAYLOAD_BYTES: '10' }), /TRADESTORE_MAX_PAYLOAD_BYTES must be an integer from 1024/);
    assert.throws(() => loadConfig({ TRADESTORE_MAX_CLOCK_SKEW_MS: 'soon' }), /TRADESTORE_MAX_CLOCK_SKEW_MS must be an integer/);
    assert.throws(() => loadConfig({ TRADESTORE_STALL_MS: '5' }), /TRADESTORE_STALL_MS must be an integer from 1000/);
    assert.throws(() => loadConfig({ TRADESTORE_DEAD_LETTER_DAYS: '0' }), /TRADESTORE_DEAD_LETTER_DAYS must be an integer from 1/);
    assert.throws(() => loadConfig({ TRADESTORE_MAINTENANCE_TICK_MS: '-1' }), /TRADESTORE_MAINTENANCE_TICK_MS must be an integer from 0/);
    assert.throws(() => loadConfig({ TRADESTORE_SNAPSHOT_INTERVAL_MS: 'soon' }), /TRADESTORE_SNAPSHOT_INTERVAL_MS must be an integer from 0/);
    assert.throws(() => loadConfig({ TRADESTORE_SHARDS: '6' }), /TRADESTORE_SHARDS must be a power of two from 1 to 1024 \(got "6"\)/);
    assert.throws(() => loadConfig({ TRADESTORE_SHARDS: '2048' }), /TRADESTORE_SHARDS must be an integer from 1 to 1024/);
    assert.throws(() => loadConfig({ TRADESTORE_LEASE_MS: '10' }), /TRADESTORE_LEASE_MS must be an integer from 500/);
    assert.throws(() => loadConfig({ TRADESTORE_REDIS_CLUSTER: 'maybe' }), /TRADESTORE_REDIS_CLUSTER must be 1 or 0/);
    assert.equal(loadConfig({ TRADESTORE_REDIS_CLUSTER: 'yes' }).redisCluster, true);
  });
  it('refuses the variables of the design before shards, saying what replaced them', () => {
    assert.throws(() => loadConfig({ TRADESTORE_GROUP: 'g' }), /TRADESTORE_GROUP is no longer used: workers no longer share a consumer group/);
    assert.throws(() => loadConfig({ TRADESTORE_CLAIM_IDLE_MS: '1000' }), /TRADESTORE_CLAIM_IDLE_MS is no longer used: .*TRADESTORE_LEASE_MS/);
    assert.throws(() => loadConfig({ TRADESTORE_MAX_DELIVERIES: '3' }), /use TRADESTORE_MAX_STARTS/);
    assert.throws(() => loadConfig({ TRADESTORE_DEAD_LETTERS: 'd' }), /dead letters are kept beside their shard/);
  });
  it('hides passwords in URLs it prints', () => {
    assert.equal(redactUrl('postgres://u:secret@h:5432/d'), 'postgres://u:***@h:5432/d');
  });
});

describe('decimal text', () => {
  it('is canonicalised as big.js writes it, for generated decimals of every form', () => {
    fc.assert(
      fc.property(fc.oneof(fc.stringMatching(/^[+-]?\d{1,20}(\.\d{0,12})?$/), fc.stringMatching(/^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d{1,2})?$/)), (text) => {
        assert.equal(canonicalDecimal(text), new Big(text.replace(/^\+/, '')).toFixed(), text);
      }),
      { numRuns: 20_000 },
    );
    assert.equal(withScale('2850.5'), '2850.50000000');
    assert.equal(withScale('3'), '3.00000000');
  });
});

describe('COPY text encoding', () => {
  it('escapes separators and writes NULL, booleans and dates', () => {
    const { text, count } = encodeCopyText(4, [['a\tb\\c\nd', null, true, new Date('2026-01-01T00:00:00Z')]]);
    assert.equal(count, 1);
    assert.equal(text, 'a\\tb\\\\c\\nd\t\\N\tt\t2026-01-01T00:00:00.000Z\n');
  });
  it('refuses identifiers that are not plain names', () => {
    assert.equal(quoteIdent('trades'), '"trades"');
    assert.throws(() => quoteIdent('trades; DROP TABLE users'), /not a plain SQL identifier/);
    assert.throws(() => quoteIdent('Trades'), /not a plain SQL identifier/);
  });
});
