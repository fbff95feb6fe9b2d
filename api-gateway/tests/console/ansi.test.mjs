// Job output's escape sequences (console/ansi.js) without a browser:
// colours and weights become styles, everything else a terminal would act
// on is dropped, and a sequence cut between two pieces of output is held.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { Ansi, xterm256 } from '../../console/ansi.js';

const E = '\x1b';
const texts = (segs) => segs.map((s) => s.text).join('');

test('the 16 colours and bold become classes; a reset ends them', () => {
  const segs = new Ansi().feed(`${E}[31mred${E}[0m plain ${E}[1;92mbold green${E}[m end`);
  assert.deepEqual(segs, [
    { text: 'red', cls: 'a-fg1', fg: null, bg: null },
    { text: ' plain ', cls: '', fg: null, bg: null },
    { text: 'bold green', cls: 'a-bold a-fg10', fg: null, bg: null },
    { text: ' end', cls: '', fg: null, bg: null },
  ]);
});

test('256 colours and true colour become rgb(), in the ; and : forms', () => {
  const a = new Ansi();
  assert.deepEqual(a.feed(`${E}[38;5;196mx`), [{ text: 'x', cls: '', fg: 'rgb(255, 0, 0)', bg: null }]);
  assert.deepEqual(a.feed(`${E}[48;2;1;2;3;4my`), [{ text: 'y', cls: 'a-underline', fg: 'rgb(255, 0, 0)', bg: 'rgb(1, 2, 3)' }]);
  assert.deepEqual(a.feed(`${E}[0;38:2::10:20:30mz`), [{ text: 'z', cls: '', fg: 'rgb(10, 20, 30)', bg: null }]);
  assert.deepEqual(a.feed(`${E}[38;5;3mw`), [{ text: 'w', cls: 'a-fg3', fg: null, bg: null }]);
  assert.deepEqual(xterm256(232), [8, 8, 8]);
  assert.deepEqual(xterm256(21), [0, 0, 255]);
  // Out of range: no colour, no throw.
  assert.deepEqual(new Ansi().feed(`${E}[38;5;300mv`), [{ text: 'v', cls: '', fg: null, bg: null }]);
});

test('every other sequence and control character is dropped, never acted on', () => {
  const input = [
    `${E}]0;a title${'\x07'}`, // window title (OSC … BEL)
    `${E}]8;;http://x${E}\\link${E}]8;;${E}\\`, // hyperlink (OSC … ST)
    `${E}[2J${E}[H`, // clear the screen, cursor home
    `${E}[6n`, // a device status query
    `${E}(B`, // a charset choice
    `${E}P+q${E}\\`, // a device control string
    `a\x00b\x07c\x08d\x7fe\x9bf`, // NUL, BEL, BS, DEL, C1 CSI
    '\ttab\nline\r\n',
  ].join('');
  const segs = new Ansi().feed(input);
  assert.equal(texts(segs), 'linkabcdef\ttab\nline\r\n');
  assert.ok(segs.every((s) => s.cls === '' && s.fg === null));
  // A colour inside a private sequence is no colour.
  assert.deepEqual(new Ansi().feed(`${E}[?31mq`), [{ text: 'q', cls: '', fg: null, bg: null }]);
});

test('a sequence cut between two pieces is held, then applied', () => {
  const a = new Ansi();
  assert.deepEqual(a.feed(`one ${E}[3`), [{ text: 'one ', cls: '', fg: null, bg: null }]);
  assert.deepEqual(a.feed('2mtwo'), [{ text: 'two', cls: 'a-fg2', fg: null, bg: null }]);
  assert.deepEqual(a.feed(E), []);
  assert.deepEqual(a.feed(']0;t'), []);
  assert.deepEqual(a.feed(`itle\x07three`), [{ text: 'three', cls: 'a-fg2', fg: null, bg: null }]);
  // What no terminal would send is not held forever.
  const b = new Ansi();
  b.feed(`${E}]${'x'.repeat(5000)}`);
  assert.equal(b.held, '');
  assert.equal(texts(b.feed('after')), 'after');
});
