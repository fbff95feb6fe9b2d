//! The job records in memory: what listing, admission and `/metrics` need
//! of every job, per key and in all, so that none of them walks the job
//! directories. A request then costs what its own page or key costs,
//! whatever other keys have stored.
//!
//! [`JobStore`](super::JobStore) keeps it in step with the disk: it is
//! built from the records once at start, and every create, update of a
//! record, delete, eviction and retention sweep goes through the store,
//! which changes both. A record that appears on disk by other means is not
//! seen until the next start.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use protocol::JobId;

use super::meta::{JobState, Meta};

/// Listing order: creation time, the id breaking ties (as the API pages).
type Key = (u64, [u8; 16]);

fn key(created_ms: u64, id: JobId) -> Key {
    (created_ms, id.0)
}

/// What the index holds of one job.
#[derive(Debug, Clone)]
pub struct Entry {
    pub owner: Arc<str>,
    pub created_ms: u64,
    pub state: JobState,
    /// When it ended, or `created_ms` if its end was never recorded: the
    /// retention sweep's clock.
    pub ended_ms: Option<u64>,
    /// What the job counts against the quotas: the bytes it wrote once it
    /// ended; while it may still write, its whole ceiling.
    pub bytes: u64,
}

/// One key's standing, what its limits are checked against.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Records kept, live or not.
    pub records: usize,
    /// Jobs starting or running.
    pub running: usize,
    /// Output stored plus live jobs' ceilings, bytes.
    pub committed: u64,
}

#[derive(Debug, Default)]
struct KeyJobs {
    all: BTreeSet<Key>,
    /// The finished subset, oldest first: eviction's candidates.
    finished: BTreeSet<Key>,
    usage: Usage,
}

/// What `/metrics` reports of the jobs.
#[derive(Debug, Default, Clone)]
pub struct Census {
    /// Jobs per state, every state present.
    pub by_state: BTreeMap<&'static str, u64>,
    /// Bytes written by jobs that ended (live jobs' files are still
    /// growing: the scrape adds them itself).
    pub finished_bytes: u64,
    /// Jobs seen ending since the gateway started, by outcome.
    pub ended: BTreeMap<&'static str, u64>,
}

/// The index proper; the store holds it behind a mutex.
#[derive(Debug, Default)]
pub struct Index {
    entries: HashMap<[u8; 16], Entry>,
    all: BTreeSet<Key>,
    keys: HashMap<Arc<str>, KeyJobs>,
    by_state: HashMap<JobState, u64>,
    committed: u64,
    finished_bytes: u64,
    ended: BTreeMap<&'static str, u64>,
    /// Ends before this (Unix ms) happened before the gateway started:
    /// the helper reporting them late does not count them as seen.
    since_ms: u64,
}

/// How a finished job ended, as the metrics label it.
pub fn outcome(m: &Meta) -> Option<&'static str> {
    Some(match m.state {
        JobState::Starting | JobState::Running => return None,
        JobState::Exited if m.exit_code == Some(0) => "success",
        JobState::Exited => "failure",
        JobState::Killed => "killed",
        JobState::TimedOut => "timed_out",
        JobState::Cancelled => "cancelled",
    })
}

impl Index {
    /// An empty index counting the ends from `since_ms` on.
    pub fn since(since_ms: u64) -> Index {
        Index {
            since_ms,
            ..Index::default()
        }
    }

    /// Adds a job: a new one, or one read from disk at start. `bytes` is
    /// what it counts (see [`Entry::bytes`]).
    pub fn insert(&mut self, id: JobId, meta: &Meta, bytes: u64) {
        self.remove(id);
        let owner: Arc<str> = match self.keys.get_key_value(meta.owner.as_str()) {
            Some((k, _)) => k.clone(),
            None => Arc::from(meta.owner.as_str()),
        };
        let entry = Entry {
            owner: owner.clone(),
            created_ms: meta.created_ms,
            state: meta.state,
            ended_ms: meta.ended_ms,
            bytes,
        };
        self.add(id, entry);
    }

    fn add(&mut self, id: JobId, e: Entry) {
        let k = key(e.created_ms, id);
        let jobs = self.keys.entry(e.owner.clone()).or_default();
        jobs.all.insert(k);
        jobs.usage.records += 1;
        jobs.usage.committed = jobs.usage.committed.saturating_add(e.bytes);
        if e.state.is_live() {
            jobs.usage.running += 1;
        } else {
            jobs.finished.insert(k);
            self.finished_bytes = self.finished_bytes.saturating_add(e.bytes);
        }
        self.all.insert(k);
        *self.by_state.entry(e.state).or_default() += 1;
        self.committed = self.committed.saturating_add(e.bytes);
        self.entries.insert(id.0, e);
    }

