//! What one caller is not shown of the processes of other keys' jobs.
//!
//! Every key is a tenant, and a job's processes belong to the key that
//! started it: their command line is what that key typed, secrets
//! included. The reader is handed a [`Withhold`] built for the caller
//! (`jobs::owners`), and asks it once per process, with the real uid it
//! reads from status anyway; a process it names has each field of
//! [`FIELDS`] written as `null` and listed in the object's `withheld`
//! member with [`REASON`], and sorts as if those fields were null.
//!
//! Guarantees: a per-job uid costs a set lookup per process, no read; only
//! a uid that jobs of several keys share (the helper's shared run user)
//! makes the reader open the process's `cgroup`, and then the process is
//! shown only when that names one of the caller's own jobs — anything it
//! cannot tell is withheld.

use std::collections::{HashMap, HashSet};

use super::fields::Field;

/// The fields that show what a job was given or works on: its arguments,
/// the name, path and directory of what it runs, the files, mappings and
/// peers it has open. The figures (CPU, memory, counts, ids, state) stay:
/// they are what an operator needs and say nothing of the job's input.
pub const FIELDS: [Field; 7] = [
    Field::Name,
    Field::Cmdline,
    Field::Exe,
    Field::Cwd,
    Field::OpenFiles,
    Field::Connections,
    Field::MemoryMaps,
];

/// The value a withheld field has in the `withheld` member.
pub const REASON: &str = "another_key_job";

/// Whose processes a caller may not see whole.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Withhold {
    /// Real uids whose every process is another key's job's.
    uids: HashSet<u32>,
    /// Real uids the jobs of several keys run as, each with the caller's
    /// own jobs among them (32 lowercase hex digits, as their cgroups are
    /// named).
    shared: HashMap<u32, Vec<String>>,
}

impl Withhold {
    /// Nothing withheld (an `admin` key).
    pub fn none() -> Withhold {
        Withhold::default()
    }

    /// Withholds every process of `uids`, and of each uid of `shared`
    /// every process whose cgroup does not name one of the jobs listed
    /// with it.
    pub fn new(uids: HashSet<u32>, shared: HashMap<u32, Vec<String>>) -> Withhold {
        Withhold { uids, shared }
    }

    /// Whether nothing is withheld: the reader then reads no more than
    /// the fields asked for need.
    pub fn is_empty(&self) -> bool {
        self.uids.is_empty() && self.shared.is_empty()
    }

    /// Whether a process of real uid `uid` (`None`: it could not be read)
    /// is withheld; `cgroup` reads the process's `/proc/PID/cgroup`, only
    /// called for a shared uid.
    pub fn hides(&self, uid: Option<u32>, cgroup: impl FnOnce() -> Option<Vec<u8>>) -> bool {
        if self.is_empty() {
            return false;
        }
        let Some(uid) = uid else {
            return true;
        };
        if self.uids.contains(&uid) {
            return true;
        }
        match self.shared.get(&uid) {
            None => false,
            Some(own) => !cgroup()
                .and_then(|text| job_of(&text).map(<[u8]>::to_vec))
                .is_some_and(|job| own.iter().any(|o| o.as_bytes() == job)),
        }
    }

    /// Whether `plan`'s fields or sort key include one that may be
    /// withheld (if not, nobody's process needs judging).
    pub fn concerns(&self, emit: super::Fields, sort: Option<Field>) -> bool {
        !self.is_empty() && (emit.any(&FIELDS) || sort.is_some_and(|f| FIELDS.contains(&f)))
    }
}

/// The job a process's cgroup file names: the 32 hex digits of a path
/// component `monitoreo-<helper pid>-job-<id>`, the helper's name for a
/// job's cgroup.
pub fn job_of(cgroup: &[u8]) -> Option<&[u8]> {
    cgroup
        .split(|&b| b == b'\n' || b == b'/')
        .rev()
        .find_map(|part| {
            let rest = part.strip_prefix(b"monitoreo-")?;
            let at = rest.windows(5).position(|w| w == b"-job-")?;
            let (pid, id) = (&rest[..at], &rest[at + 5..]);
            (!pid.is_empty()
                && pid.iter().all(u8::is_ascii_digit)
                && id.len() == 32
                && id
                    .iter()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b)))
            .then_some(id)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const JOB: &str = "0123456789abcdef0123456789abcdef";
    const OTHER: &str = "fedcba9876543210fedcba9876543210";

    fn cg(id: &str) -> Option<Vec<u8>> {
        Some(
            format!("0::/system.slice/monitoreo-privhelper.service/monitoreo-812-job-{id}\n")
                .into_bytes(),
        )
    }

    #[test]
    fn nothing_is_withheld_from_an_admin_and_no_cgroup_is_read() {
        let w = Withhold::none();
        assert!(!w.hides(Some(60700), || panic!("no cgroup read")));
        assert!(!w.hides(None, || panic!("no cgroup read")));
    }

    #[test]
    fn a_per_job_uid_of_another_key_is_withheld_without_reading_its_cgroup() {
        let w = Withhold::new(HashSet::from([60700]), HashMap::new());
        assert!(w.hides(Some(60700), || panic!("no cgroup read")));
        assert!(!w.hides(Some(0), || panic!("no cgroup read")));
        assert!(!w.hides(Some(60701), || panic!("no cgroup read")));
        // A process whose uid could not be read is not taken for anyone's.
        assert!(w.hides(None, || panic!("no cgroup read")));
    }

    #[test]
    fn on_a_shared_uid_only_the_callers_own_job_cgroups_are_shown() {
        let w = Withhold::new(
            HashSet::new(),
            HashMap::from([(65534, vec![JOB.to_string()])]),
        );
        assert!(!w.hides(Some(65534), || cg(JOB)));
        assert!(w.hides(Some(65534), || cg(OTHER)));
        // No job cgroup (pgid containment, or a process of the run user
        // outside any job): cannot tell, so withheld.
        assert!(w.hides(Some(65534), || Some(b"0::/user.slice\n".to_vec())));
        assert!(w.hides(Some(65534), || None));
        assert!(!w.hides(Some(1000), || panic!("not a shared uid")));
    }

    #[test]
    fn only_a_well_formed_job_cgroup_names_a_job() {
        assert_eq!(job_of(&cg(JOB).unwrap_or_default()), Some(JOB.as_bytes()));
        for bad in [
            format!("0::/monitoreo-812-job-{}", &JOB[..31]),
            format!("0::/monitoreo--job-{JOB}"),
            format!("0::/monitoreo-8x2-job-{JOB}"),
            format!("0::/monitoreo-812-job-{}", JOB.to_uppercase()),
            format!("0::/evil-monitoreo-812-job-{JOB}"),
            "0::/".to_string(),
        ] {
            assert_eq!(job_of(bad.as_bytes()), None, "{bad}");
        }
    }

    #[test]
    fn only_plans_that_show_or_sort_by_a_withheld_field_concern_it() {
        use super::super::Fields;
        let w = Withhold::new(HashSet::from([1]), HashMap::new());
        let figures = Fields::parse(&["pid,cpu_percent,username"]).expect("fields");
        assert!(!w.concerns(figures, Some(Field::Pid)));
        assert!(w.concerns(figures, Some(Field::Exe)));
        assert!(w.concerns(figures.with(Field::Cmdline), None));
        assert!(!Withhold::none().concerns(Fields::all(), Some(Field::Name)));
    }
}
