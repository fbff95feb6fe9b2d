// The host header's figures (console/host.js's summary) without a
// browser, from an answer shaped as GET /api/host documents it.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { summary, uptime } from '../../console/host.js';

const GiB = 1024 ** 3;
const HOST = {
  result: 'ok',
  hostname: 'web-1',
  kernel: '6.1.0-18-amd64',
  boot_time: 1_700_000_000,
  uptime: 3 * 86400 + 4 * 3600 + 5 * 60 + 6,
  cpu_count: { logical: 2, physical: 1 },
  cpu_percent: { window: 5, total: 37.5, per_cpu: [25, 50] },
  virtual_memory: {
    total: 8 * GiB, available: 5 * GiB, percent: 37.5, used: 2 * GiB, free: 3 * GiB, active: 0, inactive: 0,
    buffers: 1 * GiB, cached: 2 * GiB, shared: 0, slab: 0,
  },
  swap_memory: { total: 2 * GiB, used: 0.5 * GiB, free: 1.5 * GiB, percent: 25, sin: 0, sout: 0 },
  getloadavg: [0.5, 1.25, 2],
  processes: { total: 1234, running: 3, sleeping: 1200, disk_sleep: 0, stopped: 1, zombie: 0, idle: 30, threads: 4321 },
  disk_usage: [],
  disk_io_counters: {},
  net_io_counters: {},
};

test('uptime reads as htop writes it', () => {
  assert.equal(uptime(59), '00:00:59');
  assert.equal(uptime(86400 + 3661), '1 day, 01:01:01');
  assert.equal(uptime(HOST.uptime), '3 days, 04:05:06');
  assert.equal(uptime(null), '–');
});

test('a bar per CPU, memory split as htop does, swap, load, tasks', () => {
  const s = summary(HOST);
  assert.deepEqual(s.cpus, [
    { label: '0', percent: 25, text: '25.0%' },
    { label: '1', percent: 50, text: '50.0%' },
  ]);
  assert.deepEqual(s.memory.segments.map((x) => [x.cls, x.percent]), [['used', 25], ['buffers', 12.5], ['cache', 25]]);
  assert.equal(s.memory.text, '2.0 GiB / 8.0 GiB');
  assert.equal(s.swap.percent, 25);
  assert.equal(s.swap.text, '512 MiB / 2.0 GiB');
  assert.equal(s.load, '0.50 1.25 2.00');
  assert.equal(s.tasks, '1,234, 4,321 thr; 3 running');
  assert.equal(s.host, 'web-1 · Linux 6.1.0-18-amd64');
});

test('missing or odd figures never break the header', () => {
  const s = summary({ result: 'ok' });
  assert.deepEqual(s.cpus, []);
  assert.equal(s.swap.text, 'none');
  assert.equal(s.load, '–');
  const over = summary({ ...HOST, cpu_percent: { per_cpu: [140, -3] } });
  assert.deepEqual(over.cpus.map((c) => c.percent), [100, 0]);
});
