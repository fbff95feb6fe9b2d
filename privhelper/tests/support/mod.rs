//! Shared scaffolding for the helper's integration tests: the real helper
//! binary on a socket in a root-owned temp dir, its log captured to a file,
//! real target processes and jobs.
#![allow(dead_code)]

use std::fs;
use std::os::fd::AsFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use api_gateway::helper::Connection;
use protocol::{Action, Caller, JobId, JobState, JobStatus, Request, Response, Target};

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

/// A policy with per-job uids from `first..=first+9` whose processes
/// (`@jobs`) and nobody's may be signalled and reniced. Tests run in
/// parallel, each with its own helper: each must use its own range, or one
/// helper's uid sweep would reach another's jobs.
pub fn policy(first: u32, extra_run: &str) -> String {
    format!(
        r#"
[signal]
owners = ["nobody", "@jobs"]
signals = ["TERM", "KILL", "STOP", "CONT"]

[renice]
owners = ["nobody", "@jobs"]
min_nice = 0

[run]
uids = "{first}-{last}"
max_timeout_s = 30
max_jobs = 8
max_output_bytes = 1048576
cpu_s = 30
nofile = 64
nproc = 64
{extra_run}
"#,
        last = first + 9
    )
}

pub struct Helper {
    pub child: Child,
    pub dir: PathBuf,
    pub sock: PathBuf,
    pub log: PathBuf,
}

