// The refresh cycle a tab shares with the others: started when its panel
// is shown, stopped when it is hidden or the key signs out, and at most
// one timer pending, so a refresh asked for by hand never doubles the
// automatic one. It touches no DOM (what to wait for is the caller's
// `every`), so it is tested in node (tests/console/poll.test.mjs).

export class Poller {
  /**
   * `task()`: one refresh (it calls `schedule()` again when it is done);
   * `every()`: seconds until the next one, or 0 for none for now (asked
   * at each `schedule()`, so it can depend on what the last refresh saw).
   */
  constructor(task, every) {
    this.task = task;
    this.every = every;
    this.active = false;
    this.timer = null;
  }

  /** The panel is shown: refresh now (`now`) or at the next tick. */
  start({ now }) {
    this.active = true;
    if (now) this.task();
    else this.schedule();
  }

  /** The panel is hidden or gone: nothing runs until the next start. */
  stop() {
    this.active = false;
    this.cancel();
  }

  /** Drops the pending refresh, if any (a refresh is starting anyway). */
  cancel() {
    clearTimeout(this.timer);
    this.timer = null;
  }

  /** Sets the next refresh per `every()`; none while stopped. */
  schedule() {
    this.cancel();
    if (!this.active) return;
    const seconds = this.every();
    if (!seconds) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.task();
    }, seconds * 1000);
  }
}
