//! The allowlist policy (`policy.toml`): default deny, parsed once at start
//! and on SIGHUP. An error names the line of the key or value at fault
//! (toml's spans); user names are resolved to uids at load time so that a
//! decision never consults the passwd database.

use std::collections::HashSet;
use std::ops::RangeInclusive;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use protocol::{Signal, MAX_BATCH};
use serde::Deserialize;
use toml::Spanned;

use crate::ids::{Nice, Uid};
pub use crate::rule::{Act, Builtin, Rule};

/// systemd's DynamicUser range: a job uid range may not overlap it.
pub const DYNAMIC_USER_UIDS: RangeInclusive<u32> = 61184..=65519;

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
    /// The rule as the file writes it, one `key = value` each: the one
    /// rendering `Info`, the log's summary and a refusal's detail share.
    pub shown: Vec<String>,
    /// Targets one `Check` or `Act` may name (a plan's cap).
    pub max_targets: usize,
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
///
/// Users come from `/etc/passwd` alone, never through NSS: an NSS module
/// (sssd, LDAP, systemd's userdb) is a library loaded into root's process
/// and a conversation with another daemon, for names the policy can as well
/// give by number. It is also the one source the job-range check can list,
/// so the names a policy may use and the uids a job range must avoid come
/// from the same file, read again at every load and reload.
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// The gateway's uid: never a run user, never in a job range.
    pub gateway_uid: Option<u32>,
    /// The well-formed accounts of `/etc/passwd`: the names a policy may
    /// use.
    pub accounts: Vec<Account>,
    /// Every uid `/etc/passwd` lists, a line too odd to name an account
    /// included: never in a job range.
    pub passwd_uids: Vec<u32>,
}

/// One line of `/etc/passwd`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: String,
}

impl Context {
    /// The gateway uid and the accounts of `/etc/passwd`. The file is
    /// read as bytes: a user may put any byte in their own full name
    /// (`chfn`), and one odd line must not fail the whole file.
    pub fn host(gateway_uid: Option<u32>) -> Result<Context, String> {
        let passwd =
            std::fs::read(PASSWD).map_err(|e| format!("{PASSWD}: {e}; users cannot be checked"))?;
        Ok(Context::of_passwd(gateway_uid, &passwd))
    }

    fn of_passwd(gateway_uid: Option<u32>, passwd: &[u8]) -> Context {
        let lines = || passwd.split(|&b| b == b'\n');
        let uid = |line: &[u8]| {
            let field = line.split(|&b| b == b':').nth(2)?;
            std::str::from_utf8(field).ok()?.parse::<u32>().ok()
        };
        Context {
            gateway_uid,
            accounts: lines().filter_map(account).collect(),
            passwd_uids: lines().filter_map(uid).collect(),
        }
    }

    /// The account a policy names by name or number.
    fn account(&self, owner: &Owner) -> Option<&Account> {
        self.accounts.iter().find(|a| match owner {
            Owner::Name(n) => a.name == *n,
            Owner::Id(id) => a.uid == *id,
        })
    }
}

const PASSWD: &str = "/etc/passwd";

