import { isLosslessNumber, parse } from 'lossless-json';
import type { z } from 'zod';
import { CATALOGUE, EVENT_TYPES, SCHEMA_VERSION, type EventType, type IngestEvent } from './catalogue.ts';

/** Larger payloads are refused before parsing (and kept whole in the dead letters). */
export const MAX_PAYLOAD_BYTES = 1024 * 1024;

export type DecodeResult = { ok: true; event: IngestEvent } | { ok: false; reason: string };

function formatIssues(error: z.ZodError): string {
  return error.issues
    .slice(0, 5)
    .map((issue) => `${['data', ...issue.path.map(String)].join('.')}: ${issue.message}`)
    .join('; ');
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v) && !isLosslessNumber(v);

/**
 * Turns one queue payload into a validated event, or a reason that names what is wrong.
 * Envelope: {"type": "...", "data": {...}} as seed 000 sends it, plus optional "version"
 * (default 1) and "eventId".
 */
export function decodeEvent(payload: string): DecodeResult {
  const bytes = Buffer.byteLength(payload);
  if (bytes > MAX_PAYLOAD_BYTES) return { ok: false, reason: `payload too large: ${bytes} bytes (limit ${MAX_PAYLOAD_BYTES})` };
  let message: unknown;
  try {
    message = parse(payload);
  } catch (error) {
    return { ok: false, reason: `malformed JSON: ${(error as Error).message}` };
  }
  if (!isObject(message)) return { ok: false, reason: 'a message must be a JSON object with "type" and "data"' };
  const { type, data } = message;
  if (typeof type !== 'string') return { ok: false, reason: 'missing "type" (a string such as "TRADE_ADDED")' };
  if (!(EVENT_TYPES as string[]).includes(type)) {
    return { ok: false, reason: `unknown type ${JSON.stringify(type.slice(0, 64))}; known types: ${EVENT_TYPES.join(', ')}` };
  }
  const rawVersion = isLosslessNumber(message.version) ? message.version.value : (message.version ?? '1');
  const version = Number(rawVersion);
  if (!Number.isInteger(version) || version < 1) return { ok: false, reason: `"version" must be a positive integer, got ${JSON.stringify(String(rawVersion))}` };
  if (version > SCHEMA_VERSION) return { ok: false, reason: `version ${version} of ${type} is newer than this tradestore understands (${SCHEMA_VERSION})` };
  const rawId = isLosslessNumber(message.eventId) ? message.eventId.value : message.eventId;
  if (rawId !== undefined && (typeof rawId !== 'string' || rawId.length === 0 || rawId.length > 255)) {
    return { ok: false, reason: '"eventId" must be a non-empty string of at most 255 characters' };
  }
  if (!isObject(data)) return { ok: false, reason: `missing "data" object for ${type}` };
  const spec = CATALOGUE[type as EventType];
  const parsed = spec.schema.safeParse(data);
  if (!parsed.success) return { ok: false, reason: `invalid ${type}: ${formatIssues(parsed.error)}` };
  const key = (spec.orderingKey as (d: unknown) => string | null)(parsed.data);
  return {
    ok: true,
    event: { type, version, eventId: (rawId as string | undefined) ?? null, data: parsed.data, key } as IngestEvent,
  };
}
