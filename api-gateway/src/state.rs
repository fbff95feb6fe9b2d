//! The shared state every request sees, built once at start-up and held
//! in one `Arc` (no globals).

use std::sync::Arc;

use bytes::Bytes;

use crate::http::throttle::AuthThrottle;
use crate::{audit, config, helper, jobs, keys, procs};

/// Everything a request handler needs.
pub struct State {
    pub cfg: config::Config,
    pub keys: keys::KeyStore,
    pub procs: Arc<procs::ProcReader>,
    pub helper: helper::Helper,
    pub jobs: jobs::JobStore,
    /// Wakes waiters of a job on output and on its end.
    pub hub: jobs::hub::Hub,
    pub audit: audit::Audit,
    /// Refused authentications per client address.
    pub throttle: AuthThrottle,
    /// The OpenAPI document, serialized once.
    pub openapi: Bytes,
}
