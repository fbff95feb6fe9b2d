//! `listen` with a host name: the real gateway resolves it, binds the
//! first IPv4 address (127.0.0.1 for `localhost`) and serves there; a
//! name that does not resolve is a configuration error naming `listen`.
//! Needs no root and no helper (the gateway starts without one).

mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{free_port, request, wait_listening, GATEWAY};

fn config(dir: &Path, listen: &str) -> PathBuf {
    let config = dir.join("gateway.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"{listen}\"\nhelper_socket = \"{}\"\nstate_dir = \"{}\"\n",
            dir.join("none.sock").display(),
            dir.join("state").display(),
        ),
    )
    .unwrap();
    config
}

#[test]
fn a_listen_host_name_is_resolved_and_served_on_its_ipv4_address() {
    let d = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = config(d.path(), &format!("localhost:{port}"));
    let err_path = d.path().join("err");
    let mut child = Command::new(GATEWAY)
        .args(["serve", "--config"])
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    wait_listening(&mut child, addr, &err_path);
    let reply = request(addr, "GET", "/api/openapi.json", None, None);
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let _ = child.wait();
    assert_eq!(reply.status, 200);
}

#[test]
fn a_listen_name_that_does_not_resolve_is_a_config_error_naming_listen() {
    let d = tempfile::tempdir().unwrap();
    let config = config(d.path(), "no-such-host.invalid:8470");
    let out = Command::new(GATEWAY)
        .args(["serve", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("gateway.toml"), "{err}");
    assert!(
        err.contains("listen: host name \"no-such-host.invalid\" does not resolve"),
        "{err}"
    );
}

/// A SIGHUP the moment the port accepts (a supervisor's reload right after
/// start) must be answered, not end the gateway by the default action: the
/// handlers are installed before the port is bound.
#[test]
fn a_sighup_as_soon_as_the_port_accepts_is_answered_and_the_gateway_serves_on() {
    for round in 0..10 {
        let d = tempfile::tempdir().unwrap();
        let port = free_port();
        let config = config(d.path(), &format!("127.0.0.1:{port}"));
        let err_path = d.path().join("err");
        let mut child = Command::new(GATEWAY)
            .args(["serve", "--config"])
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&err_path).unwrap())
            .spawn()
            .unwrap();
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        wait_listening(&mut child, addr, &err_path);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGHUP).unwrap();
        let t = Instant::now();
        while !std::fs::read_to_string(&err_path)
            .unwrap_or_default()
            .contains("SIGHUP: no TLS configuration to reload")
        {
            if let Some(status) = child.try_wait().unwrap() {
                panic!("round {round}: the gateway died of SIGHUP: {status}");
            }
            assert!(t.elapsed() < Duration::from_secs(10), "SIGHUP not answered");
            std::thread::sleep(Duration::from_millis(10));
        }
        let reply = request(addr, "GET", "/api/openapi.json", None, None);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let _ = child.wait();
        assert_eq!(reply.status, 200, "round {round}");
    }
}
