//! The shared state every request sees, built once at start-up and held
//! in one `Arc` (no globals).

use std::sync::Arc;

use bytes::Bytes;

use crate::error::ApiError;
use crate::{config, flight, helper, host, jobs, metrics, plans, procs};

/// Listings in flight, shared by the requests for the same selection.
/// A listing is shared only by callers who may see the same: the key
/// carries the viewer.
pub type Listings =
    Arc<flight::Flights<(procs::ListQuery, jobs::owners::Viewer), Result<Bytes, ApiError>>>;

/// Everything a request handler needs.
pub struct State {
    pub cfg: config::Config,
    pub procs: Arc<procs::ProcReader>,
    /// `GET /api/ps` and `/api/users/{u}/ps` answers, one walk shared by
    /// the requests that wait for it.
    pub listings: Listings,
    /// One turn: streamed listings of bulky fields walk one at a time
    /// (`api::ps`).
    pub bulky: Arc<tokio::sync::Semaphore>,
    pub helper: helper::Helper,
    /// The latest read of the host's CPU times, the baseline of the next
    /// `/api/host`.
    pub host_cpu: host::Cpu,
    pub jobs: jobs::JobStore,
    /// Whose job each job uid is, for withholding job processes from
    /// other keys.
    pub owners: jobs::owners::Owners,
    /// Wakes waiters of a job on output and on its end.
    pub hub: jobs::hub::Hub,
    /// The series `/metrics` exports; also held by the helper client.
    pub metrics: Arc<metrics::Metrics>,
    /// Planned group actions awaiting execution, per key.
    pub plans: plans::Plans,
    /// The OpenAPI document, serialized once.
    pub openapi: Bytes,
}
