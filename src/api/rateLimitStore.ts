import { createRequire } from 'node:module';
import type { FastifyRateLimitOptions, FastifyRateLimitStore, FastifyRateLimitStoreCtor } from '@fastify/rate-limit';
import type { Cluster, Redis } from 'ioredis';

type Result = { current: number; ttl: number };
type Callback = (error: Error | null, result?: Result) => void;
interface Counter {
  incr(key: string, cb: Callback, timeWindow: number, max: number): void;
  read(key: string, cb: Callback, timeWindow: number, max: number): void;
}

// The plugin's own stores (CommonJS modules without types of their own).
const require = createRequire(import.meta.url);
const LocalStore = require('@fastify/rate-limit/store/LocalStore.js') as new (continueExceeding: boolean, exponentialBackoff: boolean, cache?: number) => Counter;
const RedisStore = require('@fastify/rate-limit/store/RedisStore.js') as new (continueExceeding: boolean, exponentialBackoff: boolean, redis: Redis | Cluster, key: string) => Counter;

/**
 * Rate-limit counters in Redis (shared by every API process of the deployment), counted in
 * process while Redis does not answer: with Redis down the limits still hold, per process, and
 * requests are neither refused nor delayed for it. A client that is not connected is not waited
 * for (its commands would queue until the retries give up).
 */
export function fallbackStore(redis: Redis | Cluster | null, nameSpace: string): FastifyRateLimitStoreCtor {
  return class FallbackStore implements FastifyRateLimitStore {
    private readonly local: Counter;
    private readonly remote: Counter | null;

    constructor(options: FastifyRateLimitOptions & { continueExceeding?: boolean; exponentialBackoff?: boolean }) {
      const continueExceeding = Boolean(options.continueExceeding);
      const exponentialBackoff = Boolean(options.exponentialBackoff);
      this.local = new LocalStore(continueExceeding, exponentialBackoff);
      this.remote = redis ? new RedisStore(continueExceeding, exponentialBackoff, redis, nameSpace) : null;
    }

    private use(method: 'incr' | 'read', key: string, cb: Callback, timeWindow: number, max: number): void {
      if (!this.remote || redis?.status !== 'ready') {
        return this.local[method](key, cb, timeWindow, max);
      }
      this.remote[method](key, (error, result) => {
        if (error) this.local[method](key, cb, timeWindow, max);
        else cb(null, result);
      }, timeWindow, max);
    }

    incr(key: string, cb: Callback, timeWindow: number, max: number): void {
      this.use('incr', key, cb, timeWindow, max);
    }

    read(key: string, cb: Callback, timeWindow: number, max: number): void {
      this.use('read', key, cb, timeWindow, max);
    }

    /** Every route shares the global limit (no route has one of its own): the same counters. */
    child(): FastifyRateLimitStore {
      return this;
    }
  };
}
