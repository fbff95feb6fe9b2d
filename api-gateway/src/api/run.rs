//! Commands: `POST /api/ps` runs one through the helper (202 with its
//! output id) and `GET /api/ps/output/{id}` reads its output and state
//! back, for the key that started it only.

use protocol::JobId;
use serde::{Deserialize, Serialize};

use super::blocking;
use super::ctx::Ctx;
use crate::clock::rfc3339;
use crate::error::ApiError;
use crate::http::extract::{present, FromInput, Input};
use crate::ids::{Pid, StartTime};
use crate::jobs::admit::Limits;
use crate::jobs::store::Stream;
use crate::jobs::{lifecycle, output, JobState};
use crate::reply::{Envelope, Reply};
use hyper::header::HeaderValue;

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
    /// The job id (the same value): `GET /api/jobs/{job}`.
    pub job: String,
}

/// Starts a job for the calling key (`POST /api/ps` and `POST /api/jobs`).
pub async fn start_job(cx: &Ctx, req: RunRequest) -> Result<lifecycle::Started, ApiError> {
    let owner = cx.caller()?.name.clone();
    let timeout_s = req.timeout_s.unwrap_or(cx.state.cfg.default_timeout_s);
    let state = cx.state.clone();
    let limits = Limits {
        output_quota: state.cfg.output_quota,
        key_output_quota: state.cfg.key_output_quota,
        key_max_running_jobs: state.cfg.key_max_running_jobs,
        key_max_job_records: state.cfg.key_max_job_records,
    };
    let started = blocking(move || {
        lifecycle::start(
            &state.jobs,
            &state.helper,
            &state.hub,
            &state.owners,
            &owner,
            &req.cmd,
            timeout_s,
            &limits,
        )
    })
    .await?;
    cx.note_job(started.id);
    if let Some(pid) = started.meta.pid {
        cx.note_target(pid, started.meta.start_time);
    }
    Ok(started)
}

/// The old route's answer, plus the job id and its `Location`.
pub async fn start(cx: &Ctx, req: RunRequest) -> Result<Reply, ApiError> {
    let started = start_job(cx, req).await?;
    let id = started.id;
    let m = started.meta;
    let location = HeaderValue::from_str(&format!("/api/jobs/{}", id.to_hex()))
        .unwrap_or_else(|_| HeaderValue::from_static("/api/jobs"));
    Ok(Envelope::ok()
        .members(&Started {
            process: JobProcess {
                pid: m.pid,
                start_time: m.start_time,
                cmd: m.cmd,
            },
            pid: m.pid,
            output: id.to_hex(),
            job: id.to_hex(),
        })?
        .finish(hyper::StatusCode::ACCEPTED)
        .header(hyper::header::LOCATION, location))
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

/// The answer to `GET /api/ps/output/{id}`, but for `out` and `err` and
/// their `*_invalid_utf8` flags, which are streamed from the files after
/// these members (so the answer is never held whole in memory).
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
}

pub async fn output(cx: &Ctx, req: OutputRequest) -> Result<Reply, ApiError> {
    let owner = cx.caller()?.name.clone();
    let state = cx.state.clone();
    let id = req.id;
    let (meta, (out_len, err_len)) = blocking(move || {
        let mut meta = state
            .jobs
            .meta(&id)
            .map_err(|e| ApiError::Internal(format!("reading job {id}: {e}")))?
            .filter(|m| m.owner == owner)
            .ok_or(ApiError::NoSuchOutput(id))?;
        lifecycle::refresh(&state.jobs, &state.helper, id, &mut meta);
        Ok((meta, state.jobs.sizes(&id)))
    })
    .await?;
    let truncated = meta
        .output_limit
        .is_some_and(|l| out_len >= l || err_len >= l);
    let head = Envelope::ok()
        .members(&JobOutput {
            output: id.to_hex(),
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
        })?
        .open();
    let store = &cx.state.jobs;
    let body = output::json_envelope(
        head,
        [
            (store.output_path(&id, Stream::Stdout), out_len),
            (store.output_path(&id, Stream::Stderr), err_len),
        ],
        |out_bad, err_bad| {
            format!(",\"out_invalid_utf8\":{out_bad},\"err_invalid_utf8\":{err_bad}}}").into_bytes()
        },
    );
    Ok(Reply::streamed(
        hyper::StatusCode::OK,
        "application/json",
        body,
    ))
}
