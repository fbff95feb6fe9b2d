//! Command line: hand-parsed, `serve` and `keys add|list|revoke`.

use std::path::PathBuf;
use std::time::Duration;

use crate::keys::Scope;

/// `--help`, also printed for no command at all.
/// `packaging/man/monitoreo-gateway.8` says the same at more length;
/// `tests/docs.rs` checks that it names every command, option and
/// configuration key here, and that the completions offer them.
pub const HELP: &str = "\
NAME
    monitoreo-gateway - unprivileged HTTP gateway of Monitoreo

SYNOPSIS
    monitoreo-gateway serve [--config PATH]
    monitoreo-gateway keys add NAME --scopes read,signal,renice,exec [--expires 30d] [--cert-subject DN] [--config PATH]
    monitoreo-gateway keys list [--json] [--config PATH]
    monitoreo-gateway keys revoke NAME [--config PATH]
    monitoreo-gateway --help | --version

DESCRIPTION
    serve
        Listens for HTTP/1.1 on the configured address (HTTPS with HTTP/2
        when tls_cert and tls_key are set), lists processes and
        users from /proc, and asks the root helper (over its Unix socket) to
        signal, renice or run commands. Starts even when the helper is not
        reachable; /healthz says so and calls are retried with backoff.
        Sends READY=1 / STOPPING=1 to $NOTIFY_SOCKET. SIGTERM or SIGINT
        finish in-flight requests and exit. SIGHUP reloads the TLS
        certificate, key and client CA (so does a change to those files);
        open connections are kept.

    keys add NAME --scopes LIST [--expires DURATION]
        Creates an API key and prints its token (mon_...) alone on the first
        line of stdout; it is shown only once. Only its SHA-256 is stored.
        NAME is 1-64 characters of A-Z a-z 0-9 - _ .
        Scopes: read (GET routes), signal (DELETE /api/ps), renice
        (PATCH /api/ps), exec (POST /api/ps and GET /api/ps/output/ID),
        metrics (GET /metrics, unless metrics_public = true).
        DURATION is a number with s, m, h or d suffix.
        With --cert-subject DN (e.g. \"CN=ops,O=Example\": a comma between
        RDNs, a plus between the attributes of one), the key authenticates
        by a client certificate with that subject, verified against
        tls_client_ca, instead of a token: none is printed.

    keys list [--json]
        Prints name, scopes, creation, expiry and state of every key, one
        tab-separated line each; with --json, a JSON array of objects
        {name, scopes, created, expires, revoked, state} (times in Unix
        seconds, expires null for never). Never a token or its hash. Without
        a keys file it says so on stderr and exits 0.

    keys revoke NAME
        Revokes the key; the running gateway refuses it at once.

    A running gateway picks up key changes without a restart. Run as root,
    the keys commands first become the user who owns the directories on
    the way to the keys file (with the default keys_file, the owner of
    state_dir: its uid and gid, no other groups); directories of two
    different users there are an error. If root owns them all, they stay
    root and give the keys file to the owner of state_dir. keys add makes
    a missing state_dir mode 0700 for the gateway's user: the owner of
    the directory above it, or else the user monitoreo (root, without
    that user). They never
    follow a symbolic link at the keys file or at its directory: one is an
    error naming it.

OPTIONS
    --config PATH
        Gateway configuration (TOML). Default /etc/monitoreo/gateway.toml;
        when that file does not exist, built-in defaults are used.
    --scopes LIST
    --expires DURATION
    --cert-subject DN
        keys add only (see above).
    --json
        keys list only (see above).
    -h, --help
        This text; after keys, the keys commands' usage.
    -V, --version
        The version.

