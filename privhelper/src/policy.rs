//! The allowlist policy (`policy.toml`): default deny, parsed once at start
//! and on SIGHUP. A parse error names the line; user names are resolved to
//! uids at load time so that a decision never consults the passwd database.

use std::collections::HashSet;
use std::fmt;
use std::path::Path;

use nix::unistd::{Gid, Group, User};
use protocol::Signal;
use serde::Deserialize;

use crate::ids::{Nice, Uid};

/// Why a policy could not be loaded.
#[derive(Debug)]
pub struct PolicyError(pub String);

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PolicyError {}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    #[serde(default)]
    signal: Option<RawSignal>,
    #[serde(default)]
    renice: Option<RawRenice>,
    #[serde(default)]
    run: Option<RawRun>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Owner {
    Name(String),
    Id(u32),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSignal {
    #[serde(default)]
    owners: Vec<Owner>,
    #[serde(default)]
    names: Vec<String>,
    #[serde(default)]
    signals: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRenice {
    #[serde(default)]
    owners: Vec<Owner>,
    #[serde(default)]
    names: Vec<String>,
    #[serde(default)]
    min_nice: Option<i32>,
    #[serde(default)]
    allow_negative: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRun {
    user: Owner,
    #[serde(default = "default_timeout")]
    max_timeout_s: u64,
    #[serde(default = "default_jobs")]
    max_jobs: usize,
    #[serde(default = "default_output")]
    max_output_bytes: u64,
    #[serde(default = "default_timeout")]
    cpu_s: u64,
    #[serde(default = "default_nofile")]
    nofile: u64,
    #[serde(default = "default_nproc")]
    nproc: u64,
}

fn default_timeout() -> u64 {
    300
}
fn default_jobs() -> usize {
    8
}
fn default_output() -> u64 {
    10 * 1024 * 1024
}
fn default_nofile() -> u64 {
    256
}
fn default_nproc() -> u64 {
    256
}

/// Who may be acted on, for one kind of act.
#[derive(Debug, Clone, Default)]
pub struct TargetRule {
    pub owners: HashSet<Uid>,
    /// Empty = any process name.
    pub names: HashSet<String>,
}

/// The run user and the limits of a job.
#[derive(Debug, Clone)]
pub struct RunPolicy {
    pub uid: Uid,
    pub gid: u32,
    pub user_name: String,
    pub home: String,
    pub max_timeout_ms: u64,
    pub max_jobs: usize,
    pub max_output_bytes: u64,
    pub cpu_s: u64,
    pub nofile: u64,
    pub nproc: u64,
}

/// A validated policy.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    pub signal: TargetRule,
    pub signals: HashSet<Signal>,
    pub renice: TargetRule,
    pub min_nice: Nice,
    /// `None`: no `[run]` section, Spawn is denied.
    pub run: Option<RunPolicy>,
}

/// A refusal by the policy: the rule's name, e.g. `signal.owners`.
pub type Rule = &'static str;

impl Policy {
    /// Reads and validates the file at `path`.
    pub fn load(path: &Path) -> Result<Policy, PolicyError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| PolicyError(format!("{}: {e}", path.display())))?;
        Policy::parse(&text).map_err(|e| PolicyError(format!("{}: {e}", path.display())))
    }

    /// Parses policy text.
    pub fn parse(text: &str) -> Result<Policy, PolicyError> {
        let raw: RawPolicy = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| line_at(text, s.start)).unwrap_or(0);
            PolicyError(format!("line {line}: {}", e.message()))
        })?;
        let mut p = Policy {
            min_nice: Nice::new(0).map_err(PolicyError)?,
            ..Policy::default()
        };
        if let Some(s) = raw.signal {
            p.signal = TargetRule {
                owners: resolve_owners(text, &s.owners)?,
                names: s.names.into_iter().collect(),
            };
            for name in s.signals {
                let sig: Signal = name
                    .parse()
                    .map_err(|e| PolicyError(format!("line {}: {e}", line_of(text, &name))))?;
                p.signals.insert(sig);
            }
        }
        if let Some(r) = raw.renice {
            p.renice = TargetRule {
                owners: resolve_owners(text, &r.owners)?,
                names: r.names.into_iter().collect(),
            };
            let min = r.min_nice.unwrap_or(0);
            p.min_nice = Nice::new(min).map_err(|e| {
                PolicyError(format!("line {}: min_nice: {e}", line_of(text, "min_nice")))
            })?;
            if min < 0 && !r.allow_negative {
                return Err(PolicyError(format!(
                    "line {}: min_nice = {min} raises priority; set allow_negative = true to allow it",
                    line_of(text, "min_nice")
                )));
            }
        }
        if let Some(run) = raw.run {
            p.run = Some(resolve_run(text, run)?);
        }
        Ok(p)
    }

    /// The rule that forbids `sig`, if any.
    pub fn check_signal(&self, owner: Uid, comm: &str, sig: Signal) -> Result<(), Rule> {
        check_target(&self.signal, owner, comm, "signal.owners", "signal.names")?;
        if !self.signals.contains(&sig) {
            return Err("signal.signals");
        }
        Ok(())
    }

    /// The rule that forbids setting `nice`, if any.
    pub fn check_renice(&self, owner: Uid, comm: &str, nice: Nice) -> Result<(), Rule> {
        check_target(&self.renice, owner, comm, "renice.owners", "renice.names")?;
        if nice.get() < self.min_nice.get() {
            return Err("renice.min_nice");
        }
        Ok(())
    }

    /// One line for logs.
    pub fn summary(&self) -> String {
        let mut sigs: Vec<&str> = self.signals.iter().map(|s| s.name()).collect();
        sigs.sort_unstable();
        format!(
            "signal owners {:?} signals {:?}; renice owners {:?} min_nice {}; run {}",
            self.signal
                .owners
                .iter()
                .map(|u| u.get())
                .collect::<Vec<_>>(),
            sigs,
            self.renice
                .owners
                .iter()
                .map(|u| u.get())
                .collect::<Vec<_>>(),
            self.min_nice.get(),
            self.run
                .as_ref()
                .map(|r| format!("as {} (uid {})", r.user_name, r.uid.get()))
                .unwrap_or_else(|| "denied".into())
        )
    }
}

