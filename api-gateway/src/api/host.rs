//! `GET /api/host`: the host itself, in psutil's names and units
//! (`crate::host`). The CPU figures cover a stated window: since the
//! latest ask (as the process listing's do) or `?interval=SECONDS`; the
//! rest is read while that window runs out.

use std::time::Duration;

use super::blocking;
use super::ctx::Ctx;
use crate::error::ApiError;
use crate::host::{Snapshot, MAX_INTERVAL};
use crate::http::extract::{FromInput, Input, Param};
use crate::reply::{Envelope, Reply};

/// `?interval=SECONDS`: the CPU figures over this many seconds from now
/// (0 < interval ≤ 10, decimals allowed).
#[derive(Debug)]
pub struct HostRequest {
    pub interval: Option<Duration>,
}

impl FromInput for HostRequest {
    const QUERY: &'static [Param] = &[Param::one("interval")];

    fn from_input(input: &Input) -> Result<HostRequest, ApiError> {
        let interval = input
            .one("interval")
            .map(|v| {
                v.parse::<f64>()
                    .ok()
                    .filter(|s| *s > 0.0 && *s <= MAX_INTERVAL.as_secs_f64())
                    .map(Duration::from_secs_f64)
                    .ok_or_else(|| {
                        ApiError::InvalidParameter(format!(
                            "interval must be seconds above 0 and at most {}, got {v:?}",
                            MAX_INTERVAL.as_secs()
                        ))
                    })
            })
            .transpose()?;
        Ok(HostRequest { interval })
    }
}

fn io(e: std::io::Error) -> ApiError {
    ApiError::Internal(format!("reading the host's figures: {e}"))
}

pub async fn get(cx: &Ctx, req: HostRequest) -> Result<Reply, ApiError> {
    let cpu = &cx.state.host_cpu;
    let start = cpu.start(req.interval).map_err(io)?;
    let snapshot = blocking(|| Snapshot::take().map_err(io)).await?;
    tokio::time::sleep_until(start.not_before.into()).await;
    let figures = cpu.finish(&start).map_err(io)?;
    let s = snapshot;
    Ok(Envelope::ok()
        .member("hostname", &s.hostname)
        .member("kernel", &s.kernel)
        .member("boot_time", &s.boot_time)
        .member("uptime", &s.uptime)
        .member("cpu_count", &s.cpu_count)
        .member("cpu_percent", &figures)
        .member("cpu_times_percent", &figures.times_percent())
        .member("virtual_memory", &s.virtual_memory)
        .member("swap_memory", &s.swap_memory)
        .member("getloadavg", &s.getloadavg)
        .member("processes", &s.processes)
        .member("disk_usage", &s.disk_usage)
        .member("disk_io_counters", &s.disk_io_counters)
        .member("net_io_counters", &s.net_io_counters)
        .finish(hyper::StatusCode::OK))
}
