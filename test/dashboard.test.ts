import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { ROOT } from './helpers/cli.ts';
import { killAll, spawnCommand, waitFor } from './helpers/service.ts';

const REQUIRE = process.env.TRADESTORE_REQUIRE_SERVERS === '1';
const CHROMIUM = process.env.CHROMIUM_PATH || ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p));

describe('the demo dashboard in a real headless Chromium', () => {
  after(killAll);
  if (!CHROMIUM && !REQUIRE) {
    it('skipped', { skip: 'no Chromium (Debian package chromium; .ci/run installs it)' }, () => {});
    return;
  }

  it('draws candles and shows a trade that arrives over the WebSocket', async () => {
    assert.ok(CHROMIUM, 'Chromium is required in CI: apt-get install chromium');
    // The quickstart's demo command, as a real process: embedded database, in-process bus, simulator.
    const demo = spawnCommand(['demo', '--rate', '40'], { TRADESTORE_DATA_DIR: 'memory://' });
    let url = '';
    await waitFor('the dashboard URL', async () => {
      url = /dashboard: (http:\/\/\S+)/.exec(demo.output())?.[1] ?? '';
      return url !== '' || demo.child.exitCode !== null;
    }, 60_000);
    assert.ok(url, `demo printed no dashboard URL:\n${demo.output()}`);
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu'] });
    try {
      const page = await browser.newPage({ viewport: { width: 1280, height: 720 } });
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      await page.goto(url);
      // Candles: the chart reports how many it drew, and lightweight-charts renders into canvases.
      await page.waitForFunction(() => Number((globalThis as any).document.getElementById('chart')?.dataset.candles) > 0, undefined, { timeout: 30_000 });
      assert.ok((await page.locator('#chart canvas').count()) > 0);
      // A trade row arrives over the WebSocket: the newest row changes without reloading the page.
      const firstRow = async () => (await page.locator('#trades tr').first().textContent({ timeout: 30_000 })) ?? '';
      const before = await firstRow();
      await page.waitForFunction((b) => ((globalThis as any).document.querySelector('#trades tr')?.textContent ?? '') !== b, before, { timeout: 30_000 });
      assert.notEqual(await firstRow(), before);
      await page.waitForFunction(() => (globalThis as any).document.getElementById('health')?.textContent === 'healthy', undefined, { timeout: 10_000 });
      assert.ok(Number(await page.locator('#rate').textContent()) >= 0);
      assert.match((await page.locator('#ticker').textContent()) ?? '', /Last/);
      const dir = join(ROOT, 'test-results');
      mkdirSync(dir, { recursive: true });
      await page.screenshot({ path: join(dir, 'dashboard.png') });
      assert.deepEqual(errors, []);
    } finally {
      await browser.close();
      demo.child.kill('SIGTERM');
      assert.equal(await demo.exited, 0, demo.output());
    }
  });
});
