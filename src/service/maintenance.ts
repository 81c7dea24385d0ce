import type { Database } from '../database/types.ts';
import { MaintenanceBusyError, runMaintenanceJobs } from '../schema/maintenanceJobs.ts';

export interface MaintenanceScheduler {
  /** The tick in progress, if any (tests wait on it). */
  readonly running: Promise<void> | null;
  stop(): Promise<void>;
}

/**
 * Runs the due maintenance jobs every `tickMs` (the first tick a few seconds after start). Every
 * instance ticks; the advisory lock in runMaintenanceJobs lets one of them work at a time.
 */
export function scheduleMaintenance(db: Database, options: { tickMs: number; intervals?: Partial<Record<string, number>>; log: (line: string) => void }): MaintenanceScheduler {
  let stopped = false;
  let timer: NodeJS.Timeout | null = null;
  const state: { running: Promise<void> | null } = { running: null };
  const tick = async () => {
    try {
      for (const run of await runMaintenanceJobs(db, { intervals: options.intervals })) {
        const what = run.error ? `failed: ${run.error}` : JSON.stringify(run.detail);
        options.log(`maintenance: ${run.job} ${what}`);
      }
    } catch (error) {
      if (!(error instanceof MaintenanceBusyError)) options.log(`maintenance: ${(error as Error).message}`);
    }
  };
  const schedule = (ms: number) => {
    if (stopped) return;
    timer = setTimeout(() => {
      state.running = tick().finally(() => {
        state.running = null;
        schedule(options.tickMs);
      });
    }, ms);
  };
  schedule(Math.min(options.tickMs, 5000));
  return {
    get running() {
      return state.running;
    },
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      await state.running;
    },
  };
}
