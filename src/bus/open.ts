import type { Config } from '../config.ts';
import { MemoryBus } from './memory.ts';
import { RedisBus } from './redis.ts';
import type { Bus } from './types.ts';

/** Redis when REDIS_URL is set, the in-process bus otherwise. */
export function openBus(config: Pick<Config, 'redisUrl' | 'bus'>): Bus {
  if (config.redisUrl) return new RedisBus({ url: config.redisUrl, names: config.bus });
  return new MemoryBus(config.bus.stream);
}
