//! A planned action on many processes: `Check` (each target's verdict,
//! nothing done) and `Act` (each target re-verified — pidfd, start time,
//! executable's device and inode — then acted on through its pidfd).
//!
//! A tree is held still while it is signalled: every allowed member is
//! stopped (`SIGSTOP`) and seen stopped before anything else happens, the
//! children its members forked meanwhile are pinned, judged and stopped in
//! turn until none is new, executables are compared again (a stopped
//! process cannot exec), leaves are signalled first, and then every
//! member the helper stopped is continued. Each target gets one decision
//! line; the checks are PROTOCOL.md's.

// A refusal here is the answer itself, built once per target and moved
// into the batch: boxing it would only add an allocation.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::fs;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use protocol::{Action, Caller, Outcome, Pinned, Request, Response, Target};

use crate::ids::Nice;
use crate::log;
use crate::policy::Policy;
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

/// One member of an `Act`: as planned (or added: forked since), what was
/// found, whether the helper stopped it (and must continue it), and a
/// refusal found once it was stopped.
struct Member {
    pinned: Pinned,
    added: bool,
    pin: Result<Resolved, Response>,
    stopped: bool,
    late: Option<Response>,
}

impl Server {
    /// `Check`: each target's verdict, nothing done and nothing logged.
    pub(crate) fn check_batch(
        &mut self,
        conn: u64,
        peer: Peer,
        targets: &[Target],
        action: Action,
        caller: &Caller,
    ) -> Response {
        if let Err(what) = valid(targets.len(), action, &self.policy) {
            return Response::Invalid { what };
        }
        let outcomes = targets
            .iter()
            .map(|t| {
                // The executable is pinned whatever the verdict: a refused
                // target is executed (and refused again) like the rest.
                let pin = self.pin(conn, peer, t);
                let exe = pin.as_ref().ok().and_then(|r| r.exe.1);
                let pidfd_ino = pin.as_ref().ok().and_then(pidfd_ino);
                let judged = pin.and_then(|r| self.allowed(r, action, caller));
                Outcome {
                    pinned: Pinned {
                        target: *t,
                        exe,
                        pidfd_ino,
                    },
                    answer: judged.map_or_else(bounded, |_| Response::Ok),
                }
            })
            .collect();
        Response::Batch(outcomes)
    }

