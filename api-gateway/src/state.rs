//! The shared state every request sees, built once at start-up and held
//! in one `Arc` (no globals).

use std::sync::Arc;

use bytes::Bytes;

use crate::{audit, config, helper, jobs, keys, metrics, procs};

/// Everything a request handler needs.
pub struct State {
    pub cfg: config::Config,
    pub keys: keys::KeyStore,
    pub procs: Arc<procs::ProcReader>,
    pub helper: helper::Helper,
    pub jobs: jobs::JobStore,
    pub audit: audit::Audit,
    /// The series `/metrics` exports; also held by the helper client.
    pub metrics: Arc<metrics::Metrics>,
    /// The OpenAPI document, serialized once.
    pub openapi: Bytes,
}
