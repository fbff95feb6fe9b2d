// The console a sysadmin expects, in Chromium against a real pair
// (browser.mjs): what a new user's first try found wrong, each shown
// fixed, and the table's views (kernel threads, columns, links, charts).
// Screenshots: target/console-screenshots/2x-*.png.
//
// Run through ./run (root, Chromium and npm checked there).

import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, test } from 'node:test';

import { Browser, T } from './browser.mjs';

let b;
let page;
const jobs = {};

before(async () => {
  b = await Browser.start({ width: 1400, height: 860 });
  ({ page } = b);
  jobs.sleeper = await b.pair.job('exec sleep 3101');
  jobs.other = await b.pair.job('exec sleep 3102');
});

after(async () => {
  if (b) await b.stop();
});

/** Shows only rows whose command line contains `cmd`. */
async function filterCmd(cmd) {
  await page.fill('#f-cmd', cmd);
}

async function openDetail(pid) {
  await page.click(`#ps-body tr[data-pid="${pid}"]`);
  await page.waitForFunction((p) => document.getElementById('detail').dataset.pid === String(p)
    && !document.getElementById('detail').hidden, pid);
}

test('the header names the helper and the version, never "undefined"', T, async () => {
  await b.signIn(b.pair.keys.ops);
  await page.waitForFunction(() => document.getElementById('helper-state').textContent !== '');
  const text = await page.textContent('#helper-state');
  assert.match(text, /^helper ok · v\d+\.\d+\.\d+/);
  assert.ok(!text.includes('undefined'), text);
});

test('the CPU window in the status line is rounded', T, async () => {
  await b.listed();
  await page.click('#ps-reload');
  await page.waitForFunction(() => /CPU over/.test(document.getElementById('ps-status').textContent));
  const text = await page.textContent('#ps-status');
  assert.match(text, /CPU over \d+(\.\d)? s ·/, text);
});

test('at 1,400 px every header shows its whole label and its sort arrow', T, async () => {
  const keys = await page.$$eval('#ps-table thead th[data-key]:not([hidden])', (ths) => ths
    .filter((th) => getComputedStyle(th).display !== 'none').map((th) => th.dataset.key));
  assert.ok(keys.includes('num_threads') && keys.includes('rss'), keys.join());
  for (const key of keys) {
    // Twice: largest first, then smallest first (the two arrows).
    for (let i = 0; i < 2; i += 1) {
      await page.click(`th[data-key="${key}"] button`);
      const m = await page.$eval(`th[data-key="${key}"]`, (th) => {
        const button = th.querySelector('button');
        const label = button.querySelector('span');
        const arrow = getComputedStyle(button, '::after');
        return {
          sort: th.getAttribute('aria-sort'),
          cut: label.scrollWidth > label.clientWidth,
          widths: `${label.scrollWidth} > ${label.clientWidth}, th ${th.clientWidth}`,
          arrow: arrow.content,
          arrowWidth: parseFloat(arrow.width),
          over: button.scrollWidth > button.clientWidth,
        };
      });
      assert.notEqual(m.sort, 'none', key);
      assert.equal(m.cut, false, `${key}: its label is cut (${m.widths})`);
      assert.equal(m.over, false, `${key}: the arrow spills out of the header`);
      assert.match(m.arrow, /[▲▼]/, `${key}: arrow ${m.arrow}`);
      assert.ok(m.arrowWidth > 0, `${key}: the arrow has room`);
    }
  }
  await page.click('th[data-key="cpu_percent"] button');
  if (await page.getAttribute('th[data-key="cpu_percent"]', 'aria-sort') !== 'descending') {
    await page.click('th[data-key="cpu_percent"] button');
  }
  await b.shot('21-headers-1400');
});

test('a process without a terminal says so, not "not readable"', T, async () => {
  await filterCmd('sleep 3101');
  await openDetail(jobs.sleeper.pid);
  await page.waitForSelector('#detail-fields > .field[data-field="terminal"]');
  assert.equal(await page.textContent('#detail-fields > .field[data-field="terminal"] > dd'),
    'none (no controlling terminal)');
  await page.click('#detail-close');
  await filterCmd('');
});

