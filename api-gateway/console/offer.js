// The detail pane's act buttons, honest: before they are pressed, the
// helper's verdict on the shown process (verdict.js) for the default
// signal and for a renice within the key's range. A refused act's button
// stays in place but is marked disabled (aria-disabled, so it can still
// be focused), with the rule in its title and in a line the button is
// described by, so hovering and focusing both say why. Unknown verdicts
// (a gateway without dry runs) leave every button as it was.

import { $ } from './dom.js';
import { because } from './verdict.js';

const KINDS = ['signal', 'renice'];
/** Rules about the value chosen, not about the process. */
const VALUE_RULES = new Set(['signal.signals', 'renice.min_nice']);

export class Offer {
  /**
   * `verdicts`: a Verdicts (or null); `policy`: whoami's; `signal`: the
   * default signal's name; `nice(p)`: the value a renice is judged at.
   */
  constructor(verdicts, { policy, signal, nice }) {
    this.verdicts = verdicts;
    this.policy = policy;
    this.signal = signal;
    this.nice = nice;
    this.shown = null;
    this.refused = {};
  }

  /** Asks ahead for a selected row, so the pane and dialog answer at once. */
  prefetch(p) {
    if (!this.verdicts || !p) return;
    for (const kind of KINDS) this.verdicts.ask(kind, p, this.value(kind, p));
  }

  value(kind, p) {
    return kind === 'signal' ? this.signal : this.nice(p);
  }

  /** The pane shows `p` (null: none): its buttons as the helper would judge them. */
  async show(p) {
    this.shown = p;
    this.refused = {};
    this.paint();
    delete $('act-why').dataset.judged;
    if (!this.verdicts || !p) return;
    const answers = await Promise.all(KINDS.map((kind) => this.verdicts.ask(kind, p, this.value(kind, p))));
    if (this.shown !== p) return;
    KINDS.forEach((kind, i) => {
      const v = answers[i];
      // A refusal of the value alone (this signal, this nice) leaves the
      // others to choose in the dialog, which judges each.
      if (v && v.verdict === 'deny' && !VALUE_RULES.has(v.rule)) this.refused[kind] = because(v.rule, kind, this.policy);
    });
    this.paint();
    // Which process the buttons now judge (the browser test waits on it).
    $('act-why').dataset.judged = String(p.pid);
  }

  /** Why `kind` is refused on the shown process, or '' when it is not (or unknown). */
  why(kind) {
    return this.refused[kind] || '';
  }

  paint() {
    const lines = [];
    for (const kind of KINDS) {
      const button = $(`act-${kind}`);
      const why = this.why(kind);
      const what = kind === 'signal' ? `Sending SIG${this.signal}` : 'Renicing';
      if (why) {
        button.setAttribute('aria-disabled', 'true');
        button.setAttribute('aria-describedby', 'act-why');
        button.title = `${what} is refused: ${why}`;
        lines.push(`${what} is refused: ${why}.`);
      } else {
        button.removeAttribute('aria-disabled');
        button.removeAttribute('aria-describedby');
        button.removeAttribute('title');
      }
    }
    $('act-why').textContent = lines.join(' ');
  }
}
