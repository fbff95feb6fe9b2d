//! The two routes without a key: `GET /healthz` (is the helper there; to
//! a key with read, also how it contains and limits jobs) and `GET
//! /api/openapi.json`.
//!
//! `/healthz` answers from the helper client's cached probe (at most one
//! helper round trip per second), so it is cheap to poll and to flood.
//! Without a key it says only `status`: the protocol version, containment,
//! limits and the helper's error text are for a key with read.

use protocol::{Containment, Isolation};
use serde::Serialize;

use super::ctx::Ctx;
use crate::error::ApiError;
use crate::http::extract::Nothing;
use crate::reply::{Envelope, Reply};

/// What `/healthz` says about the helper.
#[derive(Debug, Serialize)]
pub struct HelperHealth {
    pub reachable: bool,
    pub protocol_version: u32,
    /// `cgroup` or `pgid`; null when unreachable.
    pub containment: Option<&'static str>,
    /// `per_job_uid` or `shared_user`; null when unknown.
    pub isolation: Option<&'static str>,
    pub limits: Option<Limits>,
    pub error: Option<String>,
    /// Why the helper's last policy reload failed (it keeps the old
    /// policy), until one applies; null otherwise or when unknown.
    pub policy_reload_error: Option<String>,
}

/// `containment` as `/healthz` spells it.
fn containment_name(c: Containment) -> &'static str {
    match c {
        Containment::Cgroup => "cgroup",
        Containment::Pgid => "pgid",
    }
}

/// `isolation` as `/healthz` spells it.
pub(crate) fn isolation_name(i: Isolation) -> &'static str {
    match i {
        Isolation::PerJobUid => "per_job_uid",
        Isolation::SharedUser => "shared_user",
    }
}

/// The job limits in force: a cgroup limit is null where the host's
/// unified hierarchy does not offer its controller.
#[derive(Debug, Serialize)]
pub struct Limits {
    pub cgroup: CgroupLimits,
    pub rlimit: Rlimits,
}

#[derive(Debug, Serialize)]
pub struct CgroupLimits {
    pub memory_max: Option<u64>,
    pub pids_max: Option<u64>,
    pub cpu_max_us_per_100ms: Option<u64>,
}

#[derive(Debug, Serialize)]
pub struct Rlimits {
    #[serde(rename = "as")]
    pub address_space: Option<u64>,
    pub nproc_per_job_uid: u64,
    pub cpu_s: u64,
    pub fsize: u64,
    pub nofile: u64,
}

impl From<&protocol::JobLimits> for Limits {
    fn from(l: &protocol::JobLimits) -> Limits {
        Limits {
            cgroup: CgroupLimits {
                memory_max: l.cgroup_memory_max,
                pids_max: l.cgroup_pids_max,
                cpu_max_us_per_100ms: l.cgroup_cpu_max_us,
            },
            rlimit: Rlimits {
                address_space: l.rlimit_as,
                nproc_per_job_uid: l.rlimit_nproc,
                cpu_s: l.rlimit_cpu_s,
                fsize: l.rlimit_fsize,
                nofile: l.rlimit_nofile,
            },
        }
    }
}

/// 200 `status: ok`, or 503 `status: unavailable` (the error envelope,
/// with `Retry-After`); with a key, also the helper's details.
pub async fn healthz(cx: &Ctx, _: Nothing) -> Result<Reply, ApiError> {
    let h = cx.state.helper.health_cached().await;
    let unavailable =
        || ApiError::Unavailable(h.error.clone().unwrap_or_else(|| "no answer".into()));
    if cx.maybe_caller().is_none() {
        if h.reachable {
            return Ok(Envelope::ok()
                .member("status", "ok")
                .finish(hyper::StatusCode::OK));
        }
        let e = unavailable();
        let mut reply = Envelope::error(e.code(), "the privileged helper is unreachable")
            .member("status", "unavailable")
            .finish(e.status());
        reply.headers = e.into_reply().headers;
        return Ok(reply);
    }
    let health = HelperHealth {
        reachable: h.reachable,
        protocol_version: protocol::PROTOCOL_VERSION,
        containment: h.containment.map(containment_name),
        isolation: h.info.as_ref().map(|i| isolation_name(i.isolation)),
        limits: h.info.as_ref().map(|i| Limits::from(&i.limits)),
        error: h.error.clone(),
        policy_reload_error: h.info.as_ref().and_then(|i| i.reload_error.clone()),
    };
    let version = env!("CARGO_PKG_VERSION");
    if h.reachable {
        return Ok(Envelope::ok()
            .member("status", "ok")
            .member("helper", &health)
            .member("version", version)
            .finish(hyper::StatusCode::OK));
    }
    let e = unavailable();
    let mut reply = Envelope::error(e.code(), "the privileged helper is unreachable")
        .member("status", "unavailable")
        .member("helper", &health)
        .member("version", version)
        .finish(e.status());
    reply.headers = e.into_reply().headers;
    Ok(reply)
}

/// The OpenAPI document, built once at start-up.
pub async fn openapi(cx: &Ctx, _: Nothing) -> Result<Reply, ApiError> {
    Ok(Reply {
        status: hyper::StatusCode::OK,
        headers: Vec::new(),
        body: cx.state.openapi.clone(),
        stream: None,
        content_type: "application/json",
    })
}
