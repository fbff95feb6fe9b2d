//! Request ids: one `u64` per HTTP request, printed as 16 lowercase hex
//! digits (0 means "none"), exactly as the helper prints the id it finds in
//! a frame's `Envelope`. The same id is the audit line's `request_id`, the
//! `X-Request-Id` response header and the `request_id` of every helper
//! decision line the request caused, so one search joins both logs.
//!
//! Ids are a per-process random base plus a counter: unique for the
//! life of the process, unpredictable across restarts, and cheap (no
//! system call per request).
//!
//! The id of the request being served travels as context, not as an
//! argument through every layer: the router runs each request inside
//! [`scope`] (a task-local), [`carry`] hands it to the blocking thread a
//! handler moves work to, and [`current`] is what the helper client reads
//! when it tags a frame. So a helper call made anywhere on behalf of a
//! request carries that request's id.

use std::cell::Cell;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};

tokio::task_local! {
    static CURRENT: u64;
}

thread_local! {
    static ON_THIS_THREAD: Cell<u64> = const { Cell::new(0) };
}

/// Makes request ids.
pub struct RequestIds {
    base: u64,
    next: AtomicU64,
}

impl RequestIds {
    /// A generator with a random base (a fixed one if the OS random
    /// generator fails: ids are then still unique, only predictable).
    pub fn new() -> RequestIds {
        let mut raw = [0u8; 8];
        let base = match ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut raw)
        {
            Ok(()) => u64::from_le_bytes(raw),
            Err(_) => 0x6d6f_6e69_746f_7200,
        };
        RequestIds {
            base,
            next: AtomicU64::new(1),
        }
    }

    /// A fresh id, never 0.
    pub fn fresh(&self) -> u64 {
        loop {
            let n = self.next.fetch_add(1, Ordering::Relaxed);
            let id = self.base.wrapping_add(n);
            if id != 0 {
                return id;
            }
        }
    }
}

impl Default for RequestIds {
    fn default() -> Self {
        RequestIds::new()
    }
}

/// The printed form: 16 lowercase hex digits.
pub fn hex(id: u64) -> String {
    format!("{id:016x}")
}

/// Runs `f` as request `id`.
pub async fn scope<F: Future>(id: u64, f: F) -> F::Output {
    CURRENT.scope(id, f).await
}

/// The id of the request being served on this task or, inside
/// [`carry`], on this blocking thread; 0 outside any request.
pub fn current() -> u64 {
    CURRENT
        .try_with(|id| *id)
        .unwrap_or_else(|_| ON_THIS_THREAD.with(Cell::get))
}

/// Wraps `f` so that, wherever it runs (a blocking thread), [`current`]
/// inside it is the id current where `carry` was called.
pub fn carry<T>(f: impl FnOnce() -> T) -> impl FnOnce() -> T {
    let id = current();
    move || {
        let before = ON_THIS_THREAD.with(|c| c.replace(id));
        let out = f();
        ON_THIS_THREAD.with(|c| c.set(before));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_distinct_nonzero_and_printed_as_16_hex_digits() {
        let ids = RequestIds::new();
        let a = ids.fresh();
        let b = ids.fresh();
        assert_ne!(a, b);
        assert_ne!(a, 0);
        assert_eq!(hex(0x4d2), "00000000000004d2");
        assert_eq!(hex(a).len(), 16);
    }

    #[tokio::test]
    async fn the_id_follows_the_request_onto_a_blocking_thread() {
        assert_eq!(current(), 0);
        let seen = scope(42, async {
            tokio::task::spawn_blocking(carry(current))
                .await
                .expect("joined")
        })
        .await;
        assert_eq!(seen, 42);
        assert_eq!(current(), 0);
    }
}
