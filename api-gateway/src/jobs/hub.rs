//! Change notification for jobs: whoever waits on a job (a live follower,
//! a long-poll) holds a [`Change`] and wakes when the job's output files
//! are written to or the job ends — no polling loop.
//!
//! Writes are seen through one inotify instance for the whole gateway,
//! with a watch on each running job's directory (added when the job
//! starts, removed when it ends); the end comes from the helper's event
//! stream (`jobs::events`). Both bump the job's counter in a
//! `tokio::sync::watch` channel, which every waiter of that job sees.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use inotify::{Inotify, WatchDescriptor, WatchMask, Watches};
use protocol::JobId;
use tokio::sync::watch;

/// Waits for a change of one job.
pub struct Change {
    rx: watch::Receiver<u64>,
}

impl Change {
    /// Returns once the job changed since this `Change` was made or last
    /// returned (at once if it already did).
    pub async fn changed(&mut self) {
        // An error means the hub is gone (shutdown): nothing will change.
        if self.rx.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

#[derive(Default)]
struct Inner {
    channels: HashMap<JobId, watch::Sender<u64>>,
    watches: HashMap<JobId, WatchDescriptor>,
    by_wd: HashMap<WatchDescriptor, JobId>,
}

/// The per-job channels and the inotify watches.
#[derive(Clone)]
pub struct Hub {
    inner: Arc<Mutex<Inner>>,
    watches: Option<Watches>,
}

impl Hub {
    /// A hub with its inotify reader running on the current tokio runtime.
    /// Without inotify (should not happen on Linux) waiters still wake on
    /// job ends and on their own timeouts; the cause is logged.
    pub fn start() -> Hub {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let watches = match Inotify::init() {
            Ok(inotify) => {
                let watches = inotify.watches();
                match inotify.into_event_stream(vec![0u8; 4096]) {
                    Ok(stream) => {
                        tokio::spawn(read_events(stream, inner.clone()));
                        Some(watches)
                    }
                    Err(e) => {
                        eprintln!("monitoreo-gateway: inotify stream: {e}; live output falls back to job ends");
                        None
                    }
                }
            }
            Err(e) => {
                eprintln!("monitoreo-gateway: inotify: {e}; live output falls back to job ends");
                None
            }
        };
        Hub { inner, watches }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A waiter for `job`'s next change.
    pub fn subscribe(&self, job: JobId) -> Change {
        let mut inner = self.lock();
        let tx = inner
            .channels
            .entry(job)
            .or_insert_with(|| watch::channel(0).0);
        Change { rx: tx.subscribe() }
    }

    /// Wakes every waiter of `job`.
    pub fn bump(&self, job: &JobId) {
        bump(&mut self.lock(), job);
    }

    /// Starts watching the output files in `dir` (a running job's).
    pub fn watch(&self, job: JobId, dir: &Path) {
        let Some(w) = &self.watches else { return };
        let mut w = w.clone();
        match w.add(dir, WatchMask::MODIFY | WatchMask::CLOSE_WRITE) {
            Ok(wd) => {
                let mut inner = self.lock();
                inner.by_wd.insert(wd.clone(), job);
                inner.watches.insert(job, wd);
            }
            Err(e) => eprintln!("monitoreo-gateway: watching job {job}: {e}"),
        }
    }

    /// Stops watching `job` (it ended) and wakes its waiters a last time.
    pub fn unwatch(&self, job: &JobId) {
        let wd = {
            let mut inner = self.lock();
            bump(&mut inner, job);
            let wd = inner.watches.remove(job);
            if let Some(wd) = &wd {
                inner.by_wd.remove(wd);
            }
            wd
        };
        if let (Some(wd), Some(w)) = (wd, &self.watches) {
            // Fails harmlessly when the directory is already gone.
            let _ = w.clone().remove(wd);
        }
    }
}

fn bump(inner: &mut Inner, job: &JobId) {
    if let Some(tx) = inner.channels.get(job) {
        if tx.receiver_count() == 0 {
            inner.channels.remove(job);
        } else {
            tx.send_modify(|n| *n = n.wrapping_add(1));
        }
    }
}

/// Turns inotify events into bumps of the job whose directory they are in.
async fn read_events(mut stream: inotify::EventStream<Vec<u8>>, inner: Arc<Mutex<Inner>>) {
    use futures_util::StreamExt;
    while let Some(event) = stream.next().await {
        let Ok(event) = event else { continue };
        let mut inner = inner.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(job) = inner.by_wd.get(&event.wd).copied() {
            bump(&mut inner, &job);
        }
    }
}
