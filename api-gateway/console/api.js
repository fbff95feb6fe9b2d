// The API client. The key travels only in the Authorization header and is
// kept only in this tab's sessionStorage: never in a URL, a cookie or the
// origin's persistent storage.

const KEY = 'monitoreo.key';

/** The key of this tab, if signed in. */
export const session = {
  load: () => sessionStorage.getItem(KEY),
  save: (key) => sessionStorage.setItem(KEY, key),
  clear: () => sessionStorage.removeItem(KEY),
};

/** An error answer: HTTP status, the envelope's code, message and rule. */
export class ApiFailure extends Error {
  constructor(status, body) {
    super((body && body.message) || `the gateway answered HTTP ${status}`);
    this.status = status;
    this.code = (body && body.code) || (status === 0 ? 'network' : `http_${status}`);
    this.rule = (body && body.rule) || null;
  }
}

export class Api {
  /**
   * `onUnauthorized(failure)` is called on any 401 (key revoked or
   * expired while signed in).
   */
  constructor(key, onUnauthorized = null) {
    this.key = key;
    this.onUnauthorized = onUnauthorized;
  }

  /** Headers of every request, plus `extra`. */
  headers(extra = {}) {
    return { Authorization: `Bearer ${this.key}`, ...extra };
  }

  /**
   * One request; resolves to the parsed JSON envelope, or with `timed` to
   * `{data, arrived}` where `arrived` is performance.now() when the last
   * byte had arrived. Rejects with ApiFailure.
   */
  async call(method, path, body, { signal, timed } = {}) {
    let res;
    try {
      res = await fetch(path, {
        method,
        headers: this.headers(body === undefined ? {} : { 'Content-Type': 'application/json' }),
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: 'no-store',
        credentials: 'omit',
        referrerPolicy: 'no-referrer',
        signal,
      });
    } catch (e) {
      if (e.name === 'AbortError') throw e;
      throw new ApiFailure(0, { message: 'The gateway did not answer: is it running?' });
    }
    const text = await res.text();
    const arrived = performance.now();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch {
      data = null;
    }
    if (!res.ok) {
      const failure = new ApiFailure(res.status, data);
      if (res.status === 401 && this.onUnauthorized) this.onUnauthorized(failure);
      throw failure;
    }
    return timed ? { data, arrived } : data;
  }

  get(path, opts) {
    return this.call('GET', path, undefined, opts);
  }

  send(method, path, body, opts) {
    return this.call(method, path, body, opts);
  }
}

/** The OpenAPI document (no key needed): field and signal names. */
export async function apiDocument() {
  const res = await fetch('/api/openapi.json', { cache: 'no-store', credentials: 'omit' });
  if (!res.ok) throw new ApiFailure(res.status, null);
  return res.json();
}
