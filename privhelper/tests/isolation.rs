//! The helper → job and job → job boundaries, played by an attacker: a job
//! that goes after another job's memory, descriptors, output and signals,
//! or after the helper's socket, and jobs that try to take the host's
//! processes or memory. Needs root: each test is ignored unless asked for
//! (`--include-ignored`, as `scripts/test` does as root).

mod support;

use std::time::Duration;

use protocol::{Action, JobState, Request, Response, Signal, Target};
use support::*;

/// Python run *inside* job A against job B's pid. Each line: an attack and
/// the errno name it got, or `OK` when it worked.
const ATTACK: &str = r#"
import ctypes, errno, os, socket, sys
pid = int(sys.argv[1]); sock = sys.argv[2]
libc = ctypes.CDLL(None, use_errno=True)
def t(name, f):
    try:
        f(); print(name, "OK")
    except OSError as e:
        print(name, errno.errorcode.get(e.errno, e.errno))
def call(r):
    if r < 0:
        e = ctypes.get_errno(); raise OSError(e, os.strerror(e))
t("environ", lambda: open(f"/proc/{pid}/environ", "rb").read())
t("mem", lambda: open(f"/proc/{pid}/mem", "rb").read(1))
t("fd_list", lambda: os.listdir(f"/proc/{pid}/fd"))
t("fd_write", lambda: open(f"/proc/{pid}/fd/1", "ab").write(b"forged\n"))
def getfd():
    pfd = os.pidfd_open(pid)
    fd = libc.syscall(438, pfd, 1, 0)
    call(fd)
    os.write(fd, b"forged\n")
t("pidfd_getfd", getfd)
t("renice", lambda: os.setpriority(os.PRIO_PROCESS, pid, 10))
t("ptrace", lambda: call(libc.ptrace(16, pid, 0, 0)))
t("kill", lambda: os.kill(pid, 15))
def helper():
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(5)
    s.connect(sock)
    s.sendall(b"\x08\x00\x00\x00\x00\x00\x00\x00\x02\x00\x00\x00")
    if s.recv(64) == b"":
        raise OSError(errno.ECONNRESET, "closed without an answer")
t("helper", helper)
"#;

/// Starts job 1, the victim: a secret in its environment, its stdout open.
fn start_victim(
    h: &Helper,
    c: &mut api_gateway::helper::Connection,
) -> (protocol::JobStatus, JobFiles) {
    let (b, files) = start_job(
        c,
        &h.dir,
        1,
        "export SECRET=hunter2; echo ready; exec sleep 60",
        30_000,
    );
    wait_for_text(&files.out, "ready", Duration::from_secs(5));
    (b, files)
}

/// Runs the attack from a job against `victim_pid`; returns its lines.
fn attack_from_a_job(
    h: &Helper,
    c: &mut api_gateway::helper::Connection,
    victim_pid: i32,
) -> String {
    let script = h.dir.join("attack.py");
    std::fs::write(&script, ATTACK).expect("script");
    let cmd = format!(
        "python3 {} {victim_pid} {}",
        script.display(),
        h.sock.display()
    );
    let (_, files) = start_job(c, &h.dir, 2, &cmd, 20_000);
    let s = wait_job(c, 2, Duration::from_secs(25));
    assert_eq!(s.exit_code, Some(0), "attack script: {}", files.read_err());
    files.read_out()
}

fn result_of<'a>(lines: &'a str, attack: &str) -> &'a str {
    lines
        .lines()
        .find_map(|l| l.strip_prefix(attack)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no result for {attack}: {lines}"))
}

