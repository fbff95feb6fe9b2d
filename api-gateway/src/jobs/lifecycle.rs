//! A job's life as the gateway drives it: [`start`] admits it under the
//! key's and the store's limits, creates its files, watches them, hands
//! their descriptors to the helper with the command and records the
//! helper's answer; [`find`] reads a job back for a key that may see it
//! (every route, the old output route's included); [`cancel`] asks the helper to kill it; [`delete`] cancels a
//! live job or removes a finished one. All block (files, the helper's
//! socket): callers run them off the async threads.

use std::os::fd::AsFd;

use protocol::{Isolation, JobId, Request, Response};

use super::admit::{self, Limits};
use super::hub::Hub;
use super::meta::Meta;
use super::owners::Owners;
use super::store::JobStore;
use crate::clock::now_ms;
use crate::error::ApiError;
use crate::helper::{self, Helper};
use crate::keys::{Caller, Scope};

/// A job the helper accepted.
pub struct Started {
    pub id: JobId,
    pub meta: Meta,
}

/// Starts `cmd` for `owner` with a timeout in seconds, unless `limits`
/// refuse it: then nothing is started and nothing stored is touched. A key
/// at its record limit gives up its oldest finished jobs first. The job's
/// uid is entered in `owners` as soon as the helper names it, so listings
/// withhold its processes from other keys.
#[allow(clippy::too_many_arguments)]
pub fn start(
    store: &JobStore,
    helper: &Helper,
    hub: &Hub,
    owners: &Owners,
    owner: &str,
    cmd: &str,
    timeout_s: u64,
    limits: &Limits,
) -> Result<Started, ApiError> {
    // The output ceiling per stream is the helper's (RLIMIT_FSIZE), and
    // the default running limit a share of its slots.
    let (ceiling, max_jobs, shared_uid) = match helper.call(&Request::Info, &[])? {
        Response::Info(info) => (
            info.limits.rlimit_fsize,
            info.max_jobs,
            info.isolation == Isolation::SharedUser,
        ),
        other => {
            return Err(ApiError::BadGateway(format!(
                "unexpected answer to info: {other:?}"
            )))
        }
    };
    let needed = ceiling.saturating_mul(2);
    // Until the job is created (and so counted), no other start is
    // admitted.
    let _admission = store.admission();
    let evicted = admit::admit(&store.index(), limits, owner, needed, max_jobs)?;
    for old in evicted {
        hub.unwatch(&old);
        store.remove(&old);
    }
    let mut raw = [0u8; 16];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut raw)
        .map_err(|_| ApiError::Internal("OS random generator failed".into()))?;
    let id = JobId(raw);
    let mut meta = Meta {
        shared_uid,
        ..Meta::starting(owner, cmd, now_ms())
    };
    let (out, err) = store
        .create(&id, &meta, needed)
        .map_err(|e| ApiError::Internal(format!("creating job files: {e}")))?;
    // Watched before the command can write, so no write goes unseen.
    hub.watch(id, &store.dir(&id));
    let req = Request::Spawn {
        job: id,
        command: cmd.to_string(),
        timeout_ms: timeout_s.saturating_mul(1000),
        key: owner.to_string(),
    };
    let status = match helper.call(&req, &[out.as_fd(), err.as_fd()]) {
        Ok(Response::Job(s)) => s,
        Ok(other) => {
            hub.unwatch(&id);
            store.remove(&id);
            return Err(helper::refusal(&other, None).unwrap_or_else(|| {
                ApiError::BadGateway(format!("unexpected answer to spawn: {other:?}"))
            }));
        }
        Err(e) => {
            hub.unwatch(&id);
            store.remove(&id);
            return Err(e);
        }
    };
    // The job may already have ended and its end been recorded: the update
    // keeps an end over this earlier `Running`.
    match store.update(&id, |m| m.apply(&status)) {
        Ok(Some(m)) => meta = m,
        Ok(None) => meta.apply(&status),
        Err(e) => {
            eprintln!("monitoreo-gateway: job {id}: writing meta: {e}");
            meta.apply(&status);
        }
    }
    owners.started(id, &meta);
    Ok(Started { id, meta })
}

/// Whether `caller` may see `meta`'s job: it started it, or it has the
/// `admin` scope.
pub fn visible(caller: &Caller, meta: &Meta) -> bool {
    meta.owner == caller.name || caller.scopes.contains(&Scope::Admin)
}

/// The job's record, if `caller` may see it. A job the caller may not see
/// is "no such job", the same answer as a job that never was; so is one
/// the index does not hold (it is no job of the gateway's).
pub fn find(store: &JobStore, caller: &Caller, id: JobId) -> Result<Meta, ApiError> {
    if store.index().get(id).is_none() {
        return Err(ApiError::NoSuchJob(id));
    }
    store
        .meta(&id)
        .map_err(|e| ApiError::Internal(format!("reading job {id}: {e}")))?
        .filter(|m| visible(caller, m))
        .ok_or(ApiError::NoSuchJob(id))
}

/// Brings a live record up to date with the helper. A helper that does
/// not answer leaves the stored state standing.
pub fn refresh(store: &JobStore, helper: &Helper, id: JobId, meta: &mut Meta) {
    if !meta.state.is_live() {
        return;
    }
    if let Ok(Response::Job(s)) = helper.call(&Request::JobStatus { job: id }, &[]) {
        meta.apply(&s);
        if !meta.state.is_live() {
            if let Err(e) = store.update(&id, |m| m.apply(&s)) {
                eprintln!("monitoreo-gateway: job {id}: writing meta: {e}");
            }
        }
    }
}

/// Asks the helper to kill the whole job (its cgroup). A job that already
/// ended is left as it is: cancelling is idempotent.
pub fn cancel(
    store: &JobStore,
    helper: &Helper,
    caller: &Caller,
    id: JobId,
) -> Result<Meta, ApiError> {
    let mut meta = find(store, caller, id)?;
    if !meta.state.is_live() {
        return Ok(meta);
    }
    match helper.call(&Request::Cancel { job: id }, &[])? {
        Response::Job(s) => {
            meta.apply(&s);
            if !meta.state.is_live() {
                if let Err(e) = store.update(&id, |m| m.apply(&s)) {
                    eprintln!("monitoreo-gateway: job {id}: writing meta: {e}");
                }
            }
            Ok(meta)
        }
        other => Err(helper::refusal(&other, None).unwrap_or_else(|| {
            ApiError::BadGateway(format!("unexpected answer to cancel: {other:?}"))
        })),
    }
}

/// `DELETE /api/jobs/{id}`: a job whose record says it may still run is
/// cancelled and kept (the record then says how it ended, also when it
/// ended on its own just before); one whose record says it ended is
/// removed with its output, and its record returned a last time, so a
/// job is only ever deleted by a client that could have seen it ended.
/// `true`: removed.
pub fn delete(
    store: &JobStore,
    helper: &Helper,
    hub: &Hub,
    caller: &Caller,
    id: JobId,
) -> Result<(Meta, (u64, u64), bool), ApiError> {
    let meta = find(store, caller, id)?;
    if meta.state.is_live() {
        return Ok((cancel(store, helper, caller, id)?, store.sizes(&id), false));
    }
    // Sizes before the files go: the answer describes what was deleted.
    let sizes = store.sizes(&id);
    hub.unwatch(&id);
    if !store.remove(&id) {
        return Err(ApiError::NoSuchJob(id));
    }
    Ok((meta, sizes, true))
}
