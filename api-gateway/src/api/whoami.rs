//! `GET /api/whoami`: the key's own name and scopes, and what the
//! helper's policy lets it do, for a client (the console) that shows only
//! what the key may do. It needs a valid key but no scope, so that a key
//! without `read` can still ask.
//!
//! The policy is the helper's (`Info`, from the probe `/healthz` also
//! answers from, at most a second old), cut to the key's scopes: the
//! signals and the rules on whose processes only with `signal`, the nice
//! range and its rules only with `renice`, the exec limits only with
//! `exec`. `null` while the helper does not answer. Its `read` member is
//! the reader's `[read]` policy (asked of the reader at each call), only
//! with `read`.

use hyper::StatusCode;
use serde::Serialize;

use super::ctx::Ctx;
use super::health::Limits;
use crate::error::ApiError;
use crate::http::extract::Nothing;
use crate::keys::{Caller, Scope};
use crate::reply::{Envelope, Reply};

/// What the policy lets this key do.
#[derive(Debug, Serialize)]
pub struct PolicyView {
    /// Signal names (`SIGTERM`) this key may send; empty without the
    /// signal scope.
    pub signals: Vec<String>,
    /// The nice values this key may set, `[min_nice, 19]`; null without
    /// the renice scope.
    pub nice_range: Option<[i32; 2]>,
    /// Whose processes: the `[signal]` rules as the policy file writes
    /// them; empty without the signal scope.
    pub signal_rules: Vec<String>,
    pub renice_rules: Vec<String>,
    /// The exec limits; null without the exec scope or without `[run]`.
    pub run: Option<RunView>,
    /// Whose private fields this key reads through the reader, and which;
    /// null without the read scope or without a reader to ask.
    pub read: Option<ReadView>,
    /// Why `read` is null: `no_read_scope`, `no_reader` (none
    /// configured) or `reader_unavailable`.
    pub read_reason: Option<&'static str>,
}

/// The reader's `[read]` policy, which every key with `read` reads under
/// (another key's job keeps its paths withheld without `admin`).
#[derive(Debug, Serialize)]
pub struct ReadView {
    /// As the policy file writes them: names, uids, `A-B` ranges, `*`.
    pub owners: Vec<String>,
    /// The private fields it reads of those owners' processes.
    pub fields: Vec<&'static str>,
}

/// The limits a job of this key runs under.
#[derive(Debug, Serialize)]
pub struct RunView {
    /// Longest `timeout_s` the helper accepts.
    pub max_timeout_s: u64,
    /// `timeout_s` when a request gives none.
    pub default_timeout_s: u64,
    /// Jobs the helper runs at once, all keys together.
    pub max_jobs: u32,
    /// Jobs this key may run at once.
    pub key_max_running_jobs: usize,
    /// Bytes each of stdout and stderr may reach; past it the output is
    /// cut and marked truncated, and the job runs on.
    pub max_output_bytes: u64,
    /// Bytes of memory a job may use: its cgroup's `memory.max`, else
    /// `RLIMIT_AS` per process; null when neither holds.
    pub memory_max: Option<u64>,
    /// `per_job_uid` or `shared_user`.
    pub isolation: &'static str,
    /// The cgroup limits and rlimits of each job, as `/healthz` shows
    /// them.
    pub limits: Limits,
}

/// `{"result":"ok","key":NAME,"scopes":[...],"policy":{...}|null}`.
pub async fn get(cx: &Ctx, _: Nothing) -> Result<Reply, ApiError> {
    let caller = cx.caller()?;
    let health = cx.state.helper.health_cached().await;
    let read = if caller.scopes.contains(&Scope::Read) {
        let state = cx.state.clone();
        super::blocking(move || Ok(state.procs.read_rules())).await?
    } else {
        Err("no_read_scope")
    };
    let policy = health.info.as_ref().map(|i| {
        let mut v = view(i, caller, &cx.state.cfg);
        match &read {
            Ok((owners, fields)) => {
                v.read = Some(ReadView {
                    owners: owners.clone(),
                    fields: fields.clone(),
                })
            }
            Err(why) => v.read_reason = Some(why),
        }
        v
    });
    Ok(Envelope::ok()
        .member("key", &caller.name)
        .member("scopes", &caller.scopes)
        .member("policy", &policy)
        .finish(StatusCode::OK))
}

/// The helper's policy, cut to `caller`'s scopes.
fn view(info: &protocol::HelperInfo, caller: &Caller, cfg: &crate::config::Config) -> PolicyView {
    let has = |s: Scope| caller.scopes.contains(&s);
    let p = &info.policy;
    let (signal, renice) = (has(Scope::Signal), has(Scope::Renice));
    PolicyView {
        signals: if signal {
            p.signals
                .iter()
                .map(|s| format!("SIG{}", s.name()))
                .collect()
        } else {
            Vec::new()
        },
        nice_range: renice.then_some([p.min_nice, 19]),
        signal_rules: if signal {
            p.signal_rules.clone()
        } else {
            Vec::new()
        },
        renice_rules: if renice {
            p.renice_rules.clone()
        } else {
            Vec::new()
        },
        run: match p.max_timeout_s {
            Some(max_timeout_s) if has(Scope::Exec) => Some(RunView {
                max_timeout_s,
                default_timeout_s: cfg.default_timeout_s,
                max_jobs: info.max_jobs,
                key_max_running_jobs: super::jobs::key_limits(cfg).running(info.max_jobs),
                max_output_bytes: info.limits.rlimit_fsize,
                memory_max: info.limits.cgroup_memory_max.or(info.limits.rlimit_as),
                isolation: super::health::isolation_name(info.isolation),
                limits: Limits::from(&info.limits),
            }),
            _ => None,
        },
        read: None,
        read_reason: None,
    }
}
