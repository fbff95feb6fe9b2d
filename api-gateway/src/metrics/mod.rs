//! `/metrics`: the gateway's own counters and the host's process counts in
//! the Prometheus text exposition format (version 0.0.4), encoded by the
//! `prometheus` crate, never formatted by hand.
//!
//! Two kinds of series:
//! - counted as things happen, through small hooks: requests by route,
//!   method and status and their duration (the router), open connections
//!   (the accept loop), helper round trips by request kind and the
//!   helper's decisions by outcome and rule (`helper.rs`), authentication
//!   failures by reason (the router);
//! - taken when a scrape asks ([`Metrics::render`]): jobs by state, bytes
//!   of job output kept, finished jobs by outcome ([`jobs`]), and the host:
//!   processes by state and, per user, processes, CPU seconds and RSS.
//!
//! Guarantees: every label has a bounded set of values. Routes are the
//! table's patterns (`unmatched` otherwise), methods the standard ones
//! (`other` otherwise), statuses three digits; per-user series name the
//! [`TOP_USERS`] users with the most of that quantity and add the rest up
//! under `user="other"`. Nothing here reads /proc unless a scrape asks.

pub mod groups;
pub mod jobs;

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use prometheus::{
    Encoder, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};
use protocol::{Request, Response};

use crate::procs::{Census, Member};

/// Users named in each per-user series; the rest are `other`.
pub const TOP_USERS: usize = 10;

/// The media type of the exposition.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Every series the gateway exports, in one registry.
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    request_seconds: HistogramVec,
    helper_seconds: HistogramVec,
    helper_decisions: IntCounterVec,
    auth_failures: IntCounterVec,
    open_connections: IntGauge,
    jobs: IntGaugeVec,
    jobs_finished: IntCounterVec,
    job_output_bytes: IntGauge,
    quarantined_uids: IntGauge,
    policy_reload_failed: IntGauge,
    host_processes: IntGaugeVec,
    user_processes: IntGaugeVec,
    user_cpu: GaugeVec,
    user_rss: IntGaugeVec,
    /// Serializes scrapes (the scrape-time series are reset and refilled)
    /// and remembers how many finished jobs were counted.
    scrape: Mutex<Scrape>,
}

struct Scrape {
    /// Per outcome, the job index's count of ends at the last scrape: the
    /// counter grows by what the index counted since.
    counted: BTreeMap<&'static str, u64>,
    /// The process groups' series, when `[metrics.groups]` asks for them.
    groups: Option<groups::Groups>,
}

