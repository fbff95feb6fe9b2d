//! The route table's engine: one layer that, for every request, gives it
//! an id (`X-Request-Id`, the audit line, the helper's frame), finds the
//! route (404, or 405 with `Allow`), authenticates the caller (a bearer
//! key, or a verified client certificate mapped to a key) and checks the
//! route's scope, counts refused authentications per client address
//! (429 past `auth_failures_per_minute`), checks the query against the
//! route's declared parameters, reads the body under [`MAX_BODY`] within
//! the body timeouts, calls the handler with a typed request, writes the
//! audit line of every authenticated or refused request, and turns any
//! [`ApiError`] into its envelope. Handlers never do any of that
//! themselves. `HEAD` is served by every `GET` route (hyper sends the
//! head without the body).
//!
//! The table itself is data ([`Route`]), built by `api::table`, so the
//! OpenAPI document and the tests read the same list the server serves.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body, Incoming};
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use hyper::{header, Method, Request, Response};
use protocol::JobId;
use serde_json::Value;

use super::connstate::ConnInfo;
use super::extract::{parse_body, parse_query, percent_decode, Input, Param};
use crate::audit;
use crate::config::Config;
use crate::error::ApiError;
use crate::ids::{Pid, StartTime};
use crate::keys::{AuthFailure, Caller, Scope};
use crate::reply::{Reply, ResponseBody};
use crate::reqid::{self, RequestIds};
use crate::state::State;

/// Largest request body accepted.
pub const MAX_BODY: usize = crate::budget::MAX_BODY;

/// Time a body has before `body_min_rate` starts to count.
pub const BODY_RATE_GRACE: Duration = Duration::from_secs(2);

/// The response header that carries the request id.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// What a handler returns.
pub type HandlerFuture = Pin<Box<dyn Future<Output = Result<Reply, ApiError>> + Send>>;

/// A type-erased handler: builds its typed request from the [`Input`] and
/// runs (see [`route!`](route)).
pub type Handler = fn(Arc<Ctx>, Input) -> HandlerFuture;

/// One line of the route table.
pub struct Route {
    pub method: Method,
    /// `/api/ps/{pid}`: literal segments and `{name}` parameters.
    pub pattern: &'static str,
    /// The OpenAPI operationId.
    pub operation_id: &'static str,
    /// The scope the key must have; `None`: no scope (see `key`).
    pub scope: Option<Scope>,
    /// With a scope: a request without credentials is served anyway
    /// (without a caller); one with credentials is authenticated and
    /// checked as usual. `/healthz` says more to a key with read.
    pub key_optional: bool,
    /// Whether a valid key is needed: always with a scope (unless
    /// `key_optional`); without one, only for routes that answer about the
    /// key itself (`any_key` in [`route!`](route)). `/healthz`, the
    /// OpenAPI document and the console's static files need none.
    pub key: bool,
    /// State-changing: its audit line carries the body members that name
    /// the act (pid, start_time, signal, priority, cmd) as given. Every
    /// authenticated request gets an audit line.
    pub audited: bool,
    /// Query parameters the request type takes.
    pub query: &'static [Param],
    /// Whether the request type reads a body.
    pub body: bool,
    pub handler: Handler,
}

/// Builds a [`Route`] whose handler is `async fn(&Ctx, Req) -> Result<Reply,
/// ApiError>`; the query and body declarations come from `Req`. The scope
/// is `Some(scope)`, `None` (no key at all) or `any_key` (a valid key with
/// any scopes). Crate-local: named by its path,
/// `crate::http::router::route`, like the types it builds.
macro_rules! route {
    ($method:ident $pattern:literal, $op:literal, any_key, audited: $audited:expr,
     $handler:path, $req:ty) => {
        $crate::http::router::route!(@build $method $pattern, $op, None, true, $audited, $handler, $req)
    };
    ($method:ident $pattern:literal, $op:literal, $scope:expr, audited: $audited:expr,
     $handler:path, $req:ty) => {
        $crate::http::router::route!(@build $method $pattern, $op, $scope,
            ::std::option::Option::<$crate::keys::Scope>::is_some(&$scope), $audited, $handler, $req)
    };
    (@build $method:ident $pattern:literal, $op:literal, $scope:expr, $key:expr,
     $audited:expr, $handler:path, $req:ty) => {
        $crate::http::router::Route {
            method: ::hyper::Method::$method,
            pattern: $pattern,
            operation_id: $op,
            scope: $scope,
            key_optional: false,
            key: $key,
            audited: $audited,
            query: <$req as $crate::http::extract::FromInput>::QUERY,
            body: <$req as $crate::http::extract::FromInput>::BODY,
            handler: |cx, input| {
                ::std::boxed::Box::pin(async move {
                    let req = <$req as $crate::http::extract::FromInput>::from_input(&input)?;
                    $handler(&cx, req).await
                })
            },
        }
    };
}
pub(crate) use route;