#[test]
#[ignore = "needs root"]
fn a_job_cannot_read_trace_signal_or_write_into_another_job() {
    require_root();
    let h = Helper::start("iso", &policy(60800, ""));
    // The socket is made reachable on purpose: the peer check must hold
    // even where file permissions would not.
    std::fs::set_permissions(&h.sock, std::os::unix::fs::PermissionsExt::from_mode(0o666))
        .expect("chmod socket");
    let mut c = h.connect();
    let (b, b_files) = start_victim(&h, &mut c);
    let lines = attack_from_a_job(&h, &mut c, b.pid);
    for attack in [
        "environ",
        "mem",
        "fd_list",
        "fd_write",
        "kill",
        "renice",
        "ptrace",
        "pidfd_getfd",
    ] {
        let got = result_of(&lines, attack);
        assert!(
            got == "EPERM" || got == "EACCES",
            "{attack} from another job: {got}\n{lines}"
        );
    }
    assert_ne!(result_of(&lines, "helper"), "OK", "{lines}");
    // B is untouched: running, its output not forged, its nice unchanged.
    assert!(alive_and_running(b.pid), "job B was harmed");
    assert_eq!(b_files.read_out(), "ready\n");
    assert_eq!(stat_field(b.pid, 19), Some(0));
    // The helper refused and logged the job's connection.
    let refused = h.events("connection_refused");
    assert!(
        refused.iter().any(|e| e["peer_uid"]
            .as_u64()
            .is_some_and(|u| (60800..=60809).contains(&u))),
        "the job's connection was not refused by the peer check: {}",
        h.log_text()
    );
    // Every act was logged as one decision line with the peer.
    let spawns = h.events("decision");
    assert!(spawns
        .iter()
        .any(|e| e["request"] == "spawn" && e["outcome"] == "job"));
    // The API side may still act on a job through "@jobs".
    let t = Target {
        pid: b.pid,
        start_time: b.start_time,
    };
    let r = support::act_one(&mut c, t, Action::Signal(Signal::Term), test_caller());
    assert_eq!(r, Response::Ok);
    let s = wait_job(&mut c, 1, Duration::from_secs(5));
    assert_eq!(s.signal, Some(15));
}

#[test]
#[ignore = "needs root"]
fn with_a_shared_run_user_the_same_attack_succeeds_as_documented() {
    require_root();
    // The control experiment: it shows the attack above can succeed, so its
    // refusals are the per-job uids' doing.
    let p = policy(60800, "").replace("uids = \"60800-60809\"", "user = \"nobody\"");
    let p = p.replace("owners = [\"nobody\", \"@jobs\"]", "owners = [\"nobody\"]");
    let h = Helper::start("shared", &p);
    let mut c = h.connect();
    let (b, b_files) = start_victim(&h, &mut c);
    let lines = attack_from_a_job(&h, &mut c, b.pid);
    for attack in [
        "environ",
        "fd_list",
        "pidfd_getfd",
        "renice",
        "ptrace",
        "kill",
    ] {
        assert_eq!(result_of(&lines, attack), "OK", "{lines}");
    }
    assert!(b_files.read_out().contains("forged"));
    let info = c.request(&Request::Info, &[]).expect("info");
    assert!(
        matches!(info, Response::Info(ref i) if i.isolation == protocol::Isolation::SharedUser),
        "{info:?}"
    );
}

