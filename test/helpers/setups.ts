import { after, before, describe, it } from 'node:test';
import { MemoryBus } from '../../src/bus/memory.ts';
import type { Bus } from '../../src/bus/types.ts';
import { migrate } from '../../src/schema/migrator.ts';
import { seed } from '../../src/schema/seed.ts';
import { freshDatabase, serverUnavailable, type Fresh } from './backends.ts';
import { redisBus, redisUnavailable, testNames } from './redis.ts';

export type IngestSetup = 'embedded+memory' | 'postgres+redis';

export interface IngestContext {
  setup: IngestSetup;
  fresh: Fresh;
  bus: Bus;
}

/**
 * Declares `body`'s tests once per ingest setup: the embedded database with the in-process bus,
 * and PostgreSQL with Redis (skipped when a server is unreachable, unless the run requires
 * servers). Each suite gets a fresh migrated and seeded database and a bus with this run's key
 * prefix, removed afterwards. The body's own before() hooks run after the setup's; it is given
 * the setup's name to declare tests that only one setup has.
 */
export function eachIngestSetup(title: string, body: (get: () => IngestContext, setup: IngestSetup) => void): void {
  for (const setup of ['embedded+memory', 'postgres+redis'] as const) {
    describe(`${title} [${setup}]`, async () => {
      const reason =
        setup === 'postgres+redis' && process.env.TRADESTORE_REQUIRE_SERVERS !== '1' ? ((await serverUnavailable()) ?? (await redisUnavailable())) : null;
      if (reason) {
        it('skipped', { skip: reason }, () => {});
        return;
      }
      let context: IngestContext | undefined;
      let dispose = async () => {};
      before(async () => {
        const fresh = await freshDatabase(setup === 'embedded+memory' ? 'embedded' : 'postgres');
        await migrate(fresh.db);
        await seed(fresh.db);
        let bus: Bus;
        let cleanup = async () => {};
        if (setup === 'embedded+memory') bus = new MemoryBus();
        else {
          const t = testNames();
          bus = redisBus(t.names);
          cleanup = t.cleanup;
        }
        await bus.init();
        context = { setup, fresh, bus };
        dispose = async () => {
          await bus.close();
          await cleanup();
          await fresh.dispose();
        };
      });
      after(() => dispose());
      body(() => {
        if (!context) throw new Error('ingest setup not ready');
        return context;
      }, setup);
    });
  }
}
