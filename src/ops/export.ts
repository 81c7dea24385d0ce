import type { Database, Queryable } from '../database/types.ts';
import { quoteIdent, quoteLiteral } from '../database/copyText.ts';
import { CANDLE_INTERVALS, type CandleInterval } from '../ingest/apply/candles.ts';
import { RETENTION, TIME_SERIES } from '../schema/lifecycle.ts';
import { InvalidArgumentError, NotFoundError } from '../store/errors.ts';

export type ExportFormat = 'csv' | 'jsonl';

/** What to export: `candles` of a market, `trades` (of a market, or all), or any table or view of the schema. */
export interface ExportRequest {
  what: string;
  market?: string;
  /** The exchange of an instrument (candles and trades of an exchange feed); the venue's own markets otherwise. */
  exchange?: string;
  /** Candles: a stored interval (1m, 5m, 15m, 1h, 4h, 1d), or an exchange feed's timeframe. */
  interval?: string;
  /** Rows with time in [from, to). */
  from?: Date;
  to?: Date;
  /** The time column of a table tradestore does not know one for. */
  timeColumn?: string;
  format: ExportFormat;
  /** Embedded: rows per slice, about (default 50 000). */
  sliceRows?: number;
  /** Only these columns, in this order (a table's; default every column). */
  columns?: readonly string[];
}

export interface ExportProgress {
  rows: number;
  bytes: number;
}

/** A query to export: the relation, its filters, its time column and its order. */
interface Source {
  relation: string;
  filters: string[];
  time: string | null;
  order: string[];
}

const SYMBOL = /^[A-Za-z0-9_.\-/:]{1,50}$/;
/** Rows per slice on the embedded database, which holds one statement's whole output in memory. */
const SLICE_ROWS = 50_000;

/** Time columns of the tables with one: the time series', the lifecycle's, and a few more. */
const TIME_COLUMNS: Record<string, string> = {
  ...Object.fromEntries(RETENTION.map((r) => [r.table, r.column])),
  ...TIME_SERIES,
  positions: 'opened_at',
  strategy_trades: 'entry_time',
};

/**
 * Streams rows out of the database with COPY TO, never holding them all: on a server as one
 * COPY read as it arrives; embedded, in time slices of about 50 000 rows each. CSV has a header
 * row; JSON lines have one object per row (decimals as JSON numbers, exactly as stored).
 */
export async function exportRows(db: Queryable & Pick<Database, 'backend'>, request: ExportRequest, write: (chunk: Uint8Array) => unknown, progress?: (p: ExportProgress) => void): Promise<ExportProgress> {
  const source = await sourceOf(db, request);
  const filters = [...source.filters];
  if (request.from || request.to) {
    if (!source.time) throw new InvalidArgumentError('from', `${request.what} has no time column tradestore knows: name it with --time-column`);
    if (request.from && request.to && request.from >= request.to) throw new InvalidArgumentError('from', 'must be before --to');
    if (request.from) filters.push(`${quoteIdent(source.time)} >= ${quoteLiteral(request.from.toISOString())}::timestamptz`);
    if (request.to) filters.push(`${quoteIdent(source.time)} < ${quoteLiteral(request.to.toISOString())}::timestamptz`);
  }
  const done: ExportProgress = { rows: 0, bytes: 0 };
  const counted = async (chunk: Uint8Array) => {
    done.bytes += chunk.length;
    await write(chunk);
  };
  const copy = async (extra: string[], header: boolean) => {
    const where = [...filters, ...extra];
    const list = request.columns ? request.columns.map(quoteIdent).join(', ') : '*';
    const select = `SELECT ${list} FROM ${quoteIdent(source.relation)}${where.length ? ` WHERE ${where.join(' AND ')}` : ''}`;
    const order = source.order.map((c) => `x.${quoteIdent(c)}`).join(', ');
    const [query, options] =
      request.format === 'csv'
        ? [`SELECT * FROM (${select}) x${order ? ` ORDER BY ${order}` : ''}`, `FORMAT csv, HEADER ${header}`]
        : // One JSON object per line: a one-column CSV whose delimiter and quote never occur in JSON text, so nothing is quoted or escaped.
          [`SELECT row_to_json(x)::text FROM (${select}) x${order ? ` ORDER BY ${order}` : ''}`, `FORMAT csv, DELIMITER E'\\x01', QUOTE E'\\x02'`];
    done.rows += await db.copyTo(query, options, counted);
    progress?.(done);
  };
  if (db.backend === 'postgres' || !source.time) {
    await copy([], true);
    return done;
  }
  // Embedded: the time range cut into slices of about SLICE_ROWS rows each.
  const time = quoteIdent(source.time);
  const { rows } = await db.query<{ n: string; first: Date | null; last: Date | null }>(
    `SELECT count(*)::text AS n, min(${time}) AS first, max(${time}) AS last FROM ${quoteIdent(source.relation)}${filters.length ? ` WHERE ${filters.join(' AND ')}` : ''}`,
  );
  const { n, first, last } = rows[0]!;
  if (!first || !last) {
    await copy([], true);
    return done;
  }
  const slices = Math.max(1, Math.ceil(Number(n) / (request.sliceRows ?? SLICE_ROWS)));
  const span = last.getTime() - first.getTime() + 1;
  const step = Math.max(1, Math.ceil(span / slices));
  for (let i = 0, start = first.getTime(); start <= last.getTime(); i++, start += step) {
    const end = start + step;
    // Millisecond bounds hold microsecond times: the first bound is the first time cut down, and
    // the last slice is open-ended, so no row is lost to rounding.
    const bounds = [`${time} >= ${quoteLiteral(new Date(start).toISOString())}::timestamptz`];
    if (end <= last.getTime()) bounds.push(`${time} < ${quoteLiteral(new Date(end).toISOString())}::timestamptz`);
    await copy(bounds, i === 0);
  }
  return done;
}

