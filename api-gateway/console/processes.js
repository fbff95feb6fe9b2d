// The process table: one listing per refresh, filtered, sorted and (in
// tree mode) ordered by parent in the page, and rendered as a window of
// rows around the scroll position, so 5,000 processes cost as much to draw
// as fifty. The detail pane shows every field of one process.

import { $, el, fill, show } from './dom.js';
import * as fmt from './format.js';

/** What the table needs of each process (the listing asks for no more). */
const LIST_FIELDS = [
  'pid', 'ppid', 'name', 'username', 'status', 'nice', 'cpu_percent', 'memory_info',
  'memory_percent', 'num_threads', 'create_time', 'start_time', 'cmdline',
].join(',');

/** Rows drawn above and below the visible ones. */
const OVERSCAN = 12;

/** The columns, in the order of the table's header cells. */
const COLUMNS = [
  { key: 'pid', num: true },
  { key: 'ppid', num: true, opt: true },
  { key: 'name', tree: true },
  { key: 'username' },
  { key: 'status', opt: true },
  { key: 'nice', num: true, opt: true },
  { key: 'cpu_percent', num: true, show: fmt.percent },
  { key: 'rss', num: true, show: fmt.bytes },
  { key: 'memory_percent', num: true, opt: true, show: fmt.percent },
  { key: 'num_threads', num: true, opt: true },
  { key: 'create_time', opt: true, show: fmt.started },
  { key: 'cmd', title: true, narrow: true },
];

/** Numeric columns sort largest first on the first click. */
const NUMERIC = new Set(COLUMNS.filter((c) => c.num || c.key === 'create_time').map((c) => c.key));

/** A listed process as the table keeps it. */
function toRow(p) {
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
    lname: (p.name ?? fmt.withheld(p, 'name')).toLowerCase(),
    lcmd: cmd.toLowerCase(),
  };
}

