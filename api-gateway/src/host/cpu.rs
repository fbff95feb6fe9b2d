//! The host's CPU figures, sampled only when asked: no thread, no timer.
//! A figure is the share of CPU time between two reads of `/proc/stat`;
//! the first read is the latest one any request made (psutil's
//! `cpu_percent(interval=None)`, "since the previous call"), used while it
//! is at most ten windows old and, if it is younger than a quarter of a
//! window, waited for until it is that old; otherwise the request reads
//! now and waits a quarter of a window. A request may instead name its
//! own interval: then it reads, waits that long and reads again. Each
//! request keeps its own first read, so concurrent ones never wait for
//! each other.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::parse::{self, CpuTimes};

/// One read of `/proc/stat`'s CPU lines (`cpu`, then `cpuN`).
#[derive(Debug, Clone)]
pub struct Reading {
    pub at: Instant,
    pub cpus: Vec<CpuTimes>,
}

impl Reading {
    /// Reads `/proc/stat` now.
    pub fn now() -> std::io::Result<Reading> {
        let text = std::fs::read_to_string("/proc/stat")?;
        Ok(Reading {
            at: Instant::now(),
            cpus: parse::stat(&text).0,
        })
    }
}

/// The latest reading, the baseline of the next request.
pub struct Cpu {
    window: Duration,
    last: Mutex<Option<Reading>>,
}

/// Where a request's figures start, and when their second read may be
/// made.
pub struct Start {
    pub first: Reading,
    pub not_before: Instant,
}

impl Cpu {
    /// A sampler for windows of `window` (`cpu_window_s`).
    pub fn new(window: Duration) -> Cpu {
        Cpu {
            window,
            last: Mutex::new(None),
        }
    }

    /// The first read of a request: its own (read now, `interval` or a
    /// quarter window apart from the second), or the latest one made.
    pub fn start(&self, interval: Option<Duration>) -> std::io::Result<Start> {
        let quarter = self.window / 4;
        if let Some(d) = interval {
            let first = Reading::now()?;
            let not_before = first.at + d;
            return Ok(Start { first, not_before });
        }
        let last = self.last.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let first = match last {
            Some(r) if r.at.elapsed() <= self.window * 10 => r,
            _ => {
                let r = Reading::now()?;
                self.keep(&r);
                r
            }
        };
        let not_before = first.at + quarter;
        Ok(Start { first, not_before })
    }

    /// The figures from `start` to a read made now; that read becomes the
    /// next requests' baseline.
    pub fn finish(&self, start: &Start) -> std::io::Result<CpuPercent> {
        let second = Reading::now()?;
        self.keep(&second);
        Ok(CpuPercent::between(&start.first, &second))
    }

    fn keep(&self, r: &Reading) {
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        if last.as_ref().map_or(true, |l| l.at < r.at) {
            *last = Some(r.clone());
        }
    }
}

/// `cpu_percent` (total and per CPU) and `cpu_times_percent` over one
/// window.
#[derive(Debug, Clone, Serialize)]
pub struct CpuPercent {
    /// Seconds between the two reads.
    pub window: f64,
    pub total: f64,
    pub per_cpu: Vec<f64>,
    #[serde(skip)]
    pub times: [f64; 10],
}

impl CpuPercent {
    /// psutil's arithmetic: busy is all time but idle and iowait; all
    /// time leaves out guest and guest_nice (counted in user and nice
    /// already); each figure is rounded to one decimal and kept in
    /// 0..=100. `times` is each field's share of all time.
    pub fn between(a: &Reading, b: &Reading) -> CpuPercent {
        let delta = |x: &CpuTimes, y: &CpuTimes| {
            let mut d = [0u64; 10];
            for (i, slot) in d.iter_mut().enumerate() {
                *slot = y.t[i].saturating_sub(x.t[i]);
            }
            d
        };
        let all = |d: &[u64; 10]| d[..8].iter().sum::<u64>();
        let busy = |d: &[u64; 10]| {
            let all = all(d);
            let idle = d[3] + d[4];
            if all == 0 {
                0.0
            } else {
                round(100.0 * all.saturating_sub(idle) as f64 / all as f64)
            }
        };
        let pairs = a.cpus.iter().zip(&b.cpus);
        let deltas: Vec<[u64; 10]> = pairs.map(|(x, y)| delta(x, y)).collect();
        let total = deltas.first().copied().unwrap_or_default();
        let scale = 100.0 / all(&total).max(1) as f64;
        let mut times = [0.0; 10];
        for (slot, d) in times.iter_mut().zip(total) {
            *slot = round(d as f64 * scale);
        }
        CpuPercent {
            window: b.at.duration_since(a.at).as_secs_f64(),
            total: busy(&total),
            per_cpu: deltas.iter().skip(1).map(busy).collect(),
            times,
        }
    }

    /// `cpu_times_percent`, by psutil's names.
    pub fn times_percent(&self) -> serde_json::Map<String, serde_json::Value> {
        CpuTimes::NAMES
            .iter()
            .zip(self.times)
            .map(|(n, v)| ((*n).to_string(), serde_json::json!(v)))
            .collect()
    }
}

fn round(v: f64) -> f64 {
    ((v * 10.0).round() / 10.0).clamp(0.0, 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(at: Instant, lines: &[[u64; 10]]) -> Reading {
        Reading {
            at,
            cpus: lines.iter().map(|t| CpuTimes { t: *t }).collect(),
        }
    }

    #[test]
    fn figures_follow_psutil_busy_and_all_time() {
        let t0 = Instant::now();
        let a = reading(t0, &[[0; 10], [0; 10], [0; 10]]);
        // 2 CPUs over 100 ticks each: cpu0 busy 75 (user 50 incl. guest
        // 10, system 25), idle 25; cpu1 idle 80, iowait 20.
        let b = reading(
            t0 + Duration::from_secs(1),
            &[
                [50, 0, 25, 105, 20, 0, 0, 0, 10, 0],
                [50, 0, 25, 25, 0, 0, 0, 0, 10, 0],
                [0, 0, 0, 80, 20, 0, 0, 0, 0, 0],
            ],
        );
        let p = CpuPercent::between(&a, &b);
        assert_eq!(p.window, 1.0);
        assert_eq!(p.per_cpu, [75.0, 0.0]);
        assert_eq!(p.total, 37.5);
        let t = p.times_percent();
        assert_eq!(t["user"], 25.0);
        assert_eq!(t["idle"], 52.5);
        assert_eq!(t["iowait"], 10.0);
        assert_eq!(t["guest"], 5.0);
    }

    #[test]
    fn no_time_passed_is_zero_not_a_division_by_zero() {
        let t0 = Instant::now();
        let a = reading(t0, &[[7; 10], [7; 10]]);
        let p = CpuPercent::between(&a, &a.clone());
        assert_eq!((p.total, p.per_cpu.as_slice()), (0.0, &[0.0][..]));
    }

    #[test]
    fn a_request_starts_from_the_latest_read_and_waits_out_a_quarter_window() {
        let cpu = Cpu::new(Duration::from_millis(400));
        let s1 = cpu.start(None).unwrap();
        assert_eq!(s1.not_before, s1.first.at + Duration::from_millis(100));
        let f = cpu.finish(&s1).unwrap();
        assert!(f.window > 0.0);
        // The next starts where the last ended.
        let s2 = cpu.start(None).unwrap();
        assert!(s2.first.at > s1.first.at);
        // Its own interval: its own first read.
        let s3 = cpu.start(Some(Duration::from_secs(2))).unwrap();
        assert_eq!(s3.not_before, s3.first.at + Duration::from_secs(2));
    }
}
