//! `PATCH /api/ps`: set a process's nice value (every thread), through
//! the helper.

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

/// The body: `pid` (number or numeric string), `priority` −20..=20 (20
/// acts as 19, Linux's ceiling; a numeric string is accepted as the old
/// clients send), optional `start_time`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReniceRequest {
    pub pid: Pid,
    pub priority: Priority,
    #[serde(default, deserialize_with = "present")]
    pub start_time: Option<StartTime>,
    /// Answer what would happen and by which rule; touch nothing.
    #[serde(default, deserialize_with = "present")]
    pub dry_run: Option<Named<bool, DryRun>>,
}

impl FromInput for ReniceRequest {
    const BODY: bool = true;

    fn from_input(input: &Input) -> Result<ReniceRequest, ApiError> {
        input.json()
    }
}

/// A requested nice value, −20..=20.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Priority(i32);

impl Priority {
    /// The value the kernel can hold (20 → 19).
    pub fn nice(self) -> i32 {
        self.0.min(19)
    }
}

impl<'de> Deserialize<'de> for Priority {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Priority, D::Error> {
        struct V;
        fn check<E: de::Error>(v: i64) -> Result<Priority, E> {
            if (-20..=20).contains(&v) {
                Ok(Priority(v as i32))
            } else {
                Err(E::custom(format!("priority {v} is outside -20..=20")))
            }
        }
        impl Visitor<'_> for V {
            type Value = Priority;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("priority as an integer in -20..=20 (a number or a numeric string)")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Priority, E> {
                check(v)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Priority, E> {
                check(i64::try_from(v).unwrap_or(i64::MAX))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Priority, E> {
                let digits = v.strip_prefix('-').unwrap_or(v);
                if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(E::custom(format!(
                        "priority must be an integer in -20..=20, got {v:?}"
                    )));
                }
                check(v.parse().unwrap_or(i64::MAX))
            }
        }
        d.deserialize_any(V)
    }
}

/// The answer.
#[derive(Debug, Serialize)]
pub struct Reniced {
    pub pid: Pid,
    pub start_time: StartTime,
    /// The nice value set (19 when 20 was asked).
    pub priority: i32,
    /// How many threads were reniced.
    pub threads: u32,
}

pub async fn set(cx: &Ctx, req: ReniceRequest) -> Result<Reply, ApiError> {
    let nice = req.priority.nice();
    let t = target::resolve(cx, req.pid, req.start_time).await?;
    if req.dry_run.is_some_and(|d| d.0) {
        return target::dry_run(cx, t, protocol::Action::Renice(nice)).await;
    }
    let resp = target::act(cx, t, protocol::Action::Renice(nice)).await?;
    let protocol::Response::Reniced { threads } = resp else {
        return Err(ApiError::BadGateway(format!(
            "unexpected answer to renice: {resp:?}"
        )));
    };
    Ok(Envelope::ok()
        .members(&Reniced {
            pid: t.pid,
            start_time: t.start_time,
            priority: nice,
            threads,
        })?
        .finish(hyper::StatusCode::OK))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::extract::decode_body;

    #[test]
    fn priority_takes_numbers_and_numeric_strings_and_20_acts_as_19() {
        let r: ReniceRequest =
            decode_body(br#"{"pid": "8802", "priority": 10}"#).expect("old form");
        assert_eq!(r.priority.nice(), 10);
        let r: ReniceRequest = decode_body(br#"{"pid": 1, "priority": "-5"}"#).expect("string");
        assert_eq!(r.priority.nice(), -5);
        let r: ReniceRequest = decode_body(br#"{"pid": 1, "priority": 20}"#).expect("20");
        assert_eq!(r.priority.nice(), 19);
        for bad in [
            &br#"{"pid": 1, "priority": 21}"#[..],
            br#"{"pid": 1, "priority": "x"}"#,
            br#"{"pid": 1, "priority": null}"#,
            br#"{"pid": 1}"#,
            br#"{"pid": 1, "priority": 1, "nice": 1}"#,
        ] {
            let e = decode_body::<ReniceRequest>(bad).expect_err("refused");
            assert_eq!(e.status().as_u16(), 400);
        }
    }
}
