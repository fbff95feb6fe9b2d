//! Planned actions waiting to be executed: each held for the key that
//! made it, for [`PLAN_TTL`], and executed at most once ([`Plans::take`]
//! removes it). Another key's plan and an expired one are the same to a
//! caller: not found.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use protocol::{Action, Pinned};

/// How long a plan may wait for its execution.
pub const PLAN_TTL: Duration = Duration::from_secs(60);

/// Plans held at once, all keys together; the oldest goes first past it.
pub const MAX_PLANS: usize = 1024;

/// What a plan pins: the action and each target as the helper checked
/// it (start time, executable's device and inode).
#[derive(Debug, Clone)]
pub struct Plan {
    pub key: String,
    pub action: Action,
    /// Selected as a process tree: executed leaves first, held still.
    pub tree: bool,
    pub targets: Vec<Pinned>,
    pub made: Instant,
}

/// The plans of every key.
#[derive(Debug, Default)]
pub struct Plans {
    map: Mutex<HashMap<String, Plan>>,
}

impl Plans {
    /// Holds `plan` under a fresh random id (32 hex digits), which it
    /// returns; expired plans are dropped first.
    pub fn insert(&self, plan: Plan) -> Result<String, String> {
        let mut raw = [0u8; 16];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut raw)
            .map_err(|_| "the OS random source failed".to_string())?;
        let id: String = raw.iter().map(|b| format!("{b:02x}")).collect();
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|_, p| p.made.elapsed() < PLAN_TTL);
        if map.len() >= MAX_PLANS {
            if let Some(oldest) = map
                .iter()
                .min_by_key(|(_, p)| p.made)
                .map(|(k, _)| k.clone())
            {
                map.remove(&oldest);
            }
        }
        map.insert(id.clone(), plan);
        Ok(id)
    }

    /// The plan `id` of `key`, removed: a plan executes at most once.
    /// `None` for an unknown id, an expired plan or another key's.
    pub fn take(&self, id: &str, key: &str) -> Option<Plan> {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        let mine = map
            .get(id)
            .is_some_and(|p| p.key == key && p.made.elapsed() < PLAN_TTL);
        if mine {
            map.remove(id)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(key: &str) -> Plan {
        Plan {
            key: key.into(),
            action: Action::Renice(5),
            tree: false,
            targets: vec![],
            made: Instant::now(),
        }
    }

    #[test]
    fn a_plan_is_taken_once_and_only_by_its_key() {
        let plans = Plans::default();
        let id = plans.insert(plan("alice")).expect("id");
        assert_eq!(id.len(), 32);
        assert!(plans.take(&id, "bob").is_none(), "another key's plan");
        assert!(plans.take(&id, "alice").is_some());
        assert!(plans.take(&id, "alice").is_none(), "at most once");
        let old = Plan {
            made: Instant::now() - PLAN_TTL,
            ..plan("alice")
        };
        let id = plans.insert(old).expect("id");
        assert!(plans.take(&id, "alice").is_none(), "expired");
    }
}
