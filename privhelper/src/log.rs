//! The helper's decision log: one JSON object per line on stderr (the
//! journal), so that a decision can be joined with the gateway's audit line
//! by `request_id` and read by machines as well as people. Values are
//! plain JSON (numbers, strings, null), never Rust debug output.

use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use protocol::{Action, Request, Response, Target};
use serde_json::{json, Map, Value};

use crate::socket::Peer;

/// Writes the line for one decided request other than an act on
/// processes (an `Act` writes one per target, [`act`]): a spawn, a
/// cancel (status queries, `Info` and `Check` write none).
pub fn decision(request_id: u64, peer: Peer, req: &Request, resp: &Response) {
    let asked = match req {
        Request::Spawn {
            job,
            command,
            timeout_ms,
            key,
        } => vec![
            ("key", json!(key)),
            ("job", json!(job.to_hex())),
            ("command", json!(command)),
            ("timeout_ms", json!(timeout_ms)),
        ],
        Request::Cancel { job } => vec![("job", json!(job.to_hex()))],
        _ => vec![],
    };
    line(request_id, peer, req.kind(), asked, resp);
}

/// Writes the line for one target of an `Act`: as a signal or renice of
/// that process alone would be written, with the `Act`'s `request_id` and
/// the API key it was asked for.
pub fn act(request_id: u64, peer: Peer, key: &str, t: Target, action: Action, resp: &Response) {
    let who = vec![("pid", json!(t.pid)), ("start_time", json!(t.start_time))];
    let asked = asked(key, action, who);
    line(request_id, peer, action.kind(), asked, resp);
}

/// Writes the one line of an `Act` refused whole before any target is
/// looked at: the number of targets, not a line each, so that a frame of
/// thousands of targets costs one write.
pub fn refused(request_id: u64, peer: Peer, key: &str, n: usize, action: Action, resp: &Response) {
    let asked = asked(key, action, vec![("targets", json!(n))]);
    line(request_id, peer, action.kind(), asked, resp);
}

/// An act's fields: the processes, the key, the signal or nice value.
fn asked(key: &str, action: Action, mut who: Fields) -> Fields {
    who.push(("key", json!(key)));
    who.push(match action {
        Action::Signal(s) => ("signal", json!(s.name())),
        Action::Renice(nice) => ("nice", json!(nice)),
    });
    who
}

type Fields = Vec<(&'static str, Value)>;

/// The decision line: who asked, what, and what it got.
fn line(request_id: u64, peer: Peer, kind: &str, mut line: Vec<(&str, Value)>, resp: &Response) {
    line.extend([
        ("request_id", request_id_json(request_id)),
        ("peer_uid", json!(peer.uid)),
        ("peer_pid", json!(peer.pid)),
        ("request", json!(kind)),
    ]);
    let (outcome, extra): (&str, Vec<(&str, Value)>) = match resp {
        Response::Ok => ("ok", vec![]),
        Response::Reniced { threads } => ("ok", vec![("threads", json!(threads))]),
        Response::Denied { rule, detail } => (
            "denied",
            vec![("rule", json!(rule)), ("detail", json!(detail))],
        ),
        Response::NoSuchProcess => ("no_such_process", vec![]),
        Response::NotAProcess => ("not_a_process", vec![]),
        Response::Mismatch => ("identity_changed", vec![]),
        Response::ExeChanged => ("exe_changed", vec![]),
        Response::Busy => ("busy", vec![]),
        Response::Invalid { what } => ("invalid", vec![("detail", json!(what))]),
        Response::Failed { errno } => {
            let detail = json!(std::io::Error::from_raw_os_error(*errno).to_string());
            ("failed", vec![("errno", json!(errno)), ("detail", detail)])
        }
        Response::Job(s) => (
            "job",
            vec![
                ("job_pid", json!(s.pid)),
                ("job_uid", json!(s.uid)),
                ("job_state", json!(s.state.name())),
            ],
        ),
        // A handshake, a batch, the policy, an event stream's frames:
        // never a decided request's answer.
        _ => ("unexpected", vec![]),
    };
    line.push(("outcome", json!(outcome)));
    line.extend(extra);
    // Called by its full path, as every other event is, so that one
    // search finds every event the helper writes.
    crate::log::event("decision", &line);
}

/// Writes a line for an event that is not a request's decision (a job
/// ended, a connection was refused); `fields` are added as they are.
pub fn event(name: &str, fields: &[(&str, Value)]) {
    let mut line: Map<String, Value> = fields
        .iter()
        .map(|(k, v)| ((*k).into(), v.clone()))
        .collect();
    line.insert("time".into(), json!(rfc3339_ms(now_ms())));
    line.insert("event".into(), json!(name));
    // One `write(2)` per line: stderr is unbuffered, and formatting
    // straight into it costs a system call per fragment.
    let mut text = Value::Object(line).to_string();
    text.push('\n');
    let _ = std::io::stderr().write_all(text.as_bytes());
}

/// The id as the gateway prints it (16 hex digits), `null` for none.
pub fn request_id_json(id: u64) -> Value {
    (id != 0).then(|| format!("{id:016x}")).into()
}

/// Unix time in milliseconds (0 if the clock is before 1970).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` from Unix milliseconds (proleptic Gregorian,
/// days-from-civil inverted as in Howard Hinnant's algorithm).
pub fn rfc3339_ms(ms: u64) -> String {
    let secs = ms / 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let (hh, mm, ss, milli) = (rem / 3600, rem % 3600 / 60, rem % 60, ms % 1000);
    format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}.{milli:03}Z")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339_utc() {
        assert_eq!(rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_ms(1_767_323_045_678), "2026-01-02T03:04:05.678Z");
        assert_eq!(rfc3339_ms(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn request_ids_print_as_the_gateway_prints_them() {
        assert_eq!(request_id_json(0), Value::Null);
        assert_eq!(request_id_json(0xab), json!("00000000000000ab"));
    }
}
