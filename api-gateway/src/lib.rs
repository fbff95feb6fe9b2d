//! `monitoreo-gateway`: the unprivileged HTTP half of Monitoreo. It reads
//! /proc itself and asks the root helper, over a Unix socket, for every
//! act (signal, renice, run a command); it never holds privilege.
//!
//! # Layout
//! - [`cli`]: argument parsing and `--help`.
//! - [`config`]: TOML → validated [`config::Config`] with defaults.
//! - [`keys`]: API key file, hashing, constant-time lookup, hot reload.
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
//! - [`helper`]: client to the privileged helper (reconnect, backoff).
//! - [`ids`]: `Pid`, `StartTime`, `Target`.
//! - [`audit`]: one JSON line per state-changing request.
//! - [`clock`], [`notify`]: time formatting, `sd_notify`.
#![forbid(unsafe_code)]
#![recursion_limit = "512"]

pub mod api;
pub mod audit;
pub mod cli;
pub mod clock;
pub mod config;
pub mod helper;
pub mod http;
pub mod ids;
pub mod jobs;
pub mod keys;
pub mod notify;
pub mod openapi;
pub mod procs;
pub mod startup;
pub mod state;

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

/// The configuration for a keys command, read with the caller's identity;
/// then, run as root, the switch to the keys directory's owner (see
/// [`keys::act_as_owner`]) before any keys file is touched.
fn keys_config(
    path: Option<&std::path::Path>,
) -> Result<(config::Config, Option<keys::Owner>), RunError> {
    let cfg = config::Config::load(path)?;
    let give_to = keys::act_as_owner(&cfg.state_dir, &cfg.keys_file)?;
    Ok((cfg, give_to))
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
        Command::Serve { config } => {
            startup::serve(config::Config::load(config.as_deref())?).map_err(RunError::Io)
        }
        Command::KeysAdd {
            config,
            name,
            scopes,
            expires,
        } => {
            let (cfg, give_to) = keys_config(config.as_deref())?;
            let token = keys::add(&cfg.keys_file, &name, scopes, expires, give_to)?;
            println!("{token}");
            eprintln!(
                "key {name:?} created in {}; the token above is shown only once",
                cfg.keys_file.display()
            );
            Ok(())
        }
        Command::KeysList { config } => {
            let (cfg, _) = keys_config(config.as_deref())?;
            let now = keys::now_secs();
            for k in keys::load_no_follow(&cfg.keys_file)? {
                let scopes: Vec<&str> = k.scopes.iter().map(|s| s.name()).collect();
                let state = if k.revoked {
                    "revoked"
                } else if k.expires.is_some_and(|e| e <= now) {
                    "expired"
                } else {
                    "active"
                };
                println!(
                    "{}\t{}\tcreated={}\texpires={}\t{state}",
                    k.name,
                    scopes.join(","),
                    jobs::rfc3339(k.created * 1000),
                    k.expires
                        .map(|e| jobs::rfc3339(e * 1000))
                        .unwrap_or_else(|| "never".into()),
                );
            }
            Ok(())
        }
        Command::KeysRevoke { config, name } => {
            let (cfg, give_to) = keys_config(config.as_deref())?;
            keys::revoke(&cfg.keys_file, &name, give_to)?;
            eprintln!("key {name:?} revoked");
            Ok(())
        }
    }
}