fn check_target(
    rule: &TargetRule,
    owner: Uid,
    comm: &str,
    owners_rule: Rule,
    names_rule: Rule,
) -> Result<(), Rule> {
    if !rule.owners.contains(&owner) {
        return Err(owners_rule);
    }
    if !rule.names.is_empty() && !rule.names.contains(comm) {
        return Err(names_rule);
    }
    Ok(())
}

/// Line (1-based) holding byte `offset`: newlines before it, plus one. (A
/// count of `lines()` is one short when the offset starts a line.)
fn line_at(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// Line (1-based) of the first occurrence of `needle`, 0 if absent.
fn line_of(text: &str, needle: &str) -> usize {
    text.find(needle).map(|at| line_at(text, at)).unwrap_or(0)
}

fn resolve_owners(text: &str, owners: &[Owner]) -> Result<HashSet<Uid>, PolicyError> {
    owners
        .iter()
        .map(|o| resolve_user(text, o).map(|u| u.0))
        .collect()
}

/// (uid, primary gid, name, home) of a user name or number.
fn resolve_user(text: &str, owner: &Owner) -> Result<(Uid, u32, String, String), PolicyError> {
    let user = match owner {
        Owner::Name(n) => User::from_name(n),
        Owner::Id(id) => User::from_uid((*id).into()),
    }
    .map_err(|e| PolicyError(format!("looking up users: {e}")))?;
    match (user, owner) {
        (Some(u), _) => Ok((
            Uid::new(u.uid.as_raw()),
            u.gid.as_raw(),
            u.name,
            u.dir.to_string_lossy().into_owned(),
        )),
        (None, Owner::Id(id)) => Ok((
            Uid::new(*id),
            Group::from_gid(Gid::from_raw(*id))
                .ok()
                .flatten()
                .map(|g| g.gid.as_raw())
                .unwrap_or(*id),
            id.to_string(),
            "/".into(),
        )),
        (None, Owner::Name(n)) => Err(PolicyError(format!(
            "line {}: no such user {n:?}",
            line_of(text, &format!("\"{n}\""))
        ))),
    }
}

fn resolve_run(text: &str, run: RawRun) -> Result<RunPolicy, PolicyError> {
    let (uid, gid, user_name, home) = resolve_user(text, &run.user)?;
    if uid.get() == 0 || gid == 0 {
        return Err(PolicyError(format!(
            "line {}: commands may not run as root",
            line_of(text, "user")
        )));
    }
    if run.max_timeout_s == 0 || run.max_jobs == 0 {
        return Err(PolicyError(format!(
            "line {}: max_timeout_s and max_jobs must be positive",
            line_of(text, "[run]")
        )));
    }
    Ok(RunPolicy {
        uid,
        gid,
        user_name,
        home,
        max_timeout_ms: run.max_timeout_s.saturating_mul(1000),
        max_jobs: run.max_jobs,
        max_output_bytes: run.max_output_bytes,
        cpu_s: run.cpu_s,
        nofile: run.nofile,
        nproc: run.nproc,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_policy_denies_everything() {
        let p = Policy::parse("").expect("parses");
        let root = Uid::new(0);
        assert_eq!(
            p.check_signal(root, "x", Signal::Term),
            Err("signal.owners")
        );
        assert_eq!(
            p.check_renice(root, "x", Nice::new(5).expect("valid")),
            Err("renice.owners")
        );
        assert!(p.run.is_none());
    }

    #[test]
    fn allowlists_are_applied_in_order() {
        let p = Policy::parse(
            "[signal]\nowners = [65534]\nnames = [\"sleep\"]\nsignals = [\"TERM\"]\n\
             [renice]\nowners = [65534]\nmin_nice = 5\n",
        )
        .expect("parses");
        let nobody = Uid::new(65534);
        assert_eq!(p.check_signal(nobody, "sleep", Signal::Term), Ok(()));
        assert_eq!(
            p.check_signal(nobody, "bash", Signal::Term),
            Err("signal.names")
        );
        assert_eq!(
            p.check_signal(nobody, "sleep", Signal::Kill),
            Err("signal.signals")
        );
        assert_eq!(
            p.check_signal(Uid::new(0), "sleep", Signal::Term),
            Err("signal.owners")
        );
        let n = |v| Nice::new(v).expect("valid");
        assert_eq!(p.check_renice(nobody, "x", n(5)), Ok(()));
        assert_eq!(p.check_renice(nobody, "x", n(4)), Err("renice.min_nice"));
    }

    #[test]
    fn a_syntax_error_names_its_line() {
        let e = Policy::parse("[signal]\nsignals = [\"TERM\"]\nowners = [nobody]\n")
            .expect_err("bad toml");
        assert!(e.0.starts_with("line 3:"), "{e}");
    }

    #[test]
    fn an_error_at_the_start_of_a_line_names_that_line() {
        let e =
            Policy::parse("[signal]\nowners = []\ncolour = \"red\"\n").expect_err("unknown key");
        assert!(e.0.starts_with("line 3:"), "{e}");
        assert_eq!(line_at("a\nb\nc", 4), 3);
        assert_eq!(line_at("a", 99), 1);
    }

    #[test]
    fn unknown_keys_and_signals_are_errors() {
        assert!(Policy::parse("[signal]\nowner = []\n").is_err());
        let e = Policy::parse("[signal]\nsignals = [\"SEGV\"]\n").expect_err("bad signal");
        assert!(e.0.contains("line 2"), "{e}");
    }

    #[test]
    fn negative_min_nice_needs_an_explicit_allowance() {
        assert!(Policy::parse("[renice]\nmin_nice = -5\n").is_err());
        let p = Policy::parse("[renice]\nmin_nice = -5\nallow_negative = true\n").expect("ok");
        assert_eq!(p.min_nice.get(), -5);
        assert!(Policy::parse("[renice]\nmin_nice = 40\n").is_err());
    }

    #[test]
    fn commands_never_run_as_root() {
        assert!(Policy::parse("[run]\nuser = \"root\"\n").is_err());
        assert!(Policy::parse("[run]\nuser = 0\n").is_err());
        let p = Policy::parse("[run]\nuser = \"nobody\"\n").expect("ok");
        assert_eq!(p.run.map(|r| r.uid.get()), Some(65534));
    }
}
