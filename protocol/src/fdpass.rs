//! Receiving file descriptors over a Unix stream socket with `SCM_RIGHTS`
//! (the gateway's client sends them).
//!
//! The gateway opens a job's output files itself and hands the open
//! descriptors to the helper, so the helper never opens a path chosen by
//! the unprivileged side. On a stream socket the descriptors ride on the
//! first byte of the `sendmsg` call that carries them; the receiver collects
//! whatever arrives into a queue and the protocol layer decides whether the
//! frame it decodes was supposed to bring descriptors (see
//! [`crate::Request::fds_expected`]).
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};

/// Most descriptors accepted in one `recvmsg`. Anything beyond is cut off
/// by the kernel (`MSG_CTRUNC`); [`recv_with_fds`] then closes the ones that
/// did arrive and reports an error.
pub const MAX_FDS_PER_MSG: usize = 4;

/// Room for exactly [`MAX_FDS_PER_MSG`] descriptors in one `SCM_RIGHTS`
/// control message.
// SAFETY: `CMSG_SPACE` is arithmetic on its argument; it dereferences nothing.
const CONTROL_LEN: usize =
    unsafe { libc::CMSG_SPACE((MAX_FDS_PER_MSG * std::mem::size_of::<RawFd>()) as libc::c_uint) }
        as usize;

/// A control buffer aligned for `cmsghdr`, as `CMSG_FIRSTHDR` and
/// `CMSG_NXTHDR` require.
#[repr(C)]
union ControlBuf {
    _align: libc::cmsghdr,
    bytes: [u8; CONTROL_LEN],
}

