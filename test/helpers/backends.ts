import { after, before, describe } from 'node:test';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import './exposure.ts';
import { EmbeddedDatabase } from '../../src/database/embedded.ts';
import { PostgresDatabase } from '../../src/database/postgres.ts';
import type { Database } from '../../src/database/types.ts';

/**
 * Every suite runs on the embedded database and, when a PostgreSQL server is reachable, on
 * the server. Each run gets its own fresh database (server) or directory (embedded), removed
 * afterwards. With TRADESTORE_REQUIRE_SERVERS=1 (CI) an unreachable server fails the run
 * instead of skipping.
 */
export type BackendName = 'embedded' | 'postgres' | 'timescaledb';

/**
 * A PostgreSQL server with TimescaleDB (a release built by the developer, not installed by the
 * project): when TEST_TIMESCALEDB_URL is set, every suite also runs on it. CI has none.
 */
export const TIMESCALEDB_URL = process.env.TEST_TIMESCALEDB_URL || null;

export interface Fresh {
  backend: BackendName;
  db: Database;
  /** Environment for a child process (the CLI) that should use the same database. */
  env: Record<string, string>;
}

export const ADMIN_URL = process.env.TEST_DATABASE_URL || process.env.DATABASE_URL || `postgres://${userInfo().username}@127.0.0.1:5432/postgres`;
const REQUIRE = process.env.TRADESTORE_REQUIRE_SERVERS === '1';

let serverCheck: Promise<string | null> | undefined;

/** null when the server answers; otherwise why not. */
export function serverUnavailable(): Promise<string | null> {
  serverCheck ??= (async () => {
    const client = new pg.Client({ connectionString: ADMIN_URL, connectionTimeoutMillis: 3000 });
    try {
      await client.connect();
      await client.query('SELECT 1');
      return null;
    } catch (error) {
      return `PostgreSQL at ${ADMIN_URL} unreachable: ${(error as Error).message}`;
    } finally {
      await client.end().catch(() => {});
    }
  })();
  return serverCheck;
}

async function admin<T>(fn: (c: pg.Client) => Promise<T>, server = ADMIN_URL): Promise<T> {
  const client = new pg.Client({ connectionString: server });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** A new empty database on the server; returns its URL and how to drop it. */
export async function createServerDatabase(server = ADMIN_URL): Promise<{ url: string; drop: () => Promise<void> }> {
  const name = `tradestore_test_${process.pid}_${randomBytes(4).toString('hex')}`;
  await admin((c) => c.query(`CREATE DATABASE ${name}`), server);
  const url = new URL(server);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: () => admin((c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`), server).then(() => undefined),
  };
}

export async function freshDatabase(backend: BackendName): Promise<Fresh & { dispose: () => Promise<void> }> {
  if (backend === 'postgres' || backend === 'timescaledb') {
    const { url, drop } = await createServerDatabase(backend === 'timescaledb' ? TIMESCALEDB_URL! : ADMIN_URL);
    const db = await PostgresDatabase.open({ url, max: 4 });
    return {
      backend,
      db,
      env: { DATABASE_URL: url },
      dispose: async () => {
        await db.close().catch(() => {});
        await drop();
      },
    };
  }
  const dir = await mkdtemp(join(tmpdir(), 'tradestore-test-'));
  const dataDir = join(dir, 'db');
  const db = await EmbeddedDatabase.open({ dataDir });
  return {
    backend,
    db,
    env: { TRADESTORE_DATA_DIR: dataDir },
    dispose: async () => {
      await db.close().catch(() => {});
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Declares `body`'s tests once per backend, each suite on its own fresh database.
 * `only` restricts the backends (e.g. TimescaleDB checks run on the embedded one).
 */
export function eachBackend(
  title: string,
  body: (get: () => Fresh) => void,
  options: { only?: BackendName[] } = {},
): void {
  const all: BackendName[] = TIMESCALEDB_URL ? ['embedded', 'postgres', 'timescaledb'] : ['embedded', 'postgres'];
  for (const backend of options.only ?? all) {
    describe(`${title} [${backend}]`, async () => {
      const reason = backend === 'postgres' && !REQUIRE ? await serverUnavailable() : null;
      if (reason) {
        describe('skipped', { skip: reason }, () => {});
        return;
      }
      let fresh: (Fresh & { dispose: () => Promise<void> }) | undefined;
      before(async () => {
        fresh = await freshDatabase(backend);
      });
      after(async () => {
        await fresh?.dispose();
      });
      body(() => {
        if (!fresh) throw new Error('database not ready');
        return fresh;
      });
    });
  }
}
