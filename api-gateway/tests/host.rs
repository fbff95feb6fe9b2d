//! `GET /api/host` against psutil (Debian's python3-psutil, run by the
//! system's python3): the same names and units, and the same values,
//! exactly where they do not move (hostname, kernel, CPU counts, boot time
//! within a second, totals, mount points, disks and interfaces by name)
//! and within a tolerance where they do (memory, load, CPU over windows
//! that overlap, counters). The gateway runs alone, as the test's user,
//! as psutil does.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use serde_json::Value;
use support::Gateway;

/// psutil's view: a reading of everything but the CPU before it prints
/// `go`, the CPU figures over the window from `go` until the test writes
/// a line (once the gateway has answered), then a second reading. The
/// gateway's answer was read between the two readings, and its CPU
/// window lies inside psutil's.
const PSUTIL: &str = r#"
import json, os, platform, socket, sys, time
import psutil
def reading():
    return {
        "hostname": socket.gethostname(),
        "kernel": platform.release(),
        "boot_time": psutil.boot_time(),
        "cpu_count": [psutil.cpu_count(), psutil.cpu_count(logical=False)],
        "virtual_memory": psutil.virtual_memory()._asdict(),
        "swap_memory": psutil.swap_memory()._asdict(),
        "getloadavg": os.getloadavg(),
        "pids": len(psutil.pids()),
        "disk_usage": [dict(device=p.device, mountpoint=p.mountpoint, fstype=p.fstype,
                            **psutil.disk_usage(p.mountpoint)._asdict())
                       for p in psutil.disk_partitions()],
        "disk_io_counters": {k: v._asdict() for k, v in psutil.disk_io_counters(perdisk=True).items()},
        "net_io_counters": {k: v._asdict() for k, v in psutil.net_io_counters(pernic=True).items()},
    }
before = reading()
psutil.cpu_percent(None); psutil.cpu_percent(None, percpu=True); psutil.cpu_times_percent(None)
print("go", flush=True)
sys.stdin.readline()
out = {
    "cpu_percent": psutil.cpu_percent(None),
    "per_cpu": psutil.cpu_percent(None, percpu=True),
    "cpu_times_percent": psutil.cpu_times_percent(None)._asdict(),
    "before": before,
    "after": reading(),
}
print(json.dumps(out))
"#;

fn close(what: &str, a: &Value, b: &Value, tolerance: f64) {
    let (x, y) = (a.as_f64().unwrap(), b.as_f64().unwrap());
    assert!(
        (x - y).abs() <= tolerance,
        "{what}: gateway {x}, psutil {y} (tolerance {tolerance})"
    );
}

/// The gateway's figure `g` lies between psutil's readings before (`a`)
/// and after (`b`) it, give or take `tolerance`: what another job on the
/// host changes meanwhile (memory, a disk, the load) is within it.
fn between(what: &str, g: &Value, a: &Value, b: &Value, tolerance: f64) {
    let x = g.as_f64().unwrap();
    let (y, z) = (a.as_f64().unwrap(), b.as_f64().unwrap());
    assert!(
        y.min(z) - tolerance <= x && x <= y.max(z) + tolerance,
        "{what}: gateway {x}, psutil {y} before and {z} after (tolerance {tolerance})"
    );
}

/// Names (disks, interfaces, mounts) as the gateway saw them, against
/// psutil's readings before and after: every one present in both is in
/// the gateway's, and every one in the gateway's is in one of them (one
/// another job adds or removes meanwhile may be in either).
fn same_names<T: Ord + std::fmt::Debug>(what: &str, g: &[T], before: &[T], after: &[T]) {
    for n in before.iter().filter(|n| after.contains(n)) {
        assert!(g.contains(n), "{what}: {n:?} is missing: {g:?}");
    }
    for n in g {
        assert!(
            before.contains(n) || after.contains(n),
            "{what}: {n:?} is not psutil's: {before:?} {after:?}"
        );
    }
}

