//! End to end: the real helper binary on a socket in a temp dir, real
//! target processes, the protocol's own client. Needs root (the helper
//! signals another user's processes and switches users): each test is
//! ignored unless asked for (`--include-ignored`, as `scripts/test` does as
//! root).

use std::fs;
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use api_gateway::helper::Connection;
use protocol::{Action, JobId, JobState, Request, Response, Signal, Target};
use support::{require_root, start_time, state_of, test_caller, wait_for_text, Helper, TEST_KEY};

mod support;

/// The e2e policy with its own job uid range (`first..=first+9`): tests
/// run in parallel, each with its own helper, and must not share job uids.
fn e2e_policy(first: u32) -> String {
    format!(
        r#"
[signal]
owners = ["nobody"]
signals = ["TERM", "KILL", "STOP", "CONT"]

[renice]
owners = ["nobody"]
min_nice = 0

[run]
uids = "{first}-{last}"
max_timeout_s = 30
max_jobs = 4
max_output_bytes = 1048576
cpu_s = 30
nofile = 64
nproc = 200
"#,
        last = first + 9
    )
}

/// Asserts that nothing signalled `child`, started at `start`: it has not
/// exited, is not stopped, a zombie or dead, is the same process and has
/// no signal pending. Whether it is sleeping (`S`) or running (`R`) at this
/// instant depends on load and is not checked.
fn assert_not_signalled(child: &mut Child, start: u64) {
    let pid = child.id() as i32;
    // Time for a signal that was sent to act.
    std::thread::sleep(Duration::from_millis(100));
    let exited = child.try_wait().expect("try_wait");
    assert_eq!(exited, None, "pid {pid} exited");
    let state = state_of(pid);
    assert!(
        matches!(state, Some(s) if !"TtZXx".contains(s)),
        "pid {pid} is in state {state:?}"
    );
    assert_eq!(start_time(pid), start, "pid {pid} is another process");
    let status = fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    for line in status
        .lines()
        .filter(|l| l.starts_with("SigPnd:") || l.starts_with("ShdPnd:"))
    {
        assert!(
            line.split_whitespace()
                .nth(1)
                .is_some_and(|m| m.trim_start_matches('0').is_empty()),
            "pid {pid} has a signal pending: {line}"
        );
    }
}

/// A `sleep` owned by `nobody` (or by root when `as_root`), once it has
/// exec'd.
fn target(as_root: bool) -> support::Proc {
    let (user, group) = if as_root {
        ("root", "root")
    } else {
        ("nobody", "nogroup")
    };
    support::running_as(user, group, "sleep", &["100"])
}

fn t(pid: i32) -> Target {
    Target {
        pid,
        start_time: if pid > 0 { start_time(pid) } else { 0 },
    }
}

fn sig(conn: &mut Connection, target: Target, signal: Signal) -> Response {
    support::act_one(conn, target, Action::Signal(signal), test_caller())
}

#[test]
#[ignore = "needs root"]
fn an_allowed_target_is_killed_and_reniced() {
    require_root();
    let h = Helper::start("e2e-allowed", &e2e_policy(60600));
    let mut c = h.connect();
    let mut victim = target(false);
    let pid = victim.id() as i32;
    let r = support::act_one(&mut c, t(pid), Action::Renice(7), test_caller());
    assert_eq!(r, Response::Reniced { threads: 1 });
    let nice: i32 = {
        let stat = fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
        stat[stat.rfind(')').expect("comm") + 2..]
            .split_whitespace()
            .nth(16)
            .expect("nice")
            .parse()
            .expect("n")
    };
    assert_eq!(nice, 7);
    assert_eq!(sig(&mut c, t(pid), Signal::Kill), Response::Ok);
    let status = victim.wait().expect("wait");
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(status.signal(), Some(9));
}

