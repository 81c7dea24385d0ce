import { z } from 'zod';
import { KLINE_INTERVALS, timeZoneOffset } from '../store/intervals.ts';
import { PUBLIC_TRADE_ID } from '../store/tradeIds.ts';

/** Request parameters, shared by the native and the Binance routes. Everything else is refused. */
export const symbolParam = z.string().regex(/^[A-Za-z0-9_.-]{1,50}$/, 'must be a market symbol such as TATA_INR (letters, digits, _ . -)');
export const exchangeParam = z.string().regex(/^[A-Za-z0-9_.-]{1,50}$/, 'must be an exchange name').optional();
export const intervalParam = z.enum(Object.keys(KLINE_INTERVALS) as [keyof typeof KLINE_INTERVALS, ...(keyof typeof KLINE_INTERVALS)[]]);
/**
 * The latest time the API accepts: the last millisecond of year 9999. Every interval added to it
 * (a month, a week) is still a valid date in JavaScript and in PostgreSQL, so a declared-valid
 * time can never overflow into an internal error.
 */
export const MAX_MILLIS = 253_402_300_799_999;
export const millis = z.coerce.number().int('must be epoch milliseconds').min(0, 'must be epoch milliseconds').max(MAX_MILLIS, 'must be epoch milliseconds up to 9999-12-31');
/**
 * `limit`, declared with the most the endpoint returns (the store's LIMITS, PAGE). Natively, more
 * is a 400. Under /api/v3 (`capped`), any 32-bit count is accepted and the answer is cut at `max`,
 * as Binance's spot API does.
 */
export const limitParam = (max: number, capped = false) =>
  capped
    ? z.coerce.number().int('must be an integer').min(1, 'must be at least 1').max(2_147_483_647, 'must be a 32-bit integer')
        .describe(`At most ${max} are returned; a larger limit is cut to ${max}, as Binance does.`)
    : z.coerce.number().int('must be an integer').min(1, 'must be at least 1').max(max, `must be at most ${max}`).describe(`At most ${max}.`);
export const cursorParam = z.string().max(500).optional();
export const dateParam = z.coerce
  .date({ error: 'must be a date (ISO 8601) or epoch milliseconds' })
  .min(new Date(0), 'must be a date from 1970-01-01')
  .max(new Date(MAX_MILLIS), 'must be a date up to 9999-12-31')
  .optional();

/**
 * A query with a time range [start, end]: an inverted range is the same 400 on every endpoint,
 * naming `start` ("startTime: must not be after endTime").
 */
export function timeRange<T extends z.ZodObject>(query: T, start = 'startTime', end = 'endTime'): T {
  return query.superRefine((q: Record<string, unknown>, ctx) => {
    const [a, b] = [q[start], q[end]];
    if (a !== undefined && b !== undefined && Number(a) > Number(b)) ctx.addIssue({ code: 'custom', path: [start], message: `must not be after ${end}` });
  }) as unknown as T;
}
/** A Binance trade id (`fromId`): the public trade ids of src/store/tradeIds.ts. */
export const tradeIdParam = z.string().regex(PUBLIC_TRADE_ID, 'must be a trade id');
export const idParam = z.string().regex(/^[A-Za-z0-9_.:@-]{1,255}$/, 'must be an id (letters, digits, _ . : @ -)');
/**
 * Binance's timeZone of klines: buckets (days, weeks, months, and hours where the offset is not
 * whole hours) are aligned in that time zone; times stay epoch milliseconds. Becomes the offset
 * in milliseconds.
 */
export const timeZoneParam = z
  .string()
  .max(6)
  .refine((v) => timeZoneOffset(v) !== null, 'must be an offset from UTC from -12:00 to +14:00: hours, or hours and minutes (8, -1:00, +05:45)')
  .transform((v) => timeZoneOffset(v)!)
  .optional()
  .describe('Offset from UTC that buckets are aligned in, from -12:00 to +14:00: hours, or hours and minutes (8, -1:00, +05:45). Default 0 (UTC).');

/** The filters of a list of strategy round trips (seed 002's getTradeHistory); `strategyId` where the list spans strategies. */
export const roundTripFilters = {
  symbol: symbolParam.optional(),
  status: z.enum(['open', 'closed', 'cancelled', 'partially_filled', 'all']).optional(),
  from: dateParam,
  to: dateParam,
  cursor: cursorParam,
};
