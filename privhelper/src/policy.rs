//! The allowlist policy (`policy.toml`): default deny, parsed once at start
//! and on SIGHUP. A parse error names the line; user names are resolved to
//! uids at load time so that a decision never consults the passwd database.

use std::collections::HashSet;
use std::fmt;
use std::io::Read;
use std::ops::RangeInclusive;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use nix::unistd::{Gid, Group, User};
use protocol::{Signal, MAX_BATCH};
use serde::Deserialize;

use crate::ids::{Nice, Uid};
pub use crate::rule::{Act, Builtin, Rule};

/// A set's members, sorted, as a TOML list.
fn sorted(set: &HashSet<String>) -> String {
    let mut v: Vec<&str> = set.iter().map(String::as_str).collect();
    v.sort_unstable();
    format!("{v:?}")
}

/// Why a policy could not be loaded.
#[derive(Debug)]
pub struct PolicyError(pub String);

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PolicyError {}

/// The file; a section left out allows nothing (`[run]`: no commands).
#[derive(Debug, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct RawPolicy {
    signal: RawSignal,
    renice: RawRenice,
    run: Option<RawRun>,
    /// monitoreo-reader's section, not the helper's.
    #[serde(rename = "read")]
    _read: Option<serde::de::IgnoredAny>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Owner {
    Name(String),
    Id(u32),
}

#[derive(Debug, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct RawSignal {
    owners: Vec<Owner>,
    names: Vec<String>,
    exes: Vec<String>,
    signals: Vec<String>,
    max_targets: Option<usize>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct RawRenice {
    owners: Vec<Owner>,
    names: Vec<String>,
    exes: Vec<String>,
    min_nice: Option<i32>,
    allow_negative: bool,
    max_targets: Option<usize>,
}

/// `[run]`; a key left out takes its value from `RawRun::default`.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawRun {
    user: Option<Owner>,
    uids: Option<String>,
    max_timeout_s: u64,
    max_jobs: usize,
    max_output_bytes: u64,
    cpu_s: u64,
    nofile: u64,
    nproc: u64,
    memory_max: u64,
    pids_max: Option<u64>,
    cpu_max: u64,
}

impl Default for RawRun {
    fn default() -> RawRun {
        RawRun {
            user: None,
            uids: None,
            max_timeout_s: 300,
            max_jobs: 8,
            max_output_bytes: 10 * 1024 * 1024,
            cpu_s: 300,
            nofile: 256,
            nproc: 256,
            memory_max: 1024 * 1024 * 1024,
            pids_max: None,
            cpu_max: 100,
        }
    }
}

/// systemd's DynamicUser range: a job uid range may not overlap it.
pub const DYNAMIC_USER_UIDS: RangeInclusive<u32> = 61184..=65519;

/// The most bytes of one rule `Info` shows (`TargetRule::shown`).
const SHOWN_MAX: usize = 1024;

/// The owner token that names the processes of the calling key's own
/// running jobs (every key's for a caller with `all_jobs`).
pub const JOBS_TOKEN: &str = "@jobs";

/// The owner token that names the processes of every key's running jobs.
pub const ALL_JOBS_TOKEN: &str = "@all_jobs";

/// Whose job, if anyone's, a target process belongs to: a job's
/// processes belong to the key that started it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobOf {
    /// Not a process of a running job (a job uid outside a running job —
    /// a uid's cleaner, a leftover — is no job either).
    None,
    /// A running job of the calling key.
    Caller,
    /// A running job of another key.
    Other,
}

/// Who may be acted on, for one kind of act.
#[derive(Debug, Clone, Default)]
pub struct TargetRule {
    pub owners: HashSet<Uid>,
    /// `owners` held `"@jobs"`: the calling key's running jobs.
    pub jobs: bool,
    /// `owners` held `"@all_jobs"`: every key's running jobs.
    pub all_jobs: bool,
    /// Empty = any process name.
    pub names: HashSet<String>,
    /// Empty = any executable; else the path `/proc/PID/exe` names, exact
    /// (`comm` is any 15 bytes a process chooses; its executable is not).
    pub exes: HashSet<String>,
    /// The rule as the file writes it, for `Info`.
    pub shown: Vec<String>,
    /// Targets one `Check` or `Act` may name (a plan's cap).
    pub max_targets: usize,
}

