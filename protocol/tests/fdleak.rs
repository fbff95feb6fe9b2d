//! A peer that attaches more descriptors than one message may carry must
//! not grow the receiver's descriptor table.
//!
//! This binary holds a single test so that nothing else in the process
//! opens or closes descriptors while it counts all of `/proc/self/fd`.

use std::fs::File;
use std::io::IoSlice;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::os::unix::net::UnixStream;

use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
use protocol::fdpass::{recv_with_fds, MAX_FDS_PER_MSG};

/// Sends `bytes` in one message with `fds` attached, as the gateway's
/// client does.
fn send_with_fds(sock: &UnixStream, bytes: &[u8], fds: &[BorrowedFd<'_>]) -> std::io::Result<()> {
    let raw: Vec<RawFd> = fds.iter().map(|f| f.as_raw_fd()).collect();
    let rights = [ControlMessage::ScmRights(&raw)];
    let sent = sendmsg::<()>(
        sock.as_raw_fd(),
        &[IoSlice::new(bytes)],
        &rights,
        MsgFlags::empty(),
        None,
    )?;
    assert_eq!(sent, bytes.len(), "one message");
    Ok(())
}

fn open_descriptors() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .count()
}

#[test]
fn twenty_messages_with_too_many_descriptors_leave_the_table_unchanged() {
    let (a, b) = UnixStream::pair().expect("socketpair");
    let files: Vec<File> = (0..MAX_FDS_PER_MSG + 2)
        .map(|_| File::open("/dev/null").expect("/dev/null"))
        .collect();
    let borrowed: Vec<BorrowedFd<'_>> = files.iter().map(|f| f.as_fd()).collect();
    let before = open_descriptors();
    for round in 0..20 {
        send_with_fds(&a, b"frame", &borrowed).expect("send");
        let mut buf = [0u8; 16];
        let mut fds = Vec::new();
        let r = recv_with_fds(&b, &mut buf, &mut fds);
        assert!(r.is_err(), "round {round}: {r:?}");
        assert!(fds.is_empty(), "round {round}: descriptors handed out");
    }
    assert_eq!(open_descriptors(), before, "descriptors leaked");
    // The limit itself still passes.
    send_with_fds(&a, b"ok", &borrowed[..MAX_FDS_PER_MSG]).expect("send");
    let mut buf = [0u8; 16];
    let mut fds = Vec::new();
    assert_eq!(recv_with_fds(&b, &mut buf, &mut fds).expect("recv"), 2);
    assert_eq!(fds.len(), MAX_FDS_PER_MSG);
    assert_eq!(open_descriptors(), before + MAX_FDS_PER_MSG);
    drop(fds);
    assert_eq!(open_descriptors(), before);
}
