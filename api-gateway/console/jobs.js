// Jobs: run a command, watch its output live (the events stream, read
// with fetch and resumed with Last-Event-ID), cancel it, and list this
// key's jobs with their states and exit codes.

import { $, el, fill, show } from './dom.js';
import * as fmt from './format.js';
import { Poller } from './poll.js';
import { Ansi } from './ansi.js';
import { follow } from './sse.js';

/** Characters of output kept on the page; older output is dropped. */
const MAX_SHOWN = 1_000_000;

const LIVE = new Set(['starting', 'running']);

/** A job's outcome in words. */
export function outcome(j) {
  switch (j.state) {
    case 'starting': return 'starting';
    case 'running': return 'running';
    case 'exited': return `exited ${j.exit_code}`;
    case 'killed': return `killed by signal ${j.signal}`;
    case 'timed_out': return 'timed out';
    case 'cancelled': return 'cancelled';
    default: return j.state;
  }
}

function took(j) {
  if (!j.started_at) return '–';
  const end = j.ended_at ? Date.parse(j.ended_at) : Date.now();
  return fmt.duration(end - Date.parse(j.started_at));
}

function decodeBase64(b64) {
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i += 1) out[i] = bin.charCodeAt(i);
  return out;
}

export class Jobs {
  constructor(api, { admin, toast }) {
    this.api = api;
    this.admin = admin;
    this.toast = toast;
    this.jobs = [];
    this.next = null;
    this.current = null;
    this.stream = null;
    // While a job runs, its row's state and time change: look again.
    this.poll = new Poller(() => this.load(false), () => (
      this.jobs.some((j) => LIVE.has(j.state)) ? 3 : 0));
    this.abort = new AbortController();
    const { signal } = this.abort;
    show($('jobs-owner-col'), admin);
    $('job-form').addEventListener('submit', (e) => { e.preventDefault(); this.run(); }, { signal });
    $('job-cancel').addEventListener('click', () => this.cancel(), { signal });
    $('jobs-more').addEventListener('click', () => this.load(true), { signal });
    $('jobs-body').addEventListener('click', (e) => {
      const b = e.target.closest('button[data-job]');
      if (b) this.view(this.jobs.find((j) => j.id === b.dataset.job));
    }, { signal });
  }

  start() {
    this.poll.start({ now: true });
  }

  stop() {
    this.poll.stop();
  }

  destroy() {
    this.stop();
    this.abort.abort();
    if (this.stream) this.stream.abort();
    fill($('jobs-body'));
    fill($('job-output'));
    show($('job-view'), false);
    $('job-form').reset();
    $('job-error').textContent = '';
    this.current = null;
  }

  /** Lists this key's jobs (newest first); `more` appends the next page. */
  async load(more) {
    this.poll.cancel();
    try {
      const before = more && this.next ? `&before=${this.next}` : '';
      const data = await this.api.get(`/api/jobs?limit=50${before}`, { signal: this.abort.signal });
      this.jobs = more ? this.jobs.concat(data.jobs) : data.jobs;
      this.next = data.next;
      this.renderList();
    } catch (e) {
      if (e.name === 'AbortError') return;
      $('job-error').textContent = `Listing jobs failed: ${e.message}`;
    }
    this.poll.schedule();
  }

  renderList() {
    show($('jobs-empty'), this.jobs.length === 0);
    show($('jobs-table'), this.jobs.length > 0);
    show($('jobs-more'), Boolean(this.next));
    fill($('jobs-body'), this.jobs.map((j) => el('tr', {
      class: this.current && this.current.id === j.id ? 'selected' : undefined,
      dataset: { job: j.id, state: j.state },
    },
    el('td', { text: fmt.isoTime(j.created_at) }),
    this.admin ? el('td', { text: j.owner }) : null,
    el('td', { class: 'k-cmd' }, el('button', {
      type: 'button', class: 'link', dataset: { job: j.id }, title: j.cmd, text: j.cmd,
    })),
    el('td', {}, el('span', { class: `badge s-${j.state}`, text: outcome(j) })),
    el('td', { class: 'num', text: j.exit_code ?? (j.signal ? `sig ${j.signal}` : '–') }),
    el('td', { class: 'num', text: fmt.bytes(j.stdout_bytes + j.stderr_bytes) }),
    el('td', { class: 'num', text: took(j) }))));
  }

