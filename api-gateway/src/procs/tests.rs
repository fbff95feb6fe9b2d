//! Tests of the reader against the real /proc of this machine.

use std::time::Duration;

use serde_json::Value;

use super::*;

/// The reader's answers whole, as the routes' pieces add up to them.
impl ProcReader {
    /// A JSON array (`[{...},{...}]`) of the matching processes, in pid
    /// order unless sorted; `limit` applies after the sort.
    fn list_json(&self, q: &ListQuery, withhold: &Withhold) -> Result<Vec<u8>, ProcError> {
        let mut out = Vec::new();
        self.prepare(q, withhold).write(&mut out, &mut |_| true)?;
        Ok(out)
    }

    /// One process as a JSON object, with the window and age of its
    /// `cpu_percent` when asked for (which may sleep for a short sample,
    /// but never walks /proc).
    fn one_json(
        &self,
        pid: Pid,
        fields: &Fields,
        withhold: &Withhold,
    ) -> Result<(Vec<u8>, Option<Stated>), ProcError> {
        let mut figure = None;
        if fields.has(Field::CpuPercent) {
            figure = Some(loop {
                match self.cpu_of(pid)? {
                    Single::Figure(f) => break f,
                    Single::WaitUntil(t) => {
                        std::thread::sleep(t.saturating_duration_since(Instant::now()))
                    }
                }
            });
        }
        self.one_json_with(pid, fields, figure, withhold)
    }
}

fn pid(n: i32) -> Pid {
    Pid::new(i64::from(n)).expect("a positive pid")
}

fn reader() -> ProcReader {
    ProcReader::new(Duration::from_millis(200))
}

fn list(q: &ListQuery) -> Vec<Value> {
    let body = reader().list_json(q, &Withhold::none()).unwrap();
    match serde_json::from_slice(&body).unwrap() {
        Value::Array(v) => v,
        other => panic!("not an array: {other}"),
    }
}

#[test]
fn pid_1_is_readable_with_every_default_field() {
    let v: Value = serde_json::from_slice(
        &reader()
            .one_json(pid(1), &Fields::default(), &Withhold::none())
            .unwrap()
            .0,
    )
    .unwrap();
    assert_eq!(v["pid"], 1);
    for name in Fields::default().names() {
        assert!(v.get(name).is_some(), "missing {name}");
    }
    assert!(v["cmdline"].is_array());
    assert!(v["create_time"].as_f64().unwrap() > 1.0e9);
}

#[test]
fn own_process_reports_its_own_facts() {
    let me = std::process::id() as i32;
    let f = Fields::parse(&["pid,ppid,name,exe,cwd,uids,username,num_threads,open_files,threads,cpu_times,memory_info,cpu_affinity,status,start_time"]).unwrap();
    let v: Value =
        serde_json::from_slice(&reader().one_json(pid(me), &f, &Withhold::none()).unwrap().0)
            .unwrap();
    assert_eq!(v["pid"], me);
    assert_eq!(v["ppid"], std::os::unix::process::parent_id());
    let exe = std::env::current_exe().unwrap();
    assert_eq!(v["exe"], exe.to_string_lossy().as_ref());
    let cwd = std::env::current_dir().unwrap();
    assert_eq!(v["cwd"], cwd.to_string_lossy().as_ref());
    assert_eq!(v["uids"]["real"], nix::unistd::getuid().as_raw());
    assert!(v["num_threads"].as_u64().unwrap() >= 1);
    // The two are read at different instants while the harness starts and
    // ends other tests' threads: what must hold is that this thread is
    // listed, by its own id.
    let me_tid = nix::unistd::gettid().as_raw();
    let threads = v["threads"].as_array().unwrap();
    assert!(
        threads.iter().any(|t| t["id"] == me_tid),
        "thread {me_tid} missing from {threads:?}"
    );
    assert!(v["memory_info"]["rss"].as_u64().unwrap() > 0);
    assert!(v["cpu_affinity"].as_array().is_some_and(|a| !a.is_empty()));
    assert!(v["status"].is_string());
    let st = reader().start_time(pid(me)).unwrap();
    assert_eq!(v["start_time"], st.ticks());
    // An open regular file shows up with its fd.
    let tmp = tempfile::NamedTempFile::new().unwrap();
    let v: Value =
        serde_json::from_slice(&reader().one_json(pid(me), &f, &Withhold::none()).unwrap().0)
            .unwrap();
    let path = tmp.path().to_string_lossy().to_string();
    assert!(
        v["open_files"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["path"] == path.as_str() && o["fd"].is_u64()),
        "{path} not in {}",
        v["open_files"]
    );
}

