//! The rows of PROTOCOL.md's check tables that the other suites do not
//! reach: renice against every built-in protection, the `names` lists,
//! each refusal of `Spawn`, and the conversation's closures. The real
//! helper binary on a socket in a temp dir, real processes; needs root (as
//! another user each test is ignored; asked for, it fails). Job uids
//! 60100-60199.

mod support;

use std::fs;
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use api_gateway::helper::send_with_fds;
use protocol::{
    encode_frame, Action, Envelope, JobId, JobState, Request, Response, Signal, Target,
};
use support::*;

/// A process of `nobody` running `program args`, once it has exec'd.
fn nobody_running(program: &str, args: &[&str]) -> Proc {
    running_as("nobody", "nogroup", program, args)
}

fn target(pid: i32) -> Target {
    Target {
        pid,
        start_time: if pid > 0 {
            stat_field(pid, 22).unwrap_or(0)
        } else {
            0
        },
    }
}

fn renice(c: &mut api_gateway::helper::Connection, target: Target, nice: i32) -> Response {
    support::act_one(c, target, Action::Renice(nice), test_caller())
}

fn signal(c: &mut api_gateway::helper::Connection, target: Target, signal: Signal) -> Response {
    support::act_one(c, target, Action::Signal(signal), test_caller())
}

fn rule(r: Response) -> String {
    match r {
        Response::Denied { rule, .. } => rule,
        other => panic!("expected Denied, got {other:?}"),
    }
}

/// Nice value (stat field 19) of `pid`.
fn nice_of(pid: i32) -> Option<u64> {
    stat_field(pid, 19)
}

/// Sends `spawn` with two fresh output files.
fn spawn(
    c: &mut api_gateway::helper::Connection,
    h: &Helper,
    id: u8,
    cmd: &str,
    timeout_ms: u64,
) -> Response {
    let out = fs::File::create(h.dir.join(format!("out{id}"))).expect("out");
    let err = fs::File::create(h.dir.join(format!("err{id}"))).expect("err");
    c.request(
        &Request::Spawn {
            job: JobId([id; 16]),
            command: cmd.into(),
            timeout_ms,
            key: TEST_KEY.into(),
        },
        &[out.as_fd(), err.as_fd()],
    )
    .expect("spawn answer")
}

fn invalid(r: Response) -> String {
    match r {
        Response::Invalid { what } => what,
        other => panic!("expected Invalid, got {other:?}"),
    }
}

/// What the helper sent on `s` until it closed it (bounded wait).
fn until_closed(mut s: &UnixStream) -> Vec<u8> {
    // A closure by a timeout comes at the loop's next wake-up, up to
    // `FRAME_TIMEOUT` (5 s) after it is due.
    s.set_read_timeout(Some(Duration::from_secs(15)))
        .expect("timeout");
    let mut out = Vec::new();
    match s.read_to_end(&mut out) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(e) => panic!("the connection was not closed: {e}"),
    }
    out
}

fn frame(request: Request) -> Vec<u8> {
    encode_frame(&Envelope {
        request_id: 0,
        request,
    })
    .expect("encode")
}

/// Whether the helper logged a closure with `reason`.
fn closed_because(h: &Helper, reason: &str) -> bool {
    h.events("connection_closed")
        .iter()
        .any(|e| e["reason"] == reason)
}