CONFIGURATION (every key optional)
    listen = \"127.0.0.1:8470\"               address:port or host:port
    helper_socket = \"/run/monitoreo/privhelper.sock\"
    reader_socket = \"/run/monitoreo-reader/reader.sock\"
                                            other users' private fields (\"\": none)
    state_dir = \"/var/lib/monitoreo\"      keys.json and jobs/
    keys_file = \"<state_dir>/keys.json\"
    audit_log = \"\"                          JSON lines file; \"\" = stderr
    output_retention = \"7d\"                 finished jobs older are deleted
                                            (older name: job_retention)
    output_quota = \"2G\"                     stored output plus running jobs'
                                            ceilings; a job that could exceed
                                            it is refused (507)
    key_output_quota = <output_quota / 4>   the same for one key's jobs
    key_max_running_jobs = <max_jobs / 2>   one key's jobs at once (429);
                                            max_jobs is the helper's
    key_max_job_records = 1000              jobs one key keeps; past it its
                                            oldest finished ones are deleted
    default_timeout_s = 10                  POST /api/ps without timeout_s
    max_connections = 114                   connections at once (what fits in
                                            MemoryMax=256M; fewer if
                                            RLIMIT_NOFILE says so)
    max_connections_per_client = 64         from one address (IPv6: /64)
    header_timeout_s = 10                   to send the request head
    body_timeout_s = 30                     to send the whole body
    body_min_rate = 1024                    bytes/s a body keeps up; 0 = off
    keepalive_timeout_s = 5                 an idle connection is closed
    send_timeout_s = 30                     a response not read is dropped
    auth_failures_per_minute = 20           per address, then 429; 0 = off
    tls_cert = \"\"                           PEM chain: serve HTTPS and HTTP/2
    tls_key = \"\"                            PEM private key
    tls_client_ca = \"\"                      PEM CA for client certificates
    allow_plaintext = false                 plain HTTP beyond loopback
    cpu_window_s = 1.0                      cpu_percent covers 1/4x..10x this
    metrics_public = false                  GET /metrics without a key
    require_start_time = false              DELETE/PATCH need start_time
    metrics.groups.max_groups = 64          process groups in /metrics, by
                                            [[metrics.groups.rule]] (group,
                                            name, exe, cmdline, user, cgroup)

    A host name in listen (\"localhost:8470\") is resolved when the
    configuration is loaded, and one address is bound: the first IPv4
    address of the name, or its first address when it has no IPv4 one. A
    name that does not resolve is a configuration error. A listen address
    beyond loopback without tls_cert is refused unless allow_plaintext =
    true (then a warning is printed at start).

EXIT STATUS
    0   success; also monitoreo-gateway alone and monitoreo-gateway keys
        alone, which print this text and the keys usage
    1   runtime error: configuration, keys file, listening, the runtime
    2   usage error: unknown command or option, missing or bad argument

SEE ALSO
    monitoreo-gateway(8), the same at more length; monitoreo-privhelper(8)
";

/// What `monitoreo-gateway keys` alone, or with `--help`, prints.
pub const KEYS_HELP: &str = "\
Usage:
    monitoreo-gateway keys add NAME --scopes LIST [--expires DURATION] [--cert-subject DN] [--config PATH]
    monitoreo-gateway keys list [--json] [--config PATH]
    monitoreo-gateway keys revoke NAME [--config PATH]

Commands:
    add NAME      create a key and print its token once; LIST is a comma list
                  of read, signal, renice, exec, admin, metrics; DURATION like
                  30d, 12h, 15m; --cert-subject DN: authenticate by client
                  certificate instead
    list          name, scopes, creation, expiry and state of every key
                  (--json: a JSON array; never a token or its hash)
    revoke NAME   refuse the key from now on (no restart needed)

--config PATH is the gateway configuration (default /etc/monitoreo/gateway.toml).
monitoreo-gateway --help says who the keys commands act as when run as root.
";

#[derive(Debug, PartialEq)]
pub enum Command {
    /// `--help`, or no command at all.
    Help,
    Version,
    Serve {
        config: Option<PathBuf>,
    },
    Keys(KeysCommand),
}

/// `keys add|list|revoke`, run by `keys_cmd`.
#[derive(Debug, PartialEq)]
pub enum KeysCommand {
    /// `keys` alone or with `--help`: the keys usage.
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

/// Options that take a value (the next argument).
const TAKES_VALUE: [&str; 4] = ["--config", "--scopes", "--expires", "--cert-subject"];

/// Parses `args` (without the program name). Errors are usage messages.
///
/// `--help` anywhere wins over everything else; after `keys` it asks for
/// the keys usage. A command group without its command (nothing at all,
/// or `keys` alone) is a request for its help, not an error.
pub fn parse(args: &[String]) -> Result<Command, String> {
    if args.iter().any(|a| a == "-h" || a == "--help") {
        return Ok(match first_word(args) {
            Some("keys") => Command::Keys(KeysCommand::Help),
            _ => Command::Help,
        });
    }
    let mut config = None;
    let mut scopes = None;
    let mut expires = None;
    let mut cert_subject = None;
    let mut json = false;
    let mut positional = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match a.as_str() {
            "-V" | "--version" => return Ok(Command::Version),
            "--config" => config = Some(PathBuf::from(value("--config")?)),
            "--scopes" => scopes = Some(parse_scopes(&value("--scopes")?)?),
            "--expires" => {
                let v = value("--expires")?;
                expires = Some(
                    crate::config::parse_duration(&v)
                        .filter(|d| !d.is_zero())
                        .ok_or_else(|| format!("--expires {v:?} is not like 30d, 12h, 15m"))?,
                );
            }
            "--cert-subject" => cert_subject = Some(value("--cert-subject")?),
            "--json" => json = true,
            s if s.starts_with('-') => return Err(format!("unknown option {s:?}")),
            s => positional.push(s),
        }
    }
    let cmd = match positional.as_slice() {
        [] => Command::Help,
        ["serve"] => Command::Serve { config },
        ["keys"] => Command::Keys(KeysCommand::Help),
        ["keys", "add", name] => {
            if !crate::keys::valid_name(name) {
                return Err(format!("key name {name:?}: {}", crate::keys::NAME_RULE));
            }
            Command::Keys(KeysCommand::Add {
                config,
                name: (*name).into(),
                scopes: scopes.take().ok_or("keys add needs --scopes")?,
                expires: expires.take(),
                cert_subject: cert_subject.take(),
            })
        }
        ["keys", "list"] => Command::Keys(KeysCommand::List {
            config,
            json: std::mem::take(&mut json),
        }),
        ["keys", "revoke", name] => Command::Keys(KeysCommand::Revoke {
            config,
            name: (*name).into(),
        }),
        ["keys", sub @ ("add" | "revoke")] => return Err(format!("keys {sub} needs a NAME")),
        ["keys", sub, ..] if !["add", "list", "revoke"].contains(sub) => {
            return Err(format!(
                "unknown keys command {sub:?} (add, list or revoke)"
            ))
        }
        other => return Err(format!("unknown command {:?}", other.join(" "))),
    };
    // The command took the options it uses; one left over is another's.
    if scopes.is_some() || expires.is_some() || cert_subject.is_some() {
        let flag = if scopes.is_some() {
            "--scopes"
        } else if expires.is_some() {
            "--expires"
        } else {
            "--cert-subject"
        };
        return Err(format!("{flag} is only for keys add"));
    }
    if json {
        return Err("--json is only for keys list".into());
    }
    Ok(cmd)
}

/// Where to look after a usage error in `args`.
pub fn help_hint(args: &[String]) -> &'static str {
    match first_word(args) {
        Some("keys") => "monitoreo-gateway keys --help",
        _ => "monitoreo-gateway --help",
    }
}

