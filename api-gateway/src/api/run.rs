//! Commands: `POST /api/ps` runs one through the helper (202 with its
//! output id) and `GET /api/ps/output/{id}` reads its output and state
//! back, for the key that started it only.

use protocol::JobId;
use serde::{Deserialize, Serialize};

use super::blocking;
use crate::clock::rfc3339;
use crate::http::error::ApiError;
use crate::http::extract::{present, FromInput, Input};
use crate::http::reply::{Envelope, Reply};
use crate::http::router::Ctx;
use crate::ids::{Pid, StartTime};
use crate::jobs::{lifecycle, JobState};

/// The body: `cmd` for `/bin/sh -c`, optional `timeout_s` (seconds,
/// default from the configuration, at most the helper's ceiling).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunRequest {
    #[serde(deserialize_with = "cmd")]
    pub cmd: String,
    #[serde(default, deserialize_with = "timeout_s")]
    pub timeout_s: Option<u64>,
}

/// A string, with an error that names `cmd`.
fn cmd<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    String::deserialize(d).map_err(|e| serde::de::Error::custom(format!("cmd: {e}")))
}

/// Present and a non-negative integer, with an error that names
/// `timeout_s` (`null` is refused, absent is the default).
fn timeout_s<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    present::<D, u64>(d).map_err(|e| serde::de::Error::custom(format!("timeout_s: {e}")))
}

impl FromInput for RunRequest {
    const BODY: bool = true;

    fn from_input(input: &Input) -> Result<RunRequest, ApiError> {
        let r: RunRequest = input.json()?;
        if r.cmd.trim().is_empty() {
            return Err(ApiError::InvalidField(
                "cmd must be a non-empty string".into(),
            ));
        }
        if r.cmd.contains('\0') {
            return Err(ApiError::InvalidField("cmd must not contain NUL".into()));
        }
        if r.timeout_s == Some(0) {
            return Err(ApiError::InvalidField(
                "timeout_s must be a positive number of seconds".into(),
            ));
        }
        Ok(r)
    }
}

/// The pid, start time and command of a started job.
#[derive(Debug, Serialize)]
pub struct JobProcess {
    pub pid: Option<Pid>,
    pub start_time: Option<StartTime>,
    pub cmd: String,
}

/// The answer to `POST /api/ps`.
#[derive(Debug, Serialize)]
pub struct Started {
    pub process: JobProcess,
    /// pid of `/bin/sh`, the first of the pipeline (the old field).
    pub pid: Option<Pid>,
    /// The output id, 32 hex characters.
    pub output: String,
}

pub async fn start(cx: &Ctx, req: RunRequest) -> Result<Reply, ApiError> {
    let owner = cx.caller()?.name.clone();
    let timeout_s = req.timeout_s.unwrap_or(cx.state.cfg.default_timeout_s);
    let state = cx.state.clone();
    let started =
        blocking(move || lifecycle::start(&state.jobs, &state.helper, &owner, &req.cmd, timeout_s))
            .await?;
    cx.note_job(started.id);
    if let Some(pid) = started.meta.pid {
        cx.note_target(pid, started.meta.start_time);
    }
    let m = started.meta;
    Ok(Envelope::ok()
        .members(&Started {
            process: JobProcess {
                pid: m.pid,
                start_time: m.start_time,
                cmd: m.cmd,
            },
            pid: m.pid,
            output: started.id.to_hex(),
        })?
        .finish(hyper::StatusCode::ACCEPTED))
}

/// `GET /api/ps/output/{id}`.
#[derive(Debug)]
pub struct OutputRequest {
    pub id: JobId,
}

impl FromInput for OutputRequest {
    fn from_input(input: &Input) -> Result<OutputRequest, ApiError> {
        let raw = input.path("id")?;
        let id = JobId::from_hex(raw).ok_or_else(|| {
            ApiError::InvalidParameter(format!(
                "output id must be 32 lowercase hex characters, got {raw:?}"
            ))
        })?;
        Ok(OutputRequest { id })
    }
}

/// The answer to `GET /api/ps/output/{id}`.
#[derive(Debug, Serialize)]
pub struct JobOutput {
    pub output: String,
    pub cmd: String,
    pub pid: Option<Pid>,
    pub start_time: Option<StartTime>,
    pub state: JobState,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub timed_out: bool,
    pub truncated: bool,
    pub started_at: Option<String>,
    pub ended_at: Option<String>,
    pub out: String,
    pub err: String,
    pub out_invalid_utf8: bool,
    pub err_invalid_utf8: bool,
}

pub async fn output(cx: &Ctx, req: OutputRequest) -> Result<Reply, ApiError> {
    let owner = cx.caller()?.name.clone();
    let state = cx.state.clone();
    let (meta, out, err) =
        blocking(move || lifecycle::look(&state.jobs, &state.helper, &owner, req.id)).await?;
    let truncated = meta
        .output_limit
        .is_some_and(|l| out.len >= l || err.len >= l);
    Ok(Envelope::ok()
        .members(&JobOutput {
            output: req.id.to_hex(),
            cmd: meta.cmd,
            pid: meta.pid,
            start_time: meta.start_time,
            state: meta.state,
            exit_code: meta.exit_code,
            signal: meta.signal,
            timed_out: meta.timed_out,
            truncated,
            started_at: meta.started_ms.map(rfc3339),
            ended_at: meta.ended_ms.map(rfc3339),
            out: out.text,
            err: err.text,
            out_invalid_utf8: out.invalid_utf8,
            err_invalid_utf8: err.invalid_utf8,
        })?
        .finish(hyper::StatusCode::OK))
}
