//! Jobs as resources (`exec` scope; `admin` also sees other keys' jobs):
//! start one (`POST /api/jobs`), list them, look at one (optionally
//! waiting for its end), cancel or delete it, read its output raw with
//! `Range`, or follow it live as Server-Sent Events. The old command
//! routes (`super::run`) are this module's code with older answers.

use std::time::Duration;

use hyper::header::{self, HeaderValue};
use hyper::StatusCode;
use protocol::JobId;
use serde::{Deserialize, Serialize};

use super::blocking;
use super::ctx::Ctx;
use crate::clock::rfc3339;
use crate::error::ApiError;
use crate::http::extract::{present, FromInput, Input, Param};
use crate::ids::{Pid, StartTime};
use crate::jobs::admit::Limits;
use crate::jobs::follow::{self, Follow, Offsets};
use crate::jobs::store::{JobStore, Stream};
use crate::jobs::{lifecycle, output, JobState, Meta};
use crate::keys::Scope;
use crate::reply::{Envelope, Reply};

/// Longest `?wait=` (seconds).
pub const MAX_WAIT_S: u64 = 60;

/// How long `DELETE` waits for the cancelled job's end to be recorded.
const CANCEL_SETTLE: Duration = Duration::from_secs(3);

/// A job as the API shows it.
#[derive(Debug, Serialize)]
pub struct JobView {
    pub id: String,
    /// The key that started it.
    pub owner: String,
    pub cmd: String,
    pub state: JobState,
    pub pid: Option<Pid>,
    pub start_time: Option<StartTime>,
    pub created_at: String,
    pub started_at: Option<String>,
    pub ended_at: Option<String>,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub timed_out: bool,
    pub stdout_bytes: u64,
    pub stderr_bytes: u64,
    /// The stream reached the output ceiling: later bytes were not kept.
    pub stdout_truncated: bool,
    pub stderr_truncated: bool,
    /// CPU time of everything the job ran (its cgroup), once it ended.
    pub cpu_usec: Option<u64>,
    /// Peak memory of the job, where the memory controller is on.
    pub memory_peak: Option<u64>,
}

impl JobView {
    pub fn new(id: JobId, m: &Meta, (out, err): (u64, u64)) -> JobView {
        let cut = |n: u64| m.output_limit.is_some_and(|l| n >= l);
        JobView {
            id: id.to_hex(),
            owner: m.owner.clone(),
            cmd: m.cmd.clone(),
            state: m.state,
            pid: m.pid,
            start_time: m.start_time,
            created_at: rfc3339(m.created_ms),
            started_at: m.started_ms.map(rfc3339),
            ended_at: m.ended_ms.map(rfc3339),
            exit_code: m.exit_code,
            signal: m.signal,
            timed_out: m.timed_out,
            stdout_bytes: out,
            stderr_bytes: err,
            stdout_truncated: cut(out),
            stderr_truncated: cut(err),
            cpu_usec: m.cpu_usec,
            memory_peak: m.memory_peak,
        }
    }

    fn of(store: &JobStore, id: JobId, m: &Meta) -> JobView {
        JobView::new(id, m, store.sizes(&id))
    }
}

/// Where a started job is found, for the `Location` of both start routes.
pub fn location(id: JobId) -> HeaderValue {
    HeaderValue::from_str(&format!("/api/jobs/{}", id.to_hex()))
        .unwrap_or_else(|_| HeaderValue::from_static("/api/jobs"))
}

/// The job id in the path's `{id}`; the refusal calls it `what` (the old
/// route says "output id").
pub fn path_id(input: &Input, what: &str) -> Result<JobId, ApiError> {
    let raw = input.path("id")?;
    crate::ids::job_id(raw).ok_or_else(|| {
        ApiError::InvalidParameter(format!(
            "{what} must be 32 lowercase hex characters, got {raw:?}"
        ))
    })
}

fn job_id(input: &Input) -> Result<JobId, ApiError> {
    path_id(input, "job id")
}

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

