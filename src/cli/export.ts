import { createWriteStream, rmSync, renameSync, type WriteStream } from 'node:fs';
import { once } from 'node:events';
import { parseArgs } from 'node:util';
import { exportRows, type ExportFormat, type ExportProgress } from '../ops/export.ts';
import { InvalidArgumentError } from '../store/errors.ts';
import { dateOption, UsageError } from './usage.ts';
import type { OpenDatabase } from './admin.ts';

const megabytes = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MB`;

/** Writes to a stream, waiting when its buffer is full: memory stays bounded however much is exported. */
const writer = (stream: NodeJS.WritableStream) => async (chunk: Uint8Array) => {
  if (!stream.write(chunk)) await once(stream, 'drain');
};

/**
 * tradestore export candles|trades|TABLE [--market M] [--exchange E] [--interval I] [--from T]
 * [--to T] [--time-column C] [--format csv|jsonl] [--out FILE]: COPY TO, streamed. With --out the
 * file appears only once whole (written as FILE.partial, then renamed); progress goes to stderr.
 */
export async function exportCommand(open: OpenDatabase, args: string[], out: (line: string) => void): Promise<void> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    strict: true,
    options: {
      market: { type: 'string' }, exchange: { type: 'string' }, interval: { type: 'string' }, from: { type: 'string' }, to: { type: 'string' },
      'time-column': { type: 'string' }, format: { type: 'string' }, out: { type: 'string' },
    },
  });
  if (positionals.length !== 1) throw new UsageError('export needs what to export: candles, trades, or a table name');
  const format = (values.format ?? 'csv') as ExportFormat;
  if (format !== 'csv' && format !== 'jsonl') throw new UsageError(`--format must be csv or jsonl (got ${JSON.stringify(values.format)})`);
  const request = {
    what: positionals[0]!, market: values.market, exchange: values.exchange, interval: values.interval,
    from: dateOption('from', values.from), to: dateOption('to', values.to), timeColumn: values['time-column'], format,
  };
  const db = await open();
  let file: WriteStream | null = null;
  const partial = values.out ? `${values.out}.partial` : null;
  let last = Date.now();
  const progress = (p: ExportProgress) => {
    if (Date.now() - last < 1000) return;
    last = Date.now();
    process.stderr.write(`export: ${p.rows} rows, ${megabytes(p.bytes)}\n`);
  };
  try {
    if (partial) {
      file = createWriteStream(partial);
      await once(file, 'open');
    }
    const done = await exportRows(db, request, writer(file ?? process.stdout), progress);
    if (file) {
      file.end();
      await once(file, 'finish');
      renameSync(partial!, values.out!);
      out(`exported ${done.rows} rows (${megabytes(done.bytes)}) to ${values.out}`);
    } else process.stderr.write(`export: ${done.rows} rows, ${megabytes(done.bytes)}\n`);
  } catch (error) {
    if (file) {
      file.destroy();
      rmSync(partial!, { force: true });
    }
    if (error instanceof InvalidArgumentError) throw new UsageError(error.parameter === 'table' ? error.message : `--${error.message}`);
    throw error;
  }
}
