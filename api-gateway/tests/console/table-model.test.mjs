// The process table's model (console/table-model.js) without a browser:
// which rows a filter keeps, their order by every kind of column, the
// tree by parent with its folds, the filter choices and where the keys
// move the selection. The browser test checks the same table drawn.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  choices, compare, isKernelThread, matcher, NUMERIC, step, summary, TableModel, toRow,
} from '../../console/table-model.js';

/** A listed process with what the table asks for; `over` replaces fields. */
function proc(pid, ppid, name, over = {}) {
  return {
    pid,
    ppid,
    name,
    username: 'root',
    status: 'sleeping',
    nice: 0,
    cpu_percent: 0,
    memory_info: { rss: 4096 },
    memory_percent: 0.1,
    num_threads: 1,
    create_time: 1000 + pid,
    start_time: 100 + pid,
    cmdline: [`/usr/bin/${name}`],
    ...over,
  };
}

// A small host: init, two daemons under it, a shell with a child under
// sshd, and a kernel thread under pid 2, a root of its own.
const HOST = [
  proc(1, 0, 'systemd', { cpu_percent: 0.5 }),
  proc(2, 0, 'kthreadd', { cmdline: [], memory_info: null }),
  proc(30, 2, 'kworker/0:1', { cmdline: [], cpu_percent: null }),
  proc(400, 1, 'sshd', { cpu_percent: 1.5 }),
  proc(500, 400, 'bash', { username: 'ana', cmdline: ['-bash'], cpu_percent: 0.2 }),
  proc(600, 500, 'sleep', {
    username: 'ana', status: 'stopped', nice: 10, cmdline: ['sleep', '3001'], cpu_percent: 7,
  }),
  proc(700, 1, 'Cron', { cpu_percent: 1.5 }),
];

function model(processes = HOST) {
  const m = new TableModel();
  m.load(processes);
  return m;
}

const pids = (view) => view.map((v) => v.r.pid);

test('a listed process becomes a row: rss, command line, lowercase keys, nulls', () => {
  const r = toRow(proc(600, 500, 'Sleep', { cmdline: ['sleep', 'A'], memory_info: { rss: 9 } }));
  assert.equal(r.rss, 9);
  assert.equal(r.cmd, 'sleep A');
  assert.equal(r.lname, 'sleep');
  assert.equal(r.lcmd, 'sleep a');
  const k = toRow({ pid: 30, name: 'kworker/0:1', cmdline: [] });
  assert.equal(k.cmd, '[kworker/0:1]');
  for (const key of ['ppid', 'nice', 'cpu_percent', 'rss', 'memory_percent', 'num_threads', 'create_time', 'start_time']) {
    assert.equal(k[key], null, key);
  }
  assert.equal(toRow({ pid: 3 }).username, '');
});

test('the default view is every process, most CPU first', () => {
  // Descending is ascending reversed whole: the null CPU (last going up)
  // comes first, and of sshd and Cron, tied at 1.5, the higher pid.
  assert.deepEqual(pids(model().view()), [30, 600, 700, 400, 1, 500, 2]);
});

test('numbers sort as numbers, nulls last going up; text by lowercase; ties by pid', () => {
  const m = model();
  m.sortBy('cpu_percent');
  assert.deepEqual(m.sort, { key: 'cpu_percent', desc: false });
  assert.deepEqual(pids(m.view()), [2, 500, 1, 400, 700, 600, 30]);
  m.sortBy('name');
  assert.deepEqual(m.sort, { key: 'name', desc: false }, 'text starts A to Z');
  assert.deepEqual(pids(m.view()), [500, 700, 2, 30, 600, 400, 1]);
  m.sortBy('name');
  assert.deepEqual(pids(m.view()), [1, 400, 600, 30, 2, 700, 500]);
  m.sortBy('rss');
  assert.deepEqual(m.sort, { key: 'rss', desc: true }, 'numbers start largest first');
  assert.equal(m.view()[0].r.pid, 2, 'going down, the null rss is first');
  m.sortBy('pid');
  assert.deepEqual(pids(m.view()), [700, 600, 500, 400, 30, 2, 1]);
  m.sortBy('username');
  assert.deepEqual(pids(m.view()), [500, 600, 1, 2, 30, 400, 700]);
  const byCmd = compare('cmd');
  assert.ok(byCmd(toRow(proc(9, 1, 'x', { cmdline: ['B'] })), toRow(proc(8, 1, 'x', { cmdline: ['a'] }))) > 0);
  for (const key of ['pid', 'ppid', 'nice', 'cpu_percent', 'rss', 'memory_percent', 'num_threads', 'create_time']) {
    assert.ok(NUMERIC.has(key), key);
  }
  for (const key of ['name', 'username', 'status', 'cmd']) assert.ok(!NUMERIC.has(key), key);
});

