import { execFile, execFileSync } from 'node:child_process';
import { appendFileSync, chownSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './outages.ts';

const run = promisify(execFile);
export const PG_BIN = '/usr/lib/postgresql/15/bin';

/** Why a test cannot start a PostgreSQL cluster of its own here, or null when it can. */
export function ownClusterUnavailable(): string | null {
  if (!existsSync(join(PG_BIN, 'initdb'))) return `no PostgreSQL binaries in ${PG_BIN}`;
  if (process.getuid?.() !== 0) return 'starting a cluster as the postgres user needs root';
  return null;
}

/** Runs a PostgreSQL binary as the postgres user (the server refuses to run as root). */
export async function asPostgres(binary: string, args: string[]): Promise<string> {
  const { stdout } = await run('runuser', ['-u', 'postgres', '--', join(PG_BIN, binary), ...args], { maxBuffer: 16 * 1024 * 1024 });
  return stdout;
}

const postgresIds = () => {
  const id = (flag: string) => Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8' }).trim());
  return { uid: id('-u'), gid: id('-g') };
};

/** A directory (or file) the postgres user owns. */
export function ownedByPostgres(path: string): string {
  const { uid, gid } = postgresIds();
  chownSync(path, uid, gid);
  return path;
}

/** A directory the postgres user owns, under the system's temporary directory. */
export function postgresDir(prefix: string): string {
  return ownedByPostgres(mkdtempSync(join(tmpdir(), prefix)));
}

/**
 * A PostgreSQL cluster of the test's own on a free port, trusting local connections, with WAL
 * archived to `archive` (seed 003's settings: wal_level replica, archive_mode on, an
 * archive_command that copies each segment). stop() stops it; destroy() removes its directories.
 */
export class OwnPostgres {
  private constructor(
    readonly dataDir: string,
    readonly port: number,
    private readonly dirs: string[],
  ) {}

  get url(): string {
    return `postgres://postgres@127.0.0.1:${this.port}/postgres`;
  }

  static async init(archive: string): Promise<OwnPostgres> {
    const root = postgresDir('tradestore-pg-');
    const dataDir = join(root, 'data');
    await asPostgres('initdb', ['-D', dataDir, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync']);
    const port = await freePort();
    appendFileSync(
      join(dataDir, 'postgresql.conf'),
      `\nport = ${port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '${root}'\nwal_level = replica\narchive_mode = on\n` +
        `archive_command = 'cp %p ${archive}/%f'\nmax_wal_senders = 4\nfsync = off\n`,
    );
    const cluster = new OwnPostgres(dataDir, port, [root]);
    await cluster.start();
    return cluster;
  }

  /** A cluster on a base backup's directory, recovering from the WAL archive up to `targetTime`, then promoted. */
  static async recoverTo(baseDir: string, archive: string, targetTime: string, root: string): Promise<OwnPostgres> {
    const port = await freePort();
    appendFileSync(
      join(baseDir, 'postgresql.auto.conf'),
      `\nport = ${port}\nunix_socket_directories = '${root}'\narchive_mode = off\nrestore_command = 'cp ${archive}/%f %p'\n` +
        `recovery_target_time = '${targetTime}'\nrecovery_target_action = 'promote'\n`,
    );
    writeFileSync(join(baseDir, 'recovery.signal'), '');
    ownedByPostgres(join(baseDir, 'recovery.signal'));
    const cluster = new OwnPostgres(baseDir, port, [root]);
    await cluster.start();
    return cluster;
  }

  /** A streaming replica of this cluster (pg_basebackup -R), on a free port. */
  async replica(): Promise<OwnPostgres> {
    const root = postgresDir('tradestore-replica-');
    const dataDir = join(root, 'data');
    await asPostgres('pg_basebackup', ['-h', '127.0.0.1', '-p', String(this.port), '-U', 'postgres', '-D', dataDir, '-X', 'stream', '-R', '-c', 'fast', '--no-sync']);
    const port = await freePort();
    appendFileSync(join(dataDir, 'postgresql.auto.conf'), `\nport = ${port}\nunix_socket_directories = '${root}'\narchive_mode = off\nwal_receiver_status_interval = 1s\n`);
    const replica = new OwnPostgres(dataDir, port, [root]);
    await replica.start();
    return replica;
  }

  async start(): Promise<void> {
    const log = join(this.dataDir, '..', `server-${this.port}.log`);
    try {
      await asPostgres('pg_ctl', ['-D', this.dataDir, '-l', log, '-w', '-t', '60', 'start']);
    } catch (error) {
      const tail = existsSync(log) ? readFileSync(log, 'utf8').split('\n').slice(-15).join('\n') : '(no log)';
      throw new Error(`${(error as Error).message}\n${tail}`);
    }
  }

  async stop(): Promise<void> {
    await asPostgres('pg_ctl', ['-D', this.dataDir, '-m', 'fast', '-w', 'stop']).catch(() => '');
  }

  async destroy(): Promise<void> {
    await this.stop();
    for (const dir of this.dirs) rmSync(dir, { recursive: true, force: true });
  }
}