    /// Drops a job; its entry, if it had one.
    pub fn remove(&mut self, id: JobId) -> Option<Entry> {
        let e = self.entries.remove(&id.0)?;
        let k = key(e.created_ms, id);
        if let Some(jobs) = self.keys.get_mut(&e.owner) {
            jobs.all.remove(&k);
            jobs.finished.remove(&k);
            jobs.usage.records -= 1;
            jobs.usage.committed = jobs.usage.committed.saturating_sub(e.bytes);
            if e.state.is_live() {
                jobs.usage.running -= 1;
            }
            if jobs.usage.records == 0 {
                self.keys.remove(&e.owner);
            }
        }
        if !e.state.is_live() {
            self.finished_bytes = self.finished_bytes.saturating_sub(e.bytes);
        }
        self.all.remove(&k);
        if let Some(n) = self.by_state.get_mut(&e.state) {
            *n -= 1;
        }
        self.committed = self.committed.saturating_sub(e.bytes);
        Some(e)
    }

    /// Takes in a record just written. A job that ends here is counted by
    /// its outcome and from now on counts the bytes `written` reports;
    /// a live one counts its ceiling, `2 × output_limit` once the helper
    /// has told it. A job the index does not hold is left out.
    pub fn update(&mut self, id: JobId, meta: &Meta, written: impl FnOnce() -> u64) {
        let Some(old) = self.entries.get(&id.0) else {
            return;
        };
        let bytes = if !meta.state.is_live() {
            if old.state.is_live() {
                let recent = meta.ended_ms.map_or(true, |t| t >= self.since_ms);
                if let (Some(o), true) = (outcome(meta), recent) {
                    *self.ended.entry(o).or_default() += 1;
                }
                written()
            } else {
                old.bytes
            }
        } else {
            meta.output_limit.map_or(old.bytes, |l| l.saturating_mul(2))
        };
        let owner = old.owner.clone();
        self.remove(id);
        self.add(
            id,
            Entry {
                owner,
                created_ms: meta.created_ms,
                state: meta.state,
                ended_ms: meta.ended_ms,
                bytes,
            },
        );
    }

    pub fn get(&self, id: JobId) -> Option<&Entry> {
        self.entries.get(&id.0)
    }

    /// The key's standing (all zero for a key with no records).
    pub fn usage(&self, owner: &str) -> Usage {
        self.keys.get(owner).map(|k| k.usage).unwrap_or_default()
    }

    /// Bytes committed by every key together.
    pub fn committed(&self) -> u64 {
        self.committed
    }

    /// The key's `n` oldest finished jobs with what each counts.
    pub fn oldest_finished(&self, owner: &str, n: usize) -> Vec<(JobId, u64)> {
        let Some(k) = self.keys.get(owner) else {
            return Vec::new();
        };
        k.finished
            .iter()
            .take(n)
            .map(|&(_, id)| {
                let bytes = self.entries.get(&id).map_or(0, |e| e.bytes);
                (JobId(id), bytes)
            })
            .collect()
    }

    /// One page of a listing, newest first: of `owner`'s jobs, or of every
    /// job when `owner` is `None`; only `state` if given; after `before`.
    /// `None` when `before` is not a job of that listing; `true` beside the
    /// page when more follow. Walks the listing's own jobs only, and stops
    /// at the page's end.
    pub fn page(
        &self,
        owner: Option<&str>,
        state: Option<JobState>,
        before: Option<JobId>,
        limit: usize,
    ) -> Option<(Vec<JobId>, bool)> {
        let set = match owner {
            Some(o) => match self.keys.get(o) {
                Some(k) => &k.all,
                None if before.is_some() => return None,
                None => return Some((Vec::new(), false)),
            },
            None => &self.all,
        };
        let upper = match before {
            Some(b) => {
                let e = self.entries.get(&b.0)?;
                if owner.is_some_and(|o| *e.owner != *o) {
                    return None;
                }
                std::ops::Bound::Excluded(key(e.created_ms, b))
            }
            None => std::ops::Bound::Unbounded,
        };
        let mut matching = set
            .range((std::ops::Bound::Unbounded, upper))
            .rev()
            .map(|&(_, id)| id)
            .filter(|id| {
                state.map_or(true, |s| self.entries.get(id).is_some_and(|e| e.state == s))
            });
        let page: Vec<JobId> = matching.by_ref().take(limit).map(JobId).collect();
        let more = matching.next().is_some();
        Some((page, more))
    }

    /// Jobs recorded as starting or running.
    /// Every job the index holds.
    pub fn ids(&self) -> Vec<JobId> {
        self.entries.keys().map(|id| JobId(*id)).collect()
    }

