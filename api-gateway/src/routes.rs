//! The router: path + method → handler, 404 for unknown paths, 405 with
//! `Allow` for known paths with another method. Authentication and scope
//! checks happen here before any handler runs.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{header, Method, Request, Response, StatusCode};
use protocol::{JobId, Response as HelperResponse, Signal, Target};
use serde_json::{json, Value};

use crate::error::{bytes_response, json_response, ApiError};
use crate::jobs::{rfc3339, Meta};
use crate::keys::{AuthFailure, Caller, Scope};
use crate::procs::{Fields, ListQuery, ProcError, SortKey};
use crate::App;

/// Largest request body accepted.
pub const MAX_BODY: usize = 64 * 1024;

type Resp = Response<Full<Bytes>>;

/// Entry point for every request; never fails.
pub async fn handle(
    app: Arc<App>,
    req: Request<Incoming>,
) -> Result<Resp, std::convert::Infallible> {
    Ok(match route(app, req).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    })
}

fn ok(mut v: Value) -> Value {
    if let Some(o) = v.as_object_mut() {
        o.insert("result".into(), json!("ok"));
    }
    v
}

async fn route(app: Arc<App>, req: Request<Incoming>) -> Result<Resp, ApiError> {
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let method = req.method().clone();
    let segs: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
    let allow = |a: &'static str| Err(ApiError::MethodNotAllowed(a));
    match segs.as_slice() {
        ["healthz"] => match method {
            Method::GET | Method::HEAD => healthz(&app).await,
            _ => allow("GET, HEAD"),
        },
        ["api", "openapi.json"] => match method {
            Method::GET | Method::HEAD => {
                Ok(json_response(StatusCode::OK, &crate::openapi::document()))
            }
            _ => allow("GET, HEAD"),
        },
        ["api", "ps"] => match method {
            Method::GET => {
                auth(&app, &req, Scope::Read)?;
                list(&app, &query, None).await
            }
            Method::POST => {
                let c = audited_auth(&app, &req, Scope::Exec, "POST /api/ps")?;
                let body = body_json(req).await?;
                spawn(&app, &c, body).await
            }
            Method::DELETE => {
                let c = audited_auth(&app, &req, Scope::Signal, "DELETE /api/ps")?;
                let body = body_json(req).await?;
                signal(&app, &c, body).await
            }
            Method::PATCH => {
                let c = audited_auth(&app, &req, Scope::Renice, "PATCH /api/ps")?;
                let body = body_json(req).await?;
                renice(&app, &c, body).await
            }
            _ => allow("GET, POST, DELETE, PATCH"),
        },
        ["api", "ps", "output", id] => match method {
            Method::GET => {
                let c = auth(&app, &req, Scope::Exec)?;
                output(&app, &c, id).await
            }
            _ => allow("GET"),
        },
        ["api", "ps", pid] => match method {
            Method::GET => {
                auth(&app, &req, Scope::Read)?;
                let pid = parse_pid(&Value::String((*pid).to_string()))?;
                one(&app, pid, &query).await
            }
            _ => allow("GET"),
        },
        ["api", "users"] => match method {
            Method::GET => {
                auth(&app, &req, Scope::Read)?;
                users(&app).await
            }
            _ => allow("GET"),
        },
        ["api", "users", name, "ps"] => match method {
            Method::GET => {
                auth(&app, &req, Scope::Read)?;
                let name = percent_decode(name);
                list(&app, &query, Some(name)).await
            }
            _ => allow("GET"),
        },
        _ => Err(ApiError::NotFound(format!("no route {path}"))),
    }
}

fn auth(app: &App, req: &Request<Incoming>, scope: Scope) -> Result<Caller, ApiError> {
    let h = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| ApiError::Unauthorized("missing Authorization: Bearer <key>".into()))?;
    let token = h
        .strip_prefix("Bearer ")
        .or_else(|| h.strip_prefix("bearer "))
        .ok_or_else(|| ApiError::Unauthorized("Authorization must be Bearer".into()))?
        .trim();
    let caller = app.keys.authenticate(token).map_err(|f| {
        ApiError::Unauthorized(
            match f {
                AuthFailure::Unknown => "invalid key",
                AuthFailure::Expired => "key expired",
                AuthFailure::Revoked => "key revoked",
            }
            .into(),
        )
    })?;
    if !caller.scopes.contains(&scope) {
        return Err(ApiError::Forbidden(format!(
            "key {:?} lacks the {:?} scope",
            caller.name,
            scope.name()
        )));
    }
    Ok(caller)
}

