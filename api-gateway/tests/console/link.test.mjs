// Deep links (console/link.js) without a browser: a view written to the
// fragment reads back the same, defaults are left out, and whatever a
// hand-edited or hostile link holds is ignored rather than trusted.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { DEFAULTS, format, parse } from '../../console/link.js';

const COLS = ['pid', 'name', 'username', 'cpu_percent', 'rss', 'cmd'];

test('a view round-trips through the fragment', () => {
  const view = {
    ...DEFAULTS,
    tab: 'processes',
    name: 'ng inx',
    user: 'www-data',
    state: 'sleeping',
    cmd: 'a&b=c#d',
    kernel: true,
    tree: true,
    sort: { key: 'rss', desc: false },
    pid: 812,
    cols: ['pid', 'name', 'cmd'],
  };
  const hash = format(view);
  assert.match(hash, /^#tab=processes&/);
  assert.match(hash, /&cols=pid,name,cmd$/);
  assert.deepEqual(parse(hash, COLS), view);
  assert.equal(parse(format({ ...view, sort: { key: 'rss', desc: true } }), COLS).sort.desc, true);
});

test('the defaults make an empty fragment, and an empty fragment the defaults', () => {
  assert.equal(format(DEFAULTS), '');
  assert.deepEqual(parse('', COLS), DEFAULTS);
  assert.deepEqual(parse('#', COLS), DEFAULTS);
  assert.equal(format({ ...DEFAULTS, tab: 'jobs' }), '#tab=jobs');
  assert.equal(format({ ...DEFAULTS, sort: { key: 'pid', desc: true } }), '#sort=-pid');
});

test('what a link may not say is ignored: unknown tabs, sorts, columns, bad pids', () => {
  const v = parse('#tab=admin&sort=-environ&cols=pid,environ,pid,cmd&pid=0&kernel=yes&x=1', COLS);
  assert.equal(v.tab, null);
  assert.deepEqual(v.sort, DEFAULTS.sort);
  assert.deepEqual(v.cols, ['pid', 'cmd']);
  assert.equal(v.pid, null);
  assert.equal(v.kernel, false);
  for (const pid of ['-5', '1e3', '12abc', '99999999999', ' 7']) {
    assert.equal(parse(`#pid=${encodeURIComponent(pid)}`, COLS).pid, null, pid);
  }
  assert.equal(parse('#cols=environ', COLS).cols, null);
  assert.equal(parse(`#cmd=${'x'.repeat(500)}`, COLS).cmd.length, 200);
});
