//! The `keys add|list|revoke` commands: load the configuration, give up
//! root the way [`keys::act_as_owner`] says, act on the keys file through
//! [`keys`], and print the result. The keys file format and its safe I/O
//! live in [`keys`]; this module only handles the commands and what they
//! print.

use std::path::Path;

use crate::cli::KeysCommand;
use crate::{config, jobs, keys, RunError};

/// Runs one keys command.
pub fn run(cmd: KeysCommand) -> Result<(), RunError> {
    match cmd {
        KeysCommand::Add {
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
        KeysCommand::List { config } => {
            let (cfg, _) = keys_config(config.as_deref())?;
            list(&keys::load_no_follow(&cfg.keys_file)?);
            Ok(())
        }
        KeysCommand::Revoke { config, name } => {
            let (cfg, give_to) = keys_config(config.as_deref())?;
            keys::revoke(&cfg.keys_file, &name, give_to)?;
            eprintln!("key {name:?} revoked");
            Ok(())
        }
    }
}

/// The configuration for a keys command, read with the caller's identity;
/// then, run as root, the switch to the keys directory's owner (see
/// [`keys::act_as_owner`]) before any keys file is touched.
fn keys_config(path: Option<&Path>) -> Result<(config::Config, Option<keys::Owner>), RunError> {
    let cfg = config::Config::load(path)?;
    let give_to = keys::act_as_owner(&cfg.state_dir, &cfg.keys_file)?;
    Ok((cfg, give_to))
}

/// One line per key: name, scopes, creation, expiry and state, tab
/// separated. Never a secret, nor its hash.
fn list(records: &[keys::KeyRecord]) {
    let now = keys::now_secs();
    for k in records {
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
}
