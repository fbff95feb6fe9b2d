//! The OpenAPI 3.1 document served at `/api/openapi.json`, built from the
//! route table (paths, methods, operationIds, scopes, query parameters),
//! the field table (the `Process` schema, field and sort enums) and the
//! error codes. What is written by hand here is per operation: its tag,
//! summary, answer schema and the statuses it can answer with.

mod schemas;

use serde_json::{json, Map, Value};

use crate::http::router::Route;

/// What the route table does not say about an operation.
struct Op {
    tag: &'static str,
    summary: &'static str,
    /// Success status and schema name; for [`RAW`] and [`EVENTS`] the
    /// schema name is ignored.
    ok: (u16, &'static str),
    body: Option<&'static str>,
    /// Error statuses besides 400, 431 and 500, which every route has.
    errors: &'static [u16],
}

/// Success answers that are not JSON.
const RAW: &str = "RawOutput";
const EVENTS: &str = "EventStream";
/// The console's page and files (HTML, JavaScript, CSS, SVG), with
/// `ETag` and 304.
const PAGE: &str = "ConsolePage";
const FILE: &str = "ConsoleFile";

fn op(id: &str) -> Option<Op> {
    let o = |tag, summary, ok, body, errors| Op {
        tag,
        summary,
        ok,
        body,
        errors,
    };
    const READ: &[u16] = &[401, 403, 404];
    const ACT: &[u16] = &[401, 403, 404, 409, 413, 502, 503];
    Some(match id {
        "listProcesses" => o(
            "processes",
            "List processes",
            (200, "ProcessList"),
            None,
            READ,
        ),
        "getProcess" => o(
            "processes",
            "One process",
            (200, "ProcessResponse"),
            None,
            READ,
        ),
        "signalProcess" => o(
            "processes",
            "Send a signal (KILL unless `signal` says otherwise)",
            (200, "SignalResponse"),
            Some("SignalRequest"),
            ACT,
        ),
        "reniceProcess" => o(
            "processes",
            "Set the nice value of every thread of a process",
            (200, "ReniceResponse"),
            Some("ReniceRequest"),
            ACT,
        ),
        "planAction" => o(
            "actions",
            "Plan a signal or renice on many processes: select, pin each target, and give each the policy's verdict; nothing is done (scope: the action's)",
            (201, "PlanResponse"),
            Some("PlanRequest"),
            &[401, 403, 404, 413, 422, 502, 503],
        ),
        "executeAction" => o(
            "actions",
            "Execute a plan once: each target re-verified (start time, executable) and acted on through its pidfd; a tree is stopped, then signalled leaves first",
            (200, "ExecuteResponse"),
            Some("ExecuteRequest"),
            &[401, 403, 404, 409, 413, 502, 503],
        ),
        "runCommand" => o(
            "commands",
            "Run a shell command under a uid of its own, with a timeout",
            (202, "RunResponse"),
            Some("RunRequest"),
            &[401, 403, 413, 429, 502, 503, 507],
        ),
        "getCommandOutput" => o(
            "commands",
            "Output and state of a command started by this key",
            (200, "JobOutput"),
            None,
            &[401, 403, 404],
        ),
        "createJob" => o(
            "jobs",
            "Run a shell command as a job (Location: /api/jobs/{id})",
            (202, "JobResponse"),
            Some("RunRequest"),
            &[401, 403, 413, 429, 502, 503, 507],
        ),
        "listJobs" => o(
            "jobs",
            "This key's jobs (every key's with admin), newest first, paginated",
            (200, "JobList"),
            None,
            &[401, 403, 404],
        ),
        "getJob" => o(
            "jobs",
            "One job; with wait=SECONDS, answers when it ends or the time is up",
            (200, "JobResponse"),
            None,
            &[401, 403, 404],
        ),
        "deleteJob" => o(
            "jobs",
            "A running job is cancelled (everything it started is killed) and kept; a job that has ended is deleted with its output (deleted: true; the job is then 404)",
            (200, "JobDeleted"),
            None,
            &[401, 403, 404, 502, 503],
        ),
        "getJobStdout" => o(
            "jobs",
            "The job's stdout, byte for byte (Range: 206, or 416 past the end)",
            (200, RAW),
            None,
            &[401, 403, 404, 416],
        ),
        "getJobStderr" => o(
            "jobs",
            "The job's stderr, byte for byte (Range: 206, or 416 past the end)",
            (200, RAW),
            None,
            &[401, 403, 404, 416],
        ),
        "followJob" => o(
            "jobs",
            "Follow the job live as Server-Sent Events: stdout and stderr events with data {\"text\"} or {\"base64\"} and id <stdout bytes>.<stderr bytes>, then one exit event with the Job; Last-Event-ID (or from=) resumes exactly",
            (200, EVENTS),
            None,
            &[401, 403, 404],
        ),
        "listUsers" => o(
            "users",
            "Users with processes, each with how many it has (running counts every process of the user, whatever its state)",
            (200, "UserList"),
            None,
            &[401, 403],
        ),
        "listUserProcesses" => o(
            "users",
            "Processes of one user",
            (200, "ProcessList"),
            None,
            READ,
        ),
        "getHealth" => o(
            "service",
            "Liveness (no key; with a read key also the helper's state); 503 when the helper is unreachable",
            (200, "Health"),
            None,
            &[401, 403, 503],
        ),
        "getMetrics" => o(
            "service",
            "Prometheus metrics (text format 0.0.4): requests, helper, jobs, host processes",
            (200, TEXT),
            None,
            &[401, 403],
        ),
        "getHost" => o(
            "host",
            "The host itself, in psutil's names and units: CPU (sampled over a stated window, when asked), memory, swap, load, boot time, processes by state, disk usage and I/O, network I/O, kernel and hostname",
            (200, "Host"),
            None,
            &[401, 403],
        ),
        "whoAmI" => o(
            "keys",
            "The calling key's name and scopes, and what the helper's policy lets it do (any valid key, no scope needed)",
            (200, "WhoAmI"),
            None,
            &[401],
        ),
        "getConsole" => o(
            "console",
            "The web console's page (no key: it asks for one); If-None-Match with its ETag: 304",
            (200, PAGE),
            None,
            &[],
        ),
        "getConsoleFile" => o(
            "console",
            "A file of the web console (ES module, style sheet, icon), embedded in the binary; If-None-Match with its ETag: 304",
            (200, FILE),
            None,
            &[404],
        ),
        "getOpenApiDocument" => o(
            "service",
            "This document (no key)",
            (200, "OpenApiDocument"),
            None,
            &[],
        ),
        _ => return None,
    })
}

/// The answer of `getMetrics` is not JSON but the Prometheus text format.
const TEXT: &str = "text/plain";

fn error_description(status: u16) -> &'static str {
    match status {
        400 => "Bad input: JSON, unknown or invalid body member, unknown, empty or repeated query parameter, bad path value, start_time required, or a request the helper found invalid (see code)",
        401 => "No, invalid, expired or revoked key (WWW-Authenticate: Bearer)",
        403 => "missing_scope: the key lacks this route's scope; policy_denied: the helper's policy or a built-in protection refused (the message gives the rule and its value); other_key_job: the process belongs to a job another key started",
        404 => "No such process, user, output, job or plan (see code)",
        408 => "request_timeout: the head did not arrive within header_timeout_s; body_timeout: the body did not arrive within body_timeout_s or slower than body_min_rate",
        409 => "identity_changed: the pid no longer has this start_time, it names another process now; count_changed: expect_count is not the plan's count; nothing was done",
        422 => "empty_match: the selector matches no process (allow_empty: true plans anyway); too_many_targets: more matches than max_targets",
        413 => "Body over 64 KiB",
        416 => "The Range starts at or past the end of the output",
        429 => "busy: the helper runs its maximum number of jobs; key_busy: this key runs key_max_running_jobs jobs (the message gives its count and limit); too_many_auth_failures: too many refused authentications from this address this minute; too_many_client_connections: this address holds max_connections_per_client (Retry-After)",
        431 => "Request headers over 16 KiB",
        500 => "Internal error",
        502 => "The helper answered out of protocol or a system call failed there",
        507 => "key_output_quota_full: the job's output could take this key's stored output over key_output_quota (the message gives its usage and limit); output_quota_full: or all keys' over output_quota; nothing was started or dropped",
        503 => "helper_unavailable: the helper is unreachable; too_many_connections: the gateway holds max_connections (Retry-After)",
        _ => "Error",
    }
}