#[test]
#[ignore = "needs python3-psutil"]
fn the_host_matches_psutil() {
    use std::io::Write;
    let g = Gateway::start(std::path::Path::new("/nonexistent/helper.sock"));
    let t = g.key("r", "read", &[]);
    let mut py = Command::new("/usr/bin/python3")
        .args(["-c", PSUTIL])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("/usr/bin/python3 with python3-psutil (apt-get install python3-psutil)");
    let mut out = BufReader::new(py.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(
        line, "go\n",
        "psutil did not start (apt-get install python3-psutil)"
    );
    let r = g.get("/api/host?interval=1", Some(&t));
    py.stdin.take().unwrap().write_all(b"done\n").unwrap();
    line.clear();
    out.read_line(&mut line).unwrap();
    assert!(py.wait().unwrap().success());
    let p: Value = serde_json::from_str(&line).unwrap();
    let (p0, p1) = (&p["before"], &p["after"]);
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let h = r.json();

    // What does not move.
    assert_eq!(h["hostname"], p1["hostname"]);
    assert_eq!(h["kernel"], p1["kernel"]);
    close("boot_time", &h["boot_time"], &p1["boot_time"], 1.0);
    assert_eq!(h["cpu_count"]["logical"], p1["cpu_count"][0]);
    assert_eq!(h["cpu_count"]["physical"], p1["cpu_count"][1]);
    assert_eq!(h["virtual_memory"]["total"], p1["virtual_memory"]["total"]);
    assert_eq!(h["swap_memory"]["total"], p1["swap_memory"]["total"]);
    // What does not move unless another job on the host moves it.
    let names = |v: &Value| -> Vec<String> { v.as_object().unwrap().keys().cloned().collect() };
    for section in ["disk_io_counters", "net_io_counters"] {
        same_names(
            section,
            &names(&h[section]),
            &names(&p0[section]),
            &names(&p1[section]),
        );
    }
    let mounts = |v: &Value| -> Vec<(String, String, String, u64)> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|m| {
                let f = |k: &str| m[k].as_str().unwrap_or_default().to_string();
                let total = m["total"].as_u64().unwrap_or_default();
                (f("device"), f("mountpoint"), f("fstype"), total)
            })
            .collect()
    };
    let gm = mounts(&h["disk_usage"]);
    same_names(
        "disk_usage",
        &gm,
        &mounts(&p0["disk_usage"]),
        &mounts(&p1["disk_usage"]),
    );
    assert!(!gm.is_empty());
    // In the order the kernel lists them, as psutil does (of those in
    // both lists).
    let pm = mounts(&p1["disk_usage"]);
    let order = |v: &[(String, String, String, u64)]| -> Vec<String> {
        v.iter()
            .map(|m| m.1.clone())
            .filter(|m| gm.iter().any(|g| &g.1 == m) && pm.iter().any(|p| &p.1 == m))
            .collect()
    };
    assert_eq!(order(&gm), order(&pm), "mount order");

    // What moves: within a tolerance.
    let total = p1["virtual_memory"]["total"].as_f64().unwrap();
    for k in [
        "available",
        "used",
        "free",
        "active",
        "inactive",
        "buffers",
        "cached",
        "shared",
        "slab",
    ] {
        let v = "virtual_memory";
        between(k, &h[v][k], &p0[v][k], &p1[v][k], total * 0.05);
    }
    let v = "virtual_memory";
    between(
        "percent",
        &h[v]["percent"],
        &p0[v]["percent"],
        &p1[v]["percent"],
        5.0,
    );
    let swap = p1["swap_memory"]["total"].as_f64().unwrap();
    let s = "swap_memory";
    for k in ["used", "free"] {
        between(k, &h[s][k], &p0[s][k], &p1[s][k], swap * 0.05);
    }
    for k in ["sin", "sout"] {
        let b = p1[s][k].as_f64().unwrap();
        between(k, &h[s][k], &p0[s][k], &p1[s][k], b * 0.1 + 64e6);
    }
    for i in 0..3 {
        let l = "getloadavg";
        between(l, &h[l][i], &p0[l][i], &p1[l][i], 1.5);
    }
    let usage = |p: &Value, mount: &str| -> Value {
        p["disk_usage"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["mountpoint"] == mount)
            .cloned()
            .unwrap_or(Value::Null)
    };
    for g in h["disk_usage"].as_array().unwrap() {
        let mount = g["mountpoint"].as_str().unwrap();
        let (a, b) = (usage(p0, mount), usage(p1, mount));
        if a.is_null() || b.is_null() {
            continue; // Mounted or unmounted meanwhile.
        }
        let size = b["total"].as_f64().unwrap();
        between("disk used", &g["used"], &a["used"], &b["used"], size * 0.02);
        between("disk free", &g["free"], &a["free"], &b["free"], size * 0.02);
        between(
            "disk percent",
            &g["percent"],
            &a["percent"],
            &b["percent"],
            2.0,
        );
    }
    for (section, keys) in [
        (
            "disk_io_counters",
            &[
                "read_count",
                "write_count",
                "read_bytes",
                "write_bytes",
                "read_time",
                "write_time",
                "busy_time",
            ][..],
        ),
        (
            "net_io_counters",
            &[
                "bytes_sent",
                "bytes_recv",
                "packets_sent",
                "packets_recv",
                "errin",
                "errout",
                "dropin",
                "dropout",
            ][..],
        ),
    ] {
        for (name, c) in p1[section].as_object().unwrap() {
            let c0 = &p0[section][name];
            if c0.is_null() {
                continue; // Added meanwhile.
            }
            for k in keys {
                let b = c[k].as_f64().unwrap();
                between(
                    &format!("{section} {name} {k}"),
                    &h[section][name][k],
                    &c0[*k],
                    &c[*k],
                    b * 0.1 + 1e4,
                );
            }
        }
    }
    let pids = p1["pids"].as_f64().unwrap();
    between(
        "processes",
        &h["processes"]["total"],
        &p0["pids"],
        &p1["pids"],
        (pids * 0.1).max(50.0),
    );
    let states = [
        "running",
        "sleeping",
        "disk_sleep",
        "stopped",
        "zombie",
        "idle",
        "other",
    ];
    let sum: u64 = states
        .iter()
        .map(|s| h["processes"][s].as_u64().unwrap())
        .sum();
    assert_eq!(Some(sum), h["processes"]["total"].as_u64());
    assert!(h["processes"]["threads"].as_u64() >= h["processes"]["total"].as_u64());

    // The CPU: the gateway's window (the second asked for, at least, the
    // rest read meanwhile) lies inside psutil's, which is longer by the
    // request's round trip.
    let window = h["cpu_percent"]["window"].as_f64().unwrap();
    assert!((1.0..5.0).contains(&window), "{window}");
    close(
        "cpu_percent",
        &h["cpu_percent"]["total"],
        &p["cpu_percent"],
        25.0,
    );
    let per = h["cpu_percent"]["per_cpu"].as_array().unwrap();
    assert_eq!(per.len(), p["per_cpu"].as_array().unwrap().len());
    for k in ["user", "system", "idle", "iowait"] {
        close(
            k,
            &h["cpu_times_percent"][k],
            &p["cpu_times_percent"][k],
            25.0,
        );
    }
    let shares: f64 = [
        "user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal",
    ]
    .iter()
    .map(|k| h["cpu_times_percent"][k].as_f64().unwrap())
    .sum();
    close("cpu_times_percent sum", &shares.into(), &100.0.into(), 1.0);
}

