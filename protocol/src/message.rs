//! Requests and responses.
//!
//! Everything the gateway may ask of the helper is a variant of [`Request`];
//! there is no generic "run this syscall" message. Numbers that the helper
//! must validate (pids, nice values) travel as plain integers so that an
//! out-of-range value reaches the helper's checks and is answered with a
//! named refusal instead of disappearing in decoding.

use std::fmt;
use std::str::FromStr;

use bincode::{Decode, Encode};

/// Version of this protocol. Bumped on any change to the types below; the
/// `Hello` exchange refuses a peer with another version.
pub const PROTOCOL_VERSION: u32 = 6;

/// A process as the gateway saw it: the pid and its start time in clock
/// ticks since boot (field 22 of `/proc/PID/stat`). The pair names one
/// process for the whole life of the system; a pid alone does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Encode, Decode)]
pub struct Target {
    /// Raw pid as the client sent it. The helper refuses values ≤ 1.
    pub pid: i32,
    /// Start time in clock ticks since boot.
    pub start_time: u64,
}

/// On whose behalf the gateway asks: the API key's name. A job's
/// processes belong to the key that started it, so the helper needs the
/// key to tell "this key's job" (what the policy's `@jobs` means) from
/// "another key's job" (refused unless `all_jobs`).
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct Caller {
    /// The key's name, as the gateway's keys file has it.
    pub key: String,
    /// The key may act on every key's jobs (the gateway's `admin` scope).
    pub all_jobs: bool,
}

/// Declares [`Signal`] from one table: variant, number, name. The table
/// is the only place a signal is spelled, so its number and name cannot
/// disagree between `number`, `name` and `ALL`.
macro_rules! signals {
    ($($variant:ident = $number:literal $name:literal,)+) => {
        /// The signals the protocol can carry. Named, never raw integers, so
        /// that a policy can list them and a reviewer can read them.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Encode, Decode)]
        pub enum Signal {
            $($variant,)+
        }

        impl Signal {
            /// Every signal, in signal-number order.
            pub const ALL: [Signal; [$($number),+].len()] = [$(Signal::$variant),+];

            /// The conventional name without the `SIG` prefix, e.g. `"TERM"`.
            pub fn name(self) -> &'static str {
                match self {
                    $(Signal::$variant => $name,)+
                }
            }

            /// The Linux signal number (x86_64, aarch64 and most other arches).
            pub fn number(self) -> i32 {
                match self {
                    $(Signal::$variant => $number,)+
                }
            }

            /// The signal with this number, if the protocol carries it.
            pub fn from_number(n: i64) -> Option<Signal> {
                Signal::ALL.into_iter().find(|s| i64::from(s.number()) == n)
            }
        }
    };
}

signals! {
    Hup = 1 "HUP",
    Int = 2 "INT",
    Quit = 3 "QUIT",
    Kill = 9 "KILL",
    Usr1 = 10 "USR1",
    Usr2 = 12 "USR2",
    Term = 15 "TERM",
    Cont = 18 "CONT",
    Stop = 19 "STOP",
    Tstp = 20 "TSTP",
}

impl FromStr for Signal {
    /// `unknown signal "NAME"`, what the policy loader's error says.
    type Err = String;

    /// Accepts `TERM`, `SIGTERM`, `sigterm` and the decimal number `15`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        let upper = t.to_ascii_uppercase();
        let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
        match t.parse::<i64>() {
            Ok(n) => Signal::from_number(n),
            Err(_) => Signal::ALL.into_iter().find(|sig| sig.name() == bare),
        }
        .ok_or_else(|| format!("unknown signal {s:?}"))
    }
}

/// At most this many targets travel in one `Check` or `Act` frame, so
/// that the request and its answer stay far below the frame limit.
pub const MAX_BATCH: usize = 256;

/// The act of an `Act` or `Check`: one signal, or one nice value (the
/// helper refuses values outside −20..=19 with `Invalid`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Encode, Decode)]
pub enum Action {
    Signal(Signal),
    Renice(i32),
}

impl Action {
    /// `"signal"` or `"renice"`: what an act is called in logs, whether
    /// it names one process or a plan's.
    pub fn kind(self) -> &'static str {
        match self {
            Action::Signal(_) => "signal",
            Action::Renice(_) => "renice",
        }
    }
}

