//! Process groups as series, under process-exporter's names and labels
//! (`namedprocess_namegroup_*`, `groupname`, `mode`, `memtype`, `state`),
//! so that dashboards made for it (Grafana's 249) work unchanged.
//!
//! The counters (CPU seconds, bytes read and written, page faults,
//! context switches) add up every member ever seen, as process-exporter
//! does: each process is remembered by pid and start time between scrapes,
//! and only its growth since the last scrape is added, so a member that
//! exits takes nothing back and a recycled pid is a new process. The
//! gauges are the members alive at the scrape; a group seen once keeps its
//! series, at 0 when it has no member.
//!
//! Bounded: at most `max_groups` groups ever; a process whose group would
//! be one more is counted in `monitoreo_process_groups_overflow_processes`
//! instead. No pid or command line is ever a label.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use prometheus::{CounterVec, IntGauge, IntGaugeVec, Opts, Registry};

use crate::procs::Member;

/// process-exporter's state names, from psutil's.
fn state_label(s: &str) -> &'static str {
    match s {
        "running" => "Running",
        "sleeping" | "idle" => "Sleeping",
        "disk-sleep" => "Waiting",
        "zombie" | "dead" => "Zombie",
        _ => "Other",
    }
}

const STATES: [&str; 5] = ["Running", "Sleeping", "Waiting", "Zombie", "Other"];

/// The counted quantities of one process, as last seen.
#[derive(Clone, Copy, Default)]
struct Counts {
    user: f64,
    system: f64,
    read: u64,
    write: u64,
    minor: u64,
    major: u64,
    voluntary: u64,
    involuntary: u64,
}

impl Counts {
    fn of(m: &Member) -> Counts {
        let (read, write) = m.io_bytes.unwrap_or((0, 0));
        Counts {
            user: m.user_seconds,
            system: m.system_seconds,
            read,
            write,
            minor: m.minor_faults,
            major: m.major_faults,
            voluntary: m.voluntary_switches,
            involuntary: m.involuntary_switches,
        }
    }
}

/// The series and what the counters need remembered between scrapes.
pub struct Groups {
    max_groups: usize,
    known: BTreeSet<String>,
    last: HashMap<(i32, u64), Counts>,
    num_procs: IntGaugeVec,
    cpu: CounterVec,
    memory: IntGaugeVec,
    open_fds: IntGaugeVec,
    threads: IntGaugeVec,
    states: IntGaugeVec,
    oldest: prometheus::GaugeVec,
    bytes: [CounterVec; 2],
    faults: [CounterVec; 2],
    switches: CounterVec,
    overflow: IntGauge,
}

fn reg<T: prometheus::core::Collector + Clone + 'static>(
    r: &Registry,
    c: T,
) -> prometheus::Result<T> {
    r.register(Box::new(c.clone()))?;
    Ok(c)
}

fn opts(name: &str, help: &str) -> Opts {
    Opts::new(format!("namedprocess_namegroup_{name}"), help)
}