impl TargetRule {
    /// The owners as the policy names them: the uids, sorted, then the
    /// job tokens.
    fn owners_named(&self) -> Vec<String> {
        let mut v: Vec<String> = self.owners.iter().map(|u| u.get().to_string()).collect();
        v.sort();
        v.extend(self.jobs.then(|| JOBS_TOKEN.to_string()));
        v.extend(self.all_jobs.then(|| ALL_JOBS_TOKEN.to_string()));
        v
    }
}

/// Whose identity a job runs under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunAs {
    /// One uid/gid per running job, taken from this range (gid = uid).
    PerJob(RangeInclusive<u32>),
    /// One named user for every job: jobs are not isolated from each other.
    Shared { uid: Uid, gid: u32, name: String },
}

/// The run identity and the limits of a job.
#[derive(Debug, Clone)]
pub struct RunPolicy {
    pub run_as: RunAs,
    pub home: String,
    pub max_timeout_ms: u64,
    pub max_jobs: usize,
    pub max_output_bytes: u64,
    pub cpu_s: u64,
    pub nofile: u64,
    pub nproc: u64,
    /// Memory ceiling of a job, bytes (cgroup `memory.max`, else `RLIMIT_AS`).
    pub memory_max: u64,
    /// `pids.max` of a job's cgroup.
    pub pids_max: u64,
    /// `cpu.max` of a job's cgroup, in percent of one CPU.
    pub cpu_max_percent: u64,
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
    /// Things that load but deserve a second look (printed at load and by
    /// `--check`).
    pub warnings: Vec<String>,
}

/// What the loader must know about the host to validate a policy.
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// The gateway's uid: never a run user, never in a job range.
    pub gateway_uid: Option<u32>,
    /// Uids that have a passwd entry: never in a job range.
    pub passwd_uids: HashSet<u32>,
}

impl Context {
    /// The gateway uid and the uids of `/etc/passwd`.
    pub fn host(gateway_uid: Option<u32>) -> Context {
        let passwd_uids = std::fs::read_to_string("/etc/passwd")
            .map(|t| {
                t.lines()
                    .filter_map(|l| l.split(':').nth(2)?.parse().ok())
                    .collect()
            })
            .unwrap_or_default();
        Context {
            gateway_uid,
            passwd_uids,
        }
    }
}

impl Policy {
    /// Reads and validates the file at `path`, which must be trusted: owned
    /// by root (or by the helper's own user when it does not run as root)
    /// and writable by nobody else, as sudo treats sudoers.
    pub fn load(path: &Path, ctx: &Context) -> Result<Policy, PolicyError> {
        let at = |e: String| PolicyError(format!("{}: {e}", path.display()));
        let mut file = std::fs::File::open(path).map_err(|e| at(e.to_string()))?;
        let meta = file.metadata().map_err(|e| at(e.to_string()))?;
        check_trust(meta.uid(), meta.mode(), nix::unistd::geteuid().as_raw()).map_err(at)?;
        let mut text = String::new();
        file.read_to_string(&mut text)
            .map_err(|e| at(e.to_string()))?;
        Policy::parse(&text, ctx).map_err(|e| at(e.0))
    }