#[test]
#[ignore = "needs root"]
fn built_in_protections_and_policy_refuse_and_nothing_is_signalled() {
    require_root();
    let h = Helper::start("e2e-refusals", &e2e_policy(60610));
    let mut c = h.connect();
    let denied = |r: Response| match r {
        Response::Denied { rule, .. } => rule,
        other => panic!("expected Denied, got {other:?}"),
    };
    assert_eq!(
        denied(sig(
            &mut c,
            Target {
                pid: 1,
                start_time: start_time(1)
            },
            Signal::Term
        )),
        "builtin:pid<=1"
    );
    assert_eq!(
        denied(sig(
            &mut c,
            Target {
                pid: 0,
                start_time: 0
            },
            Signal::Term
        )),
        "builtin:pid<=1"
    );
    assert_eq!(
        denied(sig(
            &mut c,
            Target {
                pid: -5,
                start_time: 0
            },
            Signal::Term
        )),
        "builtin:negative-pid"
    );
    if Path::new("/proc/2/stat").exists()
        && fs::read_to_string("/proc/2/comm")
            .map(|s| s.trim() == "kthreadd")
            .unwrap_or(false)
    {
        assert_eq!(
            denied(sig(&mut c, t(2), Signal::Term)),
            "builtin:kernel-thread"
        );
    }
    let helper_pid = h.child.id() as i32;
    assert_eq!(
        denied(sig(&mut c, t(helper_pid), Signal::Kill)),
        "builtin:self"
    );
    let me = std::process::id() as i32;
    assert_eq!(denied(sig(&mut c, t(me), Signal::Kill)), "builtin:gateway");
    let parent = nix::unistd::getppid().as_raw();
    if parent > 1 {
        assert_eq!(
            denied(sig(&mut c, t(parent), Signal::Kill)),
            "builtin:ancestor"
        );
    }
    let mut root_sleep = target(true);
    let rp = root_sleep.id() as i32;
    let rp_start = start_time(rp);
    assert_eq!(denied(sig(&mut c, t(rp), Signal::Kill)), "signal.owners");
    let mut nobody_sleep = target(false);
    let np = nobody_sleep.id() as i32;
    let np_start = start_time(np);
    assert_eq!(denied(sig(&mut c, t(np), Signal::Usr1)), "signal.signals");
    let r = support::act_one(&mut c, t(np), Action::Renice(-5), test_caller());
    assert_eq!(denied(r), "renice.min_nice");
    let r = support::act_one(&mut c, t(np), Action::Renice(25), test_caller());
    assert!(matches!(r, Response::Invalid { .. }), "{r:?}");
    // Nothing was signalled: both targets still run and are not stopped.
    assert_not_signalled(&mut root_sleep, rp_start);
    assert_not_signalled(&mut nobody_sleep, np_start);
    assert!(state_of(helper_pid).is_some());
    root_sleep.kill().ok();
    nobody_sleep.kill().ok();
    let _ = (root_sleep.wait(), nobody_sleep.wait());
}

#[test]
#[ignore = "needs root"]
fn a_stale_start_time_is_a_mismatch_and_the_process_survives() {
    require_root();
    let h = Helper::start("e2e-stale", &e2e_policy(60620));
    let mut c = h.connect();
    let mut victim = target(false);
    let pid = victim.id() as i32;
    let born = start_time(pid);
    let stale = Target {
        pid,
        start_time: born - 1,
    };
    assert_eq!(sig(&mut c, stale, Signal::Kill), Response::Mismatch);
    assert_eq!(
        sig(
            &mut c,
            Target {
                pid,
                start_time: born + 1
            },
            Signal::Stop
        ),
        Response::Mismatch
    );
    assert_not_signalled(&mut victim, born);
    victim.kill().ok();
    let _ = victim.wait();
    // Gone: no such process.
    assert_eq!(sig(&mut c, stale, Signal::Kill), Response::NoSuchProcess);
}

#[test]
#[ignore = "needs root"]
fn a_client_that_is_neither_root_nor_the_gateway_is_refused() {
    require_root();
    let h = Helper::start("e2e-peer", &e2e_policy(60630));
    fs::set_permissions(&h.dir, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    std::os::unix::fs::chown(&h.sock, Some(65534), None).expect("chown");
    // A client running as nobody, speaking the protocol from Python.
    // The helper may close before the client has sent everything or read:
    // a broken pipe or a reset on either side still means refused, and
    // any byte that did arrive counts as an answer.
    let script = format!(
        "import socket,struct\ns=socket.socket(socket.AF_UNIX)\ns.settimeout(10)\n\
         s.connect({:?})\n\
         try:\n  s.sendall(struct.pack('<II',8,0)+struct.pack('<I',1))\n\
         except (BrokenPipeError,ConnectionResetError):\n  pass\n\
         n=0\ntry:\n  while True:\n    d=s.recv(64)\n    if not d:\n      break\n    n+=len(d)\n\
         except (BrokenPipeError,ConnectionResetError):\n  pass\n\
         except socket.timeout:\n  print('still open')\n  raise SystemExit\n\
         print('closed' if n==0 else 'answered %d bytes' % n)\n",
        h.sock.to_str().expect("utf8")
    );
    let out = support::as_nobody("/usr/bin/python3")
        .args(["-c", &script])
        .output()
        .expect("python client");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "closed",
        "{out:?}"
    );
    // The helper still serves the gateway.
    let mut c = h.connect();
    assert!(matches!(
        c.request(
            &Request::JobStatus {
                job: JobId([9; 16])
            },
            &[]
        ),
        Ok(Response::Invalid { .. })
    ));
}

