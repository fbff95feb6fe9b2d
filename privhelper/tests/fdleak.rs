//! A client that attaches more descriptors than one message may carry
//! must not grow the helper's descriptor table: the real helper binary,
//! fresh connections, raw `send_with_fds`. Needs root (to read the helper's
//! `/proc/PID/fd`), so the test is ignored unless asked for (`--include-ignored`,
//! as `scripts/test` does as root).

use std::fs;
use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use api_gateway::helper::send_with_fds;
use api_gateway::helper::Connection;
use protocol::fdpass::MAX_FDS_PER_MSG;
use protocol::{encode_frame, JobId, Request, PROTOCOL_VERSION};

/// Fails unless root: the test is `#[ignore = "needs root"]`, and asked for
/// anyway where it cannot run it fails rather than passing unrun.
fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test needs root: run it as root (scripts/test does), or leave the ignored tests out"
    );
}

const POLICY: &str = "[signal]\nowners = [\"nobody\"]\nsignals = [\"TERM\"]\n";

struct Helper {
    child: Child,
    dir: PathBuf,
    sock: PathBuf,
}

impl Helper {
    fn start(name: &str) -> Helper {
        let dir = std::env::temp_dir().join(format!("ph-fdleak-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .expect("temp dir");
        let policy = dir.join("policy.toml");
        fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&policy)
            .and_then(|mut f| f.write_all(POLICY.as_bytes()))
            .expect("policy");
        let sock = dir.join("helper.sock");
        let child = Command::new(env!("CARGO_BIN_EXE_monitoreo-privhelper"))
            .args(["--policy", policy.to_str().expect("utf8")])
            .args(["--socket", sock.to_str().expect("utf8")])
            .args(["--gateway-user", "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start helper");
        let h = Helper { child, dir, sock };
        let t = Instant::now();
        // The socket path exists from bind(), a moment before listen().
        while !h.hang_up() {
            assert!(
                t.elapsed() < Duration::from_secs(5),
                "helper did not listen"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        h
    }

    fn open_descriptors(&self) -> usize {
        fs::read_dir(format!("/proc/{}/fd", self.child.id()))
            .expect("helper fd table")
            .count()
    }

    /// Waits up to five seconds for the helper's descriptor count to reach
    /// `want` and returns the last count seen.
    fn settle_at(&self, want: usize) -> usize {
        let t = Instant::now();
        loop {
            let n = self.open_descriptors();
            if n == want || t.elapsed() > Duration::from_secs(5) {
                return n;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Paths the helper's descriptors refer to.
    fn open_paths(&self) -> Vec<PathBuf> {
        fs::read_dir(format!("/proc/{}/fd", self.child.id()))
            .expect("helper fd table")
            .flatten()
            .filter_map(|e| fs::read_link(e.path()).ok())
            .collect()
    }

    /// One ordinary conversation. Returns once the helper has closed its
    /// end, so the connection no longer counts in its descriptor table.
    fn served(&self) -> bool {
        let Ok(s) = UnixStream::connect(&self.sock) else {
            return false;
        };
        let Ok(theirs) = s.try_clone() else {
            return false;
        };
        let answered = Connection::handshake(theirs, Duration::from_secs(5))
            .and_then(|mut c| {
                c.request(
                    &Request::JobStatus {
                        job: JobId([7; 16]),
                    },
                    &[],
                )
            })
            .is_ok();
        answered && closed_by_helper(&s)
    }

    /// Connects and hangs up at once; true once the helper has closed its
    /// end of that connection too.
    fn hang_up(&self) -> bool {
        UnixStream::connect(&self.sock).is_ok_and(|s| closed_by_helper(&s))
    }
}

/// Stops writing on `s` and waits for the helper to close its end.
fn closed_by_helper(s: &UnixStream) -> bool {
    let _ = s.shutdown(std::net::Shutdown::Write);
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let mut rest = Vec::new();
    let mut s = s;
    s.read_to_end(&mut rest).is_ok()
}

impl Drop for Helper {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

#[test]
#[ignore = "needs root"]
fn frames_with_too_many_descriptors_do_not_leak_into_the_helper() {
    require_root();
    let mut h = Helper::start("toomany");
    // One ordinary conversation first, so anything opened lazily is open.
    assert!(h.served(), "helper serves a client");
    let baseline = h.open_descriptors();

    let passed = h.dir.join("passed");
    fs::write(&passed, b"").expect("file to pass");
    let files: Vec<fs::File> = (0..MAX_FDS_PER_MSG + 2)
        .map(|_| fs::File::open(&passed).expect("open"))
        .collect();
    let borrowed: Vec<BorrowedFd<'_>> = files.iter().map(|f| f.as_fd()).collect();
    let hello = encode_frame(&Request::Hello {
        version: PROTOCOL_VERSION,
    })
    .expect("encode");
    for round in 0..20 {
        let s = UnixStream::connect(&h.sock).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        send_with_fds(&s, &hello, &borrowed).expect("send");
        // The helper closes the connection without an answer.
        let mut answer = Vec::new();
        match (&s).read_to_end(&mut answer) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
            Err(e) => panic!("round {round}: connection not closed: {e}"),
        }
        assert!(answer.is_empty(), "round {round}: answered {answer:?}");
    }

    assert_eq!(
        h.settle_at(baseline),
        baseline,
        "helper's descriptor table grew"
    );
    assert!(
        !h.open_paths().contains(&passed),
        "helper still holds a passed descriptor"
    );
    assert!(h.child.try_wait().expect("wait").is_none(), "helper alive");
    assert!(h.served(), "helper still serves a client");
}
