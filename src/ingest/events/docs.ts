import { fnv1a } from '../../bus/routing.ts';
import { z } from 'zod';
import { CATALOGUE, EVENT_TYPES, SCHEMA_VERSION } from './catalogue.ts';
import { decodeEvent, MAX_CLOCK_SKEW_MS, MAX_PAYLOAD_BYTES } from './decode.ts';

/**
 * docs/EVENTS.md is rendered from the catalogue the code validates against
 * (`npm run docs:events`); a test fails when the committed file differs.
 */
type JsonSchema = {
  type?: string | string[];
  pattern?: string;
  enum?: unknown[];
  anyOf?: JsonSchema[];
  items?: JsonSchema;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  maxLength?: number;
  maxItems?: number;
  minimum?: number;
  maximum?: number;
};

const DECIMAL_PATTERN = '^[+-]?(\\d+(\\.\\d*)?|\\.\\d+)([eE][+-]?\\d{1,3})?$';

function describeType(s: JsonSchema): string {
  if (s.pattern === DECIMAL_PATTERN) return 'decimal (JSON number or string)';
  if (s.enum) return s.enum.map((v) => `\`${String(v)}\``).join(' \\| ');
  if (s.anyOf) {
    if (s.anyOf.some((a) => a.type === 'boolean')) return 'boolean';
    return s.anyOf.map(describeType).join(' or ');
  }
  if (s.type === 'array') return `array of ${s.items ? describeType(s.items) : 'values'}`;
  if (s.type === 'object' && s.properties) {
    return `{${Object.entries(s.properties).map(([k, v]) => `${k}: ${describeType(v)}`).join(', ')}}`;
  }
  const type = Array.isArray(s.type) ? s.type.join(' or ') : (s.type ?? 'any JSON');
  return s.pattern ? `${type} matching \`${s.pattern}\`` : type;
}

function fieldRows(schema: z.ZodType): string[] {
  const json = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as JsonSchema;
  const required = new Set(json.required ?? []);
  return Object.entries(json.properties ?? {}).map(([name, s]) => {
    let type = describeType(s);
    if (/^(timestamp|entryTime|exitTime|openTime|predictionTimestamp)$/.test(name)) type = 'epoch milliseconds (number or string) or ISO-8601 with zone';
    return `| \`${name}\` | ${required.has(name) ? 'yes' : ''} | ${type} |`;
  });
}

function orderingText(ordering: readonly string[] | null, example: string | null): string {
  if (!ordering) return 'Ordering key: none (order does not matter; any shard).';
  const [prefix, ...fields] = ordering;
  return `Ordering key: prefix \`${prefix}\`, fields ${fields.map((f) => `\`${f}\``).join(', ')}; of the example, \`${example}\` (shard ${example === null ? '—' : fnv1a(example) % 8} of 8).`;
}

