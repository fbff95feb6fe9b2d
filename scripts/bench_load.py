#!/usr/bin/env python3
"""HTTP parts of scripts/bench: field list, a job to signal, round trips, load.

Standard library only. Every subcommand talks to one gateway at URL with the
bearer KEY and prints its result on stdout (notes go to stderr):

  fields URL KEY PID          every process field the gateway serves, comma-
                              separated: taken from /api/openapi.json (a
                              `fields` enum if the document has one, else the
                              Process schema's properties), minus `environ`,
                              each one probed on GET /api/ps/PID
  job URL KEY TIMEOUT_S [CMD] POST /api/ps `exec sleep` (or CMD) as a job:
                              "PID START_TIME"
  rtt URL KEY COUNT PID START median round trip in ms of GET /healthz and of
                              DELETE /api/ps {"pid", "signal": "CONT",
                              "start_time"}, each on its own keep-alive
                              connection, COUNT of each after a warm-up,
                              alternated in blocks: "HEALTHZ_MS DELETE_MS"
  group URL KEY ROUNDS PID    PID is a job's shell whose 100 children sleep:
                              median ms of one plan + execute of CONT on all
                              of them (POST /api/actions/plan, then
                              /api/actions/{id}) and of 100 single DELETE
                              /api/ps CONT round trips, on one keep-alive
                              connection, ROUNDS of each, alternated:
                              "PLAN_MS SINGLES_MS"
  rps URL KEY PATH CONNS SECS requests/s of GET PATH over CONNS keep-alive
                              connections (one thread each) starting requests
                              for SECS seconds; each connection finishes its
                              last one, and the count is divided by the time
                              until all are done (so slow requests in flight
                              at the end are not lost, unlike wrk's window)
"""

import http.client
import json
import statistics
import sys
import threading
import time
import urllib.parse

BLOCK = 50
WARMUP = 50


class Client:
    """One keep-alive connection; every answer is read to its end."""

    def __init__(self, url, key):
        u = urllib.parse.urlsplit(url)
        self.conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
        self.headers = {"Authorization": f"Bearer {key}"}

    def request(self, method, path, body=None):
        headers = dict(self.headers)
        if body is not None:
            body = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        self.conn.request(method, path, body=body, headers=headers)
        r = self.conn.getresponse()
        return r.status, r.read()

    def expect(self, method, path, body=None, ok=(200,)):
        status, data = self.request(method, path, body)
        if status not in ok:
            sys.exit(f"bench_load: {method} {path} answered {status}: {data[:300]!r}")
        return data


def field_names(doc):
    """A `fields` enum anywhere in the document, else Process's properties."""
    def enums(node):
        if isinstance(node, dict):
            if node.get("name") == "fields":
                s = node.get("schema", {})
                e = s.get("enum") or s.get("items", {}).get("enum")
                if e:
                    yield e
            for v in node.values():
                yield from enums(v)
        elif isinstance(node, list):
            for v in node:
                yield from enums(v)

    for e in enums(doc):
        return list(e), "the fields enum"
    schemas = doc.get("components", {}).get("schemas", {})
    for name, schema in schemas.items():
        if name.lower() == "process" and "properties" in schema:
            return list(schema["properties"]), f"the {name} schema's properties"
    sys.exit("bench_load: /api/openapi.json has neither a fields enum nor a Process schema")


def cmd_fields(url, key, pid):
    c = Client(url, key)
    names, source = field_names(json.loads(c.expect("GET", "/api/openapi.json")))
    served, refused = [], []
    for f in names:
        if f == "environ":
            continue
        status, _ = c.request("GET", f"/api/ps/{pid}?fields={urllib.parse.quote(f)}")
        if status == 200:
            served.append(f)
        elif status == 400:
            refused.append(f)
        else:
            sys.exit(f"bench_load: probing field {f} answered {status}")
    print(f"bench: fields from {source} of /api/openapi.json: {len(served)} served",
          file=sys.stderr)
    if refused:
        print(f"bench: NOTE documented but refused by ?fields= (left out): {','.join(refused)}",
              file=sys.stderr)
    print(",".join(served))


def cmd_job(url, key, timeout_s, cmd=None):
    c = Client(url, key)
    body = {"cmd": cmd or f"exec sleep {timeout_s}", "timeout_s": int(timeout_s)}
    a = json.loads(c.expect("POST", "/api/ps", body, ok=(202,)))
    p = a["process"]
    print(p["pid"], p["start_time"])