    /// `Act`: re-verify, (for a tree) hold still, act, continue; one
    /// decision line per target.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn act_batch(
        &mut self,
        conn: u64,
        request_id: u64,
        peer: Peer,
        targets: &[Pinned],
        action: Action,
        caller: &Caller,
        tree: bool,
    ) -> Response {
        if let Err(what) = valid(targets.len(), action, &self.policy) {
            return Response::Invalid { what };
        }
        let mut members: Vec<Member> = Vec::with_capacity(targets.len());
        for p in targets {
            // The executable first: a process that execs another file
            // since the plan is `ExeChanged`, whatever the policy says of
            // the new one.
            let pin = self
                .pin(conn, peer, &p.target)
                .and_then(|r| same(r, p))
                .and_then(|r| self.allowed(r, action, caller));
            members.push(Member {
                pinned: *p,
                added: false,
                pin,
                stopped: false,
                late: None,
            });
        }
        let hold = tree && matches!(action, Action::Signal(_));
        if hold {
            self.hold_tree(conn, peer, &mut members, action, caller);
        }
        let mut order: Vec<usize> = (0..members.len()).collect();
        if tree {
            let depth = depths(&members);
            order.sort_by_key(|&i| std::cmp::Reverse(depth[i]));
        }
        let mut answers: Vec<Option<Response>> = vec![None; members.len()];
        for i in order {
            let m = &members[i];
            answers[i] = Some(match (&m.pin, &m.late) {
                (Err(resp), _) | (_, Some(resp)) => resp.clone(),
                (Ok(r), None) => self.act_on(r, action),
            });
        }
        for m in members.iter().filter(|m| m.stopped) {
            if let (Ok(r), Action::Signal(s)) = (&m.pin, action) {
                if s != protocol::Signal::Stop {
                    let _ = sys::pidfd_send_signal(r.pidfd.as_fd(), libc::SIGCONT);
                }
            }
        }
        let outcomes: Vec<Outcome> = members
            .iter()
            .zip(answers)
            .map(|(m, answer)| Outcome {
                pinned: m.pinned,
                answer: answer.unwrap_or(Response::NoSuchProcess),
            })
            .collect();
        for o in &outcomes {
            let one = match action {
                Action::Signal(signal) => Request::Signal {
                    target: o.pinned.target,
                    signal,
                    caller: caller.clone(),
                },
                Action::Renice(nice) => Request::Renice {
                    target: o.pinned.target,
                    nice,
                    caller: caller.clone(),
                },
            };
            log::decision(request_id, peer, &one, &o.answer);
        }
        Response::Batch(
            outcomes
                .into_iter()
                .map(|o| Outcome {
                    answer: bounded(o.answer),
                    ..o
                })
                .collect(),
        )
    }

    /// The target pinned, past the built-in protections, and allowed by
    /// the policy for `action`.
    fn judge(
        &mut self,
        conn: u64,
        peer: Peer,
        t: &Target,
        action: Action,
        caller: &Caller,
    ) -> Result<Resolved, Response> {
        let r = self.pin(conn, peer, t)?;
        self.allowed(r, action, caller)
    }

    /// The pinned process, if the policy allows it `action`.
    fn allowed(&self, r: Resolved, action: Action, caller: &Caller) -> Result<Resolved, Response> {
        let subject = self.subject(&r, caller);
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

    /// The act itself, through the pin.
    fn act_on(&self, r: &Resolved, action: Action) -> Response {
        let done = match action {
            Action::Signal(s) => target::signal(r, s.number()).map(|()| Response::Ok),
            Action::Renice(n) => Nice::new(n)
                .map_err(|_| target::Refusal::Failed(libc::EINVAL))
                .and_then(|n| target::renice(r, n))
                .map(|threads| Response::Reniced { threads }),
        };
        done.unwrap_or_else(|e| self.refusal(e))
    }

    /// Stops every allowed member, then pins, judges and stops the
    /// children they forked until a round finds none new; then compares
    /// each planned member's executable again.
    fn hold_tree(
        &mut self,
        conn: u64,
        peer: Peer,
        members: &mut Vec<Member>,
        action: Action,
        caller: &Caller,
    ) {
        let mut from = 0;
        for _ in 0..TREE_ROUNDS {
            for m in members[from..].iter_mut() {
                if let Ok(r) = &m.pin {
                    let already = state(r.pid.get()).is_some_and(|s| s == b'T' || s == b't');
                    m.stopped =
                        !already && sys::pidfd_send_signal(r.pidfd.as_fd(), libc::SIGSTOP).is_ok();
                }
            }
            wait_stopped(&members[from..]);
            let known: Vec<i32> = members.iter().map(|m| m.pinned.target.pid).collect();
            let mut new = Vec::new();
            for m in &members[from..] {
                if let Ok(r) = &m.pin {
                    new.extend(
                        children(r.pid.get())
                            .into_iter()
                            .filter(|c| !known.contains(c)),
                    );
                }
            }
            new.sort_unstable();
            new.dedup();
            if new.is_empty() {
                break;
            }
            from = members.len();
            for pid in new {
                let Some(info) = ProcInfo::read(pid) else {
                    continue;
                };
                let t = Target {
                    pid,
                    start_time: info.start_time.0,
                };
                let pin = self.judge(conn, peer, &t, action, caller);
                members.push(Member {
                    pinned: Pinned {
                        target: t,
                        exe: pin.as_ref().ok().and_then(|r| r.exe.1),
                        pidfd_ino: pin.as_ref().ok().and_then(pidfd_ino),
                    },
                    added: true,
                    pin,
                    stopped: false,
                    late: None,
                });
            }
        }
        for m in members.iter_mut().filter(|m| !m.added) {
            if let Ok(r) = &m.pin {
                if target::exe(r.pid.get()).1 != m.pinned.exe {
                    m.late = Some(Response::ExeChanged);
                }
            }
        }
    }
}

/// A refusal without its `detail` (the decision line has it), so that a
/// full batch's answer stays far below the frame limit.
fn bounded(r: Response) -> Response {
    match r {
        Response::Denied { rule, .. } => Response::Denied {
            rule,
            detail: String::new(),
        },
        other => other,
    }
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

/// The pin, unless its pidfd's inode is not the planned one (another
/// process) or the process now executes another file than planned.
fn same(r: Resolved, p: &Pinned) -> Result<Resolved, Response> {
    if p.pidfd_ino.is_some() && pidfd_ino(&r) != p.pidfd_ino {
        Err(Response::Mismatch)
    } else if r.exe.1 == p.exe {
        Ok(r)
    } else {
        Err(Response::ExeChanged)
    }
}

fn pidfd_ino(r: &Resolved) -> Option<u64> {
    nix::sys::stat::fstat(r.pidfd.as_fd())
        .ok()
        .map(|s| s.st_ino)
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
    let pids: Vec<i32> = members
        .iter()
        .filter(|m| m.stopped)
        .filter_map(|m| m.pin.as_ref().ok().map(|r| r.pid.get()))
        .collect();
    while Instant::now() < deadline {
        let moving = pids
            .iter()
            .any(|&p| state(p).is_some_and(|s| !matches!(s, b'T' | b't' | b'Z' | b'X')));
        if !moving {
            return;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The children of every thread of `pid` (`/proc/PID/task/TID/children`).
fn children(pid: i32) -> Vec<i32> {
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
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
            let mut d = 0;
            let mut p = m.pinned.target.pid;
            while let Some(&pp) = parent.get(&p) {
                d += 1;
                p = pp;
                if d > members.len() {
                    break;
                }
            }
            d
        })
        .collect()
}
