//! Group actions in two steps. `POST /api/actions/plan` selects processes
//! from /proc (pids, a tree, or a match), asks the helper for each one's
//! verdict (`Check`: decided, nothing done) and holds the plan — each
//! target pinned by pid, start time and its executable's device and inode
//! — for its key ([`crate::plans`]). `POST /api/actions/{plan_id}` with
//! the number of targets the client saw hands the plan to the helper
//! (`Act`), which re-verifies every target and acts through its pidfd;
//! the answer and the audit trail have one outcome per target.
//!
//! The scope a plan needs is its action's (`signal` or `renice`), checked
//! at planning and again at execution.

use std::time::Instant;

use protocol::{Action, Outcome, Request, Response, Target, MAX_BATCH};
use serde::Deserialize;
use serde_json::{json, Value};

use super::ctx::Ctx;
use super::named::{names, Named};
use super::renice::Priority;
use super::signal::SignalName;
use super::{blocking, target};
use crate::error::ApiError;
use crate::http::extract::{present, FromInput, Input};
use crate::ids::{Pid, StartTime};
use crate::jobs::owners::Viewer;
use crate::keys::Scope;
use crate::plans::{Plan, PLAN_TTL};
use crate::procs::{Candidate, Match, Selector};
use crate::reply::{Envelope, Reply};

/// The built-in protections whose processes are never targets: they are
/// left out of a plan (listed in `excluded`), not shown as refused.
const NEVER_TARGETS: [&str; 5] = [
    "builtin:pid<=1",
    "builtin:kernel-thread",
    "builtin:self",
    "builtin:gateway",
    "builtin:ancestor",
];

names!(
    AllowEmpty = "allow_empty",
    MaxTargets = "max_targets",
    IncludeRoot = "include_root",
    ExpectCount = "expect_count",
    MatchName = "match.name",
    MatchExe = "match.exe",
    MatchCmdline = "match.cmdline",
    MatchUser = "match.user",
    MatchCgroup = "match.cgroup",
    MatchUnit = "match.unit",
    Pids = "selector.pids",
);

/// The plan's body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanRequest {
    selector: SelectorBody,
    action: ActionBody,
    #[serde(default, deserialize_with = "present")]
    allow_empty: Option<Named<bool, AllowEmpty>>,
    #[serde(default, deserialize_with = "present")]
    max_targets: Option<Named<usize, MaxTargets>>,
}

impl FromInput for PlanRequest {
    const BODY: bool = true;

    fn from_input(input: &Input) -> Result<PlanRequest, ApiError> {
        input.json()
    }
}

/// Exactly one of `pids`, `tree_of` (with `include_root`) or `match`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SelectorBody {
    #[serde(default, deserialize_with = "present")]
    pids: Option<Named<Vec<Pid>, Pids>>,
    #[serde(default, deserialize_with = "present")]
    tree_of: Option<Pid>,
    #[serde(default, deserialize_with = "present")]
    include_root: Option<Named<bool, IncludeRoot>>,
    #[serde(default, rename = "match", deserialize_with = "present")]
    matching: Option<MatchBody>,
}

/// Match fields, ANDed; at least one.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct MatchBody {
    #[serde(default, deserialize_with = "present")]
    name: Option<Named<String, MatchName>>,
    #[serde(default, deserialize_with = "present")]
    exe: Option<Named<String, MatchExe>>,
    #[serde(default, deserialize_with = "present")]
    cmdline: Option<Named<String, MatchCmdline>>,
    #[serde(default, deserialize_with = "present")]
    user: Option<Named<String, MatchUser>>,
    #[serde(default, deserialize_with = "present")]
    cgroup: Option<Named<String, MatchCgroup>>,
    #[serde(default, deserialize_with = "present")]
    unit: Option<Named<String, MatchUnit>>,
}

/// Exactly one of `signal` or `priority`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ActionBody {
    #[serde(default, deserialize_with = "present")]
    signal: Option<SignalName>,
    #[serde(default, deserialize_with = "present")]
    priority: Option<Priority>,
}

/// The execution's body and the plan id from the path.
#[derive(Debug)]
pub struct ExecuteRequest {
    plan_id: String,
    expect_count: usize,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExecuteBody {
    expect_count: Named<usize, ExpectCount>,
}

impl FromInput for ExecuteRequest {
    const BODY: bool = true;

