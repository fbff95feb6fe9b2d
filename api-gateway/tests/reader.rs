//! Other users' private fields through monitoreo-reader: a real reader
//! (started as root, dropped to a uid of its own with two capabilities),
//! a real gateway running as an unprivileged uid, real processes of
//! other users, and psutil run as root as the reference.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::{helper_bin, require_root, wait_listening, Gateway, Proc};

/// The uids these tests give the gateway and the reader: no passwd entry,
/// outside the helpers' job ranges (60700-61099 in the tests).
/// The tests run one at a time under the host's test lock; each starts
/// its own reader and gateway.
const GATEWAY_UID: u32 = 60380;
const READER_UID: u32 = 60381;
/// A uid neither the gateway, the reader nor the read policy's owners
/// have, for a process whose fields the policy refuses.
const STRANGER_UID: u32 = 60382;

/// Every private field, as `fields=` takes them.
const PRIVATE: &str = "exe,cwd,num_fds,open_files,connections,io_counters,memory_maps";

fn reader_bin() -> PathBuf {
    let p = helper_bin().with_file_name("monitoreo-reader");
    assert!(
        p.exists(),
        "{} is missing: run `cargo build -p reader` first",
        p.display()
    );
    p
}

/// The psutil of Debian's python3 (python3-psutil), as root.
fn psutil_python() -> &'static str {
    let py = "/usr/bin/python3";
    let ok = Command::new(py)
        .args(["-c", "import psutil"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "psutil is missing: apt-get install -y python3-psutil");
    py
}

/// A reader on its own socket and policy, as root then dropped.
struct Reader {
    dir: tempfile::TempDir,
    socket: PathBuf,
    policy: PathBuf,
    child: Child,
}

