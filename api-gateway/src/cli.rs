//! Command line: hand-parsed, `serve` and `keys add|list|revoke`.

use std::path::PathBuf;
use std::time::Duration;

use crate::keys::Scope;

pub const HELP: &str = "\
NAME
    monitoreo-gateway - unprivileged HTTP gateway of Monitoreo

SYNOPSIS
    monitoreo-gateway serve [--config PATH]
    monitoreo-gateway keys add NAME --scopes read,signal,renice,exec [--expires 30d] [--config PATH]
    monitoreo-gateway keys list [--config PATH]
    monitoreo-gateway keys revoke NAME [--config PATH]
    monitoreo-gateway --help | --version

DESCRIPTION
    serve
        Listens for HTTP/1.1 on the configured address, lists processes and
        users from /proc, and asks the root helper (over its Unix socket) to
        signal, renice or run commands. Starts even when the helper is not
        reachable; /healthz says so and calls are retried with backoff.
        Sends READY=1 / STOPPING=1 to $NOTIFY_SOCKET. SIGTERM or SIGINT
        finish in-flight requests and exit.

    keys add NAME --scopes LIST [--expires DURATION]
        Creates an API key and prints its token (mon_...) alone on the first
        line of stdout; it is shown only once. Only its SHA-256 is stored.
        Scopes: read (GET routes), signal (DELETE /api/ps), renice
        (PATCH /api/ps), exec (POST /api/ps and GET /api/ps/output/ID).
        DURATION is a number with s, m, h or d suffix.

    keys list
        Prints name, scopes, creation, expiry and state of every key (never
        a secret).

    keys revoke NAME
        Revokes the key; the running gateway refuses it at once.

    A running gateway picks up key changes without a restart. Run as root,
    the keys commands first become the user who owns the directories on
    the way to the keys file (with the default keys_file, the owner of
    state_dir: its uid and gid, no other groups); directories of two
    different users there are an error. If root owns them all, they stay
    root and give the keys file to the owner of state_dir. They never
    follow a symbolic link at the keys file or at its directory: one is an
    error naming it.

OPTIONS
    --config PATH
        Gateway configuration (TOML). Default /etc/monitoreo/gateway.toml;
        when that file does not exist, built-in defaults are used.

CONFIGURATION (every key optional)
    listen = \"127.0.0.1:8470\"
    helper_socket = \"/run/monitoreo/privhelper.sock\"
    state_dir = \"/var/lib/monitoreo\"      keys.json and jobs/
    keys_file = \"<state_dir>/keys.json\"
    audit_log = \"\"                          JSON lines file; \"\" = stderr
    job_retention = \"7d\"                    finished jobs older are deleted
    default_timeout_s = 10                  POST /api/ps without timeout_s
    max_connections = 256
    header_timeout_s = 10
    cpu_window_s = 1.0

EXIT STATUS
    0 success, 1 runtime error, 2 usage error.
";

#[derive(Debug, PartialEq)]
pub enum Command {
    Help,
    Version,
    Serve { config: Option<PathBuf> },
    Keys(KeysCommand),
}

/// `keys add|list|revoke`, run by [`crate::keys_cmd`].
#[derive(Debug, PartialEq)]
pub enum KeysCommand {
    Add {
        config: Option<PathBuf>,
        name: String,
        scopes: Vec<Scope>,
        expires: Option<Duration>,
    },
    List {
        config: Option<PathBuf>,
    },
    Revoke {
        config: Option<PathBuf>,
        name: String,
    },
}

/// Parses `args` (without the program name). Errors are usage messages.
pub fn parse(args: &[String]) -> Result<Command, String> {
    let mut config = None;
    let mut scopes = None;
    let mut expires = None;
    let mut positional = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match a.as_str() {
            "-h" | "--help" => return Ok(Command::Help),
            "-V" | "--version" => return Ok(Command::Version),
            "--config" => config = Some(PathBuf::from(value("--config")?)),
            "--scopes" => {
                let v = value("--scopes")?;
                let mut list = Vec::new();
                for s in v.split(',').filter(|s| !s.is_empty()) {
                    let sc = Scope::parse(s).ok_or_else(|| {
                        format!("unknown scope {s:?} (read, signal, renice, exec)")
                    })?;
                    if !list.contains(&sc) {
                        list.push(sc);
                    }
                }
                if list.is_empty() {
                    return Err("--scopes needs at least one scope".into());
                }
                scopes = Some(list);
            }
            "--expires" => {
                let v = value("--expires")?;
                expires = Some(
                    crate::config::parse_duration(&v)
                        .filter(|d| !d.is_zero())
                        .ok_or_else(|| format!("--expires {v:?} is not like 30d, 12h, 15m"))?,
                );
            }
            s if s.starts_with('-') => return Err(format!("unknown option {s:?}")),
            s => positional.push(s.to_string()),
        }
    }
    let p: Vec<&str> = positional.iter().map(String::as_str).collect();
    match p.as_slice() {
        ["serve"] => Ok(Command::Serve { config }),
        ["keys", "add", name] => Ok(Command::Keys(KeysCommand::Add {
            config,
            name: (*name).into(),
            scopes: scopes.ok_or("keys add needs --scopes")?,
            expires,
        })),
        ["keys", "list"] => Ok(Command::Keys(KeysCommand::List { config })),
        ["keys", "revoke", name] => Ok(Command::Keys(KeysCommand::Revoke {
            config,
            name: (*name).into(),
        })),
        [] => Err("missing command (serve or keys)".into()),
        other => Err(format!("unknown command {:?}", other.join(" "))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn keys_add_parses_scopes_and_expiry() {
        assert_eq!(
            parse(&v("keys add ops --scopes read,exec --expires 1d")).unwrap(),
            Command::Keys(KeysCommand::Add {
                config: None,
                name: "ops".into(),
                scopes: vec![Scope::Read, Scope::Exec],
                expires: Some(Duration::from_secs(86400)),
            })
        );
        assert!(parse(&v("keys add ops --scopes root")).is_err());
        assert!(parse(&v("frobnicate")).is_err());
    }
}
