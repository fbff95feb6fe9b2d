// The helper's verdict before an act: `DELETE`/`PATCH /api/ps` with
// `dry_run: true` touch nothing and say whether the act would be allowed
// and under which rule, so the console can refuse to offer what would be
// refused and say why before a confirmation, not after. A gateway that
// does not know `dry_run` (it refuses the member, 400, or the route is
// not there) means "unknown": everything is offered as before. No DOM:
// tested in node (tests/console/verdict.test.mjs).

/** What each built-in protection means, in words. */
const BUILTIN = {
  'builtin:pid<=1': 'init (pid 1) is never acted on',
  'builtin:negative-pid': 'a process group is never acted on',
  'builtin:kernel-thread': 'kernel threads are never acted on',
  'builtin:self': 'the helper never acts on itself',
  'builtin:gateway': 'the helper never acts on the gateway',
  'builtin:ancestor': 'the helper never acts on an ancestor of itself or of the gateway',
  'builtin:other-key-job': 'the process belongs to a job another API key started',
};

/**
 * A refusal's rule as a sentence. `policy` is whoami's `policy` member
 * (or null): its `signal_rules`/`renice_rules` say whose processes the
 * key may act on.
 */
export function because(rule, kind, policy) {
  if (BUILTIN[rule]) return `${BUILTIN[rule]} (${rule})`;
  const act = kind === 'signal' ? 'signal' : 'renice';
  const rules = policy && Array.isArray(policy[`${act}_rules`]) ? policy[`${act}_rules`] : [];
  const whose = rules.length ? `; this key may ${act} only: ${rules.join('; ')}` : '';
  switch (rule) {
    case 'signal.owners':
    case 'renice.owners':
      return `the policy does not let this key ${act} this owner's processes (${rule}${whose})`;
    case 'signal.names':
    case 'renice.names':
      return `the policy lists other process names (${rule}${whose})`;
    case 'signal.signals':
      return `the policy does not allow this signal (${rule})`;
    case 'renice.min_nice':
      return `the policy sets a floor under the nice value (${rule})`;
    default:
      return `the helper's policy refuses it (${rule || 'no rule named'})`;
  }
}

/** Which of the acts the gateway can dry-run, from its OpenAPI document. */
export function dryRunIn(doc) {
  const members = (method) => {
    const op = doc && doc.paths && doc.paths['/api/ps'] && doc.paths['/api/ps'][method];
    let schema = op && op.requestBody && op.requestBody.content
      && op.requestBody.content['application/json'] && op.requestBody.content['application/json'].schema;
    const ref = schema && schema.$ref;
    if (typeof ref === 'string' && ref.startsWith('#/components/schemas/')) {
      schema = doc.components && doc.components.schemas && doc.components.schemas[ref.slice(21)];
    }
    // Named anywhere in the body's schema (properties, allOf, oneOf).
    return Boolean(schema) && /"dry_run"\s*:/.test(JSON.stringify(schema));
  };
  return { signal: members('delete'), renice: members('patch') };
}

/** The request that asks: the act's body with `dry_run`. */
export function dryRunRequest(kind, p, value) {
  const body = { pid: p.pid, start_time: p.start_time, dry_run: true };
  if (kind === 'signal') body.signal = value;
  else body.priority = value;
  return { method: kind === 'signal' ? 'DELETE' : 'PATCH', path: '/api/ps', body };
}

/**
 * The verdicts of one key: `ask()` resolves to `{ verdict, rule }`, or
 * null when it cannot be known (no dry run here, a network error). One
 * answer per process, act and value is kept until `forget()`.
 */
export class Verdicts {
  /** `send(method, path, body)`: the API client's; `can`: dryRunIn's answer. */
  constructor(send, can) {
    this.send = send;
    this.can = { ...can };
    this.cache = new Map();
  }

  async ask(kind, p, value) {
    if (!this.can[kind] || !Number.isInteger(p.start_time)) return null;
    const key = `${kind}:${p.pid}:${p.start_time}:${value}`;
    if (!this.cache.has(key)) {
      const { method, path, body } = dryRunRequest(kind, p, value);
      this.cache.set(key, this.send(method, path, body).then((r) => {
        if (!r || r.dry_run !== true || (r.verdict !== 'allow' && r.verdict !== 'deny')) return null;
        return { verdict: r.verdict, rule: r.rule || null };
      }, (e) => {
        this.cache.delete(key);
        // This gateway does not dry-run after all: stop asking.
        if (e.code === 'unknown_field' || e.code === 'route_not_found' || e.status === 405) this.can[kind] = false;
        return null;
      }));
    }
    return this.cache.get(key);
  }

  /** A new listing: processes and policy may have changed. */
  forget() {
    this.cache.clear();
  }
}
