//! The reader's identity: who it runs as and what it may do. The one
//! `unsafe` of the crate (taking systemd's descriptor) is here.
//!
//! The reader holds `CAP_DAC_READ_SEARCH` (to list another user's `fd/`)
//! and `CAP_SYS_PTRACE` (to read another user's `exe`, `cwd`, `io`,
//! `smaps`, fd links and network tables), nothing else: no kill, no
//! setuid, no nice. Started as root (tests, the quickstart) it becomes
//! its own user keeping only those two, empties its bounding set of
//! every other, and then proves it cannot get them back. Started by
//! systemd as its user with the two as ambient capabilities it keeps
//! those two and drops whatever else it was given.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd};

use caps::{CapSet, Capability, CapsHashSet};
use nix::unistd::{getresgid, getresuid, setgroups, setresgid, setresuid, Gid, Uid};

/// The two capabilities the reader keeps.
pub const KEPT: [Capability; 2] = [Capability::CAP_DAC_READ_SEARCH, Capability::CAP_SYS_PTRACE];

fn kept() -> CapsHashSet {
    KEPT.into_iter().collect()
}

fn cap_err(what: &str, e: caps::errors::CapsError) -> io::Error {
    io::Error::other(format!("{what}: {e}"))
}

/// Root becomes `uid`/`gid` (no supplementary groups) keeping only
/// [`KEPT`], then checks it cannot regain root or any other capability.
pub fn become_reader(uid: u32, gid: u32) -> io::Result<()> {
    if uid == 0 {
        return Err(io::Error::other(
            "the reader never runs as root: give it a user",
        ));
    }
    for cap in caps::all() {
        if !KEPT.contains(&cap) {
            caps::drop(None, CapSet::Bounding, cap).map_err(|e| cap_err("bounding set", e))?;
        }
    }
    nix::sys::prctl::set_keepcaps(true)?;
    setgroups(&[])?;
    setresgid(Gid::from_raw(gid), Gid::from_raw(gid), Gid::from_raw(gid))?;
    setresuid(Uid::from_raw(uid), Uid::from_raw(uid), Uid::from_raw(uid))?;
    nix::sys::prctl::set_keepcaps(false)?;
    keep_only()?;
    verify(uid, gid)
}

/// Drops every capability but [`KEPT`] from the effective, permitted,
/// inheritable and ambient sets (those it was given are kept).
pub fn keep_only() -> io::Result<()> {
    caps::clear(None, CapSet::Ambient).map_err(|e| cap_err("ambient set", e))?;
    let have = caps::read(None, CapSet::Permitted).map_err(|e| cap_err("permitted set", e))?;
    let keep: CapsHashSet = have.intersection(&kept()).copied().collect();
    caps::set(None, CapSet::Inheritable, &CapsHashSet::new())
        .map_err(|e| cap_err("inheritable set", e))?;
    caps::set(None, CapSet::Effective, &keep).map_err(|e| cap_err("effective set", e))?;
    caps::set(None, CapSet::Permitted, &keep).map_err(|e| cap_err("permitted set", e))?;
    nix::sys::prctl::set_no_new_privs()?;
    Ok(())
}

/// What [`become_reader`] promised: every id is the reader's, root cannot
/// be regained, no capability beyond [`KEPT`] is held or can be raised.
fn verify(uid: u32, gid: u32) -> io::Result<()> {
    let (r, e, s) = {
        let ids = getresuid()?;
        (
            ids.real.as_raw(),
            ids.effective.as_raw(),
            ids.saved.as_raw(),
        )
    };
    let g = getresgid()?;
    if [r, e, s] != [uid; 3]
        || [g.real.as_raw(), g.effective.as_raw(), g.saved.as_raw()] != [gid; 3]
    {
        return Err(io::Error::other("the change of identity did not take"));
    }
    if nix::unistd::setuid(Uid::from_raw(0)).is_ok() {
        return Err(io::Error::other("root could be regained after dropping it"));
    }
    for set in [CapSet::Permitted, CapSet::Effective, CapSet::Bounding] {
        let have = caps::read(None, set).map_err(|e| cap_err("reading capabilities", e))?;
        if !have.is_subset(&kept()) {
            return Err(io::Error::other(format!(
                "{set:?} set still holds {have:?}"
            )));
        }
    }
    if caps::raise(None, CapSet::Effective, Capability::CAP_KILL).is_ok() {
        return Err(io::Error::other(
            "CAP_KILL could be raised after dropping it",
        ));
    }
    Ok(())
}

/// The capabilities of [`KEPT`] the reader holds (effective), by name.
pub fn held() -> Vec<String> {
    caps::read(None, CapSet::Effective)
        .map(|s| {
            let mut v: Vec<String> = s.intersection(&kept()).map(ToString::to_string).collect();
            v.sort();
            v
        })
        .unwrap_or_default()
}

/// The listening socket systemd passed (fd 3), if it passed one to this
/// process; handed out once.
pub fn listen_fd_from_systemd() -> Option<OwnedFd> {
    let ours = std::env::var("LISTEN_PID").ok()?.parse::<u32>().ok()? == std::process::id();
    if !ours || std::env::var("LISTEN_FDS").ok()? != "1" {
        return None;
    }
    static TAKEN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if TAKEN.swap(true, std::sync::atomic::Ordering::SeqCst) {
        return None;
    }
    // SAFETY: LISTEN_FDS=1 and LISTEN_PID=our pid say systemd passed fd 3
    // to us, and the flag above makes this the only owner ever made.
    Some(unsafe { OwnedFd::from_raw_fd(3) })
}
