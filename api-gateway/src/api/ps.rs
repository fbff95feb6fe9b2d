//! Processes: `GET /api/ps` (a listing, with `fields`, `user`, `sort`,
//! `limit`) and `GET /api/ps/{pid}` (one process). Both show another
//! key's job processes with the fields that tell what the job was given
//! withheld, unless the caller has `admin` (`jobs::owners`).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::oneshot;
use tokio::time::timeout;

use super::ctx::Ctx;
use crate::budget::{CHUNK, DEPTH};
use crate::error::ApiError;
use crate::flight::{Flights, Run};
use crate::http::extract::{FromInput, Input, Param};
use crate::ids::Pid;
use crate::jobs::owners::{Owners, Viewer};
use crate::procs::{Field, Fields, ListQuery, Live, ProcReader, Single, SortKey};
use crate::reply::{ChannelBody, Envelope, Reply};
use crate::state::Listings;

use super::blocking;

/// `?fields=`, every value of every repetition; `None` when not given
/// (the default fields).
fn fields(input: &Input) -> Result<Option<Fields>, ApiError> {
    let lists = input.list("fields");
    if lists.is_empty() {
        return Ok(None);
    }
    Fields::parse(lists)
        .map(Some)
        .map_err(ApiError::InvalidParameter)
}

/// The listing parameters shared by `/api/ps` and `/api/users/{u}/ps`.
#[derive(Debug, Default)]
pub struct Listing {
    pub fields: Option<Fields>,
    pub sort: Option<SortKey>,
    pub limit: Option<usize>,
}

impl Listing {
    pub const QUERY: [Param; 3] = [
        Param::list("fields"),
        Param::one("sort"),
        Param::one("limit"),
    ];

    pub fn from_input(input: &Input) -> Result<Listing, ApiError> {
        let fields = fields(input)?;
        let sort = input
            .one("sort")
            .map(SortKey::parse)
            .transpose()
            .map_err(ApiError::InvalidParameter)?;
        let limit = input
            .one("limit")
            .map(|v| {
                v.bytes()
                    .all(|b| b.is_ascii_digit())
                    .then(|| v.parse::<usize>().ok())
                    .flatten()
                    .ok_or_else(|| {
                        ApiError::InvalidParameter(format!(
                            "limit must be a non-negative integer, got {v:?}"
                        ))
                    })
            })
            .transpose()?;
        Ok(Listing {
            fields,
            sort,
            limit,
        })
    }
}

/// `GET /api/ps`.
#[derive(Debug)]
pub struct ListRequest {
    pub listing: Listing,
    /// `?user=`: a passwd name or a decimal uid.
    pub user: Option<String>,
}

impl FromInput for ListRequest {
    const QUERY: &'static [Param] = &[
        Param::list("fields"),
        Param::one("user"),
        Param::one("sort"),
        Param::one("limit"),
    ];

    fn from_input(input: &Input) -> Result<ListRequest, ApiError> {
        Ok(ListRequest {
            listing: Listing::from_input(input)?,
            user: input.one("user").map(str::to_string),
        })
    }
}

pub async fn list(cx: &Ctx, req: ListRequest) -> Result<Reply, ApiError> {
    listing(cx, req.listing, req.user).await
}

/// A listing, optionally of one user's processes. Concurrent requests
/// for the same selection share one walk that began after they arrived
/// (`crate::flight`), and one answer body.
pub async fn listing(cx: &Ctx, l: Listing, user: Option<String>) -> Result<Reply, ApiError> {
    let uid = match user {
        Some(u) => {
            let state = cx.state.clone();
            Some(
                blocking(move || state.procs.resolve_user(&u).ok_or(ApiError::NoSuchUser(u)))
                    .await?,
            )
        }
        None => None,
    };
    let q = ListQuery {
        fields: l.fields.unwrap_or_default(),
        uid,
        sort: l.sort,
        limit: l.limit,
    };
    let viewer = Viewer::of(cx.caller()?);
    if q.sort.is_none() && q.fields.any(&BULKY) {
        return streamed(cx, q, viewer).await;
    }
    let body = cx.state.listings.get((q, viewer)).await?;
    Ok(Reply {
        status: hyper::StatusCode::OK,
        headers: Vec::new(),
        body,
        stream: None,
        content_type: "application/json",
    })
}

/// The shared listings of `procs`: each run walks /proc once (off the
/// async threads) and writes the whole answer, withholding what `owners`
/// says its viewer may not see as of the run's start (after every request
/// it answers arrived).
pub fn listings(procs: Arc<ProcReader>, owners: Owners) -> Listings {
    Flights::new(
        move |(q, viewer): (ListQuery, Viewer)| {
            let procs = procs.clone();
            let owners = owners.clone();
            Box::pin(async move { blocking(move || answer(&procs, &owners, &q, &viewer)).await })
                as Run<_>
        },
        Err(ApiError::Internal("the listing failed".into())),
    )
}

/// The lists per process outside the default fields (its mapped files,
/// its sockets): with them a listing is tens of megabytes at a few
/// thousand processes (27 MB at 5,000 with every field), too much to hold
/// whole, so an unsorted one is streamed ([`streamed`]); a sorted one
/// needs every row before the first. The default listing, polled by
/// many at once, stays shared (`crate::flight`).
const BULKY: [Field; 2] = [Field::MemoryMaps, Field::Connections];

/// A client that takes no chunk for this long loses the rest of its
/// listing (the body ends short, so it cannot pass for whole), freeing the
/// walk's turn for the others.
const STALL: Duration = Duration::from_secs(30);