    /// Parses policy text.
    pub fn parse(text: &str, ctx: &Context) -> Result<Policy, PolicyError> {
        let raw: RawPolicy = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| line_at(text, s.start)).unwrap_or(0);
            PolicyError(format!("line {line}: {}", e.message()))
        })?;
        let mut p = Policy::default();
        if let Some(run) = raw.run {
            p.run = Some(resolve_run(text, run, ctx)?);
        }
        let per_job = p.job_range();
        p.signal = resolve_rule(
            text,
            &raw.signal.owners,
            raw.signal.names,
            raw.signal.exes,
            per_job.as_ref(),
            "signal",
            &mut p.warnings,
        )?;
        p.signal.max_targets = max_targets(raw.signal.max_targets, "signal", &mut p.signal)?;
        for name in raw.signal.signals {
            let sig: Signal = name
                .parse()
                .map_err(|e| PolicyError(format!("line {}: {e}", line_of(text, &name))))?;
            p.signals.insert(sig);
        }
        p.renice = resolve_rule(
            text,
            &raw.renice.owners,
            raw.renice.names,
            raw.renice.exes,
            per_job.as_ref(),
            "renice",
            &mut p.warnings,
        )?;
        p.renice.max_targets = max_targets(raw.renice.max_targets, "renice", &mut p.renice)?;
        let min = raw.renice.min_nice.unwrap_or(0);
        p.min_nice = Nice::new(min).map_err(|e| {
            PolicyError(format!("line {}: min_nice: {e}", line_of(text, "min_nice")))
        })?;
        if min < 0 && !raw.renice.allow_negative {
            return Err(PolicyError(format!(
                "line {}: min_nice = {min} raises priority; set allow_negative = true to allow it",
                line_of(text, "min_nice")
            )));
        }
        if let (Some(run), Some(gw)) = (&p.run, ctx.gateway_uid) {
            if let RunAs::Shared { .. } = run.run_as {
                p.warnings.push(format!(
                    "[run] user: jobs share one uid and are not isolated from each other; \
                     use uids = \"START-END\" (gateway uid {gw} is refused either way)"
                ));
            }
        }
        Ok(p)
    }

    /// The per-job uid range, if jobs get uids of their own.
    pub fn job_range(&self) -> Option<RangeInclusive<u32>> {
        match self.run.as_ref().map(|r| &r.run_as) {
            Some(RunAs::PerJob(r)) => Some(r.clone()),
            _ => None,
        }
    }

    /// The rule that forbids `sig`, if any.
    pub fn check_signal(&self, t: &Subject<'_>, sig: Signal) -> Result<(), Rule> {
        check_target(&self.signal, t, Act::Signal)?;
        if !self.signals.contains(&sig) {
            return Err(Rule::Signals);
        }
        Ok(())
    }

    /// The rule that forbids setting `nice`, if any.
    pub fn check_renice(&self, t: &Subject<'_>, nice: Nice) -> Result<(), Rule> {
        check_target(&self.renice, t, Act::Renice)?;
        if nice.get() < self.min_nice.get() {
            return Err(Rule::MinNice);
        }
        Ok(())
    }

    /// The value behind a rule, for the refusal's message: "min_nice is 0".
    pub fn describe(&self, rule: Rule) -> String {
        let section = |act| match act {
            Act::Signal => &self.signal,
            Act::Renice => &self.renice,
        };
        let value = match rule {
            Rule::Owners(act) => format!("[{}]", section(act).owners_named().join(", ")),
            Rule::Names(act) => sorted(&section(act).names),
            Rule::Exes(act) => sorted(&section(act).exes),
            Rule::Signals => format!("{:?}", self.signal_names()),
            Rule::MinNice => self.min_nice.get().to_string(),
            Rule::Run => return "the policy has no [run] section".into(),
            Rule::Builtin(b) => return b.detail().into(),
        };
        format!("{} is {value}", rule.name())
    }

    /// The signals allowed, by name, sorted.
    fn signal_names(&self) -> Vec<&'static str> {
        let mut v: Vec<&str> = self.signals.iter().map(|s| s.name()).collect();
        v.sort_unstable();
        v
    }

    /// One line for logs.
    pub fn summary(&self) -> String {
        format!(
            "signal owners [{}] signals {:?}; renice owners [{}] min_nice {}; run {}",
            self.signal.owners_named().join(","),
            self.signal_names(),
            self.renice.owners_named().join(","),
            self.min_nice.get(),
            self.run
                .as_ref()
                .map(|r| match &r.run_as {
                    RunAs::PerJob(range) => format!(
                        "as one uid per job from {}-{} (memory_max {} pids_max {} cpu_max {}%)",
                        range.start(),
                        range.end(),
                        r.memory_max,
                        r.pids_max,
                        r.cpu_max_percent
                    ),
                    RunAs::Shared { uid, name, .. } => format!(
                        "as shared user {name} (uid {}): jobs are not isolated from each other",
                        uid.get()
                    ),
                })
                .unwrap_or_else(|| "denied".into())
        )
    }
}