function compare(key) {
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

export class ProcessTable {
  /**
   * `api`: the client; `fields`: every field name (for the detail pane);
   * `onAct(kind, proc)`: opens the signal or renice dialog, when allowed.
   */
  constructor(api, { fields, canSignal, canRenice, onAct }) {
    this.api = api;
    this.fields = fields;
    this.canSignal = canSignal;
    this.canRenice = canRenice;
    this.onAct = onAct;
    this.rows = [];
    this.byPid = new Map();
    this.view = [];
    this.sort = { key: 'cpu_percent', desc: true };
    this.tree = false;
    this.collapsed = new Set();
    this.selected = null;
    this.detailPid = null;
    this.timer = null;
    this.loading = false;
    this.active = false;
    this.frame = 0;
    this.abort = new AbortController();

    this.table = $('ps-table');
    this.body = $('ps-body');
    this.scroller = $('ps-scroll');
    this.status = $('ps-status');
    this.error = $('ps-error');
    this.filters = {
      name: $('f-name'), user: $('f-user'), state: $('f-state'), cmd: $('f-cmd'),
      tree: $('f-tree'), refresh: $('f-refresh'),
    };
    // One cell each: a colspan would make columns exist that the narrow
    // layout hides, and they would take the command line's width.
    this.topSpacer = el('tr', { class: 'spacer', 'aria-hidden': 'true' }, el('td'));
    this.bottomSpacer = el('tr', { class: 'spacer', 'aria-hidden': 'true' }, el('td'));
    this.bind();
    this.showSort();
    show($('act-signal'), canSignal);
    show($('act-renice'), canRenice);
  }

  bind() {
    const { signal } = this.abort;
    const on = (node, type, fn) => node.addEventListener(type, fn, { signal });
    for (const th of this.table.querySelectorAll('thead th')) {
      on(th.querySelector('button'), 'click', () => this.sortBy(th.dataset.key));
    }
    for (const f of [this.filters.name, this.filters.cmd]) on(f, 'input', () => this.update());
    for (const f of [this.filters.user, this.filters.state]) on(f, 'change', () => this.update());
    on(this.filters.tree, 'change', () => {
      this.tree = this.filters.tree.checked;
      this.table.setAttribute('role', this.tree ? 'treegrid' : 'grid');
      this.table.classList.toggle('tree', this.tree);
      this.update();
    });
    on(this.filters.refresh, 'change', () => this.schedule());
    on($('ps-filters'), 'submit', (e) => e.preventDefault());
    on($('ps-reload'), 'click', () => this.refresh());
    on(this.scroller, 'scroll', () => this.paintSoon());
    on(window, 'resize', () => this.paintSoon());
    on(this.body, 'click', (e) => this.clicked(e));
    on(this.scroller, 'keydown', (e) => this.key(e));
    on($('detail-close'), 'click', () => this.closeDetail());
    on($('act-signal'), 'click', () => this.act('signal'));
    on($('act-renice'), 'click', () => this.act('renice'));
    on(document, 'visibilitychange', () => this.schedule());
    this.table.setAttribute('role', 'grid');
  }

  /** Starts listing (when the tab is shown). */
  start() {
    this.active = true;
    if (this.rows.length === 0) this.refresh();
    else this.schedule();
  }

  /** Stops the auto-refresh (tab hidden, signed out). */
  stop() {
    this.active = false;
    clearTimeout(this.timer);
  }

  destroy() {
    this.stop();
    this.abort.abort();
    fill(this.body);
    show($('detail'), false);
    $('ps-filters').reset();
    this.table.classList.remove('tree');
    delete this.table.dataset.rows;
    delete this.table.dataset.renderMs;
    this.status.textContent = '';
    this.error.textContent = '';
  }

  /** Next auto-refresh, per the Refresh choice; none while hidden. */
  schedule() {
    clearTimeout(this.timer);
    const every = Number(this.filters.refresh.value);
    if (!this.active || !every || document.hidden || this.loading) return;
    this.timer = setTimeout(() => this.refresh(), every * 1000);
  }

  async refresh() {
    if (this.loading) return;
    this.loading = true;
    clearTimeout(this.timer);
    try {
      const { data, arrived } = await this.api.get(`/api/ps?fields=${LIST_FIELDS}`, {
        timed: true, signal: this.abort.signal,
      });
      this.error.textContent = '';
      this.ingest(data.processes, arrived, data.cpu_percent_window_s);
      if (this.detailPid !== null) this.loadDetail(this.detailPid, false);
    } catch (e) {
      if (e.name === 'AbortError') return;
      this.error.textContent = `Listing failed: ${e.message}`;
    } finally {
      this.loading = false;
      this.schedule();
    }
  }

  /** New data: rebuild the model, redraw, and time it from `arrived`. */
  ingest(processes, arrived, windowS) {
    this.rows = processes.map(toRow);
    this.byPid = new Map(this.rows.map((r) => [r.pid, r]));
    this.window = windowS;
    this.options(this.filters.user, this.rows.map((r) => r.username));
    this.options(this.filters.state, this.rows.map((r) => r.status));
    this.update(arrived);
  }

  /** Fills a filter's choices, keeping the current one. */
  options(select, values) {
    const current = select.value;
    const distinct = [...new Set(values.filter(Boolean))].sort();
    if (current && !distinct.includes(current)) distinct.push(current);
    const same = select.options.length === distinct.length + 1
      && distinct.every((v, i) => select.options[i + 1].value === v);
    if (same) return;
    fill(select, el('option', { value: '', text: 'any' }), distinct.map((v) => el('option', { value: v, text: v })));
    select.value = current;
  }

  /** Filters, sorts, redraws; `since`: when the data arrived, to time the draw. */
  update(since = performance.now()) {
    this.view = this.compute();
    this.table.setAttribute('aria-rowcount', String(this.view.length + 1));
    this.paint();
    const shown = this.view.length;
    const total = this.rows.length;
    requestAnimationFrame(() => requestAnimationFrame(() => {
      const ms = performance.now() - since;
      this.table.dataset.renderMs = ms.toFixed(1);
      this.table.dataset.rows = String(total);
      const filtered = shown === total ? '' : ` (${fmt.count(shown)} shown)`;
      const cpu = this.window ? ` · CPU over ${this.window} s` : '';
      this.status.textContent = `${fmt.count(total)} processes${filtered}${cpu} · drawn in ${Math.round(ms)} ms`;
    }));
  }

  matches() {
    const name = this.filters.name.value.trim().toLowerCase();
    const user = this.filters.user.value;
    const state = this.filters.state.value;
    const cmd = this.filters.cmd.value.trim().toLowerCase();
    return (r) => (!name || r.lname.includes(name))
      && (!user || r.username === user)
      && (!state || r.status === state)
      && (!cmd || r.lcmd.includes(cmd));
  }

  /** The rows to show, in order, with their tree depth. */
  compute() {
    const cmp = compare(this.sort.key);
    const order = this.sort.desc ? (a, b) => cmp(b, a) : cmp;
    const hits = this.rows.filter(this.matches());
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

  sortBy(key) {
    if (this.sort.key === key) this.sort.desc = !this.sort.desc;
    else this.sort = { key, desc: NUMERIC.has(key) };
    this.showSort();
    this.update();
  }

  showSort() {
    for (const th of this.table.querySelectorAll('thead th')) {
      const on = th.dataset.key === this.sort.key;
      th.setAttribute('aria-sort', on ? (this.sort.desc ? 'descending' : 'ascending') : 'none');
    }
  }

  rowHeight() {
    const h = parseFloat(getComputedStyle(this.table).getPropertyValue('--row-h'));
    return Number.isFinite(h) && h > 0 ? h : 28;
  }

  paintSoon() {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.paint();
    });
  }

  /** Draws the rows in and near the viewport, spacers for the rest. */
  paint() {
    const rowH = this.rowHeight();
    const n = this.view.length;
    const top = this.scroller.scrollTop;
    const height = this.scroller.clientHeight || 600;
    const first = Math.max(0, Math.min(n, Math.floor(top / rowH) - OVERSCAN));
    const last = Math.min(n, Math.ceil((top + height) / rowH) + OVERSCAN);
    // Only focus on a row (or parked on the scroller) follows the rows;
    // a header button keeps it.
    const active = document.activeElement;
    const focused = active === this.scroller || this.body.contains(active);
    // Chromium scrolls when a focused element leaves the document: hand
    // focus to the scroller while the rows are replaced.
    if (focused) this.scroller.focus({ preventScroll: true });
    this.topSpacer.style.height = `${first * rowH}px`;
    this.bottomSpacer.style.height = `${(n - last) * rowH}px`;
    const rows = [];
    for (let i = first; i < last; i += 1) rows.push(this.row(this.view[i], i));
    this.body.replaceChildren(this.topSpacer, ...rows, this.bottomSpacer);
    if (this.selected === null || !this.byPid.has(this.selected)) {
      const firstRow = rows[0];
      if (firstRow) firstRow.tabIndex = 0;
    }
    if (focused) this.focusSelected();
  }

  row({ r, depth, kids, context }, i) {
    const selected = r.pid === this.selected;
    const tr = el('tr', {
      'aria-rowindex': i + 2,
      'aria-selected': selected ? 'true' : 'false',
      class: [selected ? 'selected' : '', context ? 'context' : ''].join(' ').trim() || undefined,
      dataset: { pid: r.pid },
    });
    tr.tabIndex = selected ? 0 : -1;
    if (this.tree) {
      tr.setAttribute('aria-level', String(depth + 1));
      if (kids) tr.setAttribute('aria-expanded', String(!this.collapsed.has(r.pid)));
    }
    for (const c of COLUMNS) {
      const v = r[c.key];
      const text = c.show ? c.show(v) : v === null || v === '' ? '–' : String(v);
      const td = el('td', { class: [c.num ? 'num' : '', c.opt ? 'opt' : '', c.narrow ? 'opt2' : '', `k-${c.key}`].join(' ').trim() });
      if (c.tree && this.tree) {
        td.style.paddingInlineStart = `${0.4 + Math.min(depth, 12) * 0.9}em`;
        td.append(el('span', { class: 'twisty', 'aria-hidden': 'true', text: kids ? (this.collapsed.has(r.pid) ? '▸' : '▾') : '·' }));
      }
      td.append(document.createTextNode(text));
      if (c.title) td.title = text;
      tr.append(td);
    }
    return tr;
  }

  clicked(e) {
    const tr = e.target.closest('tr[data-pid]');
    if (!tr) return;
    const pid = Number(tr.dataset.pid);
    if (e.target.closest('.twisty') && this.tree) {
      this.toggle(pid);
      return;
    }
    this.select(pid);
    this.openDetail(pid);
  }

  toggle(pid, open) {
    const isOpen = !this.collapsed.has(pid);
    if (open === isOpen) return;
    if (isOpen) this.collapsed.add(pid);
    else this.collapsed.delete(pid);
    this.update();
  }

  indexOf(pid) {
    return this.view.findIndex((v) => v.r.pid === pid);
  }

  select(pid) {
    this.selected = pid;
    this.reveal(this.indexOf(pid));
    this.paint();
    this.focusSelected();
  }

  focusSelected() {
    const tr = this.body.querySelector(`tr[data-pid="${Number(this.selected)}"]`);
    if (tr) tr.focus({ preventScroll: true });
  }

  /** Scrolls so that row `i` is inside the viewport, below the header. */
  reveal(i) {
    if (i < 0) return;
    const rowH = this.rowHeight();
    const head = this.table.tHead ? this.table.tHead.offsetHeight : 0;
    const top = i * rowH;
    const view = this.scroller.clientHeight - head;
    if (top < this.scroller.scrollTop) this.scroller.scrollTop = top;
    else if (top + rowH > this.scroller.scrollTop + view) this.scroller.scrollTop = top + rowH - view;
  }

  key(e) {
    if (e.altKey || e.ctrlKey || e.metaKey) return;
    // Rows (or the scroller between them) only: the header's sort buttons
    // keep Enter and Space.
    if (e.target !== this.scroller && !this.body.contains(e.target)) return;
    const n = this.view.length;
    if (n === 0) return;
    let i = this.indexOf(this.selected);
    const page = Math.max(1, Math.floor(this.scroller.clientHeight / this.rowHeight()) - 1);
    const cur = i < 0 ? null : this.view[i];
    switch (e.key) {
      case 'ArrowDown': i = Math.min(n - 1, i + 1); break;
      case 'ArrowUp': i = Math.max(0, i - 1); break;
      case 'PageDown': i = Math.min(n - 1, i + page); break;
      case 'PageUp': i = Math.max(0, i - page); break;
      case 'Home': i = 0; break;
      case 'End': i = n - 1; break;
      case 'Enter':
      case ' ':
        if (cur) this.openDetail(cur.r.pid, true);
        e.preventDefault();
        return;
      case 'ArrowRight':
      case 'ArrowLeft':
        if (this.tree && cur && cur.kids) this.toggle(cur.r.pid, e.key === 'ArrowRight');
        e.preventDefault();
        return;
      case 'Delete':
        if (cur && this.canSignal) this.onAct('signal', cur.r);
        e.preventDefault();
        return;
      default:
        return;
    }
    e.preventDefault();
    this.select(this.view[Math.max(0, i)].r.pid);
  }

  /** Opens the detail pane on `pid`; `focus` moves the keyboard there. */
  openDetail(pid, focus = false) {
    this.detailPid = pid;
    const r = this.byPid.get(pid);
    $('detail-title').textContent = r ? `${r.name} (${pid})` : `Process ${pid}`;
    fill($('detail-fields'));
    $('detail-note').textContent = 'Loading…';
    show($('detail'), true);
    if (focus) $('detail-title').focus();
    this.loadDetail(pid, true);
  }

  closeDetail() {
    this.detailPid = null;
    show($('detail'), false);
    this.focusSelected();
  }

  async loadDetail(pid, first) {
    try {
      const fields = this.fields.length ? `?fields=${this.fields.join(',')}` : '';
      const data = await this.api.get(`/api/ps/${pid}${fields}`, { signal: this.abort.signal });
      if (this.detailPid !== pid) return;
      this.detail = data.process;
      $('detail-title').textContent = `${data.process.name ?? 'process'} (${pid})`;
      $('detail-note').textContent = '';
      fill($('detail-fields'), fieldList(data.process));
      $('detail').dataset.pid = String(pid);
    } catch (e) {
      if (e.name === 'AbortError' || this.detailPid !== pid) return;
      if (e.code === 'no_such_process') {
        this.detail = null;
        $('detail-note').textContent = `Process ${pid} has exited.`;
        fill($('detail-fields'));
      } else if (first || e.status !== 0) {
        $('detail-note').textContent = `Could not read process ${pid}: ${e.message}`;
      }
    }
  }

  act(kind) {
    const r = this.byPid.get(this.detailPid);
    const d = this.detail && this.detail.pid === this.detailPid ? this.detail : null;
    if (!r && !d) return;
    this.onAct(kind, {
      ...(r || {}),
      ...(d ? {
        pid: d.pid, name: d.name, username: d.username, nice: d.nice,
        create_time: d.create_time, start_time: d.start_time, cmd: fmt.commandLine(d),
      } : {}),
    });
  }

  /** After an act: list again at once, and show the detail's new state. */
  acted() {
    this.refresh();
  }
}

