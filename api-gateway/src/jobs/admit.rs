//! Whether a key may start one more job, decided from the [`Index`] alone
//! so that one key's records cost the others nothing: every key is a
//! tenant with its own running jobs, output and records, inside the
//! store's total (`output_quota`). The decision names the finished
//! records a key over its record limit gives up, so that nothing is
//! deleted for a start that is then refused.

use protocol::JobId;

use super::index::Index;
use crate::error::ApiError;

/// The configured limits (`gateway.toml`).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// What the whole store may hold (`output_quota`).
    pub output_quota: u64,
    /// What one key's jobs may hold (`key_output_quota`).
    pub key_output_quota: u64,
    /// Jobs one key may run at once (`key_max_running_jobs`); `None`:
    /// half the helper's `max_jobs`, so that one key never holds every
    /// slot.
    pub key_max_running_jobs: Option<usize>,
    /// Records one key keeps (`key_max_job_records`).
    pub key_max_job_records: usize,
}

impl Limits {
    /// The running-job limit that holds for a helper running at most
    /// `max_jobs`. Never above the record limit: a key at its record
    /// limit always has a finished record to give up.
    pub fn running(&self, max_jobs: u32) -> usize {
        let auto = usize::try_from(max_jobs / 2).unwrap_or(usize::MAX).max(1);
        self.key_max_running_jobs
            .unwrap_or(auto)
            .min(self.key_max_job_records)
            .max(1)
    }
}

/// Decides whether `owner` may start a job that may write `needed` bytes,
/// with the helper at `max_jobs`. `Ok` holds the finished jobs to delete
/// first (oldest first) to keep the key within its record limit.
pub fn admit(
    index: &Index,
    limits: &Limits,
    owner: &str,
    needed: u64,
    max_jobs: u32,
) -> Result<Vec<JobId>, ApiError> {
    let usage = index.usage(owner);
    let running_limit = limits.running(max_jobs);
    if usage.running >= running_limit {
        return Err(ApiError::KeyBusy {
            key: owner.to_string(),
            running: usage.running,
            limit: running_limit,
        });
    }
    let over = (usage.records + 1).saturating_sub(limits.key_max_job_records.max(1));
    let evicted = index.oldest_finished(owner, over);
    let freed = evicted
        .iter()
        .map(|(_, b)| *b)
        .fold(0u64, u64::saturating_add);
    let key_committed = usage.committed.saturating_sub(freed);
    if key_committed.saturating_add(needed) > limits.key_output_quota {
        return Err(ApiError::KeyOutputQuotaFull {
            key: owner.to_string(),
            committed: key_committed,
            needed,
            quota: limits.key_output_quota,
        });
    }
    let committed = index.committed().saturating_sub(freed);
    if committed.saturating_add(needed) > limits.output_quota {
        return Err(ApiError::OutputQuotaFull {
            committed,
            needed,
            quota: limits.output_quota,
        });
    }
    Ok(evicted.into_iter().map(|(id, _)| id).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::{JobState, Meta};

    const LIMITS: Limits = Limits {
        output_quota: 1000,
        key_output_quota: 300,
        key_max_running_jobs: None,
        key_max_job_records: 3,
    };

    fn job(ix: &mut Index, n: u8, owner: &str, state: JobState, bytes: u64) -> JobId {
        let id = JobId([n; 16]);
        let meta = Meta {
            state,
            ..Meta::starting(owner, "true", u64::from(n))
        };
        ix.insert(id, &meta, bytes);
        id
    }

    #[test]
    fn a_key_runs_at_most_half_the_slots_by_default() {
        assert_eq!(LIMITS.running(8), 3, "never above the record limit");
        let wide = Limits {
            key_max_job_records: 100,
            ..LIMITS
        };
        assert_eq!((wide.running(8), wide.running(1)), (4, 1));
        let mut ix = Index::default();
        for n in 0..2 {
            job(&mut ix, n, "b", JobState::Running, 10);
        }
        let e = admit(&ix, &wide, "b", 10, 4).unwrap_err();
        assert_eq!(e.code(), "key_busy");
        assert!(e.to_string().contains("runs 2 jobs"), "{e}");
        assert!(admit(&ix, &wide, "a", 10, 4).is_ok());
    }

    #[test]
    fn quotas_are_per_key_within_the_total() {
        let mut ix = Index::default();
        job(&mut ix, 1, "b", JobState::Exited, 250);
        let e = admit(&ix, &LIMITS, "b", 100, 8).unwrap_err();
        assert_eq!(e.code(), "key_output_quota_full");
        let text = e.to_string();
        assert!(text.contains("\"b\"") && text.contains("250") && text.contains("300"));
        assert!(admit(&ix, &LIMITS, "a", 100, 8).is_ok());
        job(&mut ix, 2, "c", JobState::Exited, 400);
        job(&mut ix, 3, "d", JobState::Exited, 400);
        let e = admit(&ix, &LIMITS, "a", 100, 8).unwrap_err();
        assert_eq!(e.code(), "output_quota_full");
    }

    #[test]
    fn over_its_record_limit_a_key_gives_up_its_oldest_finished_records() {
        let mut ix = Index::default();
        let live = job(&mut ix, 1, "b", JobState::Running, 100);
        let old = job(&mut ix, 2, "b", JobState::Exited, 150);
        job(&mut ix, 3, "b", JobState::Exited, 10);
        job(&mut ix, 4, "a", JobState::Exited, 10);
        // Full of bytes too: only the eviction makes room.
        assert_eq!(admit(&ix, &LIMITS, "b", 100, 8).unwrap(), vec![old]);
        assert!(!admit(&ix, &LIMITS, "b", 100, 8).unwrap().contains(&live));
        assert!(admit(&ix, &LIMITS, "a", 100, 8).unwrap().is_empty());
    }
}
