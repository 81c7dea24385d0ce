import { parseArgs } from 'node:util';
import { configuredIntervals, jobNames, maintenanceStatus, runMaintenanceJobs, type JobRun } from '../schema/maintenanceJobs.ts';
import { loadConfig } from '../config.ts';
import { UsageError } from './usage.ts';
import type { OpenDatabase } from './admin.ts';

const describeRun = (r: JobRun) =>
  `${r.job.padEnd(11)} ${r.status.padEnd(7)} ${r.startedAt.toISOString()}  ${r.error ?? JSON.stringify(r.detail)}`;

/** tradestore maintenance run [--job NAME] | status: the lifecycle jobs the service runs on a schedule. */
export async function maintenanceCommand(open: OpenDatabase, args: string[], out: (line: string) => void): Promise<void> {
  const [action, ...rest] = args;
  const { values } = parseArgs({ args: rest, options: { job: { type: 'string' }, json: { type: 'boolean' } }, strict: true });
  if (action !== 'run' && action !== 'status') throw new UsageError('maintenance needs run or status');
  if (values.job !== undefined && (action !== 'run' || !jobNames().includes(values.job))) {
    throw new UsageError(`--job must be one of ${jobNames().join(', ')} (got ${JSON.stringify(values.job)}), with maintenance run`);
  }
  const db = await open();
  if (action === 'run') {
    // By hand, every job that applies runs now, whatever its schedule says.
    const runs = await runMaintenanceJobs(db, { job: values.job, force: true });
    if (values.json) out(JSON.stringify(runs, null, 2));
    else for (const r of runs) out(describeRun(r));
    if (runs.some((r) => r.status === 'failed')) throw new Error(`maintenance failed: ${runs.filter((r) => r.error).map((r) => `${r.job}: ${r.error}`).join('; ')}`);
    return;
  }
  if (action === 'status') {
    const status = await maintenanceStatus(db, configuredIntervals(loadConfig()));
    if (values.json) return out(JSON.stringify(status, null, 2));
    for (const s of status) {
      const last = s.last ? `last ${s.last.status} at ${s.last.startedAt.toISOString()}: ${s.last.error ?? JSON.stringify(s.last.detail)}` : 'never run';
      const when = s.applies ? `every ${s.everyMs / 60_000} min, next due ${s.nextDueAt!.toISOString()}` : s.everyMs === 0 ? 'turned off by configuration' : 'done by the database itself here';
      out(`${s.job.padEnd(11)} ${when}\n            ${s.description}\n            ${last}`);
    }
    return;
  }
  throw new UsageError('maintenance needs run or status');
}