/// [`auth`] for state-changing routes: a refused caller is audited too.
fn audited_auth(
    app: &App,
    req: &Request<Incoming>,
    scope: Scope,
    route: &str,
) -> Result<Caller, ApiError> {
    auth(app, req, scope).inspect_err(|e| {
        app.audit.record(&crate::audit::Entry {
            key: "-",
            route,
            pid: None,
            start_time: None,
            status: e.status().as_u16(),
            outcome: &e.to_string(),
            job: None,
        })
    })
}

async fn body_json(req: Request<Incoming>) -> Result<Value, ApiError> {
    if let Some(len) = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
    {
        if len > MAX_BODY as u64 {
            return Err(ApiError::PayloadTooLarge(MAX_BODY));
        }
    }
    let body = Limited::new(req.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|e| {
            if e.is::<http_body_util::LengthLimitError>() {
                ApiError::PayloadTooLarge(MAX_BODY)
            } else {
                ApiError::BadRequest(format!("reading body: {e}"))
            }
        })?
        .to_bytes();
    let v: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("body is not valid JSON: {e}")))?;
    if !v.is_object() {
        return Err(ApiError::BadRequest("body must be a JSON object".into()));
    }
    Ok(v)
}

/// `pid` as a number or numeric string; must be > 0.
pub fn parse_pid(v: &Value) -> Result<i32, ApiError> {
    let n: Option<i64> = match v {
        Value::Number(n) => n.as_i64(),
        Value::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
            s.parse().ok()
        }
        _ => None,
    };
    match n {
        Some(n) if n > 0 && n <= i64::from(i32::MAX) => Ok(n as i32),
        _ => Err(ApiError::BadRequest(format!(
            "pid must be a positive integer (number or numeric string), got {v}"
        ))),
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = |c: u8| (c as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn query_params(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (percent_decode(k), percent_decode(v)),
            None => (percent_decode(p), String::new()),
        })
        .collect()
}

fn proc_err(e: ProcError) -> ApiError {
    match e {
        ProcError::NoSuchProcess(p) => ApiError::NotFound(format!("no process with pid {p}")),
        e @ (ProcError::UnknownField(_) | ProcError::BadSort(_)) => {
            ApiError::BadRequest(e.to_string())
        }
        e @ ProcError::Io(_) => ApiError::Internal(e.to_string()),
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::Internal(format!("worker failed: {e}")))?
}

async fn list(app: &Arc<App>, query: &str, user: Option<String>) -> Result<Resp, ApiError> {
    let mut q = ListQuery::default();
    let mut user_filter = user.clone();
    for (k, v) in query_params(query) {
        match k.as_str() {
            "fields" => q.fields = Fields::parse(&v).map_err(proc_err)?,
            "sort" => q.sort = Some(SortKey::parse(&v).map_err(proc_err)?),
            "limit" => {
                q.limit = Some(v.parse().map_err(|_| {
                    ApiError::BadRequest(format!("limit must be a non-negative integer, got {v:?}"))
                })?)
            }
            "user" if user.is_none() => user_filter = Some(v),
            other => {
                return Err(ApiError::BadRequest(format!(
                    "unknown query parameter {other:?}"
                )))
            }
        }
    }
    let app2 = app.clone();
    let body = blocking(move || {
        if let Some(u) = &user_filter {
            q.uid = Some(
                app2.procs
                    .uid_of_user(u)
                    .ok_or_else(|| ApiError::NotFound(format!("no user {u:?}")))?,
            );
        }
        app2.procs.list_json(&q).map_err(proc_err)
    })
    .await?;
    let mut out = Vec::with_capacity(body.len() + 80);
    out.extend_from_slice(
        format!(
            "{{\"result\":\"ok\",\"cpu_percent_window_s\":{},\"processes\":",
            app.procs.window_secs()
        )
        .as_bytes(),
    );
    out.extend_from_slice(&body);
    out.push(b'}');
    Ok(bytes_response(StatusCode::OK, Bytes::from(out)))
}

