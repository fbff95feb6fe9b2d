//! What each request gets: an act on processes goes to `batch`, a job
//! request to the job table; one decision line per act. The order of the
//! checks is the one PROTOCOL.md tabulates.

use std::os::fd::OwnedFd;

use protocol::{Containment, HelperInfo, Isolation, PolicyView, Request, Response, Signal};

use crate::jobs::{self, Start};
use crate::log;
use crate::policy::RunAs;
use crate::rule::Rule;
use crate::server::Server;
use crate::socket::Peer;

impl Server {
    /// Decides `req` and writes its decision line — for the acts (spawn,
    /// cancel; `Act` writes one per target); status and info queries and
    /// `Check` are answered without a line, so polling, health checks and
    /// plans do not flood the log.
    pub(crate) fn dispatch(
        &mut self,
        conn: u64,
        request_id: u64,
        req: Request,
        peer: Peer,
        fds: Vec<OwnedFd>,
    ) -> Response {
        let resp = match &req {
            Request::Info => return Response::Info(Box::new(self.info())),
            Request::JobStatus { job } => return self.jobs.status_response(job),
            Request::Spawn {
                job,
                command,
                timeout_ms,
                key,
            } => match self.policy.run.as_ref() {
                None => self.denied(Rule::Run),
                Some(run) => {
                    let start = Start {
                        job: *job,
                        command,
                        timeout_ms: *timeout_ms,
                        key,
                        fds,
                    };
                    self.jobs.start(start, run, self.cgroups.as_ref())
                }
            },
            Request::Check {
                targets,
                action,
                caller,
            } => return self.batch(conn, request_id, peer, targets, *action, caller, None),
            Request::Act {
                targets,
                action,
                caller,
                tree,
            } => {
                let act = Some(*tree);
                return self.batch(conn, request_id, peer, targets, *action, caller, act);
            }
            Request::Cancel { job } => {
                self.jobs.cancel(job);
                self.jobs.status_response(job)
            }
            // Answered by the connection (`conn::Conn::next`).
            Request::Hello { .. } | Request::Subscribe => Response::Invalid {
                what: "answered by the connection".into(),
            },
        };
        log::decision(request_id, peer, &req, &resp);
        resp
    }

    pub(crate) fn denied(&self, rule: Rule) -> Response {
        Response::Denied {
            rule: rule.name().into(),
            detail: self.policy.describe(rule),
        }
    }

    pub(crate) fn containment(&self) -> Containment {
        jobs::containment(self.cgroups.as_ref())
    }

    fn info(&self) -> HelperInfo {
        let p = &self.policy;
        let run = p.run.as_ref();
        let n = |v: usize| u32::try_from(v).unwrap_or(u32::MAX);
        // In signal-number order.
        let signals = Signal::ALL.into_iter().filter(|s| p.signals.contains(s));
        HelperInfo {
            containment: self.containment(),
            isolation: match run.map(|r| &r.run_as) {
                Some(RunAs::Shared { .. }) => Isolation::SharedUser,
                _ => Isolation::PerJobUid,
            },
            limits: run
                .map(|r| jobs::limits(r, self.cgroups.as_ref()))
                .unwrap_or_default(),
            running_jobs: n(self.jobs.running_count()),
            max_jobs: n(run.map_or(0, |r| r.max_jobs)),
            quarantined_uids: n(self.jobs.quarantined()),
            policy: PolicyView {
                signals: signals.collect(),
                signal_rules: p.signal.shown.clone(),
                renice_rules: p.renice.shown.clone(),
                min_nice: p.min_nice.get(),
                max_timeout_s: run.map(|r| r.max_timeout_ms / 1000),
                max_targets: [p.signal.max_targets, p.renice.max_targets],
            },
            reload_error: self.reload_error.clone(),
        }
    }
}