/// Waits (bounded) until the helper logged a closure with `reason`.
fn wait_closed_because(h: &Helper, reason: &str, within: Duration) {
    let t = Instant::now();
    while !closed_because(h, reason) {
        assert!(
            t.elapsed() < within,
            "no closure {reason:?}: {}",
            h.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
#[ignore = "needs root"]
fn renice_meets_every_built_in_protection_signal_meets() {
    require_root();
    let h = Helper::start("refusals-renice", &policy(60100, ""));
    let mut c = h.connect();
    assert_eq!(rule(renice(&mut c, target(-5), 5)), "builtin:negative-pid");
    assert_eq!(rule(renice(&mut c, target(0), 5)), "builtin:pid<=1");
    assert_eq!(rule(renice(&mut c, target(1), 5)), "builtin:pid<=1");
    if fs::read_to_string("/proc/2/comm").is_ok_and(|s| s.trim() == "kthreadd") {
        assert_eq!(rule(renice(&mut c, target(2), 5)), "builtin:kernel-thread");
    }
    assert_eq!(rule(renice(&mut c, target(h.pid()), 5)), "builtin:self");
    let me = std::process::id() as i32;
    assert_eq!(rule(renice(&mut c, target(me), 5)), "builtin:gateway");
    let parent = nix::unistd::getppid().as_raw();
    assert!(parent > 1, "the test runs under a parent of its own");
    assert_eq!(rule(renice(&mut c, target(parent), 5)), "builtin:ancestor");
    // The policy's owners: root's process is not listed.
    let mut roots = std::process::Command::new("sleep")
        .arg("100")
        .spawn()
        .expect("sleep");
    let rp = roots.id() as i32;
    let t0 = Instant::now();
    while fs::read_to_string(format!("/proc/{rp}/comm")).map_or(true, |c| c.trim() != "sleep") {
        assert!(t0.elapsed() < Duration::from_secs(5), "sleep never ran");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(rule(renice(&mut c, target(rp), 5)), "renice.owners");
    roots.kill().ok();
    roots.wait().ok();
    // Out of range: refused before the target is looked at.
    assert!(matches!(
        renice(&mut c, target(-5), 20),
        Response::Invalid { .. }
    ));
    // A stale start time, then a process that is gone.
    let mut victim = nobody_running("sleep", &["100"]);
    let pid = victim.id() as i32;
    let before = nice_of(pid);
    let born = target(pid);
    let stale = Target {
        pid,
        start_time: born.start_time - 1,
    };
    assert_eq!(renice(&mut c, stale, 5), Response::Mismatch);
    assert_eq!(nice_of(pid), before, "nothing was reniced");
    victim.kill().ok();
    victim.wait().ok();
    assert_eq!(renice(&mut c, born, 5), Response::NoSuchProcess);
}

#[test]
#[ignore = "needs root"]
fn a_process_whose_name_is_not_listed_is_refused_by_names() {
    require_root();
    let p = policy(60110, "")
        .replace("[signal]\nowners", "[signal]\nnames = [\"sleep\"]\nowners")
        .replace("[renice]\nowners", "[renice]\nnames = [\"sleep\"]\nowners");
    let h = Helper::start("refusals-names", &p);
    let mut c = h.connect();
    let mut listed = nobody_running("sleep", &["100"]);
    let mut other = nobody_running("tail", &["-f", "/dev/null"]);
    let (lp, op) = (listed.id() as i32, other.id() as i32);
    assert_eq!(
        rule(signal(&mut c, target(op), Signal::Term)),
        "signal.names"
    );
    assert_eq!(rule(renice(&mut c, target(op), 5)), "renice.names");
    assert_eq!(
        other.try_wait().expect("wait"),
        None,
        "the refused target still runs"
    );
    assert_eq!(
        renice(&mut c, target(lp), 5),
        Response::Reniced { threads: 1 }
    );
    assert_eq!(signal(&mut c, target(lp), Signal::Term), Response::Ok);
    let _ = listed.wait();
    other.kill().ok();
    other.wait().ok();
}

#[test]
#[ignore = "needs root"]
fn without_a_run_section_a_spawn_is_denied() {
    require_root();
    let p = policy(60120, "").replace(", \"@jobs\"", "");
    let p = p.split("[run]").next().expect("policy").to_string();
    let h = Helper::start("refusals-norun", &p);
    let mut c = h.connect();
    let r = spawn(&mut c, &h, 1, "true", 1000);
    assert_eq!(rule(r), "run");
    let decisions = h.events("decision");
    assert!(
        decisions
            .iter()
            .any(|d| d["request"] == "spawn" && d["rule"] == "run"),
        "{decisions:?}"
    );
}

#[test]
#[ignore = "needs root"]
fn a_spawn_outside_the_policys_bounds_is_invalid_and_runs_nothing() {
    require_root();
    let h = Helper::start("refusals-invalid", &policy(60130, ""));
    let mut c = h.connect();
    let what = invalid(spawn(&mut c, &h, 1, "true", 0));
    assert!(
        what.contains("timeout_s must be between 1 and 30 s"),
        "{what}"
    );
    invalid(spawn(&mut c, &h, 1, "true", 30_001));
    invalid(spawn(&mut c, &h, 1, "", 1000));
    invalid(spawn(&mut c, &h, 1, "true\0false", 1000));
    // None of these registered the job: its id is still free.
    assert!(matches!(
        c.request(
            &Request::JobStatus {
                job: JobId([1; 16])
            },
            &[]
        ),
        Ok(Response::Invalid { .. })
    ));
    // A known id, running or finished, is refused.
    assert!(matches!(
        spawn(&mut c, &h, 2, "sleep 30", 30_000),
        Response::Job(_)
    ));
    let what = invalid(spawn(&mut c, &h, 2, "true", 1000));
    assert!(what.contains("exists"), "{what}");
    c.request(
        &Request::Cancel {
            job: JobId([2; 16]),
        },
        &[],
    )
    .expect("cancel");
    assert_eq!(
        wait_job(&mut c, 2, Duration::from_secs(5)).state,
        JobState::Cancelled
    );
    invalid(spawn(&mut c, &h, 2, "true", 1000));
}

#[test]
#[ignore = "needs root"]
fn past_max_jobs_a_spawn_is_busy() {
    require_root();
    let p = policy(60140, "").replace("max_jobs = 8", "max_jobs = 1");
    let h = Helper::start("refusals-busy", &p);
    let mut c = h.connect();
    assert!(matches!(
        spawn(&mut c, &h, 1, "sleep 30", 30_000),
        Response::Job(_)
    ));
    assert_eq!(spawn(&mut c, &h, 2, "true", 1000), Response::Busy);
    assert!(
        matches!(
            c.request(
                &Request::JobStatus {
                    job: JobId([2; 16])
                },
                &[]
            ),
            Ok(Response::Invalid { .. })
        ),
        "a busy answer registers nothing"
    );
}

#[test]
#[ignore = "needs root"]
fn a_child_that_fails_before_execve_fails_the_spawn_with_its_errno() {
    require_root();
    // More descriptors than the kernel allows any process (fs.nr_open):
    // the child's setrlimit fails, before execve.
    let p = policy(60150, "").replace("nofile = 64", "nofile = 4294967296");
    let h = Helper::start("refusals-exec", &p);
    let mut c = h.connect();
    assert_eq!(
        spawn(&mut c, &h, 1, "echo ran", 1000),
        Response::Failed { errno: libc::EPERM }
    );
    for uid in 60150..=60159 {
        assert_eq!(
            wait_uid_gone(uid, Duration::from_secs(5)),
            Vec::<i32>::new(),
            "uid {uid}"
        );
    }
    let out = fs::read(h.dir.join("out1")).expect("out");
    assert!(out.is_empty(), "the command ran");
}

#[test]
#[ignore = "needs root and a writable cgroup v2 hierarchy"]
fn a_job_cgroup_that_cannot_be_created_fails_the_spawn() {
    require_root();
    let h = Helper::start("refusals-cgroup", &policy(60160, ""));
    let started = h.events("started");
    let containment = &started.first().expect("a start line")["containment"];
    let Some(root) = containment["cgroup"].as_str() else {
        panic!("this test needs the helper to contain jobs by cgroup: {containment}");
    };
    // The job's directory name is taken before the helper makes it.
    let taken = std::path::Path::new(root).join(format!(
        "monitoreo-{}-job-{}",
        h.pid(),
        JobId([1; 16]).to_hex()
    ));
    fs::create_dir(&taken).expect("plant the job's cgroup");
    let mut c = h.connect();
    let r = spawn(&mut c, &h, 1, "true", 1000);
    let _ = fs::remove_dir(&taken);
    assert_eq!(
        r,
        Response::Failed {
            errno: libc::EEXIST
        }
    );
    // Its uid went back: the next job starts.
    assert!(matches!(
        spawn(&mut c, &h, 2, "true", 1000),
        Response::Job(_)
    ));
}

#[test]
#[ignore = "needs root"]
fn a_second_hello_or_a_descriptor_count_the_frame_does_not_name_closes_the_connection() {
    require_root();
    let h = Helper::start("refusals-conv", &policy(60170, ""));
    let hello = frame(Request::Hello {
        version: protocol::PROTOCOL_VERSION,
    });
    // Hello twice: the first is answered, the second closes.
    let mut s = UnixStream::connect(&h.sock).expect("connect");
    s.write_all(&[hello.clone(), hello.clone()].concat())
        .expect("write");
    let answer = until_closed(&s);
    let (first, used) = protocol::decode_frame::<Response>(&answer)
        .expect("a frame")
        .expect("whole");
    assert!(matches!(first, Response::Hello { .. }), "{first:?}");
    assert_eq!(used, answer.len(), "one answer only");
    wait_closed_because(&h, "second hello", Duration::from_secs(2));
    // Spawn without its descriptors, and a status with one.
    let file = fs::File::create(h.dir.join("passed")).expect("file");
    let spawn_frame = frame(Request::Spawn {
        job: JobId([1; 16]),
        command: "true".into(),
        timeout_ms: 1000,
        key: TEST_KEY.into(),
    });
    let status_frame = frame(Request::JobStatus {
        job: JobId([1; 16]),
    });
    for (frame, fds) in [(spawn_frame, vec![]), (status_frame, vec![file.as_fd()])] {
        let s = UnixStream::connect(&h.sock).expect("connect");
        // Greeted first, so the descriptors ride with this frame alone.
        let greeted = api_gateway::helper::Connection::handshake(
            s.try_clone().expect("clone"),
            Duration::from_secs(5),
        )
        .expect("hello");
        send_with_fds(&s, &frame, &fds).expect("send");
        assert!(until_closed(&s).is_empty(), "answered");
        drop(greeted);
    }
    let mismatched = h
        .events("connection_closed")
        .iter()
        .filter(|e| e["reason"] == "descriptors do not match the request")
        .count();
    assert_eq!(mismatched, 2, "{}", h.log_text());
    // Nothing ran.
    assert!(matches!(
        h.connect().request(
            &Request::JobStatus {
                job: JobId([1; 16])
            },
            &[]
        ),
        Ok(Response::Invalid { .. })
    ));
}

#[test]
#[ignore = "needs root"]
fn a_half_written_frame_a_missing_hello_and_an_idle_connection_are_closed() {
    require_root();
    // Two helpers, so that which timeout closes a connection does not
    // depend on when a loop wakes: a connection idle past a short idle
    // timeout and also past `FRAME_TIMEOUT` would be closed for either.
    // This one keeps the default idle timeout (300 s): only the frame
    // timeouts can close its connections.
    let frames = Helper::start("refusals-frames", &policy(60180, ""));
    let t = Instant::now();
    let mut half = UnixStream::connect(&frames.sock).expect("connect");
    half.write_all(&[8, 0]).expect("two bytes of a length");
    let silent = UnixStream::connect(&frames.sock).expect("connect");
    for s in [&half, &silent] {
        until_closed(s);
    }
    assert!(
        t.elapsed() > Duration::from_millis(4900),
        "closed before FRAME_TIMEOUT: {:?}",
        t.elapsed()
    );
    for reason in ["half-written frame timed out", "no hello in time"] {
        assert!(
            closed_because(&frames, reason),
            "{reason}: {}",
            frames.log_text()
        );
    }
    assert!(!closed_because(&frames, "idle timeout"));
    drop(frames);
    // This one closes connections idle for 1 s. The event stream is
    // subscribed before the other connection says hello: were it not
    // exempt, it would be due no later than that one.
    let idles = Helper::start_with(
        "refusals-idle",
        &policy(60180, ""),
        &["--idle-timeout-s", "1"],
        &[],
    );
    let t = Instant::now();
    let events = idles.connect().subscribe().expect("subscribe");
    let idle = idles.connect();
    until_closed(idle.stream());
    assert!(
        t.elapsed() > Duration::from_millis(900),
        "closed too early: {:?}",
        t.elapsed()
    );
    assert!(
        closed_because(&idles, "idle timeout"),
        "{}",
        idles.log_text()
    );
    // An event stream is exempt from the idle timeout: still open.
    let mut stream = events.stream();
    stream.set_nonblocking(true).expect("nonblocking");
    let mut byte = [0u8; 1];
    let open = matches!(
        stream.read(&mut byte),
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock
    );
    assert!(open, "the event stream was closed: {}", idles.log_text());
}

#[test]
#[ignore = "needs root"]
fn a_target_dies_with_the_thread_that_started_it_even_when_nothing_drops_it() {
    require_root();
    // A test thread that ends without its guard dropping (as when the
    // test process is killed): the parent-death signal still ends it.
    let pid = std::thread::spawn(|| {
        let p = running_as("nobody", "nogroup", "tail", &["-f", "/dev/null"]);
        let pid = p.id() as i32;
        std::mem::forget(p);
        pid
    })
    .join()
    .expect("thread");
    let t = Instant::now();
    while fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(") ").map(|(_, rest)| rest.starts_with('Z')))
        == Some(false)
    {
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "the target outlived its thread"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None);
}
