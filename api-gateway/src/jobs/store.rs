//! Job output store: `state_dir/jobs/<id>/{out,err,meta.json}`, created by
//! the gateway (0700 dirs, 0600 files) whose `out`/`err` descriptors are
//! handed to the helper. `meta.json` records the owner key, pid, times and
//! the last state seen ([`Meta`]), so output and status survive a gateway
//! or helper restart. Ids are only ever built from a parsed [`JobId`],
//! never from client text, so no path traversal is possible.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use protocol::JobId;

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
    writes: Arc<Mutex<()>>,
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

/// Output read back: lossy text plus whether it was lossy.
pub struct Output {
    pub text: String,
    pub invalid_utf8: bool,
    pub len: u64,
}

fn read_output(p: &Path) -> std::io::Result<Output> {
    let mut buf = Vec::new();
    match File::open(p) {
        Ok(mut f) => {
            f.read_to_end(&mut buf)?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let len = buf.len() as u64;
    match String::from_utf8(buf) {
        Ok(text) => Ok(Output {
            text,
            invalid_utf8: false,
            len,
        }),
        Err(e) => Ok(Output {
            text: String::from_utf8_lossy(e.as_bytes()).into_owned(),
            invalid_utf8: true,
            len,
        }),
    }
}

impl JobStore {
    pub fn new(state_dir: &Path) -> std::io::Result<JobStore> {
        let root = state_dir.join("jobs");
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&root)?;
        Ok(JobStore {
            root,
            admission: Arc::default(),
            writes: Arc::default(),
        })
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

    /// Every job with a readable record, in no particular order.
    pub fn list(&self) -> Vec<(JobId, Meta)> {
        let Ok(rd) = std::fs::read_dir(&self.root) else {
            return Vec::new();
        };
        rd.flatten()
            .filter_map(|e| {
                let id = e.file_name().to_str().and_then(JobId::from_hex)?;
                let meta = self.meta(&id).ok().flatten()?;
                Some((id, meta))
            })
            .collect()
    }

    /// Bytes the store holds or may soon hold: every job's output so far,
    /// plus, for each job that may still write, what it may still write up
    /// to its ceiling (`per_stream_ceiling` when its own is not known yet).
    pub fn committed_bytes(&self, per_stream_ceiling: u64) -> u64 {
        self.list()
            .into_iter()
            .map(|(id, m)| {
                let (o, e) = self.sizes(&id);
                let written = o.saturating_add(e);
                if m.state.is_live() {
                    let limit = m.output_limit.unwrap_or(per_stream_ceiling);
                    written.max(limit.saturating_mul(2))
                } else {
                    written
                }
            })
            .fold(0u64, u64::saturating_add)
    }

    /// Makes the job directory and its two output files; returns them open
    /// for writing (to pass to the helper).
    pub fn create(&self, id: &JobId, meta: &Meta) -> std::io::Result<(File, File)> {
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
        self.write_meta(id, meta)?;
        Ok((out, err))
    }

    /// Writes `meta` whole (a new job's first record).
    pub fn write_meta(&self, id: &JobId, meta: &Meta) -> std::io::Result<()> {
        let _w = self.writes.lock().unwrap_or_else(|p| p.into_inner());
        self.write_file(id, meta)
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

    pub fn outputs(&self, id: &JobId) -> std::io::Result<(Output, Output)> {
        let d = self.dir(id);
        Ok((read_output(&d.join("out"))?, read_output(&d.join("err"))?))
    }

    pub fn remove(&self, id: &JobId) {
        let _ = std::fs::remove_dir_all(self.dir(id));
    }

    /// Deletes jobs that ended (or, if their end was never seen, were
    /// created) more than `retention` ago. A job cannot outlive the policy's
    /// timeout, so an old `running` record is one whose end was missed.
    /// Returns how many were removed.
    pub fn sweep(&self, retention: Duration) -> usize {
        let cutoff = now_ms().saturating_sub(retention.as_millis() as u64);
        let Ok(rd) = std::fs::read_dir(&self.root) else {
            return 0;
        };
        let mut n = 0;
        for e in rd.flatten() {
            let name = e.file_name();
            let Some(id) = name.to_str().and_then(JobId::from_hex) else {
                continue;
            };
            if let Ok(Some(m)) = self.meta(&id) {
                let t = m.ended_ms.unwrap_or(m.created_ms);
                if t < cutoff {
                    self.remove(&id);
                    n += 1;
                }
            }
        }
        n
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
        store.create(&old, &meta(1)).unwrap();
        store.create(&new, &meta(now_ms())).unwrap();
        let p = d.path().join("jobs").join(new.to_hex()).join("out");
        assert_eq!(
            std::fs::metadata(p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(store.sweep(Duration::from_secs(3600)), 1);
        assert!(store.meta(&old).unwrap().is_none());
        assert!(store.meta(&new).unwrap().is_some());
    }
}