/// Facts an audited handler learns while it runs (the target it resolved,
/// the job it started), written in the audit line whatever the outcome.
#[derive(Debug, Default, Clone, Copy)]
pub struct AuditFacts {
    pub pid: Option<Pid>,
    pub start_time: Option<StartTime>,
    pub job: Option<JobId>,
}

/// What a handler gets besides its typed request.
pub struct Ctx {
    pub state: Arc<State>,
    caller: Option<Caller>,
    facts: Mutex<AuditFacts>,
}

impl Ctx {
    /// The authenticated key, if the request came with one (a route
    /// whose key is optional may have none).
    pub fn maybe_caller(&self) -> Option<&Caller> {
        self.caller.as_ref()
    }

    /// The authenticated key (every route with a scope has one).
    pub fn caller(&self) -> Result<&Caller, ApiError> {
        self.caller
            .as_ref()
            .ok_or_else(|| ApiError::Internal("route without a scope asked for its caller".into()))
    }

    /// Records the process the request acts on, for the audit line.
    pub fn note_target(&self, pid: Pid, start_time: Option<StartTime>) {
        let mut f = self.facts.lock().unwrap_or_else(|p| p.into_inner());
        f.pid = Some(pid);
        f.start_time = start_time.or(f.start_time);
    }

    /// Records the job the request started, for the audit line.
    pub fn note_job(&self, job: JobId) {
        self.facts.lock().unwrap_or_else(|p| p.into_inner()).job = Some(job);
    }

    fn facts(&self) -> AuditFacts {
        *self.facts.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The table plus what matching needs.
pub struct Router {
    routes: Vec<Route>,
    ids: RequestIds,
    /// Paths made only of literal segments that some pattern starts with
    /// (`/api/ps/output`): a `{param}` never captures such a segment, so
    /// `/api/ps/output` is not taken for pid "output".
    literal_prefixes: Vec<String>,
}

enum Found<'a> {
    Route(&'a Route, Vec<(&'static str, String)>),
    /// The path exists with other methods.
    Method(String),
    /// The path is the start of a route (`/api/ps/output` of
    /// `/api/ps/output/{id}`).
    Incomplete(&'static str),
    None,
}

impl Router {
    pub fn new(routes: Vec<Route>) -> Router {
        let mut literal_prefixes = Vec::new();
        for r in &routes {
            let mut prefix = String::new();
            for seg in segments(r.pattern) {
                if seg.starts_with('{') {
                    break;
                }
                prefix.push('/');
                prefix.push_str(seg);
                if !literal_prefixes.contains(&prefix) {
                    literal_prefixes.push(prefix.clone());
                }
            }
        }
        Router {
            routes,
            ids: RequestIds::new(),
            literal_prefixes,
        }
    }

