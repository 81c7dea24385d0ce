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
    '- **Redis Stream** `tradestore:events` (`TRADESTORE_STREAM`), field `payload`: `XADD tradestore:events * payload \'{…}\'`. Read through the consumer group `tradestore` (`TRADESTORE_GROUP`) by any number of workers.',
    '- **The seed\'s list** `db_processor` (`TRADESTORE_LIST`): `LPUSH db_processor \'{…}\'`. A Lua script moves items into the stream atomically, so none is lost between pop and commit.',
    '- **In-process bus** when `REDIS_URL` is unset (the embedded default), with the same semantics.',
    '',
    'Numbers may be JSON numbers or strings. They are parsed without floating point: `0.1` stays exactly `0.1`.',
    'Enumerations accept any letter case (`BUY`, `buy`). Order is kept within one transport.',
    '',
    '## What happens to a message',
    '',
    '- **Batches.** Many messages are applied in one transaction and acknowledged only after it commits.',
    '- **Exactly once in effect.** The transaction records the stream entries (and eventIds) it applied; a redelivered entry changes nothing.',
    '- **Order.** Each message has an ordering key (below). Messages with the same key are applied in the order they were emitted, with any number of workers: an entry waits while an earlier entry of its key is pending at another worker.',
    `- **Dead letters.** What cannot be applied goes to the dead-letter stream \`tradestore:dead\` (\`TRADESTORE_DEAD_LETTERS\`) with the reason and a byte-for-byte copy of the entry's fields (made inside Redis, so a payload that is huge or not UTF-8 is kept exactly as it arrived), and the worker goes on. \`tradestore dlq list\` (and \`GET /v1/admin/dead-letters\`) shows the reason and a 200-byte preview of each field; \`tradestore dlq show --id ID [--raw]\` (and \`GET /v1/admin/dead-letters/{id}/fields/payload\`) gives one whole; \`tradestore dlq replay --id ID\` or \`--all\` puts the original fields back on the stream once the cause is fixed. Dead letters are kept ${30} days (\`TRADESTORE_DEAD_LETTER_DAYS\`).`,
    '- **Redis stays bounded.** Stream entries that every consumer group has acknowledged are trimmed (a group that reads more slowly keeps what it still needs); `/metrics` shows the stream\'s length and memory.',
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
    'Never refused: a failure of the infrastructure. A lost connection, a missing relation, a permission error, a read-only database, a deadlock, a shortage of resources (SQLSTATE classes 08, 25, 28, 40, 42, 53, 55, 57, 58, XX, or no SQLSTATE at all) means the batch is retried with backoff until it goes through, and nothing is dead-lettered; `/health` says `degraded` meanwhile. Any other SQLSTATE (one no list here names, or TimescaleDB\'s 53400 when one write would decompress too much of an old chunk) is retried the same way, but after 3 failed batches in a row the messages are tried one by one: a message that fails alone with it 3 times, each time after other messages went through, is dead-lettered with the error (`fails every time it is applied, alone, while other messages go through`). Fix the cause and replay it. A message delivered more than 5 times (`TRADESTORE_MAX_DELIVERIES`, e.g. after repeated restarts) is applied in a batch of its own and then decided like any other.',
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
      `Writes: ${spec.writes}. Ordering key: ${decoded.event.key === null ? 'none (order does not matter)' : `of the example, \`${decoded.event.key}\``}.`,
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
