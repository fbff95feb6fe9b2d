// The console's event-stream reader (console/sse.js) without a browser:
// the parser on text cut anywhere, and follow() against a local server
// that drops the first connection — it must resume with Last-Event-ID and
// stop at the exit event.

import assert from 'node:assert/strict';
import http from 'node:http';
import { test } from 'node:test';

import { EventParser, follow } from '../../console/sse.js';

test('events parse the same however the text is cut', () => {
  const text = 'event: stdout\r\nid: 2.0\r\ndata: {"text":"1\\n"}\r\n\r\n'
    + ': ping\n\n'
    + 'data: no type\rid: bad\0id\r\r'
    + 'event: exit\nid: 6.0\ndata: {"a":\ndata: 1}\n\n';
  const want = [
    { type: 'stdout', data: '{"text":"1\\n"}', id: '2.0' },
    { type: 'message', data: 'no type', id: '2.0' },
    { type: 'exit', data: '{"a":\n1}', id: '6.0' },
  ];
  for (const size of [1, 2, 3, 7, text.length]) {
    const got = [];
    const p = new EventParser((e) => got.push(e));
    for (let i = 0; i < text.length; i += size) p.feed(text.slice(i, i + size));
    assert.deepEqual(got, want, `pieces of ${size}`);
  }
});

test('follow() resumes after a drop with Last-Event-ID and stops at exit', async () => {
  const asked = [];
  const server = http.createServer((req, res) => {
    asked.push({ auth: req.headers.authorization, last: req.headers['last-event-id'] || null });
    res.writeHead(200, { 'Content-Type': 'text/event-stream' });
    if (asked.length === 1) {
      res.end('event: stdout\nid: 2.0\ndata: {"text":"1\\n"}\n\n');
      return;
    }
    res.write('event: stdout\nid: 4.0\ndata: {"text":"2\\n"}\n\n');
    res.write('event: exit\nid: 4.0\ndata: {"state":"exited"}\n\n');
    // Left open: the reader must stop by itself at exit.
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${server.address().port}/api/jobs/x/events`;
  const api = { headers: (extra) => ({ Authorization: 'Bearer k', ...extra }), onUnauthorized: null };
  const events = [];
  const errors = [];
  const stop = new AbortController();
  try {
    await follow(api, url, {
      signal: stop.signal,
      onEvent: (e) => events.push([e.type, e.id]),
      onError: (e) => errors.push(e),
    });
  } finally {
    stop.abort();
    server.closeAllConnections();
    server.close();
  }
  assert.deepEqual(errors, []);
  assert.deepEqual(events, [['stdout', '2.0'], ['stdout', '4.0'], ['exit', '4.0']]);
  assert.deepEqual(asked, [{ auth: 'Bearer k', last: null }, { auth: 'Bearer k', last: '2.0' }]);
});

test('follow() reports an error answer once and does not retry it', async () => {
  let n = 0;
  const server = http.createServer((req, res) => {
    n += 1;
    res.writeHead(404, { 'Content-Type': 'application/json' });
    res.end('{"result":"error","message":"no job","code":"no_such_job"}');
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${server.address().port}/e`;
  const errors = [];
  try {
    await follow({ headers: (x) => x, onUnauthorized: null }, url, {
      signal: new AbortController().signal,
      onEvent: () => {},
      onError: (e) => errors.push(e),
    });
  } finally {
    server.close();
  }
  assert.equal(n, 1);
  assert.equal(errors.length, 1);
  assert.equal(errors[0].code, 'no_such_job');
  assert.equal(errors[0].status, 404);
});
