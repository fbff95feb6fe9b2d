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

/// Who a job, or a uid's cleaner or sweeper, becomes: neither id is root's,
/// so the one privilege drop (`uids::become_uid`) can only lose root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobUid {
    uid: u32,
    gid: u32,
}

impl JobUid {
    /// `EPERM` for root's uid or gid.
    pub fn new(uid: u32, gid: u32) -> std::io::Result<JobUid> {
        if uid == 0 || gid == 0 {
            return Err(std::io::Error::from_raw_os_error(libc::EPERM));
        }
        Ok(JobUid { uid, gid })
    }

    pub fn uid(self) -> u32 {
        self.uid
    }

    pub fn gid(self) -> u32 {
        self.gid
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
    fn no_job_uid_is_root() {
        assert!(JobUid::new(0, 65534).is_err() && JobUid::new(65534, 0).is_err());
        let id = JobUid::new(65534, 65533).expect("not root");
        assert_eq!((id.uid(), id.gid()), (65534, 65533));
    }

    #[test]
    fn nice_is_bounded() {
        assert!(Nice::new(-21).is_err());
        assert!(Nice::new(20).is_err());
        assert!(Nice::new(-20).is_ok() && Nice::new(19).is_ok());
    }
}
