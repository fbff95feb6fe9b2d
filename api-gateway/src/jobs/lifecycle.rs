//! A job's life as the gateway drives it: [`start`] creates its files,
//! hands their descriptors to the helper with the command and records the
//! helper's answer; [`look`] reads output and state back for the key that
//! started it, asking the helper while the job may still change. Both
//! block (files, the helper's socket): callers run them off the async
//! threads.

use std::os::fd::AsFd;

use protocol::{JobId, Request, Response};

use super::meta::Meta;
use super::store::{JobStore, Output};
use crate::clock::now_ms;
use crate::helper::{self, Helper};
use crate::http::error::ApiError;

/// A job the helper accepted.
pub struct Started {
    pub id: JobId,
    pub meta: Meta,
}

/// Starts `cmd` for `owner` with a timeout in seconds.
pub fn start(
    store: &JobStore,
    helper: &Helper,
    owner: &str,
    cmd: &str,
    timeout_s: u64,
) -> Result<Started, ApiError> {
    let mut raw = [0u8; 16];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut raw)
        .map_err(|_| ApiError::Internal("OS random generator failed".into()))?;
    let id = JobId(raw);
    let mut meta = Meta::starting(owner, cmd, now_ms());
    let (out, err) = store
        .create(&id, &meta)
        .map_err(|e| ApiError::Internal(format!("creating job files: {e}")))?;
    let req = Request::Spawn {
        job: id,
        command: cmd.to_string(),
        timeout_ms: timeout_s.saturating_mul(1000),
    };
    let status = match helper.call(&req, &[out.as_fd(), err.as_fd()]) {
        Ok(Response::Job(s)) => s,
        Ok(other) => {
            store.remove(&id);
            return Err(helper::refusal(&other, None).unwrap_or_else(|| {
                ApiError::BadGateway(format!("unexpected answer to spawn: {other:?}"))
            }));
        }
        Err(e) => {
            store.remove(&id);
            return Err(e);
        }
    };
    meta.apply(&status);
    if let Err(e) = store.write_meta(&id, &meta) {
        eprintln!("monitoreo-gateway: job {id}: writing meta: {e}");
    }
    Ok(Started { id, meta })
}

/// The job's record and output, if `owner` started it. A job another key
/// started is "no such output", the same answer as a job that never was.
pub fn look(
    store: &JobStore,
    helper: &Helper,
    owner: &str,
    id: JobId,
) -> Result<(Meta, Output, Output), ApiError> {
    let mut meta = store
        .meta(&id)
        .map_err(|e| ApiError::Internal(format!("reading job {id}: {e}")))?
        .filter(|m| m.owner == owner)
        .ok_or(ApiError::NoSuchOutput(id))?;
    if meta.state.is_live() {
        // The helper may have restarted and forgotten the job: then the
        // last state stored in meta.json stands.
        if let Ok(Response::Job(s)) = helper.call(&Request::JobStatus { job: id }, &[]) {
            meta.apply(&s);
            if !meta.state.is_live() {
                if let Err(e) = store.write_meta(&id, &meta) {
                    eprintln!("monitoreo-gateway: job {id}: writing meta: {e}");
                }
            }
        }
    }
    let (out, err) = store
        .outputs(&id)
        .map_err(|e| ApiError::Internal(format!("reading output of {id}: {e}")))?;
    Ok((meta, out, err))
}
