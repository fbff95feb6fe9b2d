//! The root helper of Monitoreo: kill, renice and run commands under an
//! allowlist policy, for the gateway only, over a Unix socket.
//!
//! # Layout
//! - `startup` — from parsed arguments to a serving loop; `cli` the flags.
//! - `server` — the `poll(2)` loop; `conn` one client's framing and
//!   conversation; `decide` what each request gets; `batch` a planned
//!   action on many processes.
//! - `policy`, `rule` — the allowlist and the names of its refusals.
//! - `target`, `proc`, `lineage` — pinning and judging a process.
//! - `jobs`, `spawn`, `ns`, `cgroup`, `home`, `uids` — a job's life: its
//!   uid, namespaces, cgroup, cleanup.
//! - `log`, `socket`, `ids` — the decision log, the socket, validated ids.
//! - `sys` — every `unsafe` system call, and nothing else.
#![deny(unsafe_code)]

mod batch;
pub mod cgroup;
pub mod cli;
mod conn;
mod decide;
pub mod home;
pub mod ids;
pub mod jobs;
mod lineage;
pub mod log;
pub mod ns;
pub mod policy;
mod proc;
pub mod rule;
pub mod server;
pub mod socket;
mod spawn;
pub mod startup;
mod sys;
mod target;
pub mod uids;
