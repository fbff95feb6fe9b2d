//! The real reader binary, started as root as the quickstart starts it:
//! who it becomes, who it serves, what it answers, what it refuses.

use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use reader::wire::{self, field, Frame, Request, VERSION};

const BIN: &str = env!("CARGO_BIN_EXE_monitoreo-reader");
/// The reader's uid in these tests (no passwd entry).
const READER_UID: u32 = 60383;

fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test needs root: run it as root, or leave the ignored tests out"
    );
}

struct Reader {
    dir: tempfile::TempDir,
    socket: PathBuf,
    child: Child,
}

impl Reader {
    /// Started as root, serving `gateway` (a uid), on `policy`.
    fn start(gateway: u32, policy: &str) -> Reader {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let socket = dir.path().join("reader.sock");
        let p = dir.path().join("policy.toml");
        std::fs::write(&p, policy).unwrap();
        let log = std::fs::File::create(dir.path().join("log")).unwrap();
        let child = Command::new(BIN)
            .arg("--policy")
            .arg(&p)
            .arg("--socket")
            .arg(&socket)
            .args(["--gateway-user", &gateway.to_string()])
            .args(["--user", &READER_UID.to_string()])
            .stderr(log)
            .spawn()
            .unwrap();
        let mut r = Reader { dir, socket, child };
        r.wait_log("\"started\"");
        r
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
    }