    pub fn live(&self) -> Vec<JobId> {
        self.entries
            .iter()
            .filter(|(_, e)| e.state.is_live())
            .map(|(id, _)| JobId(*id))
            .collect()
    }

    /// Jobs that ended (or, if their end was never recorded, were created)
    /// before `cutoff_ms`.
    pub fn expired(&self, cutoff_ms: u64) -> Vec<JobId> {
        self.entries
            .iter()
            .filter(|(_, e)| e.ended_ms.unwrap_or(e.created_ms) < cutoff_ms)
            .map(|(id, _)| JobId(*id))
            .collect()
    }

    pub fn census(&self) -> Census {
        let mut by_state: BTreeMap<&'static str, u64> =
            JobState::ALL.iter().map(|s| (s.name(), 0)).collect();
        for (s, n) in &self.by_state {
            by_state.insert(s.name(), *n);
        }
        Census {
            by_state,
            finished_bytes: self.finished_bytes,
            ended: self.ended.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(owner: &str, created_ms: u64, state: JobState) -> Meta {
        Meta {
            state,
            exit_code: (!state.is_live()).then_some(0),
            ended_ms: (!state.is_live()).then_some(created_ms + 1),
            ..Meta::starting(owner, "true", created_ms)
        }
    }

    #[test]
    fn usage_follows_starts_ends_and_removals() {
        let mut ix = Index::default();
        let (a, b) = (JobId([1; 16]), JobId([2; 16]));
        ix.insert(a, &meta("k", 1, JobState::Starting), 200);
        ix.insert(b, &meta("k", 2, JobState::Exited), 5);
        assert_eq!(
            ix.usage("k"),
            Usage {
                records: 2,
                running: 1,
                committed: 205
            }
        );
        let mut running = meta("k", 1, JobState::Running);
        running.output_limit = Some(50);
        ix.update(a, &running, || unreachable!("still live"));
        assert_eq!(ix.usage("k").committed, 105);
        ix.update(a, &meta("k", 1, JobState::Exited), || 7);
        assert_eq!(
            ix.usage("k"),
            Usage {
                records: 2,
                running: 0,
                committed: 12
            }
        );
        assert_eq!(ix.census().ended.get("success"), Some(&1));
        assert_eq!(ix.census().finished_bytes, 12);
        // A second end of the same job is not counted again.
        ix.update(a, &meta("k", 1, JobState::Exited), || 99);
        assert_eq!(ix.census().ended.get("success"), Some(&1));
        assert_eq!(ix.usage("k").committed, 12);
        assert_eq!(ix.remove(b).map(|e| e.bytes), Some(5));
        assert_eq!(ix.usage("other"), Usage::default());
        assert_eq!(ix.committed(), 7);
        ix.remove(a);
        assert_eq!(ix.usage("k"), Usage::default());
        assert!(ix.keys.is_empty(), "no key left behind");
        assert_eq!(ix.census().by_state["exited"], 0);
    }

    #[test]
    fn pages_are_newest_first_per_key_and_filtered() {
        let mut ix = Index::default();
        for i in 0..10u8 {
            let owner = if i % 2 == 0 { "even" } else { "odd" };
            let state = if i == 8 {
                JobState::Running
            } else {
                JobState::Exited
            };
            ix.insert(JobId([i; 16]), &meta(owner, u64::from(i), state), 0);
        }
        let ids = |v: Vec<JobId>| v.iter().map(|j| j.0[0]).collect::<Vec<u8>>();
        let (p, more) = ix.page(Some("even"), None, None, 3).unwrap();
        assert_eq!((ids(p), more), (vec![8, 6, 4], true));
        let (p, more) = ix
            .page(Some("even"), None, Some(JobId([4; 16])), 3)
            .unwrap();
        assert_eq!((ids(p), more), (vec![2, 0], false));
        let (p, _) = ix.page(None, None, None, 3).unwrap();
        assert_eq!(ids(p), vec![9, 8, 7]);
        let (p, _) = ix
            .page(Some("even"), Some(JobState::Running), None, 50)
            .unwrap();
        assert_eq!(ids(p), vec![8]);
        // Another key's job is no place to start a page from.
        assert!(ix
            .page(Some("even"), None, Some(JobId([3; 16])), 3)
            .is_none());
        assert!(ix
            .page(Some("nobody"), None, Some(JobId([3; 16])), 3)
            .is_none());
        assert_eq!(ix.oldest_finished("even", 2).len(), 2);
        assert_eq!(ix.oldest_finished("even", 2)[0].0, JobId([0; 16]));
        assert_eq!(ix.live(), vec![JobId([8; 16])]);
        assert_eq!(ix.expired(3).len(), 2);
    }
}