export function renderEventsDoc(): string {
  const lines = [
    '# Events: what the ingest service accepts',
    '',
    '<!-- Generated from src/ingest/events/catalogue.ts by `npm run docs:events`. Do not edit by hand. -->',
    '',
    'Every message is one JSON object: `{"type": "…", "data": {…}}`, exactly as seed 000\'s engines send it.',
    `Two optional fields may stand beside them: \`"version"\` (the schema version, default 1; this tradestore understands up to ${SCHEMA_VERSION})`,
    'and `"eventId"` (the producer\'s own id of the event; a repeated eventId is applied once).',
    '',
    '## How messages get in',
    '',
    'Events are kept in N shard streams (`TRADESTORE_SHARDS`, a power of two, default 8; the count is in the Redis key `tradestore:events:shards`). Every event goes to the shard of its **ordering key** (below), so all events of one market, order, user, … are in one shard, and each shard has one owner at a time, which applies it in order. There are three ways in:',
    '',
    '- **Straight to the shard** (fastest): `XADD tradestore:events:{3} * payload \'{…}\'`, where 3 is the shard of the event\'s ordering key. An engine in any language computes it: parse the message, take the fields the type\'s ordering key is made of (listed with each type below); each field\'s text is a string as it is, an integer (|n| < 2^53) as its decimal digits, anything else (missing, null, a fraction) the empty string; if the first is empty or the type has no ordering key, any shard will do; otherwise key = `prefix:text1:text2…` and shard = FNV-1a-32(UTF-8 bytes of the key) mod N (FNV-1a-32: h = 2166136261; for each byte b: h = (h XOR b) × 16777619 mod 2^32). `fnv1a("market:TATA_INR") = ' + fnv1a('market:TATA_INR') + '`, shard ' + (fnv1a('market:TATA_INR') % 8) + ' of 8.',
    '- **The entry stream** `tradestore:events` (`TRADESTORE_STREAM`), field `payload`: `XADD tradestore:events * payload \'{…}\'`. The workers move its entries to their shards with a Lua script that applies the same rule inside Redis, copying every field byte for byte and deleting the entry in the same atomic step.',
    '- **The seed\'s list** `db_processor` (`TRADESTORE_LIST`): `LPUSH db_processor \'{…}\'`. The same script pops each item and appends it to its shard atomically, so none is lost between pop and commit.',
    '- **In-process bus** when `REDIS_URL` is unset (the embedded default), with the same semantics.',
    '',
    'Numbers may be JSON numbers or strings. They are parsed without floating point: `0.1` stays exactly `0.1`.',
    'Enumerations accept any letter case (`BUY`, `buy`). Order is kept within one way in: an engine that sends one key\'s events by two of them (some to the list, some to the shard) gets no order between the two.',
    '',
    '## What happens to a message',
    '',
    '- **Batches.** Many messages are applied in one transaction.',
    '- **Exactly once.** The transaction also moves its shards\' offsets (the last entry id applied from each shard, in `ingest_offsets`) to its last entry. An entry at or behind its shard\'s offset is never applied again, whoever owns the shard; a worker whose shard was taken over meanwhile finds the offset moved and its transaction refused. A producer `eventId` seen before changes nothing.',
    '- **Order.** Messages with the same ordering key are in one shard, and a shard is applied in order by its one owner, with any number of workers.',
    '- **Owners.** Workers renew a membership and a lease per shard (`TRADESTORE_LEASE_MS`, default 3 s). Shard i belongs to the (i mod M)-th of the M live workers by name; a worker that joins or leaves changes that, and the shards move without operator action. A worker that dies loses its leases when they expire, and the others take its shards over from the offsets in PostgreSQL.',
    `- **Dead letters.** What cannot be applied is recorded as rejected in the batch\'s transaction (\`ingest_rejects\`), then written to its shard\'s dead-letter stream \`tradestore:events:{3}:dead\` with the reason and a byte-for-byte copy of the entry\'s fields (made inside Redis, so a payload that is huge or not UTF-8 is kept exactly as it arrived), and the worker goes on. A dead letter\'s id is \`shard:id\` (\`3:1763700000123-0\`). \`tradestore dlq list\` (and \`GET /v1/admin/dead-letters\`) shows the reason and a 200-byte preview of each field, over all shards, oldest first; \`tradestore dlq show --id ID [--raw]\` (and \`GET /v1/admin/dead-letters/{id}/fields/payload\`) gives one whole; \`tradestore dlq replay --id ID\` or \`--all\` puts the original fields back on their shard once the cause is fixed. Dead letters are kept ${30} days (\`TRADESTORE_DEAD_LETTER_DAYS\`).`,
    '- **Redis stays bounded.** A shard\'s entries are removed once committed (and their dead letters written): a shard stream holds only what waits. `/metrics` shows the lag and the streams\' memory. The shard streams are a queue, not an archive: a reader that needs history reads PostgreSQL.',
    '- **After commit** the service publishes trades, candles, orders and balances on Redis channels (`tradestore:trades:<market>`, `tradestore:candles:<market>:<interval>`, `tradestore:orders:<market>`, `tradestore:orders:user:<user>`, `tradestore:balances:<user>`) and deletes the cache keys the change made stale.',
    '',
    '## What is refused, and why',
    '',
    'Each of these goes to the dead letters with a reason that names it; nothing else in the batch is held back.',
    '',
    `- **Too large.** A payload over ${MAX_PAYLOAD_BYTES} bytes (\`TRADESTORE_MAX_PAYLOAD_BYTES\`) is not parsed at all.`,
    '- **Not a message.** An entry without a `payload` field, a payload that is not UTF-8, malformed JSON, JSON nested more than 64 levels deep, an unknown `type`, a `version` newer than this tradestore: no engine means these, and guessing would store something else.',
    '- **Invalid.** A field of the wrong type or out of range, named in the reason (`data.price: expected a decimal number, got "abc"`). Decimals are exact text: a ninth decimal where a column has eight would be rounded, so it is refused.',
    `- **From the future.** An event stamped more than ${MAX_CLOCK_SKEW_MS / 60_000} minutes ahead of the server clock (\`TRADESTORE_MAX_CLOCK_SKEW_MS\`): one engine with a wrong clock would otherwise set the last price for decades. A prediction's target time is in the future by design and is not checked.`,
    '- **A conflicting repeat.** A trade id is the trade\'s identity within its market: the same id sent again with the same content changes nothing; with another price, quantity, side, time or counterparty it is a conflict, and the reason shows both versions. (This holds on TimescaleDB too, where a unique key must include the time: see docs/SCHEMA.md.)',
    '- **Refers to nothing.** An unknown market, instrument, user, strategy, account or model.',
    '- **Impossible.** A balance that would go negative, an order filled beyond its quantity, a transition out of a final state.',
    '- **Refused by the database** for its content: a constraint, a value out of range (SQLSTATE classes 22, 23, P0 and 54000).',
    '- **Throws while applied.** Anything tradestore\'s own code throws while it handles one message: the message is found by splitting the batch and dead-lettered with the exception.',
    '',
    'Never refused: a failure of the infrastructure. A lost connection, a missing relation, a permission error, a read-only database, a deadlock, a shortage of resources (SQLSTATE classes 08, 25, 28, 40, 42, 53, 55, 57, 58, XX, or no SQLSTATE at all) means the batch is retried with backoff until it goes through, and nothing is dead-lettered; `/health` says `degraded` meanwhile. Any other SQLSTATE (one no list here names, or TimescaleDB\'s 53400 when one write would decompress too much of an old chunk) is retried the same way, but after 3 failed batches in a row the messages are tried one by one: a message that fails alone with it 3 times, each time after other messages went through, is dead-lettered with the error (`fails every time it is applied, alone, while other messages go through`). Fix the cause and replay it. When owners of a shard keep dying before they commit (each start at an offset is counted), the next owner applies the shard\'s entries one by one, so the entry that stops them is reached by itself; past 5 starts there (`TRADESTORE_MAX_STARTS`) it is dead-lettered unapplied, with the count.',
    '',
    '## Types',
    '',
    ...EVENT_TYPES.map((t) => `- [${t}](#${t.toLowerCase()})`),
    '',
  ];
  for (const type of EVENT_TYPES) {
    const spec = CATALOGUE[type];
    const example = JSON.stringify({ type, data: spec.example });
    const decoded = decodeEvent(example);
    if (!decoded.ok) throw new Error(`the example of ${type} does not validate: ${decoded.reason}`);
    lines.push(
      `### ${type}`,
      '',
      spec.summary,
      '',
      `Writes: ${spec.writes}. ${orderingText(spec.ordering, decoded.event.key)}`,
      '',
      '| field | required | type |',
      '|---|---|---|',
      ...fieldRows(spec.schema),
      '',
      '```json',
      example,
      '```',
      '',
    );
  }
  return lines.join('\n');
}
