// Job output as a terminal colours it, and nothing more: the colour and
// weight escapes (SGR, `ESC [ … m`) become styles of the text; every other
// escape sequence (cursor moves, titles, screen clears, device queries)
// and every other control character is dropped, never acted on. A
// sequence split between two pieces of output is held until the rest
// arrives. No DOM: tested in node (tests/console/ansi.test.mjs).

const ESC = '\x1b';
/** A sequence longer than this is not a terminal's: dropped unparsed. */
const MAX_HELD = 4096;

/** The steps of xterm's 6×6×6 colour cube. */
const CUBE = [0, 95, 135, 175, 215, 255];

/** xterm's 256-colour palette entry `n` (16–255) as [r, g, b]. */
export function xterm256(n) {
  if (n < 232) {
    const i = n - 16;
    return [CUBE[Math.floor(i / 36)], CUBE[Math.floor(i / 6) % 6], CUBE[i % 6]];
  }
  const v = 8 + (n - 232) * 10;
  return [v, v, v];
}

function plain() {
  return { bold: false, dim: false, italic: false, underline: false, fg: null, bg: null };
}

/** A colour: 0–15 (a class) or an rgb() string. */
function colour(n) {
  if (n < 16) return n;
  const [r, g, b] = xterm256(n);
  return `rgb(${r}, ${g}, ${b})`;
}

const byte = (v) => Number.isInteger(v) && v >= 0 && v <= 255;

/**
 * Applies SGR parameters to `s` (in place): weights, the 16 colours, and
 * `38;5;n` / `38;2;r;g;b` (or their `:` forms) for the others; unknown
 * codes are ignored.
 */
export function applySgr(s, params) {
  const groups = (params === '' ? '0' : params).split(';');
  for (let i = 0; i < groups.length; i += 1) {
    const sub = groups[i].split(':').map((x) => (x === '' ? null : Number(x)));
    const c = sub[0] ?? 0;
    if (c === 38 || c === 48) {
      const key = c === 38 ? 'fg' : 'bg';
      const colon = sub.length > 1;
      const rest = colon ? sub.slice(1) : groups.slice(i + 1).map(Number);
      let used;
      if (rest[0] === 5) {
        if (byte(rest[1])) s[key] = colour(rest[1]);
        used = 2;
      } else if (rest[0] === 2) {
        // The `:` form may carry a colour-space id first: 38:2::r:g:b.
        const rgb = colon && rest.length >= 5 ? rest.slice(2, 5) : rest.slice(1, 4);
        if (rgb.length === 3 && rgb.every(byte)) s[key] = `rgb(${rgb.join(', ')})`;
        used = 4;
      } else {
        return;
      }
      if (!colon) i += used;
    } else if (c === 0) Object.assign(s, plain());
    else if (c === 1) s.bold = true;
    else if (c === 2) s.dim = true;
    else if (c === 3) s.italic = true;
    else if (c === 4) s.underline = true;
    else if (c === 22) { s.bold = false; s.dim = false; }
    else if (c === 23) s.italic = false;
    else if (c === 24) s.underline = false;
    else if (c >= 30 && c <= 37) s.fg = c - 30;
    else if (c >= 90 && c <= 97) s.fg = c - 90 + 8;
    else if (c === 39) s.fg = null;
    else if (c >= 40 && c <= 47) s.bg = c - 40;
    else if (c >= 100 && c <= 107) s.bg = c - 100 + 8;
    else if (c === 49) s.bg = null;
  }
}

/** A piece of text's style as CSS classes plus any rgb() colours. */
export function styleOf(s) {
  const cls = [];
  if (s.bold) cls.push('a-bold');
  if (s.dim) cls.push('a-dim');
  if (s.italic) cls.push('a-italic');
  if (s.underline) cls.push('a-underline');
  if (typeof s.fg === 'number') cls.push(`a-fg${s.fg}`);
  if (typeof s.bg === 'number') cls.push(`a-bg${s.bg}`);
  return {
    cls: cls.join(' '),
    fg: typeof s.fg === 'string' ? s.fg : null,
    bg: typeof s.bg === 'string' ? s.bg : null,
  };
}

/**
 * Where the escape sequence starting at `i` (an ESC) ends: the index
 * after it, -1 if the text ends first; and its SGR parameters when it is
 * one.
 */
function sequence(t, i) {
  const kind = t[i + 1];
  if (kind === undefined) return { end: -1 };
  if (kind === '[') {
    let j = i + 2;
    while (j < t.length && t.charCodeAt(j) >= 0x30 && t.charCodeAt(j) <= 0x3f) j += 1;
    const params = t.slice(i + 2, j);
    let k = j;
    while (k < t.length && t.charCodeAt(k) >= 0x20 && t.charCodeAt(k) <= 0x2f) k += 1;
    if (k >= t.length) return { end: -1 };
    const final = t.charCodeAt(k);
    // A byte that is no final one ends a broken sequence there.
    if (final < 0x40 || final > 0x7e) return { end: k };
    const sgr = t[k] === 'm' && k === j && /^[0-9;:]*$/.test(params) ? params : null;
    return { end: k + 1, sgr };
  }
  if (kind === ']' || kind === 'P' || kind === '_' || kind === '^' || kind === 'X') {
    // A string: up to BEL (OSC) or ST (ESC \).
    for (let j = i + 2; j < t.length; j += 1) {
      if (t[j] === '\x07' && kind === ']') return { end: j + 1 };
      if (t[j] === ESC) return t[j + 1] === undefined ? { end: -1 } : { end: t[j + 1] === '\\' ? j + 2 : j };
    }
    return { end: -1 };
  }
  // ESC, intermediates, one final byte (charset choice, keypad modes, …).
  let j = i + 1;
  while (j < t.length && t.charCodeAt(j) >= 0x20 && t.charCodeAt(j) <= 0x2f) j += 1;
  return j < t.length ? { end: j + 1 } : { end: -1 };
}

/** Control characters shown as nothing: all but tab, newline, return. */
const DROPPED = /[\x00-\x08\x0b\x0c\x0e-\x1a\x1c-\x1f\x7f\x80-\x9f]/g;

/** One stream's reader: its current style and any sequence cut in two. */
export class Ansi {
  constructor() {
    this.held = '';
    this.style = plain();
  }

  /**
   * The next piece of output → `[{ text, cls, fg, bg }]`, consecutive
   * text of one style together; nothing of an escape sequence in `text`.
   */
  feed(chunk) {
    const t = this.held + chunk;
    this.held = '';
    const out = [];
    const emit = (text) => {
      const clean = text.replace(DROPPED, '');
      if (!clean) return;
      const st = styleOf(this.style);
      const last = out[out.length - 1];
      if (last && last.cls === st.cls && last.fg === st.fg && last.bg === st.bg) last.text += clean;
      else out.push({ text: clean, ...st });
    };
    let from = 0;
    for (let i = t.indexOf(ESC); i >= 0; i = t.indexOf(ESC, from)) {
      emit(t.slice(from, i));
      const { end, sgr } = sequence(t, i);
      if (end < 0) {
        const rest = t.slice(i);
        // Held for the next piece, unless no terminal would send that much.
        this.held = rest.length <= MAX_HELD ? rest : '';
        return out;
      }
      if (sgr !== null && sgr !== undefined) applySgr(this.style, sgr);
      from = end;
    }
    emit(t.slice(from));
    return out;
  }
}
