//! Process groups for `/metrics` (`[metrics.groups]` in `gateway.toml`):
//! which group each process belongs to, by the first rule it matches, and
//! what each member uses, read in one pass only when a scrape asks.
//!
//! A rule names its group with a fixed name or `{user}` (the process's
//! real user); it matches on the process name (`comm`), the executable's
//! path, a regular expression over the command line, the real user or the
//! cgroup path, every given condition together. There is deliberately no
//! `{name}` or `{cmdline}` template: those are text a job chose, which
//! another key may not see (`withhold`), and would become label values.
//! A process that matches no rule is in no group and costs two reads.
//! The files only a rule needs (`exe`, `cmdline`, `cgroup`) are read only
//! when some rule asks; `fd/` and `io` only for members.

use std::fmt::Write as _;

use regex::Regex;

use super::parse;
use super::procfs::{list_pids, slurp, SysInfo};
use super::users::Table;

/// Groups at most, when `max_groups` is not set.
pub const DEFAULT_MAX_GROUPS: usize = 64;

/// What names a rule's group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupName {
    Fixed(String),
    /// `{user}`: one group per real user.
    User,
}

/// One `[[metrics.groups.rule]]`, validated: at least one condition.
#[derive(Debug, Clone)]
pub struct GroupRule {
    pub group: GroupName,
    /// Exactly the process name (`comm`, at most 15 bytes).
    pub name: Option<String>,
    /// Exactly the executable's path.
    pub exe: Option<String>,
    /// Searched in the arguments joined by spaces.
    pub cmdline: Option<Regex>,
    /// The real user, by passwd name.
    pub user: Option<String>,
    /// The cgroup v2 path (`/system.slice/x.service`), or a path below it.
    pub cgroup: Option<String>,
}

/// The rules in order and the cap on groups.
#[derive(Debug, Clone)]
pub struct GroupRules {
    pub rules: Vec<GroupRule>,
    pub max_groups: usize,
}

impl GroupRule {
    /// A rule from its configured strings; the error says what is wrong.
    pub fn new(
        group: &str,
        name: Option<String>,
        exe: Option<String>,
        cmdline: Option<&str>,
        user: Option<String>,
        cgroup: Option<String>,
    ) -> Result<GroupRule, String> {
        let group = match group {
            "" => return Err("group is empty".into()),
            "{user}" => GroupName::User,
            g if g.contains(['{', '}']) => {
                return Err(format!("group {g:?}: the only template is {{user}}"))
            }
            g => GroupName::Fixed(g.to_string()),
        };
        let cmdline = cmdline
            .map(|c| Regex::new(c).map_err(|e| format!("cmdline {c:?}: {e}")))
            .transpose()?;
        if name.is_none()
            && exe.is_none()
            && cmdline.is_none()
            && user.is_none()
            && cgroup.is_none()
        {
            return Err("a rule needs name, exe, cmdline, user or cgroup".into());
        }
        Ok(GroupRule {
            group,
            name,
            exe,
            cmdline,
            user,
            cgroup,
        })
    }
}

/// One member process at the instant it was read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Member {
    pub group: String,
    pub pid: i32,
    /// Clock ticks after boot: with `pid`, the process's identity.
    pub start_ticks: u64,
    /// Seconds since the epoch.
    pub start_time: f64,
    /// psutil's state name.
    pub state: &'static str,
    pub user_seconds: f64,
    pub system_seconds: f64,
    pub rss_bytes: u64,
    pub virtual_bytes: u64,
    pub swap_bytes: u64,
    pub threads: u64,
    pub minor_faults: u64,
    pub major_faults: u64,
    pub voluntary_switches: u64,
    pub involuntary_switches: u64,
    /// `None`: the kernel does not let the gateway see (another user's).
    pub open_fds: Option<u64>,
    /// Bytes read from and written to storage (`io`); `None` as above.
    pub io_bytes: Option<(u64, u64)>,
}

/// What the rules need read of every process, beyond stat and status.
#[derive(Clone, Copy)]
struct Needs {
    exe: bool,
    cmdline: bool,
    cgroup: bool,
}

