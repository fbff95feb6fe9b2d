// The console's entry point: sign-in with an API key (kept in this tab's
// sessionStorage only), the tabs the key's scopes allow, sign-out.
//
// Modules: api.js (requests), sse.js (events over fetch), processes.js
// (the table on the page and the detail pane) over table-model.js (its
// rows: filter, sort, tree), act.js (signal and renice dialogs), jobs.js
// (run, follow, cancel, list), poll.js (the refresh cycle of both tabs),
// dom.js and format.js (helpers).

import { Api, apiDocument, session } from './api.js';
import { Actions } from './act.js';
import { GroupAction } from './group.js';
import { $, show } from './dom.js';
import { Jobs } from './jobs.js';
import { ProcessTable } from './processes.js';

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
  api.onUnauthorized = (f) => signOut(`You were signed out: the gateway no longer accepts this key (${f.message}).`);

  let doc = null;
  try {
    doc = await apiDocument();
  } catch {
    doc = null;
  }
  const schemas = (doc && doc.components && doc.components.schemas) || {};
  const fields = (schemas.FieldName && schemas.FieldName.enum) || [];
  const signals = ((schemas.SignalName && schemas.SignalName.enum) || FALLBACK_SIGNALS)
    .filter((s) => !s.startsWith('SIG'));
  const scopes = new Set(who.scopes);
  if (!scopes.has('read') && !scopes.has('exec')) {
    signOut(`Key ${who.key} has none of the scopes this console uses (read for processes, exec for jobs).`);
    return;
  }
  $('who-key').textContent = who.key;
  $('who-scopes').textContent = `(${who.scopes.join(', ') || 'no scopes'})`;
  show($('who'), true);
  show($('signin'), false);
  health();

  const actions = new Actions(api, {
    signals,
    toast,
    done: () => ui && ui.procs && ui.procs.acted(),
  });
  const group = new GroupAction(api, {
    signals,
    toast,
    done: () => ui && ui.procs && ui.procs.acted(),
  });
  const procs = scopes.has('read') ? new ProcessTable(api, {
    fields,
    canSignal: scopes.has('signal'),
    canRenice: scopes.has('renice'),
    onAct: (kind, p) => (kind === 'tree' ? group.openTree(p) : actions.open(kind, p)),
    onMark: (pids) => {
      marked = pids;
      $('ps-marked').textContent = `Signal ${pids.length} marked…`;
      show($('ps-marked'), pids.length > 0);
    },
  }) : null;
  let marked = [];
  $('ps-marked').onclick = () => group.openPids(marked);
  const jobs = scopes.has('exec') ? new Jobs(api, { admin: scopes.has('admin'), toast }) : null;
  ui = { api, procs, jobs, actions, group };

  show($('tab-processes'), Boolean(procs));
  show($('tab-jobs'), Boolean(jobs));
  show($('tabs'), true);
  select(procs ? 'processes' : 'jobs');
  $('main').focus();
}

/** Shows one tab's panel and starts its refreshing; stops the other's. */
function select(name) {
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
}

function signOut(message = '') {
  if (ui) {
    for (const part of [ui.procs, ui.jobs, ui.actions, ui.group]) if (part) part.destroy();
    show($('ps-marked'), false);
  }
  ui = null;
  session.clear();
  show($('who'), false);
  show($('tabs'), false);
  show($('processes'), false);
  show($('jobs'), false);
  show($('signin'), true);
  $('signin-error').textContent = message;
  $('key-input').focus();
}

/** The helper's reachability, shown beside the key. */
async function health() {
  const node = $('helper-state');
  try {
    const res = await fetch('/healthz', { cache: 'no-store', credentials: 'omit' });
    const body = await res.json();
    node.textContent = res.ok ? `helper ok · v${body.version}` : 'helper unreachable: acting is refused';
    node.classList.toggle('bad', !res.ok);
  } catch {
    node.textContent = 'gateway unreachable';
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
  const saved = session.load();
  if (saved) signIn(saved, true);
  else $('key-input').focus();
}

boot();
