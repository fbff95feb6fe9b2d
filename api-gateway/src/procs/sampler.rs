//! `cpu_percent`, sampled lazily: no thread, no /proc walk unless a
//! request asks for it.
//!
//! A figure is the CPU time a process used between two reads of its
//! `/proc/PID/stat`, divided by the time between them, as a percent of ONE
//! CPU (a busy 4-thread process can show 400.0). Every listing reads every
//! process's stat anyway, so each listing is kept as a [`Walk`] (ticks per
//! `(pid, start_time)`) and the next listing computes its figures against
//! the newest walk that is at least `min` and at most `max` old, where
//! `min = cpu_window_s / 4` and `max = 10 × cpu_window_s`. When there is
//! none (the first request after an idle spell), the request first reads
//! every stat, waits `min`, and computes against that: a short two-point
//! sample, so the first answer after idle is as truthful as any. The
//! answer states the window (`cpu_percent_window_s`) and the figure's age
//! (`cpu_percent_age_s`).
//!
//! A single process (`GET /api/ps/{pid}`) never walks /proc: its figure is
//! computed against that process's previous read (by any listing or
//! single read) in the same bounds, and a request that finds the previous
//! read less than `min` old reuses the last figure, stating its age.
//!
//! Keying on the start time means a recycled pid never inherits another
//! process's ticks. A process born after the baseline walk is charged all
//! its CPU time over the window (it used all of it inside the window).

use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::parse;
use super::procfs::{list_pids, slurp};
use crate::ids::Pid;

/// `(pid, start_time)`: a process, not a recyclable number.
pub type Key = (Pid, u64);

/// Walks kept as baselines at most.
const MAX_WALKS: usize = 8;
/// Single-read baselines kept before old ones are dropped.
const MAX_SINGLES: usize = 4096;

/// utime+stime of every process read by one listing.
#[derive(Debug)]
pub struct Walk {
    /// When the walk began.
    pub at: Instant,
    /// Seconds since boot when it began, in clock ticks (to tell a process
    /// born after the walk from one the walk could not read).
    pub uptime_ticks: u64,
    pub ticks: HashMap<Key, u64>,
}

/// What a listing computes `cpu_percent` with.
#[derive(Debug, Clone, Copy)]
pub enum Cpu<'a> {
    /// Not asked for: 0.0.
    Unasked,
    /// Since the baseline walk, `secs` before this listing began.
    Since { walk: &'a Walk, secs: f64, hz: f64 },
    /// One process's figure, computed already.
    Fixed(f64),
    /// One process read now: its figure is asked of the sampler with the
    /// ticks of the stat this read made (so a single read reads stat
    /// once); what the sampler answered is left in `answer`.
    Live {
        sampler: &'a Sampler,
        answer: &'a std::cell::Cell<Option<Single>>,
    },
}

impl Cpu<'_> {
    /// Percent of one CPU for `key`, whose utime+stime is now `ticks`.
    pub fn percent(&self, key: &Key, ticks: u64) -> f64 {
        match *self {
            Cpu::Unasked => 0.0,
            Cpu::Fixed(p) => p,
            Cpu::Live { sampler, answer } => {
                let single = sampler.single(*key, ticks);
                let p = match &single {
                    Single::Figure(f) => f.percent,
                    Single::WaitUntil(_) => 0.0,
                };
                answer.set(Some(single));
                p
            }
            Cpu::Since { walk, secs, hz } => {
                let before = match walk.ticks.get(key) {
                    Some(t) => *t,
                    // Born after the walk: all its time is in the window.
                    None if key.1 + 1 >= walk.uptime_ticks => 0,
                    // The walk could not read it: no honest figure.
                    None => return 0.0,
                };
                ticks.saturating_sub(before) as f64 / hz / secs.max(1e-3) * 100.0
            }
        }
    }
}

/// The window and age an answer states.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stated {
    pub window_s: f64,
    pub age_s: f64,
}

/// One process's figure for a single read.
#[derive(Debug, Clone, Copy)]
pub struct Figure {
    pub percent: f64,
    pub stated: Stated,
}

/// A single read's answer: a figure, or wait until then and ask again.
#[derive(Debug, Clone, Copy)]
pub enum Single {
    Figure(Figure),
    WaitUntil(Instant),
}

