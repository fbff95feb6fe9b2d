//! Choosing the processes a planned action names: a list of pids, a
//! process tree, or a match on exact fields (name, executable path,
//! command line by regular expression, user, cgroup path, systemd unit),
//! read from /proc once per plan.
//!
//! Never chosen: pid ≤ 1, kernel threads, and the gateway itself with its
//! ancestors (the caller's side of the trust boundary; the helper refuses
//! its own and the gateway's ancestry besides). A process whose name,
//! command line and executable another key's job keeps from the caller
//! ([`Withhold`]) matches none of those three fields, so a match cannot
//! tell what the caller may not read, and shows them `None`.

use std::collections::HashSet;
use std::fs;
use std::io;

use super::parse;
use super::procfs::{list_pids, slurp};
use super::users::Table;
use super::Withhold;

/// What to select. The match fields are ANDed.
#[derive(Debug, Clone)]
pub enum Selector {
    Pids(Vec<i32>),
    Tree { root: i32, include_root: bool },
    Match(Match),
}

/// The fields of a match; `None` does not constrain.
#[derive(Debug, Clone, Default)]
pub struct Match {
    pub name: Option<String>,
    pub exe: Option<String>,
    pub cmdline: Option<regex::Regex>,
    pub uid: Option<u32>,
    pub cgroup: Option<String>,
    pub unit: Option<String>,
}

/// A selected process as /proc showed it.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub pid: i32,
    pub ppid: i32,
    pub start_time: u64,
    pub name: Option<String>,
    pub exe: Option<String>,
    pub uid: Option<u32>,
    pub user: Option<String>,
    /// The unified hierarchy's path (`0::` line of `/proc/PID/cgroup`).
    pub cgroup: Option<String>,
}

/// Reads every process once and keeps those `sel` names, in pid order
/// (a tree: root first, then by depth).
pub fn select(sel: &Selector, users: &Table, withhold: &Withhold) -> io::Result<Vec<Candidate>> {
    let mine = own_ancestry();
    // A list of pids reads those alone; a tree or a match reads them all.
    let pids: Vec<i32> = match sel {
        Selector::Pids(p) => {
            let mut p = p.clone();
            p.sort_unstable();
            p.dedup();
            p
        }
        _ => list_pids()?.into_iter().map(|p| p.get()).collect(),
    };
    let mut all: Vec<Candidate> = Vec::new();
    for pid in pids {
        if pid <= 1 || mine.contains(&pid) {
            continue;
        }
        if let Some(c) = read(pid, users, withhold) {
            all.push(c);
        }
    }
    Ok(match sel {
        Selector::Pids(pids) => all.into_iter().filter(|c| pids.contains(&c.pid)).collect(),
        Selector::Tree { root, include_root } => {
            let mut tree: Vec<i32> = vec![*root];
            let mut i = 0;
            while i < tree.len() {
                let p = tree[i];
                tree.extend(all.iter().filter(|c| c.ppid == p).map(|c| c.pid));
                i += 1;
            }
            tree.iter()
                .filter(|&&p| *include_root || p != *root)
                .filter_map(|p| all.iter().find(|c| c.pid == *p).cloned())
                .collect()
        }
        Selector::Match(m) => all
            .into_iter()
            .filter(|c| matches(m, c, withhold))
            .collect(),
    })
}

fn matches(m: &Match, c: &Candidate, withhold: &Withhold) -> bool {
    let eq = |want: &Option<String>, have: &Option<String>| {
        want.as_ref().map_or(true, |w| have.as_ref() == Some(w))
    };
    let unit_ok = m.unit.as_ref().map_or(true, |u| {
        c.cgroup
            .as_ref()
            .is_some_and(|g| g.split('/').any(|part| part == u))
    });
    let cmd_ok = m.cmdline.as_ref().map_or(true, |re| {
        !hidden(c, withhold) && cmdline(c.pid).is_some_and(|line| re.is_match(&line))
    });
    eq(&m.name, &c.name)
        && eq(&m.exe, &c.exe)
        && m.uid.map_or(true, |u| c.uid == Some(u))
        && eq(&m.cgroup, &c.cgroup)
        && unit_ok
        && cmd_ok
}

fn hidden(c: &Candidate, withhold: &Withhold) -> bool {
    withhold.hides(c.uid, || fs::read(format!("/proc/{}/cgroup", c.pid)).ok())
}

/// The command line, arguments joined by spaces (as `ps` shows it).
fn cmdline(pid: i32) -> Option<String> {
    let raw = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let args: Vec<String> = parse::cmdline(&raw)
        .into_iter()
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    Some(args.join(" "))
}

