//! `GET /metrics`: the Prometheus exposition (see `crate::metrics`). It
//! needs a key with the `metrics` scope unless `metrics_public = true`.
//! Each scrape counts the host's processes and the kept jobs now; a job
//! still recorded as running is asked about through the helper.

use super::blocking;
use crate::error::ApiError;
use crate::http::extract::Nothing;
use crate::http::router::Ctx;
use crate::metrics::{jobs, CONTENT_TYPE as EXPOSITION};
use crate::reply::Reply;

pub async fn scrape(cx: &Ctx, _: Nothing) -> Result<Reply, ApiError> {
    let health = cx.state.helper.health_cached().await;
    cx.state.metrics.helper_info(health.info.as_ref());
    let state = cx.state.clone();
    let body = blocking(move || {
        let host = match state.procs.census() {
            Ok(c) => Some(c),
            Err(e) => {
                eprintln!("monitoreo-gateway: /metrics: counting processes: {e}");
                None
            }
        };
        let live = |job| match state
            .helper
            .call(&protocol::Request::JobStatus { job }, &[])
        {
            Ok(protocol::Response::Job(s)) => Some(s),
            _ => None,
        };
        let kept = jobs::scan(&state.cfg.state_dir.join("jobs"), &state.jobs, &live);
        state
            .metrics
            .render(host.as_ref(), &kept)
            .map_err(|e| ApiError::Internal(e.to_string()))
    })
    .await?;
    Ok(Reply {
        status: hyper::StatusCode::OK,
        headers: Vec::new(),
        body: body.into(),
        stream: None,
        content_type: EXPOSITION,
    })
}
