//! What the helper's own process holds once it has started.

mod support;

use std::fs;

use support::{require_root, Helper};

/// The helper names users from `/etc/passwd` alone. Through glibc, a uid
/// with no local entry would make NSS load the next source's module into
/// root's process (on Debian, `passwd: files systemd` loads
/// `libnss_systemd`, which talks to systemd's userdb). Where the host's
/// nsswitch lists only `files`, the old lookup loaded nothing either and
/// this test cannot tell the two apart.
#[test]
#[ignore = "needs root"]
fn a_uid_without_a_passwd_entry_loads_no_nss_module_into_the_helper() {
    require_root();
    let passwd = fs::read_to_string("/etc/passwd").expect("passwd");
    let listed = |uid: u32| {
        passwd
            .lines()
            .any(|l| l.split(':').nth(2) == Some(&uid.to_string()))
    };
    let unnamed = (42_000..43_000).find(|u| !listed(*u)).expect("a free uid");
    let h = Helper::start(
        "nss",
        &format!("[signal]\nowners = [\"nobody\", {unnamed}]\nsignals = [\"TERM\"]\n"),
    );
    // The policy is loaded, and its users looked up, before the socket
    // listens: `start` has waited for that.
    let started = h.events("started");
    let summary = started[0]["policy"].as_str().expect("a policy summary");
    assert!(summary.contains(&unnamed.to_string()), "{summary}");
    let maps = fs::read_to_string(format!("/proc/{}/maps", h.pid())).expect("maps");
    let nss: Vec<&str> = maps.lines().filter(|l| l.contains("libnss_")).collect();
    assert!(nss.is_empty(), "the helper loaded NSS modules: {nss:#?}");
}
