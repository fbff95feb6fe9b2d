//! The named component schemas. Process fields come from the field table;
//! error codes from `ApiError::CODES`; signals from the protocol; job
//! states from `JobState::ALL`; so none of them is written twice.

use serde_json::{json, Map, Value};

use crate::error::ApiError;
use crate::jobs::JobState;
use crate::keys::Scope;
use crate::procs::{SortKey, FIELD_TABLE, WITHHELD_FIELDS, WITHHELD_REASON};

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
    let withheld: Map<String, Value> = WITHHELD_FIELDS
        .iter()
        .map(|f| (f.name().to_string(), json!({"const": WITHHELD_REASON})))
        .collect();
    props.insert(
        "withheld".into(),
        json!({
            "type": "object",
            "description": "Present only on a process of a job another key started (the caller has no admin scope): each member it names was asked for and is null, and says why.",
            "minProperties": 1,
            "properties": withheld,
            "additionalProperties": false
        }),
    );
    put(
        "Process",
        json!({
            "type": "object",
            "description": "A process. Only pid is always present: the other members are those named in `fields` (or the default set). A member the kernel hides from the gateway's user is null. A process of a job another key started has the fields that show what the job was given (name, cmdline, exe, cwd, open_files, connections, memory_maps) null for a caller without admin, and names them in `withheld`. environ is never served.",
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
                "max_targets": {"type": "integer", "minimum": 1, "maximum": protocol::MAX_BATCH, "description": "Default 100; more matches are 422 too_many_targets."}
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
                "running": {"type": "integer", "minimum": 1}
            }
        }),
    );
    put(
        "UserList",
        ok_object(json!({"users": {"type": "array", "items": r("User")}}), &[]),
    );

    let limits = json!({
        "type": "object", "required": ["cgroup", "rlimit"], "additionalProperties": false,
        "properties": {
            "cgroup": {"type": "object", "required": ["memory_max", "pids_max", "cpu_max_us_per_100ms"], "additionalProperties": false,
                "properties": {"memory_max": nullable("integer"), "pids_max": nullable("integer"), "cpu_max_us_per_100ms": nullable("integer")}},
            "rlimit": {"type": "object", "required": ["as", "nproc_per_job_uid", "cpu_s", "fsize", "nofile"], "additionalProperties": false,
                "properties": {"as": nullable("integer"), "nproc_per_job_uid": {"type": "integer"}, "cpu_s": {"type": "integer"}, "fsize": {"type": "integer"}, "nofile": {"type": "integer"}}}
        }
    });
    put(
        "HelperHealth",
        json!({
            "type": "object",
            "required": ["reachable", "protocol_version", "containment", "isolation", "limits", "error"],
            "additionalProperties": false,
            "properties": {
                "reachable": {"type": "boolean"},
                "protocol_version": {"type": "integer"},
                "containment": {"enum": ["cgroup", "pgid", null]},
                "isolation": {"enum": ["per_job_uid", "shared_user", null]},
                "limits": {"oneOf": [limits, {"type": "null"}]},
                "error": nullable("string")
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
                "scopes": {"type": "array", "items": {"type": "string", "enum": Scope::ALL.map(Scope::name)}}
            }),
            &[],
        ),
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
