// Deep links: the view — tab, filters, sort, columns, selected pid — in
// the URL's fragment (`#tab=processes&cmd=nginx&sort=-rss&pid=812`), so
// that a reload or a shared link shows the same thing. The fragment never
// leaves the browser and never holds the key. No DOM: tested in node
// (tests/console/link.test.mjs).

/** The view when the fragment says nothing. */
export const DEFAULTS = Object.freeze({
  tab: null,
  name: '',
  user: '',
  state: '',
  cmd: '',
  kernel: false,
  tree: false,
  sort: Object.freeze({ key: 'cpu_percent', desc: true }),
  pid: null,
  cols: null,
});

const TABS = new Set(['processes', 'jobs']);
/** Longest filter text kept from a link. */
const MAX_TEXT = 200;

/**
 * The view a fragment names, over the defaults. `columns` are the keys a
 * sort or a column list may name; anything else in the fragment (an
 * unknown key, a malformed value) is ignored, never an error.
 */
export function parse(hash, columns) {
  const q = new URLSearchParams(String(hash || '').replace(/^#/, ''));
  const v = { ...DEFAULTS };
  const known = new Set(columns);
  if (TABS.has(q.get('tab'))) v.tab = q.get('tab');
  for (const k of ['name', 'user', 'state', 'cmd']) {
    const t = q.get(k);
    if (t !== null) v[k] = t.slice(0, MAX_TEXT);
  }
  v.kernel = q.get('kernel') === '1';
  v.tree = q.get('tree') === '1';
  const sort = q.get('sort');
  if (sort) {
    const desc = sort.startsWith('-');
    const key = desc ? sort.slice(1) : sort;
    if (known.has(key)) v.sort = { key, desc };
  }
  const pid = q.get('pid');
  if (pid && /^[1-9][0-9]{0,9}$/.test(pid)) v.pid = Number(pid);
  const cols = q.get('cols');
  if (cols !== null) {
    const list = [...new Set(cols.split(',').filter((c) => known.has(c)))];
    if (list.length) v.cols = list;
  }
  return v;
}

/** The fragment for a view: only what differs from the defaults; '' for none. */
export function format(v) {
  const q = new URLSearchParams();
  if (v.tab) q.set('tab', v.tab);
  for (const k of ['name', 'user', 'state', 'cmd']) if (v[k]) q.set(k, v[k]);
  if (v.kernel) q.set('kernel', '1');
  if (v.tree) q.set('tree', '1');
  if (v.sort && (v.sort.key !== DEFAULTS.sort.key || v.sort.desc !== DEFAULTS.sort.desc)) {
    q.set('sort', `${v.sort.desc ? '-' : ''}${v.sort.key}`);
  }
  if (Number.isInteger(v.pid)) q.set('pid', String(v.pid));
  if (v.cols && v.cols.length) q.set('cols', v.cols.join(','));
  // Commas need no escape in a fragment; kept readable.
  const s = q.toString().replace(/%2C/g, ',');
  return s ? `#${s}` : '';
}
