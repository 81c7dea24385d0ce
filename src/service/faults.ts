/**
 * The last line of defence of a long-running process: a promise rejection that nothing handled.
 * Node's default ends the process, which would take the API and the ingest worker down with one
 * handler's bug. Every handler catches its own failures (test/api-hostile.test.ts throws hostile
 * input at a running service and checks that this count stays 0); what still reaches here is
 * logged with its stack and counted (`tradestore_unhandled_errors_total` in /metrics), and the
 * process keeps serving. An uncaught exception (a synchronous throw) still ends the process:
 * its state can no longer be trusted.
 */
export const faults = { unhandled: 0 };

let installed = false;

export function installFaultHandler(log: (line: string) => void): void {
  if (installed) return;
  installed = true;
  process.on('unhandledRejection', (reason) => {
    faults.unhandled += 1;
    const e = reason as Error;
    log(`tradestore: internal error, an unhandled rejection (the process keeps running; please report it): ${e?.stack ?? String(reason)}`);
  });
}
