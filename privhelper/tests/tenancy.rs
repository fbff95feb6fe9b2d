//! Key → key and instance → instance through the helper, played by an
//! attacker: a key acting on another key's job, a key going after a job
//! uid's cleaner, a job leaving residue for the next holder of its uid, a
//! second helper taking uids another one holds. Needs root: each test is
//! ignored unless asked for (`--include-ignored`, as `scripts/test` does as
//! root).

mod support;

use std::os::unix::fs::MetadataExt;
use std::process::Command;
use std::time::Duration;

use protocol::{Action, Caller, Request, Response, Signal, Target};
use support::*;

fn signal(
    c: &mut api_gateway::helper::Connection,
    pid: i32,
    sig: Signal,
    caller: Caller,
) -> Response {
    support::act_one(
        c,
        Target {
            pid,
            start_time: start_time(pid),
        },
        Action::Signal(sig),
        caller,
    )
}

fn key(name: &str, all_jobs: bool) -> Caller {
    Caller {
        key: name.into(),
        all_jobs,
    }
}

/// A `sleep` running as `uid` (and gid), started by the test itself, as
/// the helper starts a uid's cleaner: outside any running job.
fn sleep_as(uid: u32) -> Proc {
    let id = uid.to_string();
    running_as(&id, &id, "sleep", &["60"])
}

#[test]
#[ignore = "needs root"]
fn another_keys_job_is_refused_and_its_owner_and_an_admin_may_act() {
    require_root();
    let h = Helper::start("ten-keys", &policy(60930, ""));
    let mut c = h.connect();
    let (job, files) = start_job(&mut c, &h.dir, 1, "echo ready; exec sleep 60", 30_000);
    wait_for_text(&files.out, "ready", Duration::from_secs(5));
    for sig in [Signal::Kill, Signal::Stop] {
        match signal(&mut c, job.pid, sig, key("mallory", false)) {
            Response::Denied { rule, .. } => assert_eq!(rule, "builtin:other-key-job"),
            other => panic!("{sig:?} from another key: {other:?}"),
        }
    }
    let renice = support::act_one(
        &mut c,
        Target {
            pid: job.pid,
            start_time: start_time(job.pid),
        },
        Action::Renice(19),
        key("mallory", false),
    );
    assert!(
        matches!(&renice, Response::Denied { rule, .. } if rule == "builtin:other-key-job"),
        "{renice:?}"
    );
    assert!(
        alive_and_running(job.pid),
        "another key's signal got through"
    );
    assert_eq!(
        stat_field(job.pid, 19),
        Some(0),
        "another key's renice got through"
    );
    // The decision line names the key that asked.
    assert!(h
        .events("decision")
        .iter()
        .any(|e| e["key"] == "mallory" && e["rule"] == "builtin:other-key-job"));

    // An admin key (all_jobs) and the owner may.
    assert_eq!(
        signal(&mut c, job.pid, Signal::Cont, key("root-ops", true)),
        Response::Ok
    );
    assert_eq!(
        signal(&mut c, job.pid, Signal::Kill, test_caller()),
        Response::Ok
    );
    wait_job(&mut c, 1, Duration::from_secs(10));
}

#[test]
#[ignore = "needs root"]
fn a_job_uid_with_no_running_job_behind_it_is_no_job() {
    // The uid's cleaner runs as the job uid after the job ended, outside
    // any job cgroup: `@jobs` once matched it by the uid range, so a key
    // with `signal` could KILL or STOP a cleanup. Played here by a process
    // of a free job uid.
    require_root();
    let h = Helper::start("ten-cleaner", &policy(60940, ""));
    let mut c = h.connect();
    let mut victim = sleep_as(60945);
    let pid = victim.id() as i32;
    for sig in [Signal::Stop, Signal::Kill] {
        for caller in [test_caller(), key("root-ops", true)] {
            match signal(&mut c, pid, sig, caller.clone()) {
                Response::Denied { rule, .. } => assert_eq!(rule, "signal.owners"),
                other => panic!("{sig:?} as {caller:?} on a free job uid: {other:?}"),
            }
        }
    }
    assert!(
        alive_and_running(pid),
        "a process of a free job uid was signalled"
    );
    let _ = victim.kill();
    let _ = victim.wait();
}

