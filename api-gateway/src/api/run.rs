//! The old command routes, kept for their clients: `POST /api/ps` runs
//! one through the helper (202 with its output id) and
//! `GET /api/ps/output/{id}` reads its output and state back in one JSON
//! answer. Both are the jobs routes' own code (`super::jobs`) with the
//! old answers' shapes: the same start, the same ids, the same
//! visibility (the key that started it, or `admin`).

use protocol::JobId;
use serde::Serialize;

use super::blocking;
use super::ctx::Ctx;
use super::jobs::{self, RunRequest};
use crate::clock::rfc3339;
use crate::error::ApiError;
use crate::http::extract::{FromInput, Input};
use crate::ids::{Pid, StartTime};
use crate::jobs::store::Stream;
use crate::jobs::{lifecycle, output, JobState};
use crate::reply::{Envelope, Reply};

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

/// The old route's answer, plus the job id and its `Location`.
pub async fn start(cx: &Ctx, req: RunRequest) -> Result<Reply, ApiError> {
    let started = jobs::start(cx, req).await?;
    let id = started.id;
    let m = started.meta;
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
        .header(hyper::header::LOCATION, jobs::location(id)))
}

/// `GET /api/ps/output/{id}`.
#[derive(Debug)]
pub struct OutputRequest {
    pub id: JobId,
}

impl FromInput for OutputRequest {
    fn from_input(input: &Input) -> Result<OutputRequest, ApiError> {
        Ok(OutputRequest {
            id: jobs::path_id(input, "output id")?,
        })
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

/// The job's record and both outputs, for a key that may see the job (as
/// on the jobs routes); any other is told there is no such output.
pub async fn output(cx: &Ctx, req: OutputRequest) -> Result<Reply, ApiError> {
    let caller = cx.caller()?.clone();
    let state = cx.state.clone();
    let id = req.id;
    let (meta, (out_len, err_len)) = blocking(move || {
        let mut meta = lifecycle::find(&state.jobs, &caller, id).map_err(|e| match e {
            ApiError::NoSuchJob(id) => ApiError::NoSuchOutput(id),
            e => e,
        })?;
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
