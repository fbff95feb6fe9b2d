//! Who gets a connection slot. Two caps, checked when a connection is
//! accepted and held until its socket is closed (TLS handshake, requests
//! and the lingering close included):
//!
//! - `max_connections` for everyone, by default sized from the
//!   descriptor limit (`config::default_max_connections`), so the cap is
//!   reached before the process runs out of descriptors;
//! - `max_connections_per_client` for one client address (an IPv6 client
//!   by its /64, which one host usually holds whole), so one peer cannot
//!   take every slot.
//!
//! A connection past a cap is not left waiting in the backlog, where it
//! would look like a dead server: it is answered (503, or 429 for the
//! per-client cap, with `Retry-After`) and closed. Those answers take
//! slots of their own from a small separate pool ([`REFUSAL_SLOTS`]); when
//! that is exhausted too, the connection is closed without an answer.

use crate::throttle::client_key;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Connections being refused with an answer at once.
pub const REFUSAL_SLOTS: usize = 64;

/// Why a connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// `max_connections` reached.
    Full,
    /// This client holds `max_connections_per_client` already.
    PerClient,
}

/// The counters.
pub struct Admission {
    max: usize,
    per_client_max: usize,
    open: AtomicUsize,
    refusing: AtomicUsize,
    per_client: Mutex<HashMap<IpAddr, usize>>,
}

/// One admitted connection; dropping it gives the slot back.
pub struct Slot {
    admission: Arc<Admission>,
    key: IpAddr,
}

/// One connection being refused with an answer.
pub struct RefusalSlot(Arc<Admission>);

impl Admission {
    pub fn new(max: usize, per_client_max: usize) -> Arc<Admission> {
        Arc::new(Admission {
            max,
            per_client_max,
            open: AtomicUsize::new(0),
            refusing: AtomicUsize::new(0),
            per_client: Mutex::new(HashMap::new()),
        })
    }

    /// Takes a slot for a connection from `ip`.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Slot, Refusal> {
        let key = client_key(ip);
        let mut per = self.per_client.lock().unwrap_or_else(|p| p.into_inner());
        if self.open.load(Ordering::Relaxed) >= self.max {
            return Err(Refusal::Full);
        }
        let n = per.entry(key).or_insert(0);
        if *n >= self.per_client_max {
            return Err(Refusal::PerClient);
        }
        *n += 1;
        self.open.fetch_add(1, Ordering::Relaxed);
        Ok(Slot {
            admission: self.clone(),
            key,
        })
    }

    /// A slot to answer a refused connection, if one is free.
    pub fn refusing(self: &Arc<Self>) -> Option<RefusalSlot> {
        let n = self.refusing.fetch_add(1, Ordering::Relaxed);
        if n >= REFUSAL_SLOTS {
            self.refusing.fetch_sub(1, Ordering::Relaxed);
            return None;
        }
        Some(RefusalSlot(self.clone()))
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut per = self
            .admission
            .per_client
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some(n) = per.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                per.remove(&self.key);
            }
        }
        self.admission.open.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Drop for RefusalSlot {
    fn drop(&mut self) {
        self.0.refusing.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_client_cannot_take_every_slot_and_slots_come_back() {
        let a = Admission::new(3, 2);
        let one: IpAddr = "192.0.2.1".parse().unwrap();
        let two: IpAddr = "192.0.2.2".parse().unwrap();
        let s1 = a.admit(one).unwrap();
        let _s2 = a.admit(one).unwrap();
        assert_eq!(a.admit(one).err(), Some(Refusal::PerClient));
        let _s3 = a.admit(two).unwrap();
        assert_eq!(a.admit(two).err(), Some(Refusal::Full));
        drop(s1);
        assert_eq!(a.open(), 2);
        assert!(a.admit(one).is_ok());
    }

    #[test]
    fn an_ipv6_client_counts_by_its_64_and_mapped_ipv4_as_ipv4() {
        let a: IpAddr = "2001:db8:1:2:3:4:5:6".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::1".parse().unwrap();
        assert_eq!(client_key(a), client_key(b));
        let m: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(client_key(m), "192.0.2.1".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn refusals_have_a_bounded_pool_of_their_own() {
        let a = Admission::new(1, 1);
        let held: Vec<RefusalSlot> = (0..REFUSAL_SLOTS).filter_map(|_| a.refusing()).collect();
        assert_eq!(held.len(), REFUSAL_SLOTS);
        assert!(a.refusing().is_none());
        drop(held);
        assert!(a.refusing().is_some());
    }
}