test('filters: name and command line any case and trimmed, user and state exact, all at once', () => {
  const m = model();
  const only = (filter) => {
    m.filter = { name: '', user: '', state: '', cmd: '', ...filter };
    return pids(m.view()).sort((a, b) => a - b);
  };
  assert.deepEqual(only({ name: '  CRO ' }), [700]);
  assert.deepEqual(only({ user: 'ana' }), [500, 600]);
  assert.deepEqual(only({ user: 'an' }), [], 'a user is matched whole');
  assert.deepEqual(only({ state: 'stopped' }), [600]);
  assert.deepEqual(only({ cmd: '3001' }), [600]);
  assert.deepEqual(only({ cmd: '[KWORKER' }), [30], 'a kernel thread by its [name]');
  assert.deepEqual(only({ user: 'ana', name: 'bash' }), [500]);
  assert.deepEqual(only({ user: 'ana', state: 'running' }), []);
  assert.deepEqual(only({}), [1, 2, 30, 400, 500, 600, 700]);
  assert.equal(matcher()(toRow(proc(5, 1, 'x'))), true, 'no filter keeps everything');
});

test('the tree: children under their parent, each level in the sort order, with depths', () => {
  const m = model();
  m.tree = true;
  m.sortBy('pid');
  m.sortBy('pid');
  assert.deepEqual(m.sort, { key: 'pid', desc: false });
  const v = m.view();
  assert.deepEqual(v.map((x) => [x.r.pid, x.depth, x.kids]), [
    [1, 0, 2], [400, 1, 1], [500, 2, 1], [600, 3, 0], [700, 1, 0],
    [2, 0, 1], [30, 1, 0],
  ]);
  assert.ok(v.every((x) => !x.context));
  m.sortBy('name');
  assert.deepEqual(pids(m.view()), [2, 30, 1, 700, 400, 500, 600], 'Cron before sshd under systemd');
});

test('a filtered tree keeps the hits and their ancestors, the ancestors as context', () => {
  const m = model();
  m.tree = true;
  m.filter = { name: '', user: '', state: '', cmd: 'sleep' };
  const v = m.view();
  assert.deepEqual(v.map((x) => [x.r.pid, x.depth, x.context]), [
    [1, 0, true], [400, 1, true], [500, 2, true], [600, 3, false],
  ]);
  assert.equal(v[0].kids, 1, 'children counted in the view, not on the host');
});

test('folding hides the descendants and keeps the folded row; unfolding shows them again', () => {
  const m = model();
  m.tree = true;
  assert.equal(m.toggle(400, false), true);
  assert.equal(m.toggle(400, false), false, 'folding a folded row changes nothing');
  assert.deepEqual(pids(m.view()).sort((a, b) => a - b), [1, 2, 30, 400, 700]);
  assert.equal(m.view().find((x) => x.r.pid === 400).kids, 1, 'a folded row still says it has children');
  assert.equal(m.toggle(400), true, 'without a direction it flips');
  assert.equal(m.view().length, HOST.length);
  m.toggle(1, false);
  m.tree = false;
  assert.equal(m.view().length, HOST.length, 'folds do not hide rows in the list');
  assert.ok(m.view().every((x) => x.depth === 0 && x.kids === undefined));
});

