// The process table on the page: one listing per refresh, handed to the
// model (table-model.js: filter, sort, tree) and rendered as a window of
// rows around the scroll position, so 5,000 processes cost as much to draw
// as fifty; the keys that move in it; the detail pane, which shows every
// field of one process.

import { chart } from './chart.js';
import { $, el, fill, show } from './dom.js';
import * as fmt from './format.js';
import { Poller } from './poll.js';
import { Series } from './series.js';
import { LIST_FIELDS, step, summary, TableModel } from './table-model.js';

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

export class ProcessTable {
  /**
   * `api`: the client; `fields`: every field name (for the detail pane);
   * `onAct(kind, proc)`: opens the signal or renice dialog, when allowed.
   */
  constructor(api, {
    fields, canSignal, canRenice, onAct, onLink = () => {}, onRefresh = () => {}, offer = null, onMark = () => {},
  }) {
    this.api = api;
    // Rows marked for a group action: their check boxes, a shift-click
    // (the range from the last marked row) or a ctrl-click (one row).
    this.marked = new Set();
    this.anchor = null;
    this.onMark = onMark;
    this.onLink = onLink;
    /** Called at each refresh, so the host header keeps pace with the table. */
    this.onRefresh = onRefresh;
    /** The helper's verdicts on the detail pane's buttons (offer.js). */
    this.offer = offer;
    /** Columns the user chose (a Set of keys), or null: as many as fit. */
    this.cols = null;
    /** A pid a link selected, shown once a listing has it. */
    this.pendingPid = null;
    this.fields = fields;
    this.canSignal = canSignal;
    this.canRenice = canRenice;
    this.onAct = onAct;
    this.model = new TableModel();
    this.series = new Series();
    this.view = [];
    this.selected = null;
    this.detailPid = null;
    this.loading = false;
    // No refresh while one is under way or the page is hidden.
    this.poll = new Poller(() => this.refresh(), () => (
      document.hidden || this.loading ? 0 : Number(this.filters.refresh.value)));
    this.frame = 0;
    this.abort = new AbortController();

    this.table = $('ps-table');
    this.body = $('ps-body');
    this.scroller = $('ps-scroll');
    this.status = $('ps-status');
    this.error = $('ps-error');
    this.filters = {
      name: $('f-name'), user: $('f-user'), state: $('f-state'), cmd: $('f-cmd'),
      tree: $('f-tree'), kernel: $('f-kernel'), refresh: $('f-refresh'),
    };
    // One cell each: a colspan would make columns exist that the narrow
    // layout hides, and they would take the command line's width.
    this.topSpacer = el('tr', { class: 'spacer', 'aria-hidden': 'true' }, el('td'));
    this.bottomSpacer = el('tr', { class: 'spacer', 'aria-hidden': 'true' }, el('td'));
    this.chooser();
    this.bind();
    this.showSort();
    show($('act-signal'), canSignal);
    show($('act-renice'), canRenice);
    show($('act-tree'), canSignal);
    show(this.table.querySelector('thead th.mark'), canSignal);
  }

