import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { decodeEvent, MAX_PAYLOAD_BYTES } from '../src/ingest/events/decode.ts';
import type { EventOf } from '../src/ingest/events/catalogue.ts';

function ok(payload: string) {
  const result = decodeEvent(payload);
  assert.ok(result.ok, result.ok ? '' : result.reason);
  return result.event;
}
function reason(payload: string): string {
  const result = decodeEvent(payload);
  assert.equal(result.ok, false, `expected a rejection of ${payload.slice(0, 100)}`);
  return (result as { reason: string }).reason;
}

describe('decoding the seed\'s messages as real engines send them', () => {
  it('TRADE_ADDED with string decimals and a numeric timestamp', () => {
    const e = ok('{"type":"TRADE_ADDED","data":{"market":"TATA_INR","id":"1042","isBuyerMaker":true,"price":"134.5","quantity":"2","quoteQuantity":"269","timestamp":1763700000123}}') as EventOf<'TRADE_ADDED'>;
    assert.equal(e.type, 'TRADE_ADDED');
    assert.equal(e.version, 1);
    assert.equal(e.key, 'market:TATA_INR');
    assert.deepEqual(
      { ...e.data, timestamp: e.data.timestamp.toISOString() },
      { market: 'TATA_INR', id: '1042', isBuyerMaker: true, price: '134.5', quantity: '2', quoteQuantity: '269', timestamp: '2025-11-21T04:40:00.123Z' },
    );
  });

  it('numbers as JSON numbers keep their exact literal, never a float', () => {
    const e = ok('{"type":"TRADE_ADDED","data":{"market":"TATA_INR","id":1043,"isBuyerMaker":false,"price":0.1,"quantity":12345678901.12345678,"timestamp":"1763700000123","buyerOrderId":"o-1","sellerOrderId":"o-2","buyerId":"u1","sellerId":"u2"}}') as EventOf<'TRADE_ADDED'>;
    assert.equal(e.data.id, '1043');
    assert.equal(e.data.price, '0.1');
    assert.equal(e.data.quantity, '12345678901.12345678');
    assert.equal(e.data.timestamp.getTime(), 1763700000123);
    assert.equal(e.data.sellerId, 'u2');
    const tiny = ok('{"type":"TRADE_ADDED","data":{"market":"X","id":"1","isBuyerMaker":true,"price":1e-8,"quantity":"2.50","timestamp":1763700000123}}') as EventOf<'TRADE_ADDED'>;
    assert.equal(tiny.data.price, '0.00000001');
    assert.equal(tiny.data.quantity, '2.5');
  });

  it('the three ORDER_UPDATE shapes and BALANCE_UPDATE', () => {
    const create = ok('{"type":"ORDER_UPDATE","data":{"orderId":"o-77","executedQty":0.5,"market":"TATA_INR","price":"134.5","quantity":"3","side":"buy"}}') as EventOf<'ORDER_UPDATE'>;
    assert.deepEqual(create.data, { orderId: 'o-77', executedQty: '0.5', market: 'TATA_INR', price: '134.5', quantity: '3', side: 'buy' });
    assert.equal(create.key, 'order:o-77');
    const fill = ok('{"type":"ORDER_UPDATE","data":{"orderId":"o-12","executedQty":0.5}}') as EventOf<'ORDER_UPDATE'>;
    assert.deepEqual(fill.data, { orderId: 'o-12', executedQty: '0.5' });
    const cancel = ok('{"type":"ORDER_UPDATE","data":{"orderId":"o-77","status":"CANCELLED"}}') as EventOf<'ORDER_UPDATE'>;
    assert.equal(cancel.data.status, 'cancelled');
    const balance = ok('{"type":"BALANCE_UPDATE","data":{"userId":"u1","asset":"INR","availableChange":"-269","lockedChange":269,"referenceId":"o-77"}}') as EventOf<'BALANCE_UPDATE'>;
    assert.deepEqual(balance.data, { userId: 'u1', asset: 'INR', availableChange: '-269', lockedChange: '269', referenceId: 'o-77', changeType: 'trade', feeOfTrade: false });
    assert.equal(balance.key, 'user:u1');
  });

  it('takes an optional version and eventId', () => {
    const e = ok('{"type":"BALANCE_UPDATE","version":1,"eventId":"dep-9","data":{"userId":"u1","asset":"INR","availableChange":"1000","changeType":"DEPOSIT"}}');
    assert.equal(e.eventId, 'dep-9');
    assert.match(reason('{"type":"BALANCE_UPDATE","version":2,"data":{}}'), /version 2 of BALANCE_UPDATE is newer/);
  });
});