/// Every process that matches a rule, read now.
pub fn take(rules: &GroupRules, sys: &SysInfo, users: &Table) -> std::io::Result<Vec<Member>> {
    let needs = Needs {
        exe: rules.rules.iter().any(|r| r.exe.is_some()),
        cmdline: rules.rules.iter().any(|r| r.cmdline.is_some()),
        cgroup: rules.rules.iter().any(|r| r.cgroup.is_some()),
    };
    let mut out = Vec::new();
    let mut buf = vec![0u8; 4096];
    let mut path = String::with_capacity(48);
    for pid in list_pids()? {
        let mut read = |file: &str, buf: &mut Vec<u8>| -> Option<usize> {
            path.clear();
            let _ = write!(path, "/proc/{pid}/{file}");
            slurp(&path, buf).ok()
        };
        let Some(n) = read("stat", &mut buf) else {
            continue;
        };
        let Some(st) = parse::stat(&buf[..n]) else {
            continue;
        };
        let mut m = Member {
            pid: pid.get(),
            start_ticks: st.start_time,
            start_time: sys.btime as f64 + st.start_time as f64 / sys.hz.max(1) as f64,
            state: parse::status_name(st.state),
            user_seconds: st.utime as f64 / sys.hz.max(1) as f64,
            system_seconds: st.stime as f64 / sys.hz.max(1) as f64,
            rss_bytes: st.rss * sys.page,
            virtual_bytes: st.vsize,
            threads: st.num_threads,
            minor_faults: st.minflt,
            major_faults: st.majflt,
            ..Member::default()
        };
        let comm = String::from_utf8_lossy(st.comm).into_owned();
        let Some(n) = read("status", &mut buf) else {
            continue;
        };
        let status = parse::status(&buf[..n]);
        let Some(uid) = status.uids.map(|u| u[0]) else {
            continue;
        };
        m.swap_bytes = status.swap_kib * 1024;
        m.voluntary_switches = status.voluntary;
        m.involuntary_switches = status.involuntary;
        let user = users
            .name(uid)
            .map_or_else(|| uid.to_string(), str::to_string);
        let exe = needs
            .exe
            .then(|| std::fs::read_link(format!("/proc/{pid}/exe")).ok())
            .flatten()
            .map(|p| p.to_string_lossy().into_owned());
        let cmdline = needs
            .cmdline
            .then(|| read("cmdline", &mut buf))
            .flatten()
            .map(|n| {
                let args: Vec<String> = parse::cmdline(&buf[..n])
                    .into_iter()
                    .map(|a| String::from_utf8_lossy(a).into_owned())
                    .collect();
                args.join(" ")
            });
        let cgroup = needs
            .cgroup
            .then(|| read("cgroup", &mut buf))
            .flatten()
            .and_then(|n| unified_cgroup(&buf[..n]));
        let seen = Seen {
            comm: &comm,
            user: &user,
            exe: exe.as_deref(),
            cmdline: cmdline.as_deref(),
            cgroup: cgroup.as_deref(),
        };
        let Some(group) = rules.rules.iter().find_map(|r| seen.group(r)) else {
            continue;
        };
        m.group = group;
        m.open_fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
            .ok()
            .map(|d| d.count() as u64);
        m.io_bytes = read("io", &mut buf).map(|n| {
            let io = parse::io(&buf[..n]);
            (io[2], io[3])
        });
        out.push(m);
    }
    Ok(out)
}

/// What a process showed of itself, for the rules.
struct Seen<'a> {
    comm: &'a str,
    user: &'a str,
    exe: Option<&'a str>,
    cmdline: Option<&'a str>,
    cgroup: Option<&'a str>,
}

impl Seen<'_> {
    /// The group `r` puts this process in, if it matches.
    fn group(&self, r: &GroupRule) -> Option<String> {
        let ok = r.name.as_ref().map_or(true, |n| n == self.comm)
            && r.user.as_ref().map_or(true, |u| u == self.user)
            && r.exe
                .as_ref()
                .map_or(true, |e| Some(e.as_str()) == self.exe)
            && r.cmdline
                .as_ref()
                .map_or(true, |re| self.cmdline.is_some_and(|c| re.is_match(c)))
            && r.cgroup.as_ref().map_or(true, |g| {
                self.cgroup.is_some_and(|c| {
                    c == g
                        || c.strip_prefix(g.as_str())
                            .is_some_and(|r| r.starts_with('/'))
                })
            });
        ok.then(|| match &r.group {
            GroupName::Fixed(g) => g.clone(),
            GroupName::User => self.user.to_string(),
        })
    }
}

/// The cgroup v2 path in `/proc/PID/cgroup` (its `0::` line).
fn unified_cgroup(b: &[u8]) -> Option<String> {
    b.split(|&c| c == b'\n')
        .find_map(|l| l.strip_prefix(b"0::"))
        .map(|p| String::from_utf8_lossy(p).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen<'a>(comm: &'a str, user: &'a str, cmdline: &'a str) -> Seen<'a> {
        Seen {
            comm,
            user,
            exe: Some("/usr/bin/python3"),
            cmdline: Some(cmdline),
            cgroup: Some("/system.slice/report.service"),
        }
    }

    #[test]
    fn every_condition_of_a_rule_must_hold() {
        let r = GroupRule::new(
            "reports",
            Some("python3".into()),
            None,
            Some(r"report\.py"),
            Some("alice".into()),
            Some("/system.slice".into()),
        )
        .unwrap();
        assert_eq!(
            seen("python3", "alice", "python3 /opt/report.py").group(&r),
            Some("reports".into())
        );
        assert_eq!(
            seen("python3", "bob", "python3 /opt/report.py").group(&r),
            None
        );
        assert_eq!(seen("python3", "alice", "python3 other.py").group(&r), None);
        let narrower = GroupRule::new("x", None, None, None, None, Some("/system.slic".into()));
        assert_eq!(
            seen("a", "b", "c").group(&narrower.unwrap()),
            None,
            "a path, not a prefix"
        );
    }

    #[test]
    fn the_user_template_names_the_group_by_the_real_user() {
        let r = GroupRule::new(
            "{user}",
            None,
            Some("/usr/bin/python3".into()),
            None,
            None,
            None,
        )
        .unwrap();
        assert_eq!(seen("python3", "alice", "").group(&r), Some("alice".into()));
    }

    #[test]
    fn bad_rules_are_refused_saying_why() {
        for (group, cmdline, says) in [
            ("g", None, "needs name, exe, cmdline, user or cgroup"),
            ("", Some("x"), "group is empty"),
            ("{name}", Some("x"), "the only template is {user}"),
            ("g", Some("(unclosed"), "cmdline \"(unclosed\""),
        ] {
            let e = GroupRule::new(group, None, None, cmdline, None, None).unwrap_err();
            assert!(e.contains(says), "{group} {cmdline:?}: {e}");
        }
    }

    #[test]
    fn the_unified_cgroup_line_is_found_among_v1_lines() {
        let b = b"12:memory:/x\n0::/system.slice/a.service\n";
        assert_eq!(
            unified_cgroup(b).as_deref(),
            Some("/system.slice/a.service")
        );
        assert_eq!(unified_cgroup(b"1:cpu:/x\n"), None);
    }
}
