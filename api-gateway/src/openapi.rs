//! The OpenAPI 3.1 document served at `/api/openapi.json`.

use serde_json::{json, Value};

fn err_resp(desc: &str) -> Value {
    json!({"description": desc, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}})
}

fn errors(codes: &[&str]) -> serde_json::Map<String, Value> {
    let mut m = serde_json::Map::new();
    for c in codes {
        let d = match *c {
            "400" => "Bad input (JSON, types, ranges, query parameters, output id)",
            "401" => "No, invalid, expired or revoked key (WWW-Authenticate: Bearer)",
            "403" => "Key lacks the scope, or the helper's policy refused (message names the rule)",
            "404" => "Unknown pid, user, output id or route",
            "405" => "Method not allowed (Allow header lists the methods)",
            "409" => {
                "The pid now belongs to another process (start_time differs); nothing was done"
            }
            "413" => "Body over 64 KiB",
            "429" => "Helper busy: too many jobs running",
            "502" => "Helper answered with an error or the connection broke",
            "503" => "Helper unreachable",
            _ => "Error",
        };
        m.insert((*c).into(), err_resp(d));
    }
    m
}

fn op(
    summary: &str,
    scope: Option<&str>,
    ok: (&str, Value),
    errs: &[&str],
    body: Option<Value>,
    params: Value,
) -> Value {
    let mut responses = errors(errs);
    responses.insert(
        ok.0.into(),
        json!({"description": "Success", "content": {"application/json": {"schema": ok.1}}}),
    );
    let mut o = json!({
        "summary": summary,
        "parameters": params,
        "responses": responses,
    });
    match scope {
        Some(s) => {
            o["security"] = json!([{"bearer": []}]);
            o["x-scope"] = json!(s);
        }
        None => o["security"] = json!([]),
    }
    if let Some(b) = body {
        o["requestBody"] =
            json!({"required": true, "content": {"application/json": {"schema": b}}});
    }
    o
}