async function sourceOf(db: Queryable, r: ExportRequest): Promise<Source> {
  const market = r.market;
  if (market !== undefined && !SYMBOL.test(market)) throw new InvalidArgumentError('market', 'must be a market symbol such as TATA_INR');
  if (r.exchange !== undefined && !/^[A-Za-z0-9_.-]{1,50}$/.test(r.exchange)) throw new InvalidArgumentError('exchange', 'must be an exchange name');
  // The venue's trades of every market, in the order they were stored.
  if (r.what === 'trades' && !market && !r.exchange) return { relation: 'trades', filters: [], time: 'executed_at', order: ['executed_at', 'sequence_number'] };
  if (r.what === 'candles' || r.what === 'trades') {
    if (!market) throw new InvalidArgumentError('market', `is required to export ${r.what}${r.what === 'trades' ? ' of an exchange' : ''}`);
    if (r.exchange) {
      const found = await db.query('SELECT 1 FROM instruments WHERE exchange = $1 AND symbol = $2', [r.exchange, market]);
      if (!found.rows.length) throw new NotFoundError('market', `${r.exchange}:${market}`);
      const instrument = [`exchange = ${quoteLiteral(r.exchange)}`, `symbol = ${quoteLiteral(market)}`];
      if (r.what === 'trades') return { relation: 'market_trades', filters: instrument, time: 'time', order: ['time', 'trade_id'] };
      if (!r.interval || !/^[0-9]{1,3}[smhdwM]$/.test(r.interval)) throw new InvalidArgumentError('interval', 'is required: the timeframe of the candles, e.g. 1m or 1d');
      return { relation: 'market_data', filters: [...instrument, `timeframe = ${quoteLiteral(r.interval)}`], time: 'timestamp', order: ['timestamp'] };
    }
    const found = await db.query('SELECT 1 FROM markets WHERE symbol = $1', [market]);
    if (!found.rows.length) throw new NotFoundError('market', market);
    const filters = [`market = ${quoteLiteral(market)}`];
    if (r.what === 'trades') return { relation: 'trades', filters, time: 'executed_at', order: ['executed_at', 'sequence_number'] };
    if (!r.interval || !Object.hasOwn(CANDLE_INTERVALS, r.interval)) {
      throw new InvalidArgumentError('interval', `must be a stored interval: ${Object.keys(CANDLE_INTERVALS).join(', ')}`);
    }
    return { relation: CANDLE_INTERVALS[r.interval as CandleInterval].table, filters, time: 'open_time', order: ['open_time'] };
  }
  // Any table or view of the schema.
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(r.what)) throw new InvalidArgumentError('table', 'must be candles, trades, or a table name');
  const { rows: columns } = await db.query<{ name: string; type: string }>(
    `SELECT a.attname AS name, format_type(a.atttypid, NULL) AS type
       FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname = 'public' AND c.relname = $1 AND c.relkind IN ('r', 'p', 'v', 'm') AND a.attnum > 0 AND NOT a.attisdropped
      ORDER BY a.attnum`,
    [r.what],
  );
  if (!columns.length) throw new InvalidArgumentError('table', `no table or view ${r.what}: candles, trades, or a table of the schema`);
  const has = (name: string) => columns.find((c) => c.name === name);
  const time = r.timeColumn ?? TIME_COLUMNS[r.what] ?? null;
  if (time !== null && !/^timestamp/.test(has(time)?.type ?? '')) throw new InvalidArgumentError('time-column', `${r.what} has no timestamp column ${JSON.stringify(time)}`);
  const filters: string[] = [];
  if (market !== undefined) {
    const column = has('market') ? 'market' : has('symbol') ? 'symbol' : null;
    if (!column) throw new InvalidArgumentError('market', `${r.what} has no market or symbol column`);
    filters.push(`${column} = ${quoteLiteral(market)}`);
  }
  if (r.exchange !== undefined) {
    if (!has('exchange')) throw new InvalidArgumentError('exchange', `${r.what} has no exchange column`);
    filters.push(`exchange = ${quoteLiteral(r.exchange)}`);
  }
  return { relation: r.what, filters, time, order: time ? [time] : [] };
}
