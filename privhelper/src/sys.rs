//! Every raw system call the helper makes that needs `unsafe`, each wrapped
//! so that a C `-1` becomes an `io::Error` in one place ([`cerr`]). No other
//! module of the helper contains `unsafe`.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use crate::ids::{Nice, Pid, Uid};

/// Turns a C-style return value (`int` or `long`) into `io::Result`.
fn cerr<T: PartialEq + From<i8>>(ret: T) -> io::Result<T> {
    if ret == T::from(-1) {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Device and inode of the file `path` names, from the attributes the
/// kernel has cached (`AT_STATX_DONT_SYNC`): a network or FUSE file system
/// is not asked, so a user's FUSE daemon that never answers cannot hang
/// the helper on another user's `/proc/PID/exe`.
pub fn cached_dev_ino(path: &std::ffi::CStr) -> io::Result<(u64, u64)> {
    let mut st = std::mem::MaybeUninit::<libc::statx>::zeroed();
    let (at, flags) = (libc::AT_FDCWD, libc::AT_STATX_DONT_SYNC);
    // SAFETY: `path` is NUL-terminated and `st` is a buffer of the size the
    // kernel fills; both outlive the call.
    cerr(unsafe { libc::statx(at, path.as_ptr(), flags, libc::STATX_INO, st.as_mut_ptr()) })?;
    // SAFETY: statx returned 0 and filled `st` (all-zero is a valid statx
    // anyway: plain integers).
    let st = unsafe { st.assume_init() };
    Ok((
        libc::makedev(st.stx_dev_major, st.stx_dev_minor),
        st.stx_ino,
    ))
}

/// `PIDFD_THREAD` (Linux 6.9+): a pidfd for one thread, not its group.
pub const PIDFD_THREAD: u32 = libc::O_EXCL as u32;

/// `pidfd_open(2)`: a descriptor that names this process (or, with
/// [`PIDFD_THREAD`], this thread) and no other, even after its id is reused.
pub fn pidfd_open(pid: Pid, flags: u32) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags by value and returns a new
    // descriptor or -1; no memory is shared with the kernel.
    let fd = cerr(unsafe { libc::syscall(libc::SYS_pidfd_open, pid.get(), flags) })?;
    // SAFETY: the kernel just returned this descriptor; we are its only owner.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// What `PIDFD_GET_INFO` says about the process a pidfd names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PidfdInfo {
    pub tgid: i32,
    pub ppid: i32,
    pub ruid: Uid,
}

/// `struct pidfd_info` as of Linux 6.13 (`PIDFD_INFO_SIZE_VER0`, 64
/// bytes); the kernel fills what `mask` asks for and says what it filled.
#[repr(C)]
#[derive(Default)]
struct RawPidfdInfo {
    mask: u64,
    cgroupid: u64,
    pid: u32,
    tgid: u32,
    ppid: u32,
    ruid: u32,
    /// rgid, euid, egid, suid, sgid, fsuid, fsgid, spare0: not asked for.
    _rest: [u32; 8],
}

const PIDFD_INFO_PID: u64 = 1 << 0;
const PIDFD_INFO_CREDS: u64 = 1 << 1;
/// `_IOWR(PIDFS_IOCTL_MAGIC (0xFF), 11, struct pidfd_info)`.
const PIDFD_GET_INFO: libc::c_ulong =
    (3 << 30) | ((std::mem::size_of::<RawPidfdInfo>() as libc::c_ulong) << 16) | (0xFF << 8) | 11;

/// `ioctl(pidfd, PIDFD_GET_INFO)` (Linux 6.13+): ids and credentials of
/// exactly the process the pidfd names, without a `/proc` read. `None`
/// when the kernel does not offer it or the process has exited; callers
/// then read `/proc`.
pub fn pidfd_info(pidfd: BorrowedFd<'_>) -> Option<PidfdInfo> {
    let mut info = RawPidfdInfo {
        mask: PIDFD_INFO_PID | PIDFD_INFO_CREDS,
        ..RawPidfdInfo::default()
    };
    // SAFETY: `info` is a live, writable `struct pidfd_info` of exactly the
    // size encoded in the request number; the kernel writes at most that.
    let r = unsafe {
        libc::ioctl(
            pidfd.as_raw_fd(),
            PIDFD_GET_INFO as _,
            std::ptr::addr_of_mut!(info),
        )
    };
    let want = PIDFD_INFO_PID | PIDFD_INFO_CREDS;
    if r != 0 || info.mask & want != want {
        return None;
    }
    Some(PidfdInfo {
        tgid: i32::try_from(info.tgid).ok()?,
        ppid: i32::try_from(info.ppid).ok()?,
        ruid: Uid::new(info.ruid),
    })
}

/// `pidfd_send_signal(2)`: signals exactly the process the pidfd names.
pub fn pidfd_send_signal(pidfd: BorrowedFd<'_>, sig: i32) -> io::Result<()> {
    let pidfd = pidfd.as_raw_fd();
    // SAFETY: a null siginfo is allowed (the kernel fills in a kill()-like
    // one); the fd and signal are passed by value.
    cerr(unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd,
            sig,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    })?;
    Ok(())
}

