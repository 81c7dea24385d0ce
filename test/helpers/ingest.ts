import type { Bus } from '../../src/bus/types.ts';
import type { Database } from '../../src/database/types.ts';
import { IngestWorker } from '../../src/ingest/worker.ts';

/** Sends `messages` (objects or raw payloads) through the bus and the real worker until all are applied. */
export async function ingest(db: Database, bus: Bus, messages: (object | string)[], consumer = 'test-ingest'): Promise<IngestWorker> {
  await bus.init();
  for (const m of messages) await bus.add(typeof m === 'string' ? m : JSON.stringify(m));
  const worker = new IngestWorker(db, bus, { consumer, blockMs: 10 });
  await drain(worker, bus, 30_000);
  await worker.stop();
  return worker;
}

export const tradeMsg = (market: string, id: string, price: string, quantity: string, ms: number, isBuyerMaker = false) => ({
  type: 'TRADE_ADDED',
  data: { market, id, price, quantity, isBuyerMaker, timestamp: ms },
});

export const orderMsg = (orderId: string, market: string, side: 'buy' | 'sell', price: string, quantity: string, userId?: string, ms?: number) => ({
  type: 'ORDER_UPDATE',
  data: { orderId, market, side, price, quantity, ...(userId ? { userId } : {}), ...(ms ? { timestamp: ms } : {}) },
});

export const depositMsg = (userId: string, asset: string, amount: string) => ({
  type: 'BALANCE_UPDATE',
  data: { userId, asset, availableChange: amount, changeType: 'deposit' },
});

/** Steps the worker until everything sent is applied or dead-lettered. */
export async function drain(worker: IngestWorker, bus: Bus, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    await worker.step();
    const s = await bus.stats();
    if (s.lag === 0 && s.listLength === 0 && worker.holding === 0) return;
    if (Date.now() > deadline) throw new Error(`not drained: ${JSON.stringify(s)}; last error ${worker.lastError}`);
  }
}
