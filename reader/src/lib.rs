//! The least-privileged reader of Monitoreo: it reads the private fields
//! of other users' processes (`exe`, `cwd`, `num_fds`, `open_files`,
//! `connections`, `io_counters`, `memory_maps`) for the gateway, under
//! the `[read]` section of the policy, holding `CAP_DAC_READ_SEARCH` and
//! `CAP_SYS_PTRACE` and nothing else. It signals nothing, renices
//! nothing, changes no identity after start, and has no network.
//!
//! The gateway uses [`wire`] (and nothing else of this crate) to ask.
//!
//! # Layout
//! - [`wire`] — the request, the per-process answer frames, the framing.
//! - [`policy`] — the `[read]` section: owners and fields.
//! - [`proc`] — one process's private fields, read as the policy allows.
//! - [`net`] — a network namespace's inet sockets by inode.
//! - [`server`] — socket, peer check, a thread per request, SIGHUP.
//! - [`sys`] — the identity and capabilities; the crate's one `unsafe`.
//! - [`cli`] — arguments; [`log`] — the JSON event lines.
#![deny(unsafe_code)]

pub mod cli;
pub mod log;
pub mod net;
pub mod policy;
pub mod proc;
pub mod server;
#[allow(unsafe_code)]
pub mod sys;
pub mod wire;
