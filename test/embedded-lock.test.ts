import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EmbeddedDatabase } from '../src/database/embedded.ts';
import { runCli } from './helpers/cli.ts';

describe('embedded database directory lock', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tradestore-lock-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('gives a second process a clear error while the first has the directory open', async () => {
    const dataDir = join(dir, 'db');
    const db = await EmbeddedDatabase.open({ dataDir });
    try {
      const second = await runCli(['migrate', 'status'], { TRADESTORE_DATA_DIR: dataDir });
      assert.equal(second.code, 1);
      assert.match(second.stderr, new RegExp(`in use by another tradestore process \\(pid ${process.pid}\\)`));
      assert.match(second.stderr, /TRADESTORE_DATA_DIR/);
    } finally {
      await db.close();
    }
    assert.equal(existsSync(`${dataDir}.lock`), false, 'close releases the lock');
    const after = await runCli(['migrate', 'status'], { TRADESTORE_DATA_DIR: dataDir });
    assert.equal(after.code, 0, after.stderr);
  });

  it('takes over a lock left by a process that no longer runs', async () => {
    const dataDir = join(dir, 'stale');
    // A pid far above pid_max: no such process.
    await writeFile(`${dataDir}.lock`, '99999999');
    const db = await EmbeddedDatabase.open({ dataDir });
    await db.close();
  });
});
