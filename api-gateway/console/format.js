// Formatting of API values for people: sizes, percentages, times.

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

/** 1536 → "1.5 KiB"; null → "–". */
export function bytes(n) {
  if (n === null || n === undefined || !Number.isFinite(n)) return '–';
  let u = 0;
  let v = n;
  while (v >= 1024 && u < UNITS.length - 1) {
    v /= 1024;
    u += 1;
  }
  return u === 0 ? `${v} B` : `${v.toFixed(v < 10 ? 1 : 0)} ${UNITS[u]}`;
}

/** 3.14159 → "3.1"; null → "–". */
export function percent(n) {
  if (n === null || n === undefined || !Number.isFinite(n)) return '–';
  return n.toFixed(1);
}

/** A span of seconds for a label: 9.605271028 → "9.6", 12.4 → "12", 1 → "1". */
export function seconds(s) {
  if (!Number.isFinite(s)) return '–';
  return String(s < 10 ? Number(s.toFixed(1)) : Math.round(s));
}

/** −20 … 19 as people write them: a true minus sign. */
export function signed(n) {
  return n < 0 ? `−${-n}` : String(n);
}

/** A number with thousands separators. */
export function count(n) {
  return Number.isFinite(n) ? n.toLocaleString('en') : '–';
}

const pad = (n) => String(n).padStart(2, '0');

/** Unix seconds → "2026-01-02 03:04:05" (local time). */
export function dateTime(seconds) {
  if (!Number.isFinite(seconds)) return '–';
  const d = new Date(seconds * 1000);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${clock(d)}`;
}

function clock(d) {
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** Unix seconds → "03:04:05" today, else "Jan 02" style "01-02". */
export function started(seconds) {
  if (!Number.isFinite(seconds)) return '–';
  const d = new Date(seconds * 1000);
  const now = new Date();
  if (d.toDateString() === now.toDateString()) return clock(d);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

/** An RFC 3339 string → local "2026-01-02 03:04:05"; null → "–". */
export function isoTime(s) {
  if (!s) return '–';
  const t = Date.parse(s);
  return Number.isFinite(t) ? dateTime(t / 1000) : s;
}

/** Milliseconds → "1.2 s", "3 min 4 s". */
export function duration(ms) {
  if (!Number.isFinite(ms) || ms < 0) return '–';
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${Math.round(s % 60)} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

/** A process's command line as one string ("[name]" for kernel threads). */
export function commandLine(p) {
  if (Array.isArray(p.cmdline) && p.cmdline.length > 0) return p.cmdline.join(' ');
  if (withheld(p, 'cmdline')) return withheld(p, 'cmdline');
  return p.name ? `[${p.name}]` : '';
}

/** Why the API withheld a field of `p` (null then), as a sentence; '' if it did not. */
export function withheld(p, field) {
  const why = p.withheld ? p.withheld[field] : undefined;
  if (why === undefined) return '';
  const sentence = {
    another_key_job: 'withheld: another key’s job',
    read_policy: 'withheld: the read policy does not allow it',
    reader_unavailable: 'unknown: no reader answered',
  }[why];
  return sentence ?? `withheld: ${why}`;
}