impl Groups {
    /// Registers the series in `r`.
    pub fn new(r: &Registry, max_groups: usize) -> prometheus::Result<Groups> {
        let g = &["groupname"];
        let counter = |name: &str, help: &str, labels: &[&str]| {
            reg(r, CounterVec::new(opts(name, help), labels)?)
        };
        let gauge = |name: &str, help: &str, labels: &[&str]| {
            reg(r, IntGaugeVec::new(opts(name, help), labels)?)
        };
        Ok(Groups {
            max_groups,
            known: BTreeSet::new(),
            last: HashMap::new(),
            num_procs: gauge("num_procs", "Processes in the group now.", g)?,
            cpu: counter(
                "cpu_seconds_total",
                "CPU seconds used by the group's processes, every one ever seen, by mode (user, system).",
                &["groupname", "mode"],
            )?,
            memory: gauge(
                "memory_bytes",
                "Memory of the group's processes now, by memtype (resident, virtual, swapped).",
                &["groupname", "memtype"],
            )?,
            open_fds: gauge(
                "open_filedesc",
                "Open file descriptors of the group's processes the gateway may count (its own user's).",
                g,
            )?,
            threads: gauge("num_threads", "Threads of the group's processes now.", g)?,
            states: gauge(
                "states",
                "The group's processes by state (Running, Sleeping, Waiting, Zombie, Other).",
                &["groupname", "state"],
            )?,
            oldest: reg(
                r,
                prometheus::GaugeVec::new(
                    opts(
                        "oldest_start_time_seconds",
                        "Start time of the group's oldest process, seconds since the epoch.",
                    ),
                    g,
                )?,
            )?,
            bytes: [
                counter(
                    "read_bytes_total",
                    "Bytes the group's processes read from storage (those the gateway may see: its own user's).",
                    g,
                )?,
                counter(
                    "write_bytes_total",
                    "Bytes the group's processes wrote to storage (those the gateway may see: its own user's).",
                    g,
                )?,
            ],
            faults: [
                counter(
                    "minor_page_faults_total",
                    "Page faults of the group's processes that needed no disk read.",
                    g,
                )?,
                counter(
                    "major_page_faults_total",
                    "Page faults of the group's processes that read from disk.",
                    g,
                )?,
            ],
            switches: counter(
                "context_switches_total",
                "Context switches of the group's processes, by ctxswitchtype (voluntary, nonvoluntary).",
                &["groupname", "ctxswitchtype"],
            )?,
            overflow: reg(
                r,
                IntGauge::new(
                    "monitoreo_process_groups_overflow_processes",
                    "Processes a [metrics.groups] rule matched that are in no group's series: their group would pass max_groups.",
                )?,
            )?,
        })
    }

    /// Sets the series from the members read at this scrape.
    pub fn update(&mut self, members: &[Member]) {
        let mut overflow = 0i64;
        let mut live: HashMap<(i32, u64), Counts> = HashMap::with_capacity(members.len());
        let mut by_group: BTreeMap<&str, Vec<&Member>> = BTreeMap::new();
        for m in members {
            if !self.known.contains(&m.group) {
                if self.known.len() >= self.max_groups {
                    overflow += 1;
                    continue;
                }
                self.known.insert(m.group.clone());
            }
            by_group.entry(&m.group).or_default().push(m);
        }
        self.overflow.set(overflow);
        for g in [
            &self.num_procs,
            &self.memory,
            &self.open_fds,
            &self.threads,
            &self.states,
        ] {
            g.reset();
        }
        self.oldest.reset();
        for name in &self.known {
            let ms = by_group.get(name.as_str()).map_or(&[][..], Vec::as_slice);
            let set = |g: &IntGaugeVec, labels: &[&str], v: u64| {
                g.with_label_values(labels)
                    .set(i64::try_from(v).unwrap_or(i64::MAX));
            };
            let sum =
                |f: fn(&Member) -> u64| ms.iter().map(|m| f(m)).fold(0u64, u64::saturating_add);
            set(&self.num_procs, &[name], ms.len() as u64);
            set(&self.memory, &[name, "resident"], sum(|m| m.rss_bytes));
            set(&self.memory, &[name, "virtual"], sum(|m| m.virtual_bytes));
            set(&self.memory, &[name, "swapped"], sum(|m| m.swap_bytes));
            set(&self.open_fds, &[name], sum(|m| m.open_fds.unwrap_or(0)));
            set(&self.threads, &[name], sum(|m| m.threads));
            for s in STATES {
                let n = ms.iter().filter(|m| state_label(m.state) == s).count();
                set(&self.states, &[name, s], n as u64);
            }
            if let Some(t) = ms.iter().map(|m| m.start_time).reduce(f64::min) {
                self.oldest.with_label_values(&[name]).set(t);
            }
            for m in ms {
                let key = (m.pid, m.start_ticks);
                let now = Counts::of(m);
                let was = self.last.get(&key).copied().unwrap_or_default();
                self.add(name, &now, &was);
                live.insert(key, now);
            }
        }
        // Processes gone since the last scrape are forgotten; what they
        // used stays in the counters.
        self.last = live;
    }

