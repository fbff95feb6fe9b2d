//! The gateway → helper boundary under abuse: hundreds of connections, a
//! descriptor-starved helper, an untrusted policy file, renice of a
//! multi-threaded process and of a bare thread id. Needs root: each test is
//! ignored unless asked for (`--include-ignored`, as `scripts/test` does as
//! root).

mod support;

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use protocol::{Action, Request, Response, Target};
use support::*;

fn served(h: &Helper) -> bool {
    match api_gateway::helper::Connection::connect(&h.sock, Duration::from_secs(2)) {
        Ok(mut c) => matches!(c.request(&Request::Info, &[]), Ok(Response::Info(_))),
        Err(_) => false,
    }
}

fn open_fds(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[test]
#[ignore = "needs root"]
fn three_hundred_idle_connections_do_not_lock_out_the_gateway() {
    require_root();
    let h = Helper::start_with(
        "conns",
        &policy(60850, ""),
        &["--max-connections", "32"],
        &[],
    );
    // Half never say anything; then half say hello and idle. The slots
    // end up held by greeted connections, which stay for the 300 s idle
    // timeout (a silent one goes after 5 s): a helper that let them lock
    // the gateway out would keep it out far longer than the 10 s below.
    let mut held = Vec::new();
    for i in 0..300 {
        if i >= 150 {
            if let Ok(c) = api_gateway::helper::Connection::connect(&h.sock, Duration::from_secs(2))
            {
                held.push(Err(c));
            }
        } else if let Ok(s) = UnixStream::connect(&h.sock) {
            held.push(Ok(s));
        }
    }
    let t0 = Instant::now();
    assert!(served(&h), "a fresh client was not served");
    assert!(t0.elapsed() < Duration::from_secs(10), "served, but slowly");
    // The helper holds at most its cap, not 300 descriptors.
    assert!(open_fds(h.pid()) < 32 + 16, "{} fds", open_fds(h.pid()));
    assert!(h
        .events("connection_closed")
        .iter()
        .any(|e| e["reason"] == "connection limit reached"));
    drop(held);
    assert!(served(&h));
}

#[test]
#[ignore = "needs root"]
fn out_of_descriptors_the_helper_backs_off_instead_of_spinning() {
    require_root();
    // 16 descriptors: a handful of connections exhaust them.
    let h = Helper::start_with(
        "emfile",
        &policy(60860, ""),
        &[],
        &["prlimit", "--nofile=16:16", "--"],
    );
    let mut held = Vec::new();
    for _ in 0..40 {
        if let Ok(s) = UnixStream::connect(&h.sock) {
            held.push(s);
        }
    }
    let ticks = |pid: i32| stat_field(pid, 14).unwrap_or(0) + stat_field(pid, 15).unwrap_or(0);
    let before = ticks(h.pid());
    std::thread::sleep(Duration::from_secs(2));
    let used = ticks(h.pid()) - before;
    // Spinning would be ~200 ticks in 2 s; a back-off is a few.
    assert!(used < 40, "the helper burnt {used} ticks in 2 s");
    let failures = h.events("accept_failed").len();
    assert!(
        (1..=10).contains(&failures),
        "{failures} accept-failure lines"
    );
    drop(held);
    let t0 = Instant::now();
    while !served(&h) {
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "not served after the flood"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
#[ignore = "needs root"]
fn an_untrusted_policy_file_is_refused_at_start_on_reload_and_by_check() {
    require_root();
    let h = Helper::start("trust", &policy(60870, ""));
    let path = h.dir.join("policy.toml");
    let bin = env!("CARGO_BIN_EXE_monitoreo-privhelper");
    let check = || {
        Command::new(bin)
            .args(["--check", "--gateway-user", "0", "--policy"])
            .arg(&path)
            .output()
            .expect("check")
    };
    assert!(check().status.success());
    // Writable by others: an attacker edits it, then waits for a reload.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).expect("chmod");
    let out = check();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("writable by group or others"), "{err}");
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .expect("open");
    writeln!(f, "# tampered").expect("write");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(h.pid()),
        nix::sys::signal::SIGHUP,
    )
    .expect("hup");
    let t0 = Instant::now();
    while !h.log_text().contains("keeping the old policy") {
        assert!(t0.elapsed() < Duration::from_secs(5), "{}", h.log_text());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(h.log_text().contains("refusing an untrusted policy"));
    assert!(served(&h), "the old policy keeps serving");
    // Owned by the gateway's user (nobody here): refused at start.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    std::os::unix::fs::chown(&path, Some(65534), None).expect("chown");
    let out = Command::new(bin)
        .args(["--gateway-user", "0", "--policy"])
        .arg(&path)
        .arg("--socket")
        .arg(h.dir.join("other.sock"))
        .stderr(Stdio::piped())
        .output()
        .expect("start");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("owned by uid 65534"), "{err}");
    assert!(!h.dir.join("other.sock").exists());
}

/// A python process of `nobody` with `threads` threads in all.
fn threaded_target(threads: usize) -> Proc {
    let script = format!(
        "import threading, time\n\
         for _ in range({}): threading.Thread(target=time.sleep, args=(60,), daemon=True).start()\n\
         print('ready', flush=True)\n\
         time.sleep(60)\n",
        threads - 1
    );
    let mut child = as_nobody("/usr/bin/python3")
        .args(["-c", &script])
        .stdout(Stdio::piped())
        .spawn()
        .expect("python");
    let mut line = String::new();
    use std::io::BufRead;
    let stdout = child.stdout.take().expect("stdout");
    std::io::BufReader::new(stdout)
        .read_line(&mut line)
        .expect("ready line");
    assert_eq!(line.trim(), "ready");
    Proc(child)
}

fn nices(pid: i32) -> Vec<(i32, u64)> {
    let mut v: Vec<(i32, u64)> = std::fs::read_dir(format!("/proc/{pid}/task"))
        .expect("tasks")
        .flatten()
        .filter_map(|e| {
            let tid: i32 = e.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
            let nice = stat[stat.rfind(')')? + 2..]
                .split_whitespace()
                .nth(16)?
                .parse()
                .ok()?;
            Some((tid, nice))
        })
        .collect();
    v.sort_unstable();
    v
}

#[test]
#[ignore = "needs root"]
fn renice_sets_every_thread_and_a_thread_id_is_not_a_process() {
    require_root();
    let h = Helper::start("threads", &policy(60880, ""));
    let mut c = h.connect();
    let mut child = threaded_target(4);
    let pid = child.id() as i32;
    let before = nices(pid);
    assert_eq!(before.len(), 4, "{before:?}");
    // A non-leader thread id, named as if it were a process: refused.
    let tid = before
        .iter()
        .map(|(t, _)| *t)
        .find(|t| *t != pid)
        .expect("a thread");
    let r = support::act_one(
        &mut c,
        Target {
            pid: tid,
            start_time: start_time(tid),
        },
        Action::Renice(10),
        test_caller(),
    );
    assert_eq!(r, Response::NotAProcess);
    let r = support::act_one(
        &mut c,
        Target {
            pid: tid,
            start_time: start_time(tid),
        },
        Action::Signal(protocol::Signal::Kill),
        test_caller(),
    );
    assert_eq!(r, Response::NotAProcess);
    assert_eq!(nices(pid), before, "nothing changed");
    // The process: every thread gets the value.
    let r = support::act_one(
        &mut c,
        Target {
            pid,
            start_time: start_time(pid),
        },
        Action::Renice(10),
        test_caller(),
    );
    assert_eq!(r, Response::Reniced { threads: 4 });
    assert!(nices(pid).iter().all(|(_, n)| *n == 10), "{:?}", nices(pid));
    let _ = child.kill();
    let _ = child.wait();
}
