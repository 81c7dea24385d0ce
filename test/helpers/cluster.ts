import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { freePort } from './outages.ts';

const run = promisify(execFile);

interface Node {
  port: number;
  dir: string;
  child: ChildProcess | null;
}

/**
 * A Redis Cluster of this test's own: `masters` masters, each with `replicas` replicas, on free
 * local ports (redis-server --cluster-enabled yes, then redis-cli --cluster create). destroy()
 * kills every process and removes their directories.
 */
export class OwnCluster {
  private constructor(private readonly nodes: Node[]) {}

  static async start(masters = 3, replicas = 1): Promise<OwnCluster> {
    const nodes: Node[] = [];
    for (let i = 0; i < masters * (1 + replicas); i++) nodes.push({ port: await freePort(), dir: mkdtempSync(join(tmpdir(), 'tradestore-cluster-')), child: null });
    const cluster = new OwnCluster(nodes);
    try {
      for (const node of nodes) {
        node.child = spawn(
          'redis-server',
          ['--port', String(node.port), '--bind', '127.0.0.1', '--dir', node.dir, '--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf',
            '--cluster-node-timeout', '1000', '--appendonly', 'no', '--save', '', '--logfile', join(node.dir, 'redis.log')],
          { stdio: 'ignore' },
        );
        await waitForPing(node.port);
      }
      await run('redis-cli', ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', String(replicas), '--cluster-yes']);
      await cluster.waitHealthy();
      await cluster.waitReplicasInSync();
      return cluster;
    } catch (error) {
      await cluster.destroy();
      throw error;
    }
  }

  get url(): string {
    return `redis://127.0.0.1:${this.nodes[0]!.port}`;
  }

  /** Until every live node says the cluster is ok and all slots are served. */
  async waitHealthy(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const states = await Promise.all(this.nodes.filter((n) => n.child).map((n) => info(n.port).catch(() => '')));
      if (states.every((s) => /cluster_state:ok/.test(s) && /cluster_slots_ok:16384/.test(s))) return;
      if (Date.now() > deadline) throw new Error(`the cluster did not become healthy: ${states.join(' | ')}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  /** Until every replica has made its first sync with its master (a replica that never did cannot take over). */
  async waitReplicasInSync(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const states = await Promise.all(
        this.nodes.filter((n) => n.child).map(async (n) => (await run('redis-cli', ['-p', String(n.port), 'info', 'replication'])).stdout),
      );
      const replicas = states.filter((s) => /role:slave/.test(s));
      if (replicas.length && replicas.every((s) => /master_link_status:up/.test(s) && !/master_sync_in_progress:1/.test(s))) return;
      if (Date.now() > deadline) throw new Error('the replicas did not sync');
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  /** The port of the master that serves `key`. */
  async masterOf(key: string): Promise<number> {
    const live = this.nodes.find((n) => n.child)!;
    const client = new Redis(live.port, '127.0.0.1');
    try {
      const slot = Number(await client.cluster('KEYSLOT', key));
      const ranges = await client.cluster('SLOTS');
      const range = ranges.find(([from, to]) => slot >= from && slot <= to)!;
      return Number(range[2]![1]);
    } finally {
      client.disconnect();
    }
  }

  /** kill -9 of one node's process. */
  async kill(port: number): Promise<void> {
    const node = this.nodes.find((n) => n.port === port)!;
    const exited = new Promise((r) => node.child!.once('exit', r));
    node.child!.kill('SIGKILL');
    await exited;
    node.child = null;
  }

  /** Until the slots of `key` are served by a live master again (its replica took over). */
  async waitServed(key: string, timeoutMs = 30_000): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const port = await this.masterOf(key).catch(() => 0);
      if (port && this.nodes.some((n) => n.port === port && n.child)) {
        await this.waitHealthy(Math.max(1000, deadline - Date.now()));
        return port;
      }
      if (Date.now() > deadline) throw new Error(`no live master took over ${key}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  async destroy(): Promise<void> {
    for (const node of this.nodes) {
      if (node.child) {
        const exited = new Promise((r) => node.child!.once('exit', r));
        node.child.kill('SIGKILL');
        await exited;
        node.child = null;
      }
      rmSync(node.dir, { recursive: true, force: true });
    }
  }
}

async function info(port: number): Promise<string> {
  const { stdout } = await run('redis-cli', ['-p', String(port), 'cluster', 'info']);
  return stdout;
}

async function waitForPing(port: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    try {
      const { stdout } = await run('redis-cli', ['-p', String(port), 'ping']);
      if (stdout.trim() === 'PONG') return;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`redis-server on port ${port} did not start`);
}