impl Helper {
    /// Starts the helper with `policy` and extra arguments; `wrapper` runs
    /// it under another program (e.g. `prlimit`).
    pub fn start_with(name: &str, policy: &str, args: &[&str], wrapper: &[&str]) -> Helper {
        // Not under /tmp: a job sees a private tmpfs there, and the tests
        // hand their jobs scripts and the helper's socket from this dir.
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("ph-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("temp dir");
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).expect("chmod dir");
        let policy_path = dir.join("policy.toml");
        fs::write(&policy_path, policy).expect("policy");
        fs::set_permissions(&policy_path, fs::Permissions::from_mode(0o644)).expect("chmod");
        let sock = dir.join("helper.sock");
        let log = dir.join("helper.log");
        let bin = env!("CARGO_BIN_EXE_monitoreo-privhelper");
        let mut cmd = match wrapper.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(bin);
                c
            }
            None => Command::new(bin),
        };
        let child = cmd
            .args(["--policy", policy_path.to_str().expect("utf8")])
            .args(["--socket", sock.to_str().expect("utf8")])
            .args(["--gateway-user", "0"])
            .args(args)
            .stderr(fs::File::create(&log).expect("log"))
            .stdout(Stdio::null())
            .spawn()
            .expect("start helper");
        let mut h = Helper {
            child,
            dir,
            sock,
            log,
        };
        // The socket file appears at bind(), before listen(): wait for a
        // connection to succeed, not for the file. Before it listens the
        // helper finds the host's world-writable directories and waits for
        // the cleaners of its uid range (each bounded by the helper's 30 s
        // CLEANUP_TIMEOUT), which on a loaded host takes seconds: it gets
        // 40 s, past that bound, and a helper that exits instead fails the
        // test at once with its log.
        let t = Instant::now();
        while std::os::unix::net::UnixStream::connect(&h.sock).is_err() {
            if let Ok(Some(status)) = h.child.try_wait() {
                panic!("the helper exited ({status}): {}", h.log_text());
            }
            assert!(
                t.elapsed() < Duration::from_secs(40),
                "helper did not listen: {}",
                h.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        h
    }

    pub fn start(name: &str, policy: &str) -> Helper {
        Helper::start_with(name, policy, &[], &[])
    }

    pub fn connect(&self) -> Connection {
        Connection::connect(&self.sock, Duration::from_secs(5)).expect("hello")
    }

    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The helper's JSON log lines whose `event` is `name`. Every line of
    /// the log must be JSON: a line that is not fails the test.
    pub fn events(&self, name: &str) -> Vec<serde_json::Value> {
        self.log_text()
            .lines()
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l)
                    .unwrap_or_else(|e| panic!("log line is not JSON ({e}): {l}"))
            })
            .filter(|v| v["event"] == name)
            .collect()
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        // SIGTERM first: the helper kills its jobs and removes its cgroups.
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.pid()),
            nix::sys::signal::SIGTERM,
        );
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(3) {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// Output files of one job, created by the test as the gateway would.
pub struct JobFiles {
    pub out: PathBuf,
    pub err: PathBuf,
}

impl JobFiles {
    pub fn read_out(&self) -> String {
        String::from_utf8_lossy(&fs::read(&self.out).unwrap_or_default()).into_owned()
    }
    pub fn read_err(&self) -> String {
        String::from_utf8_lossy(&fs::read(&self.err).unwrap_or_default()).into_owned()
    }
}

/// Starts `cmd` as job `id`; returns its first status and its files.
pub fn start_job(
    c: &mut Connection,
    dir: &Path,
    id: u8,
    cmd: &str,
    timeout_ms: u64,
) -> (JobStatus, JobFiles) {
    let files = JobFiles {
        out: dir.join(format!("out{id}")),
        err: dir.join(format!("err{id}")),
    };
    let out = fs::File::create(&files.out).expect("out");
    let err = fs::File::create(&files.err).expect("err");
    let r = c
        .request(
            &Request::Spawn {
                job: JobId([id; 16]),
                command: cmd.into(),
                timeout_ms,
                key: TEST_KEY.into(),
            },
            &[out.as_fd(), err.as_fd()],
        )
        .expect("spawn answer");
    match r {
        Response::Job(s) if s.state == JobState::Running => (*s, files),
        other => panic!("spawn of {cmd:?}: {other:?}"),
    }
}

/// Polls the job until it is no longer running.
pub fn wait_job(c: &mut Connection, id: u8, within: Duration) -> JobStatus {
    wait_job_id(c, JobId([id; 16]), within)
}

/// Polls the job `job` until it is no longer running.
pub fn wait_job_id(c: &mut Connection, job: JobId, within: Duration) -> JobStatus {
    let t0 = Instant::now();
    loop {
        match c.request(&Request::JobStatus { job }, &[]).expect("status") {
            Response::Job(s) if s.state != JobState::Running => return *s,
            Response::Job(_) => {}
            other => panic!("{other:?}"),
        }
        assert!(t0.elapsed() < within, "job {job:?} never ended");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until `path` holds `text` (a job's "ready" line).
pub fn wait_for_text(path: &Path, text: &str, within: Duration) {
    let t0 = Instant::now();
    while !fs::read_to_string(path).is_ok_and(|s| s.contains(text)) {
        assert!(
            t0.elapsed() < within,
            "{} never said {text:?}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Pids of the processes whose real uid is `uid`.
pub fn pids_of_uid(uid: u32) -> Vec<i32> {
    let mut found = Vec::new();
    for e in fs::read_dir("/proc").expect("proc").flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(status) = fs::read_to_string(e.path().join("status")) else {
            continue;
        };
        let real = status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|l| l.split_whitespace().next())
            .and_then(|u| u.parse::<u32>().ok());
        if real == Some(uid) {
            found.push(pid);
        }
    }
    found
}

/// Waits until no process of `uid` is left; returns those left at the end.
pub fn wait_uid_gone(uid: u32, within: Duration) -> Vec<i32> {
    let t0 = Instant::now();
    loop {
        let left = pids_of_uid(uid);
        if left.is_empty() || t0.elapsed() > within {
            return left;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A `Command` that runs `program` as `nobody` (no supplementary groups),
/// killed when the thread that started it ends (see [`Proc`]).
pub fn as_nobody(program: &str) -> Command {
    as_user("nobody", "nogroup", program)
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

/// A long-lived process a test started (a target to signal, renice or
/// list): killed and reaped when this drops, so a test that fails part
/// way leaves none behind. Started by [`running_as`], it also dies with
/// its test's thread when nothing drops (the test process is killed).
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

/// `program args` as `user`:`group` ([`as_user`]), once it has exec'd.
pub fn running_as(user: &str, group: &str, program: &str, args: &[&str]) -> Proc {
    let p = Proc(
        as_user(user, group, program)
            .args(args)
            .spawn()
            .expect("setpriv"),
    );
    let t = Instant::now();
    while std::fs::read_to_string(format!("/proc/{}/comm", p.id()))
        .map(|c| c.trim() != program)
        .unwrap_or(true)
    {
        assert!(t.elapsed() < Duration::from_secs(5), "{program} never ran");
        std::thread::sleep(Duration::from_millis(10));
    }
    p
}

/// Start time (stat field 22) of `pid`.
pub fn start_time(pid: i32) -> u64 {
    stat_field(pid, 22).expect("start time")
}

/// Field `n` (1-based, as in proc(5)) of `/proc/PID/stat`, counted after
/// the command name.
pub fn stat_field(pid: i32, n: usize) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split_whitespace().nth(n - 3)?.parse().ok()
}

/// The process state letter, `None` once it is gone.
pub fn state_of(pid: i32) -> Option<char> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat[stat.rfind(')')? + 2..].chars().next()
}

/// Alive and neither stopped nor a zombie.
pub fn alive_and_running(pid: i32) -> bool {
    matches!(state_of(pid), Some(c) if !matches!(c, 'T' | 't' | 'Z' | 'X'))
}

/// The key every test job is started for, unless a test says otherwise.
pub const TEST_KEY: &str = "ops";

/// Signals or renices one process as the gateway's DELETE and PATCH do
/// (a one-target `Act`), answered by its one outcome (or by what refused
/// the whole act, `Invalid`).
pub fn act_one(c: &mut Connection, target: Target, action: Action, caller: Caller) -> Response {
    let req = api_gateway::helper::act_one(target, action, caller);
    api_gateway::helper::only_outcome(c.request(&req, &[]).expect("answer"))
}

/// The caller the tests act as: the key that started their jobs.
pub fn test_caller() -> protocol::Caller {
    protocol::Caller {
        key: TEST_KEY.into(),
        all_jobs: false,
    }
}

/// Starts `cmd` as job `id` as soon as a uid is free: the one uid of a
/// pool is busy until the last job's cleanup has succeeded, which comes
/// after the job's end is reported.
pub fn start_job_when_free(
    c: &mut api_gateway::helper::Connection,
    dir: &std::path::Path,
    id: u8,
    cmd: &str,
) -> (protocol::JobStatus, JobFiles) {
    let t0 = std::time::Instant::now();
    loop {
        let files = JobFiles {
            out: dir.join(format!("out{id}")),
            err: dir.join(format!("err{id}")),
        };
        let out = std::fs::File::create(&files.out).expect("out");
        let err = std::fs::File::create(&files.err).expect("err");
        let r = c
            .request(
                &Request::Spawn {
                    job: protocol::JobId([id; 16]),
                    command: cmd.into(),
                    timeout_ms: 20_000,
                    key: TEST_KEY.into(),
                },
                &[
                    std::os::fd::AsFd::as_fd(&out),
                    std::os::fd::AsFd::as_fd(&err),
                ],
            )
            .expect("answer");
        match r {
            Response::Job(s) => return (*s, files),
            Response::Busy => {}
            other => panic!("spawn of {cmd:?}: {other:?}"),
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "the uid never came back"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
