import type { Config } from '../config.ts';
import { MemoryBus } from './memory.ts';
import { RedisBus } from './redis.ts';
import type { Bus } from './types.ts';

/** Redis when REDIS_URL is set, the in-process bus otherwise. */
export function openBus(config: Pick<Config, 'redisUrl' | 'bus'> & { redisCluster?: boolean; ingest?: Pick<Config['ingest'], 'maxPayloadBytes'> }): Bus {
  const maxPayloadBytes = config.ingest?.maxPayloadBytes;
  if (config.redisUrl) return new RedisBus({ url: config.redisUrl, cluster: config.redisCluster, names: config.bus, shards: config.bus.shards, maxPayloadBytes });
  return new MemoryBus(config.bus.stream, maxPayloadBytes, config.bus.shards);
}
