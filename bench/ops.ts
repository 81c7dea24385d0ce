import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import copyStreams from 'pg-copy-streams';
import { backupServer, restoreServer } from '../src/ops/backup.ts';
import { exportRows } from '../src/ops/export.ts';
import { benchTrades, scratchDatabase, type BenchTarget } from './ingest.ts';

const run = promisify(execFile);

export interface OpsResults {
  rows: number;
  archive_mb: number;
  pg_dump_mb: number;
  backup_ms: number;
  pg_dump_ms: number;
  restore_ms: number;
  pg_restore_ms: number;
  export_ms: number;
  export_mb: number;
  copy_to_ms: number;
  backup_vs_pg_dump: number;
  restore_vs_pg_restore: number;
  export_vs_copy: number;
}

const timed = async (fn: () => Promise<unknown>) => {
  const t0 = performance.now();
  await fn();
  return Math.round(performance.now() - t0);
};

/**
 * Backup, restore and export of a database with `rows` trades, each beside its reference on the
 * same data in the same run: pg_dump -Fc, pg_restore, and a raw COPY TO of the same query.
 * tradestore's backup also reads every table once more for the manifest's checksums, and its
 * restore reads them again to verify: the ratios show what that costs.
 */
export async function benchOps(target: BenchTarget, rows = 500_000): Promise<OpsResults> {
  const source = await scratchDatabase(target.adminUrl);
  const dir = mkdtempSync(join(tmpdir(), 'tradestore-bench-ops-'));
  const targets: { drop: () => Promise<void> }[] = [];
  try {
    target.log(`ops: loading ${rows} trades`);
    const data = benchTrades(rows).map((t) => [t.id, t.market, t.price, t.quantity, t.isBuyerMaker, new Date(t.timestamp)]);
    await source.db.copyFrom('trades', ['id', 'market', 'price', 'quantity', 'is_buyer_maker', 'executed_at'], data);
    await source.db.query('VACUUM ANALYZE trades');

    target.log('ops: pg_dump -Fc (reference)');
    const reference = join(dir, 'reference.dump');
    const pgDumpMs = await timed(() => run('pg_dump', ['--format=custom', '--no-owner', `--file=${reference}`, `--dbname=${source.url}`]));
    target.log('ops: tradestore backup');
    let archive = '';
    const backupMs = await timed(async () => {
      archive = (await backupServer(source.url, { outDir: join(dir, 'backups') })).archive;
    });

    target.log('ops: pg_restore (reference)');
    const plain = await scratchDatabase(target.adminUrl, { schema: false });
    targets.push(plain);
    const pgRestoreMs = await timed(() => run('pg_restore', ['--no-owner', '--exit-on-error', `--dbname=${plain.url}`, reference]));
    target.log('ops: tradestore restore (with verification)');
    const ours = await scratchDatabase(target.adminUrl, { schema: false });
    targets.push(ours);
    const restoreMs = await timed(async () => {
      const results = await restoreServer(archive, ours.url);
      if (results.some((r) => !r.ok)) throw new Error('the benchmark restore did not verify');
    });

    target.log('ops: raw COPY TO (reference) and tradestore export, the same query');
    const copyToMs = await timed(async () => {
      const client = new pg.Client({ connectionString: source.url });
      await client.connect();
      try {
        const stream = client.query(copyStreams.to(`COPY (SELECT * FROM (SELECT * FROM "trades") x ORDER BY x."executed_at", x."sequence_number") TO STDOUT WITH (FORMAT csv, HEADER true)`));
        for await (const _ of stream as AsyncIterable<Buffer>) void _;
      } finally {
        await client.end();
      }
    });
    let exportBytes = 0;
    const exportMs = await timed(async () => {
      exportBytes = (await exportRows(source.db, { what: 'trades', format: 'csv' }, () => {})).bytes;
    });
    const ratio = (a: number, b: number) => Number((a / b).toFixed(2));
    return {
      rows,
      archive_mb: Number((statSync(archive).size / 2 ** 20).toFixed(1)),
      pg_dump_mb: Number((statSync(reference).size / 2 ** 20).toFixed(1)),
      backup_ms: backupMs,
      pg_dump_ms: pgDumpMs,
      restore_ms: restoreMs,
      pg_restore_ms: pgRestoreMs,
      export_ms: exportMs,
      export_mb: Number((exportBytes / 2 ** 20).toFixed(1)),
      copy_to_ms: copyToMs,
      backup_vs_pg_dump: ratio(backupMs, pgDumpMs),
      restore_vs_pg_restore: ratio(restoreMs, pgRestoreMs),
      export_vs_copy: ratio(exportMs, copyToMs),
    };
  } finally {
    for (const t of targets) await t.drop().catch(() => {});
    await source.drop();
    rmSync(dir, { recursive: true, force: true });
  }
}