/// The first argument that is neither an option nor an option's value.
fn first_word(args: &[String]) -> Option<&str> {
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if TAKES_VALUE.contains(&a.as_str()) {
            it.next();
        } else if !a.starts_with('-') {
            return Some(a);
        }
    }
    None
}

/// `read,exec` → scopes, without duplicates; at least one.
fn parse_scopes(v: &str) -> Result<Vec<Scope>, String> {
    let mut list = Vec::new();
    for s in v.split(',').filter(|s| !s.is_empty()) {
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
                cert_subject: None,
            })
        );
        assert!(matches!(
            parse(&v("keys add ops --scopes read --cert-subject CN=ops")).unwrap(),
            Command::Keys(KeysCommand::Add { cert_subject: Some(s), .. }) if s == "CN=ops"
        ));
        assert!(parse(&v("keys list --cert-subject CN=ops")).is_err());
        assert!(parse(&v("keys add ops --scopes root")).is_err());
        assert!(parse(&v("frobnicate")).is_err());
    }

    #[test]
    fn a_group_without_its_command_asks_for_its_usage() {
        assert_eq!(parse(&[]).unwrap(), Command::Help);
        assert_eq!(parse(&v("keys")).unwrap(), Command::Keys(KeysCommand::Help));
        assert_eq!(
            parse(&v("--config x keys add --help")).unwrap(),
            Command::Keys(KeysCommand::Help)
        );
        assert_eq!(parse(&v("serve --help")).unwrap(), Command::Help);
    }

    #[test]
    fn flags_of_another_command_are_usage_errors() {
        assert!(parse(&v("serve --json")).is_err());
        assert!(parse(&v("keys list --scopes read")).is_err());
        assert!(parse(&v("keys add ops --scopes read --json")).is_err());
        assert!(parse(&v("keys revoke ops --expires 1d")).is_err());
        assert!(parse(&v("keys frob")).is_err());
        assert!(parse(&v("keys add")).is_err());
        assert!(parse(&v("keys add bad/name --scopes read")).is_err());
        assert_eq!(
            parse(&v("keys list --json")).unwrap(),
            Command::Keys(KeysCommand::List {
                config: None,
                json: true
            })
        );
    }
}
