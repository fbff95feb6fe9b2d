// Group actions in the console (group.js, the table's mark column), in
// Chromium against a real pair (browser.mjs): rows marked with their
// check boxes, a shift-click range and the header's box, and "Kill tree…"
// on a process. Each time the confirmation lists the plan's targets with
// the policy's verdicts while every target is still alive and before any
// execute request is sent; after confirming, the outcome per target.
// Screenshots: 4x-*.png.
//
// Run through ./run (root, Chromium and npm checked there).

import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, test } from 'node:test';

import { Browser, T } from './browser.mjs';

let b;
let page;

const alive = (pid) => {
  try {
    // A zombie has exited: only a process that can still run counts.
    return !/^\d+ \(.*\) Z /.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
};

/** The pids whose parent is `ppid`. */
const children = (ppid) => fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d)).filter((d) => {
  try {
    return Number(fs.readFileSync(`/proc/${d}/stat`, 'utf8').split(') ')[1].split(' ')[1]) === ppid;
  } catch {
    return false;
  }
}).map(Number);

async function until(what, fn) {
  for (let i = 0; i < 300; i += 1) {
    if (await fn()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail(`timed out waiting for ${what}`);
}

/** The execute requests (POST /api/actions/{id}) the page has sent. */
const executes = () => b.requests.filter((u) => /\/api\/actions\/(?!plan$)[^/]+$/.test(new URL(u).pathname));

/** The dialog's rows as [pid, name, user, verdict or outcome]. */
const dialogRows = () => page.$$eval('#group-targets tr', (trs) => trs.map((tr) => [...tr.cells].map((td) => td.textContent)));

before(async () => {
  b = await Browser.start({ width: 1400, height: 860 });
  ({ page } = b);
  await b.signIn(b.pair.keys.ops);
  await b.listed();
});

after(async () => {
  if (b) await b.stop();
});

test('marked rows: check boxes, a shift-click range, the header box; plan first, outcome after', T, async () => {
  const jobs = [];
  for (const n of [3401, 3402, 3403]) jobs.push(await b.pair.job(`exec sleep ${n}`));
  const pids = jobs.map((j) => j.pid);
  await page.fill('#f-cmd', 'sleep 340');
  await page.click('#ps-reload');
  await page.waitForFunction(() => document.querySelectorAll('#ps-body tr[data-pid]').length === 3);
  const order = (await page.$$eval('#ps-body tr[data-pid]', (trs) => trs.map((tr) => Number(tr.dataset.pid))));
  assert.deepEqual([...order].sort(), [...pids].sort());

  // Every box is labelled; the header's is too.
  const labels = await page.$$eval('#ps-body input.mark', (xs) => xs.map((x) => x.getAttribute('aria-label')));
  assert.equal(labels.length, 3);
  for (const [i, pid] of order.entries()) assert.match(labels[i], new RegExp(`^Mark sleep \\(${pid}\\)$`));
  assert.ok(await page.getAttribute('#ps-mark-all', 'aria-label'));

  // The first box, then shift on the last: the range between them.
  await page.click(`#ps-body tr[data-pid="${order[0]}"] input.mark`);
  await page.waitForSelector('#ps-marked', { state: 'visible' });
  assert.equal(await page.textContent('#ps-marked'), 'Signal 1 marked…');
  await page.waitForFunction(() => document.getElementById('ps-mark-all').indeterminate);
  await page.click(`#ps-body tr[data-pid="${order[2]}"] input.mark`, { modifiers: ['Shift'] });
  await page.waitForFunction(() => document.getElementById('ps-marked').textContent === 'Signal 3 marked…');
  // Drawn at the next frame.
  await page.waitForFunction(() => document.querySelectorAll('#ps-body tr.marked').length === 3);
  assert.equal(await page.$$eval('#ps-body input.mark:checked', (xs) => xs.length), 3);
  assert.equal(await page.isChecked('#ps-mark-all'), true);

  // The header box: unmarks every row shown, then marks them again.
  await page.uncheck('#ps-mark-all');
  await page.waitForSelector('#ps-marked', { state: 'hidden' });
  await page.waitForFunction(() => document.querySelectorAll('#ps-body input.mark:checked').length === 0);
  assert.equal(await page.$$eval('#ps-body tr.marked', (trs) => trs.length), 0);

  // The keyboard: a row, Tab to its box, Space marks it.
  await page.click(`#ps-body tr[data-pid="${order[1]}"]`);
  await page.click('#detail-close');
  await page.focus(`#ps-body tr[data-pid="${order[1]}"]`);
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.getAttribute('aria-label')), labels[1]);
  await page.keyboard.press('Space');
  await page.waitForFunction(() => document.getElementById('ps-marked').textContent === 'Signal 1 marked…');

  await page.check('#ps-mark-all');
  await page.waitForFunction(() => document.getElementById('ps-marked').textContent === 'Signal 3 marked…');

  await page.click('#ps-marked');
  await page.waitForFunction(() => document.querySelectorAll('#group-targets tr').length === 3);
  const planned = await dialogRows();
  assert.deepEqual(planned.map((r) => Number(r[0])).sort(), [...pids].sort());
  for (const r of planned) assert.equal(r[3], 'allow', JSON.stringify(r));
  assert.match(await page.textContent('#group-summary'), /^3 processes; the policy allows 3\. Nothing is sent until you confirm/);
  assert.equal(await page.textContent('#group-confirm'), 'Send SIGTERM to 3');
  // Shown, and nothing sent: every target still runs.
  assert.deepEqual(executes(), []);
  for (const pid of pids) assert.ok(alive(pid), `${pid} is alive while the plan is shown`);
  await b.shot('41-marked-plan');

  await page.click('#group-confirm');
  await page.waitForFunction(() => /^Done/.test(document.getElementById('group-summary').textContent));
  assert.equal(await page.textContent('#group-summary'), 'Done: every target was acted on.');
  const outcome = await dialogRows();
  assert.deepEqual(outcome.map((r) => Number(r[0])).sort(), [...pids].sort());
  for (const r of outcome) assert.equal(r[3], 'signalled', JSON.stringify(r));
  assert.equal(executes().length, 1);
  await b.shot('42-marked-outcome');
  for (const pid of pids) await until(`${pid} to end`, () => !alive(pid));
  await page.click('#group-cancel');
  await page.waitForSelector('#ps-marked', { state: 'hidden' });
});

