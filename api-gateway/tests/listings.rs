//! Listings and single reads against the real gateway: `cpu_percent` is
//! sampled only on demand yet truthful after an idle spell, and
//! concurrent listings share walks without ever answering with a walk
//! that began before the request arrived.

mod support;

use std::path::Path;
use std::process::{Child, Command};
use std::time::Duration;

use support::Gateway;

/// Kills and reaps the child when dropped.
struct Kid(Child);

impl Drop for Kid {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(cmd: &str) -> Kid {
    Kid(Command::new("sh").args(["-c", cmd]).spawn().expect("sh"))
}

fn cpu_of(v: &serde_json::Value, pid: u32) -> f64 {
    v["processes"]
        .as_array()
        .expect("processes")
        .iter()
        .find(|p| p["pid"] == pid)
        .unwrap_or_else(|| panic!("pid {pid} not listed"))["cpu_percent"]
        .as_f64()
        .expect("a number")
}

#[test]
fn cpu_percent_is_truthful_on_the_first_request_after_idle_and_states_its_window() {
    // cpu_window_s 0.8: figures cover 0.2 s to 8 s. A fresh sample is
    // 0.2 s, 20 ticks at 100 Hz: a busy loop given even a twentieth of a
    // CPU on a loaded machine shows at least one.
    let g = Gateway::start_with(
        Path::new("/nonexistent/helper.sock"),
        "cpu_window_s = 0.8\n",
    );
    let t = g.key("ops", "read", &[]);
    let busy = spawn("while :; do :; done");
    let idle = spawn("exec sleep 60");
    // The first request this gateway ever serves: no earlier read exists.
    let r = g.get(
        &format!("/api/ps/{}?fields=cpu_percent", busy.0.id()),
        Some(&t),
    );
    assert_eq!(r.status, 200);
    let v = r.json();
    let window = v["cpu_percent_window_s"].as_f64().expect("window stated");
    assert!((0.2..8.0).contains(&window), "{v}");
    assert!(
        v["cpu_percent_age_s"].as_f64().is_some_and(|a| a < 8.0),
        "{v}"
    );
    // Without a baseline the figure would be 0.0; how far above it a busy
    // loop gets depends on the machine's load, not on the gateway.
    let busy_one = v["process"]["cpu_percent"].as_f64().expect("number");
    assert!(busy_one > 0.0, "a busy loop read alone at {busy_one}%: {v}");

    // Idle for longer than any baseline is kept, then a listing.
    std::thread::sleep(Duration::from_millis(8500));
    let r = g.get("/api/ps?fields=pid,cpu_percent", Some(&t));
    assert_eq!(r.status, 200);
    let v = r.json();
    let window = v["cpu_percent_window_s"].as_f64().expect("window stated");
    assert!(
        (0.2..8.0).contains(&window),
        "a fresh short sample: {window}"
    );
    assert_eq!(v["cpu_percent_age_s"], 0.0);
    let (b, i) = (cpu_of(&v, busy.0.id()), cpu_of(&v, idle.0.id()));
    assert!(
        b > 0.0 && b > i,
        "a busy loop listed at {b}% after idle, a sleeping process at {i}%"
    );
    assert!(i < 5.0, "a sleeping process listed at {i}%");

    // Without cpu_percent nothing is stated.
    let v = g.get("/api/ps?fields=pid,name", Some(&t)).json();
    assert!(
        v["cpu_percent_window_s"].is_null() && v["cpu_percent_age_s"].is_null(),
        "{v}"
    );
    let v = g
        .get(&format!("/api/ps/{}?fields=name", idle.0.id()), Some(&t))
        .json();
    assert!(v["cpu_percent_window_s"].is_null(), "{v}");
}

#[test]
fn a_listing_shared_under_load_never_misses_a_process_started_before_the_request() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let g = Gateway::start(Path::new("/nonexistent/helper.sock"));
    let t = g.key("ops", "read", &[]);
    let path = "/api/ps?fields=pid,name,cmdline";
    // Four consoles refresh the same selection without pause, so a walk
    // for it is nearly always under way when the request below arrives.
    let stop = Arc::new(AtomicBool::new(false));
    let pollers: Vec<_> = (0..4)
        .map(|_| {
            let (stop, addr, t) = (stop.clone(), g.addr, t.clone());
            std::thread::spawn(move || {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) && n < 2000 {
                    let r = support::request(addr, "GET", path, Some(&t), None);
                    assert_eq!(r.status, 200);
                    n += 1;
                }
            })
        })
        .collect();
    for round in 0..15 {
        // The process exists before the request is sent: any walk that
        // began after the request arrived lists it.
        let kid = spawn("exec sleep 60");
        let r = g.get(path, Some(&t));
        assert_eq!(r.status, 200);
        let v = r.json();
        let pids: Vec<u64> = v["processes"]
            .as_array()
            .expect("processes")
            .iter()
            .filter_map(|p| p["pid"].as_u64())
            .collect();
        assert!(
            pids.contains(&u64::from(kid.0.id())),
            "round {round}: pid {} started before the request is missing from its answer",
            kid.0.id()
        );
    }
    stop.store(true, Ordering::Relaxed);
    for p in pollers {
        p.join().expect("poller");
    }
}

#[test]
fn a_listing_with_memory_maps_is_streamed_whole_and_clients_that_hang_up_free_their_turn() {
    use std::io::{Read, Write};
    let g = Gateway::start(Path::new("/nonexistent/helper.sock"));
    let t = g.key("ops", "read", &[]);
    let kid = spawn("exec sleep 60");
    let path = "/api/ps?fields=pid,memory_maps,connections";
    // Clients that ask and hang up after the first bytes: their walks
    // stop, and one turn at a time is all they held.
    for _ in 0..3 {
        let mut s = std::net::TcpStream::connect(g.addr).unwrap();
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {t}\r\n\r\n"
        )
        .unwrap();
        let mut first = [0u8; 1];
        s.read_exact(&mut first).unwrap();
    }
    let r = g.get(path, Some(&t));
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    // Sent while written, so of no length known in advance.
    assert_eq!(r.header("content-length"), None);
    let v = r.json();
    let procs = v["processes"].as_array().expect("processes");
    assert!(procs.iter().all(|p| p.get("memory_maps").is_some()));
    let mine = procs
        .iter()
        .find(|p| p["pid"] == kid.0.id())
        .expect("the sleep is listed");
    assert!(
        mine["memory_maps"]
            .as_array()
            .is_some_and(|m| m.iter().any(|g| g["path"] == "[stack]")),
        "{mine}"
    );
}
