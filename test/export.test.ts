import { before, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'csv-parse/sync';
import { MemoryBus } from '../src/bus/memory.ts';
import { migrate } from '../src/schema/migrator.ts';
import { seed } from '../src/schema/seed.ts';
import { exportRows, type ExportRequest } from '../src/ops/export.ts';
import type { Database } from '../src/database/types.ts';
import { eachBackend } from './helpers/backends.ts';
import { ingest, tradeMsg } from './helpers/ingest.ts';
import { runCli } from './helpers/cli.ts';

const DAY = 86_400_000;
const START = Date.UTC(2026, 0, 1, 9, 30);

/** Everything an export writes, as text. */
async function exported(db: Database, request: ExportRequest): Promise<{ text: string; rows: number; bytes: number }> {
  const chunks: Buffer[] = [];
  const done = await exportRows(db, request, (c) => void chunks.push(Buffer.from(c)));
  return { text: Buffer.concat(chunks).toString('utf8'), ...done };
}

eachBackend('export', (get) => {
  before(async () => {
    const { db } = get();
    await migrate(db);
    await seed(db);
    // 400 trades over 100 days, several in some microseconds-apart instants.
    const trades = Array.from({ length: 400 }, (_, i) => tradeMsg('TATA_INR', `e${i}`, (100 + (i % 37) / 4).toFixed(2), `${1 + (i % 7)}.25`, START + Math.floor(i / 2) * (DAY / 4) + (i % 2), i % 3 === 0));
    await ingest(db, new MemoryBus(), trades);
    await db.query(`INSERT INTO system_logs (level, category, message) VALUES ('info', 'export-test', $1)`, ['a,"b"\\c\nd\te ünïcødé ✓']);
  });

  it('exports trades as CSV in order, equal to the table, and the same in time slices (embedded)', async () => {
    const { db } = get();
    const whole = await exported(db, { what: 'trades', market: 'TATA_INR', format: 'csv' });
    const records = parse(whole.text, { columns: true }) as Record<string, string>[];
    const { rows } = await db.query<{ id: string; price: string; executed_at: Date }>(`SELECT id, price::text, executed_at FROM trades WHERE market = 'TATA_INR' ORDER BY executed_at, sequence_number`);
    assert.equal(whole.rows, 400);
    assert.equal(whole.bytes, Buffer.byteLength(whole.text));
    assert.deepEqual(records.map((r) => [r.id, r.price]), rows.map((r) => [r.id, r.price]));
    assert.ok(Object.keys(records[0]!).includes('quote_quantity'), 'every column, with a header');
    // Slices of ~7 rows: the same bytes, one header.
    const sliced = await exported(db, { what: 'trades', market: 'TATA_INR', format: 'csv', sliceRows: 7 });
    assert.equal(sliced.text, whole.text);
  });

  it('exports [from, to) only, candles of a stored interval, and any table as JSON lines that round-trip every character', async () => {
    const { db } = get();
    const from = new Date(START + 10 * DAY);
    const to = new Date(START + 20 * DAY);
    const range = parse((await exported(db, { what: 'trades', market: 'TATA_INR', from, to, format: 'csv', sliceRows: 5 })).text, { columns: true }) as Record<string, string>[];
    const { rows: want } = await db.query<{ id: string }>(`SELECT id FROM trades WHERE executed_at >= $1 AND executed_at < $2 ORDER BY executed_at, sequence_number`, [from, to]);
    assert.deepEqual(range.map((r) => r.id), want.map((r) => r.id));
    assert.ok(want.length > 30);
    // Seed 000's yearly export of daily candles.
    const candles = await exported(db, { what: 'candles', market: 'TATA_INR', interval: '1d', from: new Date('2026-01-01'), to: new Date('2027-01-01'), format: 'jsonl' });
    const lines = candles.text.trimEnd().split('\n').map((l) => JSON.parse(l) as { open_time: string; close_price: number; volume: number });
    const { rows: days } = await db.query<{ open_time: Date; close_price: string }>(`SELECT open_time, close_price::text FROM ohlcv_1d WHERE market = 'TATA_INR' ORDER BY open_time`);
    assert.equal(lines.length, days.length);
    assert.deepEqual(lines.map((l) => [new Date(l.open_time).getTime(), String(l.close_price)]), days.map((d) => [d.open_time.getTime(), String(Number(d.close_price))]));
    const logs = (await exported(db, { what: 'system_logs', format: 'jsonl' })).text.trimEnd().split('\n').map((l) => JSON.parse(l) as { message: string; category: string });
    assert.equal(logs.find((l) => l.category === 'export-test')?.message, 'a,"b"\\c\nd\te ünïcødé ✓');
    const csvLogs = parse((await exported(db, { what: 'system_logs', format: 'csv' })).text, { columns: true }) as Record<string, string>[];
    assert.equal(csvLogs.find((l) => l.category === 'export-test')?.message, 'a,"b"\\c\nd\te ünïcødé ✓');
  });

  it('refuses what it cannot export, naming the argument', async () => {
    const { db } = get();
    const refused = async (request: Partial<ExportRequest>, pattern: RegExp) =>
      assert.rejects(exported(db, { what: 'trades', format: 'csv', ...request } as ExportRequest), pattern);
    await refused({ what: 'candles', market: undefined, interval: '1d' }, /market: is required/);
    await refused({ market: undefined, exchange: 'NSE' }, /market: is required to export trades of an exchange/);
    assert.equal((await exported(db, { what: 'trades', format: 'csv' })).rows, 400, 'every market\'s trades without --market');
    await refused({ what: 'candles', market: 'TATA_INR', interval: '3m' }, /interval: must be a stored interval/);
    await refused({ what: 'no_such_table' }, /no table or view no_such_table/);
    await refused({ what: 'pg_authid' }, /no table or view/);
    await refused({ what: 'trades"; DROP TABLE trades; --' }, /must be candles, trades, or a table name/);
    await refused({ market: "TATA_INR' OR '1'='1" }, /must be a market symbol/);
    await refused({ what: 'users', from: new Date(0) }, /no time column/);
    await refused({ what: 'markets', market: 'TATA_INR', timeColumn: 'symbol', from: new Date(0) }, /no timestamp column/);
    await refused({ market: 'TATA_INR', from: new Date(2), to: new Date(1) }, /must be before --to/);
    assert.ok((await db.query(`SELECT 1 FROM trades LIMIT 1`)).rows.length, 'the table is still there');
  });

  it('is the CLI\'s export command: a whole file or none, progress, and exit 2 for a bad argument', async () => {
    const { env, db, backend } = get();
    // The CLI opens the database itself; an embedded one is one process's at a time.
    if (backend === 'embedded') await db.close();
    const dir = mkdtempSync(join(tmpdir(), 'tradestore-export-'));
    try {
      const file = join(dir, 'tata-2026.csv');
      const run = await runCli(['export', 'candles', '--market', 'TATA_INR', '--interval', '1d', '--from', '2026-01-01', '--to', '2027-01-01', '--out', file], env);
      assert.equal(run.code, 0, run.stderr);
      assert.match(run.stdout, /exported \d+ rows \([\d.]+ MB\) to .*tata-2026\.csv/);
      assert.ok(!existsSync(`${file}.partial`));
      assert.match(readFileSync(file, 'utf8'), /^market,open_time,/);
      const toStdout = await runCli(['export', 'trades', '--market', 'TATA_INR', '--format', 'jsonl'], env);
      assert.equal(toStdout.code, 0, toStdout.stderr);
      assert.equal(toStdout.stdout.trimEnd().split('\n').length, 400);
      assert.match(toStdout.stderr, /export: 400 rows/);
      for (const args of [['candles', '--market', 'TATA_INR'], ['trades', '--market', 'TATA_INR', '--format', 'xml'], ['trades', '--market', 'TATA_INR', '--from', 'yesterday'], ['nope_table'], []]) {
        const bad = await runCli(['export', ...args, '--out', join(dir, 'bad.csv')], env);
        assert.equal(bad.code, 2, `${args.join(' ')}: ${bad.stderr}`);
        assert.ok(!existsSync(join(dir, 'bad.csv')) && !existsSync(join(dir, 'bad.csv.partial')), 'no file left behind');
      }
      const unknown = await runCli(['export', 'trades', '--market', 'NOPE_INR'], env);
      assert.equal(unknown.code, 1);
      assert.match(unknown.stderr, /NOPE_INR/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
