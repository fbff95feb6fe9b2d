//! Command-line arguments, defined once with clap: `main` parses them and
//! `build.rs` generates the man page and completions from this file (so it
//! uses nothing but clap and std). A usage error exits 2.

use std::path::PathBuf;

/// Root helper of Monitoreo: kill, renice and run commands under policy.
#[derive(Debug, clap::Parser)]
#[command(name = "monitoreo-privhelper", version, after_long_help = AFTER)]
#[command(
    long_about = "Root helper of Monitoreo: kill, renice and run commands under policy.

Listens on a Unix socket (or the one systemd passes with LISTEN_FDS) and serves only the \
gateway's uid and root, checked with SO_PEERCRED. Every request is checked against built-in \
protections and the allowlist in the policy file; each decision is logged on stderr. SIGHUP \
reloads the policy (a bad file keeps the old one); SIGTERM kills running jobs and exits. The \
policy file must be owned by root and not writable by group or others; it is refused \
otherwise, at start and on reload."
)]
pub struct Args {
    /// Policy file
    #[arg(
        long,
        value_name = "PATH",
        default_value = "/etc/monitoreo/policy.toml"
    )]
    pub policy: PathBuf,
    /// Socket to create
    #[arg(
        long,
        value_name = "PATH",
        default_value = "/run/monitoreo/privhelper.sock"
    )]
    pub socket: PathBuf,
    /// The one non-root user served (a name or a uid)
    #[arg(long, value_name = "USER", default_value = "monitoreo")]
    pub gateway_user: String,
    /// cgroup v2 directory for job cgroups (default: the helper's own cgroup)
    #[arg(long, value_name = "DIR")]
    pub cgroup_root: Option<PathBuf>,
    /// Connections served at once; a new one evicts the one idle longest
    #[arg(long, value_name = "N", default_value_t = 64, value_parser = positive)]
    pub max_connections: usize,
    /// Close a connection idle this many seconds
    #[arg(long, value_name = "S", default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..))]
    pub idle_timeout_s: u64,
    /// Check the policy (owner, mode, syntax, run identity against the
    /// gateway user), print a summary and any warnings or the error, exit
    #[arg(long)]
    pub check: bool,
}

const AFTER: &str = "EXIT STATUS:
  0  success (--check: the policy is good)
  1  runtime error: the policy is refused, the socket cannot be bound, the gateway user is \
unknown, the poll loop failed
  2  usage error: unknown argument, missing or bad value

SEE ALSO:
  monitoreo-gateway(8), monitoreo(1)";

fn positive(s: &str) -> Result<usize, String> {
    s.parse()
        .ok()
        .filter(|n| *n >= 1)
        .ok_or(format!("{s:?} is not a positive number"))
}
