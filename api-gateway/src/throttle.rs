//! Refused authentications, counted per client address (an IPv6 client
//! by its /64) in one-minute windows, for two purposes:
//!
//! - **Wrong-key floods.** Past `auth_failures_per_minute` refusals in a
//!   window, a refused request is answered 429 with `Retry-After` (the
//!   seconds left in the window) instead of 401. A request with a valid
//!   key is served as always, from any address: the throttle never makes
//!   a real key slower or refused, and nothing sleeps. (Keys are 256
//!   random bits, so the throttle is not what stops guessing; it stops a
//!   flood from costing audit lines and CPU, and tells the client so.)
//! - **Audit summaries.** The first [`LINES_PER_WINDOW`] refusals of an
//!   address in a window get an audit line each; the rest are only
//!   counted, and the window's end produces one summary line.
//!
//! The table is bounded ([`MAX_TRACKED`] addresses); when full, expired
//! windows are dropped, and an address that still finds no room is
//! refused with 401 and a line, untracked.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The address a cap counts: IPv4 (also IPv4-mapped IPv6) as it is, any
/// other IPv6 address by its /64.
pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// Length of one counting window.
pub const WINDOW: Duration = Duration::from_secs(60);
/// Refusals per address and window written one line each.
pub const LINES_PER_WINDOW: u64 = 10;
/// Addresses tracked at once.
pub const MAX_TRACKED: usize = 65_536;

struct Window {
    start: Instant,
    failures: u64,
}

/// A window that ended with refusals that were not written one by one.
#[derive(Debug, PartialEq, Eq)]
pub struct Summary {
    pub client: String,
    pub failures: u64,
    pub not_written: u64,
}

/// What to do with one refused authentication.
#[derive(Debug, PartialEq, Eq)]
pub struct Verdict {
    /// Answer 429 with this `Retry-After` instead of 401.
    pub throttle: Option<u64>,
    /// Write this refusal's audit line.
    pub write_line: bool,
    /// The address's previous window, ended, to be written as a summary.
    pub ended: Option<Summary>,
}

/// The counting table.
pub struct AuthThrottle {
    /// Refusals per window before 429; 0 = never throttle.
    limit: u32,
    windows: Mutex<HashMap<IpAddr, Window>>,
}

impl AuthThrottle {
    pub fn new(limit: u32) -> AuthThrottle {
        AuthThrottle {
            limit,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Counts one refused authentication from `ip`.
    pub fn failure(&self, ip: IpAddr) -> Verdict {
        self.failure_at(ip, Instant::now())
    }

    fn failure_at(&self, ip: IpAddr, now: Instant) -> Verdict {
        let key = client_key(ip);
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        if windows.len() >= MAX_TRACKED && !windows.contains_key(&key) {
            windows.retain(|_, w| now.duration_since(w.start) < WINDOW);
            if windows.len() >= MAX_TRACKED {
                return Verdict {
                    throttle: None,
                    write_line: true,
                    ended: None,
                };
            }
        }
        let w = windows.entry(key).or_insert(Window {
            start: now,
            failures: 0,
        });
        let mut ended = None;
        if now.duration_since(w.start) >= WINDOW {
            ended = summary(key, w);
            *w = Window {
                start: now,
                failures: 0,
            };
        }
        w.failures += 1;
        let throttle = (self.limit > 0 && w.failures > u64::from(self.limit)).then(|| {
            let left = WINDOW.saturating_sub(now.duration_since(w.start));
            left.as_secs().max(1)
        });
        Verdict {
            throttle,
            write_line: w.failures <= LINES_PER_WINDOW,
            ended,
        }
    }

    /// Drops the windows that have ended and returns the summaries of
    /// those that had refusals not written one by one. Called every few
    /// seconds.
    pub fn sweep(&self) -> Vec<Summary> {
        self.sweep_at(Instant::now())
    }

    /// Ends every window now and returns their summaries (at shutdown,
    /// so no count is lost).
    pub fn flush(&self) -> Vec<Summary> {
        self.sweep_at(Instant::now() + WINDOW)
    }

    fn sweep_at(&self, now: Instant) -> Vec<Summary> {
        let mut out = Vec::new();
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        windows.retain(|key, w| {
            if now.duration_since(w.start) < WINDOW {
                return true;
            }
            out.extend(summary(*key, w));
            false
        });
        out
    }
}

fn summary(key: IpAddr, w: &Window) -> Option<Summary> {
    (w.failures > LINES_PER_WINDOW).then(|| Summary {
        client: match key {
            IpAddr::V4(a) => a.to_string(),
            IpAddr::V6(a) => format!("{a}/64"),
        },
        failures: w.failures,
        not_written: w.failures - LINES_PER_WINDOW,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn past_the_limit_refusals_are_throttled_until_the_window_ends() {
        let t = AuthThrottle::new(3);
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        let other: IpAddr = "192.0.2.8".parse().unwrap();
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(t.failure_at(ip, t0).throttle, None);
        }
        let v = t.failure_at(ip, t0 + Duration::from_secs(20));
        assert_eq!(v.throttle, Some(40));
        assert_eq!(t.failure_at(other, t0).throttle, None);
        let later = t.failure_at(ip, t0 + WINDOW);
        assert_eq!(later.throttle, None);
    }

    #[test]
    fn a_flood_is_written_line_by_line_only_at_first_then_summarised() {
        let t = AuthThrottle::new(0);
        let ip: IpAddr = "2001:db8:1:2::99".parse().unwrap();
        let same_64: IpAddr = "2001:db8:1:2::7".parse().unwrap();
        let t0 = Instant::now();
        let written = (0..50)
            .filter(|i| {
                let from = if i % 2 == 0 { ip } else { same_64 };
                t.failure_at(from, t0).write_line
            })
            .count();
        assert_eq!(written as u64, LINES_PER_WINDOW);
        assert!(t.sweep_at(t0 + Duration::from_secs(59)).is_empty());
        let s = t.sweep_at(t0 + WINDOW);
        assert_eq!(
            s,
            [Summary {
                client: "2001:db8:1:2::/64".into(),
                failures: 50,
                not_written: 40
            }]
        );
        assert!(t.sweep_at(t0 + WINDOW * 2).is_empty());
        for _ in 0..11 {
            t.failure_at(ip, t0);
        }
        assert_eq!(t.flush().len(), 1);
    }
}
