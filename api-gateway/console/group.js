// Acting on many processes at once, in two steps: the plan (what the
// gateway selected, each target with the helper's verdict and its rule)
// is shown before anything is sent; confirming executes exactly that plan
// and shows each target's outcome. Opened as "Kill tree…" on a process,
// or on the rows marked in the table (check boxes, shift- or ctrl-click).

import { $, el, fill, show } from './dom.js';

/** One outcome as words. */
const OUTCOME = {
  signalled: 'signalled',
  reniced: 'reniced',
  gone: 'gone (exited)',
  identity_changed: 'not touched: its pid is another process now',
  exe_changed: 'not touched: it runs another program since the plan',
  denied: 'refused by the policy',
  failed: 'failed',
};

export class GroupAction {
  /** `done()`: called after an execution, to refresh the table. */
  constructor(api, { signals, toast, done }) {
    this.api = api;
    this.toast = toast;
    this.done = done;
    this.dialog = $('group-dialog');
    this.abort = new AbortController();
    const { signal } = this.abort;
    fill($('group-signal'), signals.map((s) => el('option', { value: s, text: `SIG${s}` })));
    $('group-signal').value = signals.includes('TERM') ? 'TERM' : signals[0];
    $('group-form').addEventListener('submit', (e) => { e.preventDefault(); this.confirm(); }, { signal });
    $('group-cancel').addEventListener('click', () => this.dialog.close(), { signal });
    $('group-signal').addEventListener('change', () => this.plan(), { signal });
  }

  destroy() {
    this.abort.abort();
    if (this.dialog.open) this.dialog.close();
  }

  /** Plans a signal to the processes `pids` (marked rows). */
  openPids(pids) {
    this.selector = { pids };
    $('group-title').textContent = `Signal ${pids.length} marked processes`;
    this.dialog.showModal();
    this.plan();
  }

  /** Plans a signal to the tree under process `p` and shows the plan. */
  openTree(p) {
    this.selector = { tree_of: p.pid, include_root: true };
    $('group-title').textContent = `Signal the tree of ${p.name || 'process'} (${p.pid})`;
    this.dialog.showModal();
    this.plan();
  }

  async plan() {
    this.planned = null;
    $('group-confirm').disabled = true;
    $('group-error').textContent = '';
    fill($('group-targets'));
    $('group-summary').textContent = 'Planning…';
    try {
      const a = await this.api.send('POST', '/api/actions/plan', {
        selector: this.selector, action: { signal: $('group-signal').value },
      });
      this.planned = a;
      const allowed = a.targets.filter((t) => t.verdict === 'allow').length;
      $('group-summary').textContent = `${a.count} processes; the policy allows ${allowed}. Nothing is sent until you confirm (the plan expires in ${a.expires_in} s).`;
      this.rows(a.targets.map((t) => [t.pid, t.name ?? '–', t.user ?? '–',
        t.verdict === 'allow' ? 'allow' : `deny (${t.rule})`]));
      $('group-confirm').textContent = `Send SIG${$('group-signal').value} to ${allowed}`;
      $('group-confirm').disabled = allowed === 0;
    } catch (e) {
      $('group-summary').textContent = '';
      $('group-error').textContent = e.code === 'empty_match'
        ? 'Nothing to act on: every process of the tree is protected or gone.'
        : `Nothing was planned: ${e.message}`;
    }
  }

  async confirm() {
    const a = this.planned;
    if (!a) return;
    $('group-confirm').disabled = true;
    try {
      const r = await this.api.send('POST', `/api/actions/${a.plan_id}`, { expect_count: a.count });
      this.planned = null;
      $('group-summary').textContent = r.status === 'complete'
        ? 'Done: every target was acted on.'
        : 'Done, partly: some targets were not acted on (see below).';
      // Name and user as planned: a target may be gone by now.
      const planned = new Map(a.targets.map((t) => [t.pid, t]));
      this.rows(r.results.map((x) => [x.pid, x.added ? 'forked since the plan' : planned.get(x.pid)?.name ?? '–',
        planned.get(x.pid)?.user ?? '–', `${OUTCOME[x.outcome] || x.outcome}${x.rule ? ` (${x.rule})` : ''}${x.errno ? ` (${x.errno})` : ''}`]));
      this.toast(`Signalled ${r.results.length} processes: ${r.status}.`);
      this.done();
    } catch (e) {
      $('group-error').textContent = `Nothing was done: ${e.message}`;
    }
  }

  rows(list) {
    fill($('group-targets'), list.map((cells) => el('tr', { class: 'group-row' },
      cells.map((c) => el('td', { text: String(c) })))));
    show($('group-table'), list.length > 0);
  }
}