/// `setpriority(PRIO_PROCESS, tid, nice)`: on Linux this sets one thread.
pub fn set_nice(tid: Pid, nice: Nice) -> io::Result<()> {
    let tid = libc::id_t::try_from(tid.get()).map_err(io::Error::other)?;
    // SAFETY: plain integer arguments, no pointers.
    cerr(unsafe { libc::setpriority(libc::PRIO_PROCESS, tid, nice.get()) })?;
    Ok(())
}

/// `fork(2)`, only from a process with one thread: returns `None` in the
/// child, the child's pid in the parent. With one thread no lock can be
/// held by another at the fork, so the child may allocate and use the
/// standard library freely before `execve` or `exit_child`. The helper
/// never starts a thread; this checks it (`/proc/self/task`) and refuses
/// otherwise, so no caller can make the fork unsound.
pub fn fork() -> io::Result<Option<Pid>> {
    if threads() != Some(1) {
        return Err(io::Error::other("fork refused: more than one thread"));
    }
    // SAFETY: the process has exactly one thread (checked above; none can
    // appear meanwhile, only this thread could start one).
    match cerr(unsafe { libc::fork() })? {
        0 => Ok(None),
        // A child is never pid 0 or 1: the kernel gave us a real pid.
        pid => Pid::new(pid)
            .map(Some)
            .map_err(|_| io::Error::other("fork: bad pid")),
    }
}

/// The number of threads of this process: one entry each in its `task`.
fn threads() -> Option<usize> {
    Some(std::fs::read_dir("/proc/self/task").ok()?.count())
}

#[cfg(test)]
pub use tests::fork_in_test;

/// In a freshly forked child about to `execve`: `stdin`, `stdout`,
/// `stderr` become descriptors 0-2 and every other descriptor is marked
/// close-on-exec (`CLOSE_RANGE_CLOEXEC`, Linux 5.11+), so the command
/// inherits those three alone. Nothing is closed here, so every `OwnedFd`
/// of the process stays valid whatever the caller does next.
pub fn child_stdio(
    stdin: BorrowedFd<'_>,
    stdout: BorrowedFd<'_>,
    stderr: BorrowedFd<'_>,
) -> io::Result<()> {
    use nix::unistd::{dup2_stderr, dup2_stdin, dup2_stdout};
    dup2_stdin(stdin).and_then(|()| dup2_stdout(stdout))?;
    dup2_stderr(stderr)?;
    const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
    // SAFETY: integer arguments; the flag only sets close-on-exec.
    cerr(unsafe { libc::syscall(libc::SYS_close_range, 3, u32::MAX, CLOSE_RANGE_CLOEXEC) })?;
    Ok(())
}

/// Installs the job's one seccomp filter: `keyctl(KEYCTL_SETPERM, …)` fails
/// with `EPERM`, every other call is allowed. A uid's user keyring
/// outlives its job and its cleaner empties it (`home::Cleaner::start`); a job
/// that took away its own permissions on that keyring could make the
/// cleanup fail for good and have its uid quarantined, and enough jobs
/// would drain the pool. Checks the native call and the compat one of the
/// same machine (x32 and i386 on x86-64, arm on aarch64). Needs
/// `no_new_privs` first.
pub fn forbid_keyring_setperm() -> io::Result<()> {
    const KEYCTL_SETPERM: u32 = 5;
    #[cfg(target_arch = "x86_64")]
    const CALLS: [(u32, u32); 3] = [
        (0xC000_003E, 250),               // x86-64
        (0xC000_003E, 250 | 0x4000_0000), // x32
        (0x4000_0003, 288),               // i386
    ];
    #[cfg(target_arch = "aarch64")]
    const CALLS: [(u32, u32); 2] = [(0xC000_00B7, 219), (0x4000_0028, 311)];
    const LD_W_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
    const JEQ_K: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
    const RET_K: u16 = (libc::BPF_RET | libc::BPF_K) as u16;
    let op = |code, k, jt, jf| libc::sock_filter { code, jt, jf, k };
    // seccomp_data: nr at 0, arch at 4, args[0] at 16 (its low half on
    // these little-endian machines).
    // Five instructions per (arch, nr); a match jumps over the blocks
    // left and the "allow" to the check of the operation.
    let mut prog = Vec::new();
    for (i, (arch, nr)) in CALLS.into_iter().enumerate() {
        let to_check = (CALLS.len() - 1 - i) as u32 * 5 + 1;
        prog.push(op(LD_W_ABS, 4, 0, 0));
        prog.push(op(JEQ_K, arch, 0, 3));
        prog.push(op(LD_W_ABS, 0, 0, 0));
        prog.push(op(JEQ_K, nr, 0, 1));
        prog.push(op((libc::BPF_JMP | libc::BPF_JA) as u16, to_check, 0, 0));
    }
    prog.push(op(RET_K, libc::SECCOMP_RET_ALLOW, 0, 0));
    prog.push(op(LD_W_ABS, 16, 0, 0));
    prog.push(op(JEQ_K, KEYCTL_SETPERM, 1, 0));
    prog.push(op(RET_K, libc::SECCOMP_RET_ALLOW, 0, 0));
    prog.push(op(
        RET_K,
        libc::SECCOMP_RET_ERRNO | libc::EPERM as u32,
        0,
        0,
    ));
    let fprog = libc::sock_fprog {
        len: u16::try_from(prog.len()).map_err(io::Error::other)?,
        filter: prog.as_mut_ptr(),
    };
    // SAFETY: `fprog` points at `prog`, a valid array of `len` BPF
    // instructions, both alive for the call; the kernel copies the program.
    cerr(unsafe {
        libc::prctl(
            libc::PR_SET_SECCOMP,
            libc::SECCOMP_MODE_FILTER,
            &fprog as *const libc::sock_fprog,
            0,
            0,
        )
    })?;
    Ok(())
}

