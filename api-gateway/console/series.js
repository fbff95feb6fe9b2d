// Each process's CPU % and RSS over the last minutes, kept in the page
// from the listings the table refreshes with (no request of its own), for
// the detail pane's charts; and the charts' geometry. A process is known
// by pid and start time, so a reused pid starts a fresh history. No DOM:
// tested in node (tests/console/series.test.mjs).

/** How far back a chart looks. */
export const SPAN_MS = 5 * 60 * 1000;
/** Samples kept per process (a 2 s refresh fills five minutes' worth). */
export const MAX_SAMPLES = 150;

const id = (pid, startTime) => `${pid}:${startTime}`;

export class Series {
  constructor() {
    this.byId = new Map();
  }

  /**
   * A listing's rows (table-model.js rows) sampled at `at` (ms): one point
   * per process; processes no longer listed are forgotten.
   */
  add(at, rows) {
    const next = new Map();
    for (const r of rows) {
      const key = id(r.pid, r.start_time);
      const s = this.byId.get(key) || { t: [], cpu: [], rss: [] };
      s.t.push(at);
      s.cpu.push(r.cpu_percent);
      s.rss.push(r.rss);
      while (s.t.length > MAX_SAMPLES || (s.t.length && s.t[0] < at - SPAN_MS)) {
        s.t.shift();
        s.cpu.shift();
        s.rss.shift();
      }
      next.set(key, s);
    }
    this.byId = next;
  }

  /** `{ t, cpu, rss }` of one process (empty arrays when unknown). */
  of(pid, startTime) {
    return this.byId.get(id(pid, startTime)) || { t: [], cpu: [], rss: [] };
  }
}

/**
 * A round top for a chart's scale, at least `floor`: 1, 2 or 5 times a
 * power of ten (CPU %), or a power of two (bytes, with `binary`).
 */
export function ceiling(max, { floor = 1, binary = false } = {}) {
  const m = Math.max(max, floor);
  if (binary) return 2 ** Math.ceil(Math.log2(m));
  const p = 10 ** Math.floor(Math.log10(m));
  for (const f of [1, 2, 5, 10]) if (f * p >= m) return f * p;
  return 10 * p;
}

/**
 * The polyline points of `values` at times `t`, in a `w`×`h` box whose
 * right edge is `now` and left edge `now - span`; `top` is the value at
 * the top edge. Unknown values (null) break nothing: they are skipped.
 */
export function points(t, values, {
  now, span = SPAN_MS, w, h, top,
}) {
  const out = [];
  for (let i = 0; i < t.length; i += 1) {
    const v = values[i];
    if (v === null || v === undefined || !Number.isFinite(v)) continue;
    const x = w - ((now - t[i]) / span) * w;
    const y = h - (Math.min(v, top) / top) * h;
    out.push(`${Math.max(0, x).toFixed(1)},${y.toFixed(1)}`);
  }
  return out.join(' ');
}
