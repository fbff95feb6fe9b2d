//! Job counts for `/metrics`, taken from the job index at scrape time
//! (`jobs/index.rs`), so a scrape costs the same however many jobs are
//! kept: jobs by state, the bytes of output kept on disk, and the jobs
//! seen ending since the gateway started, by outcome. Only the files of
//! jobs still running are looked at, since they are still growing.

use std::collections::BTreeMap;

use crate::jobs::JobStore;

/// What a scrape reports of the jobs.
#[derive(Debug, Default)]
pub struct JobCensus {
    /// State name → jobs in that state (every state present, 0 included).
    pub by_state: BTreeMap<&'static str, u64>,
    /// Bytes of stdout and stderr kept on disk.
    pub output_bytes: u64,
    /// Outcome → jobs seen ending since the gateway started.
    pub ended: BTreeMap<&'static str, u64>,
}

/// Counts the store's jobs from its index.
pub fn census(store: &JobStore) -> JobCensus {
    let (c, live) = {
        let index = store.index();
        (index.census(), index.live())
    };
    let live_bytes = live
        .iter()
        .map(|id| {
            let (o, e) = store.sizes(id);
            o.saturating_add(e)
        })
        .fold(0u64, u64::saturating_add);
    JobCensus {
        by_state: c.by_state,
        output_bytes: c.finished_bytes.saturating_add(live_bytes),
        ended: c.ended,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::{JobState, Meta};
    use protocol::JobId;

    #[test]
    fn jobs_created_through_the_store_are_counted_with_their_output() {
        let d = tempfile::tempdir().expect("tempdir");
        let store = JobStore::new(d.path()).expect("store");
        let a = JobId([1; 16]);
        let (mut out, _) = store
            .create(&a, &Meta::starting("k", "true", 1), 10)
            .expect("create");
        std::io::Write::write_all(&mut out, b"hello").expect("write");
        let b = JobId([2; 16]);
        let (mut out, _) = store
            .create(&b, &Meta::starting("k", "sleep 9", 1), 10)
            .expect("create");
        std::io::Write::write_all(&mut out, b"hi").expect("write");
        store
            .update(&a, |m| {
                m.state = JobState::Exited;
                m.exit_code = Some(3);
                m.ended_ms = Some(crate::clock::now_ms());
            })
            .expect("update");
        let c = census(&store);
        assert_eq!(c.by_state["exited"], 1);
        assert_eq!(c.by_state["starting"], 1);
        assert_eq!(c.by_state["cancelled"], 0);
        assert_eq!(c.output_bytes, 7);
        assert_eq!(c.ended, BTreeMap::from([("failure", 1)]));
    }
}
