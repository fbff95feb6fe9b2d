// The console's refresh cycle (console/poll.js) without a browser: a start
// refreshes now or at the next tick, a stop leaves nothing pending, and
// there is never more than one timer. Time is a fake clock of this file's
// own (node's mocked timers are still experimental in node 20).

import assert from 'node:assert/strict';
import { afterEach, beforeEach, test } from 'node:test';

import { Poller } from '../../console/poll.js';

/** setTimeout and clearTimeout on a clock that moves only by `tick`. */
class Clock {
  constructor() {
    this.now = 0;
    this.next = 1;
    this.timers = new Map();
  }

  install() {
    this.saved = [globalThis.setTimeout, globalThis.clearTimeout];
    globalThis.setTimeout = (fn, ms) => {
      const id = this.next;
      this.next += 1;
      this.timers.set(id, { fn, at: this.now + ms });
      return id;
    };
    globalThis.clearTimeout = (id) => this.timers.delete(id);
  }

  uninstall() {
    [globalThis.setTimeout, globalThis.clearTimeout] = this.saved;
  }

  /** Moves time on by `ms`, running each timer when its time comes. */
  tick(ms) {
    const end = this.now + ms;
    for (;;) {
      let due = null;
      for (const [id, t] of this.timers) {
        if (t.at <= end && (due === null || t.at < due[1].at)) due = [id, t];
      }
      if (due === null) break;
      this.timers.delete(due[0]);
      this.now = due[1].at;
      due[1].fn();
    }
    this.now = end;
  }
}

let clock;
beforeEach(() => {
  clock = new Clock();
  clock.install();
});
afterEach(() => clock.uninstall());

/** A poller whose task counts its runs and schedules again, as the tabs do. */
function counted(every) {
  const p = new Poller(() => {
    p.runs += 1;
    p.schedule();
  }, every);
  p.runs = 0;
  return p;
}

test('started now it runs at once, then every interval until stopped', () => {
  const p = counted(() => 2);
  p.start({ now: true });
  assert.equal(p.runs, 1);
  clock.tick(1999);
  assert.equal(p.runs, 1);
  clock.tick(1);
  assert.equal(p.runs, 2);
  clock.tick(4000);
  assert.equal(p.runs, 4);
  p.stop();
  assert.equal(clock.timers.size, 0, 'a stop leaves no timer');
  clock.tick(60000);
  assert.equal(p.runs, 4, 'nothing runs once stopped');
  p.schedule();
  assert.equal(clock.timers.size, 0, 'a stopped poller schedules nothing');
});

test('started later it waits one interval; every() of 0 schedules nothing', () => {
  let seconds = 5;
  const p = counted(() => seconds);
  p.start({ now: false });
  assert.equal(p.runs, 0);
  clock.tick(5000);
  assert.equal(p.runs, 1);
  seconds = 0;
  clock.tick(5000);
  assert.equal(p.runs, 2, 'the timer set before every() changed still runs');
  assert.equal(clock.timers.size, 0, 'then none is set');
  seconds = 1;
  p.schedule();
  clock.tick(1000);
  assert.equal(p.runs, 3, 'scheduled again, it runs again');
  p.stop();
});

test('a refresh by hand replaces the pending one: never two timers', () => {
  const p = counted(() => 3);
  p.start({ now: false });
  clock.tick(2000);
  p.cancel();
  p.task();
  assert.equal(p.runs, 1);
  for (let i = 0; i < 5; i += 1) p.schedule();
  assert.equal(clock.timers.size, 1);
  clock.tick(2999);
  assert.equal(p.runs, 1, 'the old timer was dropped');
  clock.tick(1);
  assert.equal(p.runs, 2, 'one run for five schedules');
  p.stop();
});
