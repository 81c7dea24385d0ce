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

  it('shows the demo strategy: equity and drawdown curves, metrics, open positions and round trips; asks for a key without one', async () => {
    assert.ok(CHROMIUM, 'Chromium is required in CI: apt-get install chromium');
    const demo = spawnCommand(['demo', '--rate', '20'], { TRADESTORE_DATA_DIR: 'memory://' });
    let url = '';
    await waitFor('the strategies URL', async () => {
      url = /strategies: (http:\/\/\S+)/.exec(demo.output())?.[1] ?? '';
      return url !== '' || demo.child.exitCode !== null;
    }, 60_000);
    assert.ok(url, `demo printed no strategies URL:\n${demo.output()}`);
    assert.match(demo.output(), /demo strategy: \d+ round trips and \d+ day-end snapshots sent through the bus and ingested/);
    // The key travels in the fragment (never sent to the server), not in a query string.
    const printed = new URL(url);
    assert.equal(printed.pathname, '/dashboard/strategies');
    assert.equal(printed.search, '');
    const key = /^#key=(ts_\S+)$/.exec(printed.hash)?.[1] ?? '';
    assert.ok(key, printed.hash);
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu'] });
    try {
      const errors: string[] = [];
      const requests: { url: string; key: string | undefined }[] = [];
      const open = async () => {
        const page = await browser.newPage({ viewport: { width: 1280, height: 720 }, timezoneId: 'Asia/Kolkata', locale: 'en-GB' });
        page.on('pageerror', (e) => errors.push(e.message));
        page.on('request', (r) => requests.push({ url: r.url(), key: r.headers()['x-api-key'] }));
        return page;
      };

      // Without a key: the form to paste one, no error; the key pasted there opens the list.
      const dir = join(ROOT, 'test-results');
      mkdirSync(dir, { recursive: true });
      const bare = await open();
      await bare.goto(`${printed.origin}/dashboard/strategies`);
      await bare.locator('#key-form').waitFor({ state: 'visible', timeout: 10_000 });
      assert.ok(await bare.locator('#list-section').isHidden());
      assert.equal(await bare.locator('#key-error').textContent(), '');
      await bare.screenshot({ path: join(dir, 'strategies-no-key.png') });
      await bare.locator('#key').fill(key);
      await bare.locator('#key-form button[type=submit]').click();
      await bare.locator('#list tbody tr').first().waitFor({ timeout: 10_000 });
      assert.ok(await bare.locator('#key-form').isHidden());
      await bare.close();

      // The printed URL: the list with the headline numbers, and the strategy (the key's user has one) opened.
      const page = await open();
      await page.goto(url);
      await page.waitForFunction(() => Number((globalThis as any).document.getElementById('equity')?.dataset.points) > 100, undefined, { timeout: 30_000 });
      assert.doesNotMatch(page.url(), /key=/, 'the key is taken out of the address bar');
      assert.equal(await page.evaluate(() => (globalThis as any).sessionStorage.getItem('tradestore.apiKey')), key);
      assert.ok((await page.locator('#equity canvas').count()) > 0, 'the equity chart is drawn');
      assert.ok((await page.locator('#drawdown canvas').count()) > 0, 'the drawdown chart is drawn');
      assert.equal(await page.locator('#drawdown').getAttribute('data-points'), await page.locator('#equity').getAttribute('data-points'));
      assert.match((await page.locator('#equity-source').textContent()) ?? '', /closing portfolio snapshot/, 'the demo engine sends its day-end snapshots');
      const rows = page.locator('#list tbody tr');
      assert.equal(await rows.count(), 1, 'a read key of the demo user sees its one strategy');
      const cells = await rows.first().locator('td').allTextContents();
      assert.equal(cells[0], 'TATA mean reversion (demo)');
      assert.equal(cells[1], 'PAPER');
      assert.match(cells[2]!, /enabled/);
      assert.ok(Number(cells[3]) > 100, `trades: ${cells[3]}`);
      assert.match(cells[4]!, /^\d+\.\d %$/);
      assert.match(cells[5]!, /^[+-]?[\d,]+\.\d{2}$/);
      assert.match(cells[6]!, /^-\d+\.\d{2} %$/);
      // The metrics: numbers, and a null one as a dash with its reason.
      const metric = (name: string) => page.locator(`#metrics tr[data-metric="${name}"] td.value`).textContent();
      assert.match((await metric('sharpeRatio')) ?? '', /^-?\d+\.\d{2}$/);
      assert.equal(await metric('totalTrades'), cells[3], 'the metrics count the same round trips as the list');
      assert.match((await metric('beta')) ?? '', /^—no benchmark given$/);
      assert.equal(await page.locator('#metrics tr[data-metric="beta"] td.value span').getAttribute('title'), 'no benchmark given');
      // Open positions: the demo's two; the last 20 round trips, times in the viewer's zone.
      await page.waitForFunction(() => (globalThis as any).document.querySelectorAll('#positions tbody tr').length === 2, undefined, { timeout: 10_000 });
      assert.equal(await page.locator('#trips tbody tr').count(), 20);
      const entered = await page.locator('#trips tbody tr td:first-child').allTextContents();
      assert.ok(entered.every((t) => /^\d{2}\/\d{2}\/\d{4} \d{2}:\d{2}$/.test(t)), entered.slice(0, 3).join(', '));
      assert.match((await page.locator('#zone').textContent()) ?? '', /^Asia\/(Kolkata|Calcutta)$/);
      const held = await page.locator('#positions tbody tr td:last-child').allTextContents();
      assert.ok(held.every((t) => /^(\d+h )?\d+m$/.test(t)), held.join(', '));
      // The key was sent in the header only, never in a URL.
      assert.ok(requests.some((r) => r.url.includes('/v1/strategies') && r.key === key));
      assert.deepEqual(requests.filter((r) => r.url.includes(key)).map((r) => r.url), []);
      assert.deepEqual(errors, []);
      await page.screenshot({ path: join(dir, 'strategies-1280x720.png'), fullPage: true });
    } finally {
      await browser.close();
      demo.child.kill('SIGTERM');
      assert.equal(await demo.exited, 0, demo.output());
    }
  });
});