test('colours in job output are shown as colours, other escapes not at all', T, async () => {
  await page.click('#tab-jobs');
  const cmd = String.raw`printf '\033]0;title\007\033[2J\033[31mred\033[0m plain \033[1;32mbold green\033[0m \033[38;5;33mblue\033[m\n'; printf '\033[33mwarn\033[0m\n' >&2`;
  await page.fill('#job-cmd', cmd);
  await page.click('#job-run');
  await page.waitForFunction(() => document.getElementById('job-view').dataset.state === 'exited');
  await page.waitForFunction(() => document.getElementById('job-output').textContent.includes('warn'));
  const out = await page.$eval('#job-output', (pre) => ({
    text: pre.textContent,
    spans: [...pre.querySelectorAll('span')].map((s) => ({
      text: s.textContent, cls: s.className, color: getComputedStyle(s).color, weight: getComputedStyle(s).fontWeight,
    })),
  }));
  assert.equal(out.text, 'red plain bold green blue\nwarn\n');
  assert.ok(!/[\x00-\x08\x0b-\x1f\x7f]/.test(out.text), JSON.stringify(out.text));
  const span = (t) => out.spans.find((s) => s.text === t) || assert.fail(`no span ${t}: ${JSON.stringify(out)}`);
  assert.equal(span('red').cls, 'a-fg1');
  assert.equal(span('bold green').cls, 'a-bold a-fg2');
  assert.equal(span('bold green').weight, '700');
  assert.equal(span('blue').color, 'rgb(0, 135, 255)');
  assert.equal(span('warn').cls, 'stderr a-fg3');
  assert.notEqual(span('red').color, span('warn').color);
  await b.shot('22-job-colours');
  await page.click('#tab-processes');
});

test('signing out is a note, not an error', T, async () => {
  await page.click('#sign-out');
  await page.waitForSelector('#signin', { state: 'visible' });
  assert.equal(await page.textContent('#signin-note'), 'Signed out.');
  assert.equal(await page.textContent('#signin-error'), '');
  const [note, error] = await page.evaluate(() => {
    const color = (el) => getComputedStyle(el).color;
    const probe = document.createElement('p');
    probe.className = 'error';
    document.body.append(probe);
    const c = [color(document.getElementById('signin-note')), color(probe)];
    probe.remove();
    return c;
  });
  assert.notEqual(note, error, 'the note is not in the error colour');
  assert.equal(await page.getAttribute('#signin-note', 'role'), 'status');
  await b.shot('23-signed-out');
});

test('in a narrow window the details of a clicked row scroll into view', T, async () => {
  await page.setViewportSize({ width: 400, height: 700 });
  await b.signIn(b.pair.keys.ops);
  await b.listed();
  await filterCmd('sleep 310');
  await page.waitForSelector(`#ps-body tr[data-pid="${jobs.other.pid}"]`);
  await page.click(`#ps-body tr[data-pid="${jobs.other.pid}"]`);
  await page.waitForFunction((p) => document.getElementById('detail').dataset.pid === String(p), jobs.other.pid);
  const top = await page.$eval('#detail', (d) => d.getBoundingClientRect().top);
  assert.ok(top >= 0 && top < 700 - 48, `the pane starts at ${top}px in a 700px window`);
  await b.shot('24-narrow-detail');
  await page.click('#detail-close');
  await filterCmd('');
  await page.setViewportSize({ width: 1400, height: 860 });
});

test('kernel threads are hidden until asked for, as in htop', T, async (t) => {
  let kthreadd = '';
  try {
    kthreadd = fs.readFileSync('/proc/2/comm', 'utf8').trim();
  } catch {
    kthreadd = '';
  }
  if (kthreadd !== 'kthreadd') {
    t.skip('this host shows no kernel thread (pid 2 is not kthreadd)');
    return;
  }
  assert.equal(await page.isChecked('#f-kernel'), false, 'hidden by default');
  await page.fill('#f-name', 'kthreadd');
  await page.waitForFunction(() => document.getElementById('ps-table').getAttribute('aria-rowcount') === '1');
  assert.equal(await page.locator('#ps-body tr[data-pid="2"]').count(), 0);
  await page.check('#f-kernel');
  await page.waitForSelector('#ps-body tr[data-pid="2"]');
  assert.match(page.url(), /kernel=1/);
  await page.fill('#f-name', '');
  await page.uncheck('#f-kernel');
});

