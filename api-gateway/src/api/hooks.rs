//! The router's hooks as this gateway fills them: the key store
//! authenticates, the metrics count, and the audit log takes one line per
//! request with what the request was about (the members of a
//! state-changing body as given, and the handler's [`AuditFacts`]). Here,
//! above both, so that neither `http/` knows keys files, metrics or
//! processes nor `keys`, `metrics` or `audit` know the router.

use std::sync::Arc;
use std::time::Duration;

use hyper::Method;
use serde_json::Value;

use super::ctx::{AuditFacts, Ctx};
use crate::audit::{self, Audit};
use crate::http::extract::Input;
use crate::http::router::{
    AuditSink, Authenticator, BodyLimits, Exchange, Hooks, Meter, Route, Router,
};
use crate::keys::{AuthFailure, Caller, KeyStore};
use crate::metrics::Metrics;
use crate::state::State;
use crate::throttle::{self, AuthThrottle, Summary};
use crate::x509::Subject;

/// The router over `routes`, its handlers seeing `state`, its lines going
/// to `audit`.
pub fn router(
    routes: Vec<Route<Ctx>>,
    state: Arc<State>,
    keys: KeyStore,
    audit: Audit,
) -> Router<Ctx> {
    let cfg = &state.cfg;
    let hooks = Hooks {
        keys: Arc::new(keys),
        audit: Arc::new(audit),
        meter: state.metrics.clone(),
        throttle: AuthThrottle::new(cfg.auth_failures_per_minute),
        body: BodyLimits {
            timeout: cfg.body_timeout,
            min_rate: cfg.body_min_rate,
        },
        context: Box::new(move |caller| Ctx::new(state.clone(), caller)),
    };
    Router::new(routes, hooks)
}

impl Authenticator for KeyStore {
    fn by_token(&self, token: &str) -> Result<Caller, AuthFailure> {
        self.authenticate(token)
    }

    fn by_subject(&self, subject: &Subject) -> Result<Caller, AuthFailure> {
        self.authenticate_subject(subject)
    }
}

impl Meter for Metrics {
    fn request(&self, route: Option<&str>, method: &Method, status: u16, took: Duration) {
        Metrics::request(self, route, method, status, took);
    }

    fn auth_failure(&self, reason: &'static str) {
        Metrics::auth_failure(self, reason);
    }

    fn connection(&self) -> Box<dyn Send> {
        Box::new(Metrics::connection(self))
    }
}

impl AuditSink<Ctx> for Audit {
    fn record(&self, x: &Exchange<'_>, cx: &Ctx, input: Option<&Input>) {
        let given = match input {
            Some(input) if x.audited => Given::from_body(input),
            _ => Given::default(),
        };
        let facts: AuditFacts = cx.facts();
        Audit::record(
            self,
            &audit::Entry {
                request_id: x.request_id,
                key: x.key,
                auth: x.auth,
                client: x.client,
                route: x.route,
                pid: facts.pid.map(|p| p.get().into()).or(given.pid),
                start_time: facts
                    .start_time
                    .map(|s| s.ticks().into())
                    .or(given.start_time),
                signal: given.signal,
                priority: given.priority,
                command: given.command.as_deref(),
                status: x.status,
                outcome: x.outcome,
                job: facts.job,
            },
        );
        // A group action: one more line per target, joined by request id.
        for (pid, start_time, outcome) in &facts.outcomes {
            Audit::record(
                self,
                &audit::Entry {
                    request_id: x.request_id,
                    key: x.key,
                    auth: x.auth,
                    client: x.client,
                    route: x.route,
                    pid: Some(pid.get().into()),
                    start_time: Some(start_time.ticks().into()),
                    signal: None,
                    priority: None,
                    command: None,
                    status: x.status,
                    outcome,
                    job: None,
                },
            );
        }
    }

    fn refusals(&self, s: &Summary) {
        self.failures_summary(
            &s.client,
            s.not_written,
            s.failures,
            throttle::WINDOW.as_secs(),
        );
    }
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
    /// From the parse the handler's request type read: a body it refused,
    /// a repeated member's included, shows nothing as given rather than
    /// one reading of it.
    fn from_body(input: &Input) -> Given {
        let Ok(Value::Object(m)) = input.body_json() else {
            return Given::default();
        };
        Given {
            pid: m.get("pid").cloned(),
            start_time: m.get("start_time").cloned(),
            signal: m.get("signal").cloned(),
            priority: m.get("priority").cloned(),
            command: m.get("cmd").map(|c| match c {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            }),
        }
    }
}