impl Reader {
    fn start(policy: &str) -> Reader {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let socket = dir.path().join("reader.sock");
        let policy_path = dir.path().join("policy.toml");
        std::fs::write(&policy_path, policy).unwrap();
        std::fs::set_permissions(&policy_path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let log = std::fs::File::create(dir.path().join("reader.log")).unwrap();
        let child = Command::new(reader_bin())
            .arg("--policy")
            .arg(&policy_path)
            .arg("--socket")
            .arg(&socket)
            .args(["--gateway-user", &GATEWAY_UID.to_string()])
            .args(["--user", &READER_UID.to_string()])
            .stderr(log)
            .spawn()
            .unwrap();
        let mut r = Reader {
            dir,
            socket,
            policy: policy_path,
            child,
        };
        let t = Instant::now();
        while !r.log().contains("\"started\"") {
            if let Ok(Some(st)) = r.child.try_wait() {
                panic!("the reader exited ({st}): {}", r.log());
            }
            assert!(t.elapsed() < Duration::from_secs(20), "reader: {}", r.log());
            std::thread::sleep(Duration::from_millis(10));
        }
        r
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("reader.log")).unwrap_or_default()
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A gateway running as [`GATEWAY_UID`] (no capability), asking the
/// reader at `reader_socket` (none: `""`).
fn gateway_as_unprivileged(helper_socket: &Path, reader_socket: &str) -> Gateway {
    let mut g = Gateway::configure(
        helper_socket,
        &format!("reader_socket = \"{reader_socket}\"\n"),
    );
    nix::unistd::chown(
        g.dir.path(),
        Some(nix::unistd::Uid::from_raw(GATEWAY_UID)),
        Some(nix::unistd::Gid::from_raw(GATEWAY_UID)),
    )
    .unwrap();
    let err = std::fs::File::create(g.dir.path().join("gateway.err")).unwrap();
    nix::unistd::chown(
        &g.dir.path().join("gateway.err"),
        Some(nix::unistd::Uid::from_raw(GATEWAY_UID)),
        None,
    )
    .unwrap();
    let mut child = Command::new("setpriv")
        .arg(format!("--reuid={GATEWAY_UID}"))
        .arg(format!("--regid={GATEWAY_UID}"))
        .args(["--clear-groups", "--inh-caps=-all", "--bounding-set=-all"])
        .arg(support::gateway_bin())
        .args(["serve", "--config"])
        .arg(&g.config)
        .stdout(Stdio::null())
        .stderr(err)
        .spawn()
        .unwrap();
    wait_listening(&mut child, g.addr, &g.dir.path().join("gateway.err"));
    g.child = Some(child);
    g
}

/// A python process as `uid` in `/tmp` holding a regular file and a
/// listening TCP socket open, once it holds them.
fn busy_process(uid: u32) -> Proc {
    let code = "import socket,time\n\
                s=socket.socket(); s.bind(('127.0.0.1',0)); s.listen()\n\
                f=open('/etc/hostname')\n\
                print('ready', flush=True)\n\
                time.sleep(120)\n";
    let id = uid.to_string();
    let mut child = Proc(
        support::as_user(&id, &id, "/usr/bin/python3")
            .args(["-c", code])
            .current_dir("/tmp")
            // Nothing of the test run's own: its stderr may be a file
            // (CI's log), which would be one more open file to compare.
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let Some(out) = child.0.stdout.take() else {
        panic!("no stdout");
    };
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(out), &mut line).unwrap();
    assert_eq!(line.trim(), "ready");
    child
}

/// psutil's view of `pid` as root, in the gateway's JSON shapes.
fn psutil_view(pid: u32) -> Value {
    let code = r#"
import json, sys, psutil
p = psutil.Process(int(sys.argv[1]))
def addr(a):
    return {"ip": a.ip, "port": a.port} if a else None
io = p.io_counters()
print(json.dumps({
  "exe": p.exe(), "cwd": p.cwd(), "num_fds": p.num_fds(),
  "open_files": [{"path": f.path, "fd": f.fd} for f in p.open_files()],
  "connections": [{"fd": c.fd, "family": c.family.name, "type": c.type.name,
                   "laddr": addr(c.laddr), "raddr": addr(c.raddr), "status": c.status}
                  for c in p.connections(kind="inet")],
  "io_counters": {"read_count": io.read_count, "write_count": io.write_count,
                  "read_bytes": io.read_bytes, "write_bytes": io.write_bytes,
                  "read_chars": io.read_chars, "write_chars": io.write_chars},
  "memory_maps": [dict(m._asdict()) for m in p.memory_maps(grouped=True)],
}))
"#;
    let out = Command::new(psutil_python())
        .args(["-c", code, &pid.to_string()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn one(g: &Gateway, token: &str, pid: u32, fields: &str) -> Value {
    let r = g.get(&format!("/api/ps/{pid}?fields={fields}"), Some(token));
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    r.json()["process"].clone()
}

fn in_listing(g: &Gateway, token: &str, pid: u32, fields: &str) -> Value {
    let r = g.get(&format!("/api/ps?fields={fields}"), Some(token));
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    r.json()["processes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["pid"] == json!(pid))
        .unwrap_or_else(|| panic!("pid {pid} not listed"))
        .clone()
}

/// memory_maps sorted by path (psutil groups in a dict's order), each
/// with the figures that do not depend on who else maps the same pages at
/// the instant of the read: pss, and the split of clean and dirty pages
/// into shared and private, change as other processes (psutil's own
/// python among them) map and unmap the same files; their sums do not.
fn by_path(v: &Value) -> Vec<Value> {
    let mut m: Vec<Value> = v
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|g| {
            let n = |k: &str| g[k].as_u64().unwrap_or(u64::MAX);
            assert!(n("pss") <= n("rss") && n("referenced") <= n("rss"), "{g}");
            json!({
                "path": g["path"], "rss": g["rss"], "size": g["size"],
                "anonymous": g["anonymous"], "swap": g["swap"],
                "clean": n("shared_clean") + n("private_clean"),
                "dirty": n("shared_dirty") + n("private_dirty"),
            })
        })
        .collect();
    m.sort_by_key(|x| x["path"].as_str().unwrap_or_default().to_string());
    m
}

fn assert_like_psutil(got: &Value, want: &Value) {
    for f in PRIVATE.split(',') {
        if f == "memory_maps" {
            let maps = by_path(&got[f]);
            assert!(maps.len() > 5, "{f}: {}", got[f]);
            assert_eq!(maps, by_path(&want[f]), "{f}");
        } else {
            assert_eq!(got[f], want[f], "{f}");
        }
    }
    assert!(got.get("withheld").is_none(), "{got}");
}

const READ_ALL: &str = "[read]\nowners = [\"nobody\", 60600]\nfields = [\"exe\", \"cwd\", \"num_fds\", \"open_files\", \"connections\", \"io_counters\", \"memory_maps\"]\n";

#[test]
#[ignore = "needs root"]
fn another_users_private_fields_equal_psutils_as_root_in_a_listing_and_alone() {
    require_root();
    let reader = Reader::start(READ_ALL);
    let g = gateway_as_unprivileged(
        Path::new("/nonexistent/helper.sock"),
        reader.socket.to_str().unwrap(),
    );
    let token = g.key("viewer", "read", &[]);
    let target = busy_process(65534);
    let pid = target.id();

    let want = psutil_view(pid);
    assert_eq!(
        want["connections"].as_array().map(Vec::len),
        Some(1),
        "{want}"
    );
    assert_eq!(
        want["open_files"].as_array().map(Vec::len),
        Some(1),
        "{want}"
    );
    assert_like_psutil(&one(&g, &token, pid, PRIVATE), &want);
    assert_like_psutil(&in_listing(&g, &token, pid, PRIVATE), &want);

    // The gateway itself holds no capability (the fields came from the
    // reader), and the reader only the two.
    let gw = g.child.as_ref().unwrap().id();
    let status = |pid: u32| std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert!(
        status(gw).contains("CapEff:\t0000000000000000"),
        "{}",
        status(gw)
    );
    let rd = status(reader.child.id());
    // CAP_DAC_READ_SEARCH (bit 2) and CAP_SYS_PTRACE (bit 19).
    for set in ["CapEff", "CapPrm", "CapBnd"] {
        assert!(
            rd.contains(&format!("{set}:\t0000000000080004")),
            "{set}: {rd}"
        );
    }
    assert!(
        rd.contains(&format!("Uid:\t{READER_UID}\t{READER_UID}\t{READER_UID}")),
        "{rd}"
    );
}

#[test]
#[ignore = "needs root"]
fn fields_the_read_policy_refuses_are_null_with_the_reason_and_others_still_come() {
    require_root();
    let policy = "[read]\nowners = [\"nobody\"]\nfields = [\"exe\", \"num_fds\"]\n";
    let reader = Reader::start(policy);
    let g = gateway_as_unprivileged(
        Path::new("/nonexistent/helper.sock"),
        reader.socket.to_str().unwrap(),
    );
    let token = g.key("viewer", "read", &[]);
    let allowed = busy_process(65534);
    let stranger = busy_process(STRANGER_UID);

    let p = in_listing(&g, &token, allowed.id(), PRIVATE);
    assert!(
        p["exe"].as_str().is_some_and(|e| e.contains("python3")),
        "{p}"
    );
    assert!(p["num_fds"].as_u64().is_some_and(|n| n >= 5), "{p}");
    for f in [
        "cwd",
        "open_files",
        "connections",
        "io_counters",
        "memory_maps",
    ] {
        assert_eq!(p[f], Value::Null, "{f}: {p}");
        assert_eq!(p["withheld"][f], json!("read_policy"), "{f}: {p}");
    }
    let s = one(&g, &token, stranger.id(), PRIVATE);
    for f in PRIVATE.split(',') {
        assert_eq!(s[f], Value::Null, "{f}: {s}");
        assert_eq!(s["withheld"][f], json!("read_policy"), "{f}: {s}");
    }
    // A field the caller did not ask for is not named.
    let s = one(&g, &token, stranger.id(), "exe");
    assert_eq!(s["withheld"], json!({"exe": "read_policy"}));

    // A reload that narrows the policy applies to the next listing.
    std::fs::write(
        &reader.policy,
        "[read]\nowners = [\"nobody\"]\nfields = [\"cwd\"]\n",
    )
    .unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(reader.child.id() as i32),
        nix::sys::signal::Signal::SIGHUP,
    )
    .unwrap();
    let t = Instant::now();
    while !reader.log().contains("policy_reloaded") {
        assert!(t.elapsed() < Duration::from_secs(10), "{}", reader.log());
        std::thread::sleep(Duration::from_millis(10));
    }
    let p = one(&g, &token, allowed.id(), "exe,cwd");
    assert_eq!(p["cwd"], json!("/tmp"), "{p}");
    assert_eq!(p["withheld"], json!({"exe": "read_policy"}), "{p}");
}

#[test]
#[ignore = "needs root"]
fn without_a_reader_the_fields_are_null_with_the_reason_and_the_listing_is_whole() {
    require_root();
    let dir = tempfile::tempdir().unwrap();
    let absent = dir.path().join("no-reader.sock");
    for socket in [absent.to_str().unwrap(), ""] {
        let g = gateway_as_unprivileged(Path::new("/nonexistent/helper.sock"), socket);
        let token = g.key("viewer", "read", &[]);
        let target = busy_process(65534);
        let p = in_listing(&g, &token, target.id(), &format!("name,{PRIVATE}"));
        assert!(
            p["name"].as_str().is_some_and(|n| n.starts_with("python")),
            "{p}"
        );
        for f in PRIVATE.split(',') {
            assert_eq!(p[f], Value::Null, "{f}: {p}");
            assert_eq!(p["withheld"][f], json!("reader_unavailable"), "{f}: {p}");
        }
        // The gateway's own processes need no reader.
        let me = g.child.as_ref().unwrap().id();
        let own = one(&g, &token, me, "exe,num_fds");
        assert!(
            own["exe"]
                .as_str()
                .is_some_and(|e| e.ends_with("monitoreo-gateway")),
            "{own}"
        );
        assert!(own.get("withheld").is_none(), "{own}");
    }
}

/// The root helper serving [`GATEWAY_UID`], as the package runs it.
struct RootHelper {
    dir: tempfile::TempDir,
    socket: PathBuf,
    child: Child,
}

impl RootHelper {
    fn start() -> RootHelper {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let socket = dir.path().join("helper.sock");
        let policy = dir.path().join("policy.toml");
        for _ in 0..40 {
            std::fs::write(&policy, support::test_policy()).unwrap();
            let log = std::fs::File::create(dir.path().join("helper.log")).unwrap();
            let mut child = Command::new(helper_bin())
                .arg("--policy")
                .arg(&policy)
                .arg("--socket")
                .arg(&socket)
                .args(["--gateway-user", &GATEWAY_UID.to_string()])
                .stderr(log)
                .spawn()
                .unwrap();
            let t = Instant::now();
            loop {
                if std::os::unix::net::UnixStream::connect(&socket).is_ok() {
                    return RootHelper { dir, socket, child };
                }
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                assert!(
                    t.elapsed() < Duration::from_secs(20),
                    "helper did not listen"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
            let said = std::fs::read_to_string(dir.path().join("helper.log")).unwrap_or_default();
            assert!(
                said.contains("another running helper holds"),
                "helper: {said}"
            );
        }
        panic!("no free job uid range for the helper");
    }
}

impl Drop for RootHelper {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = &self.dir;
    }
}

/// The pid of `token`'s new job running `exec sleep 60`, once it is the
/// sleep.
fn sleeping_job(g: &Gateway, token: &str) -> u32 {
    let body = json!({ "cmd": "cd /tmp && exec sleep 60", "timeout_s": 30 }).to_string();
    let r = g.send("POST", "/api/jobs", Some(token), &body);
    assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.body));
    let pid = r.json()["job"]["pid"].as_u64().expect("pid") as u32;
    let t = Instant::now();
    while std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .unwrap_or_default()
        .trim()
        != "sleep"
    {
        assert!(t.elapsed() < Duration::from_secs(10), "job never ran");
        std::thread::sleep(Duration::from_millis(20));
    }
    pid
}

#[test]
#[ignore = "needs root"]
fn another_keys_job_keeps_its_withheld_fields_though_the_reader_may_read_them() {
    require_root();
    let h = RootHelper::start();
    let reader = Reader::start("[read]\nowners = [\"*\"]\nfields = [\"exe\", \"cwd\", \"num_fds\", \"open_files\", \"connections\", \"io_counters\", \"memory_maps\"]\n");
    let g = gateway_as_unprivileged(&h.socket, reader.socket.to_str().unwrap());
    let alice = g.key("alice", "read,exec", &[]);
    let mallory = g.key("mallory", "read", &[]);
    let pid = sleeping_job(&g, &alice);

    // The owner sees the job's private fields, through the reader (the
    // job's uid is neither the gateway's nor readable by it).
    let own = one(&g, &alice, pid, PRIVATE);
    assert_eq!(own["exe"], json!("/usr/bin/sleep"), "{own}");
    assert_eq!(own["cwd"], json!("/tmp"), "{own}");
    assert!(own.get("withheld").is_none(), "{own}");

    // Another key asks for every field, alone, in a listing, sorted by
    // one of them: what shows the job's input stays withheld.
    let mut views = vec![
        one(&g, &mallory, pid, PRIVATE),
        in_listing(&g, &mallory, pid, PRIVATE),
    ];
    let r = g.get(
        &format!("/api/ps?fields={PRIVATE}&sort=-exe"),
        Some(&mallory),
    );
    assert_eq!(r.status, 200);
    let listed = r.json()["processes"].clone();
    let first_null = listed
        .as_array()
        .unwrap()
        .iter()
        .position(|p| p["exe"].is_null())
        .unwrap_or(usize::MAX);
    let at = listed
        .as_array()
        .unwrap()
        .iter()
        .position(|p| p["pid"] == json!(pid))
        .expect("listed");
    assert!(at >= first_null, "sorted by the exe it may not see");
    views.push(listed[at].clone());
    for v in views {
        for f in ["exe", "cwd", "open_files", "connections", "memory_maps"] {
            assert_eq!(v[f], Value::Null, "{f}: {v}");
            assert_eq!(v["withheld"][f], json!("another_key_job"), "{f}: {v}");
        }
        // The figures stay, from the reader.
        assert_eq!(v["num_fds"], own["num_fds"], "{v}");
        assert!(v["io_counters"].is_object(), "{v}");
        assert!(v["withheld"].get("num_fds").is_none(), "{v}");
    }
    let _ = h.dir.path();
}

#[test]
#[ignore = "needs root"]
fn whoami_shows_the_readers_policy_as_written_or_why_it_cannot() {
    require_root();
    let h = RootHelper::start();
    let mut reader = Reader::start(
        "[read]\nowners = [\"nobody\", 60385, \"60600-60699\"]\nfields = [\"exe\", \"memory_maps\"]\n",
    );
    let g = gateway_as_unprivileged(&h.socket, reader.socket.to_str().unwrap());
    let viewer = g.key("viewer", "read", &[]);
    let signaller = g.key("signaller", "signal", &[]);
    let whoami = |token: &str| {
        let r = g.get("/api/whoami", Some(token));
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        r.json()["policy"].clone()
    };

    let p = whoami(&viewer);
    assert_eq!(
        p["read"],
        json!({"owners": ["nobody", "60385", "60600-60699"], "fields": ["exe", "memory_maps"]}),
        "{p}"
    );
    assert_eq!(p["read_reason"], Value::Null, "{p}");
    let p = whoami(&signaller);
    assert_eq!(
        (&p["read"], &p["read_reason"]),
        (&Value::Null, &json!("no_read_scope")),
        "{p}"
    );

    // The reader gone: null, and why.
    let _ = reader.child.kill();
    let _ = reader.child.wait();
    let _ = std::fs::remove_file(&reader.socket);
    let p = whoami(&viewer);
    assert_eq!(
        (&p["read"], &p["read_reason"]),
        (&Value::Null, &json!("reader_unavailable")),
        "{p}"
    );
    let none = gateway_as_unprivileged(&h.socket, "");
    let token = none.key("viewer", "read", &[]);
    let r = none.get("/api/whoami", Some(&token));
    let p = &r.json()["policy"];
    assert_eq!(
        (&p["read"], &p["read_reason"]),
        (&Value::Null, &json!("no_reader")),
        "{p}"
    );
}