    /// Every route, in table order.
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    fn find(&self, method: &Method, path: &str) -> Result<Found<'_>, ApiError> {
        let segs: Vec<&str> = segments(path).collect();
        let mut allow: Vec<&str> = Vec::new();
        let want = if method == Method::HEAD {
            &Method::GET
        } else {
            method
        };
        for r in &self.routes {
            let Some(params) = self.capture(r.pattern, &segs)? else {
                continue;
            };
            if r.method == *want {
                return Ok(Found::Route(r, params));
            }
            allow.push(r.method.as_str());
            if r.method == Method::GET {
                allow.push("HEAD");
            }
        }
        if !allow.is_empty() {
            return Ok(Found::Method(allow.join(", ")));
        }
        for r in &self.routes {
            let pat: Vec<&str> = segments(r.pattern).collect();
            if segs.len() < pat.len() && segs.iter().zip(&pat).all(|(s, p)| s == p) {
                return Ok(Found::Incomplete(r.pattern));
            }
        }
        Ok(Found::None)
    }

    /// The parameters of `pattern` in `segs`, if it matches.
    #[allow(clippy::type_complexity)]
    fn capture(
        &self,
        pattern: &'static str,
        segs: &[&str],
    ) -> Result<Option<Vec<(&'static str, String)>>, ApiError> {
        let pat: Vec<&'static str> = segments(pattern).collect();
        if pat.len() != segs.len() {
            return Ok(None);
        }
        let mut params = Vec::new();
        let mut prefix = String::new();
        for (p, s) in pat.iter().zip(segs) {
            prefix.push('/');
            prefix.push_str(s);
            match p.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                Some(name) => {
                    if self.literal_prefixes.contains(&prefix) {
                        return Ok(None);
                    }
                    let v = percent_decode(s, false).ok_or_else(|| {
                        ApiError::InvalidParameter(format!("{name} in the path is not UTF-8"))
                    })?;
                    params.push((name, v));
                }
                None if p == s => {}
                None => return Ok(None),
            }
        }
        Ok(Some(params))
    }

    /// Serves one request; never fails (errors are envelopes). Every
    /// answer carries the request's id in `X-Request-Id`.
    pub async fn handle(
        self: Arc<Self>,
        state: Arc<State>,
        conn: Arc<ConnInfo>,
        req: Request<Incoming>,
    ) -> Response<ResponseBody> {
        let id = self.ids.fresh();
        let began = std::time::Instant::now();
        let method = req.method().clone();
        let path = req.uri().path().to_string();
        let found = self.find(&method, &path);
        let pattern = match &found {
            Ok(Found::Route(route, _)) => Some(route.pattern),
            _ => None,
        };
        let reply = reqid::scope(id, async {
            if let Ok(Found::Route(route, params)) = found {
                return self.run(route, params, &state, &conn, id, req).await;
            }
            if !req.body().is_end_stream() {
                conn.linger_before_close();
            }
            match found {
                Ok(Found::Route(..)) => ApiError::Internal("route lost".into()).into_reply(),
                Ok(Found::Method(allow)) => ApiError::MethodNotAllowed {
                    method: method.to_string(),
                    path,
                    allow,
                }
                .into_reply(),
                Ok(Found::Incomplete(pattern)) => ApiError::RouteNotFound(format!(
                    "no route {path}: it is the start of {pattern}"
                ))
                .into_reply(),
                Ok(Found::None) => ApiError::RouteNotFound(format!("no route {path}")).into_reply(),
                Err(e) => e.into_reply(),
            }
        })
        .await;
        state
            .metrics
            .request(pattern, &method, reply.status.as_u16(), began.elapsed());
        let mut resp = reply.into_response();
        if let Ok(v) = HeaderValue::from_str(&reqid::hex(id)) {
            resp.headers_mut().insert(REQUEST_ID, v);
        }
        resp
    }

    async fn run(
        &self,
        route: &Route,
        params: Vec<(&'static str, String)>,
        state: &Arc<State>,
        conn: &Arc<ConnInfo>,
        request_id: u64,
        req: Request<Incoming>,
    ) -> Reply {
        let (parts, mut body) = req.into_parts();
        let wants_key = match route.scope {
            None => route.key,
            Some(_) if route.key_optional => {
                parts.headers.contains_key(header::AUTHORIZATION) || conn.client_subject.is_some()
            }
            Some(_) => true,
        };
        let mut caller = None;
        let mut how = None;
        let mut failure = None;
        let mut write_line = wants_key;
        if wants_key {
            match authenticate(state, &parts.headers, conn) {
                Ok((c, h)) => {
                    if let Some(scope) = route.scope.filter(|s| !c.scopes.contains(s)) {
                        state.metrics.auth_failure("missing_scope");
                        failure = Some(ApiError::MissingScope {
                            key: c.name.clone(),
                            scope: scope.name(),
                        });
                    }
                    caller = Some(c);
                    how = Some(h);
                }
                Err(why) => {
                    state.metrics.auth_failure(failure_reason(&why));
                    let verdict = state.throttle.failure(conn.peer.ip());
                    if let Some(s) = verdict.ended {
                        state.audit.failures_summary(
                            &s.client,
                            s.not_written,
                            s.failures,
                            crate::throttle::WINDOW.as_secs(),
                        );
                    }
                    write_line = verdict.write_line;
                    failure = Some(match verdict.throttle {
                        Some(retry_after) => ApiError::AuthThrottled(retry_after),
                        None => ApiError::Unauthorized(why),
                    });
                }
            }
        }
        let ctx = Arc::new(Ctx {
            state: state.clone(),
            caller,
            facts: Mutex::default(),
        });
        let mut given = Given::default();
        let result = match failure {
            Some(e) => Err(e),
            None => {
                async {
                    let query = parse_query(parts.uri.query(), route.query)?;
                    let bytes = if route.body {
                        read_body(&mut body, &parts.headers, &state.cfg).await?
                    } else {
                        Bytes::new()
                    };
                    if route.audited {
                        given = Given::from_body(&bytes);
                    }
                    let input = Input {
                        path: params,
                        query,
                        body: bytes,
                        headers: parts.headers.clone(),
                    };
                    (route.handler)(ctx.clone(), input).await
                }
                .await
            }
        };
        if !body.is_end_stream() {
            conn.linger_before_close();
        }
        let (reply, outcome) = match result {
            Ok(r) => (r, "ok".to_string()),
            Err(e) => {
                let outcome = e.to_string();
                (e.into_reply(), outcome)
            }
        };
        if write_line {
            let facts = ctx.facts();
            let route_name = format!("{} {}", route.method, route.pattern);
            state.audit.record(&audit::Entry {
                request_id,
                key: ctx.caller.as_ref().map(|c| c.name.as_str()),
                auth: how,
                client: conn.peer.ip(),
                route: &route_name,
                pid: facts.pid.map(|p| p.get().into()).or(given.pid),
                start_time: facts
                    .start_time
                    .map(|s| s.ticks().into())
                    .or(given.start_time),
                signal: given.signal,
                priority: given.priority,
                command: given.command.as_deref(),
                status: reply.status.as_u16(),
                outcome: &outcome,
                job: facts.job,
            });
        }
        reply
    }
}

