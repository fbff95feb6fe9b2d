// The console's entry point: sign-in with an API key (kept in this tab's
// sessionStorage only), the tabs the key's scopes allow, sign-out.
//
// Modules: api.js (requests), sse.js (events over fetch), processes.js
// (the table on the page and the detail pane) over table-model.js (its
// rows: filter, sort, tree), host.js (the host header), act.js (signal
// and renice dialogs), verdict.js and offer.js (the helper's verdict
// before an act), jobs.js (run, follow, cancel, list) with ansi.js (its
// output's colours), poll.js (the refresh cycle of both tabs), link.js
// (the view in the URL), series.js and chart.js (the detail charts),
// dom.js and format.js (helpers).

import { Api, apiDocument, session } from './api.js';
import { Actions } from './act.js';
import { GroupAction } from './group.js';
import { $, show } from './dom.js';
import { Jobs } from './jobs.js';
import { HostHeader } from './host.js';
import { format, parse } from './link.js';
import { Offer } from './offer.js';
import { ProcessTable } from './processes.js';
import { dryRunIn, Verdicts } from './verdict.js';

/** Signals offered when the API document cannot be read. */
const FALLBACK_SIGNALS = ['TERM', 'KILL', 'INT', 'HUP', 'QUIT', 'CONT', 'STOP', 'TSTP', 'USR1', 'USR2'];

let ui = null;

function toast(text) {
  const t = $('toast');
  t.textContent = text;
  t.classList.add('on');
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => t.classList.remove('on'), 6000);
}

async function signIn(key, restoring) {
  const err = $('signin-error');
  err.textContent = '';
  $('signin-note').textContent = '';
  $('sign-in').disabled = true;
  const api = new Api(key);
  let who;
  try {
    who = await api.get('/api/whoami');
  } catch (e) {
    $('sign-in').disabled = false;
    if (restoring) session.clear();
    err.textContent = e.status === 401
      ? `That key was not accepted (${e.message}). Check it and try again.`
      : `Signing in failed: ${e.message}`;
    $('key-input').focus();
    return;
  }
  $('sign-in').disabled = false;
  session.save(key);
  $('key-input').value = '';
  api.onUnauthorized = (f) => signOut(
    `You were signed out: the gateway no longer accepts this key (${f.message}).`, { error: true });

  let doc = null;
  try {
    doc = await apiDocument();
  } catch {
    doc = null;
  }
  const schemas = (doc && doc.components && doc.components.schemas) || {};
  const fields = (schemas.FieldName && schemas.FieldName.enum) || [];
  // What the policy lets this key do (whoami's `policy`, where the
  // gateway says): only those signals offered, that nice range.
  const policy = who.policy && typeof who.policy === 'object' ? who.policy : null;
  const signals = policy && Array.isArray(policy.signals)
    ? policy.signals.map((s) => String(s).replace(/^SIG/, ''))
    : ((schemas.SignalName && schemas.SignalName.enum) || FALLBACK_SIGNALS).filter((s) => !s.startsWith('SIG'));
  const range = policy && Array.isArray(policy.nice_range) && policy.nice_range.length === 2
    && policy.nice_range.every(Number.isInteger) ? policy.nice_range : null;
  const scopes = new Set(who.scopes);
  if (!scopes.has('read') && !scopes.has('exec')) {
    signOut(`Key ${who.key} has none of the scopes this console uses (read for processes, exec for jobs).`,
      { error: true });
    return;
  }
  $('who-key').textContent = who.key;
  $('who-scopes').textContent = `(${who.scopes.join(', ') || 'no scopes'})`;
  show($('who'), true);
  show($('signin'), false);
  health(api);

  // The helper's verdict before each act, where the gateway dry-runs.
  const offered = dryRunIn(doc);
  const can = { signal: offered.signal && scopes.has('signal'), renice: offered.renice && scopes.has('renice') };
  const verdicts = can.signal || can.renice
    ? new Verdicts((method, path, body) => api.send(method, path, body), can) : null;
  const defaultSignal = signals.includes('TERM') ? 'TERM' : signals[0];
  const [lo, hi] = range || [-20, 19];
  const offer = new Offer(verdicts, {
    policy, signal: defaultSignal, nice: (p) => Math.min(hi, Math.max(lo, p.nice ?? 0)),
  });
  const actions = new Actions(api, {
    signals,
    toast,
    done: () => ui && ui.procs && ui.procs.acted(),
    niceRange: range,
    verdicts,
    policy,
  });
  // The host header, where the gateway has the route.
  const host = scopes.has('read') && doc && doc.paths && doc.paths['/api/host'] ? new HostHeader(api) : null;
  const group = new GroupAction(api, {
    signals,
    toast,
    done: () => ui && ui.procs && ui.procs.acted(),
  });
  const procs = scopes.has('read') ? new ProcessTable(api, {
    fields,
    canSignal: scopes.has('signal') && signals.length > 0,
    canRenice: scopes.has('renice'),
    onAct: (kind, p) => (kind === 'tree' ? group.openTree(p) : actions.open(kind, p)),
    onMark: (pids) => {
      marked = pids;
      $('ps-marked').textContent = `Signal ${pids.length} marked…`;
      show($('ps-marked'), pids.length > 0);
    },
    onLink: () => writeLink(),
    onRefresh: () => {
      if (verdicts) verdicts.forget();
      if (host) host.refresh();
    },
    offer,
  }) : null;
  let marked = [];
  $('ps-marked').onclick = () => group.openPids(marked);
  const jobs = scopes.has('exec') ? new Jobs(api, { admin: scopes.has('admin'), toast }) : null;
  ui = {
    api, procs, jobs, actions, group, host, tab: null,
  };

  show($('tab-processes'), Boolean(procs));
  show($('tab-jobs'), Boolean(jobs));
  show($('tabs'), true);
  followLink();
  $('main').focus();
}

