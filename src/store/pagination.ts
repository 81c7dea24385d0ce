import { InvalidArgumentError } from './errors.ts';

/**
 * Keyset pagination: a page ends with a cursor that names its last row by (time, id); the next
 * page continues strictly after it. No OFFSET: every page costs the same, however deep.
 */
export interface Page<T> {
  items: T[];
  /** Pass as `cursor` to get the next page; null on the last page. */
  nextCursor: string | null;
  /** How many rows match, where the seed's query returns it. */
  total?: number;
}

export interface Position {
  time: Date;
  id: string;
}

export const PAGE = { default: 50, max: 500 } as const;

export function pageSize(value: number | undefined): number {
  if (value === undefined) return PAGE.default;
  if (!Number.isInteger(value) || value < 1) throw new InvalidArgumentError('limit', 'must be a positive integer');
  return Math.min(value, PAGE.max);
}

export function encodeCursor(p: Position): string {
  return Buffer.from(JSON.stringify([p.time.toISOString(), p.id])).toString('base64url');
}

export function decodeCursor(cursor: string | undefined): Position | null {
  if (cursor === undefined || cursor === '') return null;
  try {
    const [time, id] = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown[];
    const date = new Date(String(time));
    if (typeof time === 'string' && typeof id === 'string' && !Number.isNaN(date.getTime())) return { time: date, id };
  } catch {
    // fall through
  }
  throw new InvalidArgumentError('cursor', 'is not a cursor this API returned');
}

/** Builds a page from `limit + 1` rows read in order: the extra row only says there is more. */
export function pageOf<R, T>(rows: R[], limit: number, position: (r: R) => Position, map: (r: R) => T, total?: number): Page<T> {
  const more = rows.length > limit;
  const items = rows.slice(0, limit);
  const last = items.at(-1);
  return {
    items: items.map(map),
    nextCursor: more && last !== undefined ? encodeCursor(position(last)) : null,
    ...(total === undefined ? {} : { total }),
  };
}