/// A process as a plan pinned it: its pid, its start time, what was read
/// of the file it was executing (`/proc/PID/exe`) and its pidfd's inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Encode, Decode)]
pub struct Pinned {
    pub target: Target,
    pub exe: ExePin,
    /// The inode of the process's pidfd: per process on a kernel with
    /// pidfs (6.9+), one shared anonymous inode before, where comparing
    /// it never refuses.
    pub pidfd_ino: Option<u64>,
}

/// A target's executable as a plan pinned it, or as the helper found it.
/// Planned-but-unreadable is a state of its own, not "nothing planned":
/// a process that runs an unreadable file when planned and execs a
/// readable one before the act would otherwise be acted on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Encode, Decode)]
pub enum ExePin {
    /// Nothing planned (a single act): compared with nothing.
    Unplanned,
    /// Read and not readable (a zombie, a file on a FUSE mount even root
    /// cannot stat): must be unreadable at the act as well.
    Unreadable,
    /// The file's device and inode: must be the same file at the act.
    File { dev: u64, ino: u64 },
}

impl From<Option<(u64, u64)>> for ExePin {
    fn from(read: Option<(u64, u64)>) -> Self {
        read.map_or(ExePin::Unreadable, |(dev, ino)| ExePin::File { dev, ino })
    }
}

/// One target's answer in a `Batch`: the process, its executable's
/// device and inode as the helper saw it (`Unreadable`: also gone), and
/// what it got (for `Check`, `Ok` means "would be allowed").
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct Outcome {
    pub pinned: Pinned,
    pub answer: Response,
}

/// A job's identifier: 16 random bytes chosen by the gateway (shown to HTTP
/// clients as 32 lowercase hex characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Encode, Decode)]
pub struct JobId(pub [u8; 16]);

impl JobId {
    /// 32 lowercase hex characters (the gateway parses them back,
    /// `api_gateway::ids::job_id`).
    pub fn to_hex(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

/// A request as it travels to the helper, with the id under which the
/// gateway's audit line records it, so one search joins both sides' logs.
/// `request_id` 0 means "none" (the admin CLI, tests).
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct Envelope {
    pub request_id: u64,
    pub request: Request,
}

/// What the gateway asks. `Hello` must come first and only once.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub enum Request {
    /// Opens the conversation; the helper answers `Response::Hello`.
    Hello { version: u32 },
    /// Run `/bin/sh -c command` as the policy's `run_as` user. Exactly two
    /// descriptors (stdout, then stderr) travel with this frame via
    /// `SCM_RIGHTS`. `timeout_ms` above the policy ceiling is `Invalid`.
    Spawn {
        job: JobId,
        command: String,
        timeout_ms: u64,
        /// The key that starts the job, which then owns its processes.
        key: String,
    },
    /// Current state of a job this helper started.
    JobStatus { job: JobId },
    /// Kill every process of a running job (its whole cgroup).
    Cancel { job: JobId },
    /// How the helper contains and limits jobs now; answered with
    /// `Response::Info`. Not logged (it is what health checks ask).
    Info,
    /// Turns this connection into an event stream: answered with
    /// `Subscribed`, after which the helper sends a `JobEnded` frame each
    /// time a job ends and accepts no further request on it.
    Subscribe,
    /// Decide, for each target, what `Act` would get, acting on none:
    /// answered with `Batch`, one `Outcome` per target in order, with
    /// what was found of it to pin a plan by (a plan asks with nothing
    /// planned: `ExePin::Unplanned`, no `pidfd_ino`).
    Check {
        targets: Vec<Pinned>,
        action: Action,
        caller: Caller,
    },
    /// Act on each target (send the signal through a pidfd, or renice
    /// every thread) after checking it is still the process and the
    /// executable planned. A single DELETE or PATCH is an `Act` on one
    /// target that planned nothing (see [`ExePin`]). With `tree`, the targets are a process
    /// tree or a cgroup's members: members are stopped before anything is
    /// signalled, children they forked meanwhile are added, and leaves go
    /// first. Answered with `Batch`: the planned targets in order, then
    /// any added.
    Act {
        targets: Vec<Pinned>,
        action: Action,
        caller: Caller,
        tree: bool,
    },
}

impl Request {
    /// Short name for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Request::Hello { .. } => "hello",
            Request::Spawn { .. } => "spawn",
            Request::JobStatus { .. } => "job_status",
            Request::Cancel { .. } => "cancel",
            Request::Info => "info",
            Request::Subscribe => "subscribe",
            Request::Check { .. } => "check",
            Request::Act { action, .. } => action.kind(),
        }
    }

    /// How many descriptors must accompany this request.
    pub fn fds_expected(&self) -> usize {
        match self {
            Request::Spawn { .. } => 2,
            _ => 0,
        }
    }
}

