//! OS identifiers as types validated at construction, so that the checks
//! downstream never see an unchecked number.

use crate::rule::Builtin;

/// A pid the helper may act on: always ≥ 2 (pid ≤ 1 and negative values are
/// refused before one of these can exist).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Pid(i32);

impl Pid {
    /// A raw pid that is not a [`Pid`] is refused by a built-in protection.
    pub fn new(raw: i32) -> Result<Pid, Builtin> {
        if raw < 0 {
            Err(Builtin::NegativePid)
        } else if raw <= 1 {
            Err(Builtin::PidAtMostOne)
        } else {
            Ok(Pid(raw))
        }
    }

    pub fn get(self) -> i32 {
        self.0
    }
}

/// A user id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Uid(u32);

impl Uid {
    pub fn new(raw: u32) -> Uid {
        Uid(raw)
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

/// A nice value in Linux's range −20..=19.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Nice(i32);

impl Nice {
    pub fn new(raw: i32) -> Result<Nice, String> {
        if (-20..=19).contains(&raw) {
            Ok(Nice(raw))
        } else {
            Err(format!("nice {raw} is outside -20..=19"))
        }
    }

    pub fn get(self) -> i32 {
        self.0
    }
}

/// Start time in clock ticks since boot (`/proc/PID/stat` field 22).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StartTime(pub u64);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pids_below_two_never_become_pids() {
        assert_eq!(Pid::new(-1), Err(Builtin::NegativePid));
        assert_eq!(Pid::new(i32::MIN), Err(Builtin::NegativePid));
        assert_eq!(Pid::new(0), Err(Builtin::PidAtMostOne));
        assert_eq!(Pid::new(1), Err(Builtin::PidAtMostOne));
        assert_eq!(Pid::new(2).map(Pid::get), Ok(2));
    }

    #[test]
    fn nice_is_bounded() {
        assert!(Nice::new(-21).is_err());
        assert!(Nice::new(20).is_err());
        assert!(Nice::new(-20).is_ok() && Nice::new(19).is_ok());
    }
}
