// The console's formatting of a process another key's job owns
// (console/format.js), without a browser: the API sends its withheld
// fields as null with a `withheld` reason, and the table says so instead
// of showing an empty command.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { commandLine, withheld } from '../../console/format.js';

test('a withheld command line says why, a readable one is shown', () => {
  const other = { pid: 7, name: null, cmdline: null, withheld: { name: 'another_key_job', cmdline: 'another_key_job' } };
  assert.equal(commandLine(other), 'withheld: another key’s job');
  assert.equal(withheld(other, 'name'), 'withheld: another key’s job');
  assert.equal(withheld(other, 'exe'), '');
  assert.equal(commandLine({ pid: 8, name: 'sh', cmdline: ['sh', '-c', 'true'] }), 'sh -c true');
  assert.equal(commandLine({ pid: 9, name: 'kthreadd', cmdline: [] }), '[kthreadd]');
  assert.equal(withheld({ pid: 10, cmdline: null, withheld: { cmdline: 'new_reason' } }, 'cmdline'), 'withheld: new_reason');
});

test('another user\'s private field says whether the read policy or a missing reader kept it', () => {
  const p = { pid: 11, exe: null, cwd: null, withheld: { exe: 'read_policy', cwd: 'reader_unavailable' } };
  assert.equal(withheld(p, 'exe'), 'withheld: the read policy does not allow it');
  assert.equal(withheld(p, 'cwd'), 'unknown: no reader answered');
});