/// How the helper contains a job's processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Encode, Decode)]
pub enum Containment {
    /// Each job in its own cgroup v2 directory, killed with `cgroup.kill`.
    Cgroup,
    /// No writable cgroup v2: the process group is killed. A process that
    /// calls `setsid` escapes this.
    Pgid,
}

/// Life cycle of a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Encode, Decode)]
pub enum JobState {
    Running,
    /// The shell exited on its own; `exit_code` is set.
    Exited,
    /// The shell was killed by a signal from elsewhere.
    Killed,
    /// The helper killed the job because its timeout ran out.
    TimedOut,
    /// The helper killed the job because the gateway sent `Cancel`.
    Cancelled,
}

impl JobState {
    pub fn name(self) -> &'static str {
        match self {
            JobState::Running => "running",
            JobState::Exited => "exited",
            JobState::Killed => "killed",
            JobState::TimedOut => "timed_out",
            JobState::Cancelled => "cancelled",
        }
    }
}

/// Everything the helper knows about a job.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct JobStatus {
    pub state: JobState,
    /// Pid of the `/bin/sh` that runs the command.
    pub pid: i32,
    /// Its start time in clock ticks, so the gateway can name it as a
    /// [`Target`].
    pub start_time: u64,
    pub exit_code: Option<i32>,
    /// Signal number that ended the shell, if any.
    pub signal: Option<i32>,
    pub timed_out: bool,
    /// Unix time in milliseconds.
    pub started_ms: u64,
    pub ended_ms: Option<u64>,
    pub containment: Containment,
    /// The output ceiling (`RLIMIT_FSIZE`, bytes) that applied to this job;
    /// an output file that reached it was truncated.
    pub output_limit: u64,
    /// The uid (and gid) the job runs as: its own, unless the policy names
    /// a shared run user.
    pub uid: u32,
    /// The limits that were actually put in force for this job.
    pub limits: JobLimits,
    /// CPU time of the whole job (its cgroup's `cpu.stat` `usage_usec`),
    /// once it ended; `None` without cgroup containment.
    pub cpu_usec: Option<u64>,
    /// Peak memory of the whole job (`memory.peak`), where the memory
    /// controller is enabled.
    pub memory_peak: Option<u64>,
}

/// Whether jobs have an identity of their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Encode, Decode)]
pub enum Isolation {
    /// Each running job has a uid and gid no other process has.
    PerJobUid,
    /// Every job runs as one named user: jobs are not isolated from each
    /// other (they may read, trace and signal one another).
    SharedUser,
}

/// The resource limits in force for a job. A cgroup limit is `None` where
/// the unified hierarchy does not offer its controller; the rlimits always
/// apply (per process, except `RLIMIT_NPROC`, which counts the job's uid).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Encode, Decode)]
pub struct JobLimits {
    /// `memory.max` of the job's cgroup, bytes.
    pub cgroup_memory_max: Option<u64>,
    /// `pids.max` of the job's cgroup.
    pub cgroup_pids_max: Option<u64>,
    /// `cpu.max` quota per 100 ms period, µs (100000 = one CPU).
    pub cgroup_cpu_max_us: Option<u64>,
    /// `RLIMIT_AS` per process, bytes; set when a memory ceiling is
    /// configured but no cgroup enforces it.
    pub rlimit_as: Option<u64>,
    /// `RLIMIT_NPROC`: processes of the job's uid.
    pub rlimit_nproc: u64,
    /// `RLIMIT_CPU`, seconds of CPU per process.
    pub rlimit_cpu_s: u64,
    /// `RLIMIT_FSIZE`: the output ceiling, bytes.
    pub rlimit_fsize: u64,
    /// `RLIMIT_NOFILE`.
    pub rlimit_nofile: u64,
}

