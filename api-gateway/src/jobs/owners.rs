//! Whose job each job uid is: the in-memory map the process readers
//! consult to withhold one key's job processes from another
//! (`procs::Withhold`), so that no listing reads anything per process to
//! tell.
//!
//! A job runs under a uid of its own from the helper's range, and the
//! helper hands that uid to another job only once nothing of the first is
//! left: so a process whose real uid is a job uid belongs to the last job
//! that was given it, even after its shell ended (a straggler still being
//! drained carries the same command). An entry is therefore replaced when
//! its uid is given to a new job, never dropped at a job's end.
//!
//! Where the helper runs every job as one shared user, the uid says only
//! that a process is some job's: such a uid keeps the live jobs run as it,
//! and the reader tells them apart by the job's cgroup name. A job leaves
//! that list when it ends; a process that outlives it is then nobody's
//! known job and withheld from every key but `admin`.
//!
//! Filled from the stored records before the server listens, then by every
//! start (as soon as the helper answers) and by the event thread's resync.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};

use protocol::JobId;

use super::meta::Meta;
use crate::keys::{Caller, Scope};
use crate::procs::Withhold;

/// Who is looking at processes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Viewer {
    /// A key with `admin`: sees every job whole, as on the jobs routes.
    Admin,
    /// Any other key, by name (the name jobs record as their owner).
    Key(String),
}

impl Viewer {
    pub fn of(caller: &Caller) -> Viewer {
        if caller.scopes.contains(&Scope::Admin) {
            Viewer::Admin
        } else {
            Viewer::Key(caller.name.clone())
        }
    }
}

#[derive(Debug, Default)]
struct Map {
    /// A per-job uid → the key whose job was given it last.
    sole: HashMap<u32, String>,
    /// The shared run uid → its live jobs and their keys.
    shared: HashMap<u32, HashMap<JobId, String>>,
}

/// The uid → key map, shared by the requests and the event thread.
#[derive(Debug, Clone, Default)]
pub struct Owners {
    map: Arc<RwLock<Map>>,
}

impl Owners {
    pub fn new() -> Owners {
        Owners::default()
    }

    /// Takes in the stored records: per job uid the newest record that
    /// names it, and the live jobs of a shared uid.
    pub fn seed(&self, records: &[(JobId, Meta)]) {
        let mut newest: Vec<&(JobId, Meta)> = records.iter().collect();
        newest.sort_by_key(|(_, m)| m.created_ms);
        for (id, meta) in newest {
            self.started(*id, meta);
        }
    }

    /// Records `meta`'s job (its uid now known) as its owner's.
    pub fn started(&self, id: JobId, meta: &Meta) {
        let Some(uid) = meta.uid else {
            return;
        };
        let mut map = self.map.write().unwrap_or_else(|p| p.into_inner());
        if meta.shared_uid {
            if meta.state.is_live() {
                map.shared
                    .entry(uid)
                    .or_default()
                    .insert(id, meta.owner.clone());
            }
        } else {
            map.sole.insert(uid, meta.owner.clone());
        }
    }

    /// A job's shell was reaped: on a shared uid the job is no longer one
    /// whose processes can be told by its cgroup (a per-job uid stays its
    /// last job's, see the module's comment).
    pub fn ended(&self, id: JobId) {
        let mut map = self.map.write().unwrap_or_else(|p| p.into_inner());
        map.shared.retain(|_, jobs| {
            jobs.remove(&id);
            true
        });
    }

    /// What `viewer` is not shown: every per-job uid some other key's job
    /// holds, and for each shared uid, the viewer's own jobs there (only
    /// those are shown).
    pub fn withhold(&self, viewer: &Viewer) -> Withhold {
        let Viewer::Key(me) = viewer else {
            return Withhold::none();
        };
        let map = self.map.read().unwrap_or_else(|p| p.into_inner());
        let uids: HashSet<u32> = map
            .sole
            .iter()
            .filter(|(_, owner)| *owner != me)
            .map(|(uid, _)| *uid)
            .collect();
        let shared = map
            .shared
            .iter()
            .map(|(uid, jobs)| {
                let own = jobs
                    .iter()
                    .filter(|(_, owner)| *owner == me)
                    .map(|(id, _)| id.to_hex())
                    .collect();
                (*uid, own)
            })
            .collect();
        Withhold::new(uids, shared)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::JobState;

    fn meta(owner: &str, uid: u32, shared: bool, created_ms: u64) -> Meta {
        Meta {
            uid: Some(uid),
            shared_uid: shared,
            state: JobState::Running,
            ..Meta::starting(owner, "sleep 1", created_ms)
        }
    }

    fn key(name: &str) -> Viewer {
        Viewer::Key(name.into())
    }

    #[test]
    fn a_job_uid_is_withheld_from_every_key_but_its_owner_and_admin() {
        let o = Owners::new();
        o.started(JobId([1; 16]), &meta("alice", 60700, false, 1));
        let hidden = |v: &Viewer| o.withhold(v).hides(Some(60700), || None);
        assert!(hidden(&key("bob")));
        assert!(!hidden(&key("alice")));
        assert!(!hidden(&Viewer::Admin));
        // Its end changes nothing: stragglers still carry the command.
        o.ended(JobId([1; 16]));
        assert!(hidden(&key("bob")));
        // The uid given to bob's next job is bob's from then on.
        o.started(JobId([2; 16]), &meta("bob", 60700, false, 2));
        assert!(!hidden(&key("bob")));
        assert!(hidden(&key("alice")));
    }

    #[test]
    fn seeding_keeps_the_newest_record_of_each_uid() {
        let o = Owners::new();
        o.seed(&[
            (JobId([2; 16]), meta("bob", 60700, false, 20)),
            (JobId([1; 16]), meta("alice", 60700, false, 10)),
        ]);
        assert!(o.withhold(&key("alice")).hides(Some(60700), || None));
        assert!(!o.withhold(&key("bob")).hides(Some(60700), || None));
    }

    #[test]
    fn on_a_shared_uid_each_key_sees_only_its_own_live_jobs_cgroups() {
        let o = Owners::new();
        let (a, b) = (JobId([0xa1; 16]), JobId([0xb2; 16]));
        o.started(a, &meta("alice", 65534, true, 1));
        o.started(b, &meta("bob", 65534, true, 2));
        let cg = |id: JobId| {
            move || Some(format!("0::/x/monitoreo-9-job-{}\n", id.to_hex()).into_bytes())
        };
        assert!(!o.withhold(&key("alice")).hides(Some(65534), cg(a)));
        assert!(o.withhold(&key("alice")).hides(Some(65534), cg(b)));
        assert!(o.withhold(&key("carol")).hides(Some(65534), cg(a)));
        assert!(!o.withhold(&Viewer::Admin).hides(Some(65534), cg(b)));
        o.ended(a);
        assert!(o.withhold(&key("alice")).hides(Some(65534), cg(a)));
        // A job that ended before it was recorded is not kept.
        let ended = Meta {
            state: JobState::Exited,
            ..meta("carol", 65534, true, 3)
        };
        o.started(JobId([0xc3; 16]), &ended);
        assert!(o
            .withhold(&key("carol"))
            .hides(Some(65534), cg(JobId([0xc3; 16]))));
    }
}
