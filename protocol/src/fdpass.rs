//! Passing file descriptors over a Unix stream socket with `SCM_RIGHTS`.
//!
//! The gateway opens a job's output files itself and hands the open
//! descriptors to the helper, so the helper never opens a path chosen by
//! the unprivileged side. On a stream socket the descriptors ride on the
//! first byte of the `sendmsg` call that carries them; the receiver collects
//! whatever arrives into a queue and the protocol layer decides whether the
//! frame it decodes was supposed to bring descriptors (see
//! [`crate::Request::fds_expected`]).
#![allow(unsafe_code)]

use std::io::{self, IoSlice, IoSliceMut, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;

use nix::cmsg_space;
use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags};

/// Most descriptors accepted in one `recvmsg`. Anything beyond is cut off
/// by the kernel (`MSG_CTRUNC`), which is reported as an error.
pub const MAX_FDS_PER_MSG: usize = 4;

/// Writes all of `bytes` to `sock`, attaching `fds` to the first byte.
pub fn send_with_fds(sock: &UnixStream, bytes: &[u8], fds: &[BorrowedFd<'_>]) -> io::Result<()> {
    if fds.is_empty() {
        let mut s = sock;
        return s.write_all(bytes);
    }
    if bytes.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "descriptors need at least one byte to ride on",
        ));
    }
    let raw: Vec<RawFd> = fds.iter().map(|f| f.as_raw_fd()).collect();
    let cmsg = [ControlMessage::ScmRights(&raw)];
    let sent = loop {
        match sendmsg::<()>(
            sock.as_raw_fd(),
            &[IoSlice::new(bytes)],
            &cmsg,
            MsgFlags::MSG_NOSIGNAL,
            None,
        ) {
            Ok(n) => break n,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(io::Error::from(e)),
        }
    };
    let mut s = sock;
    s.write_all(&bytes[sent..])
}

/// Reads once from `sock` into `buf`, appending any descriptors that came
/// with the bytes to `fds`. Returns the number of bytes read (0 at end of
/// stream). Received descriptors are close-on-exec.
pub fn recv_with_fds(sock: impl AsFd, buf: &mut [u8], fds: &mut Vec<OwnedFd>) -> io::Result<usize> {
    let mut space = cmsg_space!([RawFd; MAX_FDS_PER_MSG]);
    let mut iov = [IoSliceMut::new(buf)];
    let msg = recvmsg::<()>(
        sock.as_fd().as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(io::Error::from)?;
    let bytes = msg.bytes;
    let truncated = msg.flags.contains(MsgFlags::MSG_CTRUNC);
    for cmsg in msg.cmsgs().map_err(io::Error::from)? {
        if let ControlMessageOwned::ScmRights(raw) = cmsg {
            for fd in raw {
                // SAFETY: the kernel just installed `fd` in our table for
                // this SCM_RIGHTS message; nothing else in the process knows
                // it, so taking sole ownership is sound.
                fds.push(unsafe { OwnedFd::from_raw_fd(fd) });
            }
        }
    }
    if truncated {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "control message truncated: too many descriptors",
        ));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::File;
    use std::io::{Read, Seek, SeekFrom};

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
        let borrowed: Vec<BorrowedFd<'_>> = files.iter().map(|f| f.as_fd()).collect();
        send_with_fds(&a, b"z", &borrowed).expect("send");
        let mut buf = [0u8; 4];
        let mut fds = Vec::new();
        assert!(recv_with_fds(&b, &mut buf, &mut fds).is_err());
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
