import { isLosslessNumber, parse } from 'lossless-json';
import type { z } from 'zod';
import { CATALOGUE, EVENT_TYPES, orderingKey, SCHEMA_VERSION, type EventType, type IngestEvent } from './catalogue.ts';

/** Larger payloads are refused before parsing (and kept whole in the dead letters). */
export const MAX_PAYLOAD_BYTES = 1024 * 1024;
/** Events stamped further ahead of the server clock than this are refused. */
export const MAX_CLOCK_SKEW_MS = 5 * 60_000;
/** Deeper JSON is refused: no event schema nests more than a few levels. */
export const MAX_NESTING = 64;

export interface DecodeOptions {
  maxBytes?: number;
  maxSkewMs?: number;
  /** The server clock (epoch ms); default Date.now(). */
  now?: number;
}

export type DecodeResult = { ok: true; event: IngestEvent } | { ok: false; reason: string };

function formatIssues(error: z.ZodError): string {
  return error.issues
    .slice(0, 5)
    .map((issue) => `${['data', ...issue.path.map(String)].join('.')}: ${issue.message}`)
    .join('; ');
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v) && !isLosslessNumber(v);

/** How deeply `value` nests, counted without recursion (so a hostile depth cannot overflow the stack). */
function nestingExceeds(value: unknown, limit: number): boolean {
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length) {
    const [v, depth] = stack.pop()!;
    if (typeof v !== 'object' || v === null || isLosslessNumber(v)) continue;
    if (depth >= limit) return true;
    for (const child of Array.isArray(v) ? v : Object.values(v)) stack.push([child, depth + 1]);
  }
  return false;
}

/**
 * Turns one queue payload into a validated event, or a reason that names what is wrong. It never
 * throws: whatever goes wrong on the way (a library that refuses a value, a stack overflow) is a
 * reason too, so that one message can never stop the worker.
 * Envelope: {"type": "...", "data": {...}} as seed 000 sends it, plus optional "version"
 * (default 1) and "eventId".
 */
export function decodeEvent(payload: string, options: DecodeOptions = {}): DecodeResult {
  try {
    return decodeUnsafe(payload, options);
  } catch (error) {
    const e = error as Error;
    return { ok: false, reason: `could not be decoded: ${e?.name ?? 'Error'}: ${String(e?.message ?? e).slice(0, 300)}` };
  }
}

function decodeUnsafe(payload: string, options: DecodeOptions): DecodeResult {
  const maxBytes = options.maxBytes ?? MAX_PAYLOAD_BYTES;
  const bytes = Buffer.byteLength(payload);
  if (bytes > maxBytes) return { ok: false, reason: `payload too large: ${bytes} bytes (limit ${maxBytes}, TRADESTORE_MAX_PAYLOAD_BYTES)` };
  let message: unknown;
  try {
    message = parse(payload);
  } catch (error) {
    return { ok: false, reason: `malformed JSON: ${String((error as Error).message).slice(0, 300)}` };
  }
  if (nestingExceeds(message, MAX_NESTING)) return { ok: false, reason: `JSON nested more than ${MAX_NESTING} levels deep` };
  if (!isObject(message)) return { ok: false, reason: 'a message must be a JSON object with "type" and "data"' };
  const { type, data } = message;
  if (typeof type !== 'string') return { ok: false, reason: 'missing "type" (a string such as "TRADE_ADDED")' };
  if (!(EVENT_TYPES as string[]).includes(type)) {
    return { ok: false, reason: `unknown type ${JSON.stringify(type.slice(0, 64))}; known types: ${EVENT_TYPES.join(', ')}` };
  }
  const rawVersion = isLosslessNumber(message.version) ? message.version.value : (message.version ?? '1');
  const version = Number(rawVersion);
  if (!Number.isInteger(version) || version < 1) return { ok: false, reason: `"version" must be a positive integer, got ${JSON.stringify(String(rawVersion).slice(0, 64))}` };
  if (version > SCHEMA_VERSION) return { ok: false, reason: `version ${version} of ${type} is newer than this tradestore understands (${SCHEMA_VERSION})` };
  const rawId = isLosslessNumber(message.eventId) ? message.eventId.value : message.eventId;
  if (rawId !== undefined && (typeof rawId !== 'string' || rawId.length === 0 || rawId.length > 255)) {
    return { ok: false, reason: '"eventId" must be a non-empty string of at most 255 characters' };
  }
  if (!isObject(data)) return { ok: false, reason: `missing "data" object for ${type}` };
  const spec = CATALOGUE[type as EventType];
  const parsed = spec.schema.safeParse(data);
  if (!parsed.success) return { ok: false, reason: `invalid ${type}: ${formatIssues(parsed.error)}` };
  const now = options.now ?? Date.now();
  const maxSkewMs = options.maxSkewMs ?? MAX_CLOCK_SKEW_MS;
  for (const at of (spec.occurredAt as (d: unknown) => (Date | undefined)[])(parsed.data)) {
    if (at && at.getTime() > now + maxSkewMs) {
      return {
        ok: false,
        reason: `${type} is stamped ${at.toISOString()}, ${Math.round((at.getTime() - now) / 1000)} s ahead of the server clock ` +
          `(${new Date(now).toISOString()}; at most ${maxSkewMs / 1000} s allowed, TRADESTORE_MAX_CLOCK_SKEW_MS): is the producer's clock wrong?`,
      };
    }
  }
  const key = orderingKey(spec.ordering, parsed.data as Record<string, unknown>);
  return {
    ok: true,
    event: { type, version, eventId: (rawId as string | undefined) ?? null, data: parsed.data, key } as IngestEvent,
  };
}