/// Restores the default disposition of every signal and unblocks them all,
/// so that a command does not inherit the helper's ignored SIGPIPE or its
/// blocked SIGHUP/SIGTERM. SIGXFSZ is ignored (and stays so across exec):
/// a write past the output ceiling then fails with EFBIG, truncating the
/// output, instead of killing the job.
pub fn reset_signals() {
    for sig in 1..32 {
        let how = if sig == libc::SIGXFSZ {
            libc::SIG_IGN
        } else {
            libc::SIG_DFL
        };
        // SAFETY: SIG_DFL and SIG_IGN are always valid dispositions; errors
        // (SIGKILL and SIGSTOP cannot be changed) are ignored on purpose.
        unsafe { libc::signal(sig, how) };
    }
    let _ = nix::sys::signal::SigSet::empty().thread_set_mask();
}

/// Descriptor 3, when systemd's socket activation handed it to us
/// (`LISTEN_PID` is ours and `LISTEN_FDS=1`), and only once: a second call
/// gets `None`, so fd 3 never has two owners.
pub fn listen_fd_from_systemd() -> Option<OwnedFd> {
    static TAKEN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    let var = |name| std::env::var(name).ok();
    if var("LISTEN_PID") != Some(std::process::id().to_string())
        || var("LISTEN_FDS").as_deref() != Some("1")
        || TAKEN.swap(true, std::sync::atomic::Ordering::SeqCst)
    {
        return None;
    }
    // SAFETY: LISTEN_FDS=1 and LISTEN_PID=our pid say systemd passed fd 3
    // to us, and the flag above makes this the only owner ever made.
    Some(unsafe { OwnedFd::from_raw_fd(3) })
}

/// `mount_setattr(2)`: makes the mount at `path` read-only and leaves
/// every other flag of it as it is (which `MS_REMOUNT | MS_BIND` could
/// not). Linux 5.12+.
pub fn set_read_only(path: &std::ffi::CStr) -> io::Result<()> {
    const MOUNT_ATTR_RDONLY: u64 = 0x1;
    // `struct mount_attr` (`MOUNT_ATTR_SIZE_VER0`): four `u64`s, attr_set,
    // attr_clr, propagation and userns_fd.
    let attr: [u64; 4] = [MOUNT_ATTR_RDONLY, 0, 0, 0];
    // SAFETY: `path` is a NUL-terminated string and `attr` is laid out as
    // `struct mount_attr`, whose size is passed; both outlive the call, and
    // the kernel only reads them.
    cerr(unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            libc::AT_FDCWD,
            path.as_ptr(),
            0,
            attr.as_ptr(),
            std::mem::size_of_val(&attr),
        )
    })?;
    Ok(())
}

/// Special keyring ids of `keyctl(2)` (`KEY_SPEC_*`).
pub const KEY_SPEC_PROCESS_KEYRING: i64 = -2;
pub const KEY_SPEC_USER_KEYRING: i64 = -4;
pub const KEY_SPEC_USER_SESSION_KEYRING: i64 = -5;
/// A `keyctl(2)` operation the helper uses: made only here, so [`keyctl`]
/// is never asked for one that reads or writes through its arguments.
#[derive(Clone, Copy)]
pub struct KeyctlOp(i64);
pub const KEYCTL_JOIN_SESSION_KEYRING: KeyctlOp = KeyctlOp(1);
pub const KEYCTL_CLEAR: KeyctlOp = KeyctlOp(7);
pub const KEYCTL_READ: KeyctlOp = KeyctlOp(11);
pub const KEYCTL_GET_PERSISTENT: KeyctlOp = KeyctlOp(22);