/// What each key's jobs may hold and run, from the configuration.
pub fn key_limits(cfg: &crate::config::Config) -> Limits {
    Limits {
        output_quota: cfg.output_quota,
        key_output_quota: cfg.key_output_quota,
        key_max_running_jobs: cfg.key_max_running_jobs,
        key_max_job_records: cfg.key_max_job_records,
    }
}

/// Starts a job for the calling key (`POST /api/ps` and `POST /api/jobs`).
pub async fn start(cx: &Ctx, req: RunRequest) -> Result<lifecycle::Started, ApiError> {
    let owner = cx.caller()?.name.clone();
    let timeout_s = req.timeout_s.unwrap_or(cx.state.cfg.default_timeout_s);
    let state = cx.state.clone();
    let limits = key_limits(&state.cfg);
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

/// `POST /api/jobs`: the same body as `POST /api/ps`.
pub async fn create(cx: &Ctx, req: RunRequest) -> Result<Reply, ApiError> {
    let started = start(cx, req).await?;
    let state = cx.state.clone();
    let view = JobView::of(&state.jobs, started.id, &started.meta);
    Ok(Envelope::ok()
        .member("job", &view)
        .finish(StatusCode::ACCEPTED)
        .header(header::LOCATION, location(started.id)))
}

/// `GET /api/jobs?state=&limit=&before=`.
#[derive(Debug)]
pub struct ListRequest {
    state: Option<JobState>,
    limit: usize,
    before: Option<JobId>,
}

impl FromInput for ListRequest {
    const QUERY: &'static [Param] = &[
        Param::one("state"),
        Param::one("limit"),
        Param::one("before"),
    ];

    fn from_input(input: &Input) -> Result<ListRequest, ApiError> {
        let state = match input.one("state") {
            None => None,
            Some(s) => Some(
                JobState::ALL
                    .into_iter()
                    .find(|j| j.name() == s)
                    .ok_or_else(|| {
                        let names: Vec<&str> = JobState::ALL.iter().map(|j| j.name()).collect();
                        ApiError::InvalidParameter(format!(
                            "state {s:?} is not one of {}",
                            names.join(", ")
                        ))
                    })?,
            ),
        };
        let limit = match input.one("limit") {
            None => 50,
            Some(l) => l
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=500).contains(n))
                .ok_or_else(|| ApiError::InvalidParameter(format!("limit {l:?} is not 1..=500")))?,
        };
        let before = match input.one("before") {
            None => None,
            Some(b) => Some(crate::ids::job_id(b).ok_or_else(|| {
                ApiError::InvalidParameter(format!("before {b:?} is not a job id"))
            })?),
        };
        Ok(ListRequest {
            state,
            limit,
            before,
        })
    }
}

#[derive(Debug, Serialize)]
struct JobList {
    jobs: Vec<JobView>,
    /// Pass as `before` for the next page; `null` on the last page.
    next: Option<String>,
}

/// The caller's jobs (every key's with `admin`), newest first: one page
/// of the index, then the page's own records read from disk, so the cost
/// is the page's whatever the store holds.
pub async fn list(cx: &Ctx, req: ListRequest) -> Result<Reply, ApiError> {
    let caller = cx.caller()?.clone();
    let state = cx.state.clone();
    let page = blocking(move || {
        let owner = (!caller.scopes.contains(&Scope::Admin)).then_some(caller.name.as_str());
        let before = req.before;
        let (ids, more) = state
            .jobs
            .index()
            .page(owner, req.state, before, req.limit)
            .ok_or(ApiError::NoSuchJob(before.unwrap_or(JobId([0; 16]))))?;
        let page: Vec<JobView> = ids
            .into_iter()
            .filter_map(|id| {
                let meta = state.jobs.meta(&id).ok().flatten()?;
                Some(JobView::of(&state.jobs, id, &meta))
            })
            .collect();
        let next = more.then(|| page.last().map(|v| v.id.clone())).flatten();
        Ok(JobList { jobs: page, next })
    })
    .await?;
    Ok(Envelope::ok().members(&page)?.finish(StatusCode::OK))
}