/// The helper's answer to `Request::Info`.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct HelperInfo {
    pub containment: Containment,
    pub isolation: Isolation,
    /// What a job started now would get.
    pub limits: JobLimits,
    pub running_jobs: u32,
    pub max_jobs: u32,
    /// Job uids taken out of the pool because their cleanup failed or
    /// hung; each was logged (`uid_quarantined`).
    pub quarantined_uids: u32,
    /// The policy in force, so the gateway can tell a key what it may do.
    pub policy: PolicyView,
    /// Why the last reload failed (the old policy stays), until one
    /// succeeds.
    pub reload_error: Option<String>,
}

/// What the policy in force allows, as the file says it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Encode, Decode)]
pub struct PolicyView {
    /// `[signal] signals`, in signal-number order.
    pub signals: Vec<Signal>,
    /// `[signal]`'s rules on whose processes, as the file writes them
    /// (`owners = ["alice", "@jobs"]`, `names = ["sleep"]`); empty
    /// without the section.
    pub signal_rules: Vec<String>,
    /// The same for `[renice]`.
    pub renice_rules: Vec<String>,
    /// `[renice] min_nice`.
    pub min_nice: i32,
    /// `[run] max_timeout_s`; `None` without `[run]` (no job may start).
    pub max_timeout_s: Option<u64>,
    /// `[signal]` and `[renice]` `max_targets`: a batch's cap.
    pub max_targets: [usize; 2],
}

/// What the helper answers. Exactly one response per request.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub enum Response {
    /// Answer to `Hello`.
    Hello {
        version: u32,
        containment: Containment,
    },
    /// The action was carried out.
    Ok,
    /// Refused by a policy rule or a built-in protection; `rule` names it
    /// (`signal.owners`, `builtin:kernel-thread`) and `detail` says what the
    /// rule holds (`renice.min_nice is 0`).
    Denied { rule: String, detail: String },
    /// No process with that pid (or it exited before the action).
    NoSuchProcess,
    /// A process with that pid exists but its start time differs: the pid
    /// was recycled. Nothing was done to it.
    Mismatch,
    /// Too many jobs are running.
    Busy,
    /// The request itself is malformed (`what` says how).
    Invalid { what: String },
    /// A syscall failed with this errno.
    Failed { errno: i32 },
    /// Answer to `Spawn`, `JobStatus` and `Cancel`. Boxed, as `Info` and
    /// `JobEnded`'s status: a `Response` stays small, so a batch of
    /// outcomes decodes under the frame's allocation limit (see `Batch`).
    Job(Box<JobStatus>),
    /// The pid names a thread that is not a thread-group leader: it is not a
    /// process and nothing was done.
    NotAProcess,
    /// A renice's outcome: the nice value was set on this many threads.
    Reniced { threads: u32 },
    /// Answer to `Info`.
    Info(Box<HelperInfo>),
    /// Answer to `Subscribe`: job events follow on this connection.
    Subscribed,
    /// Pushed to subscribed connections when a job's shell has been reaped:
    /// its final status.
    JobEnded { job: JobId, status: Box<JobStatus> },
    /// Answer to `Check` and `Act`: one outcome per target (a refusal's
    /// `detail` is kept only in a batch of one).
    Batch(Vec<Outcome>),
    /// The target now executes another file than the one planned: nothing
    /// was done to it.
    ExeChanged,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signal_names_and_numbers_round_trip() {
        for s in Signal::ALL {
            assert_eq!(s.name().parse::<Signal>(), Ok(s));
            assert_eq!(format!("SIG{}", s.name()).parse::<Signal>(), Ok(s));
            assert_eq!(s.number().to_string().parse::<Signal>(), Ok(s));
        }
        assert!("SIGSEGV".parse::<Signal>().is_err());
        assert!("0".parse::<Signal>().is_err());
        assert!("-9".parse::<Signal>().is_err());
        assert!("".parse::<Signal>().is_err());
    }

    #[test]
    fn job_id_hex_is_lowercase_pairs() {
        assert_eq!(JobId([0xab; 16]).to_hex(), "ab".repeat(16));
        assert_eq!(JobId([0x0f; 16]).to_hex(), "0f".repeat(16));
    }
}
