//! `GET /metrics`: the Prometheus exposition (see `crate::metrics`). It
//! needs a key with the `metrics` scope unless `metrics_public = true`.
//! Each scrape counts the host's processes now, and the jobs from the job
//! index; a job still recorded as running is asked about through the
//! helper first, so an end nobody asked about is recorded. With
//! `[metrics.groups]`, the processes in groups are read too.

use super::blocking;
use super::ctx::Ctx;
use crate::error::ApiError;
use crate::http::extract::Nothing;
use crate::jobs::lifecycle;
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
        let live = state.jobs.index().live();
        for id in live {
            if let Ok(Some(mut meta)) = state.jobs.meta(&id) {
                lifecycle::refresh(&state.jobs, &state.helper, id, &mut meta);
            }
        }
        let members = state.cfg.groups.as_ref().and_then(|rules| {
            state
                .procs
                .groups(rules)
                .map_err(|e| eprintln!("monitoreo-gateway: /metrics: process groups: {e}"))
                .ok()
        });
        let kept = jobs::census(&state.jobs);
        state
            .metrics
            .render(host.as_ref(), &kept, members.as_deref())
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
