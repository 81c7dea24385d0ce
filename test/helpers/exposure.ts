import { appendFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * What the suite exposes, for the secret scan that runs after it (test/after/secret-scan.test.ts,
 * started by scripts/test.ts): every line a service logs (a child process's output, an
 * in-process service's log), every CLI's standard error, and every HTTP answer of 400 or more a
 * test receives, headers and body. Tests name the secrets they use with `secretUsed`; API keys,
 * session and refresh tokens are also found by their shape. Recording is on when
 * TRADESTORE_EXPOSURE_DIR is set (npm test sets it); a test file run alone records nothing.
 */
const DIR = process.env.TRADESTORE_EXPOSURE_DIR || null;

export function expose(source: string, text: string): void {
  if (DIR && text) appendFileSync(join(DIR, `exposed-${process.pid}.jsonl`), `${JSON.stringify({ source, text })}\n`);
}

/** Secrets a test uses (passwords, credential values, keys), to be found nowhere the scan looks. */
export function secretUsed(...values: string[]): void {
  if (DIR && values.length) appendFileSync(join(DIR, `secrets-${process.pid}.jsonl`), values.map((v) => `${JSON.stringify(v)}\n`).join(''));
}

/** An in-process service's log, recorded (in place of `() => {}`). */
export const serviceLog = (line: string): void => expose('service log', line);

// Every error answer a test's fetch receives is recorded, before the test reads it.
const patched = Symbol.for('tradestore.exposure.fetch');
const g = globalThis as typeof globalThis & { [patched]?: true };
if (DIR && !g[patched]) {
  g[patched] = true;
  const original = globalThis.fetch;
  globalThis.fetch = async (input, init) => {
    const response = await original(input, init);
    if (response.status >= 400) {
      const headers = [...response.headers].map(([k, v]) => `${k}: ${v}`).join('\n');
      expose(`HTTP ${response.status} ${init?.method ?? 'GET'} ${String(input instanceof Request ? input.url : input)}`, `${headers}\n\n${await response.clone().text()}`);
    }
    return response;
  };
}