async fn one(app: &Arc<App>, pid: i32, query: &str) -> Result<Resp, ApiError> {
    let mut fields = Fields::default();
    for (k, v) in query_params(query) {
        match k.as_str() {
            "fields" => fields = Fields::parse(&v).map_err(proc_err)?,
            other => {
                return Err(ApiError::BadRequest(format!(
                    "unknown query parameter {other:?}"
                )))
            }
        }
    }
    let app2 = app.clone();
    let body = blocking(move || app2.procs.one_json(pid, &fields).map_err(proc_err)).await?;
    let mut out = Vec::with_capacity(body.len() + 80);
    out.extend_from_slice(
        format!(
            "{{\"result\":\"ok\",\"cpu_percent_window_s\":{},\"process\":",
            app.procs.window_secs()
        )
        .as_bytes(),
    );
    out.extend_from_slice(&body);
    out.push(b'}');
    Ok(bytes_response(StatusCode::OK, Bytes::from(out)))
}

async fn users(app: &Arc<App>) -> Result<Resp, ApiError> {
    let app2 = app.clone();
    let users = blocking(move || app2.procs.users().map_err(proc_err)).await?;
    let list: Vec<Value> = users
        .into_iter()
        .map(|(u, n)| json!({"username": u, "running": n}))
        .collect();
    Ok(json_response(StatusCode::OK, &ok(json!({ "users": list }))))
}

async fn healthz(app: &Arc<App>) -> Result<Resp, ApiError> {
    let helper = app.helper.clone();
    let h = tokio::task::spawn_blocking(move || helper.health())
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let mut body = json!({
        "helper": {
            "reachable": h.reachable,
            "protocol_version": protocol::PROTOCOL_VERSION,
            "containment": h.containment.map(|c| c.name()),
            "isolation": h.info.as_ref().map(|i| i.isolation.name()),
            "limits": h.info.as_ref().map(|i| limits_json(&i.limits)),
            "error": h.error,
        },
        "version": env!("CARGO_PKG_VERSION"),
    });
    let status = if h.reachable {
        body = ok(body);
        StatusCode::OK
    } else {
        // The error envelope, still carrying the helper details.
        body["result"] = json!("error");
        body["code"] = json!("helper_unavailable");
        body["message"] = json!("the privileged helper is unreachable");
        StatusCode::SERVICE_UNAVAILABLE
    };
    Ok(json_response(status, &body))
}

/// The job limits in force, as `/healthz` shows them: a cgroup limit is
/// `null` where the host's unified hierarchy does not offer its controller.
fn limits_json(l: &protocol::JobLimits) -> Value {
    json!({
        "cgroup": {
            "memory_max": l.cgroup_memory_max,
            "pids_max": l.cgroup_pids_max,
            "cpu_max_us_per_100ms": l.cgroup_cpu_max_us,
        },
        "rlimit": {
            "as": l.rlimit_as,
            "nproc_per_job_uid": l.rlimit_nproc,
            "cpu_s": l.rlimit_cpu_s,
            "fsize": l.rlimit_fsize,
            "nofile": l.rlimit_nofile,
        },
    })
}

async fn call_helper(app: &Arc<App>, req: protocol::Request) -> Result<HelperResponse, ApiError> {
    let helper = app.helper.clone();
    blocking(move || helper.call(&req, &[])).await
}

/// Start time from the body or from /proc.
async fn target(app: &Arc<App>, body: &Value) -> Result<Target, ApiError> {
    let pid = parse_pid(
        body.get("pid")
            .ok_or_else(|| ApiError::BadRequest("pid is required".into()))?,
    )?;
    let start_time = match body.get("start_time") {
        None | Some(Value::Null) => {
            let app2 = app.clone();
            blocking(move || app2.procs.start_time(pid).map_err(proc_err)).await?
        }
        Some(Value::Number(n)) => n.as_u64().ok_or_else(|| {
            ApiError::BadRequest("start_time must be a non-negative integer".into())
        })?,
        Some(Value::String(s)) => s.parse().map_err(|_| {
            ApiError::BadRequest("start_time must be a non-negative integer".into())
        })?,
        Some(_) => {
            return Err(ApiError::BadRequest(
                "start_time must be a non-negative integer".into(),
            ))
        }
    };
    Ok(Target { pid, start_time })
}

fn audit_outcome(
    app: &App,
    caller: &Caller,
    route: &str,
    t: Option<Target>,
    r: &Result<Resp, ApiError>,
    job: Option<&str>,
) {
    let (status, outcome) = match r {
        Ok(resp) => (resp.status().as_u16(), "ok".to_string()),
        Err(e) => (e.status().as_u16(), e.to_string()),
    };
    app.audit.record(&crate::audit::Entry {
        key: &caller.name,
        route,
        pid: t.map(|t| t.pid),
        start_time: t.map(|t| t.start_time),
        status,
        outcome: &outcome,
        job,
    });
}