#[test]
fn selected_fields_are_the_only_keys() {
    let q = ListQuery {
        fields: Fields::parse(&["name,status"]).unwrap(),
        ..ListQuery::default()
    };
    let procs = list(&q);
    assert!(procs.len() > 1);
    for p in procs {
        let mut keys: Vec<_> = p.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        assert_eq!(keys, ["name", "pid", "status"]);
    }
}

#[test]
fn listing_never_contains_environ_even_with_every_field() {
    let q = ListQuery {
        fields: Fields::all(),
        limit: Some(20),
        ..ListQuery::default()
    };
    let body = reader().list_json(&q, &Withhold::none()).unwrap();
    let _: Value = serde_json::from_slice(&body).unwrap();
    assert!(!String::from_utf8_lossy(&body).contains("\"environ\""));
    assert!(Fields::parse(&["environ"]).is_err());
}

/// The member names of a JSON object, in the order written.
fn top_level_keys(json: &[u8]) -> Vec<&str> {
    let (mut depth, mut in_str, mut esc, mut start) = (0, false, false, 0);
    let mut keys = Vec::new();
    for (i, &c) in json.iter().enumerate() {
        if in_str {
            match (esc, c) {
                (true, _) => esc = false,
                (false, b'\\') => esc = true,
                (false, b'"') => {
                    in_str = false;
                    if depth == 1 && json.get(i + 1) == Some(&b':') {
                        keys.push(std::str::from_utf8(&json[start..i]).expect("UTF-8"));
                    }
                }
                _ => {}
            }
            continue;
        }
        match c {
            b'"' => {
                in_str = true;
                start = i + 1;
            }
            b'{' | b'[' => depth += 1,
            b'}' | b']' => depth -= 1,
            _ => {}
        }
    }
    keys
}

#[test]
fn bad_sort_keys_are_errors_naming_the_value() {
    let e = SortKey::parse("-nope").expect_err("unknown");
    assert!(e.contains("-nope"), "{e}");
    assert!(SortKey::parse("cmdline").is_err(), "not sortable");
    assert!(SortKey::parse("").is_err());
    let k = SortKey::parse("-cpu_percent").expect("sortable");
    assert!(k.descending);
    assert_eq!(k.field, Field::CpuPercent);
    assert!(SortKey::all_values().contains(&"-memory_info_ex".to_string()));
}

#[test]
fn a_listing_with_every_field_writes_them_in_table_order() {
    let me = std::process::id() as i64;
    let v = list(&ListQuery {
        fields: Fields::all(),
        ..ListQuery::default()
    });
    let mine = v
        .iter()
        .find(|p| p["pid"] == me)
        .expect("own process listed");
    let one = reader()
        .one_json(pid(me as i32), &Fields::all(), &Withhold::none())
        .expect("own process")
        .0;
    let table: Vec<&str> = FIELD_TABLE.iter().map(|s| s.name).collect();
    assert_eq!(
        top_level_keys(&one),
        table,
        "every field present, in table order"
    );
    assert_eq!(mine["memory_info_ex"], mine["memory_info"]);
    let full = &mine["memory_full_info"];
    assert!(full["uss"].as_u64().is_some_and(|u| u > 0), "{full}");
    assert_eq!(full["rss"], mine["memory_info"]["rss"]);
}