    fn wait_log(&mut self, what: &str) {
        let t = Instant::now();
        while !self.log().contains(what) {
            if let Ok(Some(st)) = self.child.try_wait() {
                panic!("the reader exited ({st}): {}", self.log());
            }
            assert!(
                t.elapsed() < Duration::from_secs(20),
                "no {what}: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn ask(&self, fields: u8, pids: Vec<u32>) -> Vec<wire::Entry> {
        let mut s = UnixStream::connect(&self.socket).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        wire::write_request(
            &mut s,
            &Request {
                version: VERSION,
                fields,
                pids,
                policy: false,
            },
        )
        .unwrap();
        let mut buf = Vec::new();
        let mut out = Vec::new();
        loop {
            match wire::read_frame(&mut s, &mut buf).unwrap() {
                Frame::Entry(e) => out.push(*e),
                Frame::End => return out,
                Frame::Policy(r) => panic!("a policy in a listing: {r:?}"),
            }
        }
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const ALL: &str = "[read]\nowners = [\"*\"]\nfields = [\"exe\", \"cwd\", \"num_fds\", \"open_files\", \"connections\", \"io_counters\", \"memory_maps\"]\n";

fn sleeper(uid: u32) -> Child {
    let c = Command::new("setpriv")
        .arg(format!("--reuid={uid}"))
        .arg(format!("--regid={uid}"))
        .args(["--clear-groups", "sleep", "60"])
        .current_dir("/")
        .spawn()
        .unwrap();
    let t = Instant::now();
    while std::fs::read_link(format!("/proc/{}/exe", c.id()))
        .map_or(true, |e| !e.ends_with("sleep"))
    {
        assert!(t.elapsed() < Duration::from_secs(10), "sleep never ran");
        std::thread::sleep(Duration::from_millis(10));
    }
    c
}

#[test]
#[ignore = "needs root"]
fn it_becomes_its_own_user_with_two_capabilities_and_its_socket_is_the_gateways() {
    require_root();
    let r = Reader::start(60384, ALL);
    let status = std::fs::read_to_string(format!("/proc/{}/status", r.child.id())).unwrap();
    let line = |k: &str| {
        status
            .lines()
            .find(|l| l.starts_with(k))
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(
        line("Uid:"),
        format!("Uid:\t{0}\t{0}\t{0}\t{0}", READER_UID)
    );
    assert_eq!(
        line("Gid:"),
        format!("Gid:\t{0}\t{0}\t{0}\t{0}", READER_UID)
    );
    assert_eq!(line("Groups:").trim_end(), "Groups:");
    // CAP_DAC_READ_SEARCH (2) and CAP_SYS_PTRACE (19), nothing else
    // anywhere, nothing to inherit, and no way back (NoNewPrivs).
    for (k, v) in [
        ("CapPrm:", "0000000000080004"),
        ("CapEff:", "0000000000080004"),
        ("CapBnd:", "0000000000080004"),
        ("CapInh:", "0000000000000000"),
        ("CapAmb:", "0000000000000000"),
        ("NoNewPrivs:", "1"),
    ] {
        assert_eq!(line(k), format!("{k}\t{v}"), "{status}");
    }
    let m = std::fs::metadata(&r.socket).unwrap();
    assert_eq!((m.uid(), m.mode() & 0o777), (60384, 0o600));
}

#[test]
#[ignore = "needs root"]
fn another_uid_is_dropped_unanswered_and_logged() {
    require_root();
    // Serves uid 60384 only; this test connects as root.
    let mut r = Reader::start(60384, ALL);
    let mut s = UnixStream::connect(&r.socket).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let req = Request {
        version: VERSION,
        fields: field::ALL,
        pids: vec![],
        policy: false,
    };
    let _ = wire::write_request(&mut s, &req);
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got);
    assert!(got.is_empty(), "answered another uid: {} bytes", got.len());
    r.wait_log("\"peer_refused\"");
    assert!(r.log().contains("\"uid\":0"), "{}", r.log());
}

#[test]
#[ignore = "needs root"]
fn entries_come_in_pid_order_as_the_policy_allows_and_a_bad_request_loses_nothing() {
    require_root();
    let policy = "[read]\nowners = [\"nobody\"]\nfields = [\"exe\", \"cwd\", \"num_fds\"]\n";
    let mut r = Reader::start(0, policy);
    let mut nobody = sleeper(65534);
    let mut other = sleeper(60385);

    // A request that is not one: garbage, an oversized length, another
    // version. Each closes that connection only, logged.
    for bad in [
        vec![3u8, 0, 0, 0, 9, 9, 9],
        ((wire::MAX_REQUEST + 1) as u32).to_le_bytes().to_vec(),
    ] {
        let mut s = UnixStream::connect(&r.socket).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(&bad).unwrap();
        let mut got = Vec::new();
        let _ = s.read_to_end(&mut got);
        assert!(got.is_empty());
    }
    let mut s = UnixStream::connect(&r.socket).unwrap();
    wire::write_request(
        &mut s,
        &Request {
            version: VERSION + 1,
            fields: 1,
            pids: vec![],
            policy: false,
        },
    )
    .unwrap();
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got);
    assert!(got.is_empty());
    r.wait_log("\"request_failed\"");

    let (a, b) = (nobody.id(), other.id());
    let entries = r.ask(field::ALL, vec![b, a, u32::MAX - 1]);
    let pids: Vec<u32> = entries.iter().map(|e| e.pid).collect();
    let mut sorted = vec![a, b];
    sorted.sort_unstable();
    assert_eq!(pids, sorted, "ascending, the missing pid left out");
    let of = |pid| &entries.iter().find(|e| e.pid == pid).unwrap().private;
    let n = of(a);
    assert_eq!(n.exe.as_deref(), Some(&b"/usr/bin/sleep"[..]));
    assert_eq!(n.cwd.as_deref(), Some(&b"/"[..]));
    let fds = std::fs::read_dir(format!("/proc/{a}/fd")).unwrap().count() as u64;
    assert_eq!(n.num_fds, Some(fds));
    assert_eq!(
        n.refused,
        field::OPEN_FILES | field::CONNECTIONS | field::IO_COUNTERS | field::MEMORY_MAPS
    );
    assert_eq!((n.open_files.clone(), n.memory_maps.clone()), (None, None));
    let o = of(b);
    assert_eq!(o.refused, field::ALL);
    assert_eq!((o.exe.clone(), o.num_fds), (None, None));

    // Every process when no pid is named.
    let all = r.ask(field::EXE, vec![]);
    assert!(all.windows(2).all(|w| w[0].pid < w[1].pid));
    assert!(all.iter().any(|e| e.pid == a) && all.iter().any(|e| e.pid == b));
    for c in [&mut nobody, &mut other] {
        let _ = c.kill();
        let _ = c.wait();
    }
}

#[test]
fn a_policy_naming_environ_stops_the_start_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("policy.toml");
    std::fs::write(&p, "[read]\nowners = [\"*\"]\nfields = [\"environ\"]\n").unwrap();
    let out = Command::new(BIN)
        .arg("--policy")
        .arg(&p)
        .arg("--check")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("\"environ\" is not a field the reader serves"),
        "{err}"
    );
}