fn raw(h: &Helper, bytes: &[u8]) -> Vec<u8> {
    let mut s = UnixStream::connect(&h.sock).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(8)))
        .expect("timeout");
    let _ = s.write_all(bytes);
    let _ = s.shutdown(std::net::Shutdown::Write);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    out
}

#[test]
#[ignore = "needs root"]
fn bad_frames_close_the_connection_and_the_next_client_is_served() {
    require_root();
    let h = Helper::start("e2e-frames", &e2e_policy(60640));
    // Oversize length, garbage, a truncated frame: closed with no answer.
    assert!(raw(&h, &(70_000u32).to_le_bytes()).is_empty());
    assert!(raw(&h, &[4, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]).is_empty());
    assert!(raw(&h, &[8, 0, 0, 0, 0, 0]).is_empty());
    // A request before Hello is closed too.
    let status = protocol::encode_frame(&protocol::Envelope {
        request_id: 0,
        request: Request::JobStatus {
            job: JobId([1; 16]),
        },
    })
    .expect("enc");
    assert!(raw(&h, &status).is_empty());
    // Wrong version: answered with our version, then closed.
    let hello = protocol::encode_frame(&protocol::Envelope {
        request_id: 0,
        request: Request::Hello { version: 999 },
    })
    .expect("enc");
    let answer = raw(&h, &hello);
    let decoded = protocol::decode_frame::<Response>(&answer)
        .expect("frame")
        .map(|(r, _)| r);
    assert!(
        matches!(
            decoded,
            Some(Response::Hello {
                version: protocol::PROTOCOL_VERSION,
                ..
            })
        ),
        "{decoded:?}"
    );
    // And the helper still serves a well-behaved client.
    let mut c = h.connect();
    assert!(c
        .request(
            &Request::JobStatus {
                job: JobId([2; 16])
            },
            &[]
        )
        .is_ok());
}

