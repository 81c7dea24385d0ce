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
  /**
   * Stop after exactly this many messages (deposits included); default: until the signal aborts.
   * A count may cut the last engine action short, so `sim.expected` is exact only for runs that
   * stop on the signal (which stops between actions).
   */
  count?: number;
  /** Called about every `progressMs` (default 5 s) with how many were sent so far. */
  onProgress?: (sent: number) => void;
  progressMs?: number;
  /** 'stream' (XADD, recommended) or 'list' (LPUSH onto db_processor, as seed 000 engines do). */
  via?: 'stream' | 'list';
  signal?: AbortSignal;
  /** Called with the send time of each message, for latency measurements. */
  onSent?: (payload: string, at: number) => void;
}

/**
 * Sends the simulator's messages at a steady rate, deposits first; returns how many were sent.
 * Stopped by the signal, it stops between engine actions, so what was sent matches
 * `sim.expected` exactly; with a count it sends exactly that many.
 */
export async function runSimulator(bus: Bus, sim: EngineSimulator, options: RunOptions): Promise<number> {
  const send = (payload: string) => (options.via === 'list' ? bus.pushList(payload) : bus.add(payload).then(() => undefined));
  let sent = 0;
  const limit = options.count;
  const queue = sim.deposits();
  const started = Date.now();
  const tickMs = 20;
  let reported = started;
  // With a count: exactly that many (or fewer, stopped by the signal). Without: until the signal, finishing the action under way.
  const more = () => (limit !== undefined ? sent < limit && !options.signal?.aborted : !options.signal?.aborted || queue.length > 0);
  while (more()) {
    const due = Math.floor(((Date.now() - started) / 1000) * options.rate) + 1;
    const burst: Promise<void>[] = [];
    while (sent < due && more()) {
      // An action the engine could not take (not enough balance) yields no messages.
      while (queue.length === 0) queue.push(...sim.step());
      const payload = queue.shift()!;
      options.onSent?.(payload, Date.now());
      burst.push(send(payload));
      sent += 1;
    }
    await Promise.all(burst);
    if (options.onProgress && Date.now() - reported >= (options.progressMs ?? 5000)) {
      reported = Date.now();
      options.onProgress(sent);
    }
    if (more()) await new Promise((r) => setTimeout(r, tickMs));
  }
  return sent;
}