/// Refuses a policy file that anyone but root (or the helper's own user)
/// could have written: owner and mode come from `fstat` of the opened file.
pub fn check_trust(owner: u32, mode: u32, euid: u32) -> Result<(), String> {
    if owner != 0 && owner != euid {
        return Err(format!(
            "refusing an untrusted policy: owned by uid {owner}, must be owned by root"
        ));
    }
    if mode & 0o022 != 0 {
        return Err(format!(
            "refusing an untrusted policy: mode {:04o} is writable by group or others \
             (chmod go-w)",
            mode & 0o7777
        ));
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

/// What the policy judges of a target: its owner and name, whose job it
/// belongs to, and whether the caller may act on every key's jobs.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    pub owner: Uid,
    pub comm: &'a str,
    /// The path `/proc/PID/exe` names; empty when it cannot be read.
    pub exe: &'a str,
    pub job: JobOf,
    pub all_jobs: bool,
}

/// Another key's job is refused before the owners are looked at, unless
/// the caller may act on every job or the rule grants `@all_jobs`; a job
/// process matches `@jobs` (its own key's, or any for an `all_jobs`
/// caller) or `@all_jobs`, never a uid in `owners` (the loader keeps job
/// uids out of it).
fn check_target(rule: &TargetRule, t: &Subject<'_>, act: Act) -> Result<(), Rule> {
    let allowed = match t.job {
        JobOf::None => rule.owners.contains(&t.owner),
        JobOf::Caller => rule.jobs || rule.all_jobs,
        JobOf::Other if !(t.all_jobs || rule.all_jobs) => {
            return Err(Rule::Builtin(Builtin::OtherKeysJob))
        }
        JobOf::Other => rule.all_jobs || rule.jobs,
    };
    if !allowed {
        return Err(Rule::Owners(act));
    }
    if !rule.names.is_empty() && !rule.names.contains(t.comm) {
        return Err(Rule::Names(act));
    }
    if !rule.exes.is_empty() && !rule.exes.contains(t.exe) {
        return Err(Rule::Exes(act));
    }
    Ok(())
}

/// A section's `max_targets`: 1 to the frame's limit (the default), shown when set.
fn max_targets(
    n: Option<usize>,
    section: &str,
    rule: &mut TargetRule,
) -> Result<usize, PolicyError> {
    match n {
        None => Ok(MAX_BATCH),
        Some(n @ 1..=MAX_BATCH) => {
            rule.shown.push(format!("max_targets = {n}"));
            Ok(n)
        }
        Some(n) => Err(PolicyError(format!(
            "[{section}] max_targets must be between 1 and {MAX_BATCH}, got {n}"
        ))),
    }
}

/// The lowest uid a login user gets on Debian (`UID_MIN`); owners below it
/// (other than job uids) are system users and draw a warning.
const LOGIN_UID_MIN: u32 = 1000;

fn resolve_rule(
    text: &str,
    owners: &[Owner],
    names: Vec<String>,
    exes: Vec<String>,
    per_job: Option<&RangeInclusive<u32>>,
    section: &str,
    warnings: &mut Vec<String>,
) -> Result<TargetRule, PolicyError> {
    let quoted: Vec<String> = owners
        .iter()
        .map(|o| match o {
            Owner::Name(n) => format!("{n:?}"),
            Owner::Id(id) => id.to_string(),
        })
        .collect();
    let mut shown = vec![format!("owners = [{}]", quoted.join(", "))];
    if !names.is_empty() {
        shown.push(format!("names = {names:?}"));
    }
    if !exes.is_empty() {
        shown.push(format!("exes = {exes:?}"));
    }
    for s in &mut shown {
        // Info must stay far below the frame limit, whatever the lists.
        if s.len() > SHOWN_MAX {
            let cut = (0..=SHOWN_MAX).rev().find(|i| s.is_char_boundary(*i));
            s.truncate(cut.unwrap_or(0));
            s.push_str(" …");
        }
    }
    let mut rule = TargetRule {
        names: names.into_iter().collect(),
        exes: exes.into_iter().collect(),
        shown,
        ..TargetRule::default()
    };
    for o in owners {
        if let Some(token) = job_token(o) {
            if per_job.is_none() {
                return Err(PolicyError(format!(
                    "line {}: {token} needs per-job uids ([run] uids = \"START-END\")",
                    line_of(text, token)
                )));
            }
            match token {
                JOBS_TOKEN => rule.jobs = true,
                _ => rule.all_jobs = true,
            }
            continue;
        }
        let (uid, _, name, _) = resolve_user(text, o)?;
        if per_job.is_some_and(|r| r.contains(&uid.get())) {
            // A job uid by number would name every key's jobs, the uid's
            // cleaner and whatever a later job of that uid is.
            return Err(PolicyError(format!(
                "line {}: owner {name} is a job uid; name jobs with {JOBS_TOKEN} or {ALL_JOBS_TOKEN}",
                line_of(text, &name)
            )));
        }
        if uid.get() == 0 {
            warnings.push(format!(
                "[{section}] owners names root: every root process not protected by a \
                 built-in rule is a target"
            ));
        } else if uid.get() < LOGIN_UID_MIN {
            warnings.push(format!(
                "[{section}] owners names system user {name} (uid {}): every process of \
                 that user is a target",
                uid.get()
            ));
        }
        rule.owners.insert(uid);
    }
    Ok(rule)
}

/// `@jobs` or `@all_jobs`, if `o` is one of them.
fn job_token(o: &Owner) -> Option<&'static str> {
    match o {
        Owner::Name(n) if n == JOBS_TOKEN => Some(JOBS_TOKEN),
        Owner::Name(n) if n == ALL_JOBS_TOKEN => Some(ALL_JOBS_TOKEN),
        _ => None,
    }
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

/// Parses `"START-END"` and checks that no uid in it is root, the gateway,
/// `nobody`, a passwd user or systemd's DynamicUser range.
fn parse_uid_range(
    text: &str,
    spec: &str,
    ctx: &Context,
) -> Result<RangeInclusive<u32>, PolicyError> {
    let line = line_of(text, "uids");
    let err = |m: String| PolicyError(format!("line {line}: uids = {spec:?}: {m}"));
    let (a, b) = spec
        .split_once('-')
        .ok_or_else(|| err("expected \"START-END\"".into()))?;
    let uid = |s: &str| {
        s.trim()
            .parse::<u32>()
            .map_err(|_| err(format!("{s:?} is not a uid")))
    };
    let (first, last) = (uid(a)?, uid(b)?);
    if first > last {
        return Err(err("START is above END".into()));
    }
    if last - first >= 65536 {
        return Err(err("more than 65536 uids".into()));
    }
    let range = first..=last;
    if range.contains(&0) {
        return Err(err("contains root (uid 0)".into()));
    }
    if let Some(gw) = ctx.gateway_uid {
        if range.contains(&gw) {
            return Err(err(format!("contains the gateway's uid {gw}")));
        }
    }
    for special in [65534, 65535, u32::MAX] {
        if range.contains(&special) {
            return Err(err(format!("contains the special uid {special}")));
        }
    }
    if first <= *DYNAMIC_USER_UIDS.end() && *DYNAMIC_USER_UIDS.start() <= last {
        return Err(err(format!(
            "overlaps systemd's DynamicUser range {}-{}",
            DYNAMIC_USER_UIDS.start(),
            DYNAMIC_USER_UIDS.end()
        )));
    }
    let mut taken: Vec<u32> = ctx
        .passwd_uids
        .iter()
        .copied()
        .filter(|u| range.contains(u))
        .collect();
    taken.sort_unstable();
    if let Some(u) = taken.first() {
        return Err(err(format!(
            "uid {u} has a passwd entry; job uids must belong to nobody else"
        )));
    }
    Ok(range)
}

fn resolve_run(text: &str, run: RawRun, ctx: &Context) -> Result<RunPolicy, PolicyError> {
    let (run_as, home) = match (&run.user, &run.uids) {
        (Some(_), Some(_)) | (None, None) => {
            return Err(PolicyError(format!(
                "line {}: [run] needs exactly one of uids = \"START-END\" (one identity per \
                 job) or user = NAME (shared, jobs not isolated)",
                line_of(text, "[run]")
            )))
        }
        (None, Some(spec)) => (RunAs::PerJob(parse_uid_range(text, spec, ctx)?), "/".into()),
        (Some(user), None) => {
            let (uid, gid, name, home) = resolve_user(text, user)?;
            if uid.get() == 0 || gid == 0 {
                return Err(PolicyError(format!(
                    "line {}: commands may not run as root",
                    line_of(text, "user")
                )));
            }
            if Some(uid.get()) == ctx.gateway_uid {
                return Err(PolicyError(format!(
                    "line {}: the run user {name} is the gateway's user (uid {}): a job could \
                     talk to the helper as the gateway and read every key and output",
                    line_of(text, "user"),
                    uid.get()
                )));
            }
            (RunAs::Shared { uid, gid, name }, home)
        }
    };
    if run.max_timeout_s == 0 || run.max_jobs == 0 {
        return Err(PolicyError(format!(
            "line {}: max_timeout_s and max_jobs must be positive",
            line_of(text, "[run]")
        )));
    }
    if run.memory_max < 16 * 1024 * 1024 || run.cpu_max == 0 {
        return Err(PolicyError(format!(
            "line {}: memory_max must be at least 16 MiB and cpu_max positive",
            line_of(text, "[run]")
        )));
    }
    Ok(RunPolicy {
        run_as,
        home,
        max_timeout_ms: run.max_timeout_s.saturating_mul(1000),
        max_jobs: run.max_jobs,
        max_output_bytes: run.max_output_bytes,
        cpu_s: run.cpu_s,
        nofile: run.nofile,
        nproc: run.nproc,
        memory_max: run.memory_max,
        pids_max: run.pids_max.unwrap_or(run.nproc),
        cpu_max_percent: run.cpu_max,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Policy {
        fn parse_test(text: &str) -> Result<Policy, PolicyError> {
            Policy::parse(text, &ctx())
        }
    }

    fn ctx() -> Context {
        Context {
            gateway_uid: Some(990),
            passwd_uids: [0, 1, 65534, 990, 1000, 40_050].into_iter().collect(),
        }
    }

    /// A process that belongs to no job.
    fn who(owner: Uid, comm: &str) -> Subject<'_> {
        Subject {
            owner,
            comm,
            exe: "/usr/bin/sleep",
            job: JobOf::None,
            all_jobs: false,
        }
    }

    #[test]
    fn an_empty_policy_denies_everything() {
        let p = Policy::parse_test("").expect("parses");
        let root = Uid::new(0);
        assert_eq!(
            p.check_signal(&who(root, "x"), Signal::Term),
            Err(Rule::Owners(Act::Signal))
        );
        assert_eq!(
            p.check_renice(&who(root, "x"), Nice::new(5).expect("valid")),
            Err(Rule::Owners(Act::Renice))
        );
        assert!(p.run.is_none());
    }

    #[test]
    fn the_readers_section_is_accepted_and_allows_the_helper_nothing() {
        let p =
            Policy::parse_test("[read]\nowners = [\"*\"]\nfields = [\"exe\"]\n").expect("parses");
        assert_eq!(
            p.check_signal(&who(Uid::new(0), "x"), Signal::Term),
            Err(Rule::Owners(Act::Signal))
        );
    }

    #[test]
    fn allowlists_are_applied_in_order() {
        let p = Policy::parse_test(
            "[signal]\nowners = [65534]\nnames = [\"sleep\"]\nsignals = [\"TERM\"]\n\
             [renice]\nowners = [65534]\nmin_nice = 5\n",
        )
        .expect("parses");
        let nobody = Uid::new(65534);
        assert_eq!(p.check_signal(&who(nobody, "sleep"), Signal::Term), Ok(()));
        assert_eq!(
            p.check_signal(&who(nobody, "bash"), Signal::Term),
            Err(Rule::Names(Act::Signal))
        );
        assert_eq!(
            p.check_signal(&who(nobody, "sleep"), Signal::Kill),
            Err(Rule::Signals)
        );
        assert_eq!(
            p.check_signal(&who(Uid::new(0), "sleep"), Signal::Term),
            Err(Rule::Owners(Act::Signal))
        );
        let n = |v| Nice::new(v).expect("valid");
        assert_eq!(p.check_renice(&who(nobody, "x"), n(5)), Ok(()));
        assert_eq!(p.check_renice(&who(nobody, "x"), n(4)), Err(Rule::MinNice));
    }

    #[test]
    fn exes_name_the_executable_exactly_whatever_the_name() {
        let p = Policy::parse_test(
            "[signal]\nowners = [65534]\nexes = [\"/usr/bin/sleep\"]\nsignals = [\"TERM\"]\n",
        )
        .expect("parses");
        let nobody = Uid::new(65534);
        assert_eq!(p.check_signal(&who(nobody, "sleep"), Signal::Term), Ok(()));
        let swapped = Subject {
            exe: "/usr/bin/sleep (deleted)",
            ..who(nobody, "sleep")
        };
        assert_eq!(
            p.check_signal(&swapped, Signal::Term),
            Err(Rule::Exes(Act::Signal))
        );
        assert_eq!(
            p.describe(Rule::Exes(Act::Signal)),
            "signal.exes is [\"/usr/bin/sleep\"]"
        );
    }

    #[test]
    fn a_syntax_error_names_its_line() {
        let e = Policy::parse_test("[signal]\nsignals = [\"TERM\"]\nowners = [nobody]\n")
            .expect_err("bad toml");
        assert!(e.0.starts_with("line 3:"), "{e}");
    }

    #[test]
    fn an_error_at_the_start_of_a_line_names_that_line() {
        let e = Policy::parse_test("[signal]\nowners = []\ncolour = \"red\"\n")
            .expect_err("unknown key");
        assert!(e.0.starts_with("line 3:"), "{e}");
        assert_eq!(line_at("a\nb\nc", 4), 3);
        assert_eq!(line_at("a", 99), 1);
    }

    #[test]
    fn unknown_keys_and_signals_are_errors() {
        assert!(Policy::parse_test("[signal]\nowner = []\n").is_err());
        let e = Policy::parse_test("[signal]\nsignals = [\"SEGV\"]\n").expect_err("bad signal");
        assert!(e.0.contains("line 2"), "{e}");
    }

    #[test]
    fn negative_min_nice_needs_an_explicit_allowance() {
        assert!(Policy::parse_test("[renice]\nmin_nice = -5\n").is_err());
        let p = Policy::parse_test("[renice]\nmin_nice = -5\nallow_negative = true\n").expect("ok");
        assert_eq!(p.min_nice.get(), -5);
        assert!(Policy::parse_test("[renice]\nmin_nice = 40\n").is_err());
    }

    #[test]
    fn commands_never_run_as_root() {
        assert!(Policy::parse_test("[run]\nuser = \"root\"\n").is_err());
        assert!(Policy::parse_test("[run]\nuser = 0\n").is_err());
        let p = Policy::parse_test("[run]\nuser = \"nobody\"\n").expect("ok");
        assert!(matches!(
            p.run.map(|r| r.run_as),
            Some(RunAs::Shared { uid, .. }) if uid.get() == 65534
        ));
    }

    #[test]
    fn a_job_uid_range_never_holds_root_the_gateway_or_a_known_user() {
        let bad = [
            ("0-10", "root"),
            ("980-999", "gateway"),
            ("40000-40100", "passwd entry"),
            ("61000-61200", "DynamicUser"),
            ("65530-65540", "special"),
            ("5-2", "above END"),
            ("abc", "START-END"),
            ("1-70000", "65536"),
        ];
        for (spec, why) in bad {
            let e = Policy::parse_test(&format!("[run]\nuids = \"{spec}\"\n")).expect_err(spec);
            assert!(e.0.contains(why), "{spec}: {e}");
            assert!(e.0.starts_with("line 2:"), "{e}");
        }
        let p = Policy::parse_test("[run]\nuids = \"60600-60699\"\n").expect("ok");
        let run = p.run.expect("run");
        assert_eq!(run.run_as, RunAs::PerJob(60600..=60699));
        assert_eq!(run.home, "/");
    }

    #[test]
    fn the_run_user_may_not_be_the_gateway_user_and_needs_one_form() {
        let e = Policy::parse_test("[run]\nuser = 990\n").expect_err("gateway");
        assert!(e.0.contains("gateway"), "{e}");
        assert!(Policy::parse_test("[run]\nmax_jobs = 2\n").is_err());
        assert!(Policy::parse_test("[run]\nuser = \"nobody\"\nuids = \"60600-60601\"\n").is_err());
        let p = Policy::parse_test("[run]\nuser = \"nobody\"\n").expect("shared");
        assert!(
            p.warnings.iter().any(|w| w.contains("not isolated")),
            "{:?}",
            p.warnings
        );
    }

    #[test]
    fn each_rule_is_shown_as_the_file_writes_it() {
        let p = Policy::parse_test(
            "[signal]\nowners = [\"root\", 1000, \"@jobs\"]\nnames = [\"sleep\"]\n[renice]\nowners = []\n[run]\nuids = \"60600-60609\"\n",
        )
        .expect("ok");
        assert_eq!(
            p.signal.shown,
            [
                "owners = [\"root\", 1000, \"@jobs\"]",
                "names = [\"sleep\"]"
            ]
        );
        assert_eq!(p.renice.shown, ["owners = []"]);
        let none = Policy::parse_test("").expect("ok");
        // max_targets: shown when set, 1 to a frame's limit, else refused.
        let capped = Policy::parse_test("[signal]\nowners = []\nmax_targets = 5\n").unwrap();
        assert_eq!(capped.signal.max_targets, 5);
        assert_eq!(capped.signal.shown, ["owners = []", "max_targets = 5"]);
        assert_eq!(capped.renice.max_targets, MAX_BATCH);
        for bad in ["0", "257"] {
            let e = Policy::parse_test(&format!("[renice]\nmax_targets = {bad}\n")).unwrap_err();
            assert!(
                e.0.contains(&format!(
                    "[renice] max_targets must be between 1 and 256, got {bad}"
                )),
                "{e:?}"
            );
        }
        // An absent section is its default, and is shown as it takes effect.
        assert_eq!(none.signal.shown, ["owners = []"]);
        assert_eq!(none.renice.shown, ["owners = []"]);
        let many: Vec<String> = (0..2000).map(|i| format!("{}", 1000 + i)).collect();
        let text = format!("[signal]\nowners = [{}]\n", many.join(", "));
        let long = Policy::parse_test(&text).expect("ok");
        assert!(
            long.signal.shown[0].len() <= SHOWN_MAX + 4,
            "{}",
            long.signal.shown[0].len()
        );
        assert!(long.signal.shown[0].ends_with(" …"));
    }

    #[test]
    fn jobs_token_names_the_callers_running_jobs_only() {
        let p = Policy::parse_test(
            "[signal]\nowners = [\"@jobs\"]\nsignals = [\"TERM\"]\n[run]\nuids = \"60600-60609\"\n",
        )
        .expect("ok");
        let job = |job, all_jobs| Subject {
            owner: Uid::new(60605),
            comm: "sh",
            exe: "/bin/sh",
            job,
            all_jobs,
        };
        assert_eq!(
            p.check_signal(&job(JobOf::Caller, false), Signal::Term),
            Ok(())
        );
        // Another key's job: refused by name, whatever the owners say.
        assert_eq!(
            p.check_signal(&job(JobOf::Other, false), Signal::Term),
            Err(Rule::Builtin(Builtin::OtherKeysJob))
        );
        // A key that may act on every job (admin) gets @jobs for all.
        assert_eq!(
            p.check_signal(&job(JobOf::Other, true), Signal::Term),
            Ok(())
        );
        // A job uid with no running job behind it (a uid's cleaner, a
        // leftover) is no job at all.
        assert_eq!(
            p.check_signal(&job(JobOf::None, true), Signal::Term),
            Err(Rule::Owners(Act::Signal))
        );
        assert_eq!(
            p.check_signal(&who(Uid::new(65534), "sh"), Signal::Term),
            Err(Rule::Owners(Act::Signal))
        );
        let e = Policy::parse_test("[signal]\nowners = [\"@jobs\"]\n[run]\nuser = \"nobody\"\n")
            .expect_err("needs range");
        assert!(e.0.contains("@jobs"), "{e}");
    }

    #[test]
    fn all_jobs_grants_every_keys_jobs_and_job_uids_are_not_owners() {
        let p = Policy::parse_test(
            "[signal]\nowners = [\"@all_jobs\"]\nsignals = [\"TERM\"]\n[run]\nuids = \"60600-60609\"\n",
        )
        .expect("ok");
        let other = Subject {
            owner: Uid::new(60601),
            comm: "sh",
            exe: "/bin/sh",
            job: JobOf::Other,
            all_jobs: false,
        };
        assert_eq!(p.check_signal(&other, Signal::Term), Ok(()));
        assert!(p.describe(Rule::Owners(Act::Signal)).contains("@all_jobs"));
        let e = Policy::parse_test("[signal]\nowners = [60603]\n[run]\nuids = \"60600-60609\"\n")
            .expect_err("a job uid by number");
        assert!(e.0.contains("job uid"), "{e}");
    }

    #[test]
    fn owners_naming_root_or_system_users_are_warned_about() {
        let p = Policy::parse_test("[signal]\nowners = [0, 1, 1000]\n").expect("ok");
        assert_eq!(p.warnings.len(), 2, "{:?}", p.warnings);
        assert!(p.warnings[0].contains("root"));
    }

    #[test]
    fn refusals_name_the_rule_and_its_value() {
        let p = Policy::parse_test("[renice]\nowners = [1000]\nmin_nice = 5\n").expect("ok");
        assert_eq!(p.describe(Rule::MinNice), "renice.min_nice is 5");
        assert_eq!(
            p.describe(Rule::Owners(Act::Renice)),
            "renice.owners is [1000]"
        );
    }

    #[test]
    fn an_untrusted_policy_file_is_refused() {
        assert!(check_trust(0, 0o100644, 0).is_ok());
        assert!(check_trust(0, 0o100600, 0).is_ok());
        let e = check_trust(1000, 0o100644, 0).expect_err("owner");
        assert!(e.contains("uid 1000"), "{e}");
        let e = check_trust(0, 0o100666, 0).expect_err("world-writable");
        assert!(e.contains("0666"), "{e}");
        assert!(check_trust(0, 0o100664, 0).is_err());
        // A helper run as a plain user (development) trusts its own files.
        assert!(check_trust(1000, 0o100644, 1000).is_ok());
    }
}
