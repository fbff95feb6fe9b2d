//! `monitoreo-gateway`: the unprivileged HTTP half of Monitoreo. It reads
//! /proc itself and asks the root helper, over a Unix socket, for every
//! act (signal, renice, run a command); it never holds privilege.
//!
//! # Layout
//! - [`cli`]: argument parsing and `--help`.
//! - [`config`]: TOML → validated [`config::Config`] with defaults.
//! - [`keys`]: API key file, hashing, constant-time lookup, hot reload.
//! - [`keys_cmd`]: the `keys add|list|revoke` commands and what they print.
//! - [`audit`]: one JSON line per state-changing request.
//! - [`helper`]: client to the privileged helper (reconnect, backoff).
//! - [`jobs`]: job output files and metadata under `state_dir/jobs`.
//! - [`server`]: accept loop, limits, graceful shutdown.
//! - [`routes`]: router, authentication, handlers.
//! - [`error`]: the one `ApiError` → HTTP response mapping.
//! - [`openapi`]: the OpenAPI 3.1 document.
//! - [`notify`]: `sd_notify` (READY/STOPPING).
//! - [`procs`]: reading processes and users from /proc, CPU sampler.
#![forbid(unsafe_code)]
#![recursion_limit = "512"]

pub mod audit;
pub mod cli;
pub mod config;
pub mod error;
pub mod helper;
pub mod jobs;
pub mod keys;
pub mod keys_cmd;
pub mod notify;
pub mod openapi;
pub mod procs;
pub mod routes;
pub mod server;

use std::sync::Arc;

/// Everything a request handler needs.
pub struct App {
    pub cfg: config::Config,
    pub keys: keys::KeyStore,
    pub procs: Arc<procs::ProcReader>,
    pub helper: helper::Helper,
    pub jobs: jobs::JobStore,
    pub audit: audit::Audit,
}

/// Error of a top-level command.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error(transparent)]
    Keys(#[from] keys::KeyError),
    #[error("{0}")]
    Io(String),
}

/// `serve`: builds the state and runs the server until a stop signal.
pub fn serve(cfg: config::Config) -> Result<(), RunError> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| RunError::Io(format!("starting the runtime: {e}")))?;
    let jobs = jobs::JobStore::new(&cfg.state_dir)
        .map_err(|e| RunError::Io(format!("{}: {e}", cfg.state_dir.display())))?;
    let audit = audit::Audit::open(cfg.audit_log.as_ref())
        .map_err(|e| RunError::Io(format!("audit log: {e}")))?;
    let app = Arc::new(App {
        keys: keys::KeyStore::new(cfg.keys_file.clone()),
        procs: Arc::new(procs::ProcReader::new(cfg.cpu_window)),
        helper: helper::Helper::new(cfg.helper_socket.clone()),
        jobs,
        audit,
        cfg,
    });
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(app.cfg.listen)
            .await
            .map_err(|e| RunError::Io(format!("listening on {}: {e}", app.cfg.listen)))?;
        let sweeper = app.clone();
        tokio::spawn(async move {
            loop {
                let a = sweeper.clone();
                let _ = tokio::task::spawn_blocking(move || {
                    let n = a.jobs.sweep(a.cfg.job_retention);
                    if n > 0 {
                        eprintln!("monitoreo-gateway: removed {n} expired job(s)");
                    }
                })
                .await;
                tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
            }
        });
        server::serve(app, listener)
            .await
            .map_err(|e| RunError::Io(e.to_string()))
    })
}

/// Runs one parsed command; returns the exit status.
pub fn run(cmd: cli::Command) -> Result<(), RunError> {
    use cli::Command;
    match cmd {
        Command::Help => {
            print!("{}", cli::HELP);
            Ok(())
        }
        Command::Version => {
            println!("monitoreo-gateway {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        Command::Serve { config } => serve(config::Config::load(config.as_deref())?),
        Command::Keys(k) => keys_cmd::run(k),
    }
}