#[derive(Debug, Clone, Copy)]
struct Seen {
    base: (Instant, u64),
    last: Option<(f64, f64, Instant)>,
}

/// Baselines and the rules above.
#[derive(Debug)]
pub struct Sampler {
    hz: u64,
    min: Duration,
    max: Duration,
    walks: Mutex<VecDeque<Arc<Walk>>>,
    /// Held while a fresh two-point sample is taken, so concurrent
    /// requests after an idle spell share one.
    fresh: Mutex<()>,
    singles: Mutex<HashMap<Key, Seen>>,
}

impl Sampler {
    /// Rules for `cpu_window_s = window`.
    pub fn new(window: Duration, hz: u64) -> Sampler {
        let window = window.max(Duration::from_millis(100));
        Sampler {
            hz: hz.max(1),
            min: window / 4,
            max: window * 10,
            walks: Mutex::default(),
            fresh: Mutex::new(()),
            singles: Mutex::default(),
        }
    }

    /// The newest walk between `min` and `max` old at `now`.
    fn usable(&self, now: Instant) -> Option<Arc<Walk>> {
        let walks = self.walks.lock().unwrap_or_else(|p| p.into_inner());
        walks
            .iter()
            .rev()
            .find(|w| {
                let age = now.saturating_duration_since(w.at);
                age >= self.min && age <= self.max
            })
            .cloned()
    }

    /// A baseline for a listing starting now: an existing walk, or a fresh
    /// one after which the caller waited `min` (blocking).
    pub fn baseline(&self) -> Arc<Walk> {
        if let Some(w) = self.usable(Instant::now()) {
            return w;
        }
        let _one = self.fresh.lock().unwrap_or_else(|p| p.into_inner());
        // Someone else may have taken one while this request waited.
        if let Some(w) = self.usable(Instant::now()) {
            return w;
        }
        let w = Arc::new(stat_walk(self.hz));
        self.keep(w.clone());
        std::thread::sleep(self.min.saturating_sub(w.at.elapsed()));
        w
    }

    /// Keeps a finished walk as a future baseline.
    pub fn keep(&self, w: Arc<Walk>) {
        let mut walks = self.walks.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        walks.retain(|x| now.saturating_duration_since(x.at) <= self.max);
        walks.push_back(w);
        // Sorted by start (walks may finish out of order).
        walks.make_contiguous().sort_by_key(|x| x.at);
        while walks.len() > MAX_WALKS {
            walks.pop_front();
        }
    }

    /// The figure of one process whose utime+stime is `ticks` now.
    pub fn single(&self, key: Key, ticks: u64) -> Single {
        let now = Instant::now();
        let hz = self.hz as f64;
        let in_range = |t: Instant| {
            let age = now.saturating_duration_since(t);
            age >= self.min && age <= self.max
        };
        let mut singles = self.singles.lock().unwrap_or_else(|p| p.into_inner());
        let seen = singles.get(&key).copied();
        // The newest baseline in range: this process's last read, or a walk.
        let mut base = seen.map(|s| s.base).filter(|b| in_range(b.0));
        if base.is_none() {
            let walks = self.walks.lock().unwrap_or_else(|p| p.into_inner());
            base = walks
                .iter()
                .rev()
                .filter(|w| in_range(w.at))
                .find_map(|w| w.ticks.get(&key).map(|t| (w.at, *t)));
        }
        if let Some((t0, c0)) = base {
            let secs = now.saturating_duration_since(t0).as_secs_f64();
            let percent = ticks.saturating_sub(c0) as f64 / hz / secs.max(1e-3) * 100.0;
            singles.insert(
                key,
                Seen {
                    base: (now, ticks),
                    last: Some((percent, secs, now)),
                },
            );
            if singles.len() > MAX_SINGLES {
                singles.retain(|_, s| now.saturating_duration_since(s.base.0) <= self.max);
            }
            return Single::Figure(Figure {
                percent,
                stated: Stated {
                    window_s: secs,
                    age_s: 0.0,
                },
            });
        }
        match seen {
            // The last read is too recent to measure against: its figure.
            Some(Seen {
                base,
                last: Some((percent, window_s, at)),
            }) if now.saturating_duration_since(base.0) < self.min => Single::Figure(Figure {
                percent,
                stated: Stated {
                    window_s,
                    age_s: now.saturating_duration_since(at).as_secs_f64(),
                },
            }),
            Some(Seen { base, .. }) if now.saturating_duration_since(base.0) < self.min => {
                Single::WaitUntil(base.0 + self.min)
            }
            _ => {
                singles.insert(
                    key,
                    Seen {
                        base: (now, ticks),
                        last: None,
                    },
                );
                Single::WaitUntil(now + self.min)
            }
        }
    }
}

