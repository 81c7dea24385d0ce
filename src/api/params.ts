import { z } from 'zod';
import { KLINE_INTERVALS } from '../store/intervals.ts';

/** Request parameters, shared by the native and the Binance routes. Everything else is refused. */
export const symbolParam = z.string().regex(/^[A-Za-z0-9_.-]{1,50}$/, 'must be a market symbol such as TATA_INR (letters, digits, _ . -)');
export const exchangeParam = z.string().regex(/^[A-Za-z0-9_.-]{1,50}$/, 'must be an exchange name').optional();
export const intervalParam = z.enum(Object.keys(KLINE_INTERVALS) as [keyof typeof KLINE_INTERVALS, ...(keyof typeof KLINE_INTERVALS)[]]);
export const millis = z.coerce.number().int('must be epoch milliseconds').min(0, 'must be epoch milliseconds').max(8.64e15);
export const limitParam = z.coerce.number().int('must be an integer').min(1, 'must be at least 1');
export const cursorParam = z.string().max(500).optional();
export const dateParam = z.coerce.date({ error: 'must be a date (ISO 8601) or epoch milliseconds' }).optional();
export const idParam = z.string().regex(/^[A-Za-z0-9_.:@-]{1,255}$/, 'must be an id (letters, digits, _ . : @ -)');
