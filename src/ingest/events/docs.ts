import { z } from 'zod';
import { CATALOGUE, EVENT_TYPES, SCHEMA_VERSION } from './catalogue.ts';
import { decodeEvent, MAX_PAYLOAD_BYTES } from './decode.ts';

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
    '- **Exactly once in effect.** The transaction records the stream entries (and eventIds) it applied; a redelivered entry changes nothing. Trades, fills and exchange trades are also unique by their ids.',
    '- **Order.** Each message has an ordering key (below). Messages with the same key are applied in the order they were emitted, with any number of workers: an entry waits while an earlier entry of its key is pending at another worker.',
    `- **Dead letters.** A message that is malformed, larger than ${MAX_PAYLOAD_BYTES} bytes, of an unknown type, invalid, refers to something that does not exist, is a stale or impossible transition, or is refused by the database goes to the dead-letter stream \`tradestore:dead\` (\`TRADESTORE_DEAD_LETTERS\`) with the reason, the original payload and the number of attempts. The worker goes on. After ${5} deliveries without success (\`TRADESTORE_MAX_DELIVERIES\`) a message goes there too. \`tradestore dlq list\` shows them; \`tradestore dlq replay --id ID\` or \`--all\` puts them back once the cause is fixed.`,
    '- **After commit** the service publishes trades, candles, orders and balances on Redis channels (`tradestore:trades:<market>`, `tradestore:candles:<market>:<interval>`, `tradestore:orders:<market>`, `tradestore:orders:user:<user>`, `tradestore:balances:<user>`) and deletes the cache keys the change made stale.',
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
