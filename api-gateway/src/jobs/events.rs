//! The helper's job events: a thread that keeps one subscribed connection
//! to the helper (`Request::Subscribe`) and, for every job that ends,
//! records the final state in its `meta.json` and wakes the job's waiters
//! through the [`Hub`]. So a job's end is seen when it happens, whether or
//! not anyone asks, and no waiter polls.
//!
//! After each (re)connection it first subscribes, then asks the helper
//! once about every job still recorded as live, so an end that happened
//! while it was disconnected is not missed. A helper that stops sends the
//! end of each job it kills before it closes, so those are recorded with
//! their real time and signal while it is away; a job the helper no
//! longer knows (one that died without a word) is recorded as killed when
//! it is back, with no signal, since none is known; a live
//! job whose record does not name its uid yet (written by an older
//! gateway) gets it, and enters the [`Owners`] map.

use std::path::PathBuf;
use std::time::Duration;

use protocol::{Isolation, JobId, JobStatus, Request, Response};

use super::hub::Hub;
use super::meta::JobState;
use super::owners::Owners;
use super::store::JobStore;
use crate::clock::now_ms;
use crate::helper::{Connection, Helper};

/// Wait between attempts to reach the helper.
const RETRY: Duration = Duration::from_secs(1);

/// Starts the thread, which runs until the process exits, and waits (at
/// most `ready_within`) for its first attempt to subscribe, so that jobs
/// started once the server accepts requests cannot end unheard.
pub fn spawn(
    socket: PathBuf,
    store: JobStore,
    helper: Helper,
    hub: Hub,
    owners: Owners,
    ready_within: Duration,
) {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel::<()>();
    let spawned = std::thread::Builder::new()
        .name("job-events".into())
        .spawn(move || loop {
            let subscribed =
                Connection::connect(&socket, Duration::from_secs(5)).and_then(|c| c.subscribe());
            let _ = ready_tx.send(());
            match subscribed {
                Ok(mut events) => {
                    resync(&store, &helper, &hub, &owners);
                    while let Ok((job, status)) = events.recv() {
                        ended(&store, &hub, &owners, job, &status);
                    }
                }
                Err(_) => {
                    // Jobs cannot end unseen while the helper is away for
                    // good; when it is back, resync catches up.
                }
            }
            std::thread::sleep(RETRY);
        });
    match spawned {
        Ok(_) => {
            let _ = ready_rx.recv_timeout(ready_within);
        }
        Err(e) => eprintln!("monitoreo-gateway: starting the job-events thread: {e}"),
    }
}

/// Records `status`, the end of `job`, and wakes its waiters.
pub fn ended(store: &JobStore, hub: &Hub, owners: &Owners, job: JobId, status: &JobStatus) {
    if let Err(e) = store.update(&job, |m| m.apply(status)) {
        eprintln!("monitoreo-gateway: job {job}: writing meta: {e}");
    }
    owners.ended(job);
    hub.unwatch(&job);
}

/// Asks the helper about every job recorded as live.
fn resync(store: &JobStore, helper: &Helper, hub: &Hub, owners: &Owners) {
    let shared_uid = match helper.call(&Request::Info, &[]) {
        Ok(Response::Info(info)) => Some(info.isolation == Isolation::SharedUser),
        _ => None,
    };
    let live = store.index().live();
    for job in live {
        let Ok(Some(meta)) = store.meta(&job) else {
            continue;
        };
        match helper.call(&Request::JobStatus { job }, &[]) {
            Ok(Response::Job(s)) if s.state != protocol::JobState::Running => {
                ended(store, hub, owners, job, &s)
            }
            Ok(Response::Job(s)) => {
                hub.watch(job, &store.dir(&job));
                if let (None, Some(shared_uid)) = (meta.uid, shared_uid) {
                    match store.update(&job, |m| {
                        m.apply(&s);
                        m.shared_uid = shared_uid;
                    }) {
                        Ok(Some(m)) => owners.started(job, &m),
                        Ok(None) => {}
                        Err(e) => eprintln!("monitoreo-gateway: job {job}: writing meta: {e}"),
                    }
                }
            }
            Ok(Response::Invalid { .. }) => {
                // The helper does not know it: it restarted, and a helper
                // kills its jobs when it stops.
                let marked = store.update(&job, |m| {
                    if m.state.is_live() {
                        m.state = JobState::Killed;
                        m.ended_ms = Some(now_ms());
                    }
                });
                if let Err(e) = marked {
                    eprintln!("monitoreo-gateway: job {job}: writing meta: {e}");
                }
                owners.ended(job);
                hub.unwatch(&job);
            }
            _ => {}
        }
    }
}
