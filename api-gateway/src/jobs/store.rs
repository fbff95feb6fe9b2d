//! Job output store: `state_dir/jobs/<id>/{out,err,meta.json}`, created by
//! the gateway (0700 dirs, 0600 files) whose `out`/`err` descriptors are
//! handed to the helper. `meta.json` records the owner key, pid, times and
//! the last state seen ([`Meta`]), so output and status survive a gateway
//! or helper restart. Ids are only ever built from a parsed [`JobId`],
//! never from client text, so no path traversal is possible.
//!
//! Every change to a record goes through here, so the [`Index`] in memory
//! changes with the disk: it is read from the records once, in
//! [`JobStore::new`], and never by walking the directories again.

use std::fs::File;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use protocol::JobId;

use super::index::Index;
use super::meta::Meta;
use crate::clock::now_ms;

#[derive(Debug, Clone)]
pub struct JobStore {
    root: PathBuf,
    /// Held while a job is admitted and created, so two starts cannot both
    /// fit under the quota that only one of them fits under.
    admission: Arc<Mutex<()>>,
    /// Held while a `meta.json` is read, changed and written: the request
    /// that started a job and the thread that hears its end both update it.
    /// Taken before `index`, never after.
    writes: Arc<Mutex<()>>,
    index: Arc<Mutex<Index>>,
}

/// Which output stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    /// The file name in the job directory.
    pub fn file(self) -> &'static str {
        match self {
            Stream::Stdout => "out",
            Stream::Stderr => "err",
        }
    }

    /// The served name (`stdout`, `stderr`).
    pub fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

