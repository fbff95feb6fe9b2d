//! Job counts for `/metrics`, read from the job store at scrape time.
//!
//! The store's layout (`<state_dir>/jobs/<32 hex>/{out,err,meta.json}`,
//! see `jobs/store.rs`) is what is counted: jobs by state, the bytes of
//! output kept on disk, and the finished jobs with their outcome. A job
//! whose record still says `starting` or `running` is asked about through
//! the `live` callback (the helper), since its record is only brought up
//! to date when someone reads its output. A test in this file creates
//! jobs through `JobStore` so a change of layout fails here.

use std::collections::BTreeMap;
use std::path::Path;

use protocol::JobId;

use crate::jobs::{JobState, JobStore, Meta};

/// How a finished job ended, as a label value.
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

/// What a scan found.
#[derive(Debug, Default)]
pub struct JobCensus {
    /// State name → jobs in that state (every state present, 0 included).
    pub by_state: BTreeMap<&'static str, u64>,
    /// Bytes of stdout and stderr kept on disk.
    pub output_bytes: u64,
    /// Finished jobs: id, outcome, end (Unix ms).
    pub finished: Vec<(JobId, &'static str, u64)>,
}

/// Scans the job directories under `root` (`<state_dir>/jobs`).
pub fn scan(
    root: &Path,
    store: &JobStore,
    live: &dyn Fn(JobId) -> Option<protocol::JobStatus>,
) -> JobCensus {
    let mut c = JobCensus::default();
    for s in JobState::ALL {
        c.by_state.insert(s.name(), 0);
    }
    let Ok(rd) = std::fs::read_dir(root) else {
        return c;
    };
    for e in rd.flatten() {
        let name = e.file_name();
        let Some(id) = name.to_str().and_then(JobId::from_hex) else {
            continue;
        };
        let Ok(Some(mut meta)) = store.meta(&id) else {
            continue;
        };
        if meta.state.is_live() {
            if let Some(s) = live(id) {
                meta.apply(&s);
            }
        }
        *c.by_state.entry(meta.state.name()).or_default() += 1;
        for f in ["out", "err"] {
            c.output_bytes += std::fs::metadata(e.path().join(f)).map_or(0, |m| m.len());
        }
        if let Some(o) = outcome(&meta) {
            c.finished
                .push((id, o, meta.ended_ms.unwrap_or(meta.created_ms)));
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_created_through_the_store_are_counted_with_their_output() {
        let d = tempfile::tempdir().expect("tempdir");
        let store = JobStore::new(d.path()).expect("store");
        let mut m = Meta::starting("k", "true", 1);
        let a = JobId([1; 16]);
        let (mut out, _) = store.create(&a, &m).expect("create");
        std::io::Write::write_all(&mut out, b"hello").expect("write");
        m.state = JobState::Exited;
        m.exit_code = Some(3);
        m.ended_ms = Some(5);
        store.write_meta(&a, &m).expect("meta");
        let b = JobId([2; 16]);
        store
            .create(&b, &Meta::starting("k", "sleep 9", 1))
            .expect("create");
        let c = scan(&d.path().join("jobs"), &store, &|_| None);
        assert_eq!(c.by_state["exited"], 1);
        assert_eq!(c.by_state["starting"], 1);
        assert_eq!(c.by_state["cancelled"], 0);
        assert_eq!(c.output_bytes, 5);
        assert_eq!(c.finished, vec![(a, "failure", 5)]);
    }
}
