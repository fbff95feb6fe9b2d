//! Background CPU sampler behind `cpu_percent`.
//!
//! A std thread reads utime+stime of every process once per window and
//! stores, per `(pid, start_time)`, the percent of ONE CPU used during the
//! last window (so a busy 4-thread process can show 400.0). Keying on the
//! start time means a recycled pid never inherits another process's figure.
//! Until the first window completes every process reads 0.0; a process born
//! during a window is charged its whole CPU time over that window.
//! The thread ends when the owning `Sampler` is dropped. Its cost is one
//! read of `/proc/PID/stat` per process per window (about 5,000 small reads
//! a second at 5,000 processes with the default 1 s window).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use super::parse;
use super::procfs::{list_pids, slurp};
use crate::ids::Pid;

/// `(pid, start_time)` → percent of one CPU over the last window.
pub type CpuMap = HashMap<(Pid, u64), f32>;

/// Handle on the sampler thread.
#[derive(Debug)]
pub struct Sampler {
    latest: Arc<RwLock<Arc<CpuMap>>>,
    _stop: mpsc::Sender<()>,
}

impl Sampler {
    /// Starts sampling every `window` (at least 50 ms). If the thread
    /// cannot be started, every process keeps reading 0.0.
    pub fn start(window: Duration, clk_tck: u64) -> Sampler {
        let window = window.max(Duration::from_millis(50));
        let latest: Arc<RwLock<Arc<CpuMap>>> = Arc::default();
        let (tx, rx) = mpsc::channel::<()>();
        let out = latest.clone();
        let spawned = std::thread::Builder::new()
            .name("cpu-sampler".into())
            .spawn(move || run(window, clk_tck, &rx, &out));
        if let Err(e) = spawned {
            eprintln!("cpu sampler not started, cpu_percent stays 0.0: {e}");
        }
        Sampler { latest, _stop: tx }
    }

    /// The latest completed window's figures.
    pub fn latest(&self) -> Arc<CpuMap> {
        self.latest
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

fn run(window: Duration, hz: u64, stop: &mpsc::Receiver<()>, out: &RwLock<Arc<CpuMap>>) {
    let mut buf = vec![0u8; 4096];
    let mut path = String::new();
    let mut prev = sample(&mut buf, &mut path);
    let mut prev_t = Instant::now();
    loop {
        match stop.recv_timeout(window) {
            Err(RecvTimeoutError::Timeout) => {}
            _ => return,
        }
        let cur = sample(&mut buf, &mut path);
        let now = Instant::now();
        let secs = now.duration_since(prev_t).as_secs_f64().max(1e-3);
        let hz = hz.max(1) as f64;
        let map: CpuMap = cur
            .iter()
            .map(|(k, &ticks)| {
                let used = ticks.saturating_sub(prev.get(k).copied().unwrap_or(0));
                (*k, (used as f64 / hz / secs * 100.0) as f32)
            })
            .collect();
        *out.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(map);
        prev = cur;
        prev_t = now;
    }
}

/// utime+stime of every process now.
fn sample(buf: &mut Vec<u8>, path: &mut String) -> HashMap<(Pid, u64), u64> {
    let mut m = HashMap::new();
    for pid in list_pids().unwrap_or_default() {
        path.clear();
        let _ = write!(path, "/proc/{pid}/stat");
        let Ok(n) = slurp(path, buf) else { continue };
        if let Some(s) = parse::stat(&buf[..n]) {
            m.insert((pid, s.start_time), s.utime + s.stime);
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_process_shows_cpu_after_one_window() {
        let s = Sampler::start(Duration::from_millis(300), 100);
        assert!(s.latest().is_empty(), "nothing before the first window");
        let me = Pid::new(i64::from(std::process::id())).expect("own pid");
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let st = stop.clone();
        let spin = std::thread::spawn(move || {
            let mut x = 0u64;
            while !st.load(std::sync::atomic::Ordering::Relaxed) {
                x = x.wrapping_add(1);
            }
            x
        });
        std::thread::sleep(Duration::from_millis(1000));
        let pct = s
            .latest()
            .iter()
            .find(|((p, _), _)| *p == me)
            .map(|(_, v)| *v)
            .unwrap_or(0.0);
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let _ = spin.join();
        assert!(pct > 20.0, "own busy process at {pct}%");
    }
}