/// Python run inside a job: `leave DIRS_FILE` leaves a mark of this uid
/// everywhere it can (a 0600 file in each world-writable directory the
/// host has, SysV shared memory, a semaphore set and a message queue, a
/// POSIX message queue, a key in the user, user-session and session
/// keyrings) and prints what it made; `find DIRS_FILE` prints `FOUND …`
/// for each of them it can see.
const RESIDUE: &str = r#"
import ctypes, ctypes.util, errno, os, platform, sys
libc = ctypes.CDLL(None, use_errno=True)
rt = ctypes.CDLL(ctypes.util.find_library("rt") or "librt.so.1", use_errno=True)
ADD_KEY, KEYCTL = {"x86_64": (248, 250), "aarch64": (217, 219)}[platform.machine()]
mode, dirs = sys.argv[1], open(sys.argv[2]).read().split("\n")
KEY = 0x4d4f4e00
RINGS = {"user": -4, "user-session": -5, "session": -3}
name = lambda d: os.path.join(d, "monitoreo-residue")
if mode == "leave":
    for d in dirs:
        try:
            fd = os.open(name(d), os.O_CREAT | os.O_WRONLY, 0o600)
            os.write(fd, b"secret"); os.close(fd); print("made file", d)
        except OSError:
            pass
    if libc.shmget(KEY + 1, 4096, 0o1600) >= 0: print("made shm")
    if libc.semget(KEY + 2, 1, 0o1600) >= 0: print("made sem")
    if libc.msgget(KEY + 3, 0o1600) >= 0: print("made msg")
    rt.mq_open.restype = ctypes.c_int
    if rt.mq_open(b"/monitoreo-residue", os.O_CREAT | os.O_RDWR, 0o600, None) >= 0: print("made mq")
    for ring, id in RINGS.items():
        if libc.syscall(ADD_KEY, b"user", b"monitoreo-residue", b"secret", 6, id) >= 0:
            print("made key", ring)
    # Taking its own rights on the user keyring away would leave the
    # uid's cleaner unable to empty it.
    r = libc.syscall(KEYCTL, 5, -4, 0)
    print("setperm", "done" if r >= 0 else errno.errorcode[ctypes.get_errno()])
else:
    for d in dirs:
        if d and os.path.lexists(name(d)): print("FOUND file", d)
    if libc.shmget(KEY + 1, 0, 0) >= 0: print("FOUND shm")
    if libc.semget(KEY + 2, 0, 0) >= 0: print("FOUND sem")
    if libc.msgget(KEY + 3, 0) >= 0: print("FOUND msg")
    if rt.mq_open(b"/monitoreo-residue", os.O_RDONLY) >= 0: print("FOUND mq")
    for ring, id in RINGS.items():
        if libc.syscall(KEYCTL, 10, id, b"user", b"monitoreo-residue", 0) >= 0:
            print("FOUND key", ring)
print("done")
"#;

