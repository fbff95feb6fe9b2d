// The detail pane's small charts: one series over the last minutes as an
// SVG line (series.js computes the geometry), with its latest and highest
// values in words beside it, for screen readers too. SVG made through the
// DOM, attributes set by name: nothing parsed.

import { el } from './dom.js';
import * as fmt from './format.js';
import { ceiling, points, SPAN_MS } from './series.js';

const SVG = 'http://www.w3.org/2000/svg';
const W = 240;
const H = 48;

function svg(tag, attrs) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  return node;
}

/**
 * A chart of `values` at times `t`: `title` ("CPU %"), `show` formats a
 * value, `scale` the options of series.js's `ceiling`.
 */
export function chart(key, title, t, values, { show, scale }) {
  const known = values.filter((v) => Number.isFinite(v));
  const max = known.length ? Math.max(...known) : 0;
  const top = ceiling(max, scale);
  const last = known.length ? known[known.length - 1] : null;
  // The chart spans what has been seen, up to SPAN_MS, and ends at the
  // latest sample: a pane opened a few refreshes after sign-in is not a
  // flat line squeezed to one side.
  const now = t.length ? t[t.length - 1] : 0;
  const span = t.length ? Math.min(SPAN_MS, Math.max(now - t[0], 1000)) : SPAN_MS;
  const line = points(t, values, {
    now, span, w: W, h: H, top,
  });
  const words = known.length
    ? `now ${show(last)}, highest ${show(max)} over ${fmt.duration(span)}`
    : 'no sample yet';
  const pic = svg('svg', {
    viewBox: `0 0 ${W} ${H}`, width: W, height: H, class: 'spark', 'aria-hidden': 'true',
  });
  pic.append(svg('line', {
    x1: 0, y1: H - 0.5, x2: W, y2: H - 0.5, class: 'axis',
  }));
  if (line) {
    const xy = line.split(' ');
    const [x0] = xy[0].split(',');
    const [x1, y1] = xy[xy.length - 1].split(',');
    pic.append(svg('polygon', { points: `${x0},${H} ${line} ${x1},${H}`, class: 'area' }));
    pic.append(svg('polyline', { points: line, class: 'line' }));
    pic.append(svg('circle', {
      cx: x1, cy: y1, r: 2.5, class: 'dot',
    }));
  }
  return el('figure', { class: 'chart', dataset: { chart: key, samples: known.length } },
    el('figcaption', {},
      el('strong', { text: title }), ' ',
      el('span', { class: 'muted', text: words }),
      el('span', { class: 'scale muted', text: `0 – ${show(top)}` })),
    pic);
}
