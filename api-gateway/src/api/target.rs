//! The process a DELETE or PATCH acts on: pid and start time, checked
//! and pinned before the helper is asked.
//!
//! With `start_time` in the body the helper acts only if the pid still
//! names that process (409 otherwise). Without it the gateway reads the
//! start time from /proc at that moment, which pins whatever process has
//! the pid then; `require_start_time = true` refuses such requests.

use protocol::{Action, Request, Response};

use super::ctx::Ctx;
use crate::error::ApiError;
use crate::helper;
use crate::ids::{Pid, StartTime, Target};
use crate::keys::Scope;
use crate::reply::{Envelope, Reply};

/// The target of `pid`, pinned by the client's start time or by the one
/// /proc shows now.
pub async fn resolve(
    cx: &Ctx,
    pid: Pid,
    start_time: Option<StartTime>,
) -> Result<Target, ApiError> {
    cx.note_target(pid, start_time);
    let start_time = match start_time {
        Some(s) => s,
        None if cx.state.cfg.require_start_time => return Err(ApiError::StartTimeRequired),
        // One read of /proc/PID/stat, which procfs answers from memory:
        // done here rather than paying two thread hops for it.
        None => cx.state.procs.start_time(pid)?,
    };
    cx.note_target(pid, Some(start_time));
    Ok(Target { pid, start_time })
}

/// The calling key as the helper needs it: a job's processes belong to the
/// key that started it, and `admin` may act on every key's jobs.
pub fn caller(cx: &Ctx) -> Result<protocol::Caller, ApiError> {
    let c = cx.caller()?;
    Ok(protocol::Caller {
        key: c.name.clone(),
        all_jobs: c.scopes.contains(&Scope::Admin),
    })
}

/// `dry_run`: what the helper would answer `action` on `target` and by
/// which rule (`Check`, which decides and does nothing). A target that is
/// gone or renamed is the error the act would get; a refusal is a verdict.
pub async fn dry_run(cx: &Ctx, t: Target, action: Action) -> Result<Reply, ApiError> {
    let req = Request::Check {
        targets: vec![helper::unplanned(t.wire())],
        action,
        caller: caller(cx)?,
    };
    let answer = helper::only_outcome(cx.state.helper.call_async(&req).await?);
    let (verdict, rule) = match &answer {
        Response::Ok => ("allow", None),
        Response::Denied { rule, .. } => ("deny", Some(rule.clone())),
        other => {
            return Err(helper::refusal(other, Some(t)).unwrap_or_else(|| {
                ApiError::BadGateway(format!("unexpected answer to a check: {other:?}"))
            }))
        }
    };
    Ok(Envelope::ok()
        .member("dry_run", &true)
        .member("pid", &t.pid)
        .member("start_time", &t.start_time)
        .member("verdict", verdict)
        .member("rule", &rule)
        .finish(hyper::StatusCode::OK))
}

/// Asks the helper to act on `t` (a one-target `Act`); a refusal becomes
/// its error, and only a done act (`Ok`, `Reniced`) is answered.
pub async fn act(cx: &Ctx, t: Target, action: Action) -> Result<Response, ApiError> {
    let req = helper::act_one(t.wire(), action, caller(cx)?);
    match helper::only_outcome(cx.state.helper.call_async(&req).await?) {
        done @ (Response::Ok | Response::Reniced { .. }) => Ok(done),
        other => Err(helper::refusal(&other, Some(t)).unwrap_or_else(|| {
            ApiError::BadGateway(format!("unexpected answer to an act: {other:?}"))
        })),
    }
}