/// Every world-writable directory of this host (outside /proc and /sys),
/// as `find` sees it.
fn world_writable_dirs() -> Vec<String> {
    let out = Command::new("find")
        .args([
            "/", "(", "-path", "/proc", "-o", "-path", "/sys", ")", "-prune", "-o", "-type", "d",
            "-perm", "-0002", "-print",
        ])
        .output()
        .expect("find");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// A policy whose job uid range is `first..=first+n-1`.
fn policy_of(first: u32, n: u32) -> String {
    policy(first, "").replace(
        &format!("uids = \"{first}-{}\"", first + 9),
        &format!("uids = \"{first}-{}\"", first + n - 1),
    )
}

#[test]
#[ignore = "needs root"]
fn a_reused_uid_finds_nothing_the_last_job_left() {
    require_root();
    // One uid: the second job gets the first one's.
    let h = Helper::start("ten-residue", &policy_of(60950, 1));
    let dirs = world_writable_dirs();
    assert!(dirs.iter().any(|d| d == "/tmp"), "{dirs:?}");
    let list = h.dir.join("dirs");
    std::fs::write(&list, dirs.join("\n")).expect("dirs");
    let script = h.dir.join("residue.py");
    std::fs::write(&script, RESIDUE).expect("script");
    let mut c = h.connect();
    let run = |c: &mut api_gateway::helper::Connection, id: u8, mode: &str| {
        let cmd = format!("python3 {} {mode} {}", script.display(), list.display());
        let (s, files) = start_job_when_free(c, &h.dir, id, &cmd);
        let end = wait_job(c, id, Duration::from_secs(25));
        assert_eq!(end.exit_code, Some(0), "{mode}: {}", files.read_err());
        (s.uid, files.read_out())
    };
    let (uid1, made) = run(&mut c, 1, "leave");
    // The marks were made, so finding none proves something.
    for what in [
        "made file /tmp",
        "made shm",
        "made sem",
        "made msg",
        "made mq",
        "made key user",
    ] {
        assert!(made.lines().any(|l| l == what), "{what} missing:\n{made}");
    }
    let (uid2, found) = run(&mut c, 2, "find");
    assert_eq!(uid1, uid2, "the uid was not reused");
    assert!(found.ends_with("done\n"), "{found}");
    assert!(
        !found.contains("FOUND"),
        "the next holder of uid {uid1} found:\n{found}"
    );
    // Nor did anything of it reach the host's own directories.
    for d in &dirs {
        let p = std::path::Path::new(d).join("monitoreo-residue");
        assert!(!p.exists(), "{} left on the host", p.display());
    }
}

#[test]
#[ignore = "needs root"]
fn a_second_helper_with_an_overlapping_range_refuses_to_start() {
    // Instance → instance: two helpers handing out the same uid would let
    // one's job read and signal the other's, and one's cleaner delete the
    // other's files.
    require_root();
    let a = Helper::start("ten-lock-a", &policy(60960, ""));
    let dir = a.dir.join("b");
    std::fs::create_dir_all(&dir).expect("dir");
    let p = dir.join("policy.toml");
    std::fs::write(&p, policy_of(60965, 10)).expect("policy");
    let out = Command::new(env!("CARGO_BIN_EXE_monitoreo-privhelper"))
        .args(["--policy", p.to_str().expect("utf8")])
        .args(["--socket", dir.join("s").to_str().expect("utf8")])
        .args(["--gateway-user", "0"])
        .output()
        .expect("run");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("job uids 60965-60974 overlap uids 60960-60969")
            && err.contains("another running helper"),
        "{err}"
    );
    assert!(
        !dir.join("s").exists(),
        "the refused helper made its socket"
    );
    // The first one serves on, and a range of its own starts.
    let mut c = a.connect();
    let (s, _) = start_job(&mut c, &a.dir, 1, "true", 5_000);
    assert!((60960..=60969).contains(&s.uid));
    drop(Helper::start("ten-lock-c", &policy(60970, "")));
}

