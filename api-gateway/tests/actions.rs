//! Group actions over HTTP, with the real helper (root): plan, execute,
//! every refusal of a bad plan or execution, one audit line per target;
//! and `dry_run` on `DELETE`/`PATCH /api/ps`, which touches nothing.

mod support;

use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{helper_bin, nobody_sleep, require_root, Gateway, Helper};

fn setup() -> (Helper, Gateway, String) {
    require_root();
    let h = Helper::start(&helper_bin());
    let g = Gateway::start(&h.socket);
    let t = g.key("ops", "read,signal,renice", &[]);
    (h, g, t)
}

fn body(r: &support::Reply) -> String {
    String::from_utf8_lossy(&r.body).into_owned()
}

fn running(c: &mut Child) -> bool {
    c.try_wait().expect("wait").is_none()
}

fn plan(g: &Gateway, t: &str, req: &str) -> support::Reply {
    g.send("POST", "/api/actions/plan", Some(t), req)
}

/// The gateway's `max_plan_targets` is the default `max_targets`: three
/// matches against a configured 2 are refused (nothing planned, nothing
/// signalled) until the request raises it; above the frame's limit the
/// request is a 400.
#[test]
#[ignore = "needs root"]
fn max_plan_targets_is_the_default_and_a_request_raises_it() {
    require_root();
    let h = Helper::start(&helper_bin());
    let g = Gateway::start_with(&h.socket, "max_plan_targets = 2\n");
    let t = g.key("ops", "read,signal", &[]);
    let mut kids: Vec<Child> = (0..3).map(|_| nobody_sleep(303)).collect();
    let sel = r#""selector": {"match": {"user": "nobody", "cmdline": "^sleep 303$"}}, "action": {"signal": "TERM"}"#;
    let r = plan(&g, &t, &format!("{{{sel}}}"));
    assert_eq!(r.status, 422, "{}", body(&r));
    assert_eq!(r.json()["code"], "too_many_targets");
    assert!(body(&r).contains("max_targets 2"), "{}", body(&r));
    let r = plan(&g, &t, &format!(r#"{{{sel}, "max_targets": 257}}"#));
    assert_eq!(r.status, 400, "{}", body(&r));
    assert!(body(&r).contains("1..=256"), "{}", body(&r));
    let r = plan(&g, &t, &format!(r#"{{{sel}, "max_targets": 3}}"#));
    assert_eq!(r.status, 201, "{}", body(&r));
    assert_eq!(r.json()["count"], 3);
    assert!(kids.iter_mut().all(running), "planning signals nothing");
    for k in &mut kids {
        let _ = k.kill();
        let _ = k.wait();
    }
    for bad in ["0", "257"] {
        let out =
            Gateway::configure(&h.socket, &format!("max_plan_targets = {bad}\n")).serve_refused();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!(
                "max_plan_targets must be between 1 and 256, got {bad}"
            )),
            "{err}"
        );
    }
}

/// The policy's `[signal] max_targets` caps what a request may raise
/// `max_targets` to, and lowers the configured default to it; whoami
/// shows it with the rule; `[renice]` keeps its own cap.
#[test]
#[ignore = "needs root"]
fn the_policys_max_targets_caps_a_plan() {
    let (mut h, g, t) = setup();
    let p = std::fs::read_to_string(&h.policy).expect("policy");
    h.stop();
    std::fs::write(
        &h.policy,
        p.replace("[signal]\n", "[signal]\nmax_targets = 2\n"),
    )
    .expect("policy");
    h.spawn(&helper_bin());
    let t0 = Instant::now();
    while !g.get("/api/whoami", Some(&t)).json()["policy"]["signal_rules"]
        .as_array()
        .is_some_and(|r| r.iter().any(|x| x == "max_targets = 2"))
    {
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "whoami never showed the cap"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut kids: Vec<Child> = (0..3).map(|_| nobody_sleep(304)).collect();
    let sel = r#""selector": {"match": {"user": "nobody", "cmdline": "^sleep 304$"}}"#;
    let r = plan(
        &g,
        &t,
        &format!(r#"{{{sel}, "action": {{"signal": "KILL"}}}}"#),
    );
    assert_eq!(r.status, 422, "{}", body(&r));
    assert_eq!(r.json()["code"], "too_many_targets");
    assert!(body(&r).contains("at most 2"), "{}", body(&r));
    let r = plan(
        &g,
        &t,
        &format!(r#"{{{sel}, "action": {{"signal": "KILL"}}, "max_targets": 3}}"#),
    );
    assert_eq!(r.status, 400, "{}", body(&r));
    assert!(body(&r).contains("1..=2"), "{}", body(&r));
    let r = plan(
        &g,
        &t,
        &format!(r#"{{{sel}, "action": {{"priority": 3}}}}"#),
    );
    assert_eq!(r.status, 201, "renice has its own cap: {}", body(&r));
    assert!(kids.iter_mut().all(running), "nothing was signalled");
    for k in &mut kids {
        let _ = k.kill();
        let _ = k.wait();
    }
}

/// Three of nobody's sleeps, planned by pid and terminated: the plan
/// lists each with its verdict, a wrong `expect_count` does nothing, the
/// right one signals each once and a second execution finds no plan;
/// each target has its own audit line under the request's id.
#[test]
#[ignore = "needs root"]
fn a_plan_lists_its_targets_and_its_execution_signals_each_once() {
    let (_h, g, t) = setup();
    // Recorded with the answers, for scripts/check-openapi.
    assert_eq!(g.get("/api/openapi.json", None).status, 200);
    let mut kids: Vec<Child> = (0..3).map(|_| nobody_sleep(300)).collect();
    let pids: Vec<u32> = kids.iter().map(Child::id).collect();
    let req = format!(
        r#"{{"selector": {{"pids": [{}, {}, {}]}}, "action": {{"signal": "TERM"}}}}"#,
        pids[0], pids[1], pids[2]
    );
    let r = plan(&g, &t, &req);
    assert_eq!(r.status, 201, "{}", body(&r));
    let v = r.json();
    assert_eq!(v["count"], 3, "{v}");
    assert_eq!(v["expires_in"], 60);
    assert_eq!(v["action"]["signal"], "TERM");
    for target in v["targets"].as_array().expect("targets") {
        assert_eq!(target["verdict"], "allow", "{target}");
        assert_eq!(target["user"], "nobody");
        assert_eq!(target["name"], "sleep");
        assert!(target["rule"].is_null());
    }
    let id = v["plan_id"].as_str().expect("id").to_string();
    let path = format!("/api/actions/{id}");
    let r = g.send("POST", &path, Some(&t), r#"{"expect_count": 2}"#);
    assert_eq!(r.status, 409, "{}", body(&r));
    assert_eq!(r.json()["code"], "count_changed");
    assert!(kids.iter_mut().all(running), "nothing was signalled");

    let r = plan(&g, &t, &req);
    let id = r.json()["plan_id"].as_str().expect("id").to_string();
    let path = format!("/api/actions/{id}");
    let other = g.key("other", "read,signal", &[]);
    let r = g.send("POST", &path, Some(&other), r#"{"expect_count": 3}"#);
    assert_eq!(r.status, 404, "another key's plan: {}", body(&r));
    assert_eq!(r.json()["code"], "plan_not_found");
    let r = g.send("POST", &path, Some(&t), r#"{"expect_count": 3}"#);
    assert_eq!(r.status, 200, "{}", body(&r));
    let v = r.json();
    assert_eq!(v["status"], "complete", "{v}");
    let results = v["results"].as_array().expect("results");
    assert_eq!(results.len(), 3);
    assert!(results.iter().all(|x| x["outcome"] == "signalled"), "{v}");
    for k in &mut kids {
        k.wait().expect("terminated");
    }
    let request_id = r.header("x-request-id").expect("request id").to_string();
    let r = g.send("POST", &path, Some(&t), r#"{"expect_count": 3}"#);
    assert_eq!(r.status, 404, "a plan executes once: {}", body(&r));
    let lines: Vec<Value> = g
        .audit()
        .into_iter()
        .filter(|l| l["request_id"] == request_id.as_str())
        .collect();
    for pid in &pids {
        assert!(
            lines
                .iter()
                .any(|l| l["pid"] == *pid && l["outcome"] == "signalled"),
            "one audit line per target: {lines:?}"
        );
    }
}

/// A bad selector or action is 400 and names what is wrong; nothing
/// matching is 422 `empty_match` unless `allow_empty`; more matches than
/// `max_targets` is 422 `too_many_targets`; the action's scope is needed;
/// a process the policy refuses is planned as `deny` with its rule and,
/// executed, is `denied` and survives.
#[test]
#[ignore = "needs root"]
fn bad_plans_are_refused_clearly_and_a_refused_target_survives() {
    let (_h, g, t) = setup();
    for (req, what) in [
        (
            r#"{"selector": {}, "action": {"signal": "TERM"}}"#,
            "exactly one",
        ),
        (
            r#"{"selector": {"pids": [5], "tree_of": 5}, "action": {"signal": "TERM"}}"#,
            "exactly one",
        ),
        (
            r#"{"selector": {"match": {}}, "action": {"signal": "TERM"}}"#,
            "at least one",
        ),
        (
            r#"{"selector": {"match": {"cmdline": "("}}, "action": {"signal": "TERM"}}"#,
            "regular expression",
        ),
        (
            r#"{"selector": {"pids": [5]}, "action": {"signal": "TERM", "priority": 3}}"#,
            "exactly one",
        ),
        (
            r#"{"selector": {"pids": [5]}, "action": {"signal": "BOGUS"}}"#,
            "BOGUS",
        ),
        (
            r#"{"selector": {"pids": [5]}, "action": {"signal": "TERM"}, "max_targets": 1000}"#,
            "max_targets",
        ),
    ] {
        let r = plan(&g, &t, req);
        assert_eq!(r.status, 400, "{req}: {}", body(&r));
        assert!(body(&r).contains(what), "{req}: {}", body(&r));
    }
    let none =
        r#"{"selector": {"match": {"name": "no-such-name-xyz"}}, "action": {"signal": "TERM"}}"#;
    let r = plan(&g, &t, none);
    assert_eq!(r.status, 422, "{}", body(&r));
    assert_eq!(r.json()["code"], "empty_match");
    let r = plan(
        &g,
        &t,
        r#"{"selector": {"match": {"name": "no-such-name-xyz"}}, "action": {"signal": "TERM"}, "allow_empty": true}"#,
    );
    assert_eq!(r.status, 201, "{}", body(&r));
    assert_eq!(r.json()["count"], 0);
    let mut kids: Vec<Child> = (0..3).map(|_| nobody_sleep(301)).collect();
    let r = plan(
        &g,
        &t,
        r#"{"selector": {"match": {"user": "nobody", "cmdline": "^sleep 301$"}}, "action": {"priority": 5}, "max_targets": 2}"#,
    );
    assert_eq!(r.status, 422, "{}", body(&r));
    assert_eq!(r.json()["code"], "too_many_targets");
    let reader = g.key("reader", "read,signal", &[]);
    let r = plan(
        &g,
        &reader,
        r#"{"selector": {"match": {"cmdline": "^sleep 301$"}}, "action": {"priority": 5}}"#,
    );
    assert_eq!(r.status, 403, "renice needs its scope: {}", body(&r));
    assert_eq!(r.json()["code"], "missing_scope");
    let r = plan(
        &g,
        &t,
        r#"{"selector": {"match": {"user": "nobody", "cmdline": "^sleep 301$"}}, "action": {"priority": 5}}"#,
    );
    assert_eq!(r.status, 201, "{}", body(&r));
    assert_eq!(r.json()["count"], 3);
    // A process of root: the policy names nobody only.
    let mut root = Command::new("sleep").arg("302").spawn().expect("sleep");
    // Planned before its exec, it would be exe_changed at execution.
    let t0 = Instant::now();
    while !std::fs::read_link(format!("/proc/{}/exe", root.id()))
        .is_ok_and(|e| e.ends_with("sleep"))
    {
        assert!(t0.elapsed() < Duration::from_secs(10), "sleep never ran");
        std::thread::sleep(Duration::from_millis(10));
    }
    let req = format!(
        r#"{{"selector": {{"pids": [{}, {}]}}, "action": {{"signal": "KILL"}}}}"#,
        root.id(),
        kids[0].id()
    );
    let r = plan(&g, &t, &req);
    assert_eq!(r.status, 201, "{}", body(&r));
    let v = r.json();
    let of = |pid: u32| {
        v["targets"]
            .as_array()
            .expect("targets")
            .iter()
            .find(|x| x["pid"] == pid)
            .cloned()
            .expect("listed")
    };
    assert_eq!(of(root.id())["verdict"], "deny");
    assert_eq!(of(root.id())["rule"], "signal.owners");
    assert_eq!(of(kids[0].id())["verdict"], "allow");
    let id = v["plan_id"].as_str().expect("id");
    let r = g.send(
        "POST",
        &format!("/api/actions/{id}"),
        Some(&t),
        r#"{"expect_count": 2}"#,
    );
    assert_eq!(r.status, 200, "{}", body(&r));
    let v = r.json();
    assert_eq!(v["status"], "partial", "{v}");
    let denied = v["results"]
        .as_array()
        .expect("results")
        .iter()
        .find(|x| x["pid"] == root.id())
        .cloned()
        .expect("root's outcome");
    assert_eq!(denied["outcome"], "denied");
    assert_eq!(denied["rule"], "signal.owners");
    assert!(running(&mut root), "the refused target survives");
    kids[0].wait().expect("the allowed one was killed");
    root.kill().ok();
    root.wait().ok();
    for k in &mut kids[1..] {
        k.kill().ok();
        k.wait().ok();
    }
}

/// `dry_run: true` answers the verdict and its rule and touches nothing:
/// an allowed target still runs at its nice value, a refused one is a 200
/// with `deny` and the rule, a stale start time is still 409.
#[test]
#[ignore = "needs root"]
fn dry_run_answers_the_verdict_and_touches_nothing() {
    let (_h, g, t) = setup();
    // A number of its own: another test of this binary counts nobody's
    // `sleep 303`s while this one runs.
    let mut kid = nobody_sleep(305);
    let pid = kid.id();
    let r = g.send(
        "DELETE",
        "/api/ps",
        Some(&t),
        &format!(r#"{{"pid": {pid}, "signal": "KILL", "dry_run": true}}"#),
    );
    assert_eq!(r.status, 200, "{}", body(&r));
    let v = r.json();
    assert_eq!(
        (v["dry_run"].clone(), v["verdict"].clone()),
        (true.into(), "allow".into())
    );
    assert!(v["rule"].is_null());
    let r = g.send(
        "PATCH",
        "/api/ps",
        Some(&t),
        &format!(r#"{{"pid": {pid}, "priority": -5, "dry_run": true}}"#),
    );
    assert_eq!(r.status, 200, "{}", body(&r));
    assert_eq!(r.json()["verdict"], "deny");
    assert_eq!(r.json()["rule"], "renice.min_nice");
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("stat");
    let nice = stat[stat.rfind(')').expect(")") + 2..]
        .split_whitespace()
        .nth(16)
        .expect("nice")
        .to_string();
    assert_eq!(nice, "0", "nothing was reniced");
    let r = g.send(
        "DELETE",
        "/api/ps",
        Some(&t),
        &format!(r#"{{"pid": {pid}, "start_time": 1, "dry_run": true}}"#),
    );
    assert_eq!(r.status, 409, "{}", body(&r));
    assert!(running(&mut kid), "nothing was signalled");
    kid.kill().ok();
    kid.wait().ok();
}

/// A shell that forks a child every 20 ms, killed as a tree over HTTP:
/// the plan sees the shell and its three children standing still, the
/// children forked after the plan are in the answer (`added`) and nothing
/// of the tree is left.
#[test]
#[ignore = "needs root"]
fn a_tree_that_forks_while_being_killed_leaves_no_survivor_over_http() {
    let (_h, g, t) = setup();
    let mut tree = ForkingShell::start("tree");
    tree.enter();
    tree.wait_for(4, || tree.live());
    let r = plan(
        &g,
        &t,
        &format!(
            r#"{{"selector": {{"tree_of": {}}}, "action": {{"signal": "KILL"}}}}"#,
            tree.child.id()
        ),
    );
    assert_eq!(r.status, 201, "{}", body(&r));
    let v = r.json();
    assert_eq!(v["count"], 4, "the shell and its three children: {v}");
    tree.release(|| tree.live());
    let r = g.send(
        "POST",
        &format!("/api/actions/{}", v["plan_id"].as_str().expect("id")),
        Some(&t),
        r#"{"expect_count": 4}"#,
    );
    assert_eq!(r.status, 200, "{}", body(&r));
    let results = r.json()["results"].as_array().expect("results").clone();
    assert!(
        results.iter().any(|x| x["added"] == true),
        "children forked after the plan were added: {results:?}"
    );
    tree.child.wait().expect("the root was killed");
    let t0 = Instant::now();
    while tree.live() > 0 {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "a child survived: {results:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A shell of nobody's for the "forks while being killed" tests. It
/// waits for a line (so that a test can move it into a cgroup first),
/// forks three children, waits for `SIGUSR1` (so that a plan sees the
/// tree standing still), then forks a child every 20 ms until its parent,
/// the test, is gone. Its children never exec: each is the shell itself,
/// blocked reading the standard input that the test holds open and never
/// writes again (and that ends with the test). A member planned before
/// its exec could exec before the execution and be rightly spared as
/// `exe_changed`; here a survivor can only be a member the helper missed.
/// The `sleep 0.02` between forks does exec, and ends by itself.
struct ForkingShell {
    child: Child,
    /// The children's standard input, kept apart from `child` because
    /// `Child::wait` closes the one it holds, which would end them: they
    /// must outlive the shell if the helper misses them. Dropped with the
    /// test, and they end.
    stdin: std::process::ChildStdin,
    /// The shell's command line, which each child shares, with a token
    /// of the test's own so that two tests running at once do not count
    /// each other's processes.
    cmdline: Vec<u8>,
}

impl ForkingShell {
    fn start(name: &str) -> ForkingShell {
        let script = format!(
            ": {name}-{}; exec 3<&0; read x; trap 'go=1' USR1; \
             read x <&3 & read x <&3 & read x <&3 & \
             until [ \"$go\" ]; do read x; done; \
             while [ -e /proc/$PPID ]; do read x <&3 & sleep 0.02; done",
            std::process::id()
        );
        let mut child = Command::new("setpriv")
            .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups"])
            .args(["sh", "-c", &script])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .expect("sh");
        let stdin = child.stdin.take().expect("stdin");
        let cmdline = ["sh", "-c", &script]
            .iter()
            .flat_map(|a| a.bytes().chain([0]))
            .collect();
        ForkingShell {
            child,
            stdin,
            cmdline,
        }
    }

    /// Lets the shell past its first line: it forks its three children.
    fn enter(&mut self) {
        use std::io::Write;
        self.stdin.write_all(b"\n").expect("the shell's line");
    }

    /// The live (not zombie) processes that are this shell or one of its
    /// children, by command line: a child that outlived the shell is
    /// counted too.
    fn live(&self) -> usize {
        std::fs::read_dir("/proc")
            .expect("/proc")
            .flatten()
            .filter(|e| {
                std::fs::read(e.path().join("cmdline")).is_ok_and(|c| c == self.cmdline)
                    && std::fs::read_to_string(e.path().join("stat"))
                        .is_ok_and(|s| !s.contains(") Z"))
            })
            .count()
    }

    /// Waits until `count` says at least `n`.
    fn wait_for(&self, n: usize, count: impl Fn() -> usize) {
        let t0 = Instant::now();
        while count() < n {
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "the shell never forked: {} of {n}",
                count()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Starts the forking loop and waits until `count` has grown by two
    /// (children forked after the plan). The signal is sent again until
    /// then: one that came before the shell reached its wait would leave
    /// it waiting.
    fn release(&self, count: impl Fn() -> usize) {
        let before = count();
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let t0 = Instant::now();
        while count() < before + 2 {
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "the shell never forked after the plan"
            );
            nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGUSR1).expect("SIGUSR1");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Without a helper (every refusal here comes before any helper call):
/// a misspelled, null or repeated member of a plan or an execution is a
/// 400 naming it, an unknown plan is 404 `plan_not_found`, and
/// `dry_run: null` is refused rather than taken for false.
#[test]
fn a_misspelled_null_or_repeated_member_is_a_400_naming_it_and_an_unknown_plan_is_404() {
    let g = Gateway::start(std::path::Path::new("/nonexistent/helper.sock"));
    let t = g.key("all", "read,signal,renice", &[]);
    for (method, path, req, name, code) in [
        (
            "POST",
            "/api/actions/plan",
            r#"{"selecter": {"pids": [5]}, "action": {"signal": "TERM"}}"#,
            "selecter",
            "unknown_field",
        ),
        (
            "POST",
            "/api/actions/plan",
            r#"{"selector": {"pids": [5]}, "action": {"signal": null}}"#,
            "signal",
            "invalid_field",
        ),
        (
            "POST",
            "/api/actions/plan",
            r#"{"selector": {"pids": [5], "pids": [6]}, "action": {"signal": "TERM"}}"#,
            "pids",
            "duplicate_field",
        ),
        (
            "POST",
            "/api/actions/plan",
            r#"{"selector": {"match": {"nmae": "x"}}, "action": {"signal": "TERM"}}"#,
            "nmae",
            "unknown_field",
        ),
        (
            "POST",
            "/api/actions/0123456789abcdef0123456789abcdef",
            r#"{"expect_count": null}"#,
            "expect_count",
            "invalid_field",
        ),
        (
            "POST",
            "/api/actions/0123456789abcdef0123456789abcdef",
            r#"{"expect": 1}"#,
            "expect",
            "unknown_field",
        ),
        (
            "DELETE",
            "/api/ps",
            r#"{"pid": 4242, "dry_run": null}"#,
            "dry_run",
            "invalid_field",
        ),
        (
            "PATCH",
            "/api/ps",
            r#"{"pid": 4242, "priority": 1, "dry_run": "yes"}"#,
            "dry_run",
            "invalid_field",
        ),
    ] {
        let r = g.send(method, path, Some(&t), req);
        assert_eq!(r.status, 400, "{req}: {}", body(&r));
        assert_eq!(r.json()["code"], code, "{req}: {}", body(&r));
        assert!(
            body(&r).contains(name),
            "{req}: the message names {name}: {}",
            body(&r)
        );
    }
    let r = g.send(
        "POST",
        "/api/actions/0123456789abcdef0123456789abcdef",
        Some(&t),
        r#"{"expect_count": 1}"#,
    );
    assert_eq!(r.status, 404, "{}", body(&r));
    assert_eq!(r.json()["code"], "plan_not_found");
}

/// A shell that forks a child every 20 ms in a cgroup of its own, killed
/// by a `cgroup` match: the plan sees the shell and its three children
/// standing still; the execution is held still as a tree's is, so what
/// the members fork after the plan is added and the cgroup ends empty.
#[test]
#[ignore = "needs root"]
fn a_cgroup_that_forks_while_being_killed_leaves_no_survivor_over_http() {
    require_root();
    // Asked for and unable to run, it fails, naming what it lacks.
    let unified = std::fs::read_to_string("/proc/self/mountinfo")
        .expect("mountinfo")
        .lines()
        .find(|l| l.contains(" - cgroup2 "))
        .and_then(|l| l.split(' ').nth(4).map(PathBuf::from))
        .expect("this test needs a cgroup2 hierarchy mounted");
    let self_cg = std::fs::read_to_string("/proc/self/cgroup").expect("cgroup");
    let base = self_cg
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .expect("this test needs a unified (0::) cgroup line");
    let name = format!("monitoreo-test-{}", std::process::id());
    let rel = format!("{}/{name}", base.trim_end_matches('/'));
    let dir = unified.join(rel.trim_start_matches('/'));
    std::fs::create_dir(&dir).expect("a cgroup of the test's own");
    let (_h, g, t) = setup();
    let mut shell = ForkingShell::start("cgroup");
    std::fs::write(dir.join("cgroup.procs"), shell.child.id().to_string()).expect("moved");
    shell.enter();
    let members = || {
        std::fs::read_to_string(dir.join("cgroup.procs"))
            .unwrap_or_default()
            .lines()
            .filter(|p| {
                std::fs::read_to_string(format!("/proc/{p}/stat")).is_ok_and(|s| !s.contains(") Z"))
            })
            .count()
    };
    shell.wait_for(4, members);
    let r = plan(
        &g,
        &t,
        &format!(
            r#"{{"selector": {{"match": {{"cgroup": "{rel}"}}}}, "action": {{"signal": "KILL"}}}}"#
        ),
    );
    assert_eq!(r.status, 201, "{}", body(&r));
    let v = r.json();
    assert_eq!(v["count"], 4, "the shell and its three children: {v}");
    shell.release(members);
    let r = g.send(
        "POST",
        &format!("/api/actions/{}", v["plan_id"].as_str().expect("id")),
        Some(&t),
        r#"{"expect_count": 4}"#,
    );
    assert_eq!(r.status, 200, "{}", body(&r));
    let results = r.json()["results"].as_array().expect("results").clone();
    assert!(
        results.iter().any(|x| x["added"] == true),
        "children forked after the plan were added: {results:?}"
    );
    shell.child.wait().expect("the shell was killed");
    let t0 = Instant::now();
    while members() > 0 {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "a member survived: {results:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let _ = std::fs::remove_dir(&dir);
}
