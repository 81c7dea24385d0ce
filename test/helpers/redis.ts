import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { RedisBus } from '../../src/bus/redis.ts';
import type { BusNames } from '../../src/bus/types.ts';

export const REDIS_URL = process.env.TEST_REDIS_URL || 'redis://127.0.0.1:6379';

let check: Promise<string | null> | undefined;
/** null when Redis answers; otherwise why not. */
export function redisUnavailable(): Promise<string | null> {
  check ??= (async () => {
    const client = new Redis(REDIS_URL, { maxRetriesPerRequest: 0, retryStrategy: () => null, lazyConnect: true });
    client.on('error', () => {});
    try {
      await client.connect();
      await client.ping();
      return null;
    } catch (error) {
      return `Redis at ${REDIS_URL} unreachable: ${(error as Error).message}`;
    } finally {
      client.disconnect();
    }
  })();
  return check;
}

/** Key names unique to one test, and a way to delete everything under them. */
export function testNames(): { names: BusNames; env: Record<string, string>; cleanup: () => Promise<void> } {
  const prefix = `tradestore-test:${randomBytes(4).toString('hex')}`;
  const names = { stream: `${prefix}:events`, list: `${prefix}:list`, keyPrefix: `${prefix}:` };
  return {
    names,
    env: { REDIS_URL, TRADESTORE_STREAM: names.stream, TRADESTORE_LIST: names.list, TRADESTORE_REDIS_PREFIX: names.keyPrefix },
    cleanup: async () => {
      const r = new Redis(REDIS_URL);
      const keys = await r.keys(`${prefix}*`);
      if (keys.length) await r.del(...keys);
      r.disconnect();
    },
  };
}

export const redisBus = (names: BusNames, shards?: number) => new RedisBus({ url: REDIS_URL, names, shards });