/// Withholding this test's own uid stands in for another key's job: the
/// reader is the same whoever the uid belongs to.
#[test]
fn a_withheld_process_has_its_telling_fields_null_named_last_and_sorted_as_null() {
    let me = std::process::id() as i64;
    let uid = nix::unistd::getuid().as_raw();
    let w = Withhold::new(std::collections::HashSet::from([uid]), HashMap::new());
    let (one, _) = reader()
        .one_json(pid(me as i32), &Fields::all(), &w)
        .expect("own process");
    let v: Value = serde_json::from_slice(&one).expect("json");
    for f in withhold::FIELDS {
        assert!(v[f.name()].is_null(), "{} = {}", f.name(), v[f.name()]);
        assert_eq!(v["withheld"][f.name()], withhold::REASON);
    }
    assert_eq!(
        v["withheld"].as_object().map(|o| o.len()),
        Some(withhold::FIELDS.len())
    );
    // The figures stay.
    assert_eq!(v["uids"]["real"], uid);
    assert!(v["num_fds"].as_u64().is_some_and(|n| n > 0), "{v}");
    let mut table: Vec<&str> = FIELD_TABLE.iter().map(|s| s.name).collect();
    table.push("withheld");
    assert_eq!(
        top_level_keys(&one),
        table,
        "the marker comes after every field"
    );

    // Only the fields asked for are named; a listing without them is as
    // it would be for anyone.
    let (one, _) = reader()
        .one_json(
            pid(me as i32),
            &Fields::parse(&["cmdline,cpu_times"]).expect("f"),
            &w,
        )
        .expect("own process");
    let v: Value = serde_json::from_slice(&one).expect("json");
    assert_eq!(
        v["withheld"],
        serde_json::json!({"cmdline": withhold::REASON})
    );
    let (one, _) = reader()
        .one_json(
            pid(me as i32),
            &Fields::parse(&["username"]).expect("f"),
            &w,
        )
        .expect("own process");
    assert!(serde_json::from_slice::<Value>(&one)
        .expect("json")
        .get("withheld")
        .is_none());

    // Sorted by name, every process of the uid is null, so after the rest.
    let body = reader()
        .list_json(
            &ListQuery {
                fields: Fields::parse(&["uids"]).expect("f"),
                sort: Some(SortKey::parse("name").expect("sort")),
                ..ListQuery::default()
            },
            &w,
        )
        .expect("listing");
    let v: Vec<Value> = serde_json::from_slice(&body).expect("json");
    let first = v
        .iter()
        .position(|p| p["uids"]["real"] == uid)
        .expect("own uid listed");
    assert!(
        v[first..].iter().all(|p| p["uids"]["real"] == uid),
        "withheld rows sort last"
    );
}

#[test]
fn sort_limit_and_uid_filter_apply() {
    let q = ListQuery {
        fields: Fields::parse(&["pid,name,memory_percent"]).unwrap(),
        sort: Some(SortKey::parse("-pid").unwrap()),
        limit: Some(5),
        ..ListQuery::default()
    };
    let v = list(&q);
    assert_eq!(v.len(), 5);
    let pids: Vec<i64> = v.iter().map(|p| p["pid"].as_i64().unwrap()).collect();
    assert!(pids.windows(2).all(|w| w[0] > w[1]), "{pids:?}");

    let by_name = list(&ListQuery {
        fields: Fields::parse(&["name"]).unwrap(),
        sort: Some(SortKey::parse("name").unwrap()),
        ..ListQuery::default()
    });
    let names: Vec<String> = by_name
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect();
    assert!(names.windows(2).all(|w| w[0].as_bytes() <= w[1].as_bytes()));

    let uid = nix::unistd::getuid().as_raw();
    let mine = list(&ListQuery {
        fields: Fields::parse(&["uids"]).unwrap(),
        uid: Some(uid),
        ..ListQuery::default()
    });
    let me = std::process::id() as i64;
    assert!(mine.iter().any(|p| p["pid"] == me));
    assert!(mine.iter().all(|p| p["uids"]["real"] == uid));
    let none = list(&ListQuery {
        uid: Some(3_999_999_999),
        ..ListQuery::default()
    });
    assert!(none.is_empty());
}