#[test]
fn host_needs_read_and_a_bounded_interval_and_states_its_window() {
    let g = Gateway::start(std::path::Path::new("/nonexistent/helper.sock"));
    let t = g.key("r", "read", &[]);
    let none = g.key("m", "metrics", &[]);
    assert_eq!(g.get("/api/host", None).status, 401);
    let r = g.get("/api/host", Some(&none));
    assert_eq!(
        (r.status, r.json()["code"].clone()),
        (403, "missing_scope".into())
    );
    for bad in ["0", "-1", "10.5", "abc", "nan", "inf"] {
        let r = g.get(&format!("/api/host?interval={bad}"), Some(&t));
        assert_eq!(r.status, 400, "{bad}");
        let v = r.json();
        assert_eq!(v["code"], "invalid_parameter", "{bad}: {v}");
        assert!(v["message"].as_str().unwrap().contains("interval"), "{v}");
    }
    assert_eq!(
        g.get("/api/host?period=1", Some(&t)).json()["code"],
        "unknown_parameter"
    );
    // Without an interval: since the latest read, at least a quarter of
    // cpu_window_s (1 s by default) after it, and stated.
    for _ in 0..2 {
        let r = g.get("/api/host", Some(&t));
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        let v = r.json();
        assert!(v["cpu_percent"]["window"].as_f64().unwrap() >= 0.25, "{v}");
        assert_eq!(v["getloadavg"].as_array().unwrap().len(), 3);
    }
    let r = g.get("/api/host?interval=0.5", Some(&t));
    let w = r.json()["cpu_percent"]["window"].as_f64().unwrap();
    assert!(w >= 0.5, "{w}");
}
