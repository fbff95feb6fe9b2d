//! A process's chain of parents up to pid 1, each member pinned by a
//! pidfd, so the ancestor protection need not walk `/proc` again on every
//! request.
//!
//! Why a kept chain stays exact: a process's parent changes only when that
//! parent exits (the kernel then hands the child to a reaper). So as long
//! as no member of the chain has exited, every member still has the
//! parent it had when the chain was read, and the chain is the same one.
//! A pidfd becomes readable when its process exits, so one `poll` over the
//! members answers "has any of them exited?"; if one has, the chain is
//! walked again before it is used (`target::Guard`, which asks in the same
//! `poll` whether the target is still alive).
//!
//! A walk that meets churn (a parent exiting between two reads) retries
//! the step; if the churn does not settle, the chain read so far is used
//! for this request and marked so the next request walks again.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use crate::ids::Pid;
use crate::proc::{alive, ppid_of};
use crate::sys;

/// Members beyond this are not kept (their descriptors would be held for
/// every connection); such a chain is walked again on each use.
const MAX_KEPT: usize = 64;

/// Attempts at one step of the walk before it gives up on that step.
const STEP_TRIES: usize = 8;

/// The chain from one process (first) up to, not including, pid 1.
#[derive(Default)]
pub struct Lineage {
    /// `(pid, pidfd)`, the process itself first, then its parent, etc.
    members: Vec<(i32, OwnedFd)>,
    /// Read to the top, without churn, and short enough to keep: only
    /// such a chain is trusted for a second request.
    settled: bool,
}

impl Lineage {
    /// Walks the chain of `pid` now. A process that is gone has an empty
    /// chain (and is walked again next time).
    pub fn walk(pid: i32) -> Lineage {
        // Not settled unless the walk reaches the top.
        let mut chain = Lineage::default();
        let Some(mut fd) = Pid::new(pid).ok().and_then(|p| sys::pidfd_open(p, 0).ok()) else {
            return chain;
        };
        let mut cur = pid;
        // `None`: churn that did not settle, or `cur` exited: what we have
        // is this request's best knowledge.
        while let Some(parent) = parent_pinned(cur, &fd) {
            chain.members.push((cur, fd));
            // `None`: the parent is pid 1 (or none, at a namespace's top).
            let Some((ppid, pfd)) = parent else {
                chain.settled = chain.members.len() <= MAX_KEPT;
                break;
            };
            (cur, fd) = (ppid, pfd);
        }
        chain
    }

    /// Whether the chain may be used without a walk, given that no
    /// member has exited (see [`Lineage::fds`]).
    pub fn kept(&self, pid: i32) -> bool {
        self.settled && self.members.first().is_some_and(|(p, _)| *p == pid)
    }

    /// The members' pidfds: readable once that member has exited.
    pub fn fds(&self) -> impl Iterator<Item = BorrowedFd<'_>> {
        self.members.iter().map(|(_, fd)| fd.as_fd())
    }

    /// Whether `pid` is the process or one of its ancestors (pid 1 always).
    pub fn contains(&self, pid: i32) -> bool {
        pid == 1 || self.members.iter().any(|(p, _)| *p == pid)
    }
}