/// An unsorted listing with [`BULKY`] fields: written while it is sent,
/// so the gateway holds a few chunks of it rather than all of it (the
/// answer term of `budget`, except that a chunk is sent once it holds
/// [`CHUNK`] bytes, so it can be one row longer). Each
/// request walks /proc itself (no shared answer to hold), one such walk
/// at a time (`State::bulky`), so concurrent ones cost what a shared
/// walk did in CPU and the reader's work, and the answer still comes
/// from a walk that began after the request arrived.
async fn streamed(cx: &Ctx, q: ListQuery, viewer: Viewer) -> Result<Reply, ApiError> {
    let turn = cx
        .state
        .bulky
        .clone()
        .acquire_owned()
        .await
        .map_err(|_| ApiError::Internal("the listing turns are closed".into()))?;
    let (tx, body) = ChannelBody::channel(DEPTH);
    let (begun, started) = oneshot::channel::<Result<(), ApiError>>();
    let state = cx.state.clone();
    let rt = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(crate::reqid::carry(move || {
        let _turn = turn;
        // Once a piece is lost (the client gone or stalled), nothing more
        // is sent, the closing brace included.
        let cut = std::cell::Cell::new(false);
        let send = |buf: &mut Vec<u8>| {
            let chunk = Bytes::from(std::mem::replace(buf, Vec::with_capacity(CHUNK * 5 / 4)));
            let sent =
                !cut.get() && matches!(rt.block_on(timeout(STALL, tx.send(chunk))), Ok(Ok(())));
            cut.set(!sent);
            sent
        };
        let withhold = state.owners.withhold(&viewer);
        let l = state.procs.prepare(&q, &withhold);
        let cpu = l.cpu;
        let mut out = Envelope::ok()
            .member("cpu_percent_window_s", &cpu.map(|c| c.window_s))
            .member("cpu_percent_age_s", &cpu.map(|c| c.age_s))
            .open();
        out.extend_from_slice(br#""processes":"#);
        let mut begun = Some(begun);
        let mut flush = |buf: &mut Vec<u8>| {
            if let Some(b) = begun.take() {
                let _ = b.send(Ok(()));
            }
            buf.len() < CHUNK || send(buf)
        };
        match l.write(&mut out, &mut flush) {
            Ok(()) => {
                out.push(b'}');
                send(&mut out);
            }
            Err(e) => {
                if let Some(b) = begun.take() {
                    let _ = b.send(Err(e.into()));
                }
            }
        }
    }));
    started
        .await
        .map_err(|_| ApiError::Internal("the listing failed".into()))??;
    Ok(Reply::streamed(
        hyper::StatusCode::OK,
        "application/json",
        body,
    ))
}

/// The envelope of one listing, written in one buffer.
fn answer(
    procs: &ProcReader,
    owners: &Owners,
    q: &ListQuery,
    viewer: &Viewer,
) -> Result<Bytes, ApiError> {
    let withhold = owners.withhold(viewer);
    let l = procs.prepare(q, &withhold);
    let cpu = l.cpu;
    let mut env = Envelope::ok()
        .member("cpu_percent_window_s", &cpu.map(|c| c.window_s))
        .member("cpu_percent_age_s", &cpu.map(|c| c.age_s));
    env.raw_member_with("processes", |out| l.write(out, &mut |_| true))?;
    Ok(env.finish(hyper::StatusCode::OK).body)
}

/// `GET /api/ps/{pid}`.
#[derive(Debug)]
pub struct OneRequest {
    pub pid: Pid,
    pub fields: Option<Fields>,
}

impl FromInput for OneRequest {
    const QUERY: &'static [Param] = &[Param::list("fields")];

    fn from_input(input: &Input) -> Result<OneRequest, ApiError> {
        let pid = input
            .path("pid")?
            .parse()
            .map_err(|e: crate::ids::BadPid| ApiError::InvalidParameter(e.to_string()))?;
        Ok(OneRequest {
            pid,
            fields: fields(input)?,
        })
    }
}

/// One process. Its `cpu_percent` comes from reads of its stat (waiting
/// asynchronously through a short sample after an idle spell), from the
/// same read of stat as the other fields where it can; the
/// process itself is read on the spot, unless a costly field is named
/// (`memory_maps` and `memory_full_info` take the process's memory map
/// lock, `connections` parses the system's socket tables): those go to
/// the blocking pool. A handful of small procfs reads, answered from
/// memory, cost less than the two thread hops.
pub async fn one(cx: &Ctx, req: OneRequest) -> Result<Reply, ApiError> {
    let procs = &cx.state.procs;
    let (pid, fields) = (req.pid, req.fields.unwrap_or_default());
    let withhold = cx.state.owners.withhold(&Viewer::of(cx.caller()?));
    let costly = [Field::MemoryMaps, Field::MemoryFullInfo, Field::Connections];
    let (body, cpu) = if fields.any(&costly) {
        let mut figure = None;
        if fields.has(Field::CpuPercent) {
            figure = Some(loop {
                match procs.cpu_of(pid)? {
                    Single::Figure(f) => break f,
                    Single::WaitUntil(t) => tokio::time::sleep_until(t.into()).await,
                }
            });
        }
        let state = cx.state.clone();
        blocking(move || Ok(state.procs.one_json_with(pid, &fields, figure, &withhold)?)).await?
    } else if fields.has(Field::CpuPercent) {
        loop {
            match procs.one_json_live(pid, &fields, &withhold)? {
                Live::Body(body, cpu) => break (body, cpu),
                Live::WaitUntil(t) => tokio::time::sleep_until(t.into()).await,
            }
        }
    } else {
        procs.one_json_with(pid, &fields, None, &withhold)?
    };
    Ok(Envelope::ok()
        .member("cpu_percent_window_s", &cpu.map(|c| c.window_s))
        .member("cpu_percent_age_s", &cpu.map(|c| c.age_s))
        .raw_member("process", &body)
        .finish(hyper::StatusCode::OK))
}