fn r(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

/// Builds the document.
pub fn document() -> Value {
    let list_params = json!([
        {"name": "fields", "in": "query", "schema": {"type": "string"}, "description": "Comma-separated field names; default every field except memory_maps. environ is never served."},
        {"name": "user", "in": "query", "schema": {"type": "string"}, "description": "Only processes of this user (real uid)"},
        {"name": "sort", "in": "query", "schema": {"type": "string"}, "description": "Field to sort by, '-' prefix for descending, e.g. -cpu_percent"},
        {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 0}}
    ]);
    let pid_param = json!([{"name": "pid", "in": "path", "required": true, "schema": {"type": "integer", "minimum": 1}},
        {"name": "fields", "in": "query", "schema": {"type": "string"}}]);
    let list_ok = json!({"type": "object", "properties": {
        "result": {"const": "ok"},
        "cpu_percent_window_s": {"type": "number", "description": "Window of the background CPU sampler behind cpu_percent"},
        "processes": {"type": "array", "items": r("Process")}}});
    let pid_schema = json!({"oneOf": [{"type": "integer", "minimum": 1}, {"type": "string", "pattern": "^[0-9]+$"}], "description": "Number or numeric string"});
    let start_time = json!({"type": "integer", "minimum": 0, "description": "Clock ticks since boot (/proc/PID/stat field 22). Optional: read from /proc when absent. A mismatch yields 409."});
    let std_err = [
        "400", "401", "403", "404", "405", "409", "413", "429", "502", "503",
    ];
    let nullable = |t: &str| json!({"type": [t, "null"]});
    json!({
        "openapi": "3.1.0",
        "info": {"title": "Monitoreo", "version": env!("CARGO_PKG_VERSION"),
                 "description": "Process listing and control. Errors: {\"result\":\"error\",\"message\",\"code\"}."},
        "paths": {
            "/api/ps": {
                "get": op("List processes", Some("read"), ("200", list_ok.clone()), &["400", "401", "403", "404"], None, list_params.clone()),
                "post": op("Run a shell command as the policy's run user", Some("exec"),
                    ("202", json!({"type": "object", "properties": {
                        "result": {"const": "ok"},
                        "process": {"type": "object", "properties": {"pid": {"type": "integer"}, "start_time": {"type": "integer"}, "cmd": {"type": "string"}}},
                        "pid": {"type": "integer", "description": "pid of /bin/sh, first of the pipeline"},
                        "output": {"type": "string", "pattern": "^[0-9a-f]{32}$"}}})),
                    &std_err,
                    Some(json!({"type": "object", "required": ["cmd"], "properties": {
                        "cmd": {"type": "string"},
                        "timeout_s": {"type": "integer", "minimum": 1, "description": "Default from config (10); at most the policy's max_timeout_s"}}})),
                    json!([])),
                "delete": op("Send a signal (default KILL)", Some("signal"),
                    ("200", json!({"type": "object", "properties": {"result": {"const": "ok"}, "pid": {"type": "integer"}, "start_time": {"type": "integer"}, "signal": {"type": "string"}}})),
                    &std_err,
                    Some(json!({"type": "object", "required": ["pid"], "properties": {
                        "pid": pid_schema.clone(), "start_time": start_time.clone(),
                        "signal": {"oneOf": [{"type": "string", "enum": ["HUP","INT","QUIT","KILL","USR1","USR2","TERM","CONT","STOP","TSTP"]}, {"type": "integer"}], "description": "Name (with or without SIG) or number; default KILL"}}})),
                    json!([])),
                "patch": op("Set the nice value", Some("renice"),
                    ("200", json!({"type": "object", "properties": {"result": {"const": "ok"}, "pid": {"type": "integer"}, "start_time": {"type": "integer"}, "priority": {"type": "integer"}}})),
                    &std_err,
                    Some(json!({"type": "object", "required": ["pid", "priority"], "properties": {
                        "pid": pid_schema, "start_time": start_time,
                        "priority": {"type": "integer", "minimum": -20, "maximum": 20, "description": "20 acts as 19"}}})),
                    json!([]))
            },
            "/api/ps/{pid}": {"get": op("One process", Some("read"),
                ("200", json!({"type": "object", "properties": {"result": {"const": "ok"}, "cpu_percent_window_s": {"type": "number"}, "process": r("Process")}})),
                &["400", "401", "403", "404"], None, pid_param)},
            "/api/ps/output/{id}": {"get": op("Output and state of a command started by this key", Some("exec"),
                ("200", r("JobOutput")), &["400", "401", "403", "404"], None,
                json!([{"name": "id", "in": "path", "required": true, "schema": {"type": "string", "pattern": "^[0-9a-f]{32}$"}}]))},
            "/api/users": {"get": op("Users with running processes", Some("read"),
                ("200", json!({"type": "object", "properties": {"result": {"const": "ok"}, "users": {"type": "array", "items": {"type": "object", "properties": {"username": {"type": "string"}, "running": {"type": "integer"}}}}}})),
                &["401", "403"], None, json!([]))},
            "/api/users/{username}/ps": {"get": op("Processes of one user", Some("read"), ("200", list_ok),
                &["400", "401", "403", "404"], None,
                json!([{"name": "username", "in": "path", "required": true, "schema": {"type": "string"}}, list_params[0], list_params[2], list_params[3]]))},
            "/healthz": {"get": op("Liveness and helper status (no auth); 503 when the helper is unreachable", None,
                ("200", json!({"type": "object", "properties": {"result": {"const": "ok"}, "version": {"type": "string"},
                    "helper": {"type": "object", "properties": {"reachable": {"type": "boolean"}, "protocol_version": {"type": "integer"},
                        "containment": {"enum": ["cgroup", "pgid", null]}, "error": nullable("string")}}}})), &["503"], None, json!([]))},
            "/api/openapi.json": {"get": op("This document (no auth)", None, ("200", json!({"type": "object"})), &[], None, json!([]))}
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "description": "mon_... token from `monitoreo-gateway keys add`"}},
            "schemas": {
                "Error": {"type": "object", "required": ["result", "message", "code"], "properties": {
                    "result": {"const": "error"}, "message": {"type": "string"},
                    "code": {"enum": ["bad_request", "unauthorized", "forbidden", "not_found", "method_not_allowed", "identity_changed", "payload_too_large", "busy", "helper_unavailable", "helper_error", "internal"]}}},
                "JobOutput": {"type": "object", "properties": {
                    "result": {"const": "ok"}, "output": {"type": "string"}, "cmd": {"type": "string"},
                    "pid": nullable("integer"), "start_time": nullable("integer"),
                    "state": {"enum": ["starting", "running", "exited", "killed", "timed_out"]},
                    "exit_code": nullable("integer"), "signal": nullable("integer"), "timed_out": {"type": "boolean"},
                    "truncated": {"type": "boolean", "description": "An output file reached the policy's max_output_bytes"},
                    "started_at": {"type": ["string", "null"], "format": "date-time", "description": "RFC 3339 UTC"},
                    "ended_at": {"type": ["string", "null"], "format": "date-time", "description": "RFC 3339 UTC"},
                    "out": {"type": "string", "description": "stdout verbatim; invalid UTF-8 replaced by U+FFFD"},
                    "err": {"type": "string"},
                    "out_invalid_utf8": {"type": "boolean"}, "err_invalid_utf8": {"type": "boolean"}}},
                "Process": {"type": "object", "description": "Fields another user's process hides are null. environ is never served; memory_maps only when named in fields.", "properties": {
                    "pid": {"type": "integer"}, "ppid": {"type": "integer"}, "name": {"type": "string"}, "exe": nullable("string"),
                    "cmdline": {"type": ["array", "null"], "items": {"type": "string"}}, "cwd": nullable("string"),
                    "username": nullable("string"), "status": {"type": "string"}, "terminal": nullable("string"),
                    "start_time": {"type": "integer", "description": "Clock ticks since boot; echo back in DELETE/PATCH"},
                    "create_time": {"type": "number", "description": "Unix epoch seconds"},
                    "cpu_percent": {"type": "number"}, "memory_percent": {"type": "number"},
                    "nice": {"type": "integer"}, "num_threads": {"type": "integer"}, "num_fds": nullable("integer"),
                    "cpu_num": {"type": "integer"},
                    "cpu_times": {"type": "object", "properties": {"user": {"type": "number"}, "system": {"type": "number"}, "children_user": {"type": "number"}, "children_system": {"type": "number"}, "iowait": {"type": "number"}}},
                    "memory_info": {"type": "object", "properties": {"rss": {"type": "integer"}, "vms": {"type": "integer"}, "shared": {"type": "integer"}, "text": {"type": "integer"}, "lib": {"type": "integer"}, "data": {"type": "integer"}, "dirty": {"type": "integer"}}},
                    "uids": {"type": "object", "properties": {"real": {"type": "integer"}, "effective": {"type": "integer"}, "saved": {"type": "integer"}}},
                    "gids": {"type": "object", "properties": {"real": {"type": "integer"}, "effective": {"type": "integer"}, "saved": {"type": "integer"}}},
                    "io_counters": {"type": ["object", "null"], "properties": {"read_count": {"type": "integer"}, "write_count": {"type": "integer"}, "read_bytes": {"type": "integer"}, "write_bytes": {"type": "integer"}, "read_chars": {"type": "integer"}, "write_chars": {"type": "integer"}}},
                    "num_ctx_switches": {"type": "object", "properties": {"voluntary": {"type": "integer"}, "involuntary": {"type": "integer"}}},
                    "ionice": {"type": ["object", "null"], "properties": {"ioclass": {"type": "integer"}, "value": {"type": "integer"}}},
                    "cpu_affinity": {"type": ["array", "null"], "items": {"type": "integer"}},
                    "memory_full_info": {"type": ["object", "null"]},
                    "open_files": {"type": ["array", "null"], "items": {"type": "object", "properties": {"path": {"type": "string"}, "fd": {"type": "integer"}}}},
                    "connections": {"type": ["array", "null"], "items": {"type": "object"}},
                    "threads": {"type": ["array", "null"], "items": {"type": "object", "properties": {"id": {"type": "integer"}, "user_time": {"type": "number"}, "system_time": {"type": "number"}}}},
                    "memory_maps": {"type": ["array", "null"], "items": {"type": "object"}, "description": "Only when named in fields"}
                }}
            }
        }
    })
}
