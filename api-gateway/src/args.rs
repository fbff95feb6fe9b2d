//! The command line's values checked and typed (the second stage after
//! clap's parse in `cli.rs`): scopes, key names and durations, each error
//! a usage message (exit 2).

use std::path::PathBuf;
use std::time::Duration;

use crate::cli::{self, Cli};
use crate::keys::Scope;

#[derive(Debug, PartialEq)]
pub enum Command {
    /// No command at all: the help.
    Help,
    Serve {
        config: Option<PathBuf>,
    },
    Keys(KeysCommand),
}

/// `keys add|list|revoke`, run by `keys_cmd`.
#[derive(Debug, PartialEq)]
pub enum KeysCommand {
    /// `keys` alone: the keys usage.
    Help,
    Add {
        config: Option<PathBuf>,
        name: String,
        scopes: Vec<Scope>,
        expires: Option<Duration>,
        cert_subject: Option<String>,
    },
    List {
        config: Option<PathBuf>,
        json: bool,
    },
    Revoke {
        config: Option<PathBuf>,
        name: String,
    },
}

/// Checks what clap parsed; an error is a usage message.
pub fn check(cli: Cli) -> Result<Command, String> {
    let config = cli.config;
    Ok(match cli.command {
        None => Command::Help,
        Some(cli::Command::Serve) => Command::Serve { config },
        Some(cli::Command::Keys { command: None }) => Command::Keys(KeysCommand::Help),
        Some(cli::Command::Keys {
            command: Some(k), ..
        }) => Command::Keys(match k {
            cli::Keys::Add {
                name,
                scopes,
                expires,
                cert_subject,
            } => {
                if !crate::keys::valid_name(&name) {
                    return Err(format!("key name {name:?}: {}", crate::keys::NAME_RULE));
                }
                KeysCommand::Add {
                    config,
                    name,
                    scopes: parse_scopes(&scopes)?,
                    expires: expires.map(|v| parse_expiry(&v)).transpose()?,
                    cert_subject,
                }
            }
            cli::Keys::List { json } => KeysCommand::List { config, json },
            cli::Keys::Revoke { name } => KeysCommand::Revoke { config, name },
        }),
    })
}

fn parse_expiry(v: &str) -> Result<Duration, String> {
    crate::config::parse_duration(v)
        .filter(|d| !d.is_zero())
        .ok_or_else(|| format!("--expires {v:?} is not like 30d, 12h, 15m"))
}

/// Scope names → scopes, without duplicates; at least one.
fn parse_scopes(names: &[String]) -> Result<Vec<Scope>, String> {
    let mut list = Vec::new();
    for s in names.iter().filter(|s| !s.is_empty()) {
        let sc = Scope::parse(s).ok_or_else(|| {
            format!("unknown scope {s:?} (read, signal, renice, exec, admin, metrics)")
        })?;
        if !list.contains(&sc) {
            list.push(sc);
        }
    }
    if list.is_empty() {
        return Err("--scopes needs at least one scope".into());
    }
    Ok(list)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    fn parse(s: &str) -> Result<Command, String> {
        let args = std::iter::once("monitoreo-gateway").chain(s.split_whitespace());
        check(Cli::try_parse_from(args).map_err(|e| e.to_string())?)
    }

    #[test]
    fn keys_add_parses_scopes_and_expiry() {
        assert_eq!(
            parse("keys add ops --scopes read,exec,read --expires 1d").unwrap(),
            Command::Keys(KeysCommand::Add {
                config: None,
                name: "ops".into(),
                scopes: vec![Scope::Read, Scope::Exec],
                expires: Some(Duration::from_secs(86400)),
                cert_subject: None,
            })
        );
        assert!(matches!(
            parse("keys add ops --scopes read --cert-subject CN=ops").unwrap(),
            Command::Keys(KeysCommand::Add { cert_subject: Some(s), .. }) if s == "CN=ops"
        ));
        assert!(parse("keys list --cert-subject CN=ops").is_err());
        assert!(parse("keys add ops --scopes root").is_err());
        assert!(parse("keys add ops --scopes read --expires 0d").is_err());
        assert!(parse("frobnicate").is_err());
    }

    #[test]
    fn a_group_without_its_command_asks_for_its_usage() {
        assert_eq!(parse("").unwrap(), Command::Help);
        assert_eq!(parse("keys").unwrap(), Command::Keys(KeysCommand::Help));
        assert_eq!(
            parse("--config x keys").unwrap(),
            Command::Keys(KeysCommand::Help)
        );
    }

    #[test]
    fn flags_of_another_command_are_usage_errors() {
        assert!(parse("serve --json").is_err());
        assert!(parse("keys list --scopes read").is_err());
        assert!(parse("keys add ops --scopes read --json").is_err());
        assert!(parse("keys revoke ops --expires 1d").is_err());
        assert!(parse("keys frob").is_err());
        assert!(parse("keys add").is_err());
        assert!(parse("keys add bad/name --scopes read").is_err());
        assert_eq!(
            parse("keys list --json --config c.toml").unwrap(),
            Command::Keys(KeysCommand::List {
                config: Some("c.toml".into()),
                json: true
            })
        );
    }

    #[test]
    fn the_help_lists_every_command_and_the_configuration() {
        let h = crate::cli::help();
        for w in ["serve", "keys", "CONFIGURATION", "EXIT STATUS", "--config"] {
            assert!(h.contains(w), "{w}: {h}");
        }
        let k = crate::cli::keys_help();
        for w in [
            "keys add NAME",
            "keys list",
            "keys revoke NAME",
            "add",
            "revoke",
        ] {
            assert!(k.contains(w), "{w}: {k}");
        }
    }
}
