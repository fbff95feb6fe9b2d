//! Acting on processes, one (a DELETE or PATCH) or a plan's many: `Check`
//! (each target's verdict, nothing done) and `Act` (each target
//! re-verified — pidfd, start time, and what a plan pinned: the pidfd's
//! inode, the executable's device and inode — judged by the policy, then
//! acted on through its pidfd).
//!
//! A tree is held still while it is signalled: every allowed member is
//! stopped (`SIGSTOP`) and seen stopped before anything else happens, the
//! children its members forked meanwhile are pinned, judged and stopped in
//! turn until none is new, executables are compared again (a stopped
//! process cannot exec), leaves are signalled first, and then every
//! member the helper stopped is continued. Each target gets one decision
//! line (an act refused whole gets one in all); the checks are
//! PROTOCOL.md's.

// A refusal here is the answer itself, built once per target and moved
// into the batch: boxing it would only add an allocation.
#![allow(clippy::result_large_err)]

use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use protocol::{Action, Caller, ExePin, Outcome, Pinned, Response, Signal, Target};

use crate::ids::Nice;
use crate::log;
use crate::policy::{Policy, Subject};
use crate::proc::ProcInfo;
use crate::server::Server;
use crate::socket::Peer;
use crate::sys;
use crate::target::{self, Resolved};

/// How long a tree's members may take to stop before the helper acts on
/// them anyway (a process in uninterruptible sleep stops late).
const STOP_WAIT: Duration = Duration::from_secs(1);

/// How many rounds of "children forked since" a tree gets at most.
const TREE_ROUNDS: usize = 64;

/// Most members a tree's hold takes in, planned and added: the answer
/// lists each, and this many of the longest outcomes fit one frame (see
/// the test below). A tree that grows past it is refused whole.
const MAX_TREE: usize = 512;

/// One member of a batch: what was found of it (pinned now: planned,
/// checked, or forked since), its pin or the refusal that stands for it,
/// whether the helper stopped it (and must continue it), and its answer
/// once known (acted on, or an executable found changed once it was
/// stopped).
struct Member {
    pinned: Pinned,
    pin: Result<Resolved, Response>,
    stopped: bool,
    answer: Option<Response>,
}

