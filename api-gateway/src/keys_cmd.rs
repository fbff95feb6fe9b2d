//! The `keys add|list|revoke` commands: load the configuration, give up
//! root the way [`keys::act_as_owner`] says, act on the keys file through
//! [`keys`], and print the result. The keys file format and its safe I/O
//! live in [`keys`]; this module only handles the commands and what they
//! print. Nothing printed here carries a token's hash: the output of
//! `keys list` is built field by field, so a field added to the records
//! later is not shown until someone decides it may be.

use std::path::Path;

use serde_json::json;

use crate::args::KeysCommand;
use crate::run_error::RunError;
use crate::{clock, config, keys};

/// Runs one keys command.
pub fn run(cmd: KeysCommand) -> Result<(), RunError> {
    match cmd {
        KeysCommand::Help => {
            print!("{}", crate::cli::keys_help());
            Ok(())
        }
        KeysCommand::Add {
            config,
            name,
            scopes,
            expires,
            cert_subject,
        } => {
            let (cfg, give_to) = keys_config(config.as_deref(), true)?;
            let idle_admin = admin_without_effect(&scopes);
            let token = keys::add(
                &cfg.keys_file,
                &name,
                scopes,
                expires,
                cert_subject.as_deref(),
                give_to,
            )?;
            match cert_subject {
                // The token of a certificate key is never shown: the
                // certificate is the credential.
                Some(s) => eprintln!(
                    "key {name:?} created in {}; it authenticates by a client certificate \
                     with subject {s} (verified against tls_client_ca), and has no token",
                    cfg.keys_file.display()
                ),
                None => {
                    println!("{token}");
                    eprintln!(
                        "key {name:?} created in {}; the token above is shown only once",
                        cfg.keys_file.display()
                    );
                }
            }
            if idle_admin {
                eprintln!(
                    "warning: key {name:?} has admin but none of exec, signal, renice, so admin \
                     gives it nothing: admin widens only what those reach (every key's jobs with \
                     exec, the processes of other keys' jobs with signal or renice)"
                );
            }
            Ok(())
        }
        KeysCommand::List { config, json } => {
            let (cfg, _) = keys_config(config.as_deref(), false)?;
            let records = keys::read_no_follow(&cfg.keys_file)?;
            let records = match records {
                Some(r) => {
                    if r.is_empty() {
                        eprintln!(
                            "no keys in {}; {}",
                            cfg.keys_file.display(),
                            create_hint(config.as_deref())
                        );
                    }
                    r
                }
                None => {
                    eprintln!(
                        "no keys file at {}: no keys yet; {}",
                        cfg.keys_file.display(),
                        create_hint(config.as_deref())
                    );
                    Vec::new()
                }
            };
            if json {
                println!("{}", list_json(&records, clock::now_secs()));
            } else {
                list(&records);
            }
            Ok(())
        }
        KeysCommand::Revoke { config, name } => {
            let (cfg, give_to) = keys_config(config.as_deref(), false)?;
            keys::revoke(&cfg.keys_file, &name, give_to)?;
            eprintln!("key {name:?} revoked");
            Ok(())
        }
    }
}

/// Whether `scopes` hold `admin` where it cannot matter. Such a key is
/// still created (its other scopes work, and refusing would break scripts
/// that add keys with a fixed list), but it is said aloud, since whoever
/// asked for `admin` most likely expected it to grant something.
fn admin_without_effect(scopes: &[keys::Scope]) -> bool {
    use keys::Scope::{Admin, Exec, Renice, Signal};
    scopes.contains(&Admin) && ![Exec, Signal, Renice].iter().any(|s| scopes.contains(s))
}