async fn signal(app: &Arc<App>, caller: &Caller, body: Value) -> Result<Resp, ApiError> {
    let mut tgt = None;
    let r = async {
        let sig = match body.get("signal") {
            None | Some(Value::Null) => Signal::Kill,
            Some(Value::String(s)) => s
                .parse()
                .map_err(|_| ApiError::BadRequest(format!("unknown signal {s:?}")))?,
            Some(Value::Number(n)) => n
                .as_i64()
                .and_then(Signal::from_number)
                .ok_or_else(|| ApiError::BadRequest(format!("unsupported signal number {n}")))?,
            Some(v) => {
                return Err(ApiError::BadRequest(format!(
                    "signal must be a name or number, got {v}"
                )))
            }
        };
        let t = target(app, &body).await?;
        tgt = Some(t);
        let resp = call_helper(
            app,
            protocol::Request::Signal {
                target: t,
                signal: sig,
            },
        )
        .await?;
        if let Some(e) = crate::helper::refusal(&resp, Some(t.pid)) {
            return Err(e);
        }
        Ok(json_response(
            StatusCode::OK,
            &ok(json!({"pid": t.pid, "start_time": t.start_time, "signal": sig.name()})),
        ))
    }
    .await;
    audit_outcome(app, caller, "DELETE /api/ps", tgt, &r, None);
    r
}

async fn renice(app: &Arc<App>, caller: &Caller, body: Value) -> Result<Resp, ApiError> {
    let mut tgt = None;
    let r = async {
        let prio = body
            .get("priority")
            .and_then(|v| match v {
                Value::Number(n) => n.as_i64(),
                Value::String(s) => s.parse().ok(),
                _ => None,
            })
            .ok_or_else(|| {
                ApiError::BadRequest("priority must be an integer in -20..=20".into())
            })?;
        if !(-20..=20).contains(&prio) {
            return Err(ApiError::BadRequest(format!(
                "priority {prio} is outside -20..=20"
            )));
        }
        let nice = prio.min(19) as i32;
        let t = target(app, &body).await?;
        tgt = Some(t);
        let resp = call_helper(app, protocol::Request::Renice { target: t, nice }).await?;
        if let Some(e) = crate::helper::refusal(&resp, Some(t.pid)) {
            return Err(e);
        }
        let threads = match resp {
            HelperResponse::Reniced { threads } => threads,
            other => {
                return Err(ApiError::BadGateway(format!(
                    "unexpected answer to renice: {other:?}"
                )))
            }
        };
        Ok(json_response(
            StatusCode::OK,
            &ok(
                json!({"pid": t.pid, "start_time": t.start_time, "priority": nice,
                       "threads": threads}),
            ),
        ))
    }
    .await;
    audit_outcome(app, caller, "PATCH /api/ps", tgt, &r, None);
    r
}

