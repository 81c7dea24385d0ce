import type { Bus } from '../bus/types.ts';
import type { Database } from '../database/types.ts';
import { seed } from '../schema/seed.ts';
import type { EngineSimulator } from './engine.ts';

/**
 * Prepares a database for the simulator: the seed's markets (idempotent) and the simulator's
 * users (an exchange creates its users before they trade).
 */
export async function ensureSimulatorUsers(db: Database, sim: EngineSimulator): Promise<void> {
  await seed(db);
  await db.query(
    `INSERT INTO users (id, email) SELECT u, u || '@simulator.invalid' FROM unnest($1::text[]) AS u ON CONFLICT DO NOTHING`,
    [sim.users],
  );
}

export interface RunOptions {
  /** Messages per second. */
  rate: number;
  /** Stop after this many messages (deposits included); default: until the signal aborts. */
  count?: number;
  /** 'stream' (XADD, recommended) or 'list' (LPUSH onto db_processor, as seed 000 engines do). */
  via?: 'stream' | 'list';
  signal?: AbortSignal;
  /** Called with the send time of each message, for latency measurements. */
  onSent?: (payload: string, at: number) => void;
}

/**
 * Sends the simulator's messages at a steady rate, deposits first; returns how many were sent.
 * It stops only between engine actions, so what was sent matches `sim.expected` exactly.
 */
export async function runSimulator(bus: Bus, sim: EngineSimulator, options: RunOptions): Promise<number> {
  const send = (payload: string) => (options.via === 'list' ? bus.pushList(payload) : bus.add(payload).then(() => undefined));
  let sent = 0;
  const limit = options.count ?? Number.POSITIVE_INFINITY;
  const queue = sim.deposits();
  const started = Date.now();
  const tickMs = 20;
  while ((sent < limit && !options.signal?.aborted) || queue.length > 0) {
    const due = Math.floor(((Date.now() - started) / 1000) * options.rate) + 1;
    const burst: Promise<void>[] = [];
    while (sent < due && (queue.length > 0 || (sent < limit && !options.signal?.aborted))) {
      // An action the engine could not take (not enough balance) yields no messages.
      while (queue.length === 0) queue.push(...sim.step());
      const payload = queue.shift()!;
      options.onSent?.(payload, Date.now());
      burst.push(send(payload));
      sent += 1;
    }
    await Promise.all(burst);
    if ((sent < limit && !options.signal?.aborted) || queue.length > 0) await new Promise((r) => setTimeout(r, tickMs));
  }
  return sent;
}