/// The configuration for a keys command, read with the caller's identity;
/// then, for `keys add` (`make`), a missing state dir made 0700 for the
/// gateway's user ([`keys::make_state_dir`]), so that the switch that
/// follows sees whose it is; then, run as root, the switch to the keys
/// directory's owner (see [`keys::act_as_owner`]) before any keys file is
/// touched.
fn keys_config(
    path: Option<&Path>,
    make: bool,
) -> Result<(config::Config, Option<keys::Owner>), RunError> {
    let cfg = config::Config::load(path)?;
    if make {
        match keys::make_state_dir(&cfg.state_dir)? {
            Some(o) if o.uid.is_root() => eprintln!(
                "made state_dir {dir} (mode 0700) for root: there is no user {user:?}; \
                 if the gateway runs as another user, give it the directory: \
                 chown USER:GROUP {dir}",
                dir = cfg.state_dir.display(),
                user = keys::GATEWAY_USER,
            ),
            Some(o) => eprintln!(
                "made state_dir {} (mode 0700) for {:?} (uid {}), the gateway's user",
                cfg.state_dir.display(),
                keys::GATEWAY_USER,
                o.uid
            ),
            None => {}
        }
    }
    let give_to = keys::act_as_owner(&cfg.state_dir, &cfg.keys_file)?;
    Ok((cfg, give_to))
}

/// The command that creates a first key, with the same `--config`.
fn create_hint(config: Option<&Path>) -> String {
    let config = config
        .map(|p| format!(" --config {}", p.display()))
        .unwrap_or_default();
    format!(
        "create one with: monitoreo-gateway keys add NAME \
         --scopes read,signal,renice,exec{config}"
    )
}

/// A key's state at `now`.
fn state(k: &keys::KeyRecord, now: u64) -> &'static str {
    if k.revoked {
        "revoked"
    } else if k.expires.is_some_and(|e| e <= now) {
        "expired"
    } else {
        "active"
    }
}

/// `keys list --json`: an array of `{name, scopes, created, expires,
/// revoked, state}`, times in Unix seconds.
fn list_json(records: &[keys::KeyRecord], now: u64) -> serde_json::Value {
    records
        .iter()
        .map(|k| {
            json!({
                "name": k.name,
                "scopes": k.scopes.iter().map(|s| s.name()).collect::<Vec<_>>(),
                "created": k.created,
                "expires": k.expires,
                "revoked": k.revoked,
                "state": state(k, now),
                "cert_subject": k.cert_subject,
            })
        })
        .collect()
}

/// One line per key: name, scopes, creation, expiry and state, tab
/// separated.
fn list(records: &[keys::KeyRecord]) {
    let now = clock::now_secs();
    for k in records {
        let scopes: Vec<&str> = k.scopes.iter().map(|s| s.name()).collect();
        let state = state(k, now);
        let subject = k
            .cert_subject
            .as_ref()
            .map(|s| format!("\tcert_subject={s}"))
            .unwrap_or_default();
        println!(
            "{}\t{}\tcreated={}\texpires={}\t{state}{subject}",
            k.name,
            scopes.join(","),
            clock::rfc3339(k.created * 1000),
            k.expires
                .map(|e| clock::rfc3339(e * 1000))
                .unwrap_or_else(|| "never".into()),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{KeyRecord, Scope};

    #[test]
    fn admin_is_idle_only_without_exec_signal_and_renice() {
        use Scope::*;
        for scopes in [&[Admin][..], &[Read, Admin], &[Admin, Metrics, Read]] {
            assert!(admin_without_effect(scopes), "{scopes:?}");
        }
        for scopes in [
            &[Admin, Exec][..],
            &[Admin, Signal],
            &[Renice, Admin],
            &[Read],
            &[],
        ] {
            assert!(!admin_without_effect(scopes), "{scopes:?}");
        }
    }

    #[test]
    fn json_listing_has_every_field_but_the_hash() {
        let k = |name: &str, expires, revoked| KeyRecord {
            name: name.into(),
            sha256: "ab".repeat(32),
            scopes: vec![Scope::Read, Scope::Exec],
            created: 100,
            expires,
            revoked,
            cert_subject: None,
        };
        let v = list_json(
            &[
                k("a", None, false),
                k("b", Some(150), false),
                k("c", None, true),
            ],
            200,
        );
        let text = v.to_string();
        assert!(!text.contains("sha256") && !text.contains(&"ab".repeat(32)));
        assert_eq!(
            v[0],
            json!({"name": "a", "scopes": ["read", "exec"], "created": 100,
                   "expires": null, "revoked": false, "state": "active",
                   "cert_subject": null})
        );
        assert_eq!(v[1]["state"], "expired");
        assert_eq!(v[2]["state"], "revoked");
    }
}
