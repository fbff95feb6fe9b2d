//! The named component schemas. Process fields come from the field table;
//! error codes from `ApiError::CODES`; signals from the protocol; job
//! states from `JobState::ALL`; so none of them is written twice.

use serde_json::{json, Map, Value};

use crate::error::ApiError;
use crate::jobs::JobState;
use crate::keys::Scope;
use crate::procs::{
    SortKey, FIELD_TABLE, READER_FIELDS, READER_UNAVAILABLE_REASON, READ_POLICY_REASON,
    WITHHELD_FIELDS, WITHHELD_REASON,
};

fn r(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

/// `{"result":"ok", ...}` with `props` (all required unless in `optional`).
fn ok_object(props: Value, optional: &[&str]) -> Value {
    let mut p = Map::new();
    p.insert("result".into(), json!({"const": "ok"}));
    let Value::Object(extra) = props else {
        return json!({});
    };
    let mut required = vec![json!("result")];
    for (k, v) in extra {
        if !optional.contains(&k.as_str()) {
            required.push(json!(k));
        }
        p.insert(k, v);
    }
    json!({"type": "object", "required": required, "properties": p, "additionalProperties": false})
}

fn nullable(t: &str) -> Value {
    json!({"type": [t, "null"]})
}

/// `components.schemas`.
pub fn components() -> Value {
    let mut s = Map::new();
    let mut put = |name: &str, v: Value| {
        s.insert(name.into(), v);
    };

    put(
        "Error",
        json!({
            "type": "object",
            "description": "Every error answer. `rule` names the helper's rule on policy_denied.",
            "required": ["result", "message", "code"],
            "properties": {
                "result": {"const": "error"},
                "message": {"type": "string"},
                "code": {"type": "string", "enum": ApiError::CODES},
                "rule": {"type": "string"}
            },
            "additionalProperties": false
        }),
    );

    let mut props = Map::new();
    for spec in FIELD_TABLE.iter() {
        let mut v: Value = serde_json::from_str(spec.schema).unwrap_or_else(|_| json!({}));
        if let Value::Object(o) = &mut v {
            o.insert("description".into(), json!(spec.doc));
        }
        props.insert(spec.name.into(), v);
    }
    // Each field that can be withheld, with the reasons it can have.
    let mut reasons: Vec<(&str, Vec<&str>)> = Vec::new();
    for spec in FIELD_TABLE.iter() {
        let mut why = Vec::new();
        if WITHHELD_FIELDS.contains(&spec.field) {
            why.push(WITHHELD_REASON);
        }
        if READER_FIELDS.iter().any(|(f, _)| *f == spec.field) {
            why.extend([READ_POLICY_REASON, READER_UNAVAILABLE_REASON]);
        }
        if !why.is_empty() {
            reasons.push((spec.name, why));
        }
    }
    let withheld: Map<String, Value> = reasons
        .into_iter()
        .map(|(name, why)| (name.to_string(), json!({"type": "string", "enum": why})))
        .collect();
    props.insert(
        "withheld".into(),
        json!({
            "type": "object",
            "description": "Present only when a field asked for is null for a reason: another_key_job (a process of a job another key started, for a caller without admin), read_policy (another user's private field the [read] policy does not let monitoreo-reader read), reader_unavailable (another user's private field, and no reader answered). Each member names such a field and says why.",
            "minProperties": 1,
            "properties": withheld,
            "additionalProperties": false
        }),
    );
    put(
        "Process",
        json!({
            "type": "object",
            "description": "A process. Only pid is always present: the other members are those named in `fields` (or the default set). A member the kernel hides from the gateway's user is null; another user's exe, cwd, num_fds, open_files, connections, io_counters and memory_maps come from monitoreo-reader where the [read] policy allows, else they are null and named in `withheld`. A process of a job another key started has the fields that show what the job was given (name, cmdline, exe, cwd, open_files, connections, memory_maps) null for a caller without admin, and names them in `withheld`. environ is never served.",
            "required": ["pid"],
            "properties": props,
            "additionalProperties": false
        }),
    );
    put(
        "FieldName",
        json!({
            "type": "string",
            "description": "A process field name.",
            "enum": FIELD_TABLE.iter().map(|f| f.name).collect::<Vec<_>>()
        }),
    );
    put(
        "SortKey",
        json!({
            "type": "string",
            "description": "A sortable field name; '-' first for descending.",
            "enum": SortKey::all_values()
        }),
    );
    put(
        "IdTriple",
        json!({
            "type": "object", "required": ["real", "effective", "saved"], "additionalProperties": false,
            "properties": {"real": {"type": "integer"}, "effective": {"type": "integer"}, "saved": {"type": "integer"}}
        }),
    );
    put(
        "Statm",
        json!({
            "type": "object", "description": "Bytes, from /proc/PID/statm.",
            "required": ["rss", "vms", "shared", "text", "lib", "data", "dirty"], "additionalProperties": false,
            "properties": {"rss": {"type": "integer"}, "vms": {"type": "integer"}, "shared": {"type": "integer"},
                "text": {"type": "integer"}, "lib": {"type": "integer"}, "data": {"type": "integer"}, "dirty": {"type": "integer"}}
        }),
    );
    put(
        "SocketAddress",
        json!({
            "type": "object", "required": ["ip", "port"],
            "properties": {"ip": {"type": "string"}, "port": {"type": "integer"}},
            "additionalProperties": false
        }),
    );

    put(
        "Pid",
        json!({
            "description": "A process id: a number, or a numeric string as the old service's clients send.",
            "oneOf": [{"type": "integer", "minimum": 1, "maximum": 2147483647},
                      {"type": "string", "pattern": "^[0-9]+$"}]
        }),
    );
    put(
        "StartTime",
        json!({
            "description": "Clock ticks after boot (/proc/PID/stat field 22) as listed in start_time: a number or a numeric string. The helper acts only if the pid still has this start time (409 otherwise).",
            "oneOf": [{"type": "integer", "minimum": 0}, {"type": "string", "pattern": "^[0-9]+$"}]
        }),
    );
    let names: Vec<&str> = protocol::Signal::ALL.iter().map(|s| s.name()).collect();
    let mut with_sig: Vec<String> = names.iter().map(|n| (*n).to_string()).collect();
    with_sig.extend(names.iter().map(|n| format!("SIG{n}")));
    put(
        "SignalName",
        json!({
            "type": "string",
            "description": "A signal name, with or without SIG (any case is accepted).",
            "enum": with_sig
        }),
    );
    put(
        "SignalNumber",
        json!({
            "type": "integer",
            "description": "The Linux number of one of the named signals.",
            "enum": protocol::Signal::ALL.iter().map(|s| s.number()).collect::<Vec<_>>()
        }),
    );
    put(
        "Signal",
        json!({"oneOf": [r("SignalName"), r("SignalNumber")]}),
    );
    put(
        "Priority",
        json!({
            "description": "Nice value -20..20 (20 acts as 19): a number or a numeric string.",
            "oneOf": [{"type": "integer", "minimum": -20, "maximum": 20},
                      {"type": "string", "pattern": "^-?[0-9]+$"}]
        }),
    );

    put(
        "SignalRequest",
        json!({
            "type": "object", "required": ["pid"], "additionalProperties": false,
            "properties": {
                "pid": r("Pid"),
                "signal": {"$ref": "#/components/schemas/Signal", "description": "Default KILL when absent; null is refused."},
                "start_time": r("StartTime"),
                "dry_run": {"type": "boolean", "description": "true: answer what would happen and by which rule (verdict, rule), touching nothing."}
            }
        }),
    );
    put(
        "ReniceRequest",
        json!({
            "type": "object", "required": ["pid", "priority"], "additionalProperties": false,
            "properties": {"pid": r("Pid"), "priority": r("Priority"), "start_time": r("StartTime"),
                "dry_run": {"type": "boolean", "description": "true: answer what would happen and by which rule (verdict, rule), touching nothing."}}
        }),
    );
    put(
        "RunRequest",
        json!({
            "type": "object", "required": ["cmd"], "additionalProperties": false,
            "properties": {
                "cmd": {"type": "string", "minLength": 1, "description": "Run as /bin/sh -c CMD under a uid of the job's own."},
                "timeout_s": {"type": "integer", "minimum": 1, "description": "Seconds; default from the configuration (default_timeout_s); at most the helper's max_timeout_s."}
            }
        }),
    );

    let dry = json!({
        "dry_run": {"const": true, "description": "Present when the request had dry_run: true; nothing was done."},
        "verdict": {"enum": ["allow", "deny"], "description": "dry_run: what the helper would answer."},
        "rule": {"type": ["string", "null"], "description": "dry_run: the refusing rule (as the policy file names it, or builtin:...); null when allowed."}
    });
    let with_dry = |props: Value| {
        let (Value::Object(mut p), Value::Object(d)) = (props, dry.clone()) else {
            return json!({});
        };
        p.extend(d);
        Value::Object(p)
    };
    put(
        "SignalResponse",
        ok_object(
            with_dry(json!({
                "pid": {"type": "integer"}, "start_time": {"type": "integer"},
                "signal": {"type": "string", "enum": names, "description": "Absent on a dry run."}
            })),
            &["signal", "dry_run", "verdict", "rule"],
        ),
    );
    put(
        "ReniceResponse",
        ok_object(
            with_dry(json!({
                "pid": {"type": "integer"}, "start_time": {"type": "integer"},
                "priority": {"type": "integer", "minimum": -20, "maximum": 19, "description": "Absent on a dry run."},
                "threads": {"type": "integer", "minimum": 0, "description": "Threads reniced; absent on a dry run."}
            })),
            &["priority", "threads", "dry_run", "verdict", "rule"],
        ),
    );
    let action = json!({
        "description": "Exactly one of signal (a name or number) or priority (-20..20).",
        "type": "object", "additionalProperties": false, "minProperties": 1, "maxProperties": 1,
        "properties": {"signal": r("Signal"), "priority": r("Priority")}
    });
    put(
        "PlanRequest",
        json!({
            "type": "object", "required": ["selector", "action"], "additionalProperties": false,
            "properties": {
                "selector": {
                    "description": "Exactly one of pids, tree_of (with include_root, default true) or match. Never selected: pid <= 1, kernel threads, the gateway and its ancestors, the helper.",
                    "type": "object", "additionalProperties": false,
                    "properties": {
                        "pids": {"type": "array", "items": r("Pid"), "minItems": 1},
                        "tree_of": r("Pid"),
                        "include_root": {"type": "boolean"},
                        "match": {
                            "description": "Fields ANDed, at least one: exact name (comm), exact exe path, cmdline regular expression (arguments joined by spaces), user (name or uid), exact cgroup path, a systemd unit named in the cgroup path.",
                            "type": "object", "additionalProperties": false, "minProperties": 1,
                            "properties": {
                                "name": {"type": "string"}, "exe": {"type": "string"},
                                "cmdline": {"type": "string"}, "user": {"type": "string"},
                                "cgroup": {"type": "string"}, "unit": {"type": "string"}
                            }
                        }
                    }
                },
                "action": action,
                "allow_empty": {"type": "boolean", "description": "Plan even when nothing matches (otherwise 422 empty_match)."},
                "max_targets": {"type": "integer", "minimum": 1, "maximum": protocol::MAX_BATCH, "description": "Default: the gateway's max_plan_targets (100 unless configured), lowered to the helper policy's max_targets for the act; at most that policy cap; more matches are 422 too_many_targets."}
            }
        }),
    );
    put(
        "PlanResponse",
        ok_object(
            json!({
                "plan_id": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
                "expires_in": {"type": "integer", "description": "Seconds the plan may wait for its execution."},
                "expires_at": {"type": "string", "format": "date-time"},
                "action": {"type": "object", "additionalProperties": false,
                    "properties": {"signal": {"type": "string", "enum": names}, "priority": {"type": "integer"}}},
                "count": {"type": "integer", "minimum": 0, "description": "Targets; send it back as expect_count."},
                "targets": {"type": "array", "items": {
                    "type": "object", "additionalProperties": false,
                    "required": ["pid", "start_time", "name", "exe", "user", "cgroup", "verdict", "rule"],
                    "properties": {
                        "pid": {"type": "integer"}, "start_time": {"type": "integer"},
                        "name": nullable("string"), "exe": nullable("string"),
                        "user": nullable("string"), "cgroup": nullable("string"),
                        "verdict": {"enum": ["allow", "deny"]},
                        "rule": {"type": ["string", "null"], "description": "The refusing rule (signal.owners, builtin:other-key-job); null when allowed."}
                    }
                }},
                "excluded": {"type": "array", "description": "Selected but never targets: a built-in protection, or gone since it was read.", "items": {
                    "type": "object", "additionalProperties": false, "required": ["pid", "rule"],
                    "properties": {"pid": {"type": "integer"}, "rule": {"type": "string"}}
                }}
            }),
            &[],
        ),
    );
    put(
        "ExecuteRequest",
        json!({
            "type": "object", "required": ["expect_count"], "additionalProperties": false,
            "properties": {"expect_count": {"type": "integer", "minimum": 0, "description": "The plan's count; any other number is 409 count_changed and nothing is done."}}
        }),
    );
    put(
        "ExecuteResponse",
        ok_object(
            json!({
                "plan_id": {"type": "string"},
                "action": {"type": "object"},
                "status": {"enum": ["complete", "partial"]},
                "results": {"type": "array", "items": {
                    "type": "object", "additionalProperties": false,
                    "required": ["pid", "start_time", "outcome"],
                    "properties": {
                        "pid": {"type": "integer"}, "start_time": {"type": "integer"},
                        "outcome": {"enum": ["signalled", "reniced", "gone", "identity_changed", "exe_changed", "denied", "failed"]},
                        "rule": {"type": "string", "description": "When denied."},
                        "errno": {"type": "string", "description": "When failed, e.g. EPERM."},
                        "added": {"const": true, "description": "A child a tree member forked after the plan, found and acted on with the tree."}
                    }
                }}
            }),
            &[],
        ),
    );
    put(
        "JobProcess",
        json!({
            "type": "object", "required": ["pid", "start_time", "cmd"], "additionalProperties": false,
            "properties": {"pid": nullable("integer"), "start_time": nullable("integer"), "cmd": {"type": "string"}}
        }),
    );
    put(
        "RunResponse",
        ok_object(
            json!({
                "process": r("JobProcess"),
                "pid": {"type": ["integer", "null"], "description": "pid of /bin/sh, the first of the pipeline"},
                "output": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
                "job": {"type": "string", "pattern": "^[0-9a-f]{32}$", "description": "The job id (same value as output): GET /api/jobs/{job}; also in the Location header"}
            }),
            &[],
        ),
    );
    put(
        "Job",
        json!({
            "type": "object",
            "additionalProperties": false,
            "required": ["id", "owner", "cmd", "state", "pid", "start_time", "created_at",
                "started_at", "ended_at", "exit_code", "signal", "timed_out", "stdout_bytes",
                "stderr_bytes", "stdout_truncated", "stderr_truncated", "cpu_usec", "memory_peak"],
            "properties": {
                "id": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
                "owner": {"type": "string", "description": "Name of the key that started it"},
                "cmd": {"type": "string"},
                "state": r("JobState"),
                "pid": nullable("integer"), "start_time": nullable("integer"),
                "created_at": {"type": "string", "format": "date-time"},
                "started_at": {"type": ["string", "null"], "format": "date-time"},
                "ended_at": {"type": ["string", "null"], "format": "date-time"},
                "exit_code": nullable("integer"), "signal": nullable("integer"),
                "timed_out": {"type": "boolean"},
                "stdout_bytes": {"type": "integer", "minimum": 0},
                "stderr_bytes": {"type": "integer", "minimum": 0},
                "stdout_truncated": {"type": "boolean", "description": "Reached the output ceiling: later bytes were not kept"},
                "stderr_truncated": {"type": "boolean"},
                "cpu_usec": {"type": ["integer", "null"], "description": "CPU time of everything the job ran (its cgroup), once it ended"},
                "memory_peak": {"type": ["integer", "null"], "description": "Peak memory of the job, where the memory controller is on"}
            }
        }),
    );
    put("JobResponse", ok_object(json!({"job": r("Job")}), &[]));
    put(
        "JobDeleted",
        ok_object(
            json!({
                "job": r("Job"),
                "deleted": {"type": "boolean", "description": "true: the job had ended, and its record and output are now deleted (the job is the last record); false: it was running, and was cancelled and kept"}
            }),
            &[],
        ),
    );
    put(
        "RawOutput",
        json!({"type": "string", "contentMediaType": "application/octet-stream",
               "description": "The stream's bytes exactly as the command wrote them"}),
    );
    put(
        "EventStream",
        json!({"type": "string", "description": "Server-Sent Events: `event: stdout` or `stderr` with `data: {\"text\": ...}` (UTF-8) or `{\"base64\": ...}`, `id: <stdout bytes>.<stderr bytes>` sent so far; finally `event: exit` with the Job as data. Comments (`: ping`) keep an idle stream open."}),
    );
    put(
        "JobList",
        ok_object(
            json!({
                "jobs": {"type": "array", "items": r("Job"), "description": "Newest first"},
                "next": {"type": ["string", "null"], "description": "Pass as before= for the next page; null on the last"}
            }),
            &[],
        ),
    );
    put(
        "JobState",
        json!({
            "type": "string",
            "enum": JobState::ALL.iter().map(|s| s.name()).collect::<Vec<_>>(),
            "description": "starting only in the instant before the helper answered."
        }),
    );
    put(
        "JobOutput",
        ok_object(
            json!({
                "output": {"type": "string", "pattern": "^[0-9a-f]{32}$"},
                "cmd": {"type": "string"},
                "pid": nullable("integer"), "start_time": nullable("integer"),
                "state": r("JobState"),
                "exit_code": nullable("integer"), "signal": nullable("integer"),
                "timed_out": {"type": "boolean"},
                "truncated": {"type": "boolean", "description": "An output file reached the policy's max_output_bytes."},
                "started_at": {"type": ["string", "null"], "format": "date-time"},
                "ended_at": {"type": ["string", "null"], "format": "date-time"},
                "out": {"type": "string", "description": "stdout verbatim; invalid UTF-8 replaced by U+FFFD"},
                "err": {"type": "string"},
                "out_invalid_utf8": {"type": "boolean"}, "err_invalid_utf8": {"type": "boolean"}
            }),
            &[],
        ),
    );

    put(
        "MetricsText",
        json!({"type": "string", "description": "The Prometheus text exposition format, version 0.0.4 (Content-Type text/plain; version=0.0.4)."}),
    );
    put(
        "ProcessList",
        ok_object(
            json!({
                "cpu_percent_window_s": {"type": ["number", "null"], "description": "Seconds covered by the cpu_percent figures (since the previous read of the processes); null when cpu_percent was not asked for."},
                "cpu_percent_age_s": {"type": ["number", "null"], "description": "Seconds since the cpu_percent figures were computed; null when cpu_percent was not asked for."},
                "processes": {"type": "array", "items": r("Process")}
            }),
            &[],
        ),
    );
    put(
        "ProcessResponse",
        ok_object(
            json!({
                "cpu_percent_window_s": {"type": ["number", "null"], "description": "Seconds covered by this process's cpu_percent; null when not asked for."},
                "cpu_percent_age_s": {"type": ["number", "null"], "description": "Seconds since that figure was computed (0 unless another request computed it a moment ago); null when not asked for."},
                "process": r("Process")
            }),
            &[],
        ),
    );
    put(
        "User",
        json!({
            "type": "object", "required": ["username", "uid", "running"], "additionalProperties": false,
            "properties": {
                "username": {"type": "string", "description": "Passwd name, or the uid in decimal when it has none; accepted by /api/users/{username}/ps and ?user=."},
                "uid": {"type": "integer", "minimum": 0},
                "running": {"type": "integer", "minimum": 1, "description": "Processes of this user (real uid), in every state: sleeping, stopped and zombie ones count, not only those in state running. The old service's meaning (its \"processes the user is running\"), kept under its name."}
            }
        }),
    );
    put(
        "UserList",
        ok_object(json!({"users": {"type": "array", "items": r("User")}}), &[]),
    );

    host_schemas(&mut put);

    let limits = json!({
        "type": "object", "required": ["cgroup", "rlimit"], "additionalProperties": false,
        "properties": {
            "cgroup": {"type": "object", "required": ["memory_max", "pids_max", "cpu_max_us_per_100ms"], "additionalProperties": false,
                "properties": {"memory_max": nullable("integer"), "pids_max": nullable("integer"), "cpu_max_us_per_100ms": nullable("integer")}},
            "rlimit": {"type": "object", "required": ["as", "nproc_per_job_uid", "cpu_s", "fsize", "nofile"], "additionalProperties": false,
                "properties": {"as": nullable("integer"), "nproc_per_job_uid": {"type": "integer"}, "cpu_s": {"type": "integer"}, "fsize": {"type": "integer"}, "nofile": {"type": "integer"}}}
        }
    });
    put("JobLimits", limits);
    put(
        "HelperHealth",
        json!({
            "type": "object",
            "required": ["reachable", "protocol_version", "containment", "isolation", "limits", "error", "policy_reload_error"],
            "additionalProperties": false,
            "properties": {
                "reachable": {"type": "boolean"},
                "protocol_version": {"type": "integer"},
                "containment": {"enum": ["cgroup", "pgid", null]},
                "isolation": {"enum": ["per_job_uid", "shared_user", null]},
                "limits": {"oneOf": [r("JobLimits"), {"type": "null"}]},
                "error": nullable("string"),
                "policy_reload_error": {"type": ["string", "null"], "description": "Why the helper's last policy reload failed (it keeps the old policy in force), until a reload succeeds; null otherwise, or when the helper does not answer"}
            }
        }),
    );
    put(
        "Health",
        ok_object(
            json!({
                "status": {"const": "ok"},
                "helper": r("HelperHealth"),
                "version": {"type": "string"}
            }),
            &["helper", "version"],
        ),
    );
    put(
        "HealthUnavailable",
        json!({
            "type": "object", "required": ["result", "message", "code", "status"],
            "additionalProperties": false,
            "properties": {
                "result": {"const": "error"}, "message": {"type": "string"},
                "code": {"const": "helper_unavailable"},
                "status": {"const": "unavailable"},
                "helper": r("HelperHealth"), "version": {"type": "string"}
            }
        }),
    );
    put(
        "WhoAmI",
        ok_object(
            json!({
                "key": {"type": "string", "description": "The key's name"},
                "scopes": {"type": "array", "items": {"type": "string", "enum": Scope::ALL.map(Scope::name)}},
                "policy": {"oneOf": [r("KeyPolicy"), {"type": "null"}], "description": "What the helper's policy lets this key do, cut to its scopes; null while the helper does not answer"}
            }),
            &[],
        ),
    );
    let sig_names: Vec<String> = protocol::Signal::ALL
        .iter()
        .map(|s| format!("SIG{}", s.name()))
        .collect();
    put(
        "KeyPolicy",
        json!({
            "type": "object", "additionalProperties": false,
            "required": ["signals", "nice_range", "signal_rules", "renice_rules", "run", "read", "read_reason"],
            "properties": {
                "signals": {"type": "array", "items": {"enum": sig_names}, "description": "The signals this key may send (the policy's [signal] signals); [] without the signal scope"},
                "nice_range": {"oneOf": [{"type": "array", "items": {"type": "integer", "minimum": -20, "maximum": 19}, "minItems": 2, "maxItems": 2}, {"type": "null"}],
                    "description": "[min, max] nice values this key may set (the policy's [renice] min_nice, and 19); null without the renice scope"},
                "signal_rules": {"type": "array", "items": {"type": "string"}, "description": "Whose processes this key may signal: the policy's [signal] rules as its file writes them (owners = [\"alice\", \"@jobs\"], names = [...]); @jobs is the key's own jobs (every key's with admin), @all_jobs every key's. [] without the signal scope, or when the policy has no [signal] section"},
                "renice_rules": {"type": "array", "items": {"type": "string"}, "description": "The same for renice"},
                "run": {"oneOf": [r("KeyRunLimits"), {"type": "null"}], "description": "The limits of this key's jobs; null without the exec scope or when the policy runs no job"},
                "read": {"oneOf": [r("KeyReadPolicy"), {"type": "null"}], "description": "What this key reads of other users' processes through the reader: its [read] policy; null without the read scope or without a reader to ask (read_reason says which)"},
                "read_reason": {"oneOf": [{"enum": ["no_read_scope", "no_reader", "reader_unavailable"]}, {"type": "null"}], "description": "Why read is null: the key has no read scope, no reader is configured, or the reader does not answer; null when read is given"}
            }
        }),
    );
    put(
        "KeyReadPolicy",
        json!({
            "type": "object", "additionalProperties": false,
            "required": ["owners", "fields"],
            "properties": {
                "owners": {"type": "array", "items": {"type": "string"}, "description": "Whose processes, as the policy's [read] owners writes them: names, uids, A-B uid ranges, * for every owner ([\"*\"] too when the gateway may read every process itself)"},
                "fields": {"type": "array", "items": {"type": "string"}, "description": "The private fields (exe, cwd, num_fds, open_files, connections, io_counters, memory_maps) read of those owners' processes; another key's job keeps its paths withheld without admin"}
            }
        }),
    );
    put(
        "KeyRunLimits",
        json!({
            "type": "object", "additionalProperties": false,
            "required": ["max_timeout_s", "default_timeout_s", "max_jobs", "key_max_running_jobs", "max_output_bytes", "memory_max", "isolation", "limits"],
            "properties": {
                "max_timeout_s": {"type": "integer", "minimum": 0, "description": "Longest timeout_s the helper accepts"},
                "default_timeout_s": {"type": "integer", "minimum": 1, "description": "timeout_s when a request gives none"},
                "max_jobs": {"type": "integer", "minimum": 0, "description": "Jobs the helper runs at once, all keys together"},
                "key_max_running_jobs": {"type": "integer", "minimum": 1, "description": "Jobs this key may run at once"},
                "max_output_bytes": {"type": "integer", "minimum": 0, "description": "Each of stdout and stderr is cut here and marked truncated; the job runs on"},
                "memory_max": {"type": ["integer", "null"], "minimum": 0, "description": "Bytes of memory a job may use: its cgroup's memory.max, else RLIMIT_AS per process; null when neither holds"},
                "isolation": {"enum": ["per_job_uid", "shared_user"]},
                "limits": r("JobLimits")
            }
        }),
    );
    put(
        "ConsolePage",
        json!({"type": "string", "contentMediaType": "text/html", "description": "The console's HTML page"}),
    );
    put(
        "ConsoleFile",
        json!({"type": "string", "description": "An ES module, the style sheet or the icon, by its extension"}),
    );
    put(
        "OpenApiDocument",
        json!({"type": "object", "required": ["openapi", "info", "paths"]}),
    );
    Value::Object(s)
}

/// An object of unsigned integers, all required.
fn counters(names: &[&str], description: &str) -> Value {
    let props: Map<String, Value> = names
        .iter()
        .map(|n| ((*n).to_string(), json!({"type": "integer", "minimum": 0})))
        .collect();
    json!({"type": "object", "description": description, "required": names,
           "properties": props, "additionalProperties": false})
}

/// `GET /api/host`'s schemas: psutil's names and units.
fn host_schemas(put: &mut impl FnMut(&str, Value)) {
    let pct = || json!({"type": "number", "minimum": 0, "maximum": 100});
    let mut vm = counters(
        &["total", "available", "used", "free", "active", "inactive", "buffers", "cached", "shared", "slab"],
        "psutil's virtual_memory(), bytes: available is MemAvailable; cached includes SReclaimable; used is total - free - cached - buffers; percent is (total - available) / total.",
    );
    vm["properties"]["percent"] = pct();
    if let Some(r) = vm["required"].as_array_mut() {
        r.push(json!("percent"));
    }
    put("VirtualMemory", vm);
    let mut swap = counters(
        &["total", "used", "free", "sin", "sout"],
        "psutil's swap_memory(), bytes; sin and sout: swapped in and out since boot.",
    );
    swap["properties"]["percent"] = pct();
    if let Some(r) = swap["required"].as_array_mut() {
        r.push(json!("percent"));
    }
    put("SwapMemory", swap);
    put(
        "CpuPercent",
        json!({
            "type": "object", "required": ["window", "total", "per_cpu"], "additionalProperties": false,
            "description": "psutil's cpu_percent(), total and percpu=True: busy time (all but idle and iowait) as a percent of all time, over the window.",
            "properties": {
                "window": {"type": "number", "minimum": 0, "description": "Seconds the figures cover: between two reads of /proc/stat"},
                "total": pct(),
                "per_cpu": {"type": "array", "items": pct(), "description": "One per online CPU, in order"}
            }
        }),
    );
    let names = crate::host::parse::CpuTimes::NAMES;
    let times: Map<String, Value> = names.iter().map(|n| ((*n).to_string(), pct())).collect();
    put(
        "CpuTimesPercent",
        json!({"type": "object", "required": names, "properties": times, "additionalProperties": false,
               "description": "psutil's cpu_times_percent() over the same window: each kind of CPU time as a percent of all time (guest and guest_nice are already within user and nice)."}),
    );
    put(
        "DiskUsage",
        json!({
            "type": "object", "additionalProperties": false,
            "required": ["device", "mountpoint", "fstype", "total", "used", "free", "percent"],
            "description": "A real mounted file system (psutil's disk_partitions(all=False)) and its disk_usage(), bytes: free and percent count what an unprivileged user may still use.",
            "properties": {
                "device": {"type": "string"}, "mountpoint": {"type": "string"}, "fstype": {"type": "string"},
                "total": {"type": "integer", "minimum": 0}, "used": {"type": "integer", "minimum": 0},
                "free": {"type": "integer", "minimum": 0}, "percent": pct()
            }
        }),
    );
    put(
        "DiskIo",
        counters(
            &["read_count", "write_count", "read_bytes", "write_bytes", "read_time", "write_time",
              "read_merged_count", "write_merged_count", "busy_time"],
            "psutil's disk_io_counters(perdisk=True) for one device of /proc/diskstats: bytes, times in milliseconds, since boot.",
        ),
    );
    put(
        "NetIo",
        counters(
            &["bytes_sent", "bytes_recv", "packets_sent", "packets_recv", "errin", "errout", "dropin", "dropout"],
            "psutil's net_io_counters(pernic=True) for one interface of the gateway's network namespace, since it came up.",
        ),
    );
    put(
        "ProcessStates",
        counters(
            &["total", "running", "sleeping", "disk_sleep", "stopped", "zombie", "idle", "other", "threads"],
            "Processes by state (stopped includes traced; other: dead, parked, waking), and the threads of all of them.",
        ),
    );
    put(
        "Host",
        ok_object(
            json!({
                "hostname": {"type": "string"},
                "kernel": {"type": "string", "description": "The kernel release (uname -r)"},
                "boot_time": {"type": "integer", "minimum": 0, "description": "psutil's boot_time(): Unix seconds"},
                "uptime": {"type": "number", "minimum": 0, "description": "Seconds since boot"},
                "cpu_count": {
                    "type": "object", "required": ["logical", "physical"], "additionalProperties": false,
                    "description": "psutil's cpu_count() and cpu_count(logical=False)",
                    "properties": {"logical": {"type": "integer", "minimum": 1}, "physical": {"type": ["integer", "null"], "minimum": 1}}
                },
                "cpu_percent": r("CpuPercent"),
                "cpu_times_percent": r("CpuTimesPercent"),
                "virtual_memory": r("VirtualMemory"),
                "swap_memory": r("SwapMemory"),
                "getloadavg": {"type": "array", "items": {"type": "number", "minimum": 0}, "minItems": 3, "maxItems": 3, "description": "Load averages over 1, 5 and 15 minutes"},
                "processes": r("ProcessStates"),
                "disk_usage": {"type": "array", "items": r("DiskUsage")},
                "disk_io_counters": {"type": "object", "additionalProperties": r("DiskIo"), "description": "By device name"},
                "net_io_counters": {"type": "object", "additionalProperties": r("NetIo"), "description": "By interface name"}
            }),
            &[],
        ),
    );
}