#[test]
#[ignore = "needs root"]
fn concurrent_jobs_get_distinct_uids_and_a_uid_is_reused_only_when_empty() {
    require_root();
    // A range of two uids: a third job must wait (Busy) until one drains.
    let p = policy(60810, "").replace("60810-60819", "60810-60811");
    let h = Helper::start("uids", &p);
    let mut c = h.connect();
    let (a, _) = start_job(&mut c, &h.dir, 1, "setsid sleep 60 & sleep 60", 30_000);
    let (b, _) = start_job(&mut c, &h.dir, 3, "sleep 60", 30_000);
    assert_ne!(a.uid, b.uid);
    assert!((60810..=60811).contains(&a.uid) && (60810..=60811).contains(&b.uid));
    let out = std::fs::File::create(h.dir.join("o9")).expect("o");
    let err = std::fs::File::create(h.dir.join("e9")).expect("e");
    use std::os::fd::AsFd;
    let r = c
        .request(
            &Request::Spawn {
                job: protocol::JobId([9; 16]),
                command: "true".into(),
                timeout_ms: 1000,
                key: TEST_KEY.into(),
            },
            &[out.as_fd(), err.as_fd()],
        )
        .expect("answer");
    assert_eq!(r, Response::Busy, "no free uid: busy");
    // Cancel A: its setsid grandchild dies with it, then its uid is free.
    let r = c
        .request(
            &Request::Cancel {
                job: protocol::JobId([1; 16]),
            },
            &[],
        )
        .expect("cancel");
    assert!(matches!(r, Response::Job(_)), "{r:?}");
    let end = wait_job(&mut c, 1, Duration::from_secs(5));
    assert_eq!(end.state, JobState::Cancelled);
    assert_eq!(
        end.cpu_usec.is_some(),
        end.containment == protocol::Containment::Cgroup,
        "the cgroup's CPU time is reported: {end:?}"
    );
    // Cancel is idempotent: a second one answers the same final status.
    let again = c
        .request(
            &Request::Cancel {
                job: protocol::JobId([1; 16]),
            },
            &[],
        )
        .expect("cancel");
    assert_eq!(again, Response::Job(Box::new(end)));
    assert_eq!(
        wait_uid_gone(a.uid, Duration::from_secs(5)),
        Vec::<i32>::new()
    );
    let t0 = std::time::Instant::now();
    let (d, _) = loop {
        let out = std::fs::File::create(h.dir.join("o4")).expect("o");
        let err = std::fs::File::create(h.dir.join("e4")).expect("e");
        let r = c
            .request(
                &Request::Spawn {
                    // Busy registers nothing, so the same id is retried.
                    job: protocol::JobId([4; 16]),
                    command: "id -u".into(),
                    timeout_ms: 5000,
                    key: TEST_KEY.into(),
                },
                &[out.as_fd(), err.as_fd()],
            )
            .expect("answer");
        match r {
            Response::Job(s) => break (s, ()),
            Response::Busy if t0.elapsed() < Duration::from_secs(5) => {
                std::thread::sleep(Duration::from_millis(50))
            }
            other => panic!("uid never freed: {other:?}"),
        }
    };
    assert_eq!(d.uid, a.uid, "the freed uid is reused");
    assert!(pids_of_uid(b.uid).contains(&b.pid), "B untouched");
}

