import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * npm test: every test/*.test.ts (or the files named), two at a time, then the secret scan over
 * what they exposed (test/after/secret-scan.test.ts; test/helpers/exposure.ts records it). The
 * exit code is the first failure's.
 */
const named = process.argv.slice(2);
const files = named.length ? named : readdirSync('test').filter((f) => f.endsWith('.test.ts')).sort().map((f) => join('test', f));
const dir = mkdtempSync(join(tmpdir(), 'tradestore-exposure-'));
// The scan expects a whole suite's worth of output only when the whole suite ran.
const env = { ...process.env, TRADESTORE_EXPOSURE_DIR: dir, TRADESTORE_EXPOSURE_WHOLE: named.length ? '' : '1' };
const node = (args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', '--test', ...args], { stdio: 'inherit', env }).status ?? 1;
try {
  const suite = node(['--test-concurrency=2', ...files]);
  const scan = node([join('test', 'after', 'secret-scan.test.ts')]);
  process.exitCode = suite || scan;
} finally {
  rmSync(dir, { recursive: true, force: true });
}