/// The `reason` label of a refused authentication, from its message.
fn failure_reason(why: &str) -> &'static str {
    if why.starts_with("missing Authorization") {
        "missing_key"
    } else if why.contains("must be Bearer") {
        "not_bearer"
    } else if why.contains("expired") {
        "expired_key"
    } else if why.contains("revoked") {
        "revoked_key"
    } else if why.contains("certificate") {
        "unknown_certificate"
    } else {
        "invalid_key"
    }
}

fn segments(path: &str) -> impl Iterator<Item = &str> {
    path.trim_end_matches('/').split('/').skip(1)
}

/// The members of a state-changing request's body the audit line shows
/// as given (before any validation, so a refused value is seen too).
#[derive(Debug, Default)]
struct Given {
    pid: Option<Value>,
    start_time: Option<Value>,
    signal: Option<Value>,
    priority: Option<Value>,
    command: Option<String>,
}

impl Given {
    /// Through the handlers' own parser: a body they refuse, a repeated
    /// member's included, shows nothing as given rather than one reading
    /// of it.
    fn from_body(body: &[u8]) -> Given {
        let Ok(Value::Object(mut m)) = parse_body(body) else {
            return Given::default();
        };
        Given {
            pid: m.remove("pid"),
            start_time: m.remove("start_time"),
            signal: m.remove("signal"),
            priority: m.remove("priority"),
            command: m.remove("cmd").map(|c| match c {
                Value::String(s) => s,
                other => other.to_string(),
            }),
        }
    }
}

