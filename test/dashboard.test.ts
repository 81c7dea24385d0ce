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
      // A viewer in India: every time on the page is in their time zone.
      const page = await browser.newPage({ viewport: { width: 1280, height: 720 }, timezoneId: 'Asia/Kolkata', locale: 'en-GB' });
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      await page.goto(url);
      // Candles and volume bars: the chart reports how many it drew, and lightweight-charts renders into canvases.
      await page.waitForFunction(() => Number((globalThis as any).document.getElementById('chart')?.dataset.candles) > 0, undefined, { timeout: 30_000 });
      assert.ok((await page.locator('#chart canvas').count()) > 0);
      assert.ok(Number(await page.locator('#chart').getAttribute('data-volumes')) > 0, 'volume bars under the candles');
      // A trade row arrives over the WebSocket: the newest row changes without reloading the page.
      const firstRow = async () => (await page.locator('#trades tr').first().textContent({ timeout: 30_000 })) ?? '';
      const before = await firstRow();
      await page.waitForFunction((b) => ((globalThis as any).document.querySelector('#trades tr')?.textContent ?? '') !== b, before, { timeout: 30_000 });
      assert.notEqual(await firstRow(), before);
      // The order book with its depth bars (the simulator keeps orders open on both sides).
      await page.waitForFunction(() => (globalThis as any).document.querySelectorAll('#book-bids tr').length > 0 && (globalThis as any).document.querySelectorAll('#book-asks tr').length > 0, undefined, { timeout: 30_000 });
      const widths = await page.locator('#book-bids .depth').evaluateAll((bars) => bars.map((b) => parseFloat((b as any).style.width)));
      assert.ok(widths.length > 0 && widths.every((w, i) => w > 0 && w <= 100 && (i === 0 || w >= widths[i - 1]!)), `cumulative depth bars: ${widths}`);
      // Times: one format, the viewer's zone.
      // ICU may name the zone by its older alias.
      assert.match((await page.locator('#zone').textContent()) ?? '', /^Asia\/(Kolkata|Calcutta)$/);
      const times = await page.locator('#trades tr td:first-child').allTextContents();
      assert.ok(times.length > 0 && times.every((t) => /^\d{2}:\d{2}:\d{2}$/.test(t)), times.slice(0, 3).join(', '));
      const expected = await page.evaluate(() => new Intl.DateTimeFormat(undefined, { hour: '2-digit', hourCycle: 'h23' }).format(new Date()));
      assert.equal(expected, new Intl.DateTimeFormat('en-GB', { hour: '2-digit', hourCycle: 'h23', timeZone: 'Asia/Kolkata' }).format(new Date()));
      // The operations strip.
      await page.waitForFunction(() => (globalThis as any).document.getElementById('health')?.textContent === 'healthy', undefined, { timeout: 10_000 });
      assert.ok(Number(await page.locator('#rate').textContent()) >= 0);
      assert.match((await page.locator('#waiting').textContent()) ?? '', /^\d+$/);
      assert.match((await page.locator('#dead').textContent()) ?? '', /^\d+$/);
      assert.match((await page.locator('#commit').textContent()) ?? '', /^\d{2}:\d{2}:\d{2}$/);
      assert.match((await page.locator('#ticker').textContent()) ?? '', /Last/);
      // The page fills common screen sizes without scrollbars.
      const dir = join(ROOT, 'test-results');
      mkdirSync(dir, { recursive: true });
      for (const [width, height] of [[1280, 720], [1366, 768], [1920, 1080], [1024, 768]] as const) {
        await page.setViewportSize({ width, height });
        await page.waitForTimeout(300);
        const size = await page.evaluate(() => {
          const d = (globalThis as any).document.documentElement;
          return { scrollWidth: d.scrollWidth, scrollHeight: d.scrollHeight, width: d.clientWidth, height: d.clientHeight };
        });
        assert.ok(size.scrollWidth <= size.width && size.scrollHeight <= size.height, `${width}x${height}: ${JSON.stringify(size)}`);
        const chart = await page.locator('#chart').boundingBox();
        assert.ok(chart && chart.height > height * 0.5, `${width}x${height}: the chart fills the page (${chart?.height} px high)`);
        await page.screenshot({ path: join(dir, `dashboard-${width}x${height}.png`) });
      }
      assert.deepEqual(errors, []);
    } finally {
      await browser.close();
      demo.child.kill('SIGTERM');
      assert.equal(await demo.exited, 0, demo.output());
    }
  });
});