/// The header every answer carries.
fn request_id_header() -> Value {
    json!({"X-Request-Id": {
        "description": "This request's id (16 hex digits), also in the audit line and the helper's decision lines",
        "schema": {"type": "string", "pattern": "^[0-9a-f]{16}$"}
    }})
}

fn schema_ref(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn content(schema: Value) -> Value {
    json!({"application/json": {"schema": schema}})
}

fn parameter(name: &str, in_path: bool, list: bool) -> Value {
    let left_out: Vec<&str> = crate::procs::FIELD_TABLE
        .iter()
        .filter(|f| !f.default)
        .map(|f| f.name)
        .collect();
    let fields_description = format!(
        "Comma-separated field names (may repeat; names add up); pid is always included. \
         Default: every field except {} (costly; only when named).",
        left_out.join(", ")
    );
    let (schema, description) = match name {
        "pid" => (json!({"type": "integer", "minimum": 1}), "Process id"),
        "id" => (
            json!({"type": "string", "pattern": "^[0-9a-f]{32}$"}),
            "The job (output) id POST /api/ps or POST /api/jobs answered with",
        ),
        "state" => (schema_ref("JobState"), "Only jobs in this state"),
        "before" => (
            json!({"type": "string", "pattern": "^[0-9a-f]{32}$"}),
            "Jobs after this one in the listing (the previous page's next)",
        ),
        "wait" => (
            json!({"type": "integer", "minimum": 0, "maximum": 60}),
            "Seconds to wait for the job to end before answering",
        ),
        "from" => (
            json!({"type": "string", "pattern": "^[0-9]+\\.[0-9]+$"}),
            "Resume after this event id (Last-Event-ID wins if both are sent)",
        ),
        "interval" => (
            json!({"type": "number", "exclusiveMinimum": 0, "maximum": 10}),
            "Seconds the CPU figures cover, from this request on (the answer waits that long); without it, they cover the time since the latest read of the host's CPU times (at least a quarter of cpu_window_s; the answer's cpu_percent.window says how long)",
        ),
        "username" => (
            json!({"type": "string", "minLength": 1}),
            "A passwd name, or a decimal uid (how /api/users names a uid without a passwd entry)",
        ),
        "user" => (
            json!({"type": "string", "minLength": 1}),
            "Only processes whose real uid is this user's: a passwd name or a decimal uid",
        ),
        "fields" => (
            json!({"type": "array", "items": schema_ref("FieldName"), "minItems": 1}),
            fields_description.as_str(),
        ),
        "sort" => (
            schema_ref("SortKey"),
            "Field to sort by; '-' first for descending",
        ),
        "limit" => (
            json!({"type": "integer", "minimum": 0}),
            "At most this many items: processes after sorting; jobs 1..=500 (default 50)",
        ),
        _ => (json!({"type": "string"}), ""),
    };
    let mut p = json!({
        "name": name,
        "in": if in_path { "path" } else { "query" },
        "required": in_path,
        "schema": schema,
        "description": description,
    });
    if list {
        p["style"] = json!("form");
        p["explode"] = json!(false);
    }
    p
}

fn operation<C>(route: &Route<C>) -> Value {
    let Some(o) = op(route.operation_id) else {
        return json!({"operationId": route.operation_id, "responses": {}});
    };
    let mut responses = Map::new();
    let ok_content = match o.ok.1 {
        RAW => json!({"application/octet-stream": {"schema": schema_ref(RAW)}}),
        EVENTS => json!({"text/event-stream": {"schema": schema_ref(EVENTS)}}),
        TEXT => json!({"text/plain": {"schema": schema_ref("MetricsText")}}),
        PAGE => json!({"text/html": {"schema": schema_ref(PAGE)}}),
        FILE => json!({
            "text/javascript": {"schema": schema_ref(FILE)},
            "text/css": {"schema": schema_ref(FILE)},
            "image/svg+xml": {"schema": schema_ref(FILE)}
        }),
        name => content(schema_ref(name)),
    };
    let mut ok = json!({"description": "Success", "content": ok_content});
    if matches!(o.ok.1, PAGE | FILE) {
        ok["headers"] = json!({
            "ETag": {"description": "A hash of the file's bytes", "schema": {"type": "string"}},
            "Content-Security-Policy": {"description": "Scripts, styles, images and requests from this origin only; no inline script or style; Trusted Types; no framing", "schema": {"type": "string"}}
        });
        responses.insert(
            "304".into(),
            json!({"description": "Not modified: If-None-Match named the current ETag (no body)"}),
        );
    }
    responses.insert(o.ok.0.to_string(), ok);
    if o.ok.1 == RAW {
        responses.insert(
            "206".into(),
            json!({"description": "The requested byte range (Content-Range)", "content": ok_content}),
        );
    }
    let mut errors: Vec<u16> = vec![400, 431, 500];
    errors.extend(o.errors);
    if route.scope.is_some() {
        // Refused authentications past auth_failures_per_minute.
        errors.push(429);
    }
    if route.body {
        errors.push(408);
    }
    errors.sort_unstable();
    errors.dedup();
    for status in errors {
        let schema = if route.operation_id == "getHealth" && status == 503 {
            schema_ref("HealthUnavailable")
        } else {
            schema_ref("Error")
        };
        let mut r = json!({"description": error_description(status), "content": content(schema)});
        r["headers"] = request_id_header();
        if matches!(status, 429 | 503) {
            r["headers"]["Retry-After"] =
                json!({"description": "Seconds to wait", "schema": {"type": "integer"}});
        }
        if status == 401 {
            r["headers"]["WWW-Authenticate"] = json!({"schema": {"const": "Bearer"}});
        }
        if status == 416 {
            r["headers"] = json!({"Content-Range": {"description": "bytes */<length>", "schema": {"type": "string"}}});
        }
        responses.insert(status.to_string(), r);
    }
    if let Some(ok) = responses.get_mut(&o.ok.0.to_string()) {
        ok["headers"] = request_id_header();
    }
    let mut params: Vec<Value> = route
        .pattern
        .split('/')
        .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .map(|name| parameter(name, true, false))
        .collect();
    params.extend(route.query.iter().map(|q| parameter(q.name, false, q.list)));
    let mut v = json!({
        "operationId": route.operation_id,
        "tags": [o.tag],
        "summary": o.summary,
        "parameters": params,
        "responses": responses,
    });
    match route.scope {
        None if route.key => {
            v["security"] = json!([{"bearer": []}]);
            v["description"] = json!("Needs a valid key, with any scope.");
        }
        Some(s) if route.key_optional => {
            v["security"] = json!([{}, {"bearer": []}]);
            v["x-scope"] = json!(s.name());
            v["description"] = json!(format!(
                "No key needed; with a key that has the {} scope the answer also carries the helper's details (helper, version).",
                s.name()
            ));
        }
        Some(s) => {
            v["security"] = json!([{"bearer": []}]);
            v["x-scope"] = json!(s.name());
            v["description"] = json!(format!("Needs a key with the {} scope.", s.name()));
        }
        None => v["security"] = json!([]),
    }
    if let Some(b) = o.body {
        v["requestBody"] = json!({"required": true, "content": content(schema_ref(b))});
    }
    v
}

/// Builds the document for `routes`.
pub fn document<C>(routes: &[Route<C>]) -> Value {
    let mut paths = Map::new();
    for r in routes {
        let item = paths
            .entry(r.pattern.to_string())
            .or_insert_with(|| json!({}));
        item[r.method.as_str().to_ascii_lowercase()] = operation(r);
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Monitoreo",
            "version": env!("CARGO_PKG_VERSION"),
            "license": {"name": "MIT", "identifier": "MIT"},
            "description": "List and control the processes of a Linux host. Success: {\"result\":\"ok\", ...}; error: {\"result\":\"error\",\"message\",\"code\"} with an honest status. Every route also answers HEAD where it answers GET; unknown query parameters are refused (400 unknown_parameter). Large JSON answers are gzip-compressed when Accept-Encoding allows it. Before a route is known, the connection layer may answer any path with 400 (malformed_request, tls_required), 408 (request_timeout), 429 (too_many_client_connections) or 503 (too_many_connections), always as the error envelope."
        },
        "servers": [{"url": "/", "description": "The gateway serving this document"}],
        "tags": [
            {"name": "processes", "description": "List, inspect, signal and renice processes"},
            {"name": "actions", "description": "Signal or renice many processes: plan (select, pin, verdicts), then execute once"},
            {"name": "users", "description": "Users with processes"},
            {"name": "host", "description": "The host's own figures"},
            {"name": "commands", "description": "Run shell commands and read their output (the old routes)"},
            {"name": "jobs", "description": "Commands as resources: list, inspect, wait for, cancel, delete, read raw, follow live"},
            {"name": "keys", "description": "The calling key"},
            {"name": "service", "description": "Health and this document"},
            {"name": "console", "description": "The web console: a page and its files for a browser, not an API"}
        ],
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "description": "mon_... token from `monitoreo-gateway keys add`"}},
            "schemas": schemas::components()
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::procs::{Fields, SortKey};

    fn doc() -> Value {
        document(&crate::api::table())
    }

    #[test]
    fn metrics_needs_its_scope_unless_public_and_answers_text() {
        let d = doc();
        let m = &d["paths"]["/metrics"]["get"];
        assert_eq!(m["x-scope"], "metrics");
        assert!(m["responses"]["200"]["content"]["text/plain"].is_object());
        let open = document(&crate::api::table_with(true));
        assert_eq!(open["paths"]["/metrics"]["get"]["security"], json!([]));
    }

    #[test]
    fn every_route_is_an_operation_with_a_unique_id_tag_and_success() {
        let routes = crate::api::table();
        let d = doc();
        let mut ids = Vec::new();
        for r in &routes {
            assert!(op(r.operation_id).is_some(), "{} has no Op", r.operation_id);
            let o = &d["paths"][r.pattern][r.method.as_str().to_ascii_lowercase()];
            assert_eq!(o["operationId"], r.operation_id);
            assert!(o["tags"][0].is_string());
            assert!(
                !ids.contains(&r.operation_id),
                "duplicate {}",
                r.operation_id
            );
            ids.push(r.operation_id);
        }
        assert!(d["servers"].is_array() && d["info"]["license"]["name"] == "MIT");
    }

    #[test]
    fn every_schema_field_is_accepted_by_fields_and_sort_enum_parses() {
        let d = doc();
        let props = d["components"]["schemas"]["Process"]["properties"]
            .as_object()
            .expect("Process properties");
        // Every member but the marker of withheld fields is a field.
        let names: Vec<&str> = props
            .keys()
            .map(String::as_str)
            .filter(|n| *n != "withheld")
            .collect();
        assert!(props.contains_key("withheld"));
        let all = Fields::parse(&names).expect("every schema field is accepted");
        assert_eq!(all.names().count(), names.len());
        assert!(!props.contains_key("environ"));
        for v in d["components"]["schemas"]["SortKey"]["enum"]
            .as_array()
            .expect("enum")
        {
            SortKey::parse(v.as_str().expect("string")).expect("sort enum value parses");
        }
    }

    #[test]
    fn a_users_running_says_it_counts_every_process_of_the_user() {
        let d = doc();
        let running = &d["components"]["schemas"]["User"]["properties"]["running"];
        let text = running["description"].as_str().unwrap_or("");
        assert!(text.contains("every state"), "{running}");
    }

    #[test]
    fn every_reference_resolves() {
        let d = doc();
        let text = d.to_string();
        for part in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
            let name = part.split('"').next().unwrap_or("");
            assert!(
                d["components"]["schemas"].get(name).is_some(),
                "dangling $ref {name}"
            );
        }
    }
}