#[test]
fn missing_pid_is_no_such_process() {
    let r = reader();
    assert!(matches!(
        r.one_json(pid(i32::MAX), &Fields::default(), &Withhold::none()),
        Err(ProcError::NoSuchProcess(_))
    ));
}

#[test]
fn a_thread_id_is_not_a_process_whatever_the_fields() {
    let (tx, rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
    let t = std::thread::spawn(move || {
        let link = std::fs::read_link("/proc/thread-self").unwrap();
        let tid: i32 = link.file_name().unwrap().to_str().unwrap().parse().unwrap();
        tx.send(tid).unwrap();
        stop_rx.recv().ok();
    });
    let tid = rx.recv().unwrap();
    let r = reader();
    for fields in [
        Fields::default(),
        Fields::parse(&["pid,name"]).unwrap(),
        Fields::parse(&["cpu_percent"]).unwrap(),
    ] {
        assert!(
            matches!(
                r.one_json(pid(tid), &fields, &Withhold::none()),
                Err(ProcError::NotAProcess(p)) if p.get() == tid
            ),
            "{fields:?}"
        );
    }
    // The process itself is still one.
    let me = std::process::id() as i32;
    assert!(r
        .one_json(pid(me), &Fields::default(), &Withhold::none())
        .is_ok());
    stop_tx.send(()).unwrap();
    t.join().unwrap();
}

#[test]
fn exited_child_is_skipped_or_absent() {
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let gone = child.id() as i32;
    child.wait().unwrap();
    assert!(matches!(
        reader().one_json(pid(gone), &Fields::default(), &Withhold::none()),
        Err(ProcError::NoSuchProcess(_))
    ));
    let v = list(&ListQuery::default());
    assert!(!v.iter().any(|p| p["pid"] == gone));
}

#[test]
fn users_counts_root_and_names_resolve() {
    let r = reader();
    let users = r.users().unwrap();
    assert!(
        users
            .iter()
            .any(|u| u.name == "root" && u.uid == 0 && u.running > 0),
        "{users:?}"
    );
    assert!(users.iter().all(|u| r.resolve_user(&u.name) == Some(u.uid)));
    assert_eq!(r.resolve_user("root"), Some(0));
    assert_eq!(r.resolve_user("no-such-user-here"), None);
    assert_eq!(
        r.resolve_user("40001"),
        Some(40001),
        "a uid without a passwd entry"
    );
}

#[test]
fn a_busy_process_shows_its_cpu_on_the_first_read_after_idle() {
    use std::sync::atomic::{AtomicBool, Ordering};
    // min window 0.1 s, baselines up to 4 s old.
    let r = ProcReader::new(Duration::from_millis(400));
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let st = stop.clone();
    let spin = std::thread::spawn(move || {
        let mut x = 0u64;
        while !st.load(Ordering::Relaxed) {
            x = x.wrapping_add(1);
        }
        x
    });
    let me = std::process::id() as i64;
    let q = ListQuery {
        fields: Fields::parse(&["cpu_percent"]).unwrap(),
        ..ListQuery::default()
    };
    // Nothing was read before: the listing takes a short sample first.
    let none = Withhold::none();
    let l = r.prepare(&q, &none);
    let stated = l.cpu.expect("cpu_percent asked for: window stated");
    let mut body = Vec::new();
    l.write(&mut body, &mut |_| true).unwrap();
    let v: Vec<Value> = serde_json::from_slice(&body).unwrap();
    let listed = v.iter().find(|p| p["pid"] == me).expect("own process")["cpu_percent"]
        .as_f64()
        .unwrap();
    // A single read with no baseline of its own uses the listing's.
    let (one, cpu) = r
        .one_json(pid(me as i32), &q.fields, &Withhold::none())
        .unwrap();
    let one: Value = serde_json::from_slice(&one).unwrap();
    stop.store(true, Ordering::Relaxed);
    let _ = spin.join();
    assert!(
        stated.window_s >= 0.1 && stated.window_s < 4.0,
        "{stated:?}"
    );
    assert_eq!(stated.age_s, 0.0);
    assert!(listed > 10.0, "a spinning thread listed at {listed}%");
    let cpu = cpu.expect("stated");
    assert!(cpu.window_s >= 0.1 && cpu.window_s <= 4.0, "{cpu:?}");
    let single = one["cpu_percent"].as_f64().unwrap();
    assert!(single > 10.0, "a spinning thread read alone at {single}%");
    // Without cpu_percent nothing is sampled and nothing stated.
    let l = r.prepare(
        &ListQuery {
            fields: Fields::parse(&["name"]).unwrap(),
            ..ListQuery::default()
        },
        &none,
    );
    assert!(l.cpu.is_none());
}

const TARGET_ENV: &str = "MONITOREO_PROCS_TEST_TARGET";

/// The reader must run as another user, so as root this test re-runs
/// itself as nobody (setpriv), pointed at this process, and that run is
/// the check; with the pointer set, this is that run.
#[test]
#[ignore = "needs root"]
fn fields_hidden_from_another_user_are_null_not_errors() {
    match std::env::var(TARGET_ENV) {
        Ok(target) => as_nobody_a_root_process_shows_nulls(&target),
        Err(_) => run_as_nobody_against_this_process(),
    }
}

fn run_as_nobody_against_this_process() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "this test needs root: run it as root (scripts/test does)"
    );
    rerun_as_nobody(
        "procs::tests::fields_hidden_from_another_user_are_null_not_errors",
        TARGET_ENV,
    );
}