fn run_job(
    c: &mut Connection,
    dir: &Path,
    id: u8,
    cmd: &str,
    timeout_ms: u64,
) -> (protocol::JobStatus, Vec<u8>, Vec<u8>) {
    let out_p = dir.join(format!("out{id}"));
    let err_p = dir.join(format!("err{id}"));
    let out = fs::File::create(&out_p).expect("out");
    let err = fs::File::create(&err_p).expect("err");
    let job = JobId([id; 16]);
    let r = c
        .request(
            &Request::Spawn {
                job,
                command: cmd.into(),
                timeout_ms,
                key: TEST_KEY.into(),
            },
            &[out.as_fd(), err.as_fd()],
        )
        .expect("spawn answer");
    assert!(
        matches!(r, Response::Job(ref s) if s.state == JobState::Running),
        "{r:?}"
    );
    let t0 = Instant::now();
    loop {
        match c.request(&Request::JobStatus { job }, &[]).expect("status") {
            Response::Job(s) if s.state != JobState::Running => {
                return (
                    *s,
                    fs::read(&out_p).expect("read"),
                    fs::read(&err_p).expect("read"),
                );
            }
            Response::Job(_) => {}
            other => panic!("{other:?}"),
        }
        assert!(t0.elapsed() < Duration::from_secs(20), "job never ended");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
#[ignore = "needs root"]
fn a_command_runs_unprivileged_with_verbatim_output_and_its_status() {
    require_root();
    let h = Helper::start("e2e-spawn", &e2e_policy(60650));
    let mut c = h.connect();
    let (s, out, err) = run_job(
        &mut c,
        &h.dir,
        1,
        r"printf 'a\nb\n\001\377'; echo oops >&2",
        5000,
    );
    assert_eq!((s.state, s.exit_code), (JobState::Exited, Some(0)));
    assert_eq!(out, b"a\nb\n\x01\xff");
    assert_eq!(err, b"oops\n");
    let cmd = "id -u; id -G; grep -E '^(CapEff|CapBnd|NoNewPrivs)' /proc/self/status; env | cut -d= -f1 | sort | tr '\\n' ' '; echo; ls /proc/self/fd | tr '\\n' ' '";
    let (_, out, _) = run_job(&mut c, &h.dir, 2, cmd, 5000);
    let text = String::from_utf8_lossy(&out);
    let lines: Vec<&str> = text.lines().collect();
    let uid: u32 = lines[0].parse().expect("uid");
    assert!((60650..=60659).contains(&uid), "a per-job uid: {text}");
    assert_eq!(
        lines[1], lines[0],
        "gid = uid, no supplementary groups: {text}"
    );
    assert!(text.contains("CapEff:\t0000000000000000"), "{text}");
    assert!(text.contains("CapBnd:\t0000000000000000"), "{text}");
    assert!(text.contains("NoNewPrivs:\t1"), "{text}");
    for var in lines[5].split_whitespace() {
        assert!(
            ["PATH", "HOME", "TMPDIR", "LANG", "PWD", "SHLVL", "_", "OLDPWD"].contains(&var),
            "env leaked {var}: {text}"
        );
    }
    assert_eq!(
        lines[6].trim(),
        "0 1 2 3",
        "only 0-2 inherited (3 is ls's own): {text}"
    );
    let (s, _, _) = run_job(&mut c, &h.dir, 3, "exit 7", 5000);
    assert_eq!(
        (s.state, s.exit_code, s.signal),
        (JobState::Exited, Some(7), None)
    );
    let (s, _, _) = run_job(&mut c, &h.dir, 4, "kill -TERM $$", 5000);
    assert_eq!((s.state, s.signal), (JobState::Killed, Some(15)));
    // Spawn without descriptors is refused and closes nothing else.
    let job = JobId([5; 16]);
    let r = c.request(
        &Request::Spawn {
            job,
            command: "true".into(),
            timeout_ms: 1000,
            key: TEST_KEY.into(),
        },
        &[],
    );
    assert!(r.is_err(), "fd count is checked by the client too");
}

fn leftovers(marker: &str) -> Vec<String> {
    let mut found = Vec::new();
    for e in fs::read_dir("/proc").expect("proc").flatten() {
        if let Ok(cmd) = fs::read(e.path().join("cmdline")) {
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            if cmd.contains(marker) {
                found.push(format!("{} {cmd}", e.file_name().to_string_lossy()));
            }
        }
    }
    found
}

#[test]
#[ignore = "needs root"]
fn at_the_timeout_nothing_the_job_forked_survives() {
    require_root();
    let h = Helper::start("e2e-timeout", &e2e_policy(60660));
    let mut c = h.connect();
    let cases = [
        (11u8, "setsid sleep 1011 & sleep 1011", "sleep 1011"),
        (12, "(sleep 1012 &) ; sleep 1012", "sleep 1012"),
        (
            13,
            "for i in $(seq 50); do sleep 1013 & done; wait",
            "sleep 1013",
        ),
    ];
    for (id, cmd, marker) in cases {
        let (s, _, _) = run_job(&mut c, &h.dir, id, cmd, 1500);
        assert_eq!(s.state, JobState::TimedOut, "{cmd}: {s:?}");
        assert!(s.timed_out);
        let t0 = Instant::now();
        while !leftovers(marker).is_empty() && t0.elapsed() < Duration::from_secs(3) {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert_eq!(
            leftovers(marker),
            Vec::<String>::new(),
            "{cmd} left processes behind"
        );
    }
}

#[test]
#[ignore = "needs root"]
fn a_malformed_policy_stops_start_up_naming_the_line() {
    require_root();
    let dir = std::env::temp_dir().join(format!("ph-e2e-bad-{}", std::process::id()));
    fs::create_dir_all(&dir).expect("dir");
    fs::write(
        dir.join("p.toml"),
        "[signal]\nsignals = [\"TERM\"]\nowners = [nobody]\n",
    )
    .expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_monitoreo-privhelper"))
        .args([
            "--policy",
            dir.join("p.toml").to_str().expect("utf8"),
            "--socket",
        ])
        .arg(dir.join("s.sock"))
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 3"), "{err}");
    assert!(!dir.join("s.sock").exists(), "no socket for a bad policy");
    let _ = fs::remove_dir_all(&dir);
}

/// Sends SIGHUP and waits until the helper has logged its `n`th reload
/// outcome (applied or refused), failing if it exits instead.
fn hup_and_wait(h: &Helper, n: usize) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(h.pid()),
        nix::sys::signal::SIGHUP,
    )
    .expect("hup");
    let t0 = Instant::now();
    loop {
        let done = h.events("policy_reloaded").len() + h.events("policy_reload_failed").len();
        if done >= n {
            return;
        }
        assert!(
            !matches!(state_of(h.pid()), None | Some('Z' | 'X')),
            "the helper died of SIGHUP: {}",
            h.log_text()
        );
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "no reload logged: {}",
            h.log_text()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A reload sent the moment the socket accepts (as `systemctl reload` right
/// after start would) must reload, not kill the helper: the signals are
/// blocked before the socket exists.
#[test]
#[ignore = "needs root"]
fn a_sighup_as_soon_as_the_socket_listens_reloads() {
    require_root();
    for round in 0..20 {
        let h = Helper::start(&format!("e2e-early-hup{round}"), &e2e_policy(60700));
        hup_and_wait(&h, 1);
        assert_eq!(h.events("policy_reloaded").len(), 1, "round {round}");
    }
}

#[test]
#[ignore = "needs root"]
fn a_bad_reload_keeps_the_old_policy_and_a_good_one_applies() {
    require_root();
    let h = Helper::start("e2e-reload", &e2e_policy(60670));
    let policy = h.dir.join("policy.toml");
    fs::write(&policy, "this is [not toml").expect("write");
    hup_and_wait(&h, 1);
    assert_eq!(h.events("policy_reload_failed").len(), 1);
    let mut c = h.connect();
    let mut a = target(false);
    assert_eq!(
        sig(&mut c, t(a.id() as i32), Signal::Stop),
        Response::Ok,
        "old policy still applies"
    );
    fs::write(
        &policy,
        e2e_policy(60670).replace("owners = [\"nobody\"]\nsignals", "owners = []\nsignals"),
    )
    .expect("write");
    hup_and_wait(&h, 2);
    assert_eq!(h.events("policy_reloaded").len(), 1);
    let r = sig(&mut c, t(a.id() as i32), Signal::Cont);
    assert!(
        matches!(r, Response::Denied { ref rule, .. } if rule == "signal.owners"),
        "{r:?}"
    );
    a.kill().ok();
    let _ = a.wait();
}

#[test]
#[ignore = "needs root"]
fn a_job_is_killed_at_its_timeout_even_after_the_client_is_gone() {
    require_root();
    let h = Helper::start("e2e-orphan", &e2e_policy(60680));
    {
        let mut c = h.connect();
        let out = fs::File::create(h.dir.join("o")).expect("out");
        let err = fs::File::create(h.dir.join("e")).expect("err");
        // The escapee says so in the output file, which outlives it: the
        // test sees that it ran however late it looks, not only while it
        // still runs.
        let r = c
            .request(
                &Request::Spawn {
                    job: JobId([21; 16]),
                    command: "setsid sh -c 'echo escaped; exec sleep 1021' & sleep 1021".into(),
                    timeout_ms: 2000,
                    key: TEST_KEY.into(),
                },
                &[out.as_fd(), err.as_fd()],
            )
            .expect("spawn");
        assert!(matches!(r, Response::Job(_)), "{r:?}");
    }
    // Nobody is connected now; the helper's own deadline (2 s) must end
    // every process of the job, the one in a session of its own too.
    wait_for_text(&h.dir.join("o"), "escaped", Duration::from_secs(10));
    let t0 = Instant::now();
    while !leftovers("sleep 1021").is_empty() && t0.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(leftovers("sleep 1021"), Vec::<String>::new());
    let mut c = h.connect();
    let r = c
        .request(
            &Request::JobStatus {
                job: JobId([21; 16]),
            },
            &[],
        )
        .expect("status");
    assert!(
        matches!(r, Response::Job(ref s) if s.state == JobState::TimedOut),
        "{r:?}"
    );
}