/** Fields whose numbers are bytes. */
const BYTES = new Set(['rss', 'vms', 'shared', 'text', 'lib', 'data', 'dirty', 'uss', 'pss', 'swap',
  'read_bytes', 'write_bytes', 'size', 'private_clean', 'private_dirty', 'shared_clean',
  'shared_dirty', 'referenced', 'anonymous']);

/** Every field of a process as a definition list, values as text; a
 * withheld field says why in its place. */
function fieldList(p) {
  const items = [];
  for (const [k, v] of Object.entries(p)) {
    if (k === 'withheld') continue;
    const why = v === null ? fmt.withheld(p, k) : '';
    const shown = why ? el('span', { class: 'muted', text: why }) : value(k, v);
    items.push(el('div', { class: 'field', dataset: { field: k } }, el('dt', { text: k }), el('dd', {}, shown)));
  }
  return items;
}

function scalar(k, v) {
  if (v === null || v === undefined) return el('span', { class: 'muted', text: 'not readable' });
  if (typeof v === 'number' && BYTES.has(k)) return `${fmt.bytes(v)} (${v.toLocaleString('en')})`;
  if (k === 'create_time' && typeof v === 'number') return `${fmt.dateTime(v)} (${v})`;
  if (k === 'start_time' && typeof v === 'number') return `${v} clock ticks after boot`;
  if (typeof v === 'number' && !Number.isInteger(v)) return String(Math.round(v * 100) / 100);
  return String(v);
}