/// Seconds since boot in clock ticks (`/proc/uptime`), 0 if unreadable.
pub fn uptime_ticks(hz: u64) -> u64 {
    let mut buf = vec![0u8; 128];
    slurp("/proc/uptime", &mut buf)
        .ok()
        .and_then(|n| {
            let text = std::str::from_utf8(&buf[..n]).ok()?;
            text.split_whitespace().next()?.parse::<f64>().ok()
        })
        .map_or(0, |s| (s * hz as f64) as u64)
}

/// utime+stime of every process now (the first point of a fresh sample).
fn stat_walk(hz: u64) -> Walk {
    let at = Instant::now();
    let uptime = uptime_ticks(hz);
    let mut ticks = HashMap::new();
    let mut buf = vec![0u8; 4096];
    let mut path = String::new();
    for pid in list_pids().unwrap_or_default() {
        path.clear();
        let _ = write!(path, "/proc/{pid}/stat");
        let Ok(n) = slurp(&path, &mut buf) else {
            continue;
        };
        if let Some(s) = parse::stat(&buf[..n]) {
            ticks.insert((pid, s.start_time), s.utime + s.stime);
        }
    }
    Walk {
        at,
        uptime_ticks: uptime,
        ticks,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> Key {
        (Pid::new(4242).expect("pid"), 7)
    }

    #[test]
    fn a_single_read_after_idle_waits_for_a_short_sample_then_measures_it() {
        // A window of 8 s: min 2 s, so "asked again at once" below has two
        // seconds to be asked in, however loaded the machine.
        let s = Sampler::new(Duration::from_secs(8), 100);
        let before = Instant::now();
        let Single::WaitUntil(t) = s.single(key(), 1000) else {
            panic!("no baseline yet: must wait");
        };
        // min = 2 s after the read.
        let min = Duration::from_secs(2);
        assert!(t >= before + min && t <= Instant::now() + min);
        std::thread::sleep(t.saturating_duration_since(Instant::now()));
        // 10 ticks at 100 Hz over at least 2 s: at most 5 %.
        let Single::Figure(f) = s.single(key(), 1010) else {
            panic!("a baseline min old gives a figure");
        };
        assert!(
            f.stated.window_s >= 2.0 && f.stated.window_s <= 80.0,
            "{f:?}"
        );
        assert!(f.percent > 0.0 && f.percent <= 5.0, "{f:?}");
        assert_eq!(f.stated.age_s, 0.0);
        // Asked again at once: the same figure, with its age.
        let Single::Figure(g) = s.single(key(), 1011) else {
            panic!("too soon: the last figure");
        };
        assert_eq!(g.percent, f.percent);
        assert!(g.stated.age_s >= 0.0 && g.stated.window_s == f.stated.window_s);
    }

    #[test]
    fn a_listing_walk_is_a_baseline_for_single_reads_and_newborns_count_whole() {
        let s = Sampler::new(Duration::from_millis(400), 100);
        let at = Instant::now() - Duration::from_millis(200);
        let mut ticks = HashMap::new();
        ticks.insert(key(), 100);
        let walk = Walk {
            at,
            uptime_ticks: 50,
            ticks,
        };
        let cpu = Cpu::Since {
            walk: &walk,
            secs: 0.5,
            hz: 100.0,
        };
        assert_eq!(cpu.percent(&key(), 150), 100.0);
        let newborn = (Pid::new(99).expect("pid"), 60);
        assert_eq!(cpu.percent(&newborn, 25), 50.0);
        let unread = (Pid::new(98).expect("pid"), 10);
        assert_eq!(cpu.percent(&unread, 25), 0.0);
        s.keep(Arc::new(walk));
        let Single::Figure(f) = s.single(key(), 120) else {
            panic!("the walk is a baseline");
        };
        assert!(f.stated.window_s >= 0.2, "{f:?}");
    }
}
