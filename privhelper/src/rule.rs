//! The names of every refusal the helper gives: the policy's rules and the
//! built-in protections. An enum, not text, so a decision cannot name a
//! rule that does not exist; `name` is what travels in `Denied { rule }`.

use protocol::Response;

/// Which act a policy section governs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Act {
    Signal,
    Renice,
}

/// A rule that refused an act.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// `[signal|renice] owners`: the target's owner (or job) is not listed.
    Owners(Act),
    /// `[signal|renice] names`: the target's name is not listed.
    Names(Act),
    /// `[signal|renice] exes`: the target's executable is not listed.
    Exes(Act),
    /// `[signal] signals`.
    Signals,
    /// `[renice] min_nice`.
    MinNice,
    /// No `[run]` section: commands are not run at all.
    Run,
    /// A protection no policy can lift.
    Builtin(Builtin),
}

/// The built-in protections, checked before the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Builtin {
    NegativePid,
    PidAtMostOne,
    KernelThread,
    Helper,
    Gateway,
    Ancestor,
    /// A process of a job another API key started.
    OtherKeysJob,
}

impl Rule {
    /// The rule's name on the wire and in the log: `signal.owners`,
    /// `builtin:kernel-thread`.
    pub fn name(self) -> &'static str {
        match self {
            Rule::Owners(Act::Signal) => "signal.owners",
            Rule::Owners(Act::Renice) => "renice.owners",
            Rule::Names(Act::Signal) => "signal.names",
            Rule::Names(Act::Renice) => "renice.names",
            Rule::Exes(Act::Signal) => "signal.exes",
            Rule::Exes(Act::Renice) => "renice.exes",
            Rule::Signals => "signal.signals",
            Rule::MinNice => "renice.min_nice",
            Rule::Run => "run",
            Rule::Builtin(b) => b.name(),
        }
    }
}

impl Builtin {
    pub fn name(self) -> &'static str {
        match self {
            Builtin::NegativePid => "builtin:negative-pid",
            Builtin::PidAtMostOne => "builtin:pid<=1",
            Builtin::KernelThread => "builtin:kernel-thread",
            Builtin::Helper => "builtin:self",
            Builtin::Gateway => "builtin:gateway",
            Builtin::Ancestor => "builtin:ancestor",
            Builtin::OtherKeysJob => "builtin:other-key-job",
        }
    }

    /// The refusal: no policy can lift it, so its `detail` is what it
    /// protects.
    pub fn denied(self) -> Response {
        Response::Denied {
            rule: self.name().into(),
            detail: self.detail().into(),
        }
    }

    /// What the protection means, for the refusal's `detail`.
    pub fn detail(self) -> &'static str {
        match self {
            Builtin::NegativePid => "a negative pid names a process group; never signalled",
            Builtin::PidAtMostOne => "pid 0 and init (pid 1) are never acted on",
            Builtin::KernelThread => "kernel threads are never acted on",
            Builtin::Helper => "the helper never acts on itself",
            Builtin::Gateway => "the helper never acts on the gateway process",
            Builtin::Ancestor => "the helper never acts on an ancestor of itself or the gateway",
            Builtin::OtherKeysJob => {
                "the process belongs to a job another API key started; only that key or an \
                 admin key may act on it"
            }
        }
    }
}
