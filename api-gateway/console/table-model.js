// The process table's model: listed processes in, the rows to show out.
// Kept apart from the page (no DOM, no timers) so that what the table
// shows — which rows a filter keeps, their order, the tree by parent and
// its folds, where a key moves the selection — can be tested in node
// (api-gateway/tests/console/table-model.test.mjs) without a browser.

import * as fmt from './format.js';

/** What the table needs of each process (the listing asks for no more). */
export const LIST_FIELDS = [
  'pid', 'ppid', 'name', 'username', 'status', 'nice', 'cpu_percent', 'memory_info',
  'memory_percent', 'num_threads', 'create_time', 'start_time', 'cmdline',
].join(',');

/**
 * The row keys compared as numbers (null last); they sort largest first on
 * the first click. Every other key compares as text.
 */
export const NUMERIC = new Set([
  'pid', 'ppid', 'nice', 'cpu_percent', 'rss', 'memory_percent', 'num_threads', 'create_time',
]);

/**
 * Whether a listed process is a kernel thread: kthreadd (pid 2, no
 * parent) or one of its children, all with an empty command line — what
 * htop goes by when it cannot read the kernel's flag. A user process
 * kthreadd started (a usermode helper) has a command line.
 */
export function isKernelThread(p) {
  const empty = Array.isArray(p.cmdline) && p.cmdline.length === 0;
  return empty && ((p.pid === 2 && p.ppid === 0) || p.ppid === 2);
}

/** A listed process as the table keeps it. */
export function toRow(p) {
  const cmd = fmt.commandLine(p);
  return {
    pid: p.pid,
    ppid: p.ppid ?? null,
    name: p.name ?? fmt.withheld(p, 'name'),
    username: p.username ?? '',
    status: p.status ?? '',
    nice: p.nice ?? null,
    cpu_percent: p.cpu_percent ?? null,
    rss: p.memory_info ? p.memory_info.rss : null,
    memory_percent: p.memory_percent ?? null,
    num_threads: p.num_threads ?? null,
    create_time: p.create_time ?? null,
    start_time: p.start_time ?? null,
    cmd,
    kernel: isKernelThread(p),
    lname: (p.name ?? fmt.withheld(p, 'name')).toLowerCase(),
    lcmd: cmd.toLowerCase(),
  };
}

/** Ascending order by `key`; ties (and equal nulls) by pid, so it is total. */
export function compare(key) {
  if (NUMERIC.has(key)) {
    return (a, b) => {
      const x = a[key];
      const y = b[key];
      if (x === y) return a.pid - b.pid;
      if (x === null) return 1;
      if (y === null) return -1;
      return x - y || a.pid - b.pid;
    };
  }
  const k = key === 'name' ? 'lname' : key === 'cmd' ? 'lcmd' : key;
  return (a, b) => (a[k] < b[k] ? -1 : a[k] > b[k] ? 1 : a.pid - b.pid);
}

/**
 * The filter as a predicate on rows: `name` and `cmd` are substrings,
 * any case, spaces around them ignored; `user` and `state` exact; empty
 * means any; `kernel` false leaves kernel threads out.
 */
export function matcher({ name = '', user = '', state = '', cmd = '', kernel = true } = {}) {
  const n = name.trim().toLowerCase();
  const c = cmd.trim().toLowerCase();
  return (r) => (kernel || !r.kernel)
    && (!n || r.lname.includes(n))
    && (!user || r.username === user)
    && (!state || r.status === state)
    && (!c || r.lcmd.includes(c));
}

/**
 * A select's choices: the distinct non-empty values, sorted, and the
 * current choice even if no row has it any more (so a refresh never
 * silently widens a filter).
 */
export function choices(values, current) {
  const distinct = [...new Set(values.filter(Boolean))].sort();
  if (current && !distinct.includes(current)) distinct.push(current);
  return distinct;
}

/**
 * Where a key moves the selection in a view of `n` rows: the new index,
 * or null for a key that does not move it. `i` is the selected row's
 * index (-1 for none); `page` is how many rows a page holds.
 */
