//! `monitoreo-gateway`: the unprivileged HTTP half of Monitoreo.
//!
//! # Layout
//! - [`procs`]: reading processes and users from /proc, CPU sampler.
#![forbid(unsafe_code)]

pub mod procs;