impl Server {
    /// `Check` (`act` is `None`: each target's verdict, nothing done and
    /// nothing logged) and `Act` (`Some(tree)`: re-verify, for a tree hold
    /// still, act, continue; one decision line per target, one in all for
    /// an act refused whole). Each outcome's `pinned` is what the helper
    /// found of the process.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn batch(
        &mut self,
        conn: u64,
        request_id: u64,
        peer: Peer,
        targets: &[Pinned],
        action: Action,
        caller: &Caller,
        act: Option<bool>,
    ) -> Response {
        let key = &caller.key;
        if let Err(what) = valid(targets.len(), action, &self.policy) {
            let invalid = Response::Invalid { what };
            if act.is_some() {
                log::refused(request_id, peer, key, targets.len(), action, &invalid);
            }
            return invalid;
        }
        let mut members: Vec<Member> = targets
            .iter()
            .map(|p| self.member(conn, peer, p, action, caller))
            .collect();
        if let Some(tree) = act {
            // A TSTP is not held: the hold's closing SIGCONT would discard
            // it (the kernel drops pending stop signals on a SIGCONT).
            if tree && matches!(action, Action::Signal(s) if s != Signal::Tstp) {
                if let Err(what) = self.hold_tree(conn, peer, &mut members, action, caller) {
                    for m in members.iter().filter(|m| m.stopped) {
                        if let Ok(r) = &m.pin {
                            let _ = sys::pidfd_send_signal(r.pidfd.as_fd(), libc::SIGCONT);
                        }
                    }
                    let invalid = Response::Invalid { what };
                    log::refused(request_id, peer, key, targets.len(), action, &invalid);
                    return invalid;
                }
            }
            let mut order: Vec<usize> = (0..members.len()).collect();
            if tree {
                let depth = depths(&members);
                order.sort_by_key(|&i| std::cmp::Reverse(depth[i]));
            }
            for i in order {
                let m = &mut members[i];
                if let (Ok(r), true) = (&m.pin, m.answer.is_none()) {
                    m.answer = Some(act_on(r, action));
                }
            }
        }
        let n = members.len();
        let outcomes = members
            .into_iter()
            .map(|m| {
                if let (true, Ok(r)) = (release(m.stopped, action, m.answer.as_ref()), &m.pin) {
                    let _ = sys::pidfd_send_signal(r.pidfd.as_fd(), libc::SIGCONT);
                }
                let mut answer = match (m.answer, m.pin) {
                    (Some(answer), _) | (None, Err(answer)) => answer,
                    // Allowed and not acted on: a `Check`'s "would be".
                    (None, Ok(_)) => Response::Ok,
                };
                if act.is_some() {
                    log::act(request_id, peer, key, m.pinned.target, action, &answer);
                }
                // In a batch of more than one, a refusal without its detail
                // (the decision line has it), so that a full batch's answer
                // stays far below the frame limit; a single act keeps it.
                if let (Response::Denied { detail, .. }, true) = (&mut answer, n > 1) {
                    detail.clear();
                }
                Outcome {
                    pinned: m.pinned,
                    answer,
                }
            })
            .collect();
        Response::Batch(outcomes)
    }

    /// A target pinned now, past the built-in protections, compared with
    /// what its plan pinned and judged by the policy for `action`. What
    /// was found (executable, pidfd inode) is recorded whatever the
    /// verdict: a refused target is executed (and refused again) like the
    /// rest. The executable comes before the policy: a process that execs
    /// another file since the plan is `ExeChanged`, whatever the policy
    /// says of the new one.
    fn member(
        &mut self,
        conn: u64,
        peer: Peer,
        plan: &Pinned,
        action: Action,
        caller: &Caller,
    ) -> Member {
        let pin = self.pin(conn, peer, &plan.target);
        let pinned = Pinned {
            target: plan.target,
            exe: ExePin::from(pin.as_ref().ok().and_then(|r| r.exe.1)),
            pidfd_ino: pin.as_ref().ok().and_then(|r| r.pidfd_ino),
        };
        Member {
            pinned,
            pin: pin
                .and_then(|r| same(&pinned, plan).map(|()| r))
                .and_then(|r| self.allowed(r, action, caller)),
            stopped: false,
            answer: None,
        }
    }

    /// The target pinned and past the built-in protections, with the
    /// helper's and the peer's chains of parents kept between requests.
    pub(crate) fn pin(&mut self, conn: u64, peer: Peer, t: &Target) -> Result<Resolved, Response> {
        let mut theirs = self.conns.get_mut(&conn).and_then(|c| c.lineage.take());
        let mut guard = target::Guard {
            me: self.pid,
            peer: peer.pid,
            ours: &mut self.lineage,
            theirs: &mut theirs,
        };
        let resolved = target::resolve(t.pid, t.start_time, &mut guard);
        if let Some(c) = self.conns.get_mut(&conn) {
            c.lineage = theirs;
        }
        resolved
    }

    /// The pinned process, if the policy allows it `action`: what it
    /// judges is the process's owner, name, executable and job.
    fn allowed(&self, r: Resolved, action: Action, caller: &Caller) -> Result<Resolved, Response> {
        let owner = r.info.real_uid;
        let subject = Subject {
            owner,
            comm: &r.info.comm,
            exe: &r.exe.0,
            job: self.jobs.job_of(r.pid.get(), owner.get(), &caller.key),
            all_jobs: caller.all_jobs,
        };
        let verdict = match action {
            Action::Signal(s) => self.policy.check_signal(&subject, s),
            Action::Renice(n) => match Nice::new(n) {
                Ok(n) => self.policy.check_renice(&subject, n),
                Err(what) => return Err(Response::Invalid { what }),
            },
        };
        verdict.map_err(|rule| self.denied(rule))?;
        Ok(r)
    }

    /// Stops every allowed member, then pins, judges and stops the
    /// children they forked until a round finds none new; then compares
    /// each member's executable again with what was found when it was
    /// pinned, unreadable included: a planned member that exec'd before it
    /// stopped is not the file the plan showed (`ExeChanged`); an added
    /// one, a fork caught before its exec, is judged again on what it runs
    /// now that it is stopped and cannot exec again (left out, it would
    /// outlive its tree). A tree of more than [`MAX_TREE`] members is an
    /// error, once every member found so far is stopped: the caller
    /// continues them and signals none.
    fn hold_tree(
        &mut self,
        conn: u64,
        peer: Peer,
        members: &mut Vec<Member>,
        action: Action,
        caller: &Caller,
    ) -> Result<(), String> {
        let planned = members.len();
        let mut from = 0;
        for _ in 0..TREE_ROUNDS {
            for m in members[from..].iter_mut() {
                if let Ok(r) = &m.pin {
                    let already = matches!(state(r.pid.get()), Some(b'T' | b't'));
                    m.stopped =
                        !already && sys::pidfd_send_signal(r.pidfd.as_fd(), libc::SIGSTOP).is_ok();
                }
            }
            wait_stopped(&members[from..]);
            let known: Vec<i32> = members.iter().map(|m| m.pinned.target.pid).collect();
            let new: BTreeSet<i32> = members[from..]
                .iter()
                .filter_map(|m| m.pin.as_ref().ok())
                .flat_map(|r| children(r.pid.get()))
                .filter(|c| !known.contains(c))
                .collect();
            if new.is_empty() {
                break;
            }
            if members.len() + new.len() > MAX_TREE {
                return Err(format!(
                    "the tree has more than {MAX_TREE} members; nothing was signalled"
                ));
            }
            from = members.len();
            for pid in new {
                if let Some(start_time) = ProcInfo::read(pid).map(|i| i.start_time.0) {
                    let added = Pinned {
                        target: Target { pid, start_time },
                        exe: ExePin::Unplanned,
                        pidfd_ino: None,
                    };
                    let m = self.member(conn, peer, &added, action, caller);
                    members.push(m);
                }
            }
        }
        for (i, m) in members.iter_mut().enumerate() {
            let Ok(r) = &m.pin else { continue };
            if ExePin::from(target::exe(r.pid.get()).1) == m.pinned.exe {
                continue;
            }
            if i < planned {
                m.answer = Some(Response::ExeChanged);
                continue;
            }
            let found = Pinned {
                exe: ExePin::Unplanned,
                ..m.pinned
            };
            let again = self.member(conn, peer, &found, action, caller);
            m.pinned = again.pinned;
            match again.pin {
                Ok(r) => m.pin = Ok(r),
                // Refused now: the old pin stays, to continue it by.
                Err(refused) => m.answer = Some(refused),
            }
        }
        Ok(())
    }
}