    /// Adds the growth from `was` to `now` (nothing for a quantity that
    /// went down, which a process's own counts never do).
    fn add(&self, group: &str, now: &Counts, was: &Counts) {
        let grow = |n: f64, w: f64| (n - w).max(0.0);
        let grow_u = |n: u64, w: u64| n.saturating_sub(w) as f64;
        let c = |v: &CounterVec, labels: &[&str], by: f64| {
            if by > 0.0 {
                v.with_label_values(labels).inc_by(by);
            } else {
                // Present at 0, so rate() has a series from the start.
                v.with_label_values(labels);
            }
        };
        c(&self.cpu, &[group, "user"], grow(now.user, was.user));
        c(&self.cpu, &[group, "system"], grow(now.system, was.system));
        c(&self.bytes[0], &[group], grow_u(now.read, was.read));
        c(&self.bytes[1], &[group], grow_u(now.write, was.write));
        c(&self.faults[0], &[group], grow_u(now.minor, was.minor));
        c(&self.faults[1], &[group], grow_u(now.major, was.major));
        c(
            &self.switches,
            &[group, "voluntary"],
            grow_u(now.voluntary, was.voluntary),
        );
        c(
            &self.switches,
            &[group, "nonvoluntary"],
            grow_u(now.involuntary, was.involuntary),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(group: &str, pid: i32, user_s: f64) -> Member {
        Member {
            group: group.into(),
            pid,
            start_ticks: 100,
            state: "sleeping",
            user_seconds: user_s,
            rss_bytes: 10,
            threads: 1,
            ..Member::default()
        }
    }

    fn text(r: &Registry) -> String {
        let mut out = Vec::new();
        prometheus::Encoder::encode(&prometheus::TextEncoder::new(), &r.gather(), &mut out)
            .unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn cpu_counts_every_member_ever_seen_and_never_goes_down() {
        let r = Registry::new();
        let mut g = Groups::new(&r, 8).unwrap();
        g.update(&[member("web", 10, 2.0), member("web", 11, 1.0)]);
        let t = text(&r);
        assert!(
            t.contains(
                "namedprocess_namegroup_cpu_seconds_total{groupname=\"web\",mode=\"user\"} 3"
            ),
            "{t}"
        );
        assert!(
            t.contains("namedprocess_namegroup_num_procs{groupname=\"web\"} 2"),
            "{t}"
        );
        // 11 exits; 10 grows by 1.5; pid 11 comes back as a new process.
        let mut again = member("web", 11, 0.5);
        again.start_ticks = 200;
        g.update(&[member("web", 10, 3.5), again]);
        let t = text(&r);
        assert!(
            t.contains(
                "namedprocess_namegroup_cpu_seconds_total{groupname=\"web\",mode=\"user\"} 5"
            ),
            "{t}"
        );
        g.update(&[]);
        let t = text(&r);
        assert!(
            t.contains(
                "namedprocess_namegroup_cpu_seconds_total{groupname=\"web\",mode=\"user\"} 5"
            ),
            "{t}"
        );
        assert!(
            t.contains("namedprocess_namegroup_num_procs{groupname=\"web\"} 0"),
            "{t}"
        );
        assert!(
            t.contains("namedprocess_namegroup_states{groupname=\"web\",state=\"Sleeping\"} 0"),
            "{t}"
        );
        assert!(!t.contains("pid"), "no pid label: {t}");
    }

    #[test]
    fn groups_past_the_cap_are_counted_as_overflow_not_series() {
        let r = Registry::new();
        let mut g = Groups::new(&r, 2).unwrap();
        g.update(&[
            member("a", 1, 0.0),
            member("b", 2, 0.0),
            member("c", 3, 0.0),
            member("c", 4, 0.0),
            member("a", 5, 0.0),
        ]);
        let t = text(&r);
        assert!(
            t.contains("monitoreo_process_groups_overflow_processes 2"),
            "{t}"
        );
        assert!(
            t.contains("namedprocess_namegroup_num_procs{groupname=\"a\"} 2"),
            "{t}"
        );
        assert!(!t.contains("groupname=\"c\""), "{t}");
    }
}
