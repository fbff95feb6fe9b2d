//! Writes one valid frame of every request (in its envelope) and every
//! response into the directory given as the only argument: the fuzz
//! target's seed corpus (`fuzz/seeds`). Rerun after any change to
//! `message.rs`, since the encoding changes with it.

use std::path::PathBuf;

use protocol::{
    encode_frame, Action, Containment, Envelope, ExePin, HelperInfo, Isolation, JobId, JobLimits,
    JobState, JobStatus, Outcome, Pinned, Request, Response, Signal, Target, PROTOCOL_VERSION,
};

fn main() -> std::io::Result<()> {
    let dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .unwrap_or_else(|| "fuzz/seeds".into()),
    );
    std::fs::create_dir_all(&dir)?;
    let target = Target {
        pid: 4242,
        start_time: 123_456,
    };
    let job = JobId([7; 16]);
    let requests = [
        (
            "req_hello",
            Request::Hello {
                version: PROTOCOL_VERSION,
            },
        ),
        (
            "req_act_one",
            Request::Act {
                targets: vec![Pinned {
                    target,
                    exe: ExePin::Unplanned,
                    pidfd_ino: None,
                }],
                action: Action::Signal(Signal::Term),
                caller: protocol::Caller {
                    key: "ops".into(),
                    all_jobs: false,
                },
                tree: false,
            },
        ),
        (
            "req_spawn",
            Request::Spawn {
                job,
                command: "echo hi".into(),
                timeout_ms: 1000,
                key: "ops".into(),
            },
        ),
        ("req_status", Request::JobStatus { job }),
        ("req_cancel", Request::Cancel { job }),
        ("req_info", Request::Info),
        (
            "req_check",
            Request::Check {
                targets: vec![
                    Pinned {
                        target,
                        exe: ExePin::Unplanned,
                        pidfd_ino: None,
                    };
                    2
                ],
                action: Action::Signal(Signal::Term),
                caller: protocol::Caller {
                    key: "ops".into(),
                    all_jobs: false,
                },
            },
        ),
        (
            "req_act",
            Request::Act {
                targets: vec![Pinned {
                    target,
                    exe: ExePin::File {
                        dev: 65024,
                        ino: 4242,
                    },
                    pidfd_ino: Some(9182),
                }],
                action: Action::Renice(5),
                caller: protocol::Caller {
                    key: "ops".into(),
                    all_jobs: true,
                },
                tree: true,
            },
        ),
    ];
    for (name, request) in requests {
        let env = Envelope {
            request_id: 0x0123_4567_89ab_cdef,
            request,
        };
        let bytes = encode_frame(&env).map_err(std::io::Error::other)?;
        std::fs::write(dir.join(name), bytes)?;
    }
    let limits = JobLimits {
        cgroup_memory_max: Some(1 << 30),
        cgroup_pids_max: None,
        cgroup_cpu_max_us: Some(100_000),
        rlimit_as: None,
        rlimit_nproc: 256,
        rlimit_cpu_s: 300,
        rlimit_fsize: 10 << 20,
        rlimit_nofile: 256,
    };
    let status = JobStatus {
        state: JobState::Exited,
        pid: 4242,
        start_time: 123_456,
        exit_code: Some(0),
        signal: None,
        timed_out: false,
        started_ms: 1,
        ended_ms: Some(2),
        containment: Containment::Cgroup,
        output_limit: 10 << 20,
        uid: 60600,
        limits,
        cpu_usec: Some(1234),
        memory_peak: None,
    };
    let responses = [
        (
            "resp_hello",
            Response::Hello {
                version: PROTOCOL_VERSION,
                containment: Containment::Cgroup,
            },
        ),
        ("resp_ok", Response::Ok),
        (
            "resp_denied",
            Response::Denied {
                rule: "renice.min_nice".into(),
                detail: "renice.min_nice is 0".into(),
            },
        ),
        ("resp_nosuch", Response::NoSuchProcess),
        ("resp_mismatch", Response::Mismatch),
        ("resp_busy", Response::Busy),
        ("resp_invalid", Response::Invalid { what: "x".into() }),
        ("resp_failed", Response::Failed { errno: 1 }),
        ("resp_job", Response::Job(Box::new(status))),
        ("resp_notaprocess", Response::NotAProcess),
        ("resp_reniced", Response::Reniced { threads: 4 }),
        ("resp_exe_changed", Response::ExeChanged),
        (
            "resp_batch",
            Response::Batch(vec![Outcome {
                pinned: Pinned {
                    target,
                    exe: ExePin::Unplanned,
                    pidfd_ino: None,
                },
                answer: Response::Mismatch,
            }]),
        ),
        (
            "resp_info",
            Response::Info(Box::new(HelperInfo {
                containment: Containment::Pgid,
                isolation: Isolation::PerJobUid,
                limits,
                running_jobs: 1,
                max_jobs: 8,
                quarantined_uids: 0,
                policy: protocol::PolicyView {
                    signals: vec![Signal::Term],
                    signal_rules: vec!["owners = [\"@jobs\"]".into()],
                    renice_rules: Vec::new(),
                    min_nice: 0,
                    max_timeout_s: Some(30),
                    max_targets: [256, 256],
                },
                reload_error: Some("line 3: no such user".into()),
            })),
        ),
    ];
    for (name, resp) in responses {
        let bytes = encode_frame(&resp).map_err(std::io::Error::other)?;
        std::fs::write(dir.join(name), bytes)?;
    }
    Ok(())
}