/// One process, or `None` when it is gone or a kernel thread.
fn read(pid: i32, users: &Table, withhold: &Withhold) -> Option<Candidate> {
    let mut buf = vec![0u8; 1024];
    let n = slurp(&format!("/proc/{pid}/stat"), &mut buf).ok()?;
    let st = parse::stat(&buf[..n])?;
    let ppid = i32::try_from(st.ppid).unwrap_or(0);
    if pid == 2 || ppid == 2 {
        return None;
    }
    let mut sbuf = vec![0u8; 4096];
    let uid = slurp(&format!("/proc/{pid}/status"), &mut sbuf)
        .ok()
        .and_then(|k| parse::real_uid(&sbuf[..k]));
    let cgroup = fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("0::").map(str::to_owned))
        });
    let mut c = Candidate {
        pid,
        ppid,
        start_time: st.start_time,
        name: Some(String::from_utf8_lossy(st.comm).into_owned()),
        exe: fs::read_link(format!("/proc/{pid}/exe"))
            .ok()
            .map(|p| p.to_string_lossy().into_owned()),
        uid,
        user: uid.map(|u| users.name(u).map_or_else(|| u.to_string(), str::to_owned)),
        cgroup,
    };
    if hidden(&c, withhold) {
        c.name = None;
        c.exe = None;
    }
    Some(c)
}

/// The gateway and its ancestors.
fn own_ancestry() -> HashSet<i32> {
    let mut set = HashSet::new();
    let mut pid = i32::try_from(std::process::id()).unwrap_or(0);
    while pid > 1 && set.insert(pid) {
        let mut buf = vec![0u8; 1024];
        let Ok(n) = slurp(&format!("/proc/{pid}/stat"), &mut buf) else {
            break;
        };
        pid = parse::stat(&buf[..n]).map_or(0, |s| i32::try_from(s.ppid).unwrap_or(0));
    }
    set
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;
    use std::time::{Duration, Instant};

    fn users() -> Table {
        Table::parse("root:x:0:0::/root:/bin/sh\n")
    }

    /// A shell with two children whose command line is `sleep 1000.37`,
    /// returned once both have exec'd `sleep`: until then a child is a
    /// fork of the shell, named `sh` and with the shell's command line.
    fn family() -> std::process::Child {
        let child = Command::new("sh")
            .args(["-c", "sleep 1000.37 & sleep 1000.37 & wait"])
            .spawn()
            .expect("sh");
        let t = Instant::now();
        let sel = Selector::Tree {
            root: child.id() as i32,
            include_root: false,
        };
        let sleeping = |c: &Candidate| {
            c.name.as_deref() == Some("sleep")
                && c.exe.as_deref().is_some_and(|e| e.ends_with("sleep"))
        };
        loop {
            let kids = select(&sel, &users(), &Withhold::none()).expect("select");
            if kids.len() == 2 && kids.iter().all(sleeping) {
                break;
            }
            assert!(
                t.elapsed() < Duration::from_secs(10),
                "children never ran sleep: {kids:?}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        child
    }

    #[test]
    fn a_tree_a_match_and_pids_select_what_they_name_and_never_the_gateway() {
        let mut child = family();
        let root = child.id() as i32;
        let all = |sel: Selector| select(&sel, &users(), &Withhold::none()).expect("select");
        let tree = all(Selector::Tree {
            root,
            include_root: true,
        });
        assert_eq!(tree.len(), 3, "{tree:?}");
        assert_eq!(tree[0].pid, root, "the root first");
        assert!(tree[1..]
            .iter()
            .all(|c| c.ppid == root && c.name.as_deref() == Some("sleep")));
        let by_cmdline = all(Selector::Match(Match {
            cmdline: Some(regex::Regex::new(r"^sleep 1000\.37$").expect("regex")),
            ..Match::default()
        }));
        assert_eq!(by_cmdline.len(), 2, "{by_cmdline:?}");
        let exe = tree[1].exe.clone();
        assert!(
            exe.as_deref().is_some_and(|e| e.ends_with("sleep")),
            "{exe:?}"
        );
        let by_name_and_exe = all(Selector::Match(Match {
            name: Some("sleep".into()),
            exe,
            cmdline: Some(regex::Regex::new(r"1000\.37").expect("regex")),
            uid: Some(nix::unistd::getuid().as_raw()),
            ..Match::default()
        }));
        assert_eq!(by_name_and_exe.len(), 2);
        let me = std::process::id() as i32;
        let pids = all(Selector::Pids(vec![me, 1, root]));
        assert_eq!(
            pids.iter().map(|c| c.pid).collect::<Vec<_>>(),
            vec![root],
            "the gateway (here the test) and pid 1 are never selected"
        );
        for c in &tree[1..] {
            let pid = nix::unistd::Pid::from_raw(c.pid);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        }
        child.kill().ok();
        child.wait().ok();
    }
}
