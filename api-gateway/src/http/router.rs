//! The route table's engine: one layer that, for every request, gives it
//! an id (`X-Request-Id`, the audit line, the helper's frame), finds the
//! route (404, or 405 with `Allow`), then runs the same stages in order
//! ([`Router::run`]): who is asking ([`Authenticator`]: a bearer key, or
//! a verified client certificate mapped to a key) and whether the route's
//! scope lets them, counting refused authentications per client address
//! (429 past `auth_failures_per_minute`); the query against the route's
//! declared parameters and the body under [`MAX_BODY`] within the body
//! timeouts; the handler with a typed request; the audit line of every
//! authenticated or refused request ([`AuditSink`]); and any [`ApiError`]
//! turned into its envelope. Handlers never do any of that themselves.
//! `HEAD` is served by every `GET` route (hyper sends the head without
//! the body).
//!
//! What a request is about (a process, a job) is not known here: the
//! router is generic over the context its handlers get (`C`), made per
//! request by the application ([`Hooks::context`]), and the audit sink
//! reads what a handler noted there. The table itself is data
//! ([`Route`]), built by `api::table_with`, so the OpenAPI document and
//! the tests read the same list the server serves.

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body, Incoming};
use hyper::header::{HeaderMap, HeaderName, HeaderValue};
use hyper::http::request::Parts;
use hyper::{header, Method, Request, Response};

use super::connstate::ConnInfo;
use super::extract::{parse_query, percent_decode, Input, Param};
use crate::error::ApiError;
use crate::keys::{AuthFailure, Caller, Scope};
use crate::reply::{Reply, ResponseBody};
use crate::reqid::{self, RequestIds};
use crate::throttle::{AuthThrottle, Summary};
use crate::x509::Subject;

/// Largest request body accepted.
pub const MAX_BODY: usize = crate::budget::MAX_BODY;

/// Time a body has before `body_min_rate` starts to count.
pub const BODY_RATE_GRACE: Duration = Duration::from_secs(2);

/// The response header that carries the request id.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// What a handler returns.
pub type HandlerFuture = Pin<Box<dyn Future<Output = Result<Reply, ApiError>> + Send>>;

/// A type-erased handler: builds its typed request from the [`Input`] and
/// runs with the request's context (see [`route!`](route)).
pub type Handler<C> = fn(Arc<C>, &Input) -> HandlerFuture;

/// One line of the route table.
pub struct Route<C> {
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
    pub handler: Handler<C>,
}

/// Builds a [`Route`] whose handler is `async fn(&C, Req) -> Result<Reply,
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
                let req = <$req as $crate::http::extract::FromInput>::from_input(input);
                ::std::boxed::Box::pin(async move { $handler(&cx, req?).await })
            },
        }
    };
}
pub(crate) use route;

/// Who a credential names. The key store implements it; the router knows
/// only this, so the HTTP layer reads no keys file.
pub trait Authenticator: Send + Sync {
    /// The key whose token this is.
    fn by_token(&self, token: &str) -> Result<Caller, AuthFailure>;
    /// The key whose `cert_subject` a verified client certificate has.
    fn by_subject(&self, subject: &Subject) -> Result<Caller, AuthFailure>;
}

/// What the router knows of an answered request when it writes its audit
/// line; the rest (the process or job it was about) is in the handler's
/// context.
pub struct Exchange<'a> {
    pub request_id: u64,
    pub key: Option<&'a str>,
    /// `bearer` or `certificate`, when a key was presented.
    pub auth: Option<&'static str>,
    pub client: IpAddr,
    /// `POST /api/ps`.
    pub route: &'a str,
    /// The route is state-changing ([`Route::audited`]).
    pub audited: bool,
    pub status: u16,
    /// `ok`, or the error's message.
    pub outcome: &'a str,
}

