import { spawn, type ChildProcess } from 'node:child_process';
import Big from 'big.js';
import type { Database } from '../../src/database/types.ts';
import type { EngineSimulator } from '../../src/simulator/engine.ts';
import { ROOT } from './cli.ts';
import { expose } from './exposure.ts';

export interface ServiceProcess {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

const spawned = new Set<ChildProcess>();

/** Kills every service a test started and did not stop (a failed assertion must not leave one running). */
export function killAll(): void {
  for (const child of spawned) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  spawned.clear();
}

/** `tradestore start` as a real child process. */
export function spawnService(env: Record<string, string>, args: string[] = []): ServiceProcess {
  return spawnCommand(['start', ...args], env);
}

/** Any long-running tradestore command (start, demo) as a real child process. */
export function spawnCommand(args: string[], env: Record<string, string>): ServiceProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
    cwd: ROOT,
    env: { ...process.env, PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  spawned.add(child);
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  // Everything the process wrote, once its output has ended (it logs; every line is scanned for secrets).
  child.on('close', () => expose(`tradestore ${args[0] ?? ''} (output)`, output));
  return { child, output: () => output, exited };
}

export async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/**
 * Compares the database with what the simulator sent: every balance, every order's filled
 * quantity and the number of trades. Returns the differences (empty when equal).
 */
export async function differencesFromSimulator(db: Database, sim: EngineSimulator): Promise<string[]> {
  const diffs: string[] = [];
  const balances = await db.query<{ user_id: string; asset: string; available: string; locked: string }>(
    `SELECT user_id, asset, available_balance::text AS available, locked_balance::text AS locked FROM balances WHERE user_id = ANY($1::text[])`,
    [sim.users],
  );
  const stored = new Map(balances.rows.map((r) => [`${r.user_id}\u0000${r.asset}`, r]));
  for (const [key, want] of sim.expected.balances) {
    const got = stored.get(key);
    if (!got || !new Big(got.available).eq(want.available) || !new Big(got.locked).eq(want.locked)) {
      diffs.push(`balance ${key.replace('\u0000', ' ')}: want ${want.available}/${want.locked}, got ${got ? `${got.available}/${got.locked}` : 'none'}`);
    }
  }
  const orders = await db.query<{ id: string; filled: string }>(
    `SELECT id, filled_quantity::text AS filled FROM orders WHERE id = ANY($1::text[])`,
    [[...sim.expected.filled.keys()]],
  );
  const filled = new Map(orders.rows.map((r) => [r.id, r.filled]));
  for (const [id, want] of sim.expected.filled) {
    const got = filled.get(id);
    if (got === undefined || !new Big(got).eq(want)) diffs.push(`order ${id}: want filled ${want}, got ${got ?? 'none'}`);
  }
  const trades = await db.query<{ n: string; distinct_ids: string }>(
    `SELECT count(*) AS n, count(DISTINCT (market, id)) AS distinct_ids FROM trades`,
  );
  if (trades.rows[0]!.n !== String(sim.expected.trades) || trades.rows[0]!.distinct_ids !== String(sim.expected.trades)) {
    diffs.push(`trades: want ${sim.expected.trades}, got ${trades.rows[0]!.n} rows (${trades.rows[0]!.distinct_ids} distinct)`);
  }
  return diffs.slice(0, 20);
}