test('the column chooser hides and shows columns, and a reload keeps the choice', T, async () => {
  await page.click('#ps-columns summary');
  await page.uncheck('#ps-columns-list input[value="cmd"]');
  await page.uncheck('#ps-columns-list input[value="username"]');
  assert.equal(await page.isDisabled('#ps-columns-list input[value="pid"]'), true, 'the pid stays');
  const visible = () => page.$$eval('#ps-table thead th', (ths) => ths
    .filter((th) => getComputedStyle(th).display !== 'none').map((th) => th.dataset.key));
  let keys = await visible();
  assert.ok(!keys.includes('cmd') && !keys.includes('username') && keys.includes('pid'), keys.join());
  const cells = await page.$$eval('#ps-body tr[data-pid]', (trs) => trs.map((tr) => [...tr.cells].map((td) => td.className)));
  assert.ok(cells.length > 0 && cells.every((c) => c.length === keys.length
    && !c.some((cls) => /k-(cmd|username)/.test(cls))), JSON.stringify(cells[0]));
  assert.match(page.url(), /cols=[a-z_,]+/);
  assert.ok(!/cols=[^&]*(cmd|username)/.test(page.url()), page.url());
  await b.shot('25-columns');
  await page.reload();
  await b.listed();
  keys = await visible();
  assert.ok(!keys.includes('cmd') && !keys.includes('username'), `after a reload: ${keys}`);
  await page.click('#ps-columns summary');
  await page.click('#ps-columns-auto');
  await page.click('#ps-columns summary');
  keys = await visible();
  assert.ok(keys.includes('cmd') && keys.includes('username'), keys.join());
  assert.ok(!page.url().includes('cols='), page.url());
});

test('a link holds the tab, filters, sort and selected pid, and a reload restores them', T, async () => {
  const pid = jobs.sleeper.pid;
  await filterCmd('sleep 3101');
  await page.click('th[data-key="pid"] button');
  await page.click('th[data-key="pid"] button');
  await openDetail(pid);
  const url = page.url();
  for (const part of ['tab=processes', 'cmd=sleep+3101', 'sort=pid', `pid=${pid}`]) {
    assert.ok(url.includes(part), `${part} in ${url}`);
  }
  await page.reload();
  await page.waitForFunction((p) => document.getElementById('detail').dataset.pid === String(p)
    && !document.getElementById('detail').hidden, pid);
  assert.equal(await page.inputValue('#f-cmd'), 'sleep 3101');
  assert.equal(await page.getAttribute('th[data-key="pid"]', 'aria-sort'), 'ascending');
  await page.waitForSelector(`#ps-body tr[data-pid="${pid}"][aria-selected="true"]`);
  await b.shot('26-link-restored');
  // The tab too, and a link pasted into the same tab is followed.
  await page.click('#tab-jobs');
  assert.match(page.url(), /tab=jobs/);
  await page.reload();
  await page.waitForSelector('#jobs', { state: 'visible' });
  await page.goto(`${b.origin}/#tab=processes&cmd=sleep+3102`);
  await page.waitForSelector('#processes', { state: 'visible' });
  await page.waitForSelector(`#ps-body tr[data-pid="${jobs.other.pid}"]`);
  assert.equal(await page.inputValue('#f-cmd'), 'sleep 3102');
  assert.equal(await page.getAttribute('th[data-key="cpu_percent"]', 'aria-sort'), 'descending', 'the default sort');
  await filterCmd('');
});

test('the detail pane charts CPU % and RSS from the refreshes', T, async () => {
  const burner = await b.pair.job('while :; do :; done', 120);
  try {
    await page.selectOption('#f-refresh', '2');
    await filterCmd('while :');
    await page.waitForSelector(`#ps-body tr[data-pid="${burner.pid}"]`);
    await openDetail(burner.pid);
    await page.waitForFunction(() => Number(document.querySelector('.chart[data-chart="cpu"]')?.dataset.samples) >= 3,
      null, { timeout: 60000 });
    const charts = await page.$$eval('.chart', (cs) => cs.map((c) => ({
      key: c.dataset.chart,
      samples: Number(c.dataset.samples),
      text: c.querySelector('figcaption').textContent,
      points: (c.querySelector('polyline')?.getAttribute('points') || '').split(' ').filter(Boolean).length,
    })));
    const cpu = charts.find((c) => c.key === 'cpu');
    const rss = charts.find((c) => c.key === 'rss');
    assert.ok(cpu && rss, JSON.stringify(charts));
    assert.ok(cpu.points >= 3 && rss.points >= 3, JSON.stringify(charts));
    const now = Number(/now (\d+\.\d)/.exec(cpu.text)?.[1]);
    assert.ok(now > 5, `a busy loop shows its CPU: ${cpu.text}`);
    assert.match(rss.text, /now \d+(\.\d)? (KiB|MiB)/);
    await b.shot('27-detail-charts');
  } finally {
    await b.pair.api(b.pair.keys.ops, 'DELETE', `/api/jobs/${burner.id}`);
    await page.selectOption('#f-refresh', '5');
    await page.click('#detail-close');
    await filterCmd('');
  }
});

test('nothing unexpected: no console error, no foreign request, no failed answer', T, async () => {
  b.assertClean();
});