    fn from_input(input: &Input) -> Result<ExecuteRequest, ApiError> {
        let body: ExecuteBody = input.json()?;
        Ok(ExecuteRequest {
            plan_id: input.path("plan_id")?.to_string(),
            expect_count: body.expect_count.0,
        })
    }
}

fn invalid(msg: &str) -> ApiError {
    ApiError::InvalidField(msg.to_string())
}

impl ActionBody {
    fn action(&self) -> Result<Action, ApiError> {
        match (self.signal, self.priority) {
            (Some(s), None) => Ok(Action::Signal(s.0)),
            (None, Some(p)) => Ok(Action::Renice(p.nice())),
            _ => Err(invalid(
                "action takes exactly one of signal (a name) or priority (-20..=20)",
            )),
        }
    }
}

impl SelectorBody {
    fn selector(self, cx: &Ctx) -> Result<Selector, ApiError> {
        let forms = [
            self.pids.is_some(),
            self.tree_of.is_some(),
            self.matching.is_some(),
        ];
        if forms.iter().filter(|f| **f).count() != 1 {
            return Err(invalid(
                "selector takes exactly one of pids, tree_of or match",
            ));
        }
        if self.include_root.is_some() && self.tree_of.is_none() {
            return Err(invalid("include_root goes with tree_of"));
        }
        if let Some(pids) = self.pids.map(|p| p.0) {
            if pids.is_empty() {
                return Err(invalid("selector.pids is empty"));
            }
            return Ok(Selector::Pids(pids.into_iter().map(Pid::get).collect()));
        }
        if let Some(root) = self.tree_of {
            return Ok(Selector::Tree {
                root: root.get(),
                include_root: self.include_root.map_or(true, |r| r.0),
            });
        }
        let m = self.matching.unwrap_or_default();
        let (name, exe, cmd, user, cgroup, unit) = (
            m.name.map(|n| n.0),
            m.exe.map(|n| n.0),
            m.cmdline.map(|n| n.0),
            m.user.map(|n| n.0),
            m.cgroup.map(|n| n.0),
            m.unit.map(|n| n.0),
        );
        let cmdline = match &cmd {
            None => None,
            Some(re) => Some(
                regex::RegexBuilder::new(re)
                    .size_limit(1 << 20)
                    .build()
                    .map_err(|e| {
                        invalid(&format!("match.cmdline is not a regular expression: {e}"))
                    })?,
            ),
        };
        let uid = match &user {
            None => None,
            Some(u) => Some(
                cx.state
                    .procs
                    .resolve_user(u)
                    .ok_or_else(|| ApiError::NoSuchUser(u.clone()))?,
            ),
        };
        let fields = [&name, &exe, &cmd, &user, &cgroup, &unit];
        if fields.iter().all(|f| f.is_none()) {
            return Err(invalid(
                "match takes at least one of name, exe, cmdline, user, cgroup, unit",
            ));
        }
        Ok(Selector::Match(Match {
            name,
            exe,
            cmdline,
            uid,
            cgroup,
            unit,
        }))
    }
}

/// The scope an action needs.
fn scope_of(action: Action) -> Scope {
    match action {
        Action::Signal(_) => Scope::Signal,
        Action::Renice(_) => Scope::Renice,
    }
}

fn require(cx: &Ctx, action: Action) -> Result<(), ApiError> {
    let c = cx.caller()?;
    let scope = scope_of(action);
    if c.scopes.contains(&scope) {
        Ok(())
    } else {
        Err(ApiError::MissingScope {
            key: c.name.clone(),
            scope: match scope {
                Scope::Signal => "signal",
                _ => "renice",
            },
        })
    }
}

fn action_json(action: Action) -> Value {
    match action {
        Action::Signal(s) => json!({ "signal": s.name() }),
        Action::Renice(n) => json!({ "priority": n }),
    }
}

/// Asks the helper to `Check` or `Act` and takes its outcomes.
async fn batch(cx: &Ctx, req: Request) -> Result<Vec<Outcome>, ApiError> {
    match cx.state.helper.call_async(&req).await? {
        Response::Batch(v) => Ok(v),
        other => Err(crate::helper::refusal(&other, None).unwrap_or_else(|| {
            ApiError::BadGateway(format!("unexpected answer to a batch: {other:?}"))
        })),
    }
}

/// `POST /api/actions/plan`.
pub async fn plan(cx: &Ctx, req: PlanRequest) -> Result<Reply, ApiError> {
    let action = req.action.action()?;
    require(cx, action)?;
    // The policy's cap for the act (the frame's limit while the helper
    // has not answered): the helper refuses a larger batch anyway.
    let cap = cx
        .state
        .helper
        .health_cached()
        .await
        .info
        .as_ref()
        .map_or(MAX_BATCH, |i| {
            i.policy.max_targets[usize::from(matches!(action, Action::Renice(_)))]
        });
    let max = req
        .max_targets
        .map_or(cx.state.cfg.max_plan_targets.min(cap), |m| m.0);
    if max == 0 || max > cap {
        return Err(invalid(&format!(
            "max_targets must be in 1..={cap} (the policy's cap), got {max}"
        )));
    }
    // A tree, or a cgroup's members (a fork stays in its parent's cgroup,
    // so what a member forks is found as its child): held still while it
    // is acted on, new children found, judged and held too.
    let tree = req.selector.tree_of.is_some()
        || req
            .selector
            .matching
            .as_ref()
            .is_some_and(|m| m.cgroup.is_some() || m.unit.is_some());
    let selector = req.selector.selector(cx)?;
    let withhold = cx.state.owners.withhold(&Viewer::of(cx.caller()?));
    let state = cx.state.clone();
    let found: Vec<Candidate> =
        blocking(move || Ok(state.procs.select(&selector, &withhold)?)).await?;
    if found.len() > max {
        return Err(ApiError::TooManyTargets {
            count: found.len(),
            max,
            cap,
        });
    }
    let checked = if found.is_empty() {
        Vec::new()
    } else {
        batch(
            cx,
            Request::Check {
                targets: found
                    .iter()
                    .map(|c| {
                        crate::helper::unplanned(Target {
                            pid: c.pid,
                            start_time: c.start_time,
                        })
                    })
                    .collect(),
                action,
                caller: target::caller(cx)?,
            },
        )
        .await?
    };
    let mut targets = Vec::new();
    let mut pinned = Vec::new();
    let mut excluded = Vec::new();
    for (c, o) in found.iter().zip(&checked) {
        let (verdict, rule) = match &o.answer {
            Response::Ok => ("allow", None),
            Response::Denied { rule, .. } if NEVER_TARGETS.contains(&rule.as_str()) => {
                excluded.push(json!({"pid": c.pid, "rule": rule}));
                continue;
            }
            Response::Denied { rule, .. } => ("deny", Some(rule.clone())),
            // Gone, or its pid names another process, since it was read.
            other => {
                excluded.push(json!({"pid": c.pid, "rule": outcome_name(other)}));
                continue;
            }
        };
        pinned.push(o.pinned);
        targets.push(json!({
            "pid": c.pid,
            "start_time": c.start_time,
            "name": c.name,
            "exe": c.exe,
            "user": c.user,
            "cgroup": c.cgroup,
            "verdict": verdict,
            "rule": rule,
        }));
    }
    if pinned.is_empty() && !req.allow_empty.is_some_and(|a| a.0) {
        return Err(ApiError::EmptyMatch);
    }
    let key = cx.caller()?.name.clone();
    let count = pinned.len();
    let id = cx
        .state
        .plans
        .insert(Plan {
            key,
            action,
            tree,
            targets: pinned,
            made: Instant::now(),
        })
        .map_err(ApiError::Internal)?;
    let ttl = PLAN_TTL.as_secs();
    let expires_at = crate::clock::rfc3339(crate::clock::now_ms() + ttl * 1000);
    Ok(Envelope::ok()
        .member("plan_id", &id)
        .member("expires_in", &ttl)
        .member("expires_at", &expires_at)
        .member("action", &action_json(action))
        .member("count", &count)
        .member("targets", &targets)
        .member("excluded", &excluded)
        .finish(hyper::StatusCode::CREATED))
}

/// The outcome's name in answers and the audit trail.
pub fn outcome_name(r: &Response) -> &'static str {
    match r {
        Response::Ok => "signalled",
        Response::Reniced { .. } => "reniced",
        Response::NoSuchProcess | Response::NotAProcess => "gone",
        Response::Mismatch => "identity_changed",
        Response::ExeChanged => "exe_changed",
        Response::Denied { .. } => "denied",
        _ => "failed",
    }
}

