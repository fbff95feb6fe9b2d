//! Arguments and start-up: resolve the users, load the policy, take or
//! bind the socket, give up root, serve.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

use serde_json::json;

use crate::policy::ReadPolicy;
use crate::server::{block_signals, Server};
use crate::{log, sys};

pub const USAGE: &str = "\
Usage: monitoreo-reader --policy PATH --gateway-user USER [--socket PATH] [--user USER] [--check]

Reads other users' private process fields (exe, cwd, num_fds, open_files,
connections, io_counters, memory_maps) for the Monitoreo gateway, as the
[read] section of the policy allows, holding only CAP_DAC_READ_SEARCH and
CAP_SYS_PTRACE.

  --policy PATH         the policy file ([read] section; the rest is the helper's)
  --gateway-user USER   the only user served (name or uid)
  --socket PATH         where to listen when systemd passes no socket
                        (default /run/monitoreo-reader/reader.sock); made
                        0600 and, when started as root, owned by the gateway user
  --user USER           started as root: the user to become (name or uid)
  --check               load the policy, print what it allows, exit
  --help, --version
";

/// Parsed arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Args {
    pub policy: PathBuf,
    pub gateway_user: String,
    pub socket: PathBuf,
    pub user: Option<String>,
    pub check: bool,
}

/// What the command line asks.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    Run(Args),
    Help,
    Version,
}

/// Parses the arguments; a usage error is a sentence.
pub fn parse(args: impl Iterator<Item = String>) -> Result<Parsed, String> {
    let (mut policy, mut gateway, mut user) = (None, None, None);
    let mut socket = PathBuf::from("/run/monitoreo-reader/reader.sock");
    let mut check = false;
    let mut args = args;
    while let Some(a) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        match a.as_str() {
            "--policy" => policy = Some(PathBuf::from(value("--policy")?)),
            "--gateway-user" => gateway = Some(value("--gateway-user")?),
            "--socket" => socket = PathBuf::from(value("--socket")?),
            "--user" => user = Some(value("--user")?),
            "--check" => check = true,
            "--help" | "-h" => return Ok(Parsed::Help),
            "--version" => return Ok(Parsed::Version),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    let policy = policy.ok_or("--policy is required")?;
    let gateway_user = match (gateway, check) {
        (Some(g), _) => g,
        (None, true) => String::new(),
        (None, false) => return Err("--gateway-user is required".into()),
    };
    Ok(Parsed::Run(Args {
        policy,
        gateway_user,
        socket,
        user,
        check,
    }))
}

/// A user by name or uid: its uid and primary gid (a uid without a passwd
/// entry has the gid of the same number).
pub fn resolve(user: &str) -> Result<(u32, u32), String> {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let entry = passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() > 3 && (f[0] == user || f[2] == user))
            .then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?)))
            .flatten()
    });
    entry
        .or_else(|| user.parse().ok().map(|u| (u, u)))
        .ok_or_else(|| format!("no user {user:?}"))
}

/// Runs the reader; an error is one line for stderr.
pub fn run(args: Args) -> Result<(), String> {
    let policy = ReadPolicy::load(&args.policy).map_err(|e| e.0)?;
    if args.check {
        println!("{}: policy ok", args.policy.display());
        return Ok(());
    }
    let (gateway_uid, _) = resolve(&args.gateway_user)?;
    let root = nix::unistd::geteuid().is_root();
    let me = match (&args.user, root) {
        (Some(u), true) => Some(resolve(u)?),
        (None, true) => return Err("started as root: --user names the user to become".into()),
        _ => None,
    };
    if me.is_some_and(|(u, _)| u == 0 || u == gateway_uid) {
        return Err("--user must be neither root nor the gateway user".into());
    }
    let signals = block_signals().map_err(|e| format!("blocking signals: {e}"))?;
    let (listener, bound) = match sys::listen_fd_from_systemd() {
        Some(fd) => (UnixListener::from(fd), None),
        None => {
            let l = bind(&args.socket, root.then_some(gateway_uid))
                .map_err(|e| format!("{}: {e}", args.socket.display()))?;
            (l, Some(args.socket.clone()))
        }
    };
    match me {
        Some((uid, gid)) => sys::become_reader(uid, gid),
        None => sys::keep_only(),
    }
    .map_err(|e| format!("giving up privilege: {e}"))?;
    log::event(
        "started",
        &[
            ("uid", json!(nix::unistd::getuid().as_raw())),
            ("capabilities", json!(sys::held())),
            ("gateway_uid", json!(gateway_uid)),
            ("systemd_socket", json!(bound.is_none())),
        ],
    );
    Server {
        listener,
        policy_path: args.policy,
        policy,
        gateway_uid,
        bound,
    }
    .run(signals)
    .map_err(|e| e.to_string())
}

/// Binds `path` (a stale socket there is replaced, anything else is an
/// error), mode 0600, owned by `owner` when given (root only).
fn bind(path: &Path, owner: Option<u32>) -> std::io::Result<UnixListener> {
    use std::os::unix::fs::FileTypeExt;
    if let Some(dir) = path.parent() {
        if !dir.exists() {
            std::fs::create_dir_all(dir)?;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))?;
        }
    }
    if let Ok(m) = std::fs::symlink_metadata(path) {
        if !m.file_type().is_socket() {
            return Err(std::io::Error::other("exists and is not a socket"));
        }
        std::fs::remove_file(path)?;
    }
    let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o177));
    let l = UnixListener::bind(path);
    nix::sys::stat::umask(old);
    let l = l?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    if let Some(uid) = owner {
        std::os::unix::fs::chown(path, Some(uid), None)?;
    }
    Ok(l)
}
