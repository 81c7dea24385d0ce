import type { Bus } from '../bus/types.ts';
import { RedisBus } from '../bus/redis.ts';
import type { Database } from '../database/types.ts';
import type { AlertThresholds } from '../ops/alerts.ts';
import { checkup, checkupKeys, type Checkup } from '../ops/checkup.ts';

export interface CheckupScheduler {
  /** The latest checkup (null before the first). */
  latest(): Checkup | null;
  /** Runs one now (tests), and waits for it. */
  runNow(): Promise<Checkup | null>;
  stop(): Promise<void>;
}

/**
 * The service's monitor: a checkup every `intervalMs` (alerts written to system_logs as they start
 * and end, kept for /metrics), and on a Redis bus seed 001's metrics:{component}:{metric_name}
 * keys, under the deployment's prefix, expiring after three intervals.
 */
export function scheduleCheckups(
  db: Database,
  bus: Bus,
  options: { intervalMs: number; thresholds: AlertThresholds; stream: string; keyPrefix: string; log: (line: string) => void },
): CheckupScheduler {
  let last: Checkup | null = null;
  let stopped = false;
  let timer: NodeJS.Timeout | null = null;
  let running: Promise<Checkup | null> | null = null;
  const once = (): Promise<Checkup | null> =>
    (running ??= (async () => {
      try {
        const before = new Set(last?.alerts.map((a) => a.name) ?? []);
        last = await checkup(db, { bus, stream: options.stream, thresholds: options.thresholds });
        for (const a of last.alerts) if (!before.has(a.name)) options.log(`alert ${a.name}: ${a.message}`);
        if (bus instanceof RedisBus) {
          const ttl = Math.max(1, Math.ceil((3 * options.intervalMs) / 1000));
          // One command each: in a Redis Cluster the keys live on different nodes.
          await Promise.all(Object.entries(checkupKeys(last)).map(([key, value]) => bus.client.set(`${options.keyPrefix}${key}`, String(value), 'EX', ttl)));
        }
        return last;
      } catch (error) {
        options.log(`monitor: ${(error as Error).message}`);
        return null;
      } finally {
        running = null;
      }
    })());
  const schedule = (ms: number) => {
    if (stopped) return;
    timer = setTimeout(() => void once().finally(() => schedule(options.intervalMs)), ms);
  };
  schedule(Math.min(options.intervalMs, 2000));
  return {
    latest: () => last,
    runNow: once,
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      await running;
    },
  };
}
