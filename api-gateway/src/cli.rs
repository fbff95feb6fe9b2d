//! The command line, defined once with clap: `main` parses with it and
//! `build.rs` renders the man page and the bash, zsh and fish completions
//! from it, so this file uses nothing but clap and std. What the values
//! mean (scopes, names, durations) is checked in `args.rs`.

use std::path::PathBuf;

use clap::{CommandFactory, Parser, Subcommand};

/// Unprivileged HTTP gateway of Monitoreo.
#[derive(Debug, Parser)]
#[command(
    name = "monitoreo-gateway",
    version,
    disable_help_subcommand = true,
    about = "Unprivileged HTTP gateway of Monitoreo",
    long_about = "Unprivileged HTTP gateway of Monitoreo: lists processes and users from \
        /proc, asks the root helper (over its Unix socket) to signal, renice or run \
        commands, and keeps their output. Without a command, prints this text.",
    after_long_help = AFTER
)]
pub struct Cli {
    /// Gateway configuration (TOML). Default /etc/monitoreo/gateway.toml;
    /// when that file does not exist, built-in defaults are used
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the HTTP API: what the unit runs
    #[command(
        long_about = "Listens for HTTP/1.1 on the configured address (HTTPS with \
        HTTP/2 when tls_cert and tls_key are set), lists processes and users from /proc, \
        and asks the root helper (over its Unix socket) to signal, renice or run commands \
        (POST /api/ps, /api/jobs). Starts even when the helper is not reachable; /healthz \
        says so and calls are retried with backoff. Sends READY=1 / STOPPING=1 to \
        $NOTIFY_SOCKET. SIGTERM or SIGINT finish in-flight requests and exit. SIGHUP \
        reloads the TLS certificate, key and client CA (so does a change to those \
        files); open connections are kept."
    )]
    Serve,
    /// Create, list and revoke API keys (alone: their usage)
    #[command(
        override_usage = "monitoreo-gateway keys add NAME --scopes LIST [--expires DURATION] [--cert-subject DN] [--config PATH]
       monitoreo-gateway keys list [--json] [--config PATH]
       monitoreo-gateway keys revoke NAME [--config PATH]",
        after_long_help = KEYS_AFTER
    )]
    Keys {
        #[command(subcommand)]
        command: Option<Keys>,
    },
}

#[derive(Debug, Subcommand)]
pub enum Keys {
    /// Create an API key and print its token (mon_...) once, alone on the
    /// first line of stdout; only its SHA-256 is stored
    Add {
        /// 1-64 characters of A-Z a-z 0-9 - _ .
        name: String,
        /// Comma list of scopes: read (GET routes), signal (DELETE /api/ps),
        /// renice (PATCH /api/ps), exec (POST /api/ps, /api/jobs and their
        /// output), admin (every key's jobs and processes, with the scopes
        /// it widens), metrics (GET /metrics, unless metrics_public = true)
        #[arg(
            long,
            required = true,
            value_name = "LIST",
            value_delimiter = ',',
            value_parser = ["read", "signal", "renice", "exec", "admin", "metrics"]
        )]
        scopes: Vec<String>,
        /// The key expires after DURATION: a number with s, m, h or d suffix
        #[arg(long, value_name = "DURATION")]
        expires: Option<String>,
        /// Authenticate by a client certificate with this subject, verified
        /// against tls_client_ca, instead of a token (none is printed):
        /// e.g. "CN=ops,O=Example", a comma between RDNs, a plus between the
        /// attributes of one
        #[arg(long, value_name = "DN")]
        cert_subject: Option<String>,
    },
    /// Name, scopes, creation, expiry and state of every key, one
    /// tab-separated line each; never a token or its hash
    List {
        /// A JSON array of {name, scopes, created, expires, revoked, state,
        /// cert_subject} (Unix seconds, expires null for never,
        /// cert_subject null for a token key)
        #[arg(long)]
        json: bool,
    },
    /// Revoke the key; the running gateway refuses it at once
    Revoke {
        /// The key's name
        name: String,
    },
}

/// The long help, for no command at all.
pub fn help() -> String {
    Cli::command().render_long_help().to_string()
}

/// The keys usage, for `keys` alone.
pub fn keys_help() -> String {
    let mut cmd = Cli::command();
    cmd.build();
    cmd.find_subcommand_mut("keys")
        .map(|k| k.render_long_help().to_string())
        .unwrap_or_default()
}

const KEYS_AFTER: &str = "A running gateway picks up key changes without a restart. Run as \
root, the keys commands first become the user who owns the directories on the way to the \
keys file (with the default keys_file, the owner of state_dir: its uid and gid, no other \
groups); directories of two different users there are an error. If root owns them all, \
they stay root and give the keys file to the owner of state_dir. keys add makes a missing \
state_dir mode 0700 for the gateway's user: the owner of the directory above it, or else \
the user monitoreo (root, without that user). They never follow a symbolic link at the \
keys file or at its directory: one is an error naming it.";

const AFTER: &str = "\
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
    max_plan_targets = 100                  targets of a group action's plan
                                            unless it asks for more (at most
                                            256); past it 422
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
                                            rules: [[metrics.groups.rule]]
                                            (group, name, exe, cmdline, user,
                                            cgroup)

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
    monitoreo-privhelper(8), monitoreo(1)
";