/// Reads once from `sock` into `buf`, appending any descriptors that came
/// with the bytes to `fds`. Returns the number of bytes read (0 at end of
/// stream). Received descriptors are close-on-exec.
///
/// A message that carried more than [`MAX_FDS_PER_MSG`] descriptors is cut
/// off by the kernel (`MSG_CTRUNC`): that is an `InvalidData` error, every
/// descriptor the kernel did install is closed, none is appended to `fds`,
/// and the bytes read with it are lost (the caller should drop the
/// connection).
pub fn recv_with_fds(sock: impl AsFd, buf: &mut [u8], fds: &mut Vec<OwnedFd>) -> io::Result<usize> {
    let mut control = ControlBuf {
        bytes: [0; CONTROL_LEN],
    };
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: `msghdr` is plain data (pointers, lengths, flags, and on some
    // libcs padding); all zeroes is a valid value: no name, no buffers.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = std::ptr::addr_of_mut!(control).cast();
    msg.msg_controllen = CONTROL_LEN as _;
    let bytes = loop {
        // SAFETY: `msg` points at one iovec covering exactly `buf` and at
        // `control`, `CONTROL_LEN` bytes; all three are live and exclusively
        // borrowed for the whole call, and the kernel writes only within the
        // lengths given.
        let n =
            unsafe { libc::recvmsg(sock.as_fd().as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
        if n >= 0 {
            break n as usize;
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            // A failed recvmsg installs no descriptors.
            return Err(e);
        }
    };
    // Own every installed descriptor before anything can return early, so
    // that an error below closes them all.
    let received = take_descriptors(&msg);
    if msg.msg_flags & libc::MSG_CTRUNC != 0 {
        drop(received);
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("control message truncated: more than {MAX_FDS_PER_MSG} descriptors"),
        ));
    }
    fds.extend(received);
    Ok(bytes)
}

/// Takes ownership of every descriptor in the `SCM_RIGHTS` messages of the
/// control data `recvmsg` just filled in through `msg`, including a
/// truncated last one. Never fails, so nothing the kernel installed can be
/// left without an owner.
// `msg_controllen` and `cmsg_len` are `size_t` on glibc but `socklen_t` on
// musl: the casts are needed there.
#[allow(clippy::unnecessary_cast)]
fn take_descriptors(msg: &libc::msghdr) -> Vec<OwnedFd> {
    const FD_SIZE: usize = std::mem::size_of::<RawFd>();
    let end = msg.msg_control as usize + msg.msg_controllen as usize;
    let mut out = Vec::new();
    // SAFETY: `msg` is the header the kernel just filled in: `msg_control`
    // points at our aligned buffer and `msg_controllen` is the length of the
    // control data it wrote there, within the buffer.
    let mut cmsg = unsafe { libc::CMSG_FIRSTHDR(msg) };
    while !cmsg.is_null() {
        // SAFETY: `CMSG_FIRSTHDR`/`CMSG_NXTHDR` only return a header that
        // lies wholly inside the control data and is aligned for `cmsghdr`.
        let hdr = unsafe { &*cmsg };
        if hdr.cmsg_level == libc::SOL_SOCKET && hdr.cmsg_type == libc::SCM_RIGHTS {
            // SAFETY: `cmsg` is a valid header (above); `CMSG_DATA` is
            // pointer arithmetic to just past it.
            let data: *const u8 = unsafe { libc::CMSG_DATA(cmsg) };
            // `cmsg_len` counts the descriptors the kernel installed; never
            // read past the control data, whatever the header says.
            let claimed = (hdr.cmsg_len as usize).saturating_sub(data as usize - cmsg as usize);
            let len = claimed.min(end.saturating_sub(data as usize));
            for i in 0..len / FD_SIZE {
                // SAFETY: `data + i * FD_SIZE .. + FD_SIZE` lies inside the
                // control data the kernel wrote (bounded by `end` above).
                // The payload after a header need not be aligned for `int`,
                // hence the unaligned read.
                let fd = unsafe { std::ptr::read_unaligned(data.add(i * FD_SIZE).cast::<RawFd>()) };
                if fd >= 0 {
                    // SAFETY: the kernel just installed `fd` in our table
                    // for this SCM_RIGHTS message; nothing else in the
                    // process knows it, so taking sole ownership is sound.
                    out.push(unsafe { OwnedFd::from_raw_fd(fd) });
                }
            }
        }
        // SAFETY: `msg` describes the control data and `cmsg` is a header
        // inside it; `CMSG_NXTHDR` returns null past the end.
        cmsg = unsafe { libc::CMSG_NXTHDR(msg, cmsg) };
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::File;
    use std::io::{IoSlice, Read, Seek, SeekFrom, Write};
    use std::os::fd::BorrowedFd;
    use std::os::unix::fs::MetadataExt;
    use std::os::unix::net::UnixStream;

    use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};

    /// Sends `bytes` in one message with `fds` attached, as the gateway's
    /// client does.
    fn send_with_fds(sock: &UnixStream, bytes: &[u8], fds: &[BorrowedFd<'_>]) -> io::Result<()> {
        let raw: Vec<RawFd> = fds.iter().map(|f| f.as_raw_fd()).collect();
        let rights = [ControlMessage::ScmRights(&raw)];
        let cmsgs: &[ControlMessage] = if raw.is_empty() { &[] } else { &rights };
        let iov = [IoSlice::new(bytes)];
        let sent = sendmsg::<()>(sock.as_raw_fd(), &iov, cmsgs, MsgFlags::empty(), None)?;
        assert_eq!(sent, bytes.len(), "one message");
        Ok(())
    }

    #[test]
    fn descriptors_arrive_and_point_at_the_same_file() {
        let (a, b) = UnixStream::pair().expect("socketpair");
        let mut file = tempfile_in_tmp();
        send_with_fds(&a, b"hello", &[file.as_fd()]).expect("send");
        let mut buf = [0u8; 16];
        let mut fds = Vec::new();
        let n = recv_with_fds(&b, &mut buf, &mut fds).expect("recv");
        assert_eq!(&buf[..n], b"hello");
        assert_eq!(fds.len(), 1);
        let mut theirs = File::from(fds.remove(0));
        theirs.write_all(b"via passed fd").expect("write");
        file.seek(SeekFrom::Start(0)).expect("seek");
        let mut s = String::new();
        file.read_to_string(&mut s).expect("read");
        assert_eq!(s, "via passed fd");
    }

    #[test]
    fn plain_bytes_bring_no_descriptors() {
        let (a, b) = UnixStream::pair().expect("socketpair");
        send_with_fds(&a, b"xy", &[]).expect("send");
        let mut buf = [0u8; 4];
        let mut fds = Vec::new();
        assert_eq!(recv_with_fds(&b, &mut buf, &mut fds).expect("recv"), 2);
        assert!(fds.is_empty());
    }

    #[test]
    fn too_many_descriptors_is_an_error_not_a_leak() {
        let (a, b) = UnixStream::pair().expect("socketpair");
        let files: Vec<File> = (0..MAX_FDS_PER_MSG + 2)
            .map(|_| tempfile_in_tmp())
            .collect();
        let before = descriptors_open_on(&files);
        assert_eq!(before, files.len());
        let borrowed: Vec<BorrowedFd<'_>> = files.iter().map(|f| f.as_fd()).collect();
        for round in 0..20 {
            send_with_fds(&a, b"z", &borrowed).expect("send");
            let mut buf = [0u8; 4];
            let mut fds = Vec::new();
            let r = recv_with_fds(&b, &mut buf, &mut fds);
            assert!(r.is_err(), "round {round}: {r:?}");
            assert!(fds.is_empty(), "round {round}: nothing handed out");
            assert_eq!(
                descriptors_open_on(&files),
                before,
                "round {round}: descriptors leaked"
            );
        }
    }

    #[test]
    fn a_truncated_message_hands_out_nothing_and_keeps_earlier_descriptors() {
        let (a, b) = UnixStream::pair().expect("socketpair");
        let files: Vec<File> = (0..MAX_FDS_PER_MSG + 1)
            .map(|_| tempfile_in_tmp())
            .collect();
        let borrowed: Vec<BorrowedFd<'_>> = files.iter().map(|f| f.as_fd()).collect();
        let mut fds = Vec::new();
        send_with_fds(&a, b"1", &borrowed[..1]).expect("send");
        let mut buf = [0u8; 4];
        assert_eq!(recv_with_fds(&b, &mut buf, &mut fds).expect("recv"), 1);
        assert_eq!(fds.len(), 1);
        send_with_fds(&a, b"2", &borrowed).expect("send");
        let err = recv_with_fds(&b, &mut buf, &mut fds).expect_err("truncated");
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert_eq!(fds.len(), 1, "the earlier descriptor stays, none added");
        assert_eq!(descriptors_open_on(&files), files.len() + 1);
    }

    #[test]
    fn exactly_the_maximum_number_of_descriptors_arrives() {
        let (a, b) = UnixStream::pair().expect("socketpair");
        let files: Vec<File> = (0..MAX_FDS_PER_MSG).map(|_| tempfile_in_tmp()).collect();
        let borrowed: Vec<BorrowedFd<'_>> = files.iter().map(|f| f.as_fd()).collect();
        send_with_fds(&a, b"max", &borrowed).expect("send");
        let mut buf = [0u8; 8];
        let mut fds = Vec::new();
        let n = recv_with_fds(&b, &mut buf, &mut fds).expect("recv");
        assert_eq!(&buf[..n], b"max");
        assert_eq!(fds.len(), MAX_FDS_PER_MSG);
        for (mine, theirs) in files.iter().zip(&fds) {
            assert_eq!(identity(mine.as_fd()), identity(theirs.as_fd()), "in order");
        }
        assert_eq!(descriptors_open_on(&files), 2 * MAX_FDS_PER_MSG);
        drop(fds);
        assert_eq!(descriptors_open_on(&files), MAX_FDS_PER_MSG);
    }

    #[test]
    fn received_descriptors_are_close_on_exec() {
        let (a, b) = UnixStream::pair().expect("socketpair");
        let files: Vec<File> = (0..2).map(|_| tempfile_in_tmp()).collect();
        for f in &files {
            // The sender's copies are inheritable; the flag is per descriptor.
            nix::fcntl::fcntl(
                f,
                nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()),
            )
            .expect("clear cloexec");
        }
        let borrowed: Vec<BorrowedFd<'_>> = files.iter().map(|f| f.as_fd()).collect();
        send_with_fds(&a, b"c", &borrowed).expect("send");
        let mut buf = [0u8; 4];
        let mut fds = Vec::new();
        recv_with_fds(&b, &mut buf, &mut fds).expect("recv");
        assert_eq!(fds.len(), 2);
        for fd in &fds {
            let flags = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_GETFD).expect("getfd");
            assert!(
                nix::fcntl::FdFlag::from_bits_truncate(flags)
                    .contains(nix::fcntl::FdFlag::FD_CLOEXEC),
                "received descriptor is inheritable"
            );
        }
    }

    /// Device and inode of the file behind `fd`.
    fn identity(fd: BorrowedFd<'_>) -> (u64, u64) {
        let st = nix::sys::stat::fstat(fd).expect("fstat");
        (st.st_dev as u64, st.st_ino as u64)
    }

    /// How many of this process's descriptors refer to one of `files`.
    /// Other tests run in parallel threads and open and close descriptors of
    /// their own, so counting all of `/proc/self/fd` would race; the files
    /// here are fresh inodes nobody else can reach.
    fn descriptors_open_on(files: &[File]) -> usize {
        let ours: std::collections::HashSet<(u64, u64)> =
            files.iter().map(|f| identity(f.as_fd())).collect();
        std::fs::read_dir("/proc/self/fd")
            .expect("/proc/self/fd")
            .flatten()
            .filter(|e| {
                std::fs::metadata(e.path())
                    .map(|m| ours.contains(&(m.dev(), m.ino())))
                    .unwrap_or(false)
            })
            .count()
    }

    fn tempfile_in_tmp() -> File {
        let dir = std::env::temp_dir();
        let path = dir.join(format!(
            "protocol-fdpass-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .read(true)
            .write(true)
            .open(&path)
            .expect("temp file");
        let _ = std::fs::remove_file(&path);
        f
    }
}