/// `GET /api/jobs/{id}?wait=SECONDS`.
#[derive(Debug)]
pub struct GetRequest {
    id: JobId,
    wait: Option<Duration>,
}

impl FromInput for GetRequest {
    const QUERY: &'static [Param] = &[Param::one("wait")];

    fn from_input(input: &Input) -> Result<GetRequest, ApiError> {
        let wait = match input.one("wait") {
            None => None,
            Some(w) => Some(Duration::from_secs(
                w.parse::<u64>()
                    .ok()
                    .filter(|s| *s <= MAX_WAIT_S)
                    .ok_or_else(|| {
                        ApiError::InvalidParameter(format!(
                            "wait {w:?} is not 0..={MAX_WAIT_S} seconds"
                        ))
                    })?,
            )),
        };
        Ok(GetRequest {
            id: job_id(input)?,
            wait,
        })
    }
}

/// The job; with `wait`, answers when it ends or the time is up.
pub async fn get(cx: &Ctx, req: GetRequest) -> Result<Reply, ApiError> {
    let meta = settled(cx, req.id, req.wait.unwrap_or_default()).await?;
    let state = cx.state.clone();
    let view = JobView::of(&state.jobs, req.id, &meta);
    Ok(Envelope::ok().member("job", &view).finish(StatusCode::OK))
}

/// The job's record once it ended, or after `wait`, whichever is first:
/// woken by the job's end (the helper's event), never polling. A live
/// record is checked with the helper once before waiting and once when the
/// wait is over, in case an end went unheard (the helper restarted).
async fn settled(cx: &Ctx, id: JobId, wait: Duration) -> Result<Meta, ApiError> {
    let caller = cx.caller()?.clone();
    let state = cx.state.clone();
    // Subscribed before the first look, so an end in between is not lost.
    let mut change = state.hub.subscribe(id);
    let deadline = tokio::time::Instant::now() + wait;
    let look = |refresh: bool| {
        let (s, c) = (state.clone(), caller.clone());
        blocking(move || {
            let mut meta = lifecycle::find(&s.jobs, &c, id)?;
            if refresh {
                lifecycle::refresh(&s.jobs, &s.helper, id, &mut meta);
            }
            Ok(meta)
        })
    };
    let mut meta = look(true).await?;
    while meta.state.is_live() {
        if tokio::time::timeout_at(deadline, change.changed())
            .await
            .is_err()
        {
            return look(true).await;
        }
        meta = look(false).await?;
    }
    Ok(meta)
}

/// `DELETE /api/jobs/{id}` and the job routes with only an id.
#[derive(Debug)]
pub struct IdRequest {
    id: JobId,
}

impl FromInput for IdRequest {
    fn from_input(input: &Input) -> Result<IdRequest, ApiError> {
        Ok(IdRequest { id: job_id(input)? })
    }
}

/// Cancels a job that may still run (the helper kills its whole cgroup;
/// the record stays), or deletes one that has ended with its output.
/// Either way the answer is the job's last record and whether it was
/// deleted; a deleted job is then 404 like any unknown one.
pub async fn delete(cx: &Ctx, req: IdRequest) -> Result<Reply, ApiError> {
    cx.note_job(req.id);
    let caller = cx.caller()?.clone();
    let state = cx.state.clone();
    let id = req.id;
    let (meta, sizes, deleted) =
        blocking(move || lifecycle::delete(&state.jobs, &state.helper, &state.hub, &caller, id))
            .await?;
    if let Some(pid) = meta.pid {
        cx.note_target(pid, meta.start_time);
    }
    let view = if meta.state.is_live() {
        let meta = settled(cx, id, CANCEL_SETTLE).await?;
        JobView::of(&cx.state.jobs, id, &meta)
    } else if deleted {
        JobView::new(id, &meta, sizes)
    } else {
        JobView::of(&cx.state.jobs, id, &meta)
    };
    Ok(Envelope::ok()
        .member("job", &view)
        .member("deleted", &deleted)
        .finish(StatusCode::OK))
}

