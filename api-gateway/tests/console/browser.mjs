// What a browser test file needs besides its checks: a real pair
// (pair.mjs), Debian's Chromium driven by playwright-core, the page's
// errors, dialogs and failed answers recorded, and the check that nothing
// unexpected happened. console.test.mjs keeps its own copy of this set-up
// (it came first); the newer files share this one.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';

import { Pair } from './pair.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../../..');
const target = process.env.CARGO_TARGET_DIR || path.join(root, 'target');
const bin = process.env.MONITOREO_BIN_DIR || path.join(target, 'debug');
export const shots = path.join(target, 'console-screenshots');
const chromiumPath = process.env.CHROMIUM || '/usr/bin/chromium';

/** Options of every test: the steps wait for real processes. */
export const T = { timeout: 120000 };

/** One browser on one pair; `B.start()` in `before`, `B.stop()` in `after`. */
export class Browser {
  static async start({ width = 1280, height = 800 } = {}) {
    const b = new Browser();
    fs.mkdirSync(shots, { recursive: true });
    b.pair = await Pair.start(bin);
    process.on('exit', () => b.pair && b.pair.killNow());
    b.origin = b.pair.url;
    b.requests = [];
    b.consoleMessages = [];
    b.pageErrors = [];
    b.dialogs = [];
    b.errorResponses = [];
    b.provoked = [];
    b.userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'monitoreo-console-chromium.'));
    b.context = await chromium.launchPersistentContext(b.userDataDir, {
      executablePath: chromiumPath,
      headless: true,
      args: [
        '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync',
      ],
      viewport: { width, height },
    });
    b.context.on('request', (r) => b.requests.push(r.url()));
    const page = b.context.pages()[0] || await b.context.newPage();
    b.page = page;
    page.setDefaultTimeout(30000);
    page.on('console', (m) => b.consoleMessages.push({ type: m.type(), text: m.text(), url: m.location().url }));
    page.on('pageerror', (e) => b.pageErrors.push(e.message));
    page.on('dialog', (d) => {
      b.dialogs.push(d.message());
      d.dismiss().catch(() => {});
    });
    page.on('response', (r) => {
      if (r.status() >= 400) b.errorResponses.push({ method: r.request().method(), url: r.url(), status: r.status() });
    });
    return b;
  }

  /** The screenshot `name`.png in target/console-screenshots/. */
  async shot(name) {
    await this.page.screenshot({ path: path.join(shots, `${name}.png`) });
  }

  /** An error answer a check provokes on purpose. */
  provoke(method, re, status) {
    this.provoked.push([method, re, status]);
  }

  /** Opens the console at `hash` and signs in with `key`; resolves once the processes are listed. */
  async signIn(key, hash = '') {
    const { page } = this;
    await page.goto(`${this.origin}/${hash}`);
    await page.evaluate(() => sessionStorage.clear());
    await page.goto(`${this.origin}/${hash}`);
    await page.fill('#key-input', key);
    await page.click('#sign-in');
    await page.waitForSelector('#who', { state: 'visible' });
  }

  /** Waits until the process table holds at least one listing. */
  async listed() {
    await this.page.waitForFunction(() => Number(document.getElementById('ps-table').dataset.rows) > 0);
  }

  /** The checks every file ends with: no stray error, request or dialog. */
  assertClean() {
    const isProvoked = ({ method, url, status }) => this.provoked.some(
      ([m, re, s]) => m === method && s === status && re.test(new URL(url).pathname),
    );
    assert.deepEqual(this.requests.filter((u) => !u.startsWith(`${this.origin}/`)), [], 'requests outside the origin');
    assert.deepEqual(this.pageErrors, [], 'uncaught errors');
    assert.deepEqual(this.dialogs, [], 'dialogs (alert, confirm)');
    assert.deepEqual(this.errorResponses.filter((r) => !isProvoked(r)), [], 'error answers no check provoked');
    const bad = this.consoleMessages.filter((m) => (m.type === 'error' || m.type === 'warning')
      && !(m.text.startsWith('Failed to load resource: the server responded with a status of')
        && this.errorResponses.some((r) => r.url === m.url && isProvoked(r))));
    assert.deepEqual(bad, [], 'console errors and warnings (CSP violations among them)');
  }

  async stop() {
    if (this.context) await this.context.close().catch(() => {});
    if (this.userDataDir) fs.rmSync(this.userDataDir, { recursive: true, force: true });
    if (this.pair) await this.pair.stop();
  }
}
