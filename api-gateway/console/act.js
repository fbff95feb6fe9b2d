// Acting on a process: the signal and renice dialogs. Each shows what it
// will act on (pid, name, user, start time) and sends that start time, so
// the helper refuses to act if the pid has been reused meanwhile (409);
// every refusal is told as a sentence.

import { $, el, fill, show } from './dom.js';
import * as fmt from './format.js';
import { because } from './verdict.js';

/** A failed act as a sentence about `p`. */
export function sentence(e, p, kind) {
  const who = `process ${p.pid} (${p.name || 'unnamed'})`;
  switch (e.code) {
    case 'identity_changed':
      return `Nothing was done: ${who} is gone, and pid ${p.pid} now belongs to another process that started later. Reload the list and try again.`;
    case 'no_such_process':
      return `Nothing was done: ${who} has exited.`;
    case 'policy_denied': {
      const detail = e.message.includes(': ') ? e.message.slice(e.message.indexOf(': ') + 2) : e.message;
      return `The helper's policy refused this. Rule ${e.rule || 'unknown'}: ${detail}.`;
    }
    case 'missing_scope':
      return `This key may not ${kind === 'signal' ? 'send signals' : 'renice processes'}: ${e.message}.`;
    case 'helper_unavailable':
      return 'Nothing was done: the privileged helper is not reachable right now.';
    default:
      return `Nothing was done: ${e.message}`;
  }
}

export class Actions {
  /**
   * `signals`: names to offer; `done(kind, p)`: called after a success;
   * `niceRange`: [min, max] the key may set (null: unknown); `verdicts` (verdict.js, or
   * null) and `policy` (whoami's): the helper's verdict shown before the
   * confirmation.
   */
  constructor(api, {
    signals, toast, done, niceRange = null, verdicts = null, policy = null,
  }) {
    this.api = api;
    this.signals = signals;
    this.verdicts = verdicts;
    this.policy = policy;
    const [lo, hi] = niceRange || [-20, 19];
    $('act-nice').min = String(lo);
    $('act-nice').max = String(hi);
    $('act-nice-label').textContent = niceRange
      ? `New nice value (${fmt.signed(lo)} … ${fmt.signed(hi)} for this key)` : 'New nice value (−20 … 19)';
    this.toast = toast;
    this.done = done;
    this.dialog = $('act-dialog');
    this.abort = new AbortController();
    const { signal } = this.abort;
    fill($('act-signal-name'), signals.map((s) => el('option', { value: s, text: `SIG${s}` })));
    $('act-form').addEventListener('submit', (e) => { e.preventDefault(); this.confirm(); }, { signal });
    $('act-cancel').addEventListener('click', () => this.dialog.close(), { signal });
    $('act-signal-name').addEventListener('change', () => this.label(), { signal });
    $('act-nice').addEventListener('input', () => this.label(), { signal });
    $('act-signal-name').addEventListener('change', () => this.judge(), { signal });
    $('act-nice').addEventListener('input', () => {
      clearTimeout(this.judging);
      this.judging = setTimeout(() => this.judge(), 250);
    }, { signal });
  }

  destroy() {
    this.abort.abort();
    if (this.dialog.open) this.dialog.close();
  }

  /** Opens the dialog for `kind` ('signal' or 'renice') on process `p`. */
  open(kind, p) {
    this.kind = kind;
    this.target = p;
    this.busy = false;
    $('act-title').textContent = kind === 'signal' ? 'Send a signal' : 'Change the nice value';
    const started = p.create_time === null || p.create_time === undefined
      ? '–' : `${fmt.dateTime(p.create_time)} (start_time ${p.start_time})`;
    fill($('act-target'),
      row('PID', String(p.pid)),
      row('Name', p.name || '–'),
      row('User', p.username || '–'),
      row('Started', started),
      row('Command line', p.cmd || '–'));
    show($('act-signal-choice'), kind === 'signal');
    show($('act-nice-choice'), kind === 'renice');
    if (kind === 'signal') $('act-signal-name').value = this.signals.includes('TERM') ? 'TERM' : this.signals[0];
    else $('act-nice').value = String(p.nice ?? 0);
    $('act-error').textContent = '';
    $('act-confirm').disabled = false;
    this.label();
    this.judge();
    this.dialog.showModal();
    (kind === 'signal' ? $('act-signal-name') : $('act-nice')).focus();
  }

  label() {
    const p = this.target;
    $('act-confirm').textContent = this.kind === 'signal'
      ? `Send SIG${$('act-signal-name').value} to ${p.pid}`
      : `Set nice ${$('act-nice').value} on ${p.pid}`;
  }

  /**
   * The value the dialog would send now, or null when it is none. A nice
   * value outside the key's range is still one: the helper's verdict
   * says which rule refuses it.
   */
  value() {
    if (this.kind === 'signal') return $('act-signal-name').value;
    const nice = Number($('act-nice').value);
    return Number.isInteger(nice) && nice >= -20 && nice <= 19 ? nice : null;
  }

  /**
   * The helper's verdict on the act as chosen, before it is confirmed:
   * a refusal names its rule and disables the confirmation; with no dry
   * run here, nothing is said and nothing disabled.
   */
  async judge() {
    const node = $('act-verdict');
    const { kind, target } = this;
    const value = this.value();
    node.textContent = '';
    node.classList.remove('bad', 'ok');
    this.refusal = '';
    if (!this.verdicts || !this.verdicts.can[kind] || value === null) return;
    const asked = { kind, target, value };
    this.asked = asked;
    node.textContent = 'Asking the helper whether it would allow this…';
    const v = await this.verdicts.ask(kind, target, value);
    if (this.asked !== asked || !this.dialog.open) return;
    if (!v) {
      node.textContent = '';
    } else if (v.verdict === 'deny') {
      this.refusal = because(v.rule, kind, this.policy);
      node.textContent = `The helper would refuse this: ${this.refusal}.`;
      node.classList.add('bad');
    } else {
      node.textContent = `The helper would allow this${v.rule ? ` (rule ${v.rule})` : ''}.`;
      node.classList.add('ok');
    }
    $('act-confirm').disabled = Boolean(this.refusal);
  }

  async confirm() {
    if (this.busy || this.refusal) return;
    const p = this.target;
    const body = { pid: p.pid, start_time: p.start_time };
    let method;
    let what;
    if (this.kind === 'signal') {
      method = 'DELETE';
      body.signal = $('act-signal-name').value;
      what = `Sent SIG${body.signal} to ${p.name} (${p.pid}).`;
    } else {
      const nice = Number($('act-nice').value);
      if (!Number.isInteger(nice) || nice < -20 || nice > 19) {
        $('act-error').textContent = 'The nice value is a whole number from −20 to 19.';
        return;
      }
      method = 'PATCH';
      body.priority = nice;
      what = `Set the nice value of ${p.name} (${p.pid}) to ${nice}.`;
    }
    this.busy = true;
    $('act-confirm').disabled = true;
    $('act-error').textContent = '';
    try {
      await this.api.send(method, '/api/ps', body);
      this.dialog.close();
      this.toast(what);
      this.done(this.kind, p);
    } catch (e) {
      $('act-error').textContent = sentence(e, p, this.kind);
    } finally {
      this.busy = false;
      $('act-confirm').disabled = Boolean(this.refusal);
    }
  }
}

function row(label, value) {
  return el('div', { class: 'field' }, el('dt', { text: label }), el('dd', { text: value }));
}
