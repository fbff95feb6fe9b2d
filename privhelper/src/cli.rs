//! Command-line arguments. An error is a usage error (`main` exits 2).

use std::path::PathBuf;

/// `--help`. `packaging/man/monitoreo-privhelper.8` says the same at more
/// length; `tests/docs.rs` checks that it names every option here.
pub const USAGE: &str = "\
monitoreo-privhelper - root helper of Monitoreo: kill, renice and run commands under policy

USAGE
    monitoreo-privhelper [--policy PATH] [--socket PATH] [--gateway-user NAME|UID]
                         [--cgroup-root DIR] [--max-connections N]
                         [--idle-timeout-s S] [--check]

DESCRIPTION
    Listens on a Unix socket (or the one systemd passes with LISTEN_FDS) and
    serves only the gateway's uid and root, checked with SO_PEERCRED. Every
    request is checked against built-in protections and the allowlist in the
    policy file; each decision is logged on stderr. SIGHUP reloads the policy
    (a bad file keeps the old one); SIGTERM kills running jobs and exits.

OPTIONS
    --policy PATH         policy file (default /etc/monitoreo/policy.toml)
    --socket PATH         socket to create (default /run/monitoreo/privhelper.sock)
    --gateway-user USER   the one non-root user served (default monitoreo)
    --cgroup-root DIR     cgroup v2 directory for job cgroups (default: own cgroup)
    --max-connections N   connections served at once; a new one evicts the one
                          idle longest (default 64)
    --idle-timeout-s S    close a connection idle this long (default 300)
    --check               check the policy (owner, mode, syntax, run identity
                          against the gateway user), print a summary and any
                          warnings or the error, exit

    -h, --help            this text
    -V, --version         the version

    The policy file must be owned by root and not writable by group or
    others; it is refused otherwise, at start and on reload.

EXIT STATUS
    0   success (--check: the policy is good)
    1   runtime error: the policy is refused, the socket cannot be bound,
        the gateway user is unknown, the poll loop failed
    2   usage error: unknown argument, missing or bad value

SEE ALSO
    monitoreo-privhelper(8), the same at more length; monitoreo-gateway(8)
";

#[derive(Debug)]
pub struct Args {
    pub policy: PathBuf,
    pub socket: PathBuf,
    pub gateway_user: String,
    pub cgroup_root: Option<PathBuf>,
    pub max_connections: usize,
    pub idle_timeout_s: u64,
    pub check: bool,
}

pub enum Parsed {
    Run(Args),
    Help,
    Version,
}

pub fn parse(mut it: impl Iterator<Item = String>) -> Result<Parsed, String> {
    let mut a = Args {
        policy: "/etc/monitoreo/policy.toml".into(),
        socket: "/run/monitoreo/privhelper.sock".into(),
        gateway_user: "monitoreo".into(),
        cgroup_root: None,
        max_connections: 64,
        idle_timeout_s: 300,
        check: false,
    };
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--policy" => a.policy = value("--policy")?.into(),
            "--socket" => a.socket = value("--socket")?.into(),
            "--gateway-user" => a.gateway_user = value("--gateway-user")?,
            "--cgroup-root" => a.cgroup_root = Some(value("--cgroup-root")?.into()),
            "--max-connections" => {
                let v = value("--max-connections")?;
                a.max_connections = v
                    .parse()
                    .ok()
                    .filter(|n| *n >= 1)
                    .ok_or(format!("--max-connections: {v:?} is not a positive number"))?;
            }
            "--idle-timeout-s" => {
                let v = value("--idle-timeout-s")?;
                a.idle_timeout_s = v
                    .parse()
                    .ok()
                    .filter(|n| *n >= 1)
                    .ok_or(format!("--idle-timeout-s: {v:?} is not a positive number"))?;
            }
            "--check" => a.check = true,
            "--help" | "-h" => return Ok(Parsed::Help),
            "--version" | "-V" => return Ok(Parsed::Version),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(Parsed::Run(a))
}