describe('bad messages get a reason that names the problem', () => {
  it('malformed JSON, not an object, unknown type, missing data', () => {
    assert.match(reason('{"type":"TRADE_ADDED",'), /^malformed JSON/);
    assert.match(reason('[1,2]'), /must be a JSON object/);
    assert.match(reason('{"type":"TRADE_DELETED","data":{}}'), /unknown type "TRADE_DELETED"; known types: TRADE_ADDED/);
    assert.match(reason('{"data":{}}'), /missing "type"/);
    assert.match(reason('{"type":"TRADE_ADDED"}'), /missing "data" object/);
  });

  it('missing fields, a non-numeric price, a negative quantity, seconds for milliseconds', () => {
    assert.match(reason('{"type":"TRADE_ADDED","data":{"market":"TATA_INR","id":"1","isBuyerMaker":true,"price":"1","timestamp":1763700000123}}'), /data\.quantity/);
    assert.match(reason('{"type":"TRADE_ADDED","data":{"market":"TATA_INR","id":"1","isBuyerMaker":true,"price":"abc","quantity":"1","timestamp":1763700000123}}'), /data\.price: expected a decimal number, got "abc"/);
    assert.match(reason('{"type":"TRADE_ADDED","data":{"market":"TATA_INR","id":"1","isBuyerMaker":true,"price":"1","quantity":"-2","timestamp":1763700000123}}'), /data\.quantity: must be greater than 0, got -2/);
    assert.match(reason('{"type":"TRADE_ADDED","data":{"market":"TATA_INR","id":"1","isBuyerMaker":true,"price":"1","quantity":"2","timestamp":1763700000}}'), /seconds instead of milliseconds/);
    assert.match(reason('{"type":"TRADE_ADDED","data":{"market":"TATA INR; DROP","id":"1","isBuyerMaker":true,"price":"1","quantity":"2","timestamp":1763700000123}}'), /data\.market: expected a symbol/);
  });

  it('incomplete order creations, empty updates and no-op balance changes', () => {
    assert.match(reason('{"type":"ORDER_UPDATE","data":{"orderId":"o-1","market":"TATA_INR","price":"1"}}'), /created from market, price, quantity and side together/);
    assert.match(reason('{"type":"ORDER_UPDATE","data":{"orderId":"o-1"}}'), /needs executedQty, status, or market/);
    assert.match(reason('{"type":"ORDER_UPDATE","data":{"orderId":"o-1","side":"up","market":"A","price":"1","quantity":"1"}}'), /expected "buy" or "sell", got "up"/);
    assert.match(reason('{"type":"BALANCE_UPDATE","data":{"userId":"u1","asset":"INR"}}'), /changes nothing/);
  });

  it('refuses JSON nested more than 64 levels deep, and a leading + is a decimal like any other', () => {
    const nested = (n: number) => `{"type":"SYSTEM_LOG","data":{"level":"info","category":"c","message":"m","details":${'{"a":'.repeat(n)}1${'}'.repeat(n)}}}`;
    assert.equal(decodeEvent(nested(60)).ok, true);
    assert.match(reason(nested(63)), /nested more than 64 levels deep/);
    const plus = decodeEvent('{"type":"TRADE_ADDED","data":{"market":"TATA_INR","id":"1","price":"+134.50","quantity":"+2","isBuyerMaker":true,"timestamp":1763700000123}}');
    assert.ok(plus.ok);
    const data = plus.event.data as { price: string; quantity: string };
    assert.deepEqual([data.price, data.quantity], ['134.5', '2']);
  });

  it('refuses a payload over the size limit without parsing it', () => {
    const big = `{"type":"TRADE_ADDED","data":{"pad":"${'x'.repeat(MAX_PAYLOAD_BYTES)}"}}`;
    assert.match(reason(big), /payload too large: \d+ bytes/);
  });
});

describe('docs/EVENTS.md', () => {
  it('is the catalogue the code validates against (run `npm run docs:events` after changing a schema)', async () => {
    const { readFileSync } = await import('node:fs');
    const { renderEventsDoc } = await import('../src/ingest/events/docs.ts');
    assert.equal(readFileSync(new URL('../docs/EVENTS.md', import.meta.url), 'utf8'), renderEventsDoc());
  });
});