/// Whether a member the hold stopped is continued: always, unless the
/// act's own `STOP` reached it. One refused after it was stopped (its
/// executable changed, or judged again and denied) was not the caller's
/// to stop.
fn release(stopped: bool, action: Action, answer: Option<&Response>) -> bool {
    let stopped_by_act = action == Action::Signal(Signal::Stop) && answer == Some(&Response::Ok);
    stopped && !stopped_by_act
}

/// The act itself, through the pin.
fn act_on(r: &Resolved, action: Action) -> Response {
    let done = match action {
        Action::Signal(s) => target::signal(r, s.number()).map(|()| Response::Ok),
        Action::Renice(n) => Nice::new(n)
            .map_err(|what| Response::Invalid { what })
            .and_then(|n| target::renice(r, n))
            .map(|threads| Response::Reniced { threads }),
    };
    done.unwrap_or_else(|refused| refused)
}

/// A batch's size (at most the policy's `max_targets` for the act, itself
/// at most a frame's) and action, checked before any target is looked at.
fn valid(n: usize, action: Action, policy: &Policy) -> Result<(), String> {
    let (section, cap) = match action {
        Action::Signal(_) => ("signal", policy.signal.max_targets),
        Action::Renice(_) => ("renice", policy.renice.max_targets),
    };
    if n > cap {
        return Err(format!(
            "{n} targets; the policy's [{section}] max_targets is {cap}"
        ));
    }
    if let Action::Renice(n) = action {
        Nice::new(n)?;
    }
    Ok(())
}

/// Whether what was found now is what was planned: the pidfd's inode
/// (another process otherwise), then the executable (another file
/// otherwise; one planned unreadable must still be). What was not planned
/// (`None`, `ExePin::Unplanned`) is not compared.
fn same(found: &Pinned, plan: &Pinned) -> Result<(), Response> {
    if plan.pidfd_ino.is_some() && found.pidfd_ino != plan.pidfd_ino {
        Err(Response::Mismatch)
    } else if plan.exe != ExePin::Unplanned && found.exe != plan.exe {
        Err(Response::ExeChanged)
    } else {
        Ok(())
    }
}

/// Field 3 of `/proc/PID/stat`, the process state.
fn state(pid: i32) -> Option<u8> {
    let stat = fs::read(format!("/proc/{pid}/stat")).ok()?;
    let close = stat.iter().rposition(|&b| b == b')')?;
    stat.get(close + 2).copied()
}

