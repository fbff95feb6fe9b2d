// The helper's verdicts before an act (console/verdict.js) without a
// browser: the dry-run request, which gateways can answer it (from their
// OpenAPI document), the refusal as a sentence, and the asking: once per
// process, act and value, and "unknown" — everything offered — when the
// gateway does not dry-run.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  because, dryRunIn, dryRunRequest, Verdicts,
} from '../../console/verdict.js';

const P = { pid: 4321, start_time: 777, name: 'sleep' };

test('the dry run is the act with dry_run: the same pid, start time and value', () => {
  assert.deepEqual(dryRunRequest('signal', P, 'TERM'), {
    method: 'DELETE', path: '/api/ps', body: { pid: 4321, start_time: 777, dry_run: true, signal: 'TERM' },
  });
  assert.deepEqual(dryRunRequest('renice', P, 5), {
    method: 'PATCH', path: '/api/ps', body: { pid: 4321, start_time: 777, dry_run: true, priority: 5 },
  });
});

test('a gateway dry-runs an act only if its document says the body takes dry_run', () => {
  const doc = (props) => ({
    paths: { '/api/ps': { delete: { requestBody: { content: { 'application/json': { schema: { $ref: '#/components/schemas/SignalRequest' } } } } } } },
    components: { schemas: { SignalRequest: { properties: props } } },
  });
  assert.deepEqual(dryRunIn(doc({ pid: {}, dry_run: { type: 'boolean' } })), { signal: true, renice: false });
  assert.deepEqual(dryRunIn(doc({ pid: {} })), { signal: false, renice: false });
  assert.deepEqual(dryRunIn(null), { signal: false, renice: false });
  const inline = { paths: { '/api/ps': { patch: { requestBody: { content: { 'application/json': { schema: { allOf: [{ properties: { dry_run: { type: 'boolean' } } }] } } } } } } } };
  assert.deepEqual(dryRunIn(inline), { signal: false, renice: true });
  // A description that mentions the word is no member.
  assert.deepEqual(dryRunIn(doc({ pid: { description: 'see dry_run' } })), { signal: false, renice: false });
  assert.deepEqual(dryRunIn({}), { signal: false, renice: false });
});

test('a refusal reads as a sentence naming the rule, with whose processes the key may touch', () => {
  assert.equal(because('builtin:pid<=1', 'signal', null), 'init (pid 1) is never acted on (builtin:pid<=1)');
  assert.match(because('builtin:kernel-thread', 'renice', null), /^kernel threads are never acted on/);
  assert.match(because('builtin:ancestor', 'signal', null), /ancestor/);
  const policy = { signal_rules: ['owners = ["@jobs"]'], renice_rules: [] };
  assert.equal(because('signal.owners', 'signal', policy),
    'the policy does not let this key signal this owner\'s processes (signal.owners; this key may signal only: owners = ["@jobs"])');
  assert.equal(because('renice.owners', 'renice', policy),
    'the policy does not let this key renice this owner\'s processes (renice.owners)');
  assert.match(because('renice.min_nice', 'renice', null), /floor/);
  assert.match(because('something.new', 'signal', null), /\(something\.new\)/);
});

test('asking: one request per process, act and value; deny and allow kept; forget() asks again', async () => {
  const sent = [];
  const send = async (method, path, body) => {
    sent.push([method, body.signal ?? body.priority]);
    return { result: 'ok', dry_run: true, pid: body.pid, start_time: body.start_time, verdict: body.signal === 'KILL' ? 'deny' : 'allow', rule: 'signal.owners' };
  };
  const v = new Verdicts(send, { signal: true, renice: false });
  assert.deepEqual(await v.ask('signal', P, 'TERM'), { verdict: 'allow', rule: 'signal.owners' });
  assert.deepEqual(await v.ask('signal', P, 'TERM'), { verdict: 'allow', rule: 'signal.owners' });
  assert.deepEqual(await v.ask('signal', P, 'KILL'), { verdict: 'deny', rule: 'signal.owners' });
  assert.equal(await v.ask('renice', P, 0), null, 'no dry run of renice here: unknown');
  assert.equal(await v.ask('signal', { pid: 5 }, 'TERM'), null, 'no start time: unknown');
  assert.deepEqual(sent, [['DELETE', 'TERM'], ['DELETE', 'KILL']]);
  v.forget();
  await v.ask('signal', P, 'TERM');
  assert.equal(sent.length, 3);
});

test('a gateway that refuses dry_run is asked no more; an answer without dry_run is no verdict', async () => {
  let calls = 0;
  const refuse = async () => {
    calls += 1;
    throw Object.assign(new Error('unknown field `dry_run`'), { status: 400, code: 'unknown_field' });
  };
  const v = new Verdicts(refuse, { signal: true, renice: true });
  assert.equal(await v.ask('signal', P, 'TERM'), null);
  assert.equal(await v.ask('signal', P, 'HUP'), null);
  assert.equal(calls, 1);
  assert.equal(v.can.signal, false);
  // A process that exited is not a gateway without dry runs.
  const gone = new Verdicts(async () => {
    throw Object.assign(new Error('gone'), { status: 404, code: 'no_such_process' });
  }, { signal: true });
  assert.equal(await gone.ask('signal', P, 'TERM'), null);
  assert.equal(gone.can.signal, true);
  // An answer that acted (no dry_run member) is never taken for a verdict.
  const acted = new Verdicts(async () => ({ result: 'ok', pid: 1, signal: 'TERM' }), { signal: true });
  assert.equal(await acted.ask('signal', P, 'TERM'), null);
});
