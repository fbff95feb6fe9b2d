//! The listening socket (our own, or systemd's via `LISTEN_FDS`) and the
//! `SO_PEERCRED` identity of each client, taken at connect time.

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};
use nix::unistd::{chown, Gid};

use crate::sys;

/// The listener and, if the helper created it, the path to remove at exit.
pub struct Listener {
    pub listener: UnixListener,
    pub created: Option<PathBuf>,
}

/// Uses systemd's socket when `LISTEN_PID` is ours and `LISTEN_FDS=1`,
/// else binds `path` (0660, group = the gateway's primary group).
pub fn listen(path: &Path, gateway_gid: u32) -> io::Result<Listener> {
    if let Some(fd) = sys::listen_fd_from_systemd() {
        let listener = UnixListener::from(fd);
        listener.set_nonblocking(true)?;
        return Ok(Listener {
            listener,
            created: None,
        });
    }
    if let Some(dir) = path.parent() {
        if !dir.exists() {
            fs::create_dir_all(dir)?;
            fs::set_permissions(dir, fs::Permissions::from_mode(0o755))?;
        }
    }
    match fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let listener = UnixListener::bind(path)?;
    chown(path, None, Some(Gid::from_raw(gateway_gid))).map_err(io::Error::from)?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o660))?;
    listener.set_nonblocking(true)?;
    Ok(Listener {
        listener,
        created: Some(path.to_path_buf()),
    })
}

/// Who is on the other end, per the kernel.
#[derive(Debug, Clone, Copy)]
pub struct Peer {
    pub uid: u32,
    pub pid: i32,
}

pub fn peer(stream: &UnixStream) -> io::Result<Peer> {
    let cred = getsockopt(stream, PeerCredentials).map_err(io::Error::from)?;
    Ok(Peer {
        uid: cred.uid(),
        pid: cred.pid(),
    })
}
