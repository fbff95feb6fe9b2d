//! Tests of the reader against the real /proc of this machine.

use std::time::Duration;

use serde_json::Value;

use super::*;

fn reader() -> ProcReader {
    ProcReader::new(Duration::from_millis(200))
}

fn list(q: &ListQuery) -> Vec<Value> {
    let body = reader().list_json(q).unwrap();
    match serde_json::from_slice(&body).unwrap() {
        Value::Array(v) => v,
        other => panic!("not an array: {other}"),
    }
}

#[test]
fn pid_1_is_readable_with_every_default_field() {
    let v: Value =
        serde_json::from_slice(&reader().one_json(1, &Fields::default()).unwrap()).unwrap();
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
    let f = Fields::parse("pid,ppid,name,exe,cwd,uids,username,num_threads,open_files,threads,cpu_times,memory_info,cpu_affinity,status,start_time").unwrap();
    let v: Value = serde_json::from_slice(&reader().one_json(me, &f).unwrap()).unwrap();
    assert_eq!(v["pid"], me);
    assert_eq!(v["ppid"], std::os::unix::process::parent_id());
    let exe = std::env::current_exe().unwrap();
    assert_eq!(v["exe"], exe.to_string_lossy().as_ref());
    let cwd = std::env::current_dir().unwrap();
    assert_eq!(v["cwd"], cwd.to_string_lossy().as_ref());
    assert_eq!(v["uids"]["real"], nix::unistd::getuid().as_raw());
    assert!(v["num_threads"].as_u64().unwrap() >= 1);
    assert_eq!(
        v["threads"].as_array().unwrap().len() as u64,
        v["num_threads"].as_u64().unwrap()
    );
    assert!(v["memory_info"]["rss"].as_u64().unwrap() > 0);
    assert!(v["cpu_affinity"].as_array().is_some_and(|a| !a.is_empty()));
    assert!(v["status"].is_string());
    let st = reader().start_time(me).unwrap();
    assert_eq!(v["start_time"], st);
    // An open regular file shows up with its fd.
    let tmp = tempfile::NamedTempFile::new().unwrap();
    let v: Value = serde_json::from_slice(&reader().one_json(me, &f).unwrap()).unwrap();
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
        fields: Fields::parse("name,status").unwrap(),
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
    let body = reader().list_json(&q).unwrap();
    let _: Value = serde_json::from_slice(&body).unwrap();
    assert!(!String::from_utf8_lossy(&body).contains("\"environ\""));
    assert!(matches!(
        Fields::parse("environ"),
        Err(ProcError::UnknownField(_))
    ));
}

#[test]
fn unknown_field_and_bad_sort_are_errors() {
    assert!(matches!(Fields::parse("nope"), Err(ProcError::UnknownField(n)) if n == "nope"));
    assert!(matches!(
        SortKey::parse("-nope"),
        Err(ProcError::BadSort(_))
    ));
    assert!(matches!(
        SortKey::parse("cmdline"),
        Err(ProcError::BadSort(_))
    ));
    let k = SortKey::parse("-cpu_percent").unwrap();
    assert!(k.descending);
    assert_eq!(k.field, "cpu_percent");
}

#[test]
fn sort_limit_and_uid_filter_apply() {
    let q = ListQuery {
        fields: Fields::parse("pid,name,memory_percent").unwrap(),
        sort: Some(SortKey::parse("-pid").unwrap()),
        limit: Some(5),
        ..ListQuery::default()
    };
    let v = list(&q);
    assert_eq!(v.len(), 5);
    let pids: Vec<i64> = v.iter().map(|p| p["pid"].as_i64().unwrap()).collect();
    assert!(pids.windows(2).all(|w| w[0] > w[1]), "{pids:?}");

    let by_name = list(&ListQuery {
        fields: Fields::parse("name").unwrap(),
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
        fields: Fields::parse("uids").unwrap(),
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
        r.one_json(0, &Fields::default()),
        Err(ProcError::NoSuchProcess(0))
    ));
    assert!(matches!(
        r.one_json(i32::MAX, &Fields::default()),
        Err(ProcError::NoSuchProcess(_))
    ));
    assert!(matches!(
        r.start_time(-4),
        Err(ProcError::NoSuchProcess(-4))
    ));
}

#[test]
fn exited_child_is_skipped_or_absent() {
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let pid = child.id() as i32;
    child.wait().unwrap();
    assert!(matches!(
        reader().one_json(pid, &Fields::default()),
        Err(ProcError::NoSuchProcess(_))
    ));
    let v = list(&ListQuery::default());
    assert!(!v.iter().any(|p| p["pid"] == pid));
}

#[test]
fn users_counts_root_and_names_resolve() {
    let r = reader();
    let users = r.users().unwrap();
    assert!(
        users.iter().any(|(n, c)| n == "root" && *c > 0),
        "{users:?}"
    );
    assert_eq!(r.uid_of_user("root"), Some(0));
    assert_eq!(r.uid_of_user("no-such-user-here"), None);
}