def cmd_rtt(url, key, count, pid, start):
    health, delete = Client(url, key), Client(url, key)
    body = {"pid": int(pid), "signal": "CONT", "start_time": int(start)}
    h, d = [], []
    for i in range(WARMUP + count):
        if i < WARMUP or (i - WARMUP) // BLOCK % 2 == 0:
            order = ((health, "GET", "/healthz", None, h), (delete, "DELETE", "/api/ps", body, d))
        else:
            order = ((delete, "DELETE", "/api/ps", body, d), (health, "GET", "/healthz", None, h))
        for client, method, path, b, out in order:
            t = time.perf_counter()
            client.expect(method, path, b)
            if i >= WARMUP:
                out.append((time.perf_counter() - t) * 1000)
    print(f"{statistics.median(h):.3f} {statistics.median(d):.3f}")


def cmd_group(url, key, rounds, pid):
    c = Client(url, key)
    sel = {"tree_of": int(pid), "include_root": False}
    targets = []
    for _ in range(200):
        a = json.loads(c.expect("POST", "/api/actions/plan",
                                {"selector": sel, "action": {"signal": "CONT"},
                                 "allow_empty": True, "max_targets": 256}, ok=(201,)))
        targets = [t for t in a["targets"] if t["verdict"] == "allow"]
        if len(targets) >= 100:
            break
        time.sleep(0.05)
    if len(targets) < 100:
        sys.exit(f"bench_load: group: {len(targets)} targets, not 100")
    targets = targets[:100]
    pids = {"pids": [t["pid"] for t in targets]}
    plans, singles = [], []

    def plan_execute():
        a = json.loads(c.expect("POST", "/api/actions/plan",
                                {"selector": pids, "action": {"signal": "CONT"}}, ok=(201,)))
        r = json.loads(c.expect("POST", f"/api/actions/{a['plan_id']}",
                                {"expect_count": a["count"]}))
        if r["status"] != "complete":
            sys.exit(f"bench_load: group: {r}")

    def one_by_one():
        for t in targets:
            c.expect("DELETE", "/api/ps",
                     {"pid": t["pid"], "signal": "CONT", "start_time": t["start_time"]})

    plan_execute()
    one_by_one()
    for i in range(rounds):
        for f, out in ((plan_execute, plans), (one_by_one, singles))[:: 1 if i % 2 == 0 else -1]:
            t = time.perf_counter()
            f()
            out.append((time.perf_counter() - t) * 1000)
    print(f"{statistics.median(plans):.2f} {statistics.median(singles):.2f}")


def cmd_rps(url, key, path, conns, secs):
    stop = time.perf_counter() + secs
    counts, errors = [0] * conns, [0] * conns

    def worker(i):
        c = Client(url, key)
        while time.perf_counter() < stop:
            status, _ = c.request("GET", path)
            counts[i] += 1
            errors[i] += status != 200

    t0 = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(conns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    if sum(errors):
        print(f"bench: WARNING {path}: {sum(errors)} non-200 answers", file=sys.stderr)
    r = sum(counts) / elapsed
    print(f"{r:.1f}" if r < 100 else f"{r:.0f}")


def main(argv):
    usage = __doc__.strip()
    if len(argv) < 3:
        sys.exit(usage)
    cmd, url, key, rest = argv[0], argv[1], argv[2], argv[3:]
    try:
        if cmd == "fields" and len(rest) == 1:
            cmd_fields(url, key, int(rest[0]))
        elif cmd == "job" and len(rest) == 1:
            cmd_job(url, key, int(rest[0]))
        elif cmd == "job" and len(rest) == 2:
            cmd_job(url, key, int(rest[0]), rest[1])
        elif cmd == "rtt" and len(rest) == 3:
            cmd_rtt(url, key, int(rest[0]), rest[1], rest[2])
        elif cmd == "group" and len(rest) == 2:
            cmd_group(url, key, int(rest[0]), rest[1])
        elif cmd == "rps" and len(rest) == 3:
            cmd_rps(url, key, rest[0], int(rest[1]), float(rest[2]))
        else:
            sys.exit(usage)
    except (OSError, http.client.HTTPException) as e:
        sys.exit(f"bench_load: {cmd}: {e}")


if __name__ == "__main__":
    main(sys.argv[1:])
