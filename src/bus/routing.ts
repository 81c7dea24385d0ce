import { CATALOGUE, EVENT_TYPES } from '../ingest/events/catalogue.ts';

/**
 * Which shard an event belongs to. Events are routed by their ordering key, so that all events
 * of one market, order, user, … land in one shard, whose single owner applies them in order.
 *
 * The rule, for an engine in any language that writes to the shard streams itself:
 *
 *   1. Parse the payload as JSON. Take `type`, and the fields of `data` that docs/EVENTS.md lists
 *      as the type's ordering key (the catalogue's `ordering`).
 *   2. Each field's text: a string as it is; an integer number (|n| < 2^53) as its decimal digits;
 *      anything else (missing, null, a fraction, a boolean, an object) as the empty string.
 *   3. If the first field's text is empty, or the type has no ordering key, the event has no
 *      ordering constraint: any shard will do.
 *   4. Otherwise key = prefix ":" text1 ":" text2 …, and shard = FNV-1a-32(UTF-8 bytes of key) mod N,
 *      where N (a power of two) is the number of shards (Redis key `<stream>:shards`).
 *
 * FNV-1a-32: h = 2166136261; for each byte b: h = (h XOR b) × 16777619 mod 2^32.
 *
 * The Lua script that moves the seed's list and the entry stream into the shards (scripts.ts,
 * ROUTE) implements the same rule inside Redis; a property test checks that both agree.
 */

/** Each type's ordering rule as [prefix, field, …], as the Lua router receives it. */
export const ROUTING: Record<string, readonly string[]> = Object.fromEntries(
  EVENT_TYPES.flatMap((type) => {
    const ordering = CATALOGUE[type].ordering;
    return ordering ? [[type, ordering as readonly string[]]] : [];
  }),
);

export function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (const byte of Buffer.from(text, 'utf8')) {
    h ^= byte;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/** A field's text in a routing key (rule 2). */
export function routingText(value: unknown): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' && Number.isInteger(value) && Math.abs(value) < 2 ** 53) return String(value);
  return '';
}

/** The routing key of a parsed message (rules 1–4), or null when it has no ordering constraint. */
export function routingKey(message: unknown): string | null {
  if (typeof message !== 'object' || message === null || Array.isArray(message)) return null;
  const { type, data } = message as { type?: unknown; data?: unknown };
  if (typeof type !== 'string' || !Object.hasOwn(ROUTING, type)) return null;
  if (typeof data !== 'object' || data === null || Array.isArray(data)) return null;
  const [prefix, ...fields] = ROUTING[type]!;
  const texts = fields.map((f) => routingText(Object.hasOwn(data, f) ? (data as Record<string, unknown>)[f] : undefined));
  if (texts[0] === '') return null;
  return `${prefix}:${texts.join(':')}`;
}

/** The shard of a payload among `shards`, or null when any shard will do (no key, not JSON). */
export function shardOf(payload: string, shards: number): number | null {
  let message: unknown;
  try {
    message = JSON.parse(payload);
  } catch {
    return null;
  }
  const key = routingKey(message);
  return key === null ? null : fnv1a(key) % shards;
}