/// Waits (at most `STOP_WAIT`) until every stopped member is seen stopped
/// or gone: a stopped process can neither fork nor exec.
fn wait_stopped(members: &[Member]) {
    let deadline = Instant::now() + STOP_WAIT;
    // Neither stopped (T, t) nor gone (Z, X).
    let moving = |r: &Resolved| state(r.pid.get()).is_some_and(|s| !b"TtZX".contains(&s));
    let stopping = |m: &Member| m.stopped && m.pin.as_ref().is_ok_and(moving);
    while Instant::now() < deadline && members.iter().any(stopping) {
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The children of every thread of `pid` (`/proc/PID/task/TID/children`).
fn children(pid: i32) -> Vec<i32> {
    fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|t| fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|s| {
            s.split_ascii_whitespace()
                .filter_map(|c| c.parse().ok())
                .collect::<Vec<i32>>()
        })
        .collect()
}

/// Each member's depth in the tree the members form (by parent), so that
/// leaves can go first.
fn depths(members: &[Member]) -> Vec<usize> {
    let parent: HashMap<i32, i32> = members
        .iter()
        .filter_map(|m| m.pin.as_ref().ok().map(|r| (r.pid.get(), r.info.ppid)))
        .collect();
    members
        .iter()
        .map(|m| {
            std::iter::successors(parent.get(&m.pinned.target.pid), |p| parent.get(p))
                .take(members.len() + 1)
                .count()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Only a member the act's `STOP` reached stays stopped; every other
    /// member the hold stopped is continued, a refused one included.
    #[test]
    fn a_held_member_is_continued_unless_the_acts_stop_reached_it() {
        let stop = Action::Signal(Signal::Stop);
        let kill = Action::Signal(Signal::Kill);
        let denied = Response::Denied {
            rule: "signal.exes".into(),
            detail: String::new(),
        };
        assert!(!release(true, stop, Some(&Response::Ok)));
        assert!(release(true, stop, Some(&Response::ExeChanged)));
        assert!(release(true, stop, Some(&denied)));
        assert!(release(true, stop, Some(&Response::NoSuchProcess)));
        assert!(release(true, kill, Some(&Response::Ok)));
        assert!(release(true, kill, Some(&Response::ExeChanged)));
        assert!(!release(false, kill, Some(&Response::Ok)));
        assert!(!release(false, stop, Some(&denied)));
    }

    /// The answer to a tree of `MAX_TREE` members fits one frame and
    /// decodes under its allocation limit (more than 215 did not while
    /// `Response` held a `JobStatus` inline), each
    /// outcome as long as one can be in a batch: both pins found, and a
    /// refusal (its detail cleared) whose rule is 40 bytes, about twice the
    /// longest rule's name (`builtin:other-key-job`).
    #[test]
    fn a_full_tree_answer_fits_one_frame() {
        let rule = "x".repeat(40);
        let outcome = Outcome {
            pinned: pinned(
                ExePin::File {
                    dev: u64::MAX,
                    ino: u64::MAX,
                },
                Some(u64::MAX),
            ),
            answer: Response::Denied {
                rule,
                detail: String::new(),
            },
        };
        let answer = Response::Batch(vec![outcome; MAX_TREE]);
        let frame = protocol::encode_frame(&answer).expect("fits one frame");
        // Decoding claims each outcome's size in memory, and each string's
        // bytes, against the same 64 KiB: it must come back whole.
        let back = protocol::decode_frame::<Response>(&frame).expect("decodes");
        assert_eq!(back, Some((answer, frame.len())));
    }

    fn pinned(exe: ExePin, pidfd_ino: Option<u64>) -> Pinned {
        let target = Target {
            pid: 42,
            start_time: 7,
        };
        Pinned {
            target,
            exe,
            pidfd_ino,
        }
    }

    /// Every planned executable against every one found: `Unplanned`
    /// matches anything, every other pin only itself (an unreadable plan
    /// is not a wildcard).
    #[test]
    fn a_planned_executable_matches_only_itself_and_an_unplanned_one_anything() {
        let file = |ino| ExePin::File { dev: 1, ino };
        let other_dev = ExePin::File { dev: 2, ino: 10 };
        let all = [
            ExePin::Unplanned,
            ExePin::Unreadable,
            file(10),
            file(11),
            other_dev,
        ];
        // What the helper finds is never `Unplanned`, but a plan compares
        // with it all the same.
        for plan in all {
            for found in all {
                let got = same(&pinned(found, None), &pinned(plan, None));
                let want = if plan == ExePin::Unplanned || plan == found {
                    Ok(())
                } else {
                    Err(Response::ExeChanged)
                };
                assert_eq!(got, want, "plan {plan:?}, found {found:?}");
            }
        }
    }

    /// The pidfd's inode is compared where planned, and first: another
    /// process is `Mismatch` whatever its executable.
    #[test]
    fn a_planned_pidfd_inode_is_compared_before_the_executable() {
        let f = ExePin::File { dev: 1, ino: 10 };
        let cases = [
            (None, Some(5), ExePin::Unreadable, Err(Response::ExeChanged)),
            (None, None, f, Ok(())),
            (Some(5), Some(5), f, Ok(())),
            (Some(5), Some(6), f, Err(Response::Mismatch)),
            (Some(5), None, ExePin::Unreadable, Err(Response::Mismatch)),
        ];
        for (plan_ino, found_ino, found_exe, want) in cases {
            let got = same(&pinned(found_exe, found_ino), &pinned(f, plan_ino));
            assert_eq!(got, want, "{plan_ino:?} {found_ino:?} {found_exe:?}");
        }
    }
}
