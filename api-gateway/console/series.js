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
const value = (v) => (Number.isFinite(v) ? v : NaN);
const known = (v) => (Number.isNaN(v) ? null : v);

/**
 * One refresh's time is every process's: the times are kept once, each
 * process holds two rings of MAX_SAMPLES 32-bit floats (NaN: unknown),
 * indexed by the refresh's number, from the one it was first seen in. A
 * process missing from a listing is forgotten, so its samples have no
 * gap. (5,000 processes over 150 refreshes cost about 8 MiB, not the 27
 * of arrays of numbers per process.)
 */
export class Series {
  constructor() {
    this.byId = new Map();
    /** Times of the kept refreshes; `times[0]` is refresh number `first`. */
    this.times = [];
    this.first = 0;
    this.count = 0;
  }

  /**
   * A listing's rows (table-model.js rows) sampled at `at` (ms): one point
   * per process; processes no longer listed are forgotten.
   */
  add(at, rows) {
    const n = this.count;
    this.count += 1;
    this.times.push(at);
    while (this.times.length > MAX_SAMPLES || this.times[0] < at - SPAN_MS) {
      this.times.shift();
      this.first += 1;
    }
    const slot = n % MAX_SAMPLES;
    const next = new Map();
    for (const r of rows) {
      const key = id(r.pid, r.start_time);
      const s = this.byId.get(key)
        || { from: n, cpu: new Float32Array(MAX_SAMPLES), rss: new Float32Array(MAX_SAMPLES) };
      s.cpu[slot] = value(r.cpu_percent);
      s.rss[slot] = value(r.rss);
      next.set(key, s);
    }
    this.byId = next;
  }

  /** `{ t, cpu, rss }` of one process, oldest first (empty arrays when unknown). */
  of(pid, startTime) {
    const out = { t: [], cpu: [], rss: [] };
    const s = this.byId.get(id(pid, startTime));
    if (!s) return out;
    for (let g = Math.max(s.from, this.first); g < this.count; g += 1) {
      out.t.push(this.times[g - this.first]);
      out.cpu.push(known(s.cpu[g % MAX_SAMPLES]));
      out.rss.push(known(s.rss[g % MAX_SAMPLES]));
    }
    return out;
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
