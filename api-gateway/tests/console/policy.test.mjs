// The console with the gateway's host figures, the key's policy and the
// helper's dry runs (GET /api/host, whoami's `policy`, `dry_run` on
// DELETE/PATCH /api/ps), in Chromium against a real pair (browser.mjs)
// whose policy lets the key act only on its jobs: the host header, only
// the policy's signals offered, and every refusal — pid 1, a kernel
// thread, the helper, the gateway, their ancestors, another owner's
// process — shown on the buttons and before a confirmation, with nothing
// signalled or reniced by asking. Screenshots: 3x-*.png.
//
// Run through ./run (root, Chromium and npm checked there).

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { after, before, test } from 'node:test';

import { Browser, T } from './browser.mjs';
import { SIGNALS } from './pair.mjs';

let b;
let page;
let job;
let stranger;

const alive = (pid) => fs.existsSync(`/proc/${pid}`);
const niceOf = (pid) => Number(fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')[16]);

before(async () => {
  b = await Browser.start({ width: 1400, height: 900 });
  ({ page } = b);
  job = await b.pair.job('exec sleep 3201');
  // A process of another owner (nobody), which the policy does not name.
  stranger = spawn('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', 'sleep', '3202'], { stdio: 'ignore' });
  await b.signIn(b.pair.keys.ops);
  await b.listed();
});

after(async () => {
  if (stranger) stranger.kill('SIGKILL');
  if (b) await b.stop();
});

/** Shows `pid` in the detail pane (kernel threads shown, no filter). */
async function openDetail(pid) {
  await page.fill('#f-cmd', '');
  await page.fill('#f-name', '');
  await page.check('#f-kernel');
  await page.goto(`${b.origin}/#kernel=1&pid=${pid}`);
  await page.waitForFunction((p) => document.getElementById('detail').dataset.pid === String(p)
    && !document.getElementById('detail').hidden, pid);
}

/** The act buttons' state once the helper's verdicts on `pid` are in. */
async function buttons(pid) {
  await page.waitForSelector(`#act-why[data-judged="${pid}"]`, { state: 'attached' });
  return page.evaluate(() => {
    const s = document.getElementById('act-signal');
    const r = document.getElementById('act-renice');
    return {
      signal: s.getAttribute('aria-disabled'),
      renice: r.getAttribute('aria-disabled'),
      title: s.title,
      described: s.getAttribute('aria-describedby'),
      why: document.getElementById('act-why').textContent,
    };
  });
}

test('the host header: a bar per CPU, memory, swap, load, uptime and tasks', T, async () => {
  const host = (await b.pair.api(b.pair.keys.ops, 'GET', '/api/host')).body;
  await page.waitForSelector('#host', { state: 'visible' });
  const bars = await page.$$eval('#host-cpus .bar', (els) => els.map((e) => Number(e.getAttribute('aria-valuenow'))));
  assert.equal(bars.length, host.cpu_count.logical);
  assert.ok(bars.every((v) => v >= 0 && v <= 100), bars.join());
  for (const key of ['mem', 'swap']) assert.equal(await page.locator(`#host-mem .bar[data-bar="${key}"]`).count(), 1);
  assert.match(await page.textContent('#host-facts [data-fact="load"] dd'), /^\d+\.\d\d \d+\.\d\d \d+\.\d\d$/);
  assert.match(await page.textContent('#host-facts [data-fact="uptime"] dd'), /^(\d+ days?, )?\d\d:\d\d:\d\d$/);
  assert.match(await page.textContent('#host-facts [data-fact="tasks"] dd'), /^[\d,]+, [\d,]+ thr; \d+ running$/);
  assert.ok((await page.textContent('#host-name')).includes(host.hostname));
  // Refreshed with the table.
  const asked = () => b.requests.filter((u) => new URL(u).pathname === '/api/host').length;
  const before = asked();
  await page.click('#ps-reload');
  for (let i = 0; i < 100 && asked() <= before; i += 1) await new Promise((r) => setTimeout(r, 100));
  assert.ok(asked() > before, 'a reload asks the host figures again');
  await b.shot('31-host-header');
});