/// Where the audit lines go. Implemented by the layer that knows what the
/// requests are about, so that their line can say it.
pub trait AuditSink<C>: Send + Sync {
    /// One authenticated or refused request. `input` is what the handler
    /// was given, `None` when the request was refused before it was read.
    fn record(&self, exchange: &Exchange<'_>, cx: &C, input: Option<&Input>);
    /// The refused authentications from one client address that were
    /// counted but not written one by one.
    fn refusals(&self, summary: &Summary);
}

/// What the router and the connections count; implemented outside the
/// HTTP layer by the metrics.
pub trait Meter: Send + Sync {
    /// One answered request: the table's pattern (`None`: no route), the
    /// method, the status and how long it took.
    fn request(&self, route: Option<&str>, method: &Method, status: u16, took: Duration);
    /// A refused authentication or a missing scope, by reason.
    fn auth_failure(&self, reason: &'static str);
    /// Counts an open connection until the returned guard is dropped.
    fn connection(&self) -> Box<dyn Send>;
}

/// The body limits of every request: `body_timeout_s` and
/// `body_min_rate` (bytes per second, 0: none).
#[derive(Debug, Clone, Copy)]
pub struct BodyLimits {
    pub timeout: Duration,
    pub min_rate: u64,
}

/// What the router is handed besides its table: the stages it runs that
/// are not HTTP's own.
pub struct Hooks<C> {
    pub keys: Arc<dyn Authenticator>,
    pub audit: Arc<dyn AuditSink<C>>,
    pub meter: Arc<dyn Meter>,
    /// The context a handler gets, for a request by `caller` (`None`: no
    /// credentials were needed or sent).
    pub context: Box<dyn Fn(Option<Caller>) -> C + Send + Sync>,
    /// Refused authentications per client address.
    pub throttle: AuthThrottle,
    pub body: BodyLimits,
}

/// Who asked, as the authentication stage found it.
struct Admitted {
    caller: Option<Caller>,
    /// `bearer` or `certificate`.
    how: Option<&'static str>,
    /// Why the request is refused before its handler runs.
    refused: Option<ApiError>,
    /// Whether the request gets an audit line (a refused authentication
    /// past the throttle's lines per window does not).
    audit: bool,
}

/// The table plus what matching needs, and the hooks its stages call.
pub struct Router<C> {
    routes: Vec<Route<C>>,
    ids: RequestIds,
    /// Paths made only of literal segments that some pattern starts with
    /// (`/api/ps/output`): a `{param}` never captures such a segment, so
    /// `/api/ps/output` is not taken for pid "output".
    literal_prefixes: Vec<String>,
    hooks: Hooks<C>,
}

enum Found<'a, C> {
    Route(&'a Route<C>, Vec<(&'static str, String)>),
    /// The path exists with other methods.
    Method(String),
    /// The path is the start of a route (`/api/ps/output` of
    /// `/api/ps/output/{id}`).
    Incomplete(&'static str),
    None,
}

impl<C: Send + Sync + 'static> Router<C> {
    pub fn new(routes: Vec<Route<C>>, hooks: Hooks<C>) -> Router<C> {
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
            hooks,
        }
    }

    /// The counters the connections report to.
    pub fn meter(&self) -> &dyn Meter {
        &*self.hooks.meter
    }

    /// Writes the audit summaries of the refused authentications whose
    /// window ended; with `all`, of every window (at shutdown).
    pub fn summarise_refusals(&self, all: bool) {
        let throttle = &self.hooks.throttle;
        let ended = if all {
            throttle.flush()
        } else {
            throttle.sweep()
        };
        for s in ended {
            self.hooks.audit.refusals(&s);
        }
    }

    /// Every route, in table order.
    pub fn routes(&self) -> &[Route<C>] {
        &self.routes
    }

    fn find(&self, method: &Method, path: &str) -> Result<Found<'_, C>, ApiError> {
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
                return self.run(route, params, &conn, id, req).await;
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
        self.hooks
            .meter
            .request(pattern, &method, reply.status.as_u16(), began.elapsed());
        let mut resp = reply.into_response();
        if let Ok(v) = HeaderValue::from_str(&reqid::hex(id)) {
            resp.headers_mut().insert(REQUEST_ID, v);
        }
        resp
    }

    /// A matched request through its stages: who asks and may they
    /// ([`Router::admit`]), what they send ([`Router::input`]), the
    /// handler, and the audit line ([`Router::audit`]).
    async fn run(
        &self,
        route: &Route<C>,
        params: Vec<(&'static str, String)>,
        conn: &Arc<ConnInfo>,
        request_id: u64,
        req: Request<Incoming>,
    ) -> Reply {
        let (parts, mut body) = req.into_parts();
        let admitted = self.admit(route, &parts.headers, conn);
        let key = admitted.caller.as_ref().map(|c| c.name.clone());
        let cx = Arc::new((self.hooks.context)(admitted.caller));
        let mut input = None;
        let result = match admitted.refused {
            Some(e) => Err(e),
            None => match self.input(route, params, &parts, &mut body).await {
                Ok(i) => (route.handler)(cx.clone(), input.insert(i)).await,
                Err(e) => Err(e),
            },
        };
        if !body.is_end_stream() {
            conn.linger_before_close();
        }
        let (reply, outcome) = match result {
            // An error envelope a handler wrote itself, with members of
            // its own (`/healthz`'s 503), is audited by its message, as
            // an error returned is.
            Ok(r) if r.status.is_client_error() || r.status.is_server_error() => {
                let outcome = serde_json::from_slice::<serde_json::Value>(&r.body)
                    .ok()
                    .and_then(|v| v["message"].as_str().map(str::to_string))
                    .unwrap_or_else(|| r.status.to_string());
                (r, outcome)
            }
            Ok(r) => (r, "ok".to_string()),
            Err(e) => {
                let outcome = e.to_string();
                (e.into_reply(), outcome)
            }
        };
        if admitted.audit {
            let route_name = format!("{} {}", route.method, route.pattern);
            let exchange = Exchange {
                request_id,
                key: key.as_deref(),
                auth: admitted.how,
                client: conn.peer.ip(),
                route: &route_name,
                audited: route.audited,
                status: reply.status.as_u16(),
                outcome: &outcome,
            };
            self.audit(&exchange, &cx, input.as_ref());
        }
        reply
    }

    /// Authentication, the scope check and the refused-authentication
    /// throttle. A route without a scope asks for no key (unless it
    /// answers about the key itself); one whose key is optional
    /// authenticates only a request that brings credentials.
    fn admit(&self, route: &Route<C>, headers: &HeaderMap, conn: &ConnInfo) -> Admitted {
        let wants_key = match route.scope {
            None => route.key,
            Some(_) if route.key_optional => {
                headers.contains_key(header::AUTHORIZATION) || conn.client_subject.is_some()
            }
            Some(_) => true,
        };
        let mut admitted = Admitted {
            caller: None,
            how: None,
            refused: None,
            audit: wants_key,
        };
        if !wants_key {
            return admitted;
        }
        let meter = &self.hooks.meter;
        match authenticate(&*self.hooks.keys, headers, conn) {
            Ok((c, h)) => {
                if let Some(scope) = route.scope.filter(|s| !c.scopes.contains(s)) {
                    meter.auth_failure("missing_scope");
                    admitted.refused = Some(ApiError::MissingScope {
                        key: c.name.clone(),
                        scope: scope.name(),
                    });
                }
                admitted.caller = Some(c);
                admitted.how = Some(h);
            }
            Err(why) => {
                meter.auth_failure(failure_reason(&why));
                let verdict = self.hooks.throttle.failure(conn.peer.ip());
                if let Some(s) = verdict.ended {
                    self.hooks.audit.refusals(&s);
                }
                admitted.audit = verdict.write_line;
                admitted.refused = Some(match verdict.throttle {
                    Some(retry_after) => ApiError::AuthThrottled(retry_after),
                    None => ApiError::Unauthorized(why),
                });
            }
        }
        admitted
    }

    /// The query checked against the route's parameters, and the body
    /// read within its limits (when the route takes one).
    async fn input(
        &self,
        route: &Route<C>,
        params: Vec<(&'static str, String)>,
        parts: &Parts,
        body: &mut Incoming,
    ) -> Result<Input, ApiError> {
        let query = parse_query(parts.uri.query(), route.query)?;
        let bytes = if route.body {
            read_body(body, &parts.headers, self.hooks.body).await?
        } else {
            Bytes::new()
        };
        Ok(Input::new(params, query, bytes, parts.headers.clone()))
    }

    /// The request's audit line, with what its handler noted in `cx`.
    fn audit(&self, exchange: &Exchange<'_>, cx: &C, input: Option<&Input>) {
        self.hooks.audit.record(exchange, cx, input);
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

/// Who the request authenticates as, and how (`bearer` or
/// `certificate`): a bearer key when an `Authorization` header is sent,
/// otherwise the verified client certificate's subject. The error is the
/// 401's message.
fn authenticate(
    keys: &dyn Authenticator,
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
        return keys.by_token(token).map(|c| (c, "bearer")).map_err(failure);
    }
    if let Some(subject) = &conn.client_subject {
        return keys
            .by_subject(subject)
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
    limits: BodyLimits,
) -> Result<Bytes, ApiError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > MAX_BODY as u64) {
        return Err(ApiError::PayloadTooLarge(MAX_BODY));
    }
    let start = tokio::time::Instant::now();
    let total = start + limits.timeout;
    let rate = limits.min_rate;
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
                    limits.timeout.as_secs(),
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