  bind() {
    const { signal } = this.abort;
    const on = (node, type, fn) => node.addEventListener(type, fn, { signal });
    for (const th of this.table.querySelectorAll('thead th[data-key]')) {
      on(th.querySelector('button'), 'click', () => this.sortBy(th.dataset.key));
    }
    on($('ps-mark-all'), 'change', (e) => this.markAll(e.target.checked));
    const changed = () => {
      this.update();
      this.onLink();
    };
    for (const f of [this.filters.name, this.filters.cmd]) on(f, 'input', changed);
    for (const f of [this.filters.user, this.filters.state, this.filters.kernel]) on(f, 'change', changed);
    on(this.filters.tree, 'change', () => {
      this.setTree(this.filters.tree.checked);
      changed();
    });
    on($('ps-columns-list'), 'change', (e) => this.chose(e.target));
    on($('ps-columns-auto'), 'click', () => {
      this.setColumns(null);
      this.onLink();
    });
    on(this.filters.refresh, 'change', () => this.poll.schedule());
    on($('ps-filters'), 'submit', (e) => e.preventDefault());
    on($('ps-reload'), 'click', () => this.refresh());
    on(this.scroller, 'scroll', () => this.paintSoon());
    on(window, 'resize', () => this.paintSoon());
    on(this.body, 'click', (e) => this.clicked(e));
    on(this.scroller, 'keydown', (e) => this.key(e));
    on($('detail-close'), 'click', () => this.closeDetail());
    on($('act-signal'), 'click', () => this.act('signal'));
    on($('act-renice'), 'click', () => this.act('renice'));
    on($('act-tree'), 'click', () => this.act('tree'));
    on(document, 'visibilitychange', () => this.poll.schedule());
    this.table.setAttribute('role', 'grid');
  }

  setTree(on) {
    this.model.tree = on;
    this.filters.tree.checked = on;
    this.table.setAttribute('role', on ? 'treegrid' : 'grid');
    this.table.classList.toggle('tree', on);
  }

  /** The column chooser's boxes, one per column but the pid (always shown). */
  chooser() {
    fill($('ps-columns-list'), $('ps-columns-list').querySelector('legend'),
      [...this.table.querySelectorAll('thead th[data-key]')].map((th) => el('label', { class: 'check' },
        el('input', {
          type: 'checkbox', value: th.dataset.key, checked: true, disabled: th.dataset.key === 'pid',
        }),
        ` ${th.textContent}`)));
  }

  /** A box of the chooser changed: from the columns shown now, that one more or less. */
  chose(box) {
    const shown = new Set(this.cols || [...this.table.querySelectorAll('thead th[data-key]')]
      .filter((th) => getComputedStyle(th).display !== 'none').map((th) => th.dataset.key));
    if (box.checked) shown.add(box.value);
    else shown.delete(box.value);
    this.setColumns(COLUMNS.map((c) => c.key).filter((k) => shown.has(k)));
    this.onLink();
  }

  /**
   * Shows the columns `keys` (null: as many as the width allows, the
   * layout's choice); the pid is always among them.
   */
  setColumns(keys) {
    this.cols = keys ? new Set(['pid', ...keys]) : null;
    this.table.classList.toggle('chosen', Boolean(this.cols));
    for (const th of this.table.querySelectorAll('thead th[data-key]')) th.hidden = Boolean(this.cols) && !this.cols.has(th.dataset.key);
    for (const box of $('ps-columns-list').querySelectorAll('input')) box.checked = !this.cols || this.cols.has(box.value);
    this.paint();
  }

  /** What a link holds of this table. */
  linkState() {
    const f = this.model.filter;
    return {
      name: f.name,
      user: f.user,
      state: f.state,
      cmd: f.cmd,
      kernel: this.filters.kernel.checked,
      tree: this.model.tree,
      sort: this.model.sort,
      pid: this.selected ?? this.pendingPid,
      cols: this.cols ? COLUMNS.map((c) => c.key).filter((k) => this.cols.has(k) && k !== 'pid') : null,
    };
  }

  /** Shows what a link names (link.js's view); the pid once it is listed. */
  restore(v) {
    const f = this.filters;
    f.name.value = v.name;
    f.cmd.value = v.cmd;
    for (const [select, value] of [[f.user, v.user], [f.state, v.state]]) {
      if (value && ![...select.options].some((o) => o.value === value)) select.append(el('option', { value, text: value }));
      select.value = value;
    }
    f.kernel.checked = v.kernel;
    this.readFilters();
    this.setTree(v.tree);
    this.model.sort = { ...v.sort };
    this.showSort();
    this.setColumns(v.cols);
    this.pendingPid = v.pid;
    if (this.model.rows.length) this.update();
    this.showPending();
  }