test("only the policy's signals are offered, and the key's nice range", T, async () => {
  const who = (await b.pair.api(b.pair.keys.ops, 'GET', '/api/whoami')).body;
  assert.deepEqual([...who.policy.signals].sort(), SIGNALS.map((s) => `SIG${s}`).sort());
  await openDetail(job.pid);
  await page.click('#act-signal');
  await page.waitForSelector('#act-dialog[open]');
  const offered = await page.$$eval('#act-signal-name option', (os) => os.map((o) => o.value));
  assert.deepEqual([...offered].sort(), [...SIGNALS].sort());
  await page.click('#act-cancel');
  await page.click('#act-renice');
  assert.equal(await page.getAttribute('#act-nice', 'min'), String(who.policy.nice_range[0]));
  assert.equal(await page.getAttribute('#act-nice', 'max'), String(who.policy.nice_range[1]));
  await page.click('#act-cancel');
});

test("a job of the key: allowed, and the dialog says so before the confirmation", T, async () => {
  await openDetail(job.pid);
  const s = await buttons(job.pid);
  assert.equal(s.signal, null, JSON.stringify(s));
  assert.equal(s.renice, null, JSON.stringify(s));
  await page.click('#act-signal');
  await page.waitForFunction(() => document.getElementById('act-verdict').textContent.startsWith('The helper would allow'));
  assert.equal(await page.isDisabled('#act-confirm'), false);
  await b.shot('32-verdict-allowed');
  await page.click('#act-cancel');
  assert.ok(alive(job.pid), 'asking signalled nothing');
});

test('every refusal shows on the buttons, on hover and focus, and before a confirmation', T, async () => {
  const nice = niceOf(stranger.pid);
  const kthreadd = (() => {
    try {
      return fs.readFileSync('/proc/2/comm', 'utf8').trim() === 'kthreadd';
    } catch {
      return false;
    }
  })();
  const cases = [
    [1, /builtin:pid<=1/],
    // In a container pid 2 is no kernel thread.
    ...(kthreadd ? [[2, /builtin:kernel-thread/]] : []),
    [b.pair.children[0].pid, /builtin:self/],
    [b.pair.children[1].pid, /builtin:gateway/],
    [process.pid, /builtin:ancestor/],
    [stranger.pid, /signal\.owners/],
  ];
  for (const [pid, rule] of cases) {
    if (!alive(pid)) continue;
    await openDetail(pid);
    const s = await buttons(pid);
    assert.equal(s.signal, 'true', `${pid}: ${JSON.stringify(s)}`);
    assert.equal(s.renice, 'true', `${pid}: ${JSON.stringify(s)}`);
    assert.match(s.title, rule, `${pid}: the title says why`);
    assert.equal(s.described, 'act-why', `${pid}: focus reads the reason`);
    assert.match(s.why, rule);
    // Still focusable; a press opens nothing.
    await page.focus('#act-signal');
    assert.equal(await page.evaluate(() => document.activeElement.id), 'act-signal');
    await page.keyboard.press('Enter');
    assert.equal(await page.evaluate(() => document.getElementById('act-dialog').open), false);
    if (pid === 1) await b.shot('33-refused-pid1');
    if (pid === stranger.pid) await b.shot('34-refused-other-owner');
  }
  // The Delete key opens the dialog on a refused row: the reason is there
  // before any confirmation, and Confirm is disabled.
  await page.goto(`${b.origin}/#cmd=sleep+3202`);
  await page.waitForSelector(`#ps-body tr[data-pid="${stranger.pid}"]`);
  await page.click(`#ps-body tr[data-pid="${stranger.pid}"]`);
  await page.click('#detail-close');
  await page.keyboard.press('Delete');
  await page.waitForSelector('#act-dialog[open]');
  await page.waitForFunction(() => document.getElementById('act-verdict').textContent.startsWith('The helper would refuse'));
  assert.match(await page.textContent('#act-verdict'), /signal\.owners/);
  assert.equal(await page.isDisabled('#act-confirm'), true);
  await b.shot('35-verdict-before-confirmation');
  await page.click('#act-cancel');
  assert.ok(alive(stranger.pid), 'nothing was signalled');
  assert.equal(niceOf(stranger.pid), nice, 'nothing was reniced');
  assert.ok(alive(job.pid));
});

test('nothing unexpected: no console error, no foreign request, no failed answer', T, async () => {
  b.assertClean();
});