test('a process whose parent is itself or unlisted is a root; a new listing keeps the folds', () => {
  const m = model([proc(5, 5, 'self'), proc(6, 99, 'orphan'), proc(7, 6, 'child')]);
  m.tree = true;
  m.sortBy('pid');
  m.sortBy('pid');
  assert.deepEqual(m.view().map((x) => [x.r.pid, x.depth]), [[5, 0], [6, 0], [7, 1]]);
  m.toggle(6, false);
  m.load([proc(5, 5, 'self'), proc(6, 99, 'orphan'), proc(7, 6, 'child'), proc(8, 6, 'new')]);
  assert.deepEqual(pids(m.view()), [5, 6]);
  assert.equal(m.byPid.get(8).name, 'new');
});

test('filter choices: distinct, sorted, no empty one, and the current one kept', () => {
  assert.deepEqual(choices(['b', 'a', '', 'b'], ''), ['a', 'b']);
  assert.deepEqual(choices(['b', 'a'], 'gone'), ['a', 'b', 'gone']);
  assert.deepEqual(choices(['b', 'a'], 'a'), ['a', 'b']);
  const m = model();
  m.filter.user = 'bob';
  assert.deepEqual(m.users(), ['ana', 'root', 'bob']);
  assert.deepEqual(m.states(), ['sleeping', 'stopped']);
});

test('keys move the selection within the view, from no selection too', () => {
  const n = 10;
  const page = 4;
  assert.equal(step('ArrowDown', -1, n, page), 0);
  assert.equal(step('ArrowUp', -1, n, page), 0);
  assert.equal(step('ArrowDown', 3, n, page), 4);
  assert.equal(step('ArrowDown', 9, n, page), 9);
  assert.equal(step('ArrowUp', 0, n, page), 0);
  assert.equal(step('PageDown', -1, n, page), 3);
  assert.equal(step('PageDown', 8, n, page), 9);
  assert.equal(step('PageUp', 2, n, page), 0);
  assert.equal(step('PageUp', 9, n, page), 5);
  assert.equal(step('Home', 5, n, page), 0);
  assert.equal(step('End', 5, n, page), 9);
  assert.equal(step('Enter', 5, n, page), null);
  assert.equal(step('a', 5, n, page), null);
  assert.equal(step('ArrowDown', -1, 0, page), null, 'an empty view has no row to move to');
});

test('the status line counts what is shown and says the CPU window', () => {
  assert.equal(summary(5000, 5000, 1, 12.4), '5,000 processes · CPU over 1 s · drawn in 12 ms');
  assert.equal(summary(5000, 3, null, 0.6), '5,000 processes (3 shown) · drawn in 1 ms');
  // The sampler's window is a float: rounded for the eye.
  assert.equal(summary(7, 7, 9.605271028, 3), '7 processes · CPU over 9.6 s · drawn in 3 ms');
  assert.equal(summary(7, 7, 12.51, 3), '7 processes · CPU over 13 s · drawn in 3 ms');
});

test('kernel threads: kthreadd and its children with no command line, hidden on asking', () => {
  assert.equal(isKernelThread(proc(2, 0, 'kthreadd', { cmdline: [] })), true);
  assert.equal(isKernelThread(proc(30, 2, 'kworker/0:1', { cmdline: [] })), true);
  // A usermode helper kthreadd started, a zombie, a container's pid 2, a withheld one: not.
  assert.equal(isKernelThread(proc(31, 2, 'modprobe', { cmdline: ['/sbin/modprobe', 'x'] })), false);
  assert.equal(isKernelThread(proc(32, 400, 'defunct', { cmdline: [] })), false);
  assert.equal(isKernelThread(proc(2, 0, 'bash', { cmdline: ['bash'] })), false);
  assert.equal(isKernelThread(proc(33, 2, null, { cmdline: null })), false);
  const m = model();
  assert.deepEqual(pids(m.view()).sort((a, b) => a - b), [1, 2, 30, 400, 500, 600, 700]);
  m.filter = { ...m.filter, kernel: false };
  assert.deepEqual(pids(m.view()).sort((a, b) => a - b), [1, 400, 500, 600, 700]);
  m.tree = true;
  assert.deepEqual(pids(m.view()), [1, 700, 400, 500, 600]);
  assert.equal(matcher({ kernel: false })(toRow(proc(30, 2, 'kworker/0:1', { cmdline: [] }))), false);
  assert.equal(matcher({})(toRow(proc(30, 2, 'kworker/0:1', { cmdline: [] }))), true);
});