test('Kill tree… lists the tree with verdicts before sending, then each outcome', T, async () => {
  const before = executes().length;
  const job = await b.pair.job('sleep 3411 & sleep 3412 & wait');
  await until('the two children', () => children(job.pid).length === 2);
  const tree = [job.pid, ...children(job.pid)];
  await page.fill('#f-cmd', '');
  await page.click('#ps-reload');
  await page.goto(`${b.origin}/#pid=${job.pid}`);
  await page.waitForFunction((p) => document.getElementById('detail').dataset.pid === String(p)
    && !document.getElementById('detail').hidden, job.pid);
  await page.click('#act-tree');
  await page.waitForSelector('#group-dialog[open]');
  await page.waitForFunction(() => document.querySelectorAll('#group-targets tr').length === 3);
  assert.match(await page.textContent('#group-title'), new RegExp(`^Signal the tree of .* \\(${job.pid}\\)$`));
  const planned = await dialogRows();
  assert.deepEqual(planned.map((r) => Number(r[0])).sort(), [...tree].sort());
  for (const r of planned) assert.equal(r[3], 'allow', JSON.stringify(r));
  assert.equal(executes().length, before, 'nothing is executed by showing the plan');
  for (const pid of tree) assert.ok(alive(pid), `${pid} is alive while the plan is shown`);
  await b.shot('43-tree-plan');

  // The detail pane still shows the root: its refresh after the kill is a 404.
  b.provoke('GET', new RegExp(`^/api/ps/${job.pid}$`), 404);
  await page.selectOption('#group-signal', 'KILL');
  // A new plan for the new signal, still nothing sent.
  await page.waitForFunction(() => document.getElementById('group-confirm').textContent === 'Send SIGKILL to 3'
    && !document.getElementById('group-confirm').disabled);
  assert.equal(executes().length, before);
  await page.click('#group-confirm');
  await page.waitForFunction(() => /^Done/.test(document.getElementById('group-summary').textContent));
  const outcome = await dialogRows();
  assert.deepEqual(outcome.map((r) => Number(r[0])).sort(), [...tree].sort());
  for (const r of outcome) assert.equal(r[3], 'signalled', JSON.stringify(r));
  await b.shot('44-tree-outcome');
  for (const pid of tree) await until(`${pid} to end`, () => !alive(pid));
  await page.click('#group-cancel');
});

test('nothing unexpected: no page error, no stray request or dialog', T, () => {
  b.assertClean();
});
