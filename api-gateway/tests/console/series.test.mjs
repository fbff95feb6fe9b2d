// The detail charts' history and geometry (console/series.js) without a
// browser: samples kept per process and start time, bounded in count and
// age, forgotten when the process is; round scales; points in the box.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  ceiling, MAX_SAMPLES, points, Series, SPAN_MS,
} from '../../console/series.js';

const row = (pid, start_time, cpu_percent, rss) => ({
  pid, start_time, cpu_percent, rss,
});

test('each refresh adds a point per process; a reused pid starts afresh; gone ones are forgotten', () => {
  const s = new Series();
  s.add(1000, [row(10, 5, 1.5, 100), row(11, 6, 0, 200)]);
  s.add(2000, [row(10, 5, 3, 150), row(11, 6, null, null)]);
  assert.deepEqual(s.of(10, 5), { t: [1000, 2000], cpu: [1.5, 3], rss: [100, 150] });
  assert.deepEqual(s.of(11, 6).cpu, [0, null]);
  // Pid 10 now names another process (another start time); 11 has exited.
  s.add(3000, [row(10, 99, 7, 1)]);
  assert.deepEqual(s.of(10, 99), { t: [3000], cpu: [7], rss: [1] });
  assert.deepEqual(s.of(10, 5), { t: [], cpu: [], rss: [] });
  assert.equal(s.byId.size, 1);
});

test('history is bounded: by count and by age', () => {
  const s = new Series();
  for (let i = 0; i < MAX_SAMPLES + 20; i += 1) s.add(i, [row(1, 1, i, i)]);
  assert.equal(s.of(1, 1).t.length, MAX_SAMPLES);
  assert.equal(s.of(1, 1).cpu[0], 20);
  const old = new Series();
  old.add(0, [row(1, 1, 1, 1)]);
  old.add(SPAN_MS / 2, [row(1, 1, 2, 2)]);
  old.add(SPAN_MS + 1, [row(1, 1, 3, 3)]);
  assert.deepEqual(old.of(1, 1).cpu, [2, 3]);
});

test('scales end on round numbers, never below the floor', () => {
  assert.equal(ceiling(0), 1);
  assert.equal(ceiling(0.3), 1);
  assert.equal(ceiling(1.5), 2);
  assert.equal(ceiling(3), 5);
  assert.equal(ceiling(7.2), 10);
  assert.equal(ceiling(100), 100);
  assert.equal(ceiling(180), 200);
  assert.equal(ceiling(0, { floor: 5 }), 5);
  assert.equal(ceiling(3000, { binary: true, floor: 1024 }), 4096);
  assert.equal(ceiling(10, { binary: true, floor: 1024 }), 1024);
});

test('points: now at the right edge, the span at the left, the top value at the top, gaps skipped', () => {
  const now = 100_000;
  const span = 60_000;
  const p = points([40_000, 70_000, 85_000, 100_000], [50, null, 100, 200], {
    now, span, w: 120, h: 40, top: 100,
  });
  // 40 s is the left edge, 100 s the right; 200 is clipped to the top.
  assert.equal(p, '0.0,20.0 90.0,0.0 120.0,0.0');
  assert.equal(points([], [], { now, w: 10, h: 10, top: 1 }), '');
  // Older than the span: pinned to the left edge, not drawn outside.
  assert.equal(points([0], [0], { now, span, w: 120, h: 40, top: 1 }), '0.0,40.0');
});
