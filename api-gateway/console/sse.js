// Server-Sent Events over fetch(). EventSource cannot send an
// Authorization header, and the key must not go in a URL or a cookie, so
// the stream is read with a ReadableStream reader and parsed here (the
// WHATWG event-stream format). A dropped connection is resumed with
// Last-Event-ID, which the gateway turns into exact byte offsets.

import { ApiFailure } from './api.js';

/** Parses event-stream text fed in pieces; calls `dispatch(event)`. */
export class EventParser {
  constructor(dispatch) {
    this.dispatch = dispatch;
    this.buffer = '';
    this.reset();
    this.lastEventId = '';
  }

  reset() {
    this.type = '';
    this.data = [];
    this.id = null;
  }

  feed(text) {
    this.buffer += text;
    const eol = /\r\n|\r|\n/g;
    let start = 0;
    for (;;) {
      eol.lastIndex = start;
      const m = eol.exec(this.buffer);
      if (!m) break;
      // A lone \r at the end may be the first half of \r\n: wait.
      if (m[0] === '\r' && m.index === this.buffer.length - 1) break;
      this.line(this.buffer.slice(start, m.index));
      start = m.index + m[0].length;
    }
    this.buffer = this.buffer.slice(start);
  }

  line(line) {
    if (line === '') {
      if (this.id !== null) this.lastEventId = this.id;
      if (this.data.length > 0) {
        this.dispatch({
          type: this.type || 'message',
          data: this.data.join('\n'),
          id: this.lastEventId,
        });
      }
      this.reset();
      return;
    }
    if (line.startsWith(':')) return;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') this.type = value;
    else if (field === 'data') this.data.push(value);
    else if (field === 'id' && !value.includes('\0')) this.id = value;
  }
}

const sleep = (ms, signal) =>
  new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => { clearTimeout(t); resolve(); }, { once: true });
  });

/**
 * Follows `path` until an event named `final` arrives or `signal` aborts.
 * Reconnects after a drop (backing off up to 10 s) with Last-Event-ID;
 * an error answer (4xx) ends it with `onError(failure)`.
 */
export async function follow(api, path, { signal, final = 'exit', onEvent, onError, onReconnect }) {
  let lastEventId = '';
  let backoff = 500;
  while (!signal.aborted) {
    let ended = false;
    try {
      const headers = api.headers({ Accept: 'text/event-stream' });
      if (lastEventId) headers['Last-Event-ID'] = lastEventId;
      const res = await fetch(path, {
        headers, cache: 'no-store', credentials: 'omit', referrerPolicy: 'no-referrer', signal,
      });
      if (!res.ok) {
        let body = null;
        try { body = await res.json(); } catch { body = null; }
        const failure = new ApiFailure(res.status, body);
        if (res.status < 500) {
          if (res.status === 401 && api.onUnauthorized) api.onUnauthorized(failure);
          onError(failure);
          return;
        }
        throw failure;
      }
      backoff = 500;
      const parser = new EventParser((event) => {
        lastEventId = event.id;
        if (event.type === final) ended = true;
        onEvent(event);
      });
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        parser.feed(value);
        if (ended) {
          reader.cancel().catch(() => {});
          return;
        }
      }
    } catch (e) {
      if (signal.aborted) return;
      if (!(e instanceof ApiFailure) && e.name !== 'TypeError') {
        onError(e);
        return;
      }
    }
    if (ended || signal.aborted) return;
    if (onReconnect) onReconnect(lastEventId);
    await sleep(backoff, signal);
    backoff = Math.min(backoff * 2, 10000);
  }
}