/// Who the request authenticates as, and how (`bearer` or
/// `certificate`): a bearer key when an `Authorization` header is sent,
/// otherwise the verified client certificate's subject. The error is the
/// 401's message.
fn authenticate(
    state: &State,
    headers: &HeaderMap,
    conn: &ConnInfo,
) -> Result<(Caller, &'static str), String> {
    let failure = |f: AuthFailure| {
        match f {
            AuthFailure::Unknown => "invalid key",
            AuthFailure::Expired => "key expired",
            AuthFailure::Revoked => "key revoked",
        }
        .to_string()
    };
    if let Some(h) = headers.get(header::AUTHORIZATION) {
        let h = h
            .to_str()
            .map_err(|_| "Authorization must be Bearer <key>".to_string())?;
        let token = h
            .strip_prefix("Bearer ")
            .or_else(|| h.strip_prefix("bearer "))
            .ok_or_else(|| "Authorization must be Bearer <key>".to_string())?
            .trim();
        return state
            .keys
            .authenticate(token)
            .map(|c| (c, "bearer"))
            .map_err(failure);
    }
    if let Some(subject) = &conn.client_subject {
        return state
            .keys
            .authenticate_subject(subject)
            .map(|c| (c, "certificate"))
            .map_err(|f| match f {
                // Not the subject itself: the answer need not teach a
                // client how this gateway read its certificate's name.
                AuthFailure::Unknown => {
                    "the client certificate's subject is not a key's cert_subject".to_string()
                }
                f => failure(f),
            });
    }
    Err("missing Authorization: Bearer <key>".into())
}

/// Reads the body: at most [`MAX_BODY`] (a larger `Content-Length` is
/// refused before reading), within `body_timeout_s` in total and, after
/// [`BODY_RATE_GRACE`], at `body_min_rate` bytes per second or faster.
pub async fn read_body(
    body: &mut Incoming,
    headers: &HeaderMap,
    cfg: &Config,
) -> Result<Bytes, ApiError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > MAX_BODY as u64) {
        return Err(ApiError::PayloadTooLarge(MAX_BODY));
    }
    let start = tokio::time::Instant::now();
    let total = start + cfg.body_timeout;
    let rate = cfg.body_min_rate;
    let mut out = Vec::with_capacity(declared.map_or(1024, |n| n as usize));
    let of = |n: usize| match declared {
        Some(d) => format!("{n} of {d} bytes"),
        None => format!("{n} bytes"),
    };
    loop {
        // The next byte is due when the minimum rate says so, and never
        // after the total timeout.
        let by_rate = (rate > 0).then(|| {
            start + BODY_RATE_GRACE + Duration::from_secs_f64((out.len() + 1) as f64 / rate as f64)
        });
        let due = by_rate.map_or(total, |r| r.min(total));
        let frame = match tokio::time::timeout_at(due, body.frame()).await {
            Ok(f) => f,
            Err(_) if due >= total => {
                return Err(ApiError::BodyTimeout(format!(
                    "the body did not arrive within body_timeout_s ({} s): {} came",
                    cfg.body_timeout.as_secs(),
                    of(out.len())
                )))
            }
            Err(_) => {
                return Err(ApiError::BodyTimeout(format!(
                    "the body came slower than body_min_rate ({rate} bytes/s): {} in {:.1} s",
                    of(out.len()),
                    start.elapsed().as_secs_f64()
                )))
            }
        };
        match frame {
            None => break,
            Some(Err(e)) => return Err(ApiError::InvalidJson(format!("reading the body: {e}"))),
            Some(Ok(f)) => {
                if let Ok(data) = f.into_data() {
                    if out.len() + data.len() > MAX_BODY {
                        return Err(ApiError::PayloadTooLarge(MAX_BODY));
                    }
                    out.extend_from_slice(&data);
                }
            }
        }
    }
    Ok(Bytes::from(out))
}