#[test]
#[ignore = "needs root"]
fn a_fork_bomb_is_held_to_the_jobs_process_limit_and_killed_at_the_timeout() {
    require_root();
    let h = Helper::start("forkbomb", &policy(60820, ""));
    let mut c = h.connect();
    let (s, _) = start_job(&mut c, &h.dir, 1, "f() { f | f & }; f; sleep 30", 3000);
    assert!(
        s.limits.cgroup_pids_max.is_some() || s.limits.rlimit_nproc == 64,
        "{:?}",
        s.limits
    );
    let mut most = 0;
    let t0 = std::time::Instant::now();
    while t0.elapsed() < Duration::from_millis(2000) {
        most = most.max(pids_of_uid(s.uid).len());
        // The helper keeps serving meanwhile.
        let r = c.request(&Request::Info, &[]).expect("helper answers");
        assert!(matches!(r, Response::Info(_)));
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(most <= 64 + 1, "the bomb grew to {most} processes");
    // The job ends at its timeout, or earlier when its shell cannot fork
    // `sleep` any more; either way nothing of it may survive.
    wait_job(&mut c, 1, Duration::from_secs(10));
    assert_eq!(
        wait_uid_gone(s.uid, Duration::from_secs(5)),
        Vec::<i32>::new()
    );
}

#[test]
#[ignore = "needs root"]
fn a_memory_hog_is_stopped_and_the_helper_keeps_serving() {
    require_root();
    let h = Helper::start("memhog", &policy(60830, "memory_max = 134217728"));
    let mut c = h.connect();
    let (s, files) = start_job(
        &mut c,
        &h.dir,
        1,
        "python3 -c 'b = bytearray(1024 * 1024 * 1024); print(len(b))'",
        20_000,
    );
    let held = s.limits.cgroup_memory_max.or(s.limits.rlimit_as);
    assert_eq!(held, Some(134_217_728), "{:?}", s.limits);
    let end = wait_job(&mut c, 1, Duration::from_secs(25));
    assert!(
        end.exit_code != Some(0),
        "the hog allocated 1 GiB: {end:?} {}",
        files.read_out()
    );
    assert!(!files.read_out().contains("1073741824"));
    let r = c.request(&Request::Info, &[]).expect("helper answers");
    assert!(matches!(r, Response::Info(_)));
}

#[test]
#[ignore = "needs root"]
fn without_cgroups_a_setsid_escapee_is_swept_by_its_uid() {
    require_root();
    // An unusable cgroup root forces the process-group fallback.
    let h = Helper::start_with(
        "pgid",
        &policy(60840, ""),
        &["--cgroup-root", "/nonexistent-cgroup"],
        &[],
    );
    let mut c = h.connect();
    let (s, _) = start_job(
        &mut c,
        &h.dir,
        1,
        "setsid sleep 1041 & (sleep 1041 &); sleep 1041",
        1500,
    );
    assert_eq!(s.containment, protocol::Containment::Pgid);
    let end = wait_job(&mut c, 1, Duration::from_secs(10));
    assert_eq!(end.state, JobState::TimedOut);
    assert_eq!(
        wait_uid_gone(s.uid, Duration::from_secs(5)),
        Vec::<i32>::new(),
        "processes of the job's uid survived: {}",
        h.log_text()
    );
}

#[test]
#[ignore = "needs root"]
fn a_reused_uid_finds_nothing_of_the_job_that_had_it() {
    require_root();
    // One uid in the range: the second job must get the first one's uid.
    let p = policy(60890, "").replace("60890-60899", "60890-60890");
    let h = Helper::start("reuse", &p);
    let mut c = h.connect();
    let (a, _) = start_job(
        &mut c,
        &h.dir,
        1,
        "echo secret > $HOME/note; echo secret > /tmp/left-by-60890; \
         mkdir -p /dev/shm/dir-60890 && echo secret > /dev/shm/dir-60890/x; echo $HOME",
        5000,
    );
    let end = wait_job(&mut c, 1, Duration::from_secs(10));
    assert_eq!(end.exit_code, Some(0));
    let t0 = std::time::Instant::now();
    let (b, files) = loop {
        let out = std::fs::File::create(h.dir.join("o2")).expect("o");
        let err = std::fs::File::create(h.dir.join("e2")).expect("e");
        use std::os::fd::AsFd;
        let r = c
            .request(
                &Request::Spawn {
                    job: protocol::JobId([2; 16]),
                    command: format!(
                        "cat /tmp/left-by-60890 /dev/shm/dir-60890/x; \
                         ls /tmp | grep monitoreo-{}-job; echo $HOME; id -u",
                        h.pid()
                    ),
                    timeout_ms: 5000,
                    key: TEST_KEY.into(),
                },
                &[out.as_fd(), err.as_fd()],
            )
            .expect("answer");
        match r {
            Response::Job(s) => break (s, (h.dir.join("o2"), h.dir.join("e2"))),
            Response::Busy if t0.elapsed() < Duration::from_secs(5) => {
                std::thread::sleep(Duration::from_millis(50))
            }
            other => panic!("the uid was never freed: {other:?}"),
        }
    };
    assert_eq!(b.uid, a.uid);
    wait_job(&mut c, 2, Duration::from_secs(10));
    let out = std::fs::read_to_string(&files.0).unwrap_or_default();
    assert!(
        !out.contains("secret"),
        "a file of the earlier job survived: {out}"
    );
    assert!(out.contains("-job-0202"), "its own home: {out}");
    assert!(
        !out.contains("-job-0101"),
        "the earlier home is gone: {out}"
    );
    assert!(!std::path::Path::new("/tmp/left-by-60890").exists());
}

#[test]
#[ignore = "needs root"]
fn a_subscriber_hears_every_job_end_and_may_send_nothing_else() {
    require_root();
    let h = Helper::start("events", &policy(60910, ""));
    let mut events = h.connect().subscribe().expect("subscribed");
    let mut c = h.connect();
    start_job(&mut c, &h.dir, 1, "exit 3", 5000);
    start_job(&mut c, &h.dir, 2, "sleep 30", 300);
    let mut seen = std::collections::HashMap::new();
    while seen.len() < 2 {
        let (job, status) = events.recv().expect("an event");
        seen.insert(job.0[0], status);
    }
    assert_eq!(seen[&1].state, JobState::Exited);
    assert_eq!(seen[&1].exit_code, Some(3));
    assert_eq!(seen[&2].state, JobState::TimedOut);
    // The event stream takes no requests: one closes it, and the helper
    // still serves others.
    let frame = protocol::encode_frame(&protocol::Envelope {
        request_id: 0,
        request: Request::Info,
    })
    .expect("frame");
    use std::io::Write;
    let mut s = events.stream();
    let _ = s.write_all(&frame);
    assert!(events.recv().is_err(), "the stream was closed");
    let r = c.request(&Request::Info, &[]).expect("answer");
    assert!(matches!(r, Response::Info(_)));
}

/// The cgroup2 directory this test process is in (its `0::` line under the
/// cgroup2 mount point).
fn own_cgroup2() -> std::path::PathBuf {
    let info = std::fs::read_to_string("/proc/self/mountinfo").expect("mountinfo");
    let mount = info
        .lines()
        .find(|l| l.contains(" - cgroup2 "))
        .and_then(|l| l.split(' ').nth(4))
        .expect("a cgroup2 mount");
    let own = std::fs::read_to_string("/proc/self/cgroup").expect("own cgroup");
    let rel = own
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .expect("a 0:: line");
    std::path::Path::new(mount).join(rel.trim_start_matches('/'))
}

/// Empty cgroup directories a test made, removed (innermost first) when
/// it ends, passed or not.
struct Cgroups(Vec<std::path::PathBuf>);

impl Drop for Cgroups {
    fn drop(&mut self) {
        for d in self.0.iter().rev() {
            let _ = std::fs::remove_dir(d);
        }
    }
}

#[test]
#[ignore = "needs root"]
fn a_gone_helpers_job_cgroups_are_removed_at_start_and_no_other() {
    require_root();
    let base = own_cgroup2().join(format!("monitoreo-stale-test-{}", std::process::id()));
    // A helper that is gone: a process that has exited and been reaped.
    let mut gone = std::process::Command::new("true").spawn().expect("true");
    let gone_pid = gone.id();
    gone.wait().expect("wait");
    let stale = base.join(format!("monitoreo-{gone_pid}-job-aa"));
    // A live helper's job (this test's pid stands for it), and a cgroup
    // that is no helper's job: both stay.
    let live = base.join(format!("monitoreo-{}-job-bb", std::process::id()));
    let other = base.join("monitoreo-other");
    let made = Cgroups(vec![
        base.clone(),
        stale.clone(),
        live.clone(),
        other.clone(),
    ]);
    for d in &made.0 {
        std::fs::create_dir(d).expect("cgroup");
    }
    // No [run] section: the start readies no uids.
    let p = policy(60170, "").replace(", \"@jobs\"", "");
    let p = p.split("[run]").next().expect("policy").to_string();
    let root = base.to_str().expect("utf-8").to_string();
    let h = Helper::start_with("iso-stale", &p, &["--cgroup-root", &root], &[]);
    let removed = h.events("stale_cgroups_removed");
    assert!(!stale.exists(), "the gone helper's job cgroup was left");
    assert!(
        live.exists() && other.exists(),
        "a cgroup no gone helper left was removed"
    );
    assert_eq!(removed.len(), 1, "{removed:?}");
    assert_eq!(removed[0]["count"], 1, "{removed:?}");
    drop(h);
}

#[test]
#[ignore = "needs root"]
fn a_shared_user_job_that_stops_each_new_job_before_execve_cannot_freeze_the_helper() {
    require_root();
    // Uid 61333 is no other test's and no one's on the host: job A's
    // `kill -STOP -1` reaches only the processes of that uid.
    let p = policy(61330, "").replace("uids = \"61330-61339\"", "user = 61333");
    let p = p.replace("owners = [\"nobody\", \"@jobs\"]", "owners = [\"nobody\"]");
    let h = Helper::start("stopper", &p);
    // A longer wait for an answer than the helper's own bound on a start.
    let mut c =
        api_gateway::helper::Connection::connect(&h.sock, Duration::from_secs(30)).expect("hello");
    let stopper = "while :; do kill -STOP -1; done";
    // The stop catches a new job's child between its setresuid and its
    // execve only now and then (rarely on a loaded machine): start jobs
    // until one is caught, for up to a minute. Ids count up without bound
    // (in the JobId's first bytes).
    let mut next = 0u32;
    let mut start = |c: &mut api_gateway::helper::Connection, command: &str, timeout_ms| {
        next += 1;
        let mut job = [0xA5; 16];
        job[..4].copy_from_slice(&next.to_le_bytes());
        let out = std::fs::File::create(h.dir.join("out")).expect("out");
        let spawn = Request::Spawn {
            job: protocol::JobId(job),
            command: command.into(),
            timeout_ms,
            key: TEST_KEY.into(),
        };
        let fds = [std::os::fd::AsFd::as_fd(&out); 2];
        let answer = c
            .request(&spawn, &fds)
            .expect("the helper answers every start");
        (protocol::JobId(job), answer)
    };
    // Job A lives at most 30 s under this policy: when one ends (at its
    // timeout) the next is started. Never two at once: each would stop
    // the other.
    let (mut a, first) = start(&mut c, stopper, 20_000);
    assert!(matches!(first, Response::Job(_)), "{first:?}");
    let t0 = std::time::Instant::now();
    let mut a_since = t0;
    let mut caught = None;
    while caught.is_none() && t0.elapsed() < Duration::from_secs(60) {
        if a_since.elapsed() > Duration::from_secs(20) {
            let ended = wait_job_id(&mut c, a, Duration::from_secs(40));
            assert!(ended.timed_out, "job A ({a:?}) ended otherwise: {ended:?}");
            // Busy while the job limit is taken by stopped `true`s.
            a = loop {
                match start(&mut c, stopper, 20_000) {
                    (id, Response::Job(_)) => break id,
                    (_, Response::Busy) => std::thread::sleep(Duration::from_millis(100)),
                    (_, other) => panic!("{other:?}"),
                }
            };
            a_since = std::time::Instant::now();
        }
        match start(&mut c, "true", 1000) {
            (id, Response::Failed { errno }) => caught = Some((id, errno)),
            (_, Response::Job(_)) => {}
            (_, Response::Busy) => std::thread::sleep(Duration::from_millis(100)),
            (_, other) => panic!("{other:?}"),
        }
    }
    let (b, errno) = caught.expect("no start was caught before its execve");
    assert_eq!(errno, libc::ETIMEDOUT, "job {b:?}");
    let info = c.request(&Request::Info, &[]).expect("info");
    assert!(matches!(info, Response::Info(_)), "{info:?}");
    // The last stopper started ends at its timeout, not sooner.
    let ended = wait_job_id(&mut c, a, Duration::from_secs(40));
    assert!(ended.timed_out, "job A ({a:?}) ended otherwise: {ended:?}");
    // The caught child was killed too: nothing of the uid is left.
    assert_eq!(
        wait_uid_gone(61333, Duration::from_secs(10)),
        Vec::<i32>::new()
    );
}