/// A metric that could not be registered: a bug (a duplicate name).
#[derive(Debug, thiserror::Error)]
#[error("registering metrics: {0}")]
pub struct MetricsError(#[from] prometheus::Error);

fn counter(
    r: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> prometheus::Result<IntCounterVec> {
    let c = IntCounterVec::new(Opts::new(name, help), labels)?;
    r.register(Box::new(c.clone()))?;
    Ok(c)
}

fn gauges(
    r: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> prometheus::Result<IntGaugeVec> {
    let g = IntGaugeVec::new(Opts::new(name, help), labels)?;
    r.register(Box::new(g.clone()))?;
    Ok(g)
}

fn gauge(r: &Registry, name: &str, help: &str) -> prometheus::Result<IntGauge> {
    let g = IntGauge::new(name, help)?;
    r.register(Box::new(g.clone()))?;
    Ok(g)
}

fn histogram(
    r: &Registry,
    name: &str,
    help: &str,
    label: &str,
    buckets: &[f64],
) -> prometheus::Result<HistogramVec> {
    let h = HistogramVec::new(
        HistogramOpts::new(name, help).buckets(buckets.to_vec()),
        &[label],
    )?;
    r.register(Box::new(h.clone()))?;
    Ok(h)
}

impl Metrics {
    /// Registers every series, without process groups.
    pub fn new() -> Result<Metrics, MetricsError> {
        Metrics::with_groups(None)
    }

    /// Registers every series, and the process groups' with this cap on
    /// groups when `Some`.
    pub fn with_groups(max_groups: Option<usize>) -> Result<Metrics, MetricsError> {
        let r = Registry::new();
        let groups = max_groups
            .map(|max| groups::Groups::new(&r, max))
            .transpose()?;
        let build = gauges(
            &r,
            "monitoreo_build_info",
            "Always 1; the gateway's version and the helper protocol version it speaks.",
            &["version", "protocol_version"],
        )?;
        build
            .with_label_values(&[
                env!("CARGO_PKG_VERSION"),
                &protocol::PROTOCOL_VERSION.to_string(),
            ])
            .set(1);
        let m = Metrics {
            requests: counter(
                &r,
                "monitoreo_http_requests_total",
                "HTTP requests answered, by route pattern, method and status.",
                &["route", "method", "status"],
            )?,
            request_seconds: histogram(
                &r,
                "monitoreo_http_request_duration_seconds",
                "Time from the request head to the answer, by route pattern.",
                "route",
                &[
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                    10.0,
                ],
            )?,
            helper_seconds: histogram(
                &r,
                "monitoreo_helper_round_trip_seconds",
                "One request to the privileged helper and its answer, by request kind.",
                "request",
                &[
                    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                    1.0,
                ],
            )?,
            helper_decisions: counter(
                &r,
                "monitoreo_helper_decisions_total",
                "The helper's answers to signal, renice, spawn and cancel, by outcome and, for a refusal, the policy rule.",
                &["request", "outcome", "rule"],
            )?,
            auth_failures: counter(
                &r,
                "monitoreo_auth_failures_total",
                "Requests refused by authentication (401) or for a missing scope (403), by reason.",
                &["reason"],
            )?,
            open_connections: gauge(
                &r,
                "monitoreo_http_open_connections",
                "Client connections open now.",
            )?,
            jobs: gauges(
                &r,
                "monitoreo_jobs",
                "Jobs kept in the state directory, by state.",
                &["state"],
            )?,
            jobs_finished: counter(
                &r,
                "monitoreo_jobs_finished_total",
                "Jobs seen finished since the gateway started, by outcome (success, failure, killed, timed_out, cancelled).",
                &["outcome"],
            )?,
            job_output_bytes: gauge(
                &r,
                "monitoreo_job_output_bytes",
                "Bytes of job stdout and stderr kept in the state directory.",
            )?,
            quarantined_uids: gauge(
                &r,
                "monitoreo_helper_quarantined_uids",
                "Job uids the helper took out of its pool because their cleanup failed or hung (its log says why: uid_quarantined).",
            )?,
            policy_reload_failed: gauge(
                &r,
                "monitoreo_helper_policy_reload_failed",
                "1 while the helper's last policy reload failed (it keeps the old policy; /healthz and its log say why: policy_reload_failed), 0 once one applies.",
            )?,
            host_processes: gauges(
                &r,
                "monitoreo_host_processes",
                "Processes on the host, by state.",
                &["state"],
            )?,
            user_processes: gauges(
                &r,
                "monitoreo_host_user_processes",
                "Processes on the host by real user (the top users by count, the rest as other).",
                &["user"],
            )?,
            user_cpu: {
                let g = GaugeVec::new(
                    Opts::new(
                        "monitoreo_host_user_cpu_seconds",
                        "CPU seconds used so far by the live processes of each real user (the top users, the rest as other); it drops when processes exit.",
                    ),
                    &["user"],
                )?;
                r.register(Box::new(g.clone()))?;
                g
            },
            user_rss: gauges(
                &r,
                "monitoreo_host_user_resident_memory_bytes",
                "Resident memory of the processes of each real user (the top users, the rest as other).",
                &["user"],
            )?,
            scrape: Mutex::new(Scrape {
                counted: BTreeMap::new(),
                groups,
            }),
            registry: r,
        };
        Ok(m)
    }

    /// Counts one answered request. `route` is the table's pattern, or
    /// `None` when no route matched.
    pub fn request(
        &self,
        route: Option<&str>,
        method: &hyper::Method,
        status: u16,
        took: Duration,
    ) {
        let route = route.unwrap_or("unmatched");
        let status = status.to_string();
        self.requests
            .with_label_values(&[route, method_label(method), &status])
            .inc();
        self.request_seconds
            .with_label_values(&[route])
            .observe(took.as_secs_f64());
    }

    /// Counts an authentication or scope failure.
    pub fn auth_failure(&self, reason: &'static str) {
        self.auth_failures.with_label_values(&[reason]).inc();
    }

    /// Counts a connection open until the guard is dropped.
    pub fn connection(&self) -> OpenConnection {
        self.open_connections.inc();
        OpenConnection(self.open_connections.clone())
    }

    /// Records one exchange with the helper: its duration and, for an act
    /// (spawn, cancel, and each target of an `Act`: a signal or renice of
    /// one process or of a plan's), the decision.
    pub fn helper_call(&self, req: &Request, took: Duration, answer: Option<&Response>) {
        let kind = req.kind();
        self.helper_seconds
            .with_label_values(&[kind])
            .observe(took.as_secs_f64());
        let decided: Vec<&Response> = match (req, answer) {
            (Request::Act { .. }, Some(Response::Batch(v))) => {
                v.iter().map(|o| &o.answer).collect()
            }
            (Request::Act { .. } | Request::Spawn { .. } | Request::Cancel { .. }, Some(a)) => {
                vec![a]
            }
            _ => Vec::new(),
        };
        for a in decided {
            let (outcome, rule) = decision(a);
            self.helper_decisions
                .with_label_values(&[kind, outcome, rule])
                .inc();
        }
    }

    /// Records what the helper's last health probe said (`None`: it did
    /// not answer; the gauge keeps its last value).
    pub fn helper_info(&self, info: Option<&protocol::HelperInfo>) {
        if let Some(i) = info {
            self.quarantined_uids.set(i64::from(i.quarantined_uids));
            self.policy_reload_failed
                .set(i64::from(i.reload_error.is_some()));
        }
    }

    /// Fills the scrape-time series and encodes everything. `host` is
    /// `None` when /proc could not be listed (the host series are then
    /// absent rather than wrong); so is `members`, the processes in
    /// groups (then the groups' series keep their last values).
    pub fn render(
        &self,
        host: Option<&Census>,
        jobs: &jobs::JobCensus,
        members: Option<&[Member]>,
    ) -> Result<Vec<u8>, MetricsError> {
        let mut scrape = self.scrape.lock().unwrap_or_else(|p| p.into_inner());
        if let (Some(g), Some(m)) = (scrape.groups.as_mut(), members) {
            g.update(m);
        }
        self.jobs.reset();
        for (state, n) in &jobs.by_state {
            self.jobs.with_label_values(&[state]).set(clamp(*n));
        }
        self.job_output_bytes.set(clamp(jobs.output_bytes));
        for (outcome, n) in &jobs.ended {
            let seen = scrape.counted.entry(outcome).or_default();
            if *n > *seen {
                self.jobs_finished
                    .with_label_values(&[outcome])
                    .inc_by(*n - *seen);
                *seen = *n;
            }
        }

        for g in [&self.host_processes, &self.user_processes, &self.user_rss] {
            g.reset();
        }
        self.user_cpu.reset();
        if let Some(c) = host {
            for (state, n) in &c.states {
                self.host_processes
                    .with_label_values(&[state])
                    .set(clamp(*n));
            }
            for (user, n) in top(c, |u| u.processes as f64) {
                self.user_processes
                    .with_label_values(&[&user])
                    .set(n as i64);
            }
            for (user, s) in top(c, |u| u.cpu_seconds) {
                self.user_cpu.with_label_values(&[&user]).set(s);
            }
            for (user, b) in top(c, |u| u.rss_bytes as f64) {
                self.user_rss.with_label_values(&[&user]).set(b as i64);
            }
        }
        let mut out = Vec::with_capacity(16 * 1024);
        TextEncoder::new().encode(&self.registry.gather(), &mut out)?;
        Ok(out)
    }
}

/// Decrements the open-connection gauge when dropped.
pub struct OpenConnection(IntGauge);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.dec();
    }
}

fn clamp(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A standard method's name; anything else (extension methods are any
/// token) is `other`, so a client cannot create series at will.
fn method_label(m: &hyper::Method) -> &'static str {
    use hyper::Method as M;
    match *m {
        M::GET => "GET",
        M::HEAD => "HEAD",
        M::POST => "POST",
        M::PUT => "PUT",
        M::DELETE => "DELETE",
        M::PATCH => "PATCH",
        M::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// `(outcome, rule)` of a helper answer; `rule` is empty unless refused
/// by a rule.
fn decision(r: &Response) -> (&'static str, &str) {
    match r {
        Response::Ok | Response::Reniced { .. } | Response::Job(_) | Response::Batch(_) => {
            ("ok", "")
        }
        Response::ExeChanged => ("exe_changed", ""),
        Response::Denied { rule, .. } => ("denied", rule.as_str()),
        Response::NoSuchProcess => ("no_such_process", ""),
        Response::NotAProcess => ("not_a_process", ""),
        Response::Mismatch => ("identity_changed", ""),
        Response::Busy => ("busy", ""),
        Response::Invalid { .. } => ("invalid", ""),
        Response::Failed { .. } => ("failed", ""),
        Response::Hello { .. }
        | Response::Info(_)
        | Response::Subscribed
        | Response::JobEnded { .. } => ("unexpected", ""),
    }
}

/// The [`TOP_USERS`] users with the most of `by` (ties by name), plus
/// `other` with the sum of the rest when there is a rest. A user whose
/// name is `other` is added to that line.
fn top(c: &Census, by: impl Fn(&crate::procs::UserUsage) -> f64) -> Vec<(String, f64)> {
    let mut v: Vec<(&str, f64)> = c.users.iter().map(|u| (u.name.as_str(), by(u))).collect();
    v.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    let mut out: BTreeMap<String, f64> = BTreeMap::new();
    for (i, (name, x)) in v.into_iter().enumerate() {
        let label = if i < TOP_USERS { name } else { "other" };
        *out.entry(label.to_string()).or_default() += x;
    }
    out.into_iter().collect()
}

/// The helper client reports its round trips here.
impl crate::helper::Observer for Metrics {
    fn helper_call(&self, req: &Request, took: Duration, answer: Option<&Response>) {
        Metrics::helper_call(self, req, took, answer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::procs::UserUsage;

    fn census(n: usize) -> Census {
        Census {
            states: BTreeMap::from([("sleeping", n as u64)]),
            users: (0..n)
                .map(|i| UserUsage {
                    name: format!("u{i:02}"),
                    processes: i as u64 + 1,
                    cpu_seconds: i as f64,
                    rss_bytes: 1000 * i as u64,
                })
                .collect(),
        }
    }

    #[test]
    fn per_user_series_name_the_top_users_and_add_up_the_rest_as_other() {
        let c = census(TOP_USERS + 5);
        let t = top(&c, |u| u.processes as f64);
        assert_eq!(t.len(), TOP_USERS + 1);
        let other = t.iter().find(|(n, _)| n == "other").expect("other").1;
        assert_eq!(other, (1..=5).sum::<u64>() as f64);
        assert!(t.iter().any(|(n, _)| n == "u14"));
        assert!(!t.iter().any(|(n, _)| n == "u00"));
        let total: f64 = t.iter().map(|(_, x)| x).sum();
        assert_eq!(
            total,
            c.users.iter().map(|u| u.processes as f64).sum::<f64>()
        );
    }

    #[test]
    fn methods_outside_the_standard_set_share_one_label() {
        let odd = hyper::Method::from_bytes(b"BREW").expect("token");
        assert_eq!(method_label(&odd), "other");
        assert_eq!(method_label(&hyper::Method::DELETE), "DELETE");
    }

    #[test]
    fn a_finished_job_is_counted_once() {
        let m = Metrics::new().expect("metrics");
        let mut jobs = jobs::JobCensus {
            ended: BTreeMap::from([("success", 1)]),
            ..Default::default()
        };
        for _ in 0..2 {
            let text =
                String::from_utf8(m.render(None, &jobs, None).expect("render")).expect("utf8");
            assert!(
                text.contains("monitoreo_jobs_finished_total{outcome=\"success\"} 1"),
                "{text}"
            );
            assert!(!text.contains("outcome=\"killed\""), "{text}");
        }
        jobs.ended.insert("success", 3);
        let text = String::from_utf8(m.render(None, &jobs, None).expect("render")).expect("utf8");
        assert!(
            text.contains("monitoreo_jobs_finished_total{outcome=\"success\"} 3"),
            "{text}"
        );
    }

    #[test]
    fn the_exposition_carries_requests_and_host_series() {
        let m = Metrics::new().expect("metrics");
        m.request(
            Some("/api/ps/{pid}"),
            &hyper::Method::GET,
            200,
            Duration::from_millis(3),
        );
        m.auth_failure("invalid_key");
        let _c = m.connection();
        let text = String::from_utf8(
            m.render(Some(&census(3)), &jobs::JobCensus::default(), None)
                .expect("render"),
        )
        .expect("utf8");
        for want in [
            "monitoreo_http_requests_total{method=\"GET\",route=\"/api/ps/{pid}\",status=\"200\"} 1",
            "monitoreo_http_request_duration_seconds_bucket{route=\"/api/ps/{pid}\",le=\"0.005\"} 1",
            "monitoreo_auth_failures_total{reason=\"invalid_key\"} 1",
            "monitoreo_http_open_connections 1",
            "monitoreo_host_processes{state=\"sleeping\"} 3",
            "monitoreo_host_user_processes{user=\"u02\"} 3",
            "# TYPE monitoreo_build_info gauge",
        ] {
            assert!(text.contains(want), "{want} missing from:\n{text}");
        }
    }
}