/// Runs the test `name` of this test binary again as nobody (setpriv),
/// with `env` set to our pid, and checks that it passed and said
/// `CHECKED as nobody`: for the checks that only mean something as
/// another user than root.
pub(crate) fn rerun_as_nobody(name: &str, env: &str) {
    let out = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(std::env::current_exe().expect("own path"))
        .args([
            "--exact",
            name,
            "--include-ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .current_dir("/")
        .env(env, std::process::id().to_string())
        .output()
        .expect("setpriv (util-linux) runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(text.contains("1 passed"), "{text}");
    assert!(text.contains("CHECKED as nobody"), "{text}");
}

fn as_nobody_a_root_process_shows_nulls(target: &str) {
    let pid: i32 = target.parse().expect("the driver's pid");
    assert!(!nix::unistd::geteuid().is_root());
    let v: Value = serde_json::from_slice(
        &reader()
            .one_json(self::pid(pid), &Fields::default(), &Withhold::none())
            .unwrap()
            .0,
    )
    .unwrap();
    for hidden in ["exe", "cwd", "io_counters", "num_fds", "open_files"] {
        assert!(v[hidden].is_null(), "{hidden} = {}", v[hidden]);
    }
    assert_eq!(v["username"], "root");
    assert!(v["name"].is_string() && v["cmdline"].is_array());
    assert!(v["memory_info"]["rss"].as_u64().unwrap() > 0);
    // The listing still holds every process, root's included.
    let all = reader()
        .list_json(&ListQuery::default(), &Withhold::none())
        .unwrap();
    let all: Vec<Value> = serde_json::from_slice(&all).unwrap();
    assert!(all.iter().any(|p| p["pid"] == pid));
    eprintln!("CHECKED as nobody");
}
