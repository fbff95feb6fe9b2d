//! What a handler gets besides its typed request ([`Ctx`]): the shared
//! [`State`], the caller the router authenticated, and the facts of the
//! audit line that only the handler learns ([`AuditFacts`]: the process
//! it resolved, the job it started), which the audit sink
//! (`super::hooks`) writes whatever the outcome.

use std::sync::{Arc, Mutex};

use protocol::JobId;

use crate::error::ApiError;
use crate::ids::{Pid, StartTime};
use crate::keys::Caller;
use crate::state::State;

/// Facts an audited handler learns while it runs, written in the audit
/// line even when it then fails (a refused signal names its target).
#[derive(Debug, Default, Clone)]
pub struct AuditFacts {
    pub pid: Option<Pid>,
    pub start_time: Option<StartTime>,
    pub job: Option<JobId>,
    /// A group action's outcome per target: one audit line each.
    pub outcomes: Vec<(Pid, StartTime, &'static str)>,
}

/// One request's context.
pub struct Ctx {
    pub state: Arc<State>,
    caller: Option<Caller>,
    facts: Mutex<AuditFacts>,
}

impl Ctx {
    pub fn new(state: Arc<State>, caller: Option<Caller>) -> Ctx {
        Ctx {
            state,
            caller,
            facts: Mutex::default(),
        }
    }

    /// The authenticated key, if the request came with one (a route
    /// whose key is optional may have none).
    pub fn maybe_caller(&self) -> Option<&Caller> {
        self.caller.as_ref()
    }

    /// The authenticated key (every route with a scope has one).
    pub fn caller(&self) -> Result<&Caller, ApiError> {
        self.caller
            .as_ref()
            .ok_or_else(|| ApiError::Internal("route without a scope asked for its caller".into()))
    }

    /// Records the process the request acts on, for the audit line.
    pub fn note_target(&self, pid: Pid, start_time: Option<StartTime>) {
        let mut f = self.facts.lock().unwrap_or_else(|p| p.into_inner());
        f.pid = Some(pid);
        f.start_time = start_time.or(f.start_time);
    }

    /// Records the job the request started, for the audit line.
    pub fn note_job(&self, job: JobId) {
        self.facts.lock().unwrap_or_else(|p| p.into_inner()).job = Some(job);
    }

    /// Records one target's outcome of a group action, for its own
    /// audit line.
    pub fn note_outcome(&self, pid: Pid, start_time: StartTime, outcome: &'static str) {
        let mut f = self.facts.lock().unwrap_or_else(|p| p.into_inner());
        f.outcomes.push((pid, start_time, outcome));
    }

    /// What the handler noted.
    pub fn facts(&self) -> AuditFacts {
        self.facts.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}