/** The column keys a link may name (the table's header). */
function columnKeys() {
  return [...document.querySelectorAll('#ps-table thead th[data-key]')].map((th) => th.dataset.key);
}

/** Shows what the URL's fragment names (link.js): the tab, then the table's view. */
function followLink() {
  const v = parse(window.location.hash, columnKeys());
  if (ui.procs) ui.procs.restore(v);
  const tab = (v.tab === 'jobs' && ui.jobs) || !ui.procs ? 'jobs' : 'processes';
  select(tab);
}

/** Writes the view into the fragment, replacing the entry (no history step per keystroke). */
function writeLink() {
  if (!ui) return;
  const hash = format({ ...(ui.procs ? ui.procs.linkState() : {}), tab: ui.tab });
  window.history.replaceState(null, '', `${window.location.pathname}${window.location.search}${hash}`);
}

/** Shows one tab's panel and starts its refreshing; stops the other's. */
function select(name) {
  ui.tab = name;
  for (const [tab, panel, part] of [
    ['tab-processes', 'processes', ui.procs],
    ['tab-jobs', 'jobs', ui.jobs],
  ]) {
    const on = panel === name;
    $(tab).setAttribute('aria-selected', String(on));
    $(tab).tabIndex = on ? 0 : -1;
    show($(panel), on && Boolean(part));
    if (part && on) part.start();
    else if (part) part.stop();
  }
  writeLink();
}

/**
 * Back to the sign-in form. `message` says why: a plain note for a
 * sign-out asked for, an error (`error`) when the key stopped working.
 */
function signOut(message = '', { error = false } = {}) {
  if (ui) {
    for (const part of [ui.procs, ui.jobs, ui.actions, ui.group, ui.host]) if (part) part.destroy();
    show($('ps-marked'), false);
  }
  ui = null;
  session.clear();
  window.history.replaceState(null, '', `${window.location.pathname}${window.location.search}`);
  show($('who'), false);
  show($('tabs'), false);
  show($('processes'), false);
  show($('jobs'), false);
  show($('signin'), true);
  $('signin-error').textContent = error ? message : '';
  $('signin-note').textContent = error ? '' : message;
  $('key-input').focus();
}

/**
 * The helper's reachability, shown beside the key. Asked with the key:
 * the keyless `/healthz` says only its status, the keyed one also the
 * gateway's version.
 */
async function health(api) {
  const node = $('helper-state');
  try {
    const body = await api.get('/healthz');
    node.textContent = typeof body.version === 'string' ? `helper ok · v${body.version}` : 'helper ok';
    node.classList.remove('bad');
  } catch (e) {
    node.textContent = e.status === 503 ? 'helper unreachable: acting is refused' : 'gateway unreachable';
    node.classList.add('bad');
  }
}

function tabKeys(e) {
  const tabs = [$('tab-processes'), $('tab-jobs')].filter((t) => !t.hidden);
  const i = tabs.indexOf(document.activeElement);
  if (i < 0) return;
  let j = i;
  if (e.key === 'ArrowRight') j = (i + 1) % tabs.length;
  else if (e.key === 'ArrowLeft') j = (i - 1 + tabs.length) % tabs.length;
  else if (e.key === 'Home') j = 0;
  else if (e.key === 'End') j = tabs.length - 1;
  else return;
  e.preventDefault();
  tabs[j].focus();
  tabs[j].click();
}

function boot() {
  $('signin-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const key = $('key-input').value.trim();
    if (key) signIn(key, false);
  });
  $('sign-out').addEventListener('click', () => signOut('Signed out.'));
  $('tab-processes').addEventListener('click', () => ui && select('processes'));
  $('tab-jobs').addEventListener('click', () => ui && select('jobs'));
  $('tabs').addEventListener('keydown', tabKeys);
  // A link opened in this tab (pasted, or the back button) is followed too.
  window.addEventListener('hashchange', () => ui && followLink());
  const saved = session.load();
  if (saved) signIn(saved, true);
  else $('key-input').focus();
}

boot();