/// Whether this process may use the kernel's keyrings at all: a container
/// manager's seccomp filter (systemd-nspawn's, for one) refuses `keyctl`
/// with `EPERM` or `ENOSYS`, since keyrings are not namespaced. The filter
/// holds for every child too, so then no job can leave a key either.
pub fn keyrings_usable() -> bool {
    const KEYCTL_GET_KEYRING_ID: KeyctlOp = KeyctlOp(0);
    const KEY_SPEC_SESSION_KEYRING: i64 = -3;
    !matches!(
        keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0).map_err(|e| e.raw_os_error()),
        Err(Some(libc::EPERM | libc::ENOSYS))
    )
}

/// `keyctl(op, a, b)` for the operations that take at most two integer
/// arguments (a null pointer for `KEYCTL_JOIN_SESSION_KEYRING`'s name, a
/// zero-length buffer for `KEYCTL_READ`, which then only returns the
/// keyring's size in bytes).
pub fn keyctl(op: KeyctlOp, a: i64, b: i64) -> io::Result<i64> {
    // SAFETY: `op` is one of the operations above, none of which writes
    // through an argument: READ's buffer comes with the length 0 passed
    // here, the others take integers (JOIN: a name the kernel only reads,
    // null for an anonymous keyring).
    let r = cerr(unsafe { libc::syscall(libc::SYS_keyctl, op.0, a, b, 0, 0) })?;
    Ok(r as i64)
}

/// Ends a forked child without running destructors or atexit handlers.
pub fn exit_child(code: i32) -> ! {
    // SAFETY: _exit never returns and is async-signal-safe.
    unsafe { libc::_exit(code) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    /// `fork(2)` for unit tests, whose harness runs threads. The child may
    /// only make system calls and `exit_child`: no allocation, no lock.
    pub fn fork_in_test() -> io::Result<i32> {
        // SAFETY: the test's child calls only async-signal-safe functions
        // (raw system calls and _exit) before it exits.
        let r = unsafe { libc::fork() };
        cerr(libc::c_long::from(r))?;
        Ok(r)
    }

    #[test]
    fn cached_dev_ino_is_what_stat_says_of_our_own_executable() {
        use std::os::unix::fs::MetadataExt;
        let link = std::ffi::CString::new("/proc/self/exe").expect("no NUL");
        let meta = std::fs::metadata("/proc/self/exe").expect("stat");
        assert_eq!(
            cached_dev_ino(&link).expect("statx"),
            (meta.dev(), meta.ino())
        );
        let gone = std::ffi::CString::new("/proc/self/no-such-file").expect("no NUL");
        let e = cached_dev_ino(&gone).expect_err("absent");
        assert_eq!(e.raw_os_error(), Some(libc::ENOENT));
    }

    /// The running kernel's (major, minor), from its release string.
    fn kernel_version() -> (u32, u32) {
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").expect("osrelease");
        let mut parts = release
            .trim()
            .split(|c: char| !c.is_ascii_digit())
            .map(|p| p.parse::<u32>().expect("a version number"));
        (parts.next().expect("major"), parts.next().expect("minor"))
    }

    /// Ignored by default because on a kernel older than 6.13 there is
    /// nothing to check; `scripts/test` asks for it on 6.13 and later,
    /// where a pidfd that `PIDFD_GET_INFO` says nothing about is a failure.
    #[test]
    #[ignore = "needs Linux 6.13+ (PIDFD_GET_INFO); scripts/test runs it on such a kernel"]
    fn pidfd_info_matches_the_process_when_the_kernel_has_it() {
        let version = kernel_version();
        assert!(
            version >= (6, 13),
            "Linux {version:?} predates PIDFD_GET_INFO (6.13): leave this test out here"
        );
        let me = std::process::id() as i32;
        let fd = pidfd_open(Pid::new(me).expect("a pid"), 0).expect("own pidfd");
        let info = pidfd_info(fd.as_fd())
            .unwrap_or_else(|| panic!("Linux {version:?} has PIDFD_GET_INFO, yet the call failed"));
        let (uid, ppid) = (nix::unistd::getuid(), nix::unistd::getppid());
        assert_eq!(
            info,
            PidfdInfo {
                tgid: me,
                ppid: ppid.as_raw(),
                ruid: Uid::new(uid.as_raw())
            }
        );
    }
}
