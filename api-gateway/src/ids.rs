//! Typed identifiers of the gateway: [`Pid`] and [`StartTime`] (job ids
//! and job states come from `protocol` and the `jobs` module; [`job_id`]
//! reads a job id back from its hex form).
//!
//! They are checked when they are built, from a URL segment, a request
//! body or `/proc`, so code past the HTTP layer never sees a pid ≤ 0 or a
//! start time that is not a number. Both deserialize from a JSON number or
//! a numeric string, the two forms the old service's clients send; every
//! other form is refused with a message that names the field.

use std::fmt;
use std::str::FromStr;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};

/// A process id: `1..=i32::MAX`. The helper refuses 1 and the protected
/// processes itself; the gateway only refuses what cannot be a pid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct Pid(i32);

impl Pid {
    /// The pid `raw`, if it is positive and fits an `i32`.
    pub fn new(raw: i64) -> Option<Pid> {
        i32::try_from(raw).ok().filter(|p| *p > 0).map(Pid)
    }

    /// The raw value, for `/proc` paths and protocol frames.
    pub fn get(self) -> i32 {
        self.0
    }
}

impl fmt::Display for Pid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Error of [`Pid::from_str`]: the text as it came.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadPid(pub String);

impl fmt::Display for BadPid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "pid must be a positive integer (a number or a numeric string), got {:?}",
            self.0
        )
    }
}

impl FromStr for Pid {
    type Err = BadPid;

    /// Decimal digits only (no sign, no blanks), `1..=2147483647`.
    fn from_str(s: &str) -> Result<Pid, BadPid> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(BadPid(s.into()));
        }
        s.parse::<i64>()
            .ok()
            .and_then(Pid::new)
            .ok_or_else(|| BadPid(s.into()))
    }
}

impl<'de> Deserialize<'de> for Pid {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Pid, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Pid;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("pid as a positive integer (a number or a numeric string)")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Pid, E> {
                Pid::new(v).ok_or_else(|| E::custom(BadPid(v.to_string())))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Pid, E> {
                i64::try_from(v)
                    .ok()
                    .and_then(Pid::new)
                    .ok_or_else(|| E::custom(BadPid(v.to_string())))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Pid, E> {
                v.parse().map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// A process's start time: clock ticks after boot, field 22 of
/// `/proc/PID/stat`. With the pid it names one process for the life of
/// the system.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct StartTime(u64);

impl StartTime {
    /// Wraps ticks read from `/proc` or a job status.
    pub fn from_ticks(ticks: u64) -> StartTime {
        StartTime(ticks)
    }

    /// The ticks, for protocol frames.
    pub fn ticks(self) -> u64 {
        self.0
    }
}

impl fmt::Display for StartTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl<'de> Deserialize<'de> for StartTime {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<StartTime, D::Error> {
        struct V;
        const MSG: &str =
            "start_time must be a non-negative integer (clock ticks after boot, as listed)";
        impl Visitor<'_> for V {
            type Value = StartTime;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("start_time as a non-negative integer (a number or a numeric string)")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<StartTime, E> {
                u64::try_from(v)
                    .map(StartTime)
                    .map_err(|_| E::custom(format!("{MSG}, got {v}")))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<StartTime, E> {
                Ok(StartTime(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<StartTime, E> {
                if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(E::custom(format!("{MSG}, got {v:?}")));
                }
                v.parse()
                    .map(StartTime)
                    .map_err(|_| E::custom(format!("{MSG}, got {v:?}")))
            }
        }
        d.deserialize_any(V)
    }
}

/// A process as a client saw it: pid and start time. What the helper is
/// asked to act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    pub pid: Pid,
    pub start_time: StartTime,
}

impl Target {
    /// The protocol's form.
    pub fn wire(self) -> protocol::Target {
        protocol::Target {
            pid: self.pid.get(),
            start_time: self.start_time.ticks(),
        }
    }
}

/// A job id from exactly 32 lowercase hex characters (`JobId::to_hex`);
/// anything else is `None`, so client text never becomes a job directory.
pub fn job_id(s: &str) -> Option<protocol::JobId> {
    let lower_hex = |c: &u8| matches!(c, b'0'..=b'9' | b'a'..=b'f');
    if s.len() != 32 || !s.as_bytes().iter().all(lower_hex) {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(protocol::JobId(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pid_is_a_positive_number_or_numeric_string() {
        let p = |v| serde_json::from_value::<Pid>(v);
        assert_eq!(p(json!(42)).unwrap().get(), 42);
        assert_eq!(p(json!("42")).unwrap().get(), 42);
        for bad in [
            json!(0),
            json!(-1),
            json!("-1"),
            json!("+4"),
            json!(" 4"),
            json!("4x"),
            json!(""),
            json!(1.5),
            json!(null),
            json!(true),
            json!(4_294_967_296u64),
        ] {
            assert!(p(bad.clone()).is_err(), "{bad}");
        }
        assert_eq!("2147483647".parse::<Pid>().unwrap().get(), i32::MAX);
        assert!("2147483648".parse::<Pid>().is_err());
    }

    #[test]
    fn start_time_is_a_non_negative_number_or_numeric_string() {
        let s = |v| serde_json::from_value::<StartTime>(v);
        assert_eq!(s(json!(0)).unwrap().ticks(), 0);
        assert_eq!(s(json!("123")).unwrap().ticks(), 123);
        for bad in [json!(-1), json!("x"), json!(""), json!(1.5), json!(null)] {
            let e = s(bad.clone()).unwrap_err().to_string();
            assert!(e.contains("start_time"), "{bad}: {e}");
        }
    }

    #[test]
    fn job_id_hex_is_strict() {
        let id = protocol::JobId([0xab; 16]);
        assert_eq!(id.to_hex(), "ab".repeat(16));
        assert_eq!(job_id(&id.to_hex()), Some(id));
        assert_eq!(job_id(&"AB".repeat(16)), None);
        assert_eq!(job_id(&"ab".repeat(15)), None);
        assert_eq!(job_id("../../../../etc/passwd0000000000"), None);
        assert_eq!(job_id(&"é".repeat(16)), None);
    }
}
