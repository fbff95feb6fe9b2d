//! `monitoreo-gateway`: the unprivileged HTTP half of Monitoreo. It reads
//! /proc itself and asks the root helper, over a Unix socket, for every
//! act (signal, renice, run a command); it never holds privilege.
//!
//! # Layout
//! - [`cli`]: argument parsing and `--help`.
//! - [`config`]: TOML → validated [`config::Config`] with defaults.
//! - [`keys`]: API key file, hashing, constant-time lookup, hot reload.
//! - [`keys_cmd`]: the `keys add|list|revoke` commands and what they print.
//! - [`startup`]: `serve` — the state, the route table, the sweeper.
//! - [`state`]: the shared [`state::State`] handlers see.
//! - [`http`]: server, route-table engine (auth, scope, limits, audit),
//!   typed extraction, the one envelope writer, the one error type.
//! - [`api`]: the route table and one module per resource.
//! - [`openapi`]: the OpenAPI 3.1 document, built from the route and
//!   field tables.
//! - [`jobs`]: job files, records and life cycle with a typed state.
//! - [`procs`]: processes and users from /proc, the field table, the CPU
//!   sampler.
//! - [`host`]: the host's own figures (memory, CPU, load, disks,
//!   network), psutil's names, read when asked.
//! - [`metrics`]: `/metrics` in the Prometheus text format: request,
//!   helper, job and host series, with bounded labels.
//! - [`flight`]: single-flight, so concurrent listings share one walk.
//! - [`plans`]: planned group actions, held per key until they expire.
//! - [`helper`]: client to the privileged helper (reconnect, backoff).
//! - [`ids`]: `Pid`, `StartTime`, `Target`.
//! - [`audit`]: one JSON line per authenticated or refused request.
//! - [`reqid`]: request ids, carried to the helper and into both logs.
//! - [`limits`]: the descriptor limit behind the connection cap.
//! - [`budget`]: the memory bound of connections and streams, and the
//!   default connection cap it allows.
//! - [`clock`], [`notify`]: time formatting, `sd_notify`.
//! - [`run_error`]: the error of a top-level command.
#![forbid(unsafe_code)]
#![recursion_limit = "512"]

pub mod api;
pub mod args;
pub mod audit;
pub mod budget;
pub mod cli;
pub mod clock;
pub mod config;
pub mod error;
pub mod flight;
pub mod helper;
pub mod host;
pub mod http;
pub mod ids;
pub mod jobs;
pub mod keys;
pub mod keys_cmd;
pub mod limits;
pub mod metrics;
pub mod notify;
pub mod openapi;
pub mod plans;
pub mod procs;
pub mod reply;
pub mod reqid;
pub mod run_error;
pub mod startup;
pub mod state;
pub mod throttle;
pub mod x509;

pub use run_error::RunError;

/// Runs one parsed command; returns the exit status.
pub fn run(cmd: args::Command) -> Result<(), RunError> {
    use args::Command;
    match cmd {
        Command::Help => {
            print!("{}", cli::help());
            Ok(())
        }
        Command::Serve { config } => {
            // Before the configuration: the default connection cap is
            // sized from the limit in force.
            limits::raise_nofile();
            startup::serve(config::Config::load(config.as_deref())?).map_err(RunError::Io)
        }
        Command::Keys(k) => keys_cmd::run(k),
    }
}