export function step(key, i, n, page) {
  if (n === 0) return null;
  let j;
  switch (key) {
    case 'ArrowDown': j = Math.min(n - 1, i + 1); break;
    case 'ArrowUp': j = Math.max(0, i - 1); break;
    case 'PageDown': j = Math.min(n - 1, i + page); break;
    case 'PageUp': j = Math.max(0, i - page); break;
    case 'Home': j = 0; break;
    case 'End': j = n - 1; break;
    default: return null;
  }
  return Math.max(0, j);
}

/** The status line under the table. */
export function summary(total, shown, windowS, ms) {
  const filtered = shown === total ? '' : ` (${fmt.count(shown)} shown)`;
  const cpu = windowS ? ` · CPU over ${fmt.seconds(windowS)} s` : '';
  return `${fmt.count(total)} processes${filtered}${cpu} · drawn in ${Math.round(ms)} ms`;
}

/**
 * The table's state: the listing's rows, the sort, the filter, list or
 * tree, and which tree nodes are folded. `view()` gives the rows to draw.
 */
export class TableModel {
  constructor() {
    this.rows = [];
    this.byPid = new Map();
    this.sort = { key: 'cpu_percent', desc: true };
    this.filter = { name: '', user: '', state: '', cmd: '' };
    this.tree = false;
    this.collapsed = new Set();
  }

  /** A new listing replaces the rows; sort, filter and folds stay. */
  load(processes) {
    this.rows = processes.map(toRow);
    this.byPid = new Map(this.rows.map((r) => [r.pid, r]));
  }

  /** The choices of the user and state filters for the current rows. */
  users() {
    return choices(this.rows.map((r) => r.username), this.filter.user);
  }

  states() {
    return choices(this.rows.map((r) => r.status), this.filter.state);
  }

  /**
   * A click on a column's header: the same column flips its direction, a
   * new one starts largest first when numeric, A to Z otherwise.
   */
  sortBy(key) {
    if (this.sort.key === key) this.sort.desc = !this.sort.desc;
    else this.sort = { key, desc: NUMERIC.has(key) };
  }

  /**
   * Folds (`open` false) or unfolds (`open` true) `pid`'s children, or
   * flips it when `open` is not given; false when nothing changed.
   */
  toggle(pid, open) {
    const isOpen = !this.collapsed.has(pid);
    if (open === isOpen) return false;
    if (isOpen) this.collapsed.add(pid);
    else this.collapsed.delete(pid);
    return true;
  }

  /**
   * The rows to show, in order: `{ r, depth }`, and in tree mode also
   * `kids` (how many children it has in the view) and `context` (shown
   * only as the ancestor of a row the filter kept).
   */
  view() {
    const cmp = compare(this.sort.key);
    const order = this.sort.desc ? (a, b) => cmp(b, a) : cmp;
    const hits = this.rows.filter(matcher(this.filter));
    if (!this.tree) return hits.sort(order).map((r) => ({ r, depth: 0 }));
    // Tree: the hits and their ancestors, children under their parent.
    const keep = new Set();
    for (const r of hits) {
      let p = r;
      while (p && !keep.has(p.pid)) {
        keep.add(p.pid);
        p = this.byPid.get(p.ppid);
      }
    }
    const hitSet = new Set(hits.map((r) => r.pid));
    const children = new Map();
    const roots = [];
    for (const pid of keep) {
      const r = this.byPid.get(pid);
      if (keep.has(r.ppid) && r.ppid !== r.pid) {
        if (!children.has(r.ppid)) children.set(r.ppid, []);
        children.get(r.ppid).push(r);
      } else {
        roots.push(r);
      }
    }
    const out = [];
    const stack = roots.sort(order).reverse().map((r) => [r, 0]);
    while (stack.length) {
      const [r, depth] = stack.pop();
      const kids = children.get(r.pid) || [];
      out.push({ r, depth, kids: kids.length, context: !hitSet.has(r.pid) });
      if (this.collapsed.has(r.pid)) continue;
      kids.sort(order);
      for (let i = kids.length - 1; i >= 0; i -= 1) stack.push([kids[i], depth + 1]);
    }
    return out;
  }
}
