// The host header above the process table, as htop's: a bar per CPU,
// memory and swap bars, load average, uptime and task counts, from `GET
// /api/host`, refreshed with the table. A gateway without that route
// (404) gets no header and loses nothing else. `summary` is the figures
// as shown, without the DOM (tested in node, tests/console/host.test.mjs).

import { $, el, fill, show } from './dom.js';
import * as fmt from './format.js';

const pct = (part, whole) => (whole > 0 ? Math.max(0, Math.min(100, (part / whole) * 100)) : 0);

/** Seconds → htop's "3 days, 04:05:06". */
export function uptime(s) {
  if (!Number.isFinite(s) || s < 0) return '–';
  const days = Math.floor(s / 86400);
  const pad = (n) => String(n).padStart(2, '0');
  const hms = `${pad(Math.floor((s % 86400) / 3600))}:${pad(Math.floor((s % 3600) / 60))}:${pad(Math.floor(s % 60))}`;
  if (days === 0) return hms;
  return `${days} day${days === 1 ? '' : 's'}, ${hms}`;
}

/**
 * What the header shows of a `/api/host` answer: CPU bars, memory as
 * htop splits it (used, buffers, cache; percent of the total), swap,
 * and the lines of text.
 */
export function summary(h) {
  const vm = h.virtual_memory || {};
  const sw = h.swap_memory || {};
  const buffers = vm.buffers || 0;
  // psutil's used is already total − free − buffers − cached.
  const cached = vm.cached || 0;
  const used = Number.isFinite(vm.used) ? vm.used : Math.max(0, (vm.total || 0) - (vm.free || 0) - buffers - cached);
  const cpu = h.cpu_percent || {};
  const p = h.processes || {};
  const load = Array.isArray(h.getloadavg) ? h.getloadavg : [];
  return {
    cpus: (cpu.per_cpu || []).map((v, i) => ({ label: String(i), percent: pct(v, 100), text: `${fmt.percent(v)}%` })),
    total: { percent: pct(cpu.total, 100), text: `${fmt.percent(cpu.total)}%`, window: cpu.window },
    memory: {
      segments: [
        { cls: 'used', percent: pct(used, vm.total) },
        { cls: 'buffers', percent: pct(buffers, vm.total) },
        { cls: 'cache', percent: pct(cached, vm.total) },
      ],
      percent: pct(used, vm.total),
      text: `${fmt.bytes(used)} / ${fmt.bytes(vm.total)}`,
    },
    swap: {
      segments: [{ cls: 'used', percent: pct(sw.used, sw.total) }],
      percent: pct(sw.used, sw.total),
      text: sw.total ? `${fmt.bytes(sw.used)} / ${fmt.bytes(sw.total)}` : 'none',
    },
    load: load.length === 3 ? load.map((l) => (Number.isFinite(l) ? l.toFixed(2) : '–')).join(' ') : '–',
    uptime: uptime(h.uptime),
    tasks: `${fmt.count(p.total)}, ${fmt.count(p.threads)} thr; ${fmt.count(p.running)} running`,
    host: `${h.hostname || ''} · Linux ${h.kernel || ''}`,
  };
}

/** One bar: a label, the filled parts (widths through CSSOM), the figure. */
function bar(key, label, segments, percent, text) {
  const track = el('span', { class: 'track' });
  for (const s of segments) {
    const seg = el('span', { class: `seg ${s.cls}` });
    seg.style.width = `${s.percent.toFixed(1)}%`;
    track.append(seg);
  }
  return el('div', {
    class: 'bar',
    role: 'meter',
    'aria-label': label === key ? `CPU ${label}` : label,
    'aria-valuemin': 0,
    'aria-valuemax': 100,
    'aria-valuenow': percent.toFixed(1),
    'aria-valuetext': text,
    dataset: { bar: key },
  }, el('span', { class: 'bar-label', text: label }), track, el('span', { class: 'bar-text', text }));
}

export class HostHeader {
  constructor(api) {
    this.api = api;
    this.on = true;
    this.abort = new AbortController();
  }

  /** One refresh (with the table's); quiet for good after a 404. */
  async refresh() {
    if (!this.on) return;
    try {
      const h = await this.api.get('/api/host', { signal: this.abort.signal });
      this.render(summary(h));
      $('host-error').textContent = '';
    } catch (e) {
      if (e.name === 'AbortError') return;
      if (e.status === 404 || e.status === 405) {
        this.on = false;
        show($('host'), false);
        return;
      }
      $('host-error').textContent = `Host figures failed: ${e.message}`;
    }
  }

  render(s) {
    $('host-name').textContent = s.host;
    fill($('host-cpus'), s.cpus.map((c) => bar(c.label, c.label, [{ cls: 'used', percent: c.percent }], c.percent, c.text)));
    fill($('host-mem'),
      bar('mem', 'Mem', s.memory.segments, s.memory.percent, s.memory.text),
      bar('swap', 'Swp', s.swap.segments, s.swap.percent, s.swap.text));
    fill($('host-facts'),
      fact('Tasks', s.tasks, 'tasks'), fact('Load average', s.load, 'load'), fact('Uptime', s.uptime, 'uptime'));
    show($('host'), true);
  }

  destroy() {
    this.abort.abort();
    show($('host'), false);
    for (const id of ['host-cpus', 'host-mem', 'host-facts']) fill($(id));
  }
}

function fact(label, value, key) {
  return el('div', { class: 'fact', dataset: { fact: key } }, el('dt', { text: label }), el('dd', { text: value }));
}