  async run() {
    const cmd = $('job-cmd').value;
    if (!cmd.trim()) return;
    const body = { cmd };
    const timeout = $('job-timeout').value.trim();
    if (timeout) body.timeout_s = Number(timeout);
    $('job-error').textContent = '';
    $('job-run').disabled = true;
    try {
      const data = await this.api.send('POST', '/api/jobs', body);
      this.view(data.job);
      this.load(false);
    } catch (e) {
      $('job-error').textContent = `The command was not started: ${e.message}`;
    } finally {
      $('job-run').disabled = false;
    }
  }

  /** Shows one job and follows its output from the start. */
  view(job) {
    if (!job) return;
    if (this.stream) this.stream.abort();
    this.current = job;
    this.renderList();
    const out = $('job-output');
    fill(out);
    this.shown = 0;
    this.decoders = { stdout: new TextDecoder(), stderr: new TextDecoder() };
    this.ansi = { stdout: new Ansi(), stderr: new Ansi() };
    $('job-title').textContent = job.cmd;
    $('job-view').dataset.job = job.id;
    this.state(job);
    show($('job-view'), true);
    const stream = new AbortController();
    this.stream = stream;
    follow(this.api, `/api/jobs/${job.id}/events`, {
      signal: stream.signal,
      onEvent: (ev) => this.event(ev, job.id),
      onError: (e) => { $('job-error').textContent = `Following the job failed: ${e.message}`; },
      onReconnect: () => { $('job-state').textContent = 'reconnecting…'; },
    });
  }

  state(job) {
    const badge = $('job-state');
    badge.textContent = outcome(job);
    badge.className = `badge s-${job.state}`;
    $('job-view').dataset.state = job.state;
    show($('job-cancel'), LIVE.has(job.state));
  }

  event(ev, id) {
    if (!this.current || this.current.id !== id) return;
    let data;
    try {
      data = JSON.parse(ev.data);
    } catch {
      return;
    }
    if (ev.type === 'exit') {
      this.current = data;
      this.state(data);
      this.load(false);
      return;
    }
    if (ev.type !== 'stdout' && ev.type !== 'stderr') return;
    if (LIVE.has(this.current.state) && $('job-state').textContent !== outcome(this.current)) {
      this.state(this.current);
    }
    const text = typeof data.text === 'string'
      ? data.text
      : this.decoders[ev.type].decode(decodeBase64(data.base64 || ''), { stream: true });
    this.append(text, ev.type);
  }

  /** Appends output, its colours as styles (ansi.js), nothing else of its escapes. */
  append(text, stream) {
    const out = $('job-output');
    const atBottom = out.scrollTop + out.clientHeight >= out.scrollHeight - 4;
    for (const seg of this.ansi[stream].feed(text)) {
      const cls = [stream === 'stderr' ? 'stderr' : '', seg.cls].join(' ').trim();
      if (!cls && !seg.fg && !seg.bg) {
        out.append(document.createTextNode(seg.text));
      } else {
        const span = el('span', { class: cls || undefined, text: seg.text });
        // rgb() strings built from checked numbers (ansi.js), set through CSSOM.
        if (seg.fg) span.style.color = seg.fg;
        if (seg.bg) span.style.backgroundColor = seg.bg;
        out.append(span);
      }
      this.shown += seg.text.length;
    }
    while (this.shown > MAX_SHOWN && out.firstChild) {
      this.shown -= out.firstChild.textContent.length;
      out.firstChild.remove();
      out.dataset.cut = 'true';
    }
    if (atBottom) out.scrollTop = out.scrollHeight;
  }

  async cancel() {
    const job = this.current;
    if (!job) return;
    $('job-cancel').disabled = true;
    try {
      const data = await this.api.send('DELETE', `/api/jobs/${job.id}`);
      if (this.current && this.current.id === job.id) {
        this.current = data.job;
        this.state(data.job);
      }
      // A job that ended before the click is deleted, not cancelled.
      this.toast(data.deleted ? `Had ended, deleted: ${job.cmd}` : `Cancelled: ${job.cmd}`);
      this.load(false);
    } catch (e) {
      $('job-error').textContent = `Cancelling failed: ${e.message}`;
    } finally {
      $('job-cancel').disabled = false;
    }
  }
}
