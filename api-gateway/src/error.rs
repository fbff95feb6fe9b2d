//! The one error type of the HTTP layer and its single mapping to a
//! response: status, a specific snake_case `code`, the error envelope
//! (written by [`crate::reply`]), `WWW-Authenticate: Bearer` on 401,
//! `Allow` on 405 and `Retry-After` on 429 and 503. Every refusal goes
//! through here, so a known condition is never a 500 and the status table
//! in the README, the OpenAPI `Error.code` enum and the code cannot drift
//! (see [`ApiError::CODES`] and its test).

use hyper::header::{self, HeaderValue};
use hyper::StatusCode;
use protocol::JobId;

use crate::ids::{Pid, StartTime};
use crate::reply::{Envelope, Reply};

/// Seconds a client should wait before retrying a 429 (the helper is at
/// its job limit; jobs last seconds) or a 503 (the helper is restarting).
pub const RETRY_AFTER_BUSY_S: u32 = 2;
pub const RETRY_AFTER_UNAVAILABLE_S: u32 = 1;
/// Seconds before retrying a connection refused at a connection cap.
pub const RETRY_AFTER_CONNECTIONS_S: u32 = 1;

/// Everything a request can fail with. Variants carry the facts the
/// message needs (which pid, which rule and its value, which parameter).
#[derive(Debug, Clone, thiserror::Error)]
pub enum ApiError {
    /// The HTTP request itself could not be parsed (hyper refused it).
    #[error("malformed HTTP request: {0}")]
    MalformedHttp(String),
    /// Plain HTTP arrived on the TLS port.
    #[error("this port speaks HTTPS (TLS); this request came in plain HTTP: use https://")]
    TlsRequired,
    /// The body is not JSON or not a JSON object.
    #[error("{0}")]
    InvalidJson(String),
    /// The body has a member the route does not take.
    #[error("{0}")]
    UnknownField(String),
    /// An object in the body names a member twice.
    #[error("{0}")]
    DuplicateField(String),
    /// A body member is missing, `null`, of the wrong type or out of range.
    #[error("{0}")]
    InvalidField(String),
    /// `require_start_time` is on and the body has no `start_time`.
    #[error("start_time is required by this gateway's configuration (require_start_time = true): list the process and send its start_time with the pid")]
    StartTimeRequired,
    /// A query parameter the route does not take.
    #[error("unknown query parameter {name:?}; this route takes {accepted}")]
    UnknownParameter { name: String, accepted: String },
    /// A query or path parameter that is empty, repeated or malformed.
    #[error("{0}")]
    InvalidParameter(String),
    /// The helper found the request malformed (e.g. a timeout over the
    /// policy's ceiling); its text is in the API's units.
    #[error("{0}")]
    InvalidRequest(String),
    #[error("{0}")]
    Unauthorized(String),
    /// The key is valid but lacks the route's scope.
    #[error("key {key:?} lacks the {scope:?} scope this route needs")]
    MissingScope { key: String, scope: &'static str },
    /// The helper's policy or a built-in protection refused; `detail` is
    /// the rule with its value (`renice.min_nice is 0`).
    #[error("refused by the helper's {rule} rule: {detail}")]
    PolicyDenied { rule: String, detail: String },
    /// The process belongs to a job another key started (a job's processes
    /// belong to the key that started it).
    #[error(
        "pid {0} belongs to a job another key started; only that key or an admin key may act on it"
    )]
    OtherKeysJob(Pid),
    #[error("{0}")]
    RouteNotFound(String),
    #[error("no process with pid {0} (it may have exited)")]
    NoSuchProcess(Pid),
    #[error("pid {0} is a thread of another process, not a process; nothing was done")]
    NotAProcess(Pid),
    #[error("no user {0:?} (neither a name in the passwd database nor a numeric uid)")]
    NoSuchUser(String),
    #[error("no output {0} for this key")]
    NoSuchOutput(JobId),
    #[error("no job {0} for this key")]
    NoSuchJob(JobId),
    /// No planned action with that id for this key (unknown, expired,
    /// executed already, or another key's).
    #[error("no plan {0} for this key (plans expire 60 s after they are made and execute once)")]
    PlanNotFound(String),
    #[error("{method} is not allowed on {path}; allowed: {allow}")]
    MethodNotAllowed {
        method: String,
        path: String,
        allow: String,
    },
    #[error("the request head was not complete within {0} s")]
    RequestTimeout(u64),
    /// The body did not arrive in time, or slower than the minimum rate;
    /// the message says which and how much had come.
    #[error("{0}")]
    BodyTimeout(String),
    #[error("pid {pid} no longer has start_time {start_time}: the pid now names another process; nothing was done")]
    IdentityChanged { pid: Pid, start_time: StartTime },
    /// `expect_count` is not the plan's number of targets: nothing acted on.
    #[error("the plan has {planned} targets, not the {expected} expect_count says; nothing was done (plan again)")]
    CountChanged { expected: usize, planned: usize },
    #[error("request body over {0} bytes")]
    PayloadTooLarge(usize),
    /// A plan's selector matched no process and `allow_empty` was not set.
    #[error("the selector matches no process that may be a target; nothing was planned (allow_empty: true plans an empty action)")]
    EmptyMatch,
    /// A plan's selector matched more processes than it may act on.
    #[error("the selector matches {count} processes, more than max_targets {max}; narrow it or raise max_targets (at most {cap})")]
    TooManyTargets {
        count: usize,
        max: usize,
        cap: usize,
    },
    #[error("request target (URI) too long")]
    UriTooLong,
    /// A `Range` that starts at or past the end of the output.
    #[error("range not satisfiable: the output has {len} bytes")]
    RangeNotSatisfiable { len: u64 },
    #[error("the helper is running its maximum number of jobs; retry in {RETRY_AFTER_BUSY_S} s")]
    Busy,
    /// The key runs as many jobs as one key may (`key_max_running_jobs`),
    /// so that it cannot hold every slot of the helper.
    #[error("key {key:?} runs {running} jobs and key_max_running_jobs is {limit}; retry when one of them ends (in {RETRY_AFTER_BUSY_S} s or more), or cancel one")]
    KeyBusy {
        key: String,
        running: usize,
        limit: usize,
    },
    /// This client address holds `max_connections_per_client` already.
    #[error("this client already holds {0} connections, the most one address may; close one or retry in {RETRY_AFTER_CONNECTIONS_S} s")]
    ClientConnections(usize),
    /// Too many refused authentications from this address this minute.
    #[error("too many failed authentications from this address; retry in {0} s")]
    AuthThrottled(u64),
    #[error("request headers over {0} bytes (or over 100 header lines)")]
    HeadersTooLarge(usize),
    /// Starting a job could take stored output over `output_quota`.
    #[error("output quota full: stored and reserved output is {committed} bytes, this job may write {needed} more, output_quota is {quota}; wait for jobs to expire (output_retention) or raise output_quota")]
    OutputQuotaFull {
        committed: u64,
        needed: u64,
        quota: u64,
    },
    /// Starting a job could take the key's own output over
    /// `key_output_quota`.
    #[error("output quota of key {key:?} full: its stored and reserved output is {committed} bytes, this job may write {needed} more, its key_output_quota is {quota}; delete finished jobs (DELETE /api/jobs/{{id}}), wait for them to expire (output_retention) or raise key_output_quota")]
    KeyOutputQuotaFull {
        key: String,
        committed: u64,
        needed: u64,
        quota: u64,
    },
    #[error("helper error: {0}")]
    BadGateway(String),
    #[error("helper unreachable: {0}")]
    Unavailable(String),
    /// `max_connections` reached.
    #[error("the gateway holds its maximum number of connections; retry in {RETRY_AFTER_CONNECTIONS_S} s")]
    ServerFull,
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// Every `code` the API can answer with, in status order; the OpenAPI
    /// `Error.code` enum is this list.
    pub const CODES: &'static [&'static str] = &[
        "malformed_request",
        "tls_required",
        "invalid_json",
        "unknown_field",
        "duplicate_field",
        "invalid_field",
        "start_time_required",
        "unknown_parameter",
        "invalid_parameter",
        "invalid_request",
        "unauthorized",
        "missing_scope",
        "policy_denied",
        "other_key_job",
        "route_not_found",
        "no_such_process",
        "not_a_process",
        "no_such_user",
        "no_such_output",
        "no_such_job",
        "plan_not_found",
        "method_not_allowed",
        "request_timeout",
        "body_timeout",
        "identity_changed",
        "count_changed",
        "payload_too_large",
        "uri_too_long",
        "range_not_satisfiable",
        "empty_match",
        "too_many_targets",
        "busy",
        "key_busy",
        "too_many_client_connections",
        "too_many_auth_failures",
        "headers_too_large",
        "internal",
        "output_quota_full",
        "key_output_quota_full",
        "helper_error",
        "helper_unavailable",
        "too_many_connections",
    ];

    pub fn status(&self) -> StatusCode {
        use ApiError as E;
        match self {
            E::MalformedHttp(_)
            | E::TlsRequired
            | E::InvalidJson(_)
            | E::UnknownField(_)
            | E::DuplicateField(_)
            | E::InvalidField(_)
            | E::StartTimeRequired
            | E::UnknownParameter { .. }
            | E::InvalidParameter(_)
            | E::InvalidRequest(_) => StatusCode::BAD_REQUEST,
            E::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            E::MissingScope { .. } | E::PolicyDenied { .. } | E::OtherKeysJob(_) => {
                StatusCode::FORBIDDEN
            }
            E::RouteNotFound(_)
            | E::NoSuchProcess(_)
            | E::NotAProcess(_)
            | E::NoSuchUser(_)
            | E::NoSuchOutput(_)
            | E::NoSuchJob(_)
            | E::PlanNotFound(_) => StatusCode::NOT_FOUND,
            E::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            E::RequestTimeout(_) | E::BodyTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            E::IdentityChanged { .. } | E::CountChanged { .. } => StatusCode::CONFLICT,
            E::EmptyMatch | E::TooManyTargets { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            E::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            E::UriTooLong => StatusCode::URI_TOO_LONG,
            E::RangeNotSatisfiable { .. } => StatusCode::RANGE_NOT_SATISFIABLE,
            E::OutputQuotaFull { .. } | E::KeyOutputQuotaFull { .. } => {
                StatusCode::INSUFFICIENT_STORAGE
            }
            E::Busy | E::KeyBusy { .. } | E::ClientConnections(_) | E::AuthThrottled(_) => {
                StatusCode::TOO_MANY_REQUESTS
            }
            E::HeadersTooLarge(_) => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            E::BadGateway(_) => StatusCode::BAD_GATEWAY,
            E::Unavailable(_) | E::ServerFull => StatusCode::SERVICE_UNAVAILABLE,
            E::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Stable snake_case code for clients (one of [`ApiError::CODES`]).
    pub fn code(&self) -> &'static str {
        use ApiError as E;
        match self {
            E::MalformedHttp(_) => "malformed_request",
            E::TlsRequired => "tls_required",
            E::InvalidJson(_) => "invalid_json",
            E::UnknownField(_) => "unknown_field",
            E::DuplicateField(_) => "duplicate_field",
            E::InvalidField(_) => "invalid_field",
            E::StartTimeRequired => "start_time_required",
            E::UnknownParameter { .. } => "unknown_parameter",
            E::InvalidParameter(_) => "invalid_parameter",
            E::InvalidRequest(_) => "invalid_request",
            E::Unauthorized(_) => "unauthorized",
            E::MissingScope { .. } => "missing_scope",
            E::PolicyDenied { .. } => "policy_denied",
            E::OtherKeysJob(_) => "other_key_job",
            E::RouteNotFound(_) => "route_not_found",
            E::NoSuchProcess(_) => "no_such_process",
            E::NotAProcess(_) => "not_a_process",
            E::NoSuchUser(_) => "no_such_user",
            E::NoSuchOutput(_) => "no_such_output",
            E::NoSuchJob(_) => "no_such_job",
            E::PlanNotFound(_) => "plan_not_found",
            E::CountChanged { .. } => "count_changed",
            E::EmptyMatch => "empty_match",
            E::TooManyTargets { .. } => "too_many_targets",
            E::MethodNotAllowed { .. } => "method_not_allowed",
            E::RequestTimeout(_) => "request_timeout",
            E::BodyTimeout(_) => "body_timeout",
            E::IdentityChanged { .. } => "identity_changed",
            E::PayloadTooLarge(_) => "payload_too_large",
            E::UriTooLong => "uri_too_long",
            E::RangeNotSatisfiable { .. } => "range_not_satisfiable",
            E::OutputQuotaFull { .. } => "output_quota_full",
            E::KeyOutputQuotaFull { .. } => "key_output_quota_full",
            E::Busy => "busy",
            E::KeyBusy { .. } => "key_busy",
            E::ClientConnections(_) => "too_many_client_connections",
            E::AuthThrottled(_) => "too_many_auth_failures",
            E::HeadersTooLarge(_) => "headers_too_large",
            E::BadGateway(_) => "helper_error",
            E::Unavailable(_) => "helper_unavailable",
            E::ServerFull => "too_many_connections",
            E::Internal(_) => "internal",
        }
    }

    /// The HTTP answer; the only place an error becomes a response.
    pub fn into_reply(self) -> Reply {
        let mut env = Envelope::error(self.code(), &self.to_string());
        if let ApiError::PolicyDenied { rule, .. } = &self {
            env = env.member("rule", rule);
        }
        let mut reply = env.finish(self.status());
        let value = match &self {
            ApiError::Unauthorized(_) => Some((header::WWW_AUTHENTICATE, "Bearer".to_string())),
            ApiError::MethodNotAllowed { allow, .. } => Some((header::ALLOW, allow.clone())),
            ApiError::Busy | ApiError::KeyBusy { .. } => {
                Some((header::RETRY_AFTER, RETRY_AFTER_BUSY_S.to_string()))
            }
            ApiError::Unavailable(_) => {
                Some((header::RETRY_AFTER, RETRY_AFTER_UNAVAILABLE_S.to_string()))
            }
            ApiError::RangeNotSatisfiable { len } => {
                Some((header::CONTENT_RANGE, format!("bytes */{len}")))
            }
            ApiError::ClientConnections(_) | ApiError::ServerFull => {
                Some((header::RETRY_AFTER, RETRY_AFTER_CONNECTIONS_S.to_string()))
            }
            ApiError::AuthThrottled(s) => Some((header::RETRY_AFTER, s.to_string())),
            _ => None,
        };
        if let Some((name, v)) = value {
            if let Ok(v) = HeaderValue::from_str(&v) {
                reply.headers.push((name, v));
            }
        }
        reply
    }
}

impl From<crate::reply::EncodeError> for ApiError {
    fn from(e: crate::reply::EncodeError) -> ApiError {
        ApiError::Internal(e.0)
    }
}

impl From<crate::procs::ProcError> for ApiError {
    fn from(e: crate::procs::ProcError) -> ApiError {
        use crate::procs::ProcError as P;
        match e {
            P::NoSuchProcess(p) => ApiError::NoSuchProcess(p),
            P::NotAProcess(p) => ApiError::NotAProcess(p),
            P::Io(e) => ApiError::Internal(format!("reading /proc: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every_variant() -> Vec<ApiError> {
        let pid = Pid::new(42).expect("42 is a pid");
        vec![
            ApiError::MalformedHttp("x".into()),
            ApiError::TlsRequired,
            ApiError::InvalidJson("x".into()),
            ApiError::UnknownField("x".into()),
            ApiError::DuplicateField("x".into()),
            ApiError::InvalidField("x".into()),
            ApiError::StartTimeRequired,
            ApiError::UnknownParameter {
                name: "x".into(),
                accepted: "y".into(),
            },
            ApiError::InvalidParameter("x".into()),
            ApiError::InvalidRequest("x".into()),
            ApiError::Unauthorized("x".into()),
            ApiError::MissingScope {
                key: "k".into(),
                scope: "read",
            },
            ApiError::PolicyDenied {
                rule: "renice.min_nice".into(),
                detail: "renice.min_nice is 0".into(),
            },
            ApiError::OtherKeysJob(pid),
            ApiError::RouteNotFound("x".into()),
            ApiError::NoSuchProcess(pid),
            ApiError::NotAProcess(pid),
            ApiError::NoSuchUser("x".into()),
            ApiError::NoSuchOutput(JobId([0; 16])),
            ApiError::NoSuchJob(JobId([0; 16])),
            ApiError::PlanNotFound("x".into()),
            ApiError::MethodNotAllowed {
                method: "PUT".into(),
                path: "/api/ps".into(),
                allow: "GET".into(),
            },
            ApiError::RequestTimeout(10),
            ApiError::BodyTimeout("x".into()),
            ApiError::IdentityChanged {
                pid,
                start_time: StartTime::from_ticks(7),
            },
            ApiError::CountChanged {
                expected: 1,
                planned: 2,
            },
            ApiError::PayloadTooLarge(1),
            ApiError::UriTooLong,
            ApiError::RangeNotSatisfiable { len: 3 },
            ApiError::EmptyMatch,
            ApiError::TooManyTargets {
                count: 3,
                max: 2,
                cap: 256,
            },
            ApiError::Busy,
            ApiError::KeyBusy {
                key: "k".into(),
                running: 2,
                limit: 2,
            },
            ApiError::ClientConnections(1),
            ApiError::AuthThrottled(1),
            ApiError::HeadersTooLarge(1),
            ApiError::Internal("x".into()),
            ApiError::OutputQuotaFull {
                committed: 1,
                needed: 2,
                quota: 2,
            },
            ApiError::KeyOutputQuotaFull {
                key: "k".into(),
                committed: 1,
                needed: 2,
                quota: 2,
            },
            ApiError::BadGateway("x".into()),
            ApiError::Unavailable("x".into()),
            ApiError::ServerFull,
        ]
    }

    #[test]
    fn every_variant_has_a_listed_code_and_the_list_has_no_stale_entry() {
        let all = every_variant();
        let codes: Vec<&str> = all.iter().map(ApiError::code).collect();
        assert_eq!(codes, ApiError::CODES);
    }

    #[test]
    fn every_error_is_an_envelope_with_the_headers_its_status_needs() {
        for e in every_variant() {
            let (status, code) = (e.status(), e.code());
            let r = e.into_reply();
            assert_eq!(r.status, status);
            let v: serde_json::Value = serde_json::from_slice(&r.body).expect("JSON");
            assert_eq!(v["result"], "error");
            assert_eq!(v["code"], code);
            assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()));
            let has = |h: &header::HeaderName| r.headers.iter().any(|(n, _)| n == h);
            match status.as_u16() {
                401 => assert!(has(&header::WWW_AUTHENTICATE)),
                405 => assert!(has(&header::ALLOW)),
                429 | 503 => assert!(has(&header::RETRY_AFTER), "{code}"),
                _ => {}
            }
        }
    }

    #[test]
    fn a_policy_refusal_names_the_rule_and_its_value() {
        let e = ApiError::PolicyDenied {
            rule: "renice.min_nice".into(),
            detail: "renice.min_nice is 0".into(),
        };
        assert!(e.to_string().contains("min_nice is 0"), "{e}");
        let v: serde_json::Value = serde_json::from_slice(&e.into_reply().body).expect("JSON");
        assert_eq!(v["rule"], "renice.min_nice");
    }
}