/// `POST /api/actions/{plan_id}`.
pub async fn execute(cx: &Ctx, req: ExecuteRequest) -> Result<Reply, ApiError> {
    let key = cx.caller()?.name.clone();
    let plan = cx
        .state
        .plans
        .take(&req.plan_id, &key)
        .ok_or_else(|| ApiError::PlanNotFound(req.plan_id.clone()))?;
    require(cx, plan.action)?;
    if req.expect_count != plan.targets.len() {
        return Err(ApiError::CountChanged {
            expected: req.expect_count,
            planned: plan.targets.len(),
        });
    }
    let planned = plan.targets.len();
    let outcomes = if planned == 0 {
        Vec::new()
    } else {
        batch(
            cx,
            Request::Act {
                targets: plan.targets.clone(),
                action: plan.action,
                caller: target::caller(cx)?,
                tree: plan.tree,
            },
        )
        .await?
    };
    let mut complete = true;
    let mut results = Vec::new();
    for (i, o) in outcomes.iter().enumerate() {
        let name = outcome_name(&o.answer);
        complete &= matches!(name, "signalled" | "reniced");
        let mut r = json!({
            "pid": o.pinned.target.pid,
            "start_time": o.pinned.target.start_time,
            "outcome": name,
        });
        match &o.answer {
            Response::Denied { rule, .. } => r["rule"] = json!(rule),
            Response::Failed { errno } => {
                r["errno"] = json!(format!("{:?}", nix::errno::Errno::from_raw(*errno)))
            }
            _ => {}
        }
        if i >= planned {
            r["added"] = json!(true);
        }
        if let Some(pid) = Pid::new(i64::from(o.pinned.target.pid)) {
            let st = StartTime::from_ticks(o.pinned.target.start_time);
            cx.note_outcome(pid, st, name);
        }
        results.push(r);
    }
    Ok(Envelope::ok()
        .member("plan_id", &req.plan_id)
        .member("action", &action_json(plan.action))
        .member("status", if complete { "complete" } else { "partial" })
        .member("results", &results)
        .finish(hyper::StatusCode::OK))
}