  /** Selects and opens the pid a link named, once a listing is in. */
  showPending() {
    const pid = this.pendingPid;
    if (pid === null || this.model.rows.length === 0) return;
    this.pendingPid = null;
    this.selected = pid;
    this.reveal(this.indexOf(pid));
    this.paint();
    this.openDetail(pid);
  }

  /** Starts listing (when the tab is shown). */
  start() {
    this.poll.start({ now: this.model.rows.length === 0 });
  }

  /** Stops the auto-refresh (tab hidden, signed out). */
  stop() {
    this.poll.stop();
  }

  destroy() {
    this.stop();
    this.abort.abort();
    fill(this.body);
    show($('detail'), false);
    $('ps-filters').reset();
    this.table.classList.remove('tree', 'chosen');
    for (const th of this.table.querySelectorAll('thead th[data-key]')) th.hidden = false;
    delete this.table.dataset.rows;
    delete this.table.dataset.renderMs;
    this.status.textContent = '';
    this.error.textContent = '';
    if (this.offer) this.offer.show(null);
  }

  async refresh() {
    if (this.loading) return;
    this.loading = true;
    this.poll.cancel();
    this.onRefresh();
    try {
      const { data, arrived } = await this.api.get(`/api/ps?fields=${LIST_FIELDS}`, {
        timed: true, signal: this.abort.signal,
      });
      this.error.textContent = '';
      this.ingest(data.processes, arrived, data.cpu_percent_window_s);
      if (this.pendingPid !== null) this.showPending();
      else if (this.detailPid !== null) this.loadDetail(this.detailPid, false);
    } catch (e) {
      if (e.name === 'AbortError') return;
      this.error.textContent = `Listing failed: ${e.message}`;
    } finally {
      this.loading = false;
      this.poll.schedule();
    }
  }

  /** New data: rebuild the model, redraw, and time it from `arrived`. */
  ingest(processes, arrived, windowS) {
    this.model.load(processes);
    this.series.add(Date.now(), this.model.rows);
    this.window = windowS;
    this.readFilters();
    this.options(this.filters.user, this.model.users());
    this.options(this.filters.state, this.model.states());
    this.update(arrived);
  }

  /** The filter fields' values, into the model. */
  readFilters() {
    const f = this.filters;
    this.model.filter = {
      name: f.name.value, user: f.user.value, state: f.state.value, cmd: f.cmd.value, kernel: f.kernel.checked,
    };
  }

  /** Sets a filter's choices (the model's), keeping the current one. */
  options(select, distinct) {
    const current = select.value;
    const same = select.options.length === distinct.length + 1
      && distinct.every((v, i) => select.options[i + 1].value === v);
    if (same) return;
    fill(select, el('option', { value: '', text: 'any' }), distinct.map((v) => el('option', { value: v, text: v })));
    select.value = current;
  }

  /** Filters, sorts, redraws; `since`: when the data arrived, to time the draw. */
  update(since = performance.now()) {
    this.readFilters();
    this.view = this.model.view();
    this.table.setAttribute('aria-rowcount', String(this.view.length + 1));
    this.paint();
    const shown = this.view.length;
    const total = this.model.rows.length;
    requestAnimationFrame(() => requestAnimationFrame(() => {
      const ms = performance.now() - since;
      this.table.dataset.renderMs = ms.toFixed(1);
      this.table.dataset.rows = String(total);
      this.status.textContent = summary(total, shown, this.window, ms);
    }));
  }

  sortBy(key) {
    this.model.sortBy(key);
    this.showSort();
    this.update();
    this.onLink();
  }