/// The account of a well-formed passwd line; another (a comment, a NIS
/// `+`/`-` line, a bad number, a line that is not UTF-8) names none.
fn account(line: &[u8]) -> Option<Account> {
    let line = std::str::from_utf8(line).ok()?;
    let f: Vec<&str> = line.split(':').collect();
    let valid = f.len() == 7 && !f[0].is_empty() && !f[0].starts_with(['+', '-', '#']);
    valid.then_some(())?;
    Some(Account {
        name: f[0].to_string(),
        uid: f[2].parse().ok()?,
        gid: f[3].parse().ok()?,
        home: f[5].to_string(),
    })
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

impl Policy {
    /// Reads and validates the file at `path`, which must be trusted: owned
    /// by root (or by the helper's own user when it does not run as root)
    /// and writable by nobody else, as sudo treats sudoers. The error is
    /// the one line to show: `<file>: line N: what is wrong`.
    pub fn load(path: &Path, ctx: &Context) -> Result<Policy, String> {
        let at = |e: String| format!("{}: {e}", path.display());
        let file = std::fs::File::open(path).map_err(|e| at(e.to_string()))?;
        let meta = file.metadata().map_err(|e| at(e.to_string()))?;
        check_trust(meta.uid(), meta.mode(), nix::unistd::geteuid().as_raw()).map_err(at)?;
        let text = std::io::read_to_string(&file).map_err(|e| at(e.to_string()))?;
        Policy::parse(&text, ctx).map_err(at)
    }

    /// Parses policy text; an error is `line N: what is wrong`.
    pub fn parse(text: &str, ctx: &Context) -> Result<Policy, String> {
        let raw: RawPolicy = toml::from_str(text).map_err(|e| {
            let line = e.span().map_or(0, |s| line_at(text, s.start));
            format!("line {line}: {}", e.message())
        })?;
        // `[run]`'s own checks name its header: a table's span is lost when
        // it is written with dotted keys (`run.user = …`), so it is found.
        let run_at = text.find("[run]").or_else(|| text.find("run"));
        resolve(raw, run_at.unwrap_or(0), ctx)
            .map_err(|(at, e)| format!("line {}: {e}", line_at(text, at)))
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

    /// The value behind a rule, for the refusal's message: "min_nice is 0",
    /// `signal.owners is ["alice", "@jobs"]` (as the file writes it).
    pub fn describe(&self, rule: Rule) -> String {
        let value = match rule {
            Rule::Owners(act) | Rule::Names(act) | Rule::Exes(act) => {
                let shown = match act {
                    Act::Signal => &self.signal.shown,
                    Act::Renice => &self.renice.shown,
                };
                // The rule's name is `section.key`; its line `key = value`.
                let key = rule.name().split_once('.').map_or("", |(_, k)| k);
                let line = shown
                    .iter()
                    .find_map(|s| s.strip_prefix(key)?.strip_prefix(" = "));
                line.unwrap_or("[]").to_string()
            }
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

    /// One line for logs and `--check`, each rule as the file writes it.
    pub fn summary(&self) -> String {
        let run = match self.run.as_ref().map(|r| (r, &r.run_as)) {
            None => "denied".to_string(),
            Some((r, RunAs::PerJob(uids))) => {
                let (memory, pids, cpu) = (r.memory_max, r.pids_max, r.cpu_max_percent);
                let (first, last) = (uids.start(), uids.end());
                format!(
                    "as one uid per job from {first}-{last} \
                     (memory_max {memory} pids_max {pids} cpu_max {cpu}%)"
                )
            }
            Some((_, RunAs::Shared { uid, name, .. })) => {
                let uid = uid.get();
                format!("as shared user {name} (uid {uid}): jobs are not isolated from each other")
            }
        };
        format!(
            "signal {}, signals = {:?}; renice {}, min_nice = {}; run {run}",
            self.signal.shown.join(", "),
            self.signal_names(),
            self.renice.shown.join(", "),
            self.min_nice.get(),
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

/// The file; a section left out allows nothing (`[run]`: no commands).
/// Values a check may refuse are `Spanned`, so the error names their line.
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
    owners: Vec<Spanned<Owner>>,
    names: Vec<String>,
    exes: Vec<String>,
    signals: Vec<Spanned<String>>,
    max_targets: Option<Spanned<usize>>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct RawRenice {
    owners: Vec<Spanned<Owner>>,
    names: Vec<String>,
    exes: Vec<String>,
    min_nice: Option<Spanned<i32>>,
    allow_negative: bool,
    max_targets: Option<Spanned<usize>>,
}

/// `[run]`; a key left out takes the default `resolve_run` gives it.
#[derive(Debug, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
struct RawRun {
    user: Option<Spanned<Owner>>,
    uids: Option<Spanned<String>>,
    max_timeout_s: Option<u64>,
    max_jobs: Option<usize>,
    max_output_bytes: Option<u64>,
    cpu_s: Option<u64>,
    nofile: Option<u64>,
    nproc: Option<u64>,
    memory_max: Option<u64>,
    pids_max: Option<u64>,
    cpu_max: Option<u64>,
}

/// A load error: the byte offset in the file it is about, and what is wrong.
type Fail = (usize, String);

/// The error about the value at byte `at`.
fn fail<T>(at: usize, what: impl Into<String>) -> Result<T, Fail> {
    Err((at, what.into()))
}

/// The most bytes of one rule `Info` shows (`TargetRule::shown`).
const SHOWN_MAX: usize = 1024;

/// The lowest uid a login user gets on Debian (`UID_MIN`); owners below it
/// (other than job uids) are system users and draw a warning.
const LOGIN_UID_MIN: u32 = 1000;

/// Line (1-based) holding byte `offset`: newlines before it, plus one. (A
/// count of `lines()` is one short when the offset starts a line.)
fn line_at(text: &str, offset: usize) -> usize {
    text.bytes().take(offset).filter(|&b| b == b'\n').count() + 1
}

/// Validates `[run]` first: the job tokens and job uids in `owners` depend
/// on its range.
fn resolve(raw: RawPolicy, run_at: usize, ctx: &Context) -> Result<Policy, Fail> {
    let mut p = Policy {
        run: raw.run.map(|r| resolve_run(r, run_at, ctx)).transpose()?,
        ..Policy::default()
    };
    let (s, r) = (raw.signal, raw.renice);
    p.signal = resolve_rule(
        &mut p,
        ctx,
        "signal",
        s.owners,
        s.names,
        s.exes,
        s.max_targets,
    )?;
    for name in s.signals {
        let at = name.span().start;
        p.signals
            .insert(name.get_ref().parse().map_err(|e| (at, e))?);
    }
    p.renice = resolve_rule(
        &mut p,
        ctx,
        "renice",
        r.owners,
        r.names,
        r.exes,
        r.max_targets,
    )?;
    if let Some(min) = r.min_nice {
        let (at, min) = (min.span().start, min.into_inner());
        p.min_nice = Nice::new(min).map_err(|e| (at, format!("min_nice: {e}")))?;
        if min < 0 && !r.allow_negative {
            return fail(
                at,
                format!("min_nice = {min} raises priority; set allow_negative = true to allow it"),
            );
        }
    }
    if let (Some(RunAs::Shared { .. }), Some(gw)) =
        (p.run.as_ref().map(|r| &r.run_as), ctx.gateway_uid)
    {
        p.warnings.push(format!(
            "[run] user: jobs share one uid and are not isolated from each other; \
             use uids = \"START-END\" (gateway uid {gw} is refused either way)"
        ));
    }
    Ok(p)
}

/// One `[signal]` or `[renice]` section, after `p`'s `[run]`: owners
/// resolved to uids (job tokens need per-job uids; a job uid by number is
/// refused), warnings for root and system users, the rule as written.
fn resolve_rule(
    p: &mut Policy,
    ctx: &Context,
    section: &str,
    owners: Vec<Spanned<Owner>>,
    names: Vec<String>,
    exes: Vec<String>,
    max_targets: Option<Spanned<usize>>,
) -> Result<TargetRule, Fail> {
    let written: Vec<String> = owners
        .iter()
        .map(|o| match o.get_ref() {
            Owner::Name(n) => format!("{n:?}"),
            Owner::Id(id) => id.to_string(),
        })
        .collect();
    let mut shown = vec![format!("owners = [{}]", written.join(", "))];
    for (key, list) in [("names", &names), ("exes", &exes)] {
        if !list.is_empty() {
            shown.push(format!("{key} = {list:?}"));
        }
    }
    let max_targets = match max_targets.map(|n| (n.span().start, n.into_inner())) {
        None => MAX_BATCH,
        Some((_, n @ 1..=MAX_BATCH)) => {
            shown.push(format!("max_targets = {n}"));
            n
        }
        Some((at, n)) => {
            return fail(
                at,
                format!("[{section}] max_targets must be between 1 and {MAX_BATCH}, got {n}"),
            );
        }
    };
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
        max_targets,
        ..TargetRule::default()
    };
    let per_job = p.job_range();
    for owner in &owners {
        let at = owner.span().start;
        if let Owner::Name(t) = owner.get_ref() {
            if t == JOBS_TOKEN || t == ALL_JOBS_TOKEN {
                if per_job.is_none() {
                    return fail(
                        at,
                        format!("{t} needs per-job uids ([run] uids = \"START-END\")"),
                    );
                }
                rule.jobs |= t == JOBS_TOKEN;
                rule.all_jobs |= t == ALL_JOBS_TOKEN;
                continue;
            }
        }
        let (uid, _, name, _) = resolve_user(owner, ctx)?;
        if per_job.as_ref().is_some_and(|r| r.contains(&uid.get())) {
            // A job uid by number would name every key's jobs, the uid's
            // cleaner and whatever a later job of that uid is.
            return fail(
                at,
                format!(
                    "owner {name} is a job uid; name jobs with {JOBS_TOKEN} or {ALL_JOBS_TOKEN}"
                ),
            );
        }
        if uid.get() == 0 {
            p.warnings.push(format!(
                "[{section}] owners names root: every root process not protected by a \
                 built-in rule is a target"
            ));
        } else if uid.get() < LOGIN_UID_MIN {
            p.warnings.push(format!(
                "[{section}] owners names system user {name} (uid {}): every process of \
                 that user is a target",
                uid.get()
            ));
        }
        rule.owners.insert(uid);
    }
    Ok(rule)
}

/// (uid, primary gid, name, home) of a user name or number; a number with
/// no passwd entry is its own gid, named by its number, at home in `/`.
fn resolve_user(owner: &Spanned<Owner>, ctx: &Context) -> Result<(Uid, u32, String, String), Fail> {
    let at = owner.span().start;
    match (ctx.account(owner.get_ref()), owner.get_ref()) {
        (Some(a), _) => Ok((Uid::new(a.uid), a.gid, a.name.clone(), a.home.clone())),
        (None, Owner::Id(id)) => Ok((Uid::new(*id), *id, id.to_string(), "/".into())),
        (None, Owner::Name(n)) => fail(
            at,
            format!("no such user {n:?} in {PASSWD} (name a user of another source by uid)"),
        ),
    }
}

fn parse_uid_range(spec: &Spanned<String>, ctx: &Context) -> Result<RangeInclusive<u32>, Fail> {
    let (at, spec) = (spec.span().start, spec.get_ref());
    let err = |m: String| (at, format!("uids = {spec:?}: {m}"));
    let (a, b) = spec
        .split_once('-')
        .ok_or_else(|| err("expected \"START-END\"".into()))?;
    let uid = |s: &str| {
        s.trim()
            .parse::<u32>()
            .map_err(|_| err(format!("{s:?} is not a uid")))
    };
    let range = uid(a)?..=uid(b)?;
    let (first, last) = (*range.start(), *range.end());
    let dynamic = &DYNAMIC_USER_UIDS;
    let gateway = ctx.gateway_uid.filter(|gw| range.contains(gw));
    let special = [65534, 65535, u32::MAX]
        .into_iter()
        .find(|u| range.contains(u));
    let taken = ctx.passwd_uids.iter().filter(|u| range.contains(u)).min();
    let why = if first > last {
        "START is above END".into()
    } else if last - first >= 65536 {
        "more than 65536 uids".into()
    } else if range.contains(&0) {
        "contains root (uid 0)".into()
    } else if let Some(gw) = gateway {
        format!("contains the gateway's uid {gw}")
    } else if let Some(special) = special {
        format!("contains the special uid {special}")
    } else if first <= *dynamic.end() && *dynamic.start() <= last {
        let (start, end) = (dynamic.start(), dynamic.end());
        format!("overlaps systemd's DynamicUser range {start}-{end}")
    } else if let Some(u) = taken {
        format!("uid {u} has a passwd entry; job uids must belong to nobody else")
    } else {
        return Ok(range);
    };
    Err(err(why))
}

/// `[run]`, whose header is at byte `at`: exactly one identity form, never
/// root or the gateway's user, the defaults, and limits that let a job run.
fn resolve_run(run: RawRun, at: usize, ctx: &Context) -> Result<RunPolicy, Fail> {
    let (run_as, home) = match (&run.user, &run.uids) {
        (None, Some(spec)) => (RunAs::PerJob(parse_uid_range(spec, ctx)?), "/".into()),
        (Some(user), None) => {
            let (uid, gid, name, home) = resolve_user(user, ctx)?;
            let at = user.span().start;
            if uid.get() == 0 || gid == 0 {
                return fail(at, "commands may not run as root");
            }
            if Some(uid.get()) == ctx.gateway_uid {
                return fail(
                    at,
                    format!(
                        "the run user {name} is the gateway's user (uid {}): a job could \
                     talk to the helper as the gateway and read every key and output",
                        uid.get()
                    ),
                );
            }
            (RunAs::Shared { uid, gid, name }, home)
        }
        _ => {
            return fail(
                at,
                "[run] needs exactly one of uids = \"START-END\" (one identity per \
                 job) or user = NAME (shared, jobs not isolated)",
            );
        }
    };
    let nproc = run.nproc.unwrap_or(256);
    let r = RunPolicy {
        run_as,
        home,
        max_timeout_ms: run.max_timeout_s.unwrap_or(300).saturating_mul(1000),
        max_jobs: run.max_jobs.unwrap_or(8),
        max_output_bytes: run.max_output_bytes.unwrap_or(10 * 1024 * 1024),
        cpu_s: run.cpu_s.unwrap_or(300),
        nofile: run.nofile.unwrap_or(256),
        nproc,
        memory_max: run.memory_max.unwrap_or(1024 * 1024 * 1024),
        pids_max: run.pids_max.unwrap_or(nproc),
        cpu_max_percent: run.cpu_max.unwrap_or(100),
    };
    if r.max_timeout_ms == 0 || r.max_jobs == 0 {
        return fail(at, "max_timeout_s and max_jobs must be positive");
    }
    if r.memory_max < 16 * 1024 * 1024 || r.cpu_max_percent == 0 {
        return fail(
            at,
            "memory_max must be at least 16 MiB and cpu_max positive",
        );
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Policy {
        fn parse_test(text: &str) -> Result<Policy, String> {
            Policy::parse(text, &ctx())
        }
    }

    /// A host of its own, whatever the machine's passwd holds.
    fn ctx() -> Context {
        Context::of_passwd(Some(990), PASSWD_SAMPLE.as_bytes())
    }

    const PASSWD_SAMPLE: &str = "root:x:0:0:root:/root:/bin/bash
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
monitoreo:x:990:990::/var/lib/monitoreo:/usr/sbin/nologin
alice:x:1000:1000:Alice,,,:/home/alice:/bin/bash
taken:x:40050:40050::/home/taken:/bin/sh
";

    /// Names come from the well-formed lines only; the uids a job range
    /// must avoid from every line with a number in its place, and a byte
    /// that is not UTF-8 in one line (a user's own `chfn`) spoils no other.
    #[test]
    fn accounts_are_the_well_formed_lines_and_every_listed_uid_is_taken() {
        let mut text = b"# a comment
+nisuser:x:7001:7001:::
-excluded::::::
short:x:7005:5
baduid:x:five:5::/:/bin/sh
badgid:x:7006:-1::/:/bin/sh
:x:7007:7::/:/bin/sh
bob:x:1001:100:Bob:/home/bob:/bin/sh

carol:x:1002:1002::/srv/carol:
"
        .to_vec();
        text.extend_from_slice(b"mallory:x:7008:7008:\xff\xfe room:/home/mallory:/bin/sh\n");
        text.extend_from_slice(b"dave:x:1003:1003::/home/dave:/bin/sh\n");
        let ctx = Context::of_passwd(None, &text);
        let names: Vec<(String, u32, u32, String)> = ctx
            .accounts
            .into_iter()
            .map(|a| (a.name, a.uid, a.gid, a.home))
            .collect();
        assert_eq!(
            names,
            [
                ("bob".into(), 1001, 100, "/home/bob".into()),
                ("carol".into(), 1002, 1002, "/srv/carol".into()),
                ("dave".into(), 1003, 1003, "/home/dave".into())
            ]
        );
        assert_eq!(
            ctx.passwd_uids,
            [7001, 7005, 7006, 7007, 1001, 1002, 7008, 1003]
        );
        // A job range over an odd line's uid is refused like any other.
        let ctx = Context::of_passwd(Some(990), &text);
        let e = Policy::parse("[run]\nuids = \"7000-7009\"\n", &ctx).unwrap_err();
        assert!(e.contains("uid 7001 has a passwd entry"), "{e}");
    }

    #[test]
    fn users_are_named_from_passwd_and_a_number_needs_no_entry() {
        let p =
            Policy::parse_test("[signal]\nowners = [\"alice\", 4242]\n[run]\nuser = \"alice\"\n")
                .expect("parses");
        assert!(p.signal.owners.contains(&Uid::new(1000)));
        assert!(p.signal.owners.contains(&Uid::new(4242)));
        let run = p.run.expect("a run section");
        assert_eq!(run.home, "/home/alice");
        assert!(matches!(run.run_as, RunAs::Shared { gid: 1000, .. }));
        // A name the file does not have is refused, with where to look.
        let e = Policy::parse_test("[signal]\nowners = [\"ldapuser\"]\n").unwrap_err();
        assert!(
            e.contains("no such user \"ldapuser\" in /etc/passwd"),
            "{e}"
        );
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
        assert!(e.starts_with("line 3:"), "{e}");
    }

    #[test]
    fn an_error_at_the_start_of_a_line_names_that_line() {
        let e = Policy::parse_test("[signal]\nowners = []\ncolour = \"red\"\n")
            .expect_err("unknown key");
        assert!(e.starts_with("line 3:"), "{e}");
        assert_eq!(line_at("a\nb\nc", 4), 3);
        assert_eq!(line_at("a", 99), 1);
    }

    #[test]
    fn unknown_keys_and_signals_are_errors() {
        assert!(Policy::parse_test("[signal]\nowner = []\n").is_err());
        let e = Policy::parse_test("[signal]\nsignals = [\"SEGV\"]\n").expect_err("bad signal");
        assert!(e.contains("line 2"), "{e}");
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
            assert!(e.contains(why), "{spec}: {e}");
            assert!(e.starts_with("line 2:"), "{e}");
        }
        let p = Policy::parse_test("[run]\nuids = \"60600-60699\"\n").expect("ok");
        let run = p.run.expect("run");
        assert_eq!(run.run_as, RunAs::PerJob(60600..=60699));
        assert_eq!(run.home, "/");
    }

    #[test]
    fn the_run_user_may_not_be_the_gateway_user_and_needs_one_form() {
        let e = Policy::parse_test("[run]\nuser = 990\n").expect_err("gateway");
        assert!(e.contains("gateway"), "{e}");
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
                e.contains(&format!(
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
        assert!(e.contains("@jobs"), "{e}");
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
        assert!(e.contains("job uid"), "{e}");
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
    fn an_error_names_the_line_of_the_value_at_fault_not_an_earlier_mention() {
        let cases = [
            // A comment naming the key first does not move the line.
            (
                "# the run user below\n[run]\nuser = \"root\"\n",
                "line 3: commands",
            ),
            (
                "# min_nice\n[renice]\n\nmin_nice = -5\n",
                "line 4: min_nice = -5",
            ),
            (
                "[signal]\nowners = []\n\nmax_targets = 0\n",
                "line 4: [signal] max_targets",
            ),
            (
                "[signal]\nowners = [\n  1000,\n  60603,\n]\n[run]\nuids = \"60600-60609\"\n",
                "line 4: owner 60603",
            ),
            (
                "[signal]\nowners = [\"nobody\",\n  \"no-such-user-xyz\"]\n",
                "line 3: no such user",
            ),
            (
                "[renice]\nowners = [1000,\n \"@all_jobs\"]\n",
                "line 3: @all_jobs needs",
            ),
            ("[signal]\nsignals = [\"TERM\",\n \"SEGV\"]\n", "line 3:"),
            // `[run]`'s own checks name its header, in whichever form.
            (
                "# run\n[signal]\n[run]\nmax_jobs = 0\nuser = \"nobody\"\n",
                "line 3: max_timeout_s",
            ),
            (
                "\nrun = { max_jobs = 2 }\n",
                "line 2: [run] needs exactly one",
            ),
            ("\nrun.max_jobs = 2\n", "line 2: [run] needs exactly one"),
        ];
        for (text, want) in cases {
            let e = Policy::parse_test(text).expect_err(text);
            assert!(e.starts_with(want), "{text:?}: {e}");
        }
        let dotted = Policy::parse_test("run.uids = \"60600-60609\"\n").expect("dotted keys");
        assert_eq!(dotted.job_range(), Some(60600..=60609));
    }

    #[test]
    fn the_summary_and_refusals_show_each_rule_as_the_file_writes_it() {
        let p = Policy::parse_test(
            "[signal]\nowners = [\"nobody\", 1000, \"@jobs\"]\nnames = [\"sleep\", \"cat\"]\n\
             signals = [\"TERM\"]\n[renice]\nowners = []\nmin_nice = 5\n[run]\nuids = \"60600-60609\"\n",
        )
        .expect("ok");
        assert_eq!(
            p.describe(Rule::Owners(Act::Signal)),
            "signal.owners is [\"nobody\", 1000, \"@jobs\"]"
        );
        assert_eq!(
            p.describe(Rule::Names(Act::Signal)),
            "signal.names is [\"sleep\", \"cat\"]"
        );
        assert_eq!(p.describe(Rule::Owners(Act::Renice)), "renice.owners is []");
        let summary = p.summary();
        for part in [
            "signal owners = [\"nobody\", 1000, \"@jobs\"], names = [\"sleep\", \"cat\"], signals = [\"TERM\"]",
            "renice owners = [], min_nice = 5",
            "run as one uid per job from 60600-60609 (memory_max 1073741824 pids_max 256 cpu_max 100%)",
        ] {
            assert!(summary.contains(part), "{part}: {summary}");
        }
        let shared = Policy::parse_test("[run]\nuser = \"nobody\"\n").expect("ok");
        assert!(shared.summary().ends_with(
            "run as shared user nobody (uid 65534): jobs are not isolated from each other"
        ));
        assert!(Policy::parse_test("")
            .expect("ok")
            .summary()
            .ends_with("run denied"));
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