/// The parent of `cur` (pinned by `cur_fd`), itself pinned by a new pidfd:
/// `Some(None)` when the parent is pid 1 or none, `None` when `cur` exited
/// or the parent kept changing under us.
///
/// The parent is pinned and then `cur`'s parent is read again: if it is
/// still that pid and both are alive afterwards, the pinned process is the
/// parent (a live parent's pid cannot belong to another process, and a
/// child is handed to a reaper the moment its parent exits).
#[allow(clippy::option_option)]
fn parent_pinned(cur: i32, cur_fd: &OwnedFd) -> Option<Option<(i32, OwnedFd)>> {
    for _ in 0..STEP_TRIES {
        // Read while `cur` is alive: a dead one's parent tells nothing.
        let ppid = ppid_of(cur).filter(|_| alive(cur_fd))?;
        // pid 1 or none (0) is no `Pid`, and no parent to pin.
        let Ok(parent) = Pid::new(ppid) else {
            return Some(None);
        };
        let Ok(pfd) = sys::pidfd_open(parent, 0) else {
            continue; // the parent exited: `cur` has a new one
        };
        if ppid_of(cur) == Some(ppid) && alive(cur_fd) && alive(&pfd) {
            return Some(Some((ppid, pfd)));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    /// Whether the chain of `pid` still holds: kept, and no member exited
    /// (one `poll`).
    fn holds(l: &Lineage, pid: i32) -> bool {
        let mut fds: Vec<PollFd> = l
            .fds()
            .map(|fd| PollFd::new(fd, PollFlags::POLLIN))
            .collect();
        l.kept(pid) && matches!(poll(&mut fds, PollTimeout::ZERO), Ok(0))
    }

    fn pids(l: &Lineage) -> Vec<i32> {
        l.members.iter().map(|(p, _)| *p).collect()
    }

    /// The process the chain starts from, if it was alive when walked.
    fn first(l: &Lineage) -> Option<i32> {
        l.members.first().map(|(p, _)| *p)
    }

    #[test]
    fn own_chain_starts_here_and_matches_proc() {
        let me = std::process::id() as i32;
        let l = Lineage::walk(me);
        assert_eq!(first(&l), Some(me));
        assert!(holds(&l, me));
        let got = pids(&l);
        assert_eq!(got.get(1).copied(), ppid_of(me).filter(|p| *p > 1));
        for w in got.windows(2) {
            assert_eq!(ppid_of(w[0]), Some(w[1]), "chain {got:?}");
        }
        assert!(l.contains(1) && l.contains(me));
    }

    /// The invariant the cache rests on: when a member exits, the chain no
    /// longer holds, and walking again no longer names the dead member
    /// (whose pid a new, unrelated process could get).
    #[test]
    fn a_member_exiting_is_seen_and_the_walk_drops_it() {
        // sh (middle) starts `sleep` in the background, says its pid, and
        // waits for its stdin to close.
        let mut middle = Command::new("sh")
            .arg("-c")
            .arg("sleep 30 & echo $!; read _")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("sh");
        let mut out = String::new();
        {
            use std::io::BufRead;
            let stdout = middle.stdout.take().expect("stdout");
            std::io::BufReader::new(stdout)
                .read_line(&mut out)
                .expect("sleep's pid");
        }
        let leaf: i32 = out.trim().parse().expect("a pid");
        let mid = middle.id() as i32;
        let me = std::process::id() as i32;

        let before = Lineage::walk(leaf);
        assert_eq!(&pids(&before)[..3], &[leaf, mid, me]);
        assert!(holds(&before, leaf));

        drop(middle.stdin.take()); // sh reads EOF and exits
        middle.wait().expect("sh exits");
        assert!(!holds(&before, leaf), "the middle member exited");

        // The leaf is handed to a reaper when sh exits; a walk from then
        // on no longer names sh's pid.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let l = Lineage::walk(leaf);
            if !l.contains(mid) {
                assert!(holds(&l, leaf));
                assert_eq!(first(&l), Some(leaf));
                break;
            }
            assert!(
                Instant::now() < deadline,
                "still names {mid}: {:?}",
                pids(&l)
            );
        }
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(leaf),
            nix::sys::signal::Signal::SIGKILL,
        );
    }

    #[test]
    fn a_process_that_is_gone_has_no_chain_and_is_walked_again() {
        let mut c = Command::new("true").spawn().expect("true");
        let pid = c.id() as i32;
        c.wait().expect("reaped");
        let l = Lineage::walk(pid);
        // (Unless the pid was reused at once, it names nobody now.)
        if first(&l).is_none() {
            assert!(!holds(&l, pid), "an empty chain is walked again");
        }
    }
}
