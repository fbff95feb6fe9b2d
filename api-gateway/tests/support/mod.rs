//! Shared test support: a tiny HTTP/1.1 client over `TcpStream`, a real
//! gateway process in a temp dir, the real helper when root.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub mod pki;
pub mod prom;

/// Cargo names the binary to this crate's tests only; the client's
/// tests, which include this file, find it in the target directory.
pub const GATEWAY: &str = match option_env!("CARGO_BIN_EXE_monitoreo-gateway") {
    Some(p) => p,
    None => "",
};

/// The gateway binary under test: this build's, or the one named by
/// `MONITOREO_GATEWAY_BIN` (to run the same suite against another build,
/// e.g. to see which tests an older gateway fails).
pub fn gateway_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("MONITOREO_GATEWAY_BIN") {
        return PathBuf::from(p);
    }
    if !GATEWAY.is_empty() {
        return PathBuf::from(GATEWAY);
    }
    let p = target_dir().join("debug/monitoreo-gateway");
    assert!(
        p.exists(),
        "{} is missing: run `cargo build -p api-gateway` first",
        p.display()
    );
    p
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"))
}

/// Fails unless root. Every test that needs root is also
/// `#[ignore = "needs root"]`: a plain `cargo test` lists it as ignored
/// rather than passing it unrun, and `scripts/test` runs it as root with
/// `--include-ignored`. A root test that was asked for and cannot run has
/// not passed, so it fails here, naming the reason.
pub fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test needs root: run it as root (scripts/test does), or leave the ignored tests out"
    );
}

/// The helper binary, built by `cargo build -p privhelper` (which
/// `cargo test -p api-gateway` alone does not do; `scripts/test` builds
/// it). Missing, the test fails rather than passing without the helper.
pub fn helper_bin() -> PathBuf {
    let p = target_dir().join("debug/monitoreo-privhelper");
    assert!(
        p.exists(),
        "{} is missing: run `cargo build -p privhelper` first",
        p.display()
    );
    p
}

pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Sends raw bytes, reads one response (Connection: close).
pub fn raw(addr: SocketAddr, bytes: &[u8]) -> Reply {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let _ = s.write_all(bytes);
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    let reply = parse(&buf);
    record(bytes, &reply);
    reply
}

/// Where every response is recorded, one JSON line each, for the OpenAPI
/// conformance check `scripts/test` runs after the suite.
pub const RECORD_ENV: &str = "MONITOREO_RECORD_RESPONSES";

/// Appends `{method, path, status, content_type, body}` to the file named
/// by [`RECORD_ENV`], if set. `body` is the parsed JSON, or null when the
/// body is empty (HEAD) or not JSON (then `raw` holds it, for the checker
/// to report).
pub fn record(request: &[u8], reply: &Reply) {
    let Some(file) = std::env::var_os(RECORD_ENV) else {
        return;
    };
    let line = request.split(|&b| b == b'\r').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.split(' ');
    let method = parts.next().unwrap_or_default();
    let target = parts.next().unwrap_or_default();
    let path = target.split('?').next().unwrap_or_default();
    let body: Option<serde_json::Value> = serde_json::from_slice(&reply.body).ok();
    let entry = serde_json::json!({
        "method": method,
        "path": path,
        "status": reply.status,
        "content_type": reply.header("content-type"),
        "body_len": reply.body.len(),
        "body": body,
        "raw": if body.is_none() && !reply.body.is_empty() {
            Some(String::from_utf8_lossy(&reply.body).into_owned())
        } else {
            None
        },
    });
    let mut text = entry.to_string();
    text.push('\n');
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)
        .expect("the response record file opens");
    // One write per line: O_APPEND keeps lines from parallel tests whole.
    f.write_all(text.as_bytes()).expect("recording a response");
}

fn parse(buf: &[u8]) -> Reply {
    let end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no response head in {:?}", String::from_utf8_lossy(buf)));
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut body = buf[end + 4..].to_vec();
    let chunked = headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
    });
    if chunked {
        body = dechunk(&body);
    }
    Reply {
        status,
        headers,
        body,
    }
}

/// The payload of a `Transfer-Encoding: chunked` body.
pub fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = b.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size = std::str::from_utf8(&b[..eol])
            .ok()
            .and_then(|s| usize::from_str_radix(s.split(';').next().unwrap_or("").trim(), 16).ok())
            .unwrap_or(0);
        b = &b[eol + 2..];
        if size == 0 || b.len() < size {
            return out;
        }
        out.extend_from_slice(&b[..size]);
        b = b.get(size + 2..).unwrap_or_default();
    }
}

pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> Reply {
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n");
    if let Some(t) = token {
        req.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    if let Some(b) = body {
        req.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{b}",
            b.len()
        ));
    } else {
        req.push_str("\r\n");
    }
    raw(addr, req.as_bytes())
}

pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    // Outside the kernel's ephemeral range: a port from bind(0) comes
    // from that range, and between the check and the gateway's bind any
    // outgoing connection of a test running alongside may take it as its
    // source port (seen as a gateway that never listened).
    let range =
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap_or_default();
    let mut bounds = range
        .split_whitespace()
        .filter_map(|n| n.parse::<u32>().ok());
    let (lo, hi) = (
        bounds.next().unwrap_or(32768),
        bounds.next().unwrap_or(60999),
    );
    let (first, last) = if lo > 12000 {
        (10000, lo - 1)
    } else {
        (hi + 1, 65535)
    };
    let span = last - first + 1;
    // Each test process starts elsewhere in the span and then counts up,
    // so no two tests of one run are given the same port.
    let start = std::process::id().wrapping_mul(7919) % span;
    for _ in 0..span {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = (first + (start + n) % span) as u16;
        if TcpListener::bind(("0.0.0.0", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in {first}-{last}");
}

/// Waits until a gateway just started as `child` accepts on `addr`. A
/// gateway that exits instead fails the test at once with its stderr
/// (written to `log`), not after the 20 s it is given to listen.
pub fn wait_listening(child: &mut Child, addr: SocketAddr, log: &Path) {
    let t = Instant::now();
    while TcpStream::connect(addr).is_err() {
        let log = || std::fs::read_to_string(log).unwrap_or_default();
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the gateway exited ({status}): {}", log());
        }
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "the gateway did not listen on {addr}: {}",
            log()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A running gateway with its own state dir.
pub struct Gateway {
    pub dir: tempfile::TempDir,
    pub addr: SocketAddr,
    pub config: PathBuf,
    pub child: Option<Child>,
}

impl Gateway {
    /// Writes a config pointing at `helper_socket` and starts the gateway.
    pub fn start(helper_socket: &Path) -> Gateway {
        Gateway::start_with(helper_socket, "")
    }

    /// Like [`Gateway::start`] with extra config lines (which may set
    /// `header_timeout_s`, 2 s otherwise).
    pub fn start_with(helper_socket: &Path, extra: &str) -> Gateway {
        let mut g = Gateway::configure(helper_socket, extra);
        g.spawn();
        g
    }

    /// The temp dir and config of [`Gateway::start_with`], without starting
    /// the gateway: for a test that prepares files first, or expects the
    /// start to be refused ([`Gateway::serve_refused`]).
    pub fn configure(helper_socket: &Path, extra: &str) -> Gateway {
        let dir = tempfile::tempdir().unwrap();
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let config = dir.path().join("gateway.toml");
        let header_timeout = if extra.contains("header_timeout_s") {
            ""
        } else {
            "header_timeout_s = 2\n"
        };
        std::fs::write(
            &config,
            format!(
                "listen = \"{addr}\"\nhelper_socket = \"{}\"\nstate_dir = \"{}\"\naudit_log = \"{}\"\n{header_timeout}{extra}",
                helper_socket.display(),
                dir.path().join("state").display(),
                dir.path().join("audit.log").display(),
            ),
        )
        .unwrap();
        Gateway {
            dir,
            addr,
            config,
            child: None,
        }
    }

    /// Runs `serve` and expects it to exit by itself, as a refused start
    /// does; a gateway that listens instead (or is still running after
    /// 20 s) is killed and the test fails, naming what it wrote.
    pub fn serve_refused(&self) -> std::process::Output {
        let mut child = Command::new(gateway_bin())
            .args(["serve", "--config"])
            .arg(&self.config)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let t = Instant::now();
        while child.try_wait().unwrap().is_none() {
            if TcpStream::connect(self.addr).is_ok() || t.elapsed() > Duration::from_secs(20) {
                let _ = child.kill();
                let out = child.wait_with_output().unwrap();
                panic!(
                    "the gateway started instead of refusing: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        child.wait_with_output().unwrap()
    }

    pub fn spawn(&mut self) {
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("gateway.err"))
            .unwrap();
        let mut child = Command::new(gateway_bin())
            .args(["serve", "--config"])
            .arg(&self.config)
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap();
        wait_listening(&mut child, self.addr, &self.dir.path().join("gateway.err"));
        self.child = Some(child);
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(c.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            let _ = c.wait();
        }
    }

    /// `keys add` through the real CLI; returns the token.
    pub fn key(&self, name: &str, scopes: &str, extra: &[&str]) -> String {
        let out = Command::new(gateway_bin())
            .args(["keys", "add", name, "--scopes", scopes])
            .args(extra)
            .arg("--config")
            .arg(&self.config)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .next()
            .unwrap()
            .to_string()
    }

    pub fn keys_cmd(&self, args: &[&str]) -> std::process::Output {
        Command::new(gateway_bin())
            .args(args)
            .arg("--config")
            .arg(&self.config)
            .output()
            .unwrap()
    }

    /// What the gateway wrote on stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("gateway.err")).unwrap_or_default()
    }

    /// The audit lines written so far, parsed.
    pub fn audit(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.dir.path().join("audit.log"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }

    pub fn get(&self, path: &str, token: Option<&str>) -> Reply {
        request(self.addr, "GET", path, token, None)
    }

    /// GET with extra request headers (`Range`, ...).
    pub fn get_with(&self, path: &str, token: &str, headers: &[(&str, &str)]) -> Reply {
        let mut req = format!(
            "GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\nAuthorization: Bearer {token}\r\n"
        );
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        raw(self.addr, req.as_bytes())
    }

    pub fn send(&self, method: &str, path: &str, token: Option<&str>, body: &str) -> Reply {
        request(self.addr, method, path, token, Some(body))
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A running helper (root) with a policy in its own temp dir.
pub struct Helper {
    pub dir: tempfile::TempDir,
    pub socket: PathBuf,
    pub policy: PathBuf,
    child: Option<Child>,
}

pub const POLICY: &str = r#"
[signal]
owners = ["nobody", "@jobs"]
signals = ["TERM", "KILL", "INT", "HUP", "CONT", "STOP"]

[renice]
owners = ["nobody", "@jobs"]
min_nice = 0

[run]
uids = "UIDS"
max_timeout_s = 30
max_jobs = 4
max_output_bytes = 1048576
cpu_s = 30
nofile = 256
nproc = 256
"#;

/// [`POLICY`] with a job uid range of its own: tests run in parallel, each
/// with its own helper, and two helpers never hand out the same uid (a
/// helper whose range another live helper holds refuses to start, and
/// [`launch`] then tries the next range).
pub fn test_policy() -> String {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 40;
    let first = 60700 + 10 * n;
    POLICY.replace("UIDS", &format!("{first}-{}", first + 9))
}

/// Starts the helper on `policy` and waits until it listens; its stderr
/// goes to `log`. When its job uid range is held by another helper of
/// the host (another test, another suite), the policy gets the next range
/// and it starts again. `Err` with the exit status and the log when it
/// exits without listening for any other reason.
fn launch(bin: &Path, policy: &Path, socket: &Path, log: &Path) -> Result<Child, String> {
    for _ in 0..40 {
        let _ = std::fs::remove_file(socket);
        let before = std::fs::read_to_string(log).map_or(0, |l| l.len());
        let err = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        let mut child = Command::new(bin)
            .arg("--policy")
            .arg(policy)
            .arg("--socket")
            .arg(socket)
            .args(["--gateway-user", "0"])
            .stderr(err)
            .spawn()
            .unwrap();
        let t = Instant::now();
        let status = loop {
            if std::os::unix::net::UnixStream::connect(socket).is_ok() {
                return Ok(child);
            }
            if let Ok(Some(st)) = child.try_wait() {
                break st;
            }
            // Past the helper's own 30 s bound on its uids' cleaners,
            // which it waits for before it listens.
            assert!(
                t.elapsed() < Duration::from_secs(40),
                "helper did not listen: {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        let said = std::fs::read_to_string(log).unwrap_or_default();
        let said = said.get(before..).unwrap_or_default();
        if !said.contains("another running helper holds") {
            return Err(format!("exited with {status} without listening: {said}"));
        }
        std::fs::write(policy, test_policy()).unwrap();
    }
    Err("no free job uid range for a test helper".into())
}

impl Helper {
    pub fn start(bin: &Path) -> Helper {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("helper.sock");
        let policy = dir.path().join("policy.toml");
        std::fs::write(&policy, test_policy()).unwrap();
        let mut h = Helper {
            dir,
            socket,
            policy,
            child: None,
        };
        h.spawn(bin);
        h
    }

    pub fn spawn(&mut self, bin: &Path) {
        let log = self.dir.path().join("helper.log");
        match launch(bin, &self.policy, &self.socket, &log) {
            Ok(child) => self.child = Some(child),
            Err(why) => panic!("{}: {why}", bin.display()),
        }
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(c.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            let _ = c.wait();
        }
    }

    /// The helper's log (stderr) so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("helper.log")).unwrap_or_default()
    }

    /// The helper's pid.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }
}

/// A `sleep SECS` running as nobody, returned once it is nobody's (setpriv
/// has switched), for signal and renice targets.
// The child is returned, and its caller waits for it.
#[allow(clippy::zombie_processes)]
pub fn nobody_sleep(secs: u32) -> Child {
    let child = Command::new("setpriv")
        .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups"])
        .args(["sleep", &secs.to_string()])
        .spawn()
        .unwrap();
    let t = Instant::now();
    loop {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap_or_default();
        let exe = std::fs::read_link(format!("/proc/{}/exe", child.id())).unwrap_or_default();
        if status.contains("Uid:\t65534") && exe.ends_with("sleep") {
            return child;
        }
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "setpriv never became nobody"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Waits until `pid` runs `program` as `uid`: its real, effective, saved
/// and filesystem uids all switched and the exec done. A target started
/// through setpriv is root, then setpriv as `uid`, before it is that
/// program as `uid`; a test that acts on it earlier is refused by policy
/// (a root owner) or finds it changed its executable.
pub fn wait_runs_as(pid: u32, uid: u32, program: &str) {
    let want = format!("\nUid:\t{uid}\t{uid}\t{uid}\t{uid}\n");
    let t = Instant::now();
    loop {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap_or_default();
        if status.contains(&want) && exe.file_name().is_some_and(|n| n == program) {
            return;
        }
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "pid {pid} never ran {program} as uid {uid}: {} {status}",
            exe.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Raises this process's soft descriptor limit to the hard one, for tests
/// that hold hundreds of sockets.
pub fn raise_nofile() -> u64 {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard).unwrap();
    }
    getrlimit(Resource::RLIMIT_NOFILE).unwrap().0
}

/// A TCP connection to `to` from the loopback address `from` (any of
/// 127.0.0.0/8), so a test can be many clients.
pub fn connect_from(from: std::net::Ipv4Addr, to: SocketAddr) -> std::io::Result<TcpStream> {
    use nix::sys::socket::{bind, connect, socket, AddressFamily, SockFlag, SockType, SockaddrIn};
    let fd = socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )?;
    bind(
        std::os::fd::AsRawFd::as_raw_fd(&fd),
        &SockaddrIn::from(std::net::SocketAddrV4::new(from, 0)),
    )?;
    let std::net::SocketAddr::V4(to) = to else {
        return Err(std::io::Error::other("IPv4 only"));
    };
    connect(std::os::fd::AsRawFd::as_raw_fd(&fd), &SockaddrIn::from(to))?;
    Ok(TcpStream::from(fd))
}

impl Drop for Helper {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Polls a job until it leaves `running` (or 40 s pass).
pub fn wait_job(g: &Gateway, token: &str, id: &str) -> serde_json::Value {
    let t = Instant::now();
    loop {
        let r = g.get(&format!("/api/ps/output/{id}"), Some(token));
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        let v = r.json();
        if v["state"] != "running" && v["state"] != "starting" {
            return v;
        }
        assert!(
            t.elapsed() < Duration::from_secs(40),
            "job never finished: {v}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits (long-poll on `GET /api/jobs/{id}?wait=10`) until the job ended;
/// returns its record.
pub fn ended(g: &Gateway, t: &str, id: &str) -> serde_json::Value {
    let t0 = Instant::now();
    loop {
        let r = g.get(&format!("/api/jobs/{id}?wait=10"), Some(t));
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        let j = r.json()["job"].clone();
        if !matches!(j["state"].as_str(), Some("running" | "starting")) {
            return j;
        }
        assert!(t0.elapsed() < Duration::from_secs(40), "job never ended");
    }
}

/// A `Command` that runs `program` as `user`:`group` (names or numbers,
/// no supplementary groups), killed when the thread that started it ends:
/// the parent-death signal is set after the uid change, which would clear
/// it, and survives the exec.
pub fn as_user(user: &str, group: &str, program: &str) -> Command {
    let mut c = Command::new("setpriv");
    c.args([
        &format!("--reuid={user}"),
        &format!("--regid={group}"),
        "--clear-groups",
        "--pdeathsig=KILL",
        program,
    ]);
    c
}

/// A long-lived process a test started (a target to list, signal or
/// renice): killed and reaped when this drops, so a test that fails part
/// way leaves none behind; started by [`as_user`], it also dies with its
/// test's thread when nothing drops it.
pub struct Proc(pub Child);

impl std::ops::Deref for Proc {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Proc {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
