import { it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Run by npm test after the suite (scripts/test.ts): no secret the suite used appears in any log
 * line or error answer it produced (test/helpers/exposure.ts): not a password, credential value
 * or key a test named, and nothing shaped like an API key, a session token or a refresh token.
 */
const DIR = process.env.TRADESTORE_EXPOSURE_DIR;
const SHAPES = [/ts_[0-9a-f]{12}_[A-Za-z0-9_-]{32}/, /tss_[A-Za-z0-9_-]{43}/, /tsr_[A-Za-z0-9_-]{43}/];
/**
 * Shown on purpose, and nowhere else: the demo's link to its strategy page carries a read-only key
 * of the demo user (the quickstart opens it). Only that line of the demo's output is left out.
 */
const DELIBERATE = [{ source: /^tradestore demo /, line: /^strategies: https?:\/\/\S+\/dashboard\/strategies#key=ts_[0-9a-f]{12}_[A-Za-z0-9_-]{32}$/gm }];
const withoutDeliberate = (source: string, text: string) =>
  DELIBERATE.reduce((t, d) => (d.source.test(source) ? t.replace(d.line, '') : t), text);

const lines = (prefix: string) =>
  readdirSync(DIR!).filter((f) => f.startsWith(prefix)).flatMap((f) => readFileSync(join(DIR!, f), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as unknown));

it('finds no secret of the suite in its logs or error answers', { skip: DIR ? false : 'run by npm test after the suite (TRADESTORE_EXPOSURE_DIR)' }, (t) => {
  const secrets = [...new Set(lines('secrets-') as string[])].filter((s) => s.length >= 6);
  const exposed = lines('exposed-') as { source: string; text: string }[];
  const leaks: string[] = [];
  for (const { source, text: raw } of exposed) {
    const text = withoutDeliberate(source, raw);
    for (const s of secrets) if (text.includes(s)) leaks.push(`${source}: a secret the suite used (${s.slice(0, 2)}…, ${s.length} characters)`);
    for (const shape of SHAPES) {
      const m = shape.exec(text);
      if (m) leaks.push(`${source}: something shaped like ${shape.source.slice(0, 4)}… (${m[0].slice(0, 7)}…)`);
    }
  }
  t.diagnostic(`secret scan: ${secrets.length} secrets and ${SHAPES.length} token shapes against ${exposed.length} recorded outputs (${exposed.reduce((n, e) => n + e.text.split('\n').length, 0)} lines)`);
  assert.deepEqual([...new Set(leaks)], []);
  // Not vacuous: the whole suite recorded what it exposed and named what it used.
  if (process.env.TRADESTORE_EXPOSURE_WHOLE) assert.ok(exposed.length > 100 && secrets.length >= 10, `${exposed.length} outputs, ${secrets.length} secrets recorded`);
});
