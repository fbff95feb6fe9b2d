//! The typed frames spoken between `monitoreo-gateway` (unprivileged) and
//! `monitoreo-privhelper` (root) over a Unix stream socket.
//!
//! This crate is the trust boundary written down: every byte the helper
//! acts on is decoded here, with a length cap checked before any payload is
//! buffered and a size limit on decoding. Decoding never panics; a truncated
//! or garbage frame is a [`FrameError`] value.
//!
//! # Layout
//! - [`message`]: the request and response enums, [`Target`], [`Signal`],
//!   [`JobId`]: what may be asked and answered, nothing more.
//! - [`frame`]: `u32` little-endian length + bincode payload; incremental
//!   decoding for the helper's non-blocking loop.
//! - [`fdpass`]: receiving file descriptors with `SCM_RIGHTS` (the only
//!   module with `unsafe`).
//!
//! The client that speaks these frames (handshake, request, reply, the
//! job event stream) is the gateway's; the helper never runs one.
#![deny(unsafe_code)]

pub mod fdpass;
pub mod frame;
pub mod message;

pub use frame::{decode_frame, encode_frame, FrameError, MAX_FRAME};
pub use message::{
    Action, Caller, Containment, Envelope, ExePin, HelperInfo, Isolation, JobId, JobLimits,
    JobState, JobStatus, Outcome, Pinned, PolicyView, Request, Response, Signal, Target, MAX_BATCH,
    PROTOCOL_VERSION,
};
