//! `DELETE /api/ps`: send a signal (SIGKILL unless `signal` says
//! otherwise) to a process, through the helper.

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};

use super::ctx::Ctx;
use super::named::{DryRun, Named};
use super::target;
use crate::error::ApiError;
use crate::http::extract::{present, FromInput, Input};
use crate::ids::{Pid, StartTime};
use crate::reply::{Envelope, Reply};

/// The body. `pid` as a number or numeric string (the old clients send
/// strings); `signal` a name (`TERM`, `SIGTERM`, any case) or its number;
/// absent means KILL, `null` is refused.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignalRequest {
    pub pid: Pid,
    #[serde(default, deserialize_with = "present")]
    pub signal: Option<SignalName>,
    #[serde(default, deserialize_with = "present")]
    pub start_time: Option<StartTime>,
    /// Answer what would happen and by which rule; touch nothing.
    #[serde(default, deserialize_with = "present")]
    pub dry_run: Option<Named<bool, DryRun>>,
}

impl FromInput for SignalRequest {
    const BODY: bool = true;

    fn from_input(input: &Input) -> Result<SignalRequest, ApiError> {
        input.json()
    }
}

/// A signal the protocol carries, as a client names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignalName(pub protocol::Signal);

impl<'de> Deserialize<'de> for SignalName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<SignalName, D::Error> {
        struct V;
        fn names() -> String {
            protocol::Signal::ALL.map(|s| s.name()).join(", ")
        }
        impl Visitor<'_> for V {
            type Value = SignalName;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "signal as one of {} or its number", names())
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<SignalName, E> {
                v.parse().map(SignalName).map_err(|_| {
                    E::custom(format!("unknown signal {v:?}; signal takes {}", names()))
                })
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<SignalName, E> {
                protocol::Signal::from_number(v)
                    .map(SignalName)
                    .ok_or_else(|| {
                        E::custom(format!(
                            "unsupported signal number {v}; signal takes {}",
                            names()
                        ))
                    })
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<SignalName, E> {
                self.visit_i64(i64::try_from(v).unwrap_or(i64::MAX))
            }
        }
        d.deserialize_any(V)
    }
}

/// The answer.
#[derive(Debug, Serialize)]
pub struct Signalled {
    pub pid: Pid,
    pub start_time: StartTime,
    /// The signal's name, e.g. `"TERM"`.
    pub signal: &'static str,
}

pub async fn send(cx: &Ctx, req: SignalRequest) -> Result<Reply, ApiError> {
    let signal = req.signal.map_or(protocol::Signal::Kill, |s| s.0);
    let t = target::resolve(cx, req.pid, req.start_time).await?;
    if req.dry_run.is_some_and(|d| d.0) {
        return target::dry_run(cx, t, protocol::Action::Signal(signal)).await;
    }
    target::act(cx, t, protocol::Action::Signal(signal)).await?;
    Ok(Envelope::ok()
        .members(&Signalled {
            pid: t.pid,
            start_time: t.start_time,
            signal: signal.name(),
        })?
        .finish(hyper::StatusCode::OK))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::extract::decode_body;

    #[test]
    fn the_old_clients_forms_are_accepted() {
        let r: SignalRequest = decode_body(br#"{"pid": "8802"}"#).expect("string pid");
        assert_eq!((r.pid.get(), r.signal), (8802, None));
        let r: SignalRequest =
            decode_body(br#"{"pid": 5, "signal": "sigterm", "start_time": "7"}"#).expect("ok");
        assert_eq!(r.signal, Some(SignalName(protocol::Signal::Term)));
        let r: SignalRequest = decode_body(br#"{"pid": 5, "signal": 15}"#).expect("number");
        assert_eq!(r.signal, Some(SignalName(protocol::Signal::Term)));
    }

    #[test]
    fn a_typo_or_a_null_is_refused_not_taken_for_kill() {
        let e = decode_body::<SignalRequest>(br#"{"pid": 5, "singal": "TERM"}"#).expect_err("typo");
        assert_eq!(e.code(), "unknown_field");
        assert!(e.to_string().contains("singal"), "{e}");
        let e = decode_body::<SignalRequest>(br#"{"pid": 5, "signal": null}"#).expect_err("null");
        assert_eq!(e.code(), "invalid_field");
        assert!(e.to_string().contains("signal"), "{e}");
        let e = decode_body::<SignalRequest>(br#"{"pid": 5, "signal": "NOPE"}"#).expect_err("bad");
        assert!(e.to_string().contains("NOPE"), "{e}");
        let e =
            decode_body::<SignalRequest>(br#"{"pid": 5, "start_time": null}"#).expect_err("null");
        assert!(e.to_string().contains("start_time"), "{e}");
    }
}
