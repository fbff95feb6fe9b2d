//! Single-flight: concurrent requests for the same thing share one run
//! of it, without any of them getting an answer older than itself.
//!
//! [`Flights::get`] for a key with nothing running starts a run at once.
//! A request that arrives while a run for its key is under way does not
//! join that run (it began before the request arrived, so its answer
//! could miss what the request should see): it waits for the next run,
//! which starts as soon as the current one ends and is shared by every
//! request that arrived meanwhile. So each answer comes from a run that
//! began after its request arrived, at most one run per key is under way,
//! and one answer value (cheap to clone: `Bytes`) serves them all.
//!
//! Runs happen in a task of their own, so a client that goes away does
//! not cancel the others' answer. If a run's task dies, its waiters get
//! the `lost` value and the key is free again.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

/// What a run returns.
pub type Run<V> = Pin<Box<dyn Future<Output = V> + Send>>;

type Walk<K, V> = Box<dyn Fn(K) -> Run<V> + Send + Sync>;

/// Runs of `walk`, shared per key.
pub struct Flights<K, V> {
    walk: Walk<K, V>,
    /// What a waiter gets if the run it waited for died.
    lost: V,
    /// A key is present while a run for it is under way; `Some` once a
    /// request waits for the run after it.
    slots: Mutex<HashMap<K, Option<watch::Sender<Option<V>>>>>,
}

impl<K, V> Flights<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// `walk(key)` is the run; `lost` answers a waiter whose run died.
    pub fn new(walk: impl Fn(K) -> Run<V> + Send + Sync + 'static, lost: V) -> Arc<Flights<K, V>> {
        Arc::new(Flights {
            walk: Box::new(walk),
            lost,
            slots: Mutex::default(),
        })
    }

    /// The answer of a run for `key` that begins after this call.
    pub async fn get(self: &Arc<Self>, key: K) -> V {
        let mut rx = {
            let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
            match slots.get_mut(&key) {
                Some(next) => next
                    .get_or_insert_with(|| watch::channel(None).0)
                    .subscribe(),
                None => {
                    slots.insert(key.clone(), None);
                    let (tx, rx) = watch::channel(None);
                    tokio::spawn(self.clone().fly(key, tx));
                    rx
                }
            }
        };
        loop {
            if let Some(v) = rx.borrow_and_update().clone() {
                return v;
            }
            if rx.changed().await.is_err() {
                return rx.borrow().clone().unwrap_or_else(|| self.lost.clone());
            }
        }
    }

    /// Runs for `key` back to back while requests keep waiting.
    async fn fly(self: Arc<Self>, key: K, first: watch::Sender<Option<V>>) {
        let mut free = Free {
            flights: &self,
            key: &key,
            done: false,
        };
        let mut tx = first;
        loop {
            let v = (self.walk)(key.clone()).await;
            let _ = tx.send(Some(v));
            let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
            match slots.get_mut(&key).and_then(Option::take) {
                Some(next) => tx = next,
                None => {
                    slots.remove(&key);
                    // Under the lock: a request arriving from now on
                    // starts a run of its own, which this must not free.
                    free.done = true;
                    return;
                }
            }
        }
    }
}

/// Frees the key if a run's task ends in any other way than done (its
/// waiters then see their sender dropped and get `lost`).
struct Free<'a, K: Hash + Eq, V> {
    flights: &'a Flights<K, V>,
    key: &'a K,
    done: bool,
}

impl<K: Hash + Eq, V> Drop for Free<'_, K, V> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let mut slots = self.flights.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots.remove(self.key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Duration;

    /// A run's number and how many requests had arrived when it began.
    type Counted = Arc<Flights<u8, (u64, u64)>>;

    /// Runs that say their number and the arrivals before them.
    fn counting() -> (Counted, Arc<AtomicU64>) {
        let arrived = Arc::new(AtomicU64::new(0));
        let runs = Arc::new(AtomicU64::new(0));
        let a = arrived.clone();
        let f = Flights::new(
            move |_key: u8| {
                let seen = a.load(Ordering::SeqCst);
                let n = runs.fetch_add(1, Ordering::SeqCst) + 1;
                Box::pin(async move {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    (n, seen)
                }) as Run<(u64, u64)>
            },
            (0, 0),
        );
        (f, arrived)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_requests_share_runs_that_began_after_they_arrived() {
        let (f, arrived) = counting();
        let mut tasks = Vec::new();
        for _ in 0..16 {
            let (f, arrived) = (f.clone(), arrived.clone());
            tasks.push(tokio::spawn(async move {
                let me = arrived.fetch_add(1, Ordering::SeqCst) + 1;
                let (run, seen) = f.get(1).await;
                (me, run, seen)
            }));
        }
        let mut runs = std::collections::HashSet::new();
        for t in tasks {
            let (me, run, seen) = t.await.expect("task");
            // The run began after this request arrived.
            assert!(
                seen >= me,
                "request {me} got run {run} that began at {seen}"
            );
            runs.insert(run);
        }
        assert!(runs.len() < 16, "16 requests took {} runs", runs.len());
        // The key is free again: the next request starts a new run.
        let (run, _) = f.get(1).await;
        assert!(!runs.contains(&run));
    }

    #[tokio::test]
    async fn a_run_that_dies_answers_lost_and_frees_the_key() {
        let f: Arc<Flights<u8, u8>> = Flights::new(
            |k| {
                Box::pin(async move {
                    assert!(k != 0, "run for key 0 dies");
                    k
                }) as Run<u8>
            },
            255,
        );
        assert_eq!(f.get(0).await, 255);
        assert_eq!(f.get(7).await, 7);
        assert_eq!(f.get(0).await, 255);
    }
}