async fn spawn(app: &Arc<App>, caller: &Caller, body: Value) -> Result<Resp, ApiError> {
    let mut job_hex = None;
    let mut tgt = None;
    let r = async {
        let cmd = match body.get("cmd") {
            Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
            _ => {
                return Err(ApiError::BadRequest(
                    "cmd must be a non-empty string".into(),
                ))
            }
        };
        if cmd.contains('\0') {
            return Err(ApiError::BadRequest("cmd must not contain NUL".into()));
        }
        let timeout_s = match body.get("timeout_s") {
            None | Some(Value::Null) => app.cfg.default_timeout_s,
            Some(v) => v.as_u64().filter(|n| *n > 0).ok_or_else(|| {
                ApiError::BadRequest("timeout_s must be a positive integer".into())
            })?,
        };
        let mut raw = [0u8; 16];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut raw)
            .map_err(|_| ApiError::Internal("OS random generator failed".into()))?;
        let id = JobId(raw);
        job_hex = Some(id.to_hex());
        let mut meta = Meta {
            owner: caller.name.clone(),
            cmd: cmd.clone(),
            pid: None,
            start_time: None,
            created_ms: crate::jobs::now_ms(),
            state: "starting".into(),
            exit_code: None,
            signal: None,
            timed_out: false,
            started_ms: None,
            ended_ms: None,
            output_limit: None,
        };
        let app2 = app.clone();
        let status = blocking(move || {
            let (out, err) = app2
                .jobs
                .create(&id, &meta)
                .map_err(|e| ApiError::Internal(format!("creating job files: {e}")))?;
            use std::os::fd::AsFd;
            let req = protocol::Request::Spawn {
                job: id,
                command: cmd,
                timeout_ms: timeout_s.saturating_mul(1000),
            };
            let resp = app2.helper.call(&req, &[out.as_fd(), err.as_fd()]);
            let resp = match resp {
                Ok(HelperResponse::Job(s)) => s,
                Ok(other) => {
                    app2.jobs.remove(&id);
                    return Err(crate::helper::refusal(&other, None).unwrap_or_else(|| {
                        ApiError::BadGateway(format!("unexpected answer {other:?}"))
                    }));
                }
                Err(e) => {
                    app2.jobs.remove(&id);
                    return Err(e);
                }
            };
            meta.apply(&resp);
            if let Err(e) = app2.jobs.write_meta(&id, &meta) {
                eprintln!("monitoreo-gateway: job {id}: writing meta: {e}");
            }
            Ok((resp, meta.cmd))
        })
        .await?;
        let (s, cmd) = status;
        tgt = Some(Target {
            pid: s.pid,
            start_time: s.start_time,
        });
        Ok(json_response(
            StatusCode::ACCEPTED,
            &ok(json!({
                "process": {"pid": s.pid, "start_time": s.start_time, "cmd": cmd},
                "pid": s.pid,
                "output": id.to_hex(),
            })),
        ))
    }
    .await;
    audit_outcome(app, caller, "POST /api/ps", tgt, &r, job_hex.as_deref());
    r
}

async fn output(app: &Arc<App>, caller: &Caller, id: &str) -> Result<Resp, ApiError> {
    let id = JobId::from_hex(id).ok_or_else(|| {
        ApiError::BadRequest("output id must be 32 lowercase hex characters".into())
    })?;
    let app2 = app.clone();
    let owner = caller.name.clone();
    blocking(move || {
        let not_found = || ApiError::NotFound(format!("no output {id}"));
        let mut meta = app2
            .jobs
            .meta(&id)
            .map_err(|e| ApiError::Internal(e.to_string()))?
            .ok_or_else(not_found)?;
        if meta.owner != owner {
            return Err(not_found());
        }
        if meta.state == "running" || meta.state == "starting" {
            // The helper may have restarted and forgotten the job: then the
            // last state stored in meta.json stands.
            if let Ok(HelperResponse::Job(s)) = app2
                .helper
                .call(&protocol::Request::JobStatus { job: id }, &[])
            {
                meta.apply(&s);
                if s.state != protocol::JobState::Running {
                    if let Err(e) = app2.jobs.write_meta(&id, &meta) {
                        eprintln!("monitoreo-gateway: job {id}: writing meta: {e}");
                    }
                }
            }
        }
        let (out, err) = app2
            .jobs
            .outputs(&id)
            .map_err(|e| ApiError::Internal(format!("reading output: {e}")))?;
        let truncated = meta
            .output_limit
            .is_some_and(|l| out.len >= l || err.len >= l);
        Ok(json_response(
            StatusCode::OK,
            &ok(json!({
                "output": id.to_hex(),
                "cmd": meta.cmd,
                "pid": meta.pid,
                "start_time": meta.start_time,
                "state": meta.state,
                "exit_code": meta.exit_code,
                "signal": meta.signal,
                "timed_out": meta.timed_out,
                "truncated": truncated,
                "started_at": meta.started_ms.map(rfc3339),
                "ended_at": meta.ended_ms.map(rfc3339),
                "out": out.text,
                "err": err.text,
                "out_invalid_utf8": out.invalid_utf8,
                "err_invalid_utf8": err.invalid_utf8,
            })),
        ))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pid_is_a_positive_number_or_numeric_string() {
        assert_eq!(parse_pid(&json!(42)).unwrap(), 42);
        assert_eq!(parse_pid(&json!("42")).unwrap(), 42);
        for bad in [
            json!(0),
            json!(-1),
            json!("-1"),
            json!("4x"),
            json!(""),
            json!(1.5),
            json!(null),
            json!(4_294_967_296u64),
        ] {
            assert!(parse_pid(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn percent_decoding_never_panics_on_odd_input() {
        assert_eq!(percent_decode("a%20b+c"), "a b c");
        assert_eq!(percent_decode("%"), "%");
        assert_eq!(percent_decode("%zz%é%4"), "%zz%é%4");
    }
}