#[test]
#[ignore = "needs root"]
fn a_uid_a_dead_helpers_job_still_runs_as_is_reclaimed_before_reuse() {
    require_root();
    // What a helper that died left running, as its own uid.
    let mut old = sleep_as(60980);
    let old_pid = old.id() as i32;
    // Reaped as init would reap an orphan.
    let reaper = std::thread::spawn(move || old.wait());
    let h = Helper::start("ten-reclaim", &policy_of(60980, 1));
    let mut c = h.connect();
    // The one uid is busy until the old job is gone and the uid cleaned.
    let t0 = std::time::Instant::now();
    let s = loop {
        let out = std::fs::File::create(h.dir.join("out")).expect("out");
        let r = c
            .request(
                &Request::Spawn {
                    job: protocol::JobId([7; 16]),
                    command: "true".into(),
                    timeout_ms: 5_000,
                    key: TEST_KEY.into(),
                },
                &[
                    std::os::fd::AsFd::as_fd(&out),
                    std::os::fd::AsFd::as_fd(&out),
                ],
            )
            .expect("answer");
        match r {
            Response::Job(s) => break s,
            Response::Busy => {}
            other => panic!("{other:?}"),
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "the uid never came back"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(s.uid, 60980);
    // By then the old process was killed, not shared.
    let _ = reaper.join();
    assert!(!std::path::Path::new(&format!("/proc/{old_pid}")).exists());
    let ev = h.events("uid_reclaimed");
    assert!(
        ev.iter().any(|e| e["job_uid"] == 60980
            && e["reason"]
                .as_str()
                .is_some_and(|r| r.contains(&old_pid.to_string()))),
        "{ev:?}"
    );
}

#[test]
#[ignore = "needs root"]
fn check_says_whether_a_range_is_free_or_held() {
    require_root();
    let h = Helper::start("ten-check", &policy(60990, ""));
    let check = |first: u32| {
        let p = h.dir.join(format!("check-{first}.toml"));
        std::fs::write(&p, policy(first, "")).expect("policy");
        let out = Command::new(env!("CARGO_BIN_EXE_monitoreo-privhelper"))
            .args(["--check", "--gateway-user", "0", "--policy"])
            .arg(&p)
            .output()
            .expect("check");
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let held = check(60995);
    assert!(
        held.contains("overlap uids 60990-60999 that another running helper holds"),
        "{held}"
    );
    let free = check(61010);
    assert!(free.contains("job uids 61010-61019: free"), "{free}");
}

#[test]
#[ignore = "needs root"]
fn a_jobs_memory_is_bounded_as_a_whole_not_per_process() {
    // On a hybrid host (v2 without controllers) RLIMIT_AS held each
    // process alone: four 150 MiB processes made a 600 MiB job under a
    // 256 MiB memory_max. With a memory cgroup (v2, or v1 on such a host)
    // the job as a whole is held.
    require_root();
    let h = Helper::start("ten-mem", &policy(61020, "memory_max = 268435456"));
    let mut c = h.connect();
    let (s, files) = start_job(
        &mut c,
        &h.dir,
        1,
        "for i in 1 2 3 4; do python3 -c 'import time; b = b\"x\" * (150 << 20); \
         time.sleep(2); print(\"held\", flush=True)' & done; wait",
        30_000,
    );
    assert_eq!(
        (s.limits.cgroup_memory_max, s.limits.rlimit_as),
        (Some(268_435_456), None),
        "no memory cgroup holds the job on this host: {:?}; the start line says why",
        s.limits
    );
    assert!(s.limits.cgroup_pids_max.is_some(), "{:?}", s.limits);
    let end = wait_job(&mut c, 1, Duration::from_secs(25));
    let held = files.read_out().lines().filter(|l| *l == "held").count();
    assert!(held <= 1, "{held} processes held 150 MiB each: {end:?}");
    if let Some(peak) = end.memory_peak {
        assert!(peak <= 268_435_456, "peak {peak}");
    }
}

/// Waits until `pid` runs `comm` and its `/proc/PID/status` belongs to
/// root: the kernel's mark of a process that is not dumpable or whose
/// effective uid is root, whose `/proc/PID` may then belong to root too.
fn wait_hidden(pid: i32, comm: &str) {
    let t = std::time::Instant::now();
    loop {
        let now = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        let owner = std::fs::metadata(format!("/proc/{pid}/status")).map(|m| m.uid());
        if now.trim() == comm && owner.is_ok_and(|u| u == 0) {
            return;
        }
        assert!(t.elapsed() < Duration::from_secs(5), "{comm} never ran");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
#[ignore = "needs root"]
fn a_uid_is_passed_over_when_its_process_is_not_dumpable_or_setuid_root() {
    require_root();
    let h = Helper::start("ten-hidden", &policy_of(61070, 3));
    // Runs as 61070 and made itself not dumpable (the system's python,
    // not a shim root's PATH may name).
    let hide = "import ctypes, time; ctypes.CDLL(None).prctl(4, 0, 0, 0, 0); time.sleep(60)";
    let mut python = as_user("61070", "61070", "/usr/bin/python3");
    let mut hidden = Proc(python.args(["-c", hide]).spawn().expect("python3"));
    wait_hidden(hidden.id() as i32, "python3");
    // Real uid 61071, effective uid root: what a setuid-root program that
    // a process of the uid runs looks like.
    let mut setuid = Command::new("setpriv");
    setuid.args(["--ruid=61071", "--pdeathsig=KILL", "sleep", "60"]);
    let mut elevated = Proc(setuid.spawn().expect("setpriv"));
    wait_hidden(elevated.id() as i32, "sleep");
    let mut c = h.connect();
    for id in 1..=3 {
        let (s, _) = start_job_when_free(&mut c, &h.dir, id, "true");
        assert_eq!(s.uid, 61072, "job {id} got a uid a process runs as");
        wait_job(&mut c, id, Duration::from_secs(10));
    }
    for p in [&mut hidden, &mut elevated] {
        assert!(
            alive_and_running(p.id() as i32),
            "a stray process was harmed"
        );
        let _ = p.kill();
        let _ = p.wait();
    }
}

#[test]
#[ignore = "needs root"]
fn a_uid_someone_runs_a_process_as_is_passed_over() {
    require_root();
    let h = Helper::start("ten-passed", &policy_of(61030, 2));
    // Started after the helper cleaned its range: nothing reclaims it.
    let mut stray = sleep_as(61030);
    let mut c = h.connect();
    for id in 1..=3 {
        // The one other uid is busy until the last job's cleanup is done.
        let (s, _) = start_job_when_free(&mut c, &h.dir, id, "true");
        assert_eq!(s.uid, 61031, "job {id} got the uid a process runs as");
        wait_job(&mut c, id, Duration::from_secs(10));
    }
    assert!(
        alive_and_running(stray.id() as i32),
        "the stray process was harmed"
    );
    let _ = stray.kill();
    let _ = stray.wait();
}