impl JobStore {
    pub fn new(state_dir: &Path) -> std::io::Result<JobStore> {
        let root = state_dir.join("jobs");
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&root)?;
        let store = JobStore {
            root,
            admission: Arc::default(),
            writes: Arc::default(),
            index: Arc::new(Mutex::new(Index::since(now_ms()))),
        };
        store.load();
        Ok(store)
    }

    /// Builds the index from the records on disk: the one walk of the job
    /// directories. A live job counts its ceiling as recorded (or, before
    /// the helper told it, what it wrote so far: the first start after
    /// this asks the helper for the ceiling again).
    fn load(&self) {
        let Ok(rd) = std::fs::read_dir(&self.root) else {
            return;
        };
        let mut index = self.index();
        for e in rd.flatten() {
            let Some(id) = e.file_name().to_str().and_then(crate::ids::job_id) else {
                continue;
            };
            let Ok(Some(meta)) = self.meta(&id) else {
                continue;
            };
            let (o, r) = self.sizes(&id);
            let written = o.saturating_add(r);
            let bytes = match meta.output_limit {
                Some(l) if meta.state.is_live() => written.max(l.saturating_mul(2)),
                _ => written,
            };
            index.insert(id, &meta, bytes);
        }
    }

    /// Every indexed job's record, read from disk: for start-up only (the
    /// owners map is seeded from it), never per request.
    pub fn records(&self) -> Vec<(JobId, Meta)> {
        let ids: Vec<JobId> = self.index().ids();
        ids.into_iter()
            .filter_map(|id| Some((id, self.meta(&id).ok().flatten()?)))
            .collect()
    }

    /// The index, locked. Never held across file I/O but the store's own.
    pub fn index(&self) -> MutexGuard<'_, Index> {
        self.index.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Serializes job admission (quota check, then creation).
    pub fn admission(&self) -> MutexGuard<'_, ()> {
        self.admission.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The job's directory (built from a parsed id only).
    pub fn dir(&self, id: &JobId) -> PathBuf {
        self.root.join(id.to_hex())
    }

    /// The path of one output file.
    pub fn output_path(&self, id: &JobId, s: Stream) -> PathBuf {
        self.dir(id).join(s.file())
    }

    /// Bytes written so far to stdout and stderr.
    pub fn sizes(&self, id: &JobId) -> (u64, u64) {
        let len = |s| {
            std::fs::metadata(self.output_path(id, s))
                .map(|m| m.len())
                .unwrap_or(0)
        };
        (len(Stream::Stdout), len(Stream::Stderr))
    }

    /// Makes the job directory and its two output files; returns them open
    /// for writing (to pass to the helper). The job counts `reserve` bytes
    /// (its output ceiling) until the helper says what its own is.
    pub fn create(&self, id: &JobId, meta: &Meta, reserve: u64) -> std::io::Result<(File, File)> {
        let dir = self.dir(id);
        std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
        let open = |name: &str| {
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(dir.join(name))
        };
        let out = open("out")?;
        let err = open("err")?;
        let _w = self.writes.lock().unwrap_or_else(|p| p.into_inner());
        self.write_file(id, meta)?;
        self.index().insert(*id, meta, reserve);
        Ok((out, err))
    }

    /// Reads the job's record, lets `change` edit it and writes it back, with
    /// no other update in between; `None` if there is no such job.
    pub fn update(
        &self,
        id: &JobId,
        change: impl FnOnce(&mut Meta),
    ) -> std::io::Result<Option<Meta>> {
        let _w = self.writes.lock().unwrap_or_else(|p| p.into_inner());
        let Some(mut meta) = self.meta(id)? else {
            return Ok(None);
        };
        change(&mut meta);
        // The index first: whoever reads the new record on disk (a client
        // told the job ended) finds the index already counting it so.
        self.index().update(*id, &meta, || {
            let (o, e) = self.sizes(id);
            o.saturating_add(e)
        });
        self.write_file(id, &meta)?;
        Ok(Some(meta))
    }

    /// Temp file then rename, so a reader sees the old record or the new,
    /// never a part.
    fn write_file(&self, id: &JobId, meta: &Meta) -> std::io::Result<()> {
        let dir = self.dir(id);
        let tmp = dir.join("meta.json.tmp");
        let body = serde_json::to_vec(meta).map_err(std::io::Error::other)?;
        {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)?;
            std::io::Write::write_all(&mut f, &body)?;
        }
        std::fs::rename(tmp, dir.join("meta.json"))
    }

    /// The job's metadata, `None` if there is no such job.
    pub fn meta(&self, id: &JobId) -> std::io::Result<Option<Meta>> {
        match std::fs::read(self.dir(id).join("meta.json")) {
            Ok(b) => Ok(serde_json::from_slice(&b).ok()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Deletes the job's record and output, from the disk and the index;
    /// `false` if the index did not hold it (another request was first).
    pub fn remove(&self, id: &JobId) -> bool {
        let _w = self.writes.lock().unwrap_or_else(|p| p.into_inner());
        let held = self.index().remove(*id).is_some();
        let _ = std::fs::remove_dir_all(self.dir(id));
        held
    }

    /// Deletes jobs that ended (or, if their end was never seen, were
    /// created) more than `retention` ago. A job cannot outlive the policy's
    /// timeout, so an old `running` record is one whose end was missed.
    /// Returns how many were removed.
    pub fn sweep(&self, retention: Duration) -> usize {
        let cutoff = now_ms().saturating_sub(retention.as_millis() as u64);
        let expired = self.index().expired(cutoff);
        for id in &expired {
            self.remove(id);
        }
        expired.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::JobState;

    #[test]
    fn sweep_removes_only_old_jobs_and_files_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let store = JobStore::new(d.path()).unwrap();
        let meta = |created_ms| Meta {
            state: JobState::Exited,
            exit_code: Some(0),
            ..Meta::starting("k", "true", created_ms)
        };
        let old = JobId([1; 16]);
        let new = JobId([2; 16]);
        store.create(&old, &meta(1), 0).unwrap();
        store.create(&new, &meta(now_ms()), 0).unwrap();
        let p = d.path().join("jobs").join(new.to_hex()).join("out");
        assert_eq!(
            std::fs::metadata(p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(store.sweep(Duration::from_secs(3600)), 1);
        assert!(store.meta(&old).unwrap().is_none());
        assert!(store.meta(&new).unwrap().is_some());
        assert_eq!(store.index().usage("k").records, 1);
    }

    #[test]
    fn the_index_is_rebuilt_from_the_records_on_disk() {
        let d = tempfile::tempdir().unwrap();
        let store = JobStore::new(d.path()).unwrap();
        let done = JobId([1; 16]);
        let live = JobId([2; 16]);
        let (mut out, _) = store
            .create(&done, &Meta::starting("k", "echo", 1), 100)
            .unwrap();
        std::io::Write::write_all(&mut out, b"four").unwrap();
        store
            .update(&done, |m| {
                m.state = JobState::Exited;
                m.ended_ms = Some(2);
            })
            .unwrap();
        store
            .create(&live, &Meta::starting("k", "sleep", 3), 100)
            .unwrap();
        store.update(&live, |m| m.output_limit = Some(30)).unwrap();
        let usage = store.index().usage("k");
        assert_eq!((usage.records, usage.running, usage.committed), (2, 1, 64));
        let again = JobStore::new(d.path()).unwrap();
        assert_eq!(again.index().usage("k"), usage);
        store.remove(&done);
        assert!(!d.path().join("jobs").join(done.to_hex()).exists());
        assert_eq!(store.index().usage("k").records, 1);
    }
}
