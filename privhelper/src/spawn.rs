//! Starting a command: fork, then in the child the fixed sequence of
//! privilege drops before `execve("/bin/sh", ["sh", "-c", CMD])`.
//!
//! Child order: new session → join the job cgroup → with a uid of its own,
//! new mount and IPC namespaces (`ns::enter`) → stdout/stderr from the
//! passed descriptors, stdin /dev/null → every other descriptor close-on-exec →
//! umask 077 → rlimits (CPU, FSIZE, NOFILE, NPROC, and AS when no memory
//! cgroup holds the job) → default signal dispositions → drop the capability
//! bounding set → `uids::become_uid` (setgroups([]) → setresgid → setresuid
//! → not dumpable → verify all ids and that setuid(0) fails) → a new
//! session keyring → create the home → no_new_privs → (own uid) the seccomp filter that
//! keeps the uid's keyrings clearable → clear remaining capabilities →
//! execve with a clean environment. Any failure writes its errno to a
//! close-on-exec pipe and exits 127; the parent reports `Failed { errno }`,
//! and `Failed { ETIMEDOUT }` for a child not exec'd within 5 s (killed).

use std::ffi::CString;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::DirBuilderExt;
use std::path::PathBuf;

use caps::{CapSet, Capability};
use nix::fcntl::OFlag;
use nix::poll::{poll, PollFd, PollFlags};
use nix::sys::resource::{setrlimit, Resource};
use nix::sys::signal::{kill, Signal};
use nix::sys::stat::{umask, Mode};
use nix::sys::wait::waitpid;
use nix::unistd::{execve, pipe2, setsid};

use crate::ids::{JobUid, Pid};
use crate::policy::RunPolicy;
use crate::sys;

/// How long a child may take from fork to `execve` (`ETIMEDOUT` after).
const START_WITHIN_MS: u16 = 5000;

/// Everything the child needs, prepared before the fork.
pub struct SpawnPlan<'a> {
    pub command: &'a str,
    pub run: &'a RunPolicy,
    /// The job's identity: its own pool uid, or the shared run user's.
    pub id: JobUid,
    /// `RLIMIT_AS`, when no memory cgroup bounds the job.
    pub rlimit_as: Option<u64>,
    /// With a uid of its own: its private directory, created (0700) once
    /// running as the job's uid and both `HOME` and `TMPDIR`, and the
    /// world-writable directories of the host its namespaces (`ns::enter`)
    /// cover with a private tmpfs. Without: the shared user's home and
    /// `/tmp`, and the host's namespaces.
    pub own: Option<(PathBuf, &'a [PathBuf])>,
    /// The job's stdout and stderr.
    pub stdio: &'a [OwnedFd; 2],
    /// `cgroup.procs` of the job's cgroup (and of its v1 groups), if
    /// contained by cgroup.
    pub cgroup_procs: Vec<PathBuf>,
}

/// Forks and execs; returns the child's pid once `execve` succeeded.
pub fn spawn(plan: &SpawnPlan<'_>) -> io::Result<Pid> {
    let c = |s: &str| CString::new(s).map_err(io::Error::other);
    let cmd = CString::new(plan.command)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "command contains NUL"))?;
    let own = plan.own.as_ref().map(|(dir, _)| dir.display().to_string());
    let home = own.as_deref().unwrap_or(&plan.run.home);
    let (sh, argv) = (c("/bin/sh")?, [c("sh")?, c("-c")?, cmd]);
    let env = [
        c("PATH=/usr/local/bin:/usr/bin:/bin")?,
        c(&format!("HOME={home}"))?,
        c(&format!("TMPDIR={}", own.as_deref().unwrap_or("/tmp")))?,
        c("LANG=C.UTF-8")?,
    ];
    let (err_r, err_w) = pipe2(OFlag::O_CLOEXEC).map_err(io::Error::from)?;
    let Some(pid) = sys::fork()? else {
        // In the child: returns only on failure.
        drop(err_r);
        let e = match child_setup(plan).map(|()| execve(&sh, &argv, &env)) {
            Ok(Ok(never)) => match never {},
            Ok(Err(e)) => io::Error::from(e),
            Err(e) => e,
        };
        let errno = e.raw_os_error().unwrap_or(libc::EPERM);
        let _ = File::from(err_w).write_all(&errno.to_ne_bytes());
        sys::exit_child(127);
    };
    drop(err_w);
    // End of file if `execve` succeeded (the pipe closed on exec); the
    // child's errno (one atomic write) if it failed. Once the child has a
    // shared run user's uid, a job of that user can stop it before either:
    // so the wait is bounded, and a child that failed or did not start is
    // killed (unreaped, its pid is still its own) before it is reaped.
    let mut errno = libc::ETIMEDOUT.to_ne_bytes();
    let mut fds = [PollFd::new(err_r.as_fd(), PollFlags::POLLIN)];
    if poll(&mut fds, START_WITHIN_MS) == Ok(1) && File::from(err_r).read(&mut errno)? == 0 {
        return Ok(pid);
    }
    let child = nix::unistd::Pid::from_raw(pid.get());
    let _ = kill(child, Signal::SIGKILL);
    let _ = waitpid(child, None);
    Err(io::Error::from_raw_os_error(i32::from_ne_bytes(errno)))
}

fn child_setup(plan: &SpawnPlan<'_>) -> io::Result<()> {
    setsid().map_err(io::Error::from)?;
    for procs in &plan.cgroup_procs {
        fs::write(procs, b"0")?;
    }
    if let Some((_, shared)) = plan.own {
        crate::ns::enter(shared, plan.run.memory_max)?;
    }
    let devnull = File::open("/dev/null")?;
    // Only 0-2 outlive execve (the error pipe closes itself then too).
    let (stdout, stderr) = (plan.stdio[0].as_fd(), plan.stdio[1].as_fd());
    sys::child_stdio(devnull.as_fd(), stdout, stderr)?;
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
    crate::uids::become_uid(plan.id)?;
    // A session keyring of its own: the one inherited from the helper is
    // shared by every job (and the helper).
    if sys::keyrings_usable() {
        sys::keyctl(sys::KEYCTL_JOIN_SESSION_KEYRING, 0, 0)?;
    }
    if let Some((home, _)) = &plan.own {
        // As the job's uid, in the sticky /tmp: a name planted by anyone
        // else makes this fail (EEXIST) rather than be used.
        fs::DirBuilder::new().mode(0o700).create(home)?;
    }
    nix::sys::prctl::set_no_new_privs()?;
    if plan.own.is_some() {
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
