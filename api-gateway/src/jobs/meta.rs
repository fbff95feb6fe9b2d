//! What the gateway keeps about a job ([`Meta`], persisted as
//! `meta.json`) and its typed life cycle ([`JobState`]): the helper's
//! states plus `starting`, the instant between creating the files and the
//! helper's answer. Not `protocol::JobState` itself: that would put on the
//! wire a state no helper sends, and the JSON names in the protocol crate
//! (ARCHITECTURE.md, "Two `JobState`s").

use protocol::JobStatus;
use serde::{Deserialize, Serialize};

use crate::ids::{Pid, StartTime};

/// Where a job is in its life. Stored and served as snake_case
/// (`timed_out`), the same strings older `meta.json` files hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Files created, the helper not yet answered.
    Starting,
    Running,
    /// The shell exited on its own; `exit_code` is set.
    Exited,
    /// The shell was killed by a signal.
    Killed,
    /// The helper killed the job at its timeout.
    TimedOut,
    /// Cancelled through the API; nothing the job started survives.
    Cancelled,
}

impl JobState {
    /// Every state, for the OpenAPI enum.
    pub const ALL: [JobState; 6] = [
        JobState::Starting,
        JobState::Running,
        JobState::Exited,
        JobState::Killed,
        JobState::TimedOut,
        JobState::Cancelled,
    ];

    /// The served name.
    pub fn name(self) -> &'static str {
        match self {
            JobState::Starting => "starting",
            JobState::Running => "running",
            JobState::Exited => "exited",
            JobState::Killed => "killed",
            JobState::TimedOut => "timed_out",
            JobState::Cancelled => "cancelled",
        }
    }

    /// Whether the job may still change (worth asking the helper).
    pub fn is_live(self) -> bool {
        matches!(self, JobState::Starting | JobState::Running)
    }
}

impl From<protocol::JobState> for JobState {
    fn from(s: protocol::JobState) -> JobState {
        match s {
            protocol::JobState::Running => JobState::Running,
            protocol::JobState::Exited => JobState::Exited,
            protocol::JobState::Killed => JobState::Killed,
            protocol::JobState::TimedOut => JobState::TimedOut,
            protocol::JobState::Cancelled => JobState::Cancelled,
        }
    }
}

/// What is persisted per job.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Meta {
    /// Name of the key that started it; only that key sees it.
    pub owner: String,
    pub cmd: String,
    pub pid: Option<Pid>,
    pub start_time: Option<StartTime>,
    pub created_ms: u64,
    pub state: JobState,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    pub timed_out: bool,
    pub started_ms: Option<u64>,
    pub ended_ms: Option<u64>,
    pub output_limit: Option<u64>,
    /// CPU time of the whole job (its cgroup), once it ended.
    #[serde(default)]
    pub cpu_usec: Option<u64>,
    /// Peak memory of the whole job, where the memory controller is on.
    #[serde(default)]
    pub memory_peak: Option<u64>,
    /// The uid the job runs as: kept so that a restarted gateway still
    /// knows whose job a process of that uid is (`jobs::owners`).
    #[serde(default)]
    pub uid: Option<u32>,
    /// The helper runs every job as one shared user: the uid alone does
    /// not say whose job a process of it is.
    #[serde(default)]
    pub shared_uid: bool,
}

impl Meta {
    /// A job about to be handed to the helper.
    pub fn starting(owner: &str, cmd: &str, now_ms: u64) -> Meta {
        Meta {
            owner: owner.into(),
            cmd: cmd.into(),
            pid: None,
            start_time: None,
            created_ms: now_ms,
            state: JobState::Starting,
            exit_code: None,
            signal: None,
            timed_out: false,
            started_ms: None,
            ended_ms: None,
            output_limit: None,
            cpu_usec: None,
            memory_peak: None,
            uid: None,
            shared_uid: false,
        }
    }

    /// Takes in what the helper reports.
    ///
    /// A record that already shows the job ended keeps its end: a `Running`
    /// status read before the end (and arriving after it) changes nothing.
    pub fn apply(&mut self, s: &JobStatus) {
        if !self.state.is_live() && s.state == protocol::JobState::Running {
            return;
        }
        self.pid = Pid::new(i64::from(s.pid));
        self.start_time = Some(StartTime::from_ticks(s.start_time));
        self.state = s.state.into();
        self.exit_code = s.exit_code;
        self.signal = s.signal;
        self.timed_out = s.timed_out;
        self.started_ms = Some(s.started_ms);
        self.ended_ms = s.ended_ms;
        self.output_limit = Some(s.output_limit);
        self.cpu_usec = s.cpu_usec;
        self.memory_peak = s.memory_peak;
        self.uid = Some(s.uid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_states_the_helper_reports_keep_their_names() {
        use protocol::JobState as P;
        for p in [P::Running, P::Exited, P::Killed, P::TimedOut, P::Cancelled] {
            assert_eq!(JobState::from(p).name(), p.name());
        }
    }

    #[test]
    fn states_are_stored_as_the_strings_older_records_hold() {
        for s in JobState::ALL {
            let json = serde_json::to_string(&s).expect("enum");
            assert_eq!(json, format!("\"{}\"", s.name()));
            assert_eq!(serde_json::from_str::<JobState>(&json).expect("back"), s);
        }
        let old = r#"{"owner":"k","cmd":"true","pid":42,"start_time":7,"created_ms":1,
            "state":"timed_out","exit_code":null,"signal":9,"timed_out":true,
            "started_ms":1,"ended_ms":2,"output_limit":10}"#;
        let m: Meta = serde_json::from_str(old).expect("an older meta.json reads");
        assert_eq!(m.state, JobState::TimedOut);
        assert_eq!(m.pid.map(Pid::get), Some(42));
    }
}