  showSort() {
    for (const th of this.table.querySelectorAll('thead th[data-key]')) {
      const { sort } = this.model;
      const on = th.dataset.key === sort.key;
      th.setAttribute('aria-sort', on ? (sort.desc ? 'descending' : 'ascending') : 'none');
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
    if (this.selected === null || !this.model.byPid.has(this.selected)) {
      const firstRow = rows[0];
      if (firstRow) firstRow.tabIndex = 0;
    }
    if (focused) this.focusSelected();
    this.showMarkAll();
  }

  /** The header's box: checked when every row shown is marked, mixed when some are. */
  showMarkAll() {
    const box = $('ps-mark-all');
    const n = this.view.filter((v) => this.marked.has(v.r.pid)).length;
    box.checked = n > 0 && n === this.view.length;
    box.indeterminate = n > 0 && n < this.view.length;
  }

  /** Marks (or unmarks) every row the filters show, not only those drawn. */
  markAll(on) {
    for (const { r } of this.view) {
      if (on) this.marked.add(r.pid);
      else this.marked.delete(r.pid);
    }
    this.anchor = null;
    this.onMark([...this.marked]);
    this.paintSoon();
  }

  /**
   * Marks or unmarks row `pid`; with `range`, every row from the last one
   * marked to it, as a file manager does.
   */
  mark(pid, on, range) {
    const from = range && this.anchor !== null ? this.indexOf(this.anchor) : -1;
    const to = this.indexOf(pid);
    if (from >= 0 && to >= 0) {
      for (let i = Math.min(from, to); i <= Math.max(from, to); i += 1) this.marked.add(this.view[i].r.pid);
    } else if (on) {
      this.marked.add(pid);
    } else {
      this.marked.delete(pid);
    }
    this.anchor = on ? pid : null;
    this.onMark([...this.marked]);
    this.paintSoon();
  }

  row({ r, depth, kids, context }, i) {
    const selected = r.pid === this.selected;
    const tr = el('tr', {
      'aria-rowindex': i + 2,
      'aria-selected': selected ? 'true' : 'false',
      class: [selected ? 'selected' : '', context ? 'context' : '',
        this.marked.has(r.pid) ? 'marked' : ''].join(' ').trim() || undefined,
      dataset: { pid: r.pid },
    });
    tr.tabIndex = selected ? 0 : -1;
    const { tree, collapsed } = this.model;
    if (tree) {
      tr.setAttribute('aria-level', String(depth + 1));
      if (kids) tr.setAttribute('aria-expanded', String(!collapsed.has(r.pid)));
    }
    if (this.canSignal) {
      const box = el('input', {
        type: 'checkbox', class: 'mark', checked: this.marked.has(r.pid), 'aria-label': `Mark ${r.name || 'process'} (${r.pid})`,
      });
      // In the tab order on the selected row only, as the rows themselves.
      box.tabIndex = selected ? 0 : -1;
      tr.append(el('td', { class: 'mark' }, box));
    }
    for (const c of COLUMNS) {
      if (this.cols && !this.cols.has(c.key)) continue;
      const v = r[c.key];
      const text = c.show ? c.show(v) : v === null || v === '' ? '–' : String(v);
      const td = el('td', { class: [c.num ? 'num' : '', c.opt ? 'opt' : '', c.narrow ? 'opt2' : '', `k-${c.key}`].join(' ').trim() });
      if (c.tree && tree) {
        td.style.paddingInlineStart = `${0.4 + Math.min(depth, 12) * 0.9}em`;
        td.append(el('span', { class: 'twisty', 'aria-hidden': 'true', text: kids ? (collapsed.has(r.pid) ? '▸' : '▾') : '·' }));
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
    if (e.target.closest('.twisty') && this.model.tree) {
      this.toggle(pid);
      return;
    }
    if (e.target.matches('input.mark')) {
      this.mark(pid, e.target.checked, e.shiftKey);
      return;
    }
    if ((e.shiftKey || e.ctrlKey || e.metaKey) && this.canSignal) {
      this.mark(pid, !this.marked.has(pid), e.shiftKey);
      return;
    }
    this.select(pid);
    this.openDetail(pid);
  }

  toggle(pid, open) {
    if (this.model.toggle(pid, open)) this.update();
  }

  indexOf(pid) {
    return this.view.findIndex((v) => v.r.pid === pid);
  }

  select(pid) {
    this.selected = pid;
    if (this.offer) this.offer.prefetch(this.model.byPid.get(pid));
    this.reveal(this.indexOf(pid));
    this.paint();
    this.focusSelected();
    this.onLink();
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
    // A row's box keeps Space (it marks the row) and Tab.
    if (e.target.matches('input.mark') && e.key !== 'ArrowUp' && e.key !== 'ArrowDown') return;
    const n = this.view.length;
    if (n === 0) return;
    const i = this.indexOf(this.selected);
    const cur = i < 0 ? null : this.view[i];
    switch (e.key) {
      case 'Enter':
      case ' ':
        if (cur) this.openDetail(cur.r.pid, true);
        e.preventDefault();
        return;
      case 'ArrowRight':
      case 'ArrowLeft':
        if (this.model.tree && cur && cur.kids) this.toggle(cur.r.pid, e.key === 'ArrowRight');
        e.preventDefault();
        return;
      case 'Delete':
        if (cur && this.canSignal) this.onAct('signal', cur.r);
        e.preventDefault();
        return;
      default:
        break;
    }
    const page = Math.max(1, Math.floor(this.scroller.clientHeight / this.rowHeight()) - 1);
    const j = step(e.key, i, n, page);
    if (j === null) return;
    e.preventDefault();
    this.select(this.view[j].r.pid);
  }

  /** Opens the detail pane on `pid`; `focus` moves the keyboard there. */
  openDetail(pid, focus = false) {
    this.detailPid = pid;
    const r = this.model.byPid.get(pid);
    $('detail-title').textContent = r ? `${r.name} (${pid})` : `Process ${pid}`;
    fill($('detail-fields'));
    fill($('detail-charts'));
    $('detail-note').textContent = 'Loading…';
    if (this.offer) this.offer.show(r || null);
    show($('detail'), true);
    if (focus) $('detail-title').focus();
    else revealBelow($('detail'));
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
      this.charts(data.process);
      $('detail').dataset.pid = String(pid);
    } catch (e) {
      if (e.name === 'AbortError' || this.detailPid !== pid) return;
      if (e.code === 'no_such_process') {
        this.detail = null;
        $('detail-note').textContent = `Process ${pid} has exited.`;
        fill($('detail-fields'));
        fill($('detail-charts'));
      } else if (first || e.status !== 0) {
        $('detail-note').textContent = `Could not read process ${pid}: ${e.message}`;
      }
    }
  }

  /** CPU % and RSS of `p` over the last minutes, from the listings seen. */
  charts(p) {
    const s = this.series.of(p.pid, p.start_time);
    fill($('detail-charts'),
      chart('cpu', 'CPU %', s.t, s.cpu, { show: fmt.percent, scale: { floor: 1 } }),
      chart('rss', 'Memory (RSS)', s.t, s.rss, { show: fmt.bytes, scale: { floor: 1024 * 1024, binary: true } }));
  }

  act(kind) {
    // Refused: the button says why (its title and the line under it).
    if (this.offer && this.offer.why(kind)) return;
    const r = this.model.byPid.get(this.detailPid);
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
    this.marked.clear();
    this.anchor = null;
    this.onMark([]);
    this.refresh();
  }
}

/**
 * In a narrow window the pane opens under the table: scroll it into view
 * rather than leave it below the fold with no sign.
 */
function revealBelow(node) {
  if (node.getBoundingClientRect().top > window.innerHeight - 48) node.scrollIntoView({ block: 'start' });
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

/**
 * Fields whose null is an answer, not a refusal: the API's schema says
 * "or null" for what the process does not have.
 */
const NULL_MEANS = { terminal: 'none (no controlling terminal)' };

function scalar(k, v) {
  if (v === null || v === undefined) return el('span', { class: 'muted', text: NULL_MEANS[k] || 'not readable' });
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