const MAX_ITEMS = 200;

function value(k, v) {
  if (v === null || typeof v !== 'object') return scalar(k, v);
  if (Array.isArray(v)) {
    if (v.length === 0) return el('span', { class: 'muted', text: 'none' });
    if (k === 'cmdline') return el('ol', { class: 'args' }, v.map((a) => el('li', { text: a })));
    if (v.every((x) => x === null || typeof x !== 'object')) return v.map((x) => scalar(k, x)).join(', ');
    const keys = [...new Set(v.slice(0, MAX_ITEMS).flatMap((x) => (x && typeof x === 'object' ? Object.keys(x) : [])))];
    const more = v.length > MAX_ITEMS ? el('p', { class: 'muted', text: `and ${v.length - MAX_ITEMS} more` }) : null;
    return [
      el('div', { class: 'table-wrap' }, el('table', { class: 'sub' },
        el('thead', {}, el('tr', {}, keys.map((c) => el('th', { scope: 'col', text: c })))),
        el('tbody', {}, v.slice(0, MAX_ITEMS).map((x) => el('tr', {},
          keys.map((c) => el('td', {}, x && typeof x === 'object' ? flat(c, x[c]) : '')))))),
      ),
      more,
    ];
  }
  return el('dl', { class: 'fields nested' }, Object.entries(v).map(([ck, cv]) => el('div', { class: 'field' },
    el('dt', { text: ck }), el('dd', {}, value(ck, cv)))));
}

/** A value inside a sub-table cell: objects as "k: v" text. */
function flat(k, v) {
  if (v === null || v === undefined) return '–';
  if (typeof v !== 'object') return scalar(k, v);
  if (Array.isArray(v)) return v.map((x) => flat(k, x)).join(', ');
  return Object.entries(v).map(([ck, cv]) => `${ck}: ${flat(ck, cv)}`).join(', ');
}
