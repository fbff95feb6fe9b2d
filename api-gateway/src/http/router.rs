//! The route table's engine: one layer that, for every request, finds the
//! route (404, or 405 with `Allow`), authenticates the bearer key and
//! checks the route's scope, checks the query against the route's declared
//! parameters, reads the body under [`MAX_BODY`], calls the handler with a
//! typed request, writes the audit line for state-changing routes, and
//! turns any [`ApiError`] into its envelope. Handlers never do any of that
//! themselves. `HEAD` is served by every `GET` route (hyper sends the
//! head without the body).
//!
//! The table itself is data ([`Route`]), built by `api::table`, so the
//! OpenAPI document and the tests read the same list the server serves.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::{header, Method, Request, Response};
use protocol::JobId;

use super::error::ApiError;
use super::extract::{parse_query, percent_decode, Input, Param};
use super::reply::{Reply, ResponseBody};
use crate::audit;
use crate::ids::{Pid, StartTime};
use crate::keys::{AuthFailure, Caller, Scope};
use crate::state::State;

/// Largest request body accepted.
pub const MAX_BODY: usize = 64 * 1024;

/// What a handler returns.
pub type HandlerFuture = Pin<Box<dyn Future<Output = Result<Reply, ApiError>> + Send>>;

/// A type-erased handler: builds its typed request from the [`Input`] and
/// runs (see [`route!`](crate::route)).
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
    /// Whether a valid key is needed: always with a scope; without one,
    /// only for routes that answer about the key itself (`any_key` in
    /// [`route!`](crate::route)). `/healthz`, the OpenAPI document and the
    /// console's static files need none.
    pub key: bool,
    /// Writes one audit line per request (state-changing routes).
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
/// any scopes).
#[macro_export]
macro_rules! route {
    ($method:ident $pattern:literal, $op:literal, any_key, audited: $audited:expr,
     $handler:path, $req:ty) => {
        $crate::route!(@build $method $pattern, $op, None, true, $audited, $handler, $req)
    };
    ($method:ident $pattern:literal, $op:literal, $scope:expr, audited: $audited:expr,
     $handler:path, $req:ty) => {
        $crate::route!(@build $method $pattern, $op, $scope,
            ::std::option::Option::<$crate::keys::Scope>::is_some(&$scope), $audited, $handler, $req)
    };
    (@build $method:ident $pattern:literal, $op:literal, $scope:expr, $key:expr,
     $audited:expr, $handler:path, $req:ty) => {
        $crate::http::router::Route {
            method: ::hyper::Method::$method,
            pattern: $pattern,
            operation_id: $op,
            scope: $scope,
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
    /// The authenticated key (every route that needs a key has one).
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

    /// Serves one request; never fails (errors are envelopes).
    pub async fn handle(
        self: Arc<Self>,
        state: Arc<State>,
        req: Request<Incoming>,
    ) -> Result<Response<ResponseBody>, std::convert::Infallible> {
        let method = req.method().clone();
        let path = req.uri().path().to_string();
        let reply = match self.find(&method, &path) {
            Ok(Found::Route(route, params)) => self.run(route, params, state, req).await,
            Ok(Found::Method(allow)) => ApiError::MethodNotAllowed {
                method: method.to_string(),
                path,
                allow,
            }
            .into_reply(),
            Ok(Found::Incomplete(pattern)) => {
                ApiError::RouteNotFound(format!("no route {path}: it is the start of {pattern}"))
                    .into_reply()
            }
            Ok(Found::None) => ApiError::RouteNotFound(format!("no route {path}")).into_reply(),
            Err(e) => e.into_reply(),
        };
        Ok(reply.into_response())
    }

    async fn run(
        &self,
        route: &Route,
        params: Vec<(&'static str, String)>,
        state: Arc<State>,
        req: Request<Incoming>,
    ) -> Reply {
        let mut caller = None;
        let input = async {
            if route.key {
                caller = Some(authenticate(&state, &req, route.scope)?);
            }
            let query = parse_query(req.uri().query(), route.query)?;
            let headers = req.headers().clone();
            let body = if route.body {
                read_body(req).await?
            } else {
                Bytes::new()
            };
            Ok::<_, ApiError>(Input {
                path: params,
                query,
                body,
                headers,
            })
        }
        .await;
        let ctx = Arc::new(Ctx {
            state,
            caller,
            facts: Mutex::default(),
        });
        let result = match input {
            Ok(input) => (route.handler)(ctx.clone(), input).await,
            Err(e) => Err(e),
        };
        let (reply, outcome) = match result {
            Ok(r) => (r, "ok".to_string()),
            Err(e) => {
                let outcome = e.to_string();
                (e.into_reply(), outcome)
            }
        };
        if route.audited {
            record(
                &ctx.state,
                route,
                ctx.caller.as_ref(),
                ctx.facts(),
                &reply,
                &outcome,
            );
        }
        reply
    }
}

fn segments(path: &str) -> impl Iterator<Item = &str> {
    path.trim_end_matches('/').split('/').skip(1)
}

/// Bearer key → caller, then the scope, if the route has one.
fn authenticate(
    state: &State,
    req: &Request<Incoming>,
    scope: Option<Scope>,
) -> Result<Caller, ApiError> {
    let h = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| ApiError::Unauthorized("missing Authorization: Bearer <key>".into()))?;
    let token = h
        .strip_prefix("Bearer ")
        .or_else(|| h.strip_prefix("bearer "))
        .ok_or_else(|| ApiError::Unauthorized("Authorization must be Bearer <key>".into()))?
        .trim();
    let caller = state.keys.authenticate(token).map_err(|f| {
        ApiError::Unauthorized(
            match f {
                AuthFailure::Unknown => "invalid key",
                AuthFailure::Expired => "key expired",
                AuthFailure::Revoked => "key revoked",
            }
            .into(),
        )
    })?;
    match scope {
        Some(scope) if !caller.scopes.contains(&scope) => Err(ApiError::MissingScope {
            key: caller.name.clone(),
            scope: scope.name(),
        }),
        _ => Ok(caller),
    }
}

async fn read_body(req: Request<Incoming>) -> Result<Bytes, ApiError> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > MAX_BODY as u64) {
        return Err(ApiError::PayloadTooLarge(MAX_BODY));
    }
    let body = Limited::new(req.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|e| {
            if e.is::<http_body_util::LengthLimitError>() {
                ApiError::PayloadTooLarge(MAX_BODY)
            } else {
                ApiError::InvalidJson(format!("reading the body: {e}"))
            }
        })?;
    Ok(body.to_bytes())
}

/// Writes the audit line of one request to an audited route.
fn record(
    state: &State,
    route: &Route,
    caller: Option<&Caller>,
    facts: AuditFacts,
    r: &Reply,
    outcome: &str,
) {
    let route_name = format!("{} {}", route.method, route.pattern);
    state.audit.record(&audit::Entry {
        key: caller.map_or("-", |c| c.name.as_str()),
        route: &route_name,
        pid: facts.pid,
        start_time: facts.start_time,
        status: r.status.as_u16(),
        outcome,
        job: facts.job,
    });
}