/// `GET /api/jobs/{id}/stdout` and `/stderr`.
#[derive(Debug)]
pub struct OutputRequest {
    id: JobId,
    range: Option<String>,
}

impl FromInput for OutputRequest {
    fn from_input(input: &Input) -> Result<OutputRequest, ApiError> {
        Ok(OutputRequest {
            id: job_id(input)?,
            range: input.header(header::RANGE).map(str::to_owned),
        })
    }
}

pub async fn stdout(cx: &Ctx, req: OutputRequest) -> Result<Reply, ApiError> {
    raw(cx, req, Stream::Stdout).await
}

pub async fn stderr(cx: &Ctx, req: OutputRequest) -> Result<Reply, ApiError> {
    raw(cx, req, Stream::Stderr).await
}

/// The stream's bytes as written (`application/octet-stream`), the whole
/// or one `Range` (206, or 416 past the end).
async fn raw(cx: &Ctx, req: OutputRequest, which: Stream) -> Result<Reply, ApiError> {
    let caller = cx.caller()?.clone();
    let state = cx.state.clone();
    let id = req.id;
    let (path, len) = blocking(move || {
        lifecycle::find(&state.jobs, &caller, id)?;
        let (o, e) = state.jobs.sizes(&id);
        let len = if which == Stream::Stdout { o } else { e };
        Ok((state.jobs.output_path(&id, which), len))
    })
    .await?;
    let (status, start, end) = match output::range(req.range.as_deref(), len)? {
        Some((s, e)) => (StatusCode::PARTIAL_CONTENT, s, e),
        None => (StatusCode::OK, 0, len),
    };
    let mut reply = Reply::streamed(
        status,
        "application/octet-stream",
        output::raw(path, start, end),
    )
    .header(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"))
    .header(header::CONTENT_LENGTH, HeaderValue::from(end - start));
    if status == StatusCode::PARTIAL_CONTENT {
        if let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{}/{len}", end - 1)) {
            reply = reply.header(header::CONTENT_RANGE, v);
        }
    }
    Ok(reply)
}

/// `GET /api/jobs/{id}/events[?from=O.E]`; `Last-Event-ID` wins over
/// `from`.
#[derive(Debug)]
pub struct EventsRequest {
    id: JobId,
    from: Offsets,
}

impl FromInput for EventsRequest {
    const QUERY: &'static [Param] = &[Param::one("from")];

    fn from_input(input: &Input) -> Result<EventsRequest, ApiError> {
        let from = match input
            .header(header::HeaderName::from_static("last-event-id"))
            .or(input.one("from"))
        {
            Some(id) => Offsets::parse(id)?,
            None => Offsets::default(),
        };
        Ok(EventsRequest {
            id: job_id(input)?,
            from,
        })
    }
}

/// Follows the job live (see `jobs::follow`).
pub async fn events(cx: &Ctx, req: EventsRequest) -> Result<Reply, ApiError> {
    let caller = cx.caller()?.clone();
    let state = cx.state.clone();
    let id = req.id;
    let change = state.hub.subscribe(id);
    let (s, c) = (state.clone(), caller.clone());
    blocking(move || lifecycle::find(&s.jobs, &c, id).map(|_| ())).await?;
    let store = state.jobs.clone();
    let ended = move || {
        let meta = store.meta(&id).ok().flatten()?;
        if meta.state.is_live() {
            return None;
        }
        serde_json::to_value(JobView::of(&store, id, &meta)).ok()
    };
    let s = state.clone();
    let recheck = move || {
        if let Ok(Some(mut meta)) = s.jobs.meta(&id) {
            lifecycle::refresh(&s.jobs, &s.helper, id, &mut meta);
        }
    };
    let body = follow::events(Follow {
        store: state.jobs.clone(),
        job: id,
        from: req.from,
        change,
        ended: Box::new(ended),
        recheck: std::sync::Arc::new(recheck),
    });
    Ok(Reply::streamed(StatusCode::OK, "text/event-stream", body)
        .header(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"))
        .header(
            header::HeaderName::from_static("x-accel-buffering"),
            HeaderValue::from_static("no"),
        ))
}
