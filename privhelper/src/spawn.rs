//! Starting a command: fork, then in the child the fixed sequence of
//! privilege drops before `execve("/bin/sh", ["sh", "-c", CMD])`.
//!
//! Child order: new session → join the job cgroup → with a uid of its own,
//! new mount and IPC namespaces (`ns::enter`) → stdout/stderr from the
//! passed descriptors, stdin /dev/null → every other descriptor close-on-exec →
//! umask 077 → rlimits (CPU, FSIZE, NOFILE, NPROC, and AS when no memory
//! cgroup holds the job) → default signal dispositions → drop the capability
//! bounding set → `uids::become_uid` (setgroups([]) → setresgid → setresuid
//! → verify all ids and that setuid(0) fails) → a new session keyring →
//! create the home → no_new_privs → (own uid) the seccomp filter that
//! keeps the uid's keyrings clearable → clear remaining capabilities →
//! execve with a clean environment. Any failure writes its errno to a
//! close-on-exec pipe and exits 127; the parent reports `Failed { errno }`.

use std::ffi::CString;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::DirBuilderExt;
use std::path::PathBuf;

use caps::{CapSet, Capability};
use nix::fcntl::OFlag;
use nix::sys::resource::{setrlimit, Resource};
use nix::sys::stat::{umask, Mode};
use nix::unistd::{pipe2, setsid};

use crate::ids::Pid;
use crate::policy::RunPolicy;
use crate::sys;

/// Everything the child needs, prepared before the fork.
pub struct SpawnPlan<'a> {
    pub command: &'a str,
    pub run: &'a RunPolicy,
    /// The job's identity: its own pool uid, or the shared run user's.
    pub uid: u32,
    pub gid: u32,
    /// `RLIMIT_AS`, when no memory cgroup bounds the job.
    pub rlimit_as: Option<u64>,
    /// `HOME` and `TMPDIR`: the job's private directory, or the shared
    /// user's home and `/tmp`.
    pub home: String,
    pub tmpdir: String,
    /// Create `home` (0700) once running as the job's uid.
    pub create_home: bool,
    /// Run in namespaces of its own (`ns::enter`) with these world-writable
    /// directories of the host covered by a private tmpfs.
    pub private: Option<&'a [PathBuf]>,
    pub stdout: &'a OwnedFd,
    pub stderr: &'a OwnedFd,
    /// `cgroup.procs` of the job's cgroup (and of its v1 groups), if
    /// contained by cgroup.
    pub cgroup_procs: Vec<PathBuf>,
}

/// Forks and execs; returns the child's pid once `execve` succeeded.
pub fn spawn(plan: &SpawnPlan<'_>) -> io::Result<Pid> {
    let sh = CString::new("/bin/sh").map_err(io::Error::other)?;
    let cmd = CString::new(plan.command)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "command contains NUL"))?;
    let argv = [
        CString::new("sh").map_err(io::Error::other)?,
        CString::new("-c").map_err(io::Error::other)?,
        cmd,
    ];
    let env = [
        CString::new("PATH=/usr/local/bin:/usr/bin:/bin").map_err(io::Error::other)?,
        CString::new(format!("HOME={}", plan.home)).map_err(io::Error::other)?,
        CString::new(format!("TMPDIR={}", plan.tmpdir)).map_err(io::Error::other)?,
        CString::new("LANG=C.UTF-8").map_err(io::Error::other)?,
    ];
    let (err_r, err_w) = pipe2(OFlag::O_CLOEXEC).map_err(io::Error::from)?;
    let Some(pid) = sys::fork()? else {
        drop(err_r);
        let e = child(plan, &sh, &argv, &env);
        let errno = e.raw_os_error().unwrap_or(libc::EPERM);
        let mut w = File::from(err_w);
        let _ = w.write_all(&errno.to_ne_bytes());
        sys::exit_child(127);
    };
    drop(err_w);
    // Nothing arrives before end of file if `execve` succeeded (the pipe
    // closed on exec); the child's errno if it failed.
    let mut failure = Vec::new();
    File::from(err_r).read_to_end(&mut failure)?;
    if let Ok(errno) = <[u8; 4]>::try_from(failure.as_slice()) {
        // The child failed before execve and has exited; reap it.
        let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid.get()), None);
        return Err(io::Error::from_raw_os_error(i32::from_ne_bytes(errno)));
    }
    Ok(pid)
}

/// Runs in the forked child; returns only on failure.
fn child(plan: &SpawnPlan<'_>, sh: &CString, argv: &[CString; 3], env: &[CString; 4]) -> io::Error {
    match child_setup(plan) {
        Ok(()) => match nix::unistd::execve(sh, argv, env) {
            Ok(never) => match never {},
            Err(e) => io::Error::from(e),
        },
        Err(e) => e,
    }
}

fn child_setup(plan: &SpawnPlan<'_>) -> io::Result<()> {
    setsid().map_err(io::Error::from)?;
    for procs in &plan.cgroup_procs {
        OpenOptions::new()
            .write(true)
            .open(procs)?
            .write_all(b"0")?;
    }
    if let Some(shared) = plan.private {
        crate::ns::enter(shared, plan.run.memory_max)?;
    }
    let devnull = File::open("/dev/null")?;
    // Only 0-2 outlive execve (the error pipe closes itself then too).
    sys::child_stdio(devnull.as_fd(), plan.stdout.as_fd(), plan.stderr.as_fd())?;
    umask(Mode::from_bits_truncate(0o077));
    let r = plan.run;
    let limits = [
        (Resource::RLIMIT_CPU, r.cpu_s),
        (Resource::RLIMIT_FSIZE, r.max_output_bytes),
        (Resource::RLIMIT_NOFILE, r.nofile),
        (Resource::RLIMIT_NPROC, r.nproc),
    ];
    let memory = plan.rlimit_as.map(|bytes| (Resource::RLIMIT_AS, bytes));
    for (resource, value) in limits.into_iter().chain(memory) {
        setrlimit(resource, value, value).map_err(io::Error::from)?;
    }
    sys::reset_signals();
    for cap in caps::all() {
        caps::drop(None, CapSet::Bounding, cap).map_err(io::Error::other)?;
    }
    caps::clear(None, CapSet::Ambient).map_err(io::Error::other)?;
    crate::uids::become_uid(plan.uid, plan.gid)?;
    // A session keyring of its own: the one inherited from the helper is
    // shared by every job (and the helper).
    if sys::keyrings_usable() {
        sys::keyctl(sys::KEYCTL_JOIN_SESSION_KEYRING, 0, 0)?;
    }
    if plan.create_home {
        // As the job's uid, in the sticky /tmp: a name planted by anyone
        // else makes this fail (EEXIST) rather than be used.
        std::fs::DirBuilder::new().mode(0o700).create(&plan.home)?;
    }
    nix::sys::prctl::set_no_new_privs()?;
    if plan.private.is_some() {
        sys::forbid_keyring_setperm()?;
    }
    for set in [CapSet::Effective, CapSet::Permitted, CapSet::Inheritable] {
        caps::clear(None, set).map_err(io::Error::other)?;
    }
    if caps::has_cap(None, CapSet::Effective, Capability::CAP_SETUID).unwrap_or(true) {
        return Err(io::Error::from_raw_os_error(libc::EPERM));
    }
    Ok(())
}
