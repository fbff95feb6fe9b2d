// A real Monitoreo pair for the browser test, set up the way
// scripts/quickstart does it as root: the helper as root, the gateway
// under an unnamed uid of its own, every job under a uid from a range of
// its own, a policy that lets the test signal and renice only jobs
// ("@jobs"). Everything lives in one temp dir, removed at stop().

import { spawn, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

/** Job uids, apart from quickstart's, the Rust suite's and the bench's. */
const JOB_UIDS = '60850-60899';
/** Where the gateway's uid is chosen. */
const GATEWAY_UIDS = [60580, 60589];

export const SIGNALS = ['HUP', 'INT', 'QUIT', 'KILL', 'USR1', 'USR2', 'TERM', 'CONT', 'STOP', 'TSTP'];

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Ports to try: outside the kernel's ephemeral range, as the Rust
 * suite's free_port. A port from listen(0) comes from that range, and
 * between the check and the gateway's bind any outgoing connection on
 * the host may take it as its source port. */
function portSpan() {
  const [lo, hi] = fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8')
    .trim().split(/\s+/).map(Number);
  return lo > 12000 ? [10000, lo - 1] : [hi + 1, 65535];
}

/** Counts up from a random start, so two pairs are not given one port. */
let nextPort = -1;

function canListen(port) {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.on('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

async function freePort() {
  const [first, last] = portSpan();
  const span = last - first + 1;
  if (nextPort < 0) nextPort = Math.floor(Math.random() * span);
  for (let i = 0; i < span; i += 1) {
    const port = first + (nextPort % span);
    nextPort += 1;
    if (await canListen(port)) return port;
  }
  throw new Error(`no free port in ${first}-${last}`);
}

/** A uid with no passwd or group entry and no process. */
function freeUid() {
  const used = new Set(execFileSync('ps', ['-e', '-o', 'uid='], { encoding: 'utf8' })
    .split('\n').map((l) => l.trim()).filter(Boolean));
  for (let u = GATEWAY_UIDS[0]; u <= GATEWAY_UIDS[1]; u += 1) {
    const known = (db) => {
      try {
        execFileSync('getent', [db, String(u)], { stdio: 'ignore' });
        return true;
      } catch {
        return false;
      }
    };
    if (!used.has(String(u)) && !known('passwd') && !known('group')) return u;
  }
  throw new Error(`no free uid in ${GATEWAY_UIDS.join('-')} for the gateway`);
}

async function until(what, fn, ms = 30000) {
  const t = Date.now();
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() - t > ms) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

export class Pair {
  /** `bin`: the directory with monitoreo-gateway and monitoreo-privhelper. */
  static async start(bin) {
    const p = new Pair();
    await p.setUp(bin);
    return p;
  }

  async setUp(bin) {
    this.children = [];
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'monitoreo-console-test.'));
    fs.chmodSync(this.dir, 0o755);
    const d = (f) => path.join(this.dir, f);
    this.uid = freeUid();
    const port = await freePort();
    this.url = `http://127.0.0.1:${port}`;
    const list = (xs) => xs.map((x) => JSON.stringify(x)).join(', ');
    fs.writeFileSync(d('policy.toml'), `[signal]
owners = ["@jobs"]
signals = [${list(SIGNALS)}]

[renice]
owners = ["@jobs"]
min_nice = 0

[run]
uids = "${JOB_UIDS}"
max_timeout_s = 600
max_jobs = 8
max_output_bytes = 10485760
cpu_s = 300
nofile = 256
nproc = 256
`, { mode: 0o644 });
    fs.mkdirSync(d('state'), { mode: 0o700 });
    fs.mkdirSync(d('run'));
    fs.writeFileSync(d('gateway.toml'), `listen = "127.0.0.1:${port}"
helper_socket = "${d('run/privhelper.sock')}"
state_dir = "${d('state')}"
audit_log = "${d('audit.log')}"
`);
    // 0600: the gateway refuses an audit log that others may read.
    fs.writeFileSync(d('audit.log'), '', { mode: 0o600 });
    fs.chownSync(d('state'), this.uid, this.uid);
    fs.chownSync(d('audit.log'), this.uid, this.uid);

    this.run(path.join(bin, 'monitoreo-privhelper'), [
      '--policy', d('policy.toml'), '--socket', d('run/privhelper.sock'),
      '--gateway-user', String(this.uid),
    ], 'helper.log');
    await until('the helper socket', () => fs.existsSync(d('run/privhelper.sock')));

    const gw = path.join(bin, 'monitoreo-gateway');
    const key = (name, scopes) => execFileSync(gw,
      ['keys', 'add', name, '--scopes', scopes, '--config', d('gateway.toml')],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).split('\n')[0].trim();
    this.keys = {
      ops: key('ops', 'read,signal,renice,exec'),
      viewer: key('viewer', 'read'),
    };
    this.run('setpriv', [`--reuid=${this.uid}`, `--regid=${this.uid}`, '--clear-groups',
      gw, 'serve', '--config', d('gateway.toml')], 'gateway.log');
    await until('the gateway and its helper', async () => {
      try {
        return (await fetch(`${this.url}/healthz`)).status === 200;
      } catch {
        return false;
      }
    });
  }

  run(cmd, args, log) {
    const out = fs.openSync(path.join(this.dir, log), 'a');
    const child = spawn(cmd, args, { stdio: ['ignore', out, out] });
    fs.closeSync(out);
    this.children.push(child);
    return child;
  }

  /** Copies the daemons' logs into `dir` (test artifacts). */
  saveLogs(dir) {
    for (const f of ['helper.log', 'gateway.log', 'audit.log']) {
      try {
        fs.copyFileSync(path.join(this.dir, f), path.join(dir, f));
      } catch {
        // Not written: nothing to keep.
      }
    }
  }

  /** One API call with a key; resolves to {status, body}. */
  async api(key, method, p, body) {
    const res = await fetch(`${this.url}${p}`, {
      method,
      headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    let json = null;
    try {
      json = JSON.parse(text);
    } catch {
      json = null;
    }
    return { status: res.status, body: json, text };
  }

  /** Starts a job with the ops key; resolves to the job. */
  async job(cmd, timeout_s = 300) {
    const r = await this.api(this.keys.ops, 'POST', '/api/jobs', { cmd, timeout_s });
    if (r.status !== 202) throw new Error(`starting ${cmd}: ${r.status} ${r.text}`);
    return r.body.job;
  }

  /** Stops the gateway, then the helper (which ends every job), removes the dir. */
  async stop() {
    for (const child of [...this.children].reverse()) {
      if (child.exitCode !== null || child.signalCode !== null) continue;
      const gone = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await Promise.race([gone, sleep(15000)]);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
    fs.rmSync(this.dir, { recursive: true, force: true });
  }

  /** For process exit: no waiting. */
  killNow() {
    for (const child of this.children) {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  }
}

/**
 * Starts `n` idle processes in a session of their own; resolves to the
 * group id once all are up. kill(-pgid) removes them.
 */
export async function idleProcesses(n) {
  // detached: the child calls setsid(), so its pid is the group's id.
  const child = spawn('bash', ['-c',
    `for ((i=0;i<${n};i++)); do sleep 100000 & done; exec sleep 100000`], {
    stdio: 'ignore', detached: true,
  });
  const pgid = await until('the group leader', () => child.pid);
  await until(`${n} idle processes`, () => {
    const count = execFileSync('ps', ['-e', '-o', 'pgid='], { encoding: 'utf8' })
      .split('\n').filter((l) => l.trim() === String(pgid)).length;
    return count >= n + 1;
  }, 120000);
  child.unref();
  return pgid;
}
