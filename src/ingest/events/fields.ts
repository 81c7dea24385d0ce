import { canonicalDecimal } from '../apply/decimals.ts';
import { isLosslessNumber, stringify } from 'lossless-json';
import { z } from 'zod';

/**
 * Field types shared by every event schema. Messages are parsed with lossless-json, so a JSON
 * number arrives as a LosslessNumber that keeps the literal text the producer wrote: 0.5 stays
 * "0.5", and no float ever rounds a price. A decimal may come as a JSON number or a JSON string;
 * both become the same canonical text.
 */

/** LosslessNumber → its literal text; anything else unchanged. */
const literal = (value: unknown) => (isLosslessNumber(value) ? value.value : value);

const DECIMAL = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d{1,3})?$/;
const MAX_DECIMAL_TEXT = 64;

type Sign = 'any' | 'positive' | 'nonNegative';

/** A decimal number (JSON number or string) → its canonical plain text, e.g. "1e-8" → "0.00000001". */
export function decimal(sign: Sign = 'any') {
  return z.preprocess(literal, z
    .string({ error: 'expected a decimal number' })
    .max(MAX_DECIMAL_TEXT, { error: `expected a decimal number of at most ${MAX_DECIMAL_TEXT} characters` })
    .regex(DECIMAL, { error: (issue) => `expected a decimal number, got ${JSON.stringify(issue.input)}` })
    .transform((text, ctx) => {
      const value = canonicalDecimal(text);
      if (sign === 'positive' && (value === '0' || value.startsWith('-'))) {
        ctx.issues.push({ code: 'custom', message: `must be greater than 0, got ${text}`, input: text });
        return z.NEVER;
      }
      if (sign === 'nonNegative' && value.startsWith('-')) {
        ctx.issues.push({ code: 'custom', message: `must not be negative, got ${text}`, input: text });
        return z.NEVER;
      }
      return value;
    }));
}

const EARLIEST = Date.UTC(2000, 0, 1);
const LATEST = Date.UTC(2100, 0, 1);

/**
 * A moment: epoch milliseconds (JSON number or numeric string, as seed 000 engines send) or an
 * ISO-8601 string with a zone. Values before 2000 are refused: they are almost always seconds
 * sent where milliseconds were expected.
 */
export const timestamp = z.preprocess(literal, z
  .unknown()
  .transform((value, ctx) => {
    if (typeof value !== 'string' && typeof value !== 'number') {
      ctx.issues.push({ code: 'custom', message: 'expected epoch milliseconds or an ISO-8601 time', input: value });
      return z.NEVER;
    }
    let ms: number;
    if (typeof value === 'number') ms = Number.isFinite(value) && value >= 0 ? Math.floor(value) : Number.NaN;
    else if (/^\d{1,16}(\.\d+)?$/.test(value)) ms = Math.floor(Number(value));
    else if (/^\d{4}-\d{2}-\d{2}T[\d:.]+(Z|[+-]\d{2}:?\d{2})$/.test(value)) ms = Date.parse(value);
    else ms = Number.NaN;
    const text = String(value);
    if (!Number.isFinite(ms)) {
      ctx.issues.push({ code: 'custom', message: `expected epoch milliseconds or an ISO-8601 time with a zone, got ${JSON.stringify(text)}`, input: value });
      return z.NEVER;
    }
    if (ms < EARLIEST || ms >= LATEST) {
      ctx.issues.push({
        code: 'custom',
        message: `${text} is not between 2000 and 2100 as epoch milliseconds (seconds instead of milliseconds?)`,
        input: value,
      });
      return z.NEVER;
    }
    return new Date(ms);
  }));

/** An id assigned outside tradestore, kept as the text it arrives as (numbers too). */
export function externalId(max = 255) {
  return z.preprocess(literal, z
    .union([z.string(), z.number()], { error: 'expected an id (string or number)' })
    .transform((v) => String(v))
    .pipe(z.string().min(1, { error: 'must not be empty' }).max(max, { error: `must be at most ${max} characters` })));
}

/** A market or symbol name: letters, digits and _ . - / : (no spaces, no quotes). */
export function symbol(max = 50) {
  return z
    .string({ error: 'expected a symbol' })
    .regex(/^[A-Za-z0-9_.\-/:]+$/, { error: (issue) => `expected a symbol like TATA_INR, got ${JSON.stringify(issue.input)}` })
    .max(max, { error: `must be at most ${max} characters` });
}

export const bool = z
  .union([z.boolean(), z.enum(['true', 'false'])], { error: 'expected true or false' })
  .transform((v) => v === true || v === 'true');

/** 'buy' or 'sell' in any case ('BUY', 'Buy'), stored lower case. */
export const side = z
  .string({ error: 'expected "buy" or "sell"' })
  .transform((v) => v.toLowerCase())
  .pipe(z.enum(['buy', 'sell'], { error: (issue) => `expected "buy" or "sell", got ${JSON.stringify(issue.input)}` }));

/** A small integer such as a count (JSON number or string). */
export const count = z.preprocess(literal, z
  .union([z.string(), z.number()], { error: 'expected a non-negative integer' })
  .transform((v) => String(v))
  .pipe(z.string().regex(/^\d{1,9}$/, { error: 'expected a non-negative integer' }))
  .transform(Number));

/**
 * Free-form JSON (signals, details, features) → JSON text for a ::jsonb parameter, written with
 * the numbers exactly as they arrived.
 */
export const jsonObject = z
  .custom<Record<string, unknown>>((v) => typeof v === 'object' && v !== null && !Array.isArray(v) && !isLosslessNumber(v), {
    error: 'expected a JSON object',
  })
  .transform((v) => stringify(v) ?? '{}');

/** A JSON array (positions of a portfolio snapshot) → JSON text, numbers exactly as they arrived. */
export const jsonArray = z
  .array(z.unknown(), { error: 'expected a JSON array' })
  .max(10_000)
  .transform((v) => stringify(v) ?? '[]');
