//! Gateway configuration: TOML with every key optional, validated into
//! [`Config`] with defaults filled in.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::procs::{GroupRule, GroupRules, DEFAULT_MAX_GROUPS};

/// Default config path.
pub const DEFAULT_CONFIG: &str = "/etc/monitoreo/gateway.toml";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading {0}: {1}")]
    Read(PathBuf, std::io::Error),
    #[error("{0}: {1}")]
    Parse(PathBuf, toml::de::Error),
    #[error("{0}: {1}")]
    Invalid(PathBuf, String),
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    listen: Option<String>,
    helper_socket: Option<PathBuf>,
    reader_socket: Option<PathBuf>,
    state_dir: Option<PathBuf>,
    keys_file: Option<PathBuf>,
    audit_log: Option<String>,
    output_retention: Option<String>,
    /// The older name of `output_retention`.
    job_retention: Option<String>,
    output_quota: Option<String>,
    key_output_quota: Option<String>,
    key_max_running_jobs: Option<usize>,
    key_max_job_records: Option<usize>,
    default_timeout_s: Option<u64>,
    max_connections: Option<usize>,
    max_connections_per_client: Option<usize>,
    max_plan_targets: Option<usize>,
    header_timeout_s: Option<u64>,
    body_timeout_s: Option<u64>,
    body_min_rate: Option<u64>,
    keepalive_timeout_s: Option<u64>,
    send_timeout_s: Option<u64>,
    auth_failures_per_minute: Option<u32>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    tls_client_ca: Option<PathBuf>,
    allow_plaintext: Option<bool>,
    cpu_window_s: Option<f64>,
    require_start_time: Option<bool>,
    metrics_public: Option<bool>,
    metrics: Option<RawMetrics>,
}

/// `[metrics]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMetrics {
    groups: Option<RawGroups>,
}

/// `[metrics.groups]`: process groups as series, opt in.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGroups {
    max_groups: Option<usize>,
    #[serde(default)]
    rule: Vec<RawGroupRule>,
}

/// One `[[metrics.groups.rule]]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGroupRule {
    group: String,
    name: Option<String>,
    exe: Option<String>,
    cmdline: Option<String>,
    user: Option<String>,
    cgroup: Option<String>,
}

/// `[metrics.groups]` → the rules, or `None` when there are none.
fn groups(raw: Option<RawMetrics>) -> Result<Option<GroupRules>, String> {
    let Some(g) = raw.and_then(|m| m.groups) else {
        return Ok(None);
    };
    let max_groups = match g.max_groups {
        Some(0) => return Err("metrics.groups.max_groups must be at least 1".into()),
        Some(n) => n,
        None => DEFAULT_MAX_GROUPS,
    };
    if g.rule.is_empty() {
        return Err("[metrics.groups] has no [[metrics.groups.rule]]".into());
    }
    let rules = g
        .rule
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            GroupRule::new(
                &r.group,
                r.name,
                r.exe,
                r.cmdline.as_deref(),
                r.user,
                r.cgroup,
            )
            .map_err(|e| format!("metrics.groups.rule #{}: {e}", i + 1))
        })
        .collect::<Result<_, _>>()?;
    Ok(Some(GroupRules { rules, max_groups }))
}

/// Validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub helper_socket: PathBuf,
    /// monitoreo-reader's socket (other users' private fields); `None`
    /// when set to "": those fields are then `null`, `reader_unavailable`.
    pub reader_socket: Option<PathBuf>,
    pub state_dir: PathBuf,
    pub keys_file: PathBuf,
    /// `None` = stderr.
    pub audit_log: Option<PathBuf>,
    /// Finished jobs and their output are kept this long.
    pub output_retention: Duration,
    /// Total bytes stored job output may take, running jobs' ceilings
    /// included; a job that could overrun it is refused, nothing stored is
    /// ever dropped to make room.
    pub output_quota: u64,
    /// The same, for one key's jobs: what one key fills never refuses
    /// another key's job.
    pub key_output_quota: u64,
    /// Jobs one key may run at once; `None`: half the helper's
    /// `max_jobs`, so that one key never holds every slot.
    pub key_max_running_jobs: Option<usize>,
    /// Records (jobs with their output) one key keeps; past it, its
    /// oldest finished ones are deleted, so one key cannot grow the
    /// store without bound inside the retention.
    pub key_max_job_records: usize,
    pub default_timeout_s: u64,
    /// Open connections at once (TLS handshakes and lingering closes
    /// included); beyond it a connection is answered 503 and closed.
    pub max_connections: usize,
    /// Open connections at once from one client address (an IPv6 client
    /// by its /64); beyond it, 429 and closed.
    pub max_connections_per_client: usize,
    /// Targets a plan may hold unless its request raises `max_targets`
    /// (at most the frame's `MAX_BATCH`): a selector that matches more
    /// is refused rather than acted on by surprise.
    pub max_plan_targets: usize,
    /// Time to send the request head (and, with TLS, to finish the
    /// handshake).
    pub header_timeout: Duration,
    /// Time to send the whole body.
    pub body_timeout: Duration,
    /// Bytes per second a body must keep up after a short grace; 0 = off.
    pub body_min_rate: u64,
    /// An idle connection (no request in flight, nothing written) is
    /// closed after this.
    pub keepalive_timeout: Duration,
    /// A response whose bytes the client does not take for this long is
    /// abandoned and the connection closed.
    pub send_timeout: Duration,
    /// Refused authentications per client address per minute before 429;
    /// 0 = never.
    pub auth_failures_per_minute: u32,
    /// Serve HTTPS (and HTTP/2 by ALPN) with this certificate and key.
    pub tls: Option<TlsFiles>,
    /// Plain HTTP on a non-loopback address was explicitly allowed.
    pub allow_plaintext: bool,
    pub cpu_window: Duration,
    /// DELETE and PATCH without `start_time` are refused (400).
    pub require_start_time: bool,
    /// `GET /metrics` without a key (otherwise it needs the `metrics`
    /// scope).
    pub metrics_public: bool,
    /// `[metrics.groups]`: processes counted by group in `/metrics`
    /// under process-exporter's names; `None`: no such series.
    pub groups: Option<GroupRules>,
}

/// The TLS files named in the configuration (PEM).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// Certificate chain, leaf first.
    pub cert: PathBuf,
    pub key: PathBuf,
    /// CA certificates that client certificates are verified against;
    /// `None`: clients are not asked for one.
    pub client_ca: Option<PathBuf>,
}

/// `max_connections_per_client` when not set.
pub const DEFAULT_MAX_CONNECTIONS_PER_CLIENT: usize = 64;

/// `max_plan_targets` when not set.
pub const DEFAULT_MAX_PLAN_TARGETS: usize = 100;

/// Connections the gateway may hold when `max_connections` is not set:
/// as many as fit in `MemoryMax` at their worst ([`crate::budget`]), or
/// fewer when the descriptor limit says so: three quarters of what it
/// leaves after a reserve for the helper socket, the audit log, /proc
/// reads and job files.
pub fn default_max_connections(nofile: u64) -> usize {
    let spare = nofile.saturating_sub(256).saturating_mul(3) / 4;
    usize::try_from(spare)
        .unwrap_or(usize::MAX)
        .min(crate::budget::max_connections())
        .max(16)
}

/// Parses `30d`, `12h`, `5m`, `40s` (or a bare number of seconds).
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let (num, mul) = match s.char_indices().last()? {
        (i, 's') => (&s[..i], 1),
        (i, 'm') => (&s[..i], 60),
        (i, 'h') => (&s[..i], 3600),
        (i, 'd') => (&s[..i], 86400),
        _ => (s, 1),
    };
    let n: u64 = num.parse().ok()?;
    Some(Duration::from_secs(n.checked_mul(mul)?))
}

/// Parses `512M`, `2G`, `100K` or a bare number of bytes (binary units).
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let (num, mul) = match s.char_indices().last()? {
        (i, 'K' | 'k') => (&s[..i], 1u64 << 10),
        (i, 'M' | 'm') => (&s[..i], 1 << 20),
        (i, 'G' | 'g') => (&s[..i], 1 << 30),
        (i, 'T' | 't') => (&s[..i], 1 << 40),
        _ => (s, 1),
    };
    num.trim().parse::<u64>().ok()?.checked_mul(mul)
}

/// `listen` → the one address to bind. An `address:port` is taken as is;
/// a `host:port` is resolved with the system resolver (`/etc/hosts`, then
/// DNS, as nsswitch says) when the configuration is loaded. The gateway
/// binds one address: the first IPv4 address the name resolves to, or the
/// first address when there is no IPv4 one. So `localhost` means
/// 127.0.0.1, as in the default, whatever order the resolver returns
/// `::1` and `127.0.0.1` in; a client trying `localhost` falls back from
/// `::1` to it. Errors name the key.
fn resolve_listen(listen: &str) -> Result<SocketAddr, String> {
    if let Ok(a) = listen.parse::<SocketAddr>() {
        return Ok(a);
    }
    let (host, port) = listen
        .rsplit_once(':')
        .filter(|(h, _)| !h.is_empty())
        .ok_or_else(|| format!("listen: {listen:?} is not address:port or host:port"))?;
    let port: u16 = port
        .parse()
        .map_err(|_| format!("listen: {listen:?}: {port:?} is not a port number"))?;
    let addrs: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("listen: host name {host:?} does not resolve: {e}"))?
        .collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or(addrs.first())
        .copied()
        .ok_or_else(|| format!("listen: host name {host:?} resolves to no address"))
}

impl Config {
    /// Loads `path`; when `path` is `None` and the default file does not
    /// exist, the built-in defaults are used.
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        let (p, text) = match path {
            Some(p) => (
                p.to_path_buf(),
                std::fs::read_to_string(p).map_err(|e| ConfigError::Read(p.into(), e))?,
            ),
            None => {
                let p = PathBuf::from(DEFAULT_CONFIG);
                match std::fs::read_to_string(&p) {
                    Ok(t) => (p, t),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => (p, String::new()),
                    Err(e) => return Err(ConfigError::Read(p, e)),
                }
            }
        };
        let raw: Raw = toml::from_str(&text).map_err(|e| ConfigError::Parse(p.clone(), e))?;
        Config::validate(raw).map_err(|m| ConfigError::Invalid(p, m))
    }

    fn validate(raw: Raw) -> Result<Config, String> {
        let listen = resolve_listen(raw.listen.as_deref().unwrap_or("127.0.0.1:8470"))?;
        let state_dir = raw.state_dir.unwrap_or_else(|| "/var/lib/monitoreo".into());
        let keys_file = raw.keys_file.unwrap_or_else(|| state_dir.join("keys.json"));
        let (key, retention) =
            match (&raw.output_retention, &raw.job_retention) {
                (Some(_), Some(_)) => return Err(
                    "output_retention and job_retention (its older name) are both set; keep one"
                        .into(),
                ),
                (Some(r), None) => ("output_retention", r.as_str()),
                (None, Some(r)) => ("job_retention", r.as_str()),
                (None, None) => ("output_retention", "7d"),
            };
        let output_retention = parse_duration(retention)
            .ok_or_else(|| format!("{key}: {retention:?} is not like 7d/12h/30m/60s"))?;
        let quota = raw.output_quota.as_deref().unwrap_or("2G");
        let output_quota = parse_size(quota)
            .filter(|q| *q > 0)
            .ok_or_else(|| format!("output_quota: {quota:?} is not a size like 2G/512M/100K"))?;
        let key_output_quota = match raw.key_output_quota.as_deref() {
            None => (output_quota / 4).max(1),
            Some(q) => parse_size(q)
                .filter(|q| *q > 0)
                .ok_or_else(|| format!("key_output_quota: {q:?} is not a size like 512M/100K"))?,
        };
        if key_output_quota > output_quota {
            return Err(format!(
                "key_output_quota ({key_output_quota} bytes) is over output_quota ({output_quota} bytes)"
            ));
        }
        let key_max_job_records = match raw.key_max_job_records {
            Some(0) => return Err("key_max_job_records must be at least 1".into()),
            Some(n) => n,
            None => 1000,
        };
        let key_max_running_jobs = match raw.key_max_running_jobs {
            Some(0) => return Err("key_max_running_jobs must be at least 1".into()),
            Some(n) if n > key_max_job_records => {
                return Err(format!(
                    "key_max_running_jobs ({n}) is over key_max_job_records ({key_max_job_records}): every running job is a record"
                ))
            }
            n => n,
        };
        let cpu = raw.cpu_window_s.unwrap_or(1.0);
        if !(0.1..=60.0).contains(&cpu) {
            return Err("cpu_window_s must be between 0.1 and 60".into());
        }
        let max_connections = match raw.max_connections {
            Some(0) => return Err("max_connections must be at least 1".into()),
            Some(n) => n,
            None => default_max_connections(crate::limits::nofile()),
        };
        let max_connections_per_client = match raw.max_connections_per_client {
            Some(0) => return Err("max_connections_per_client must be at least 1".into()),
            Some(n) => n,
            None => DEFAULT_MAX_CONNECTIONS_PER_CLIENT,
        };
        let max_plan_targets = match raw.max_plan_targets {
            Some(n) if n == 0 || n > protocol::MAX_BATCH => {
                return Err(format!(
                    "max_plan_targets must be between 1 and {}, got {n}",
                    protocol::MAX_BATCH
                ))
            }
            Some(n) => n,
            None => DEFAULT_MAX_PLAN_TARGETS,
        };
        let secs = |v: Option<u64>, default: u64, name: &str| match v {
            Some(0) => Err(format!("{name} must be at least 1")),
            v => Ok(Duration::from_secs(v.unwrap_or(default))),
        };
        let tls = match (raw.tls_cert, raw.tls_key, raw.tls_client_ca) {
            (Some(cert), Some(key), client_ca) => Some(TlsFiles {
                cert,
                key,
                client_ca,
            }),
            (None, None, None) => None,
            (Some(_), None, _) => return Err("tls_cert needs tls_key".into()),
            (None, Some(_), _) => return Err("tls_key needs tls_cert".into()),
            (None, None, Some(_)) => {
                return Err("tls_client_ca needs tls_cert and tls_key (client certificates are asked for over TLS)".into())
            }
        };
        let allow_plaintext = raw.allow_plaintext.unwrap_or(false);
        if tls.is_none() && !listen.ip().is_loopback() && !allow_plaintext {
            return Err(format!(
                "listen {listen} is not a loopback address and tls_cert/tls_key are not set: \
                 keys would cross the network in clear text; set tls_cert and tls_key, or \
                 allow_plaintext = true if something else encrypts the traffic (a TLS proxy \
                 on this host)"
            ));
        }
        Ok(Config {
            listen,
            helper_socket: raw
                .helper_socket
                .unwrap_or_else(|| "/run/monitoreo/privhelper.sock".into()),
            reader_socket: match raw.reader_socket {
                Some(p) if p.as_os_str().is_empty() => None,
                Some(p) => Some(p),
                None => Some("/run/monitoreo-reader/reader.sock".into()),
            },
            state_dir,
            keys_file,
            audit_log: raw.audit_log.filter(|s| !s.is_empty()).map(PathBuf::from),
            output_retention,
            output_quota,
            key_output_quota,
            key_max_running_jobs,
            key_max_job_records,
            default_timeout_s: raw.default_timeout_s.unwrap_or(10).max(1),
            max_connections,
            max_connections_per_client,
            max_plan_targets,
            header_timeout: secs(raw.header_timeout_s, 10, "header_timeout_s")?,
            body_timeout: secs(raw.body_timeout_s, 30, "body_timeout_s")?,
            body_min_rate: raw.body_min_rate.unwrap_or(1024),
            keepalive_timeout: secs(raw.keepalive_timeout_s, 5, "keepalive_timeout_s")?,
            send_timeout: secs(raw.send_timeout_s, 30, "send_timeout_s")?,
            auth_failures_per_minute: raw.auth_failures_per_minute.unwrap_or(20),
            tls,
            allow_plaintext,
            cpu_window: Duration::from_secs_f64(cpu),
            require_start_time: raw.require_start_time.unwrap_or(false),
            metrics_public: raw.metrics_public.unwrap_or(false),
            groups: groups(raw.metrics)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_suffixes() {
        assert_eq!(parse_duration("7d"), Some(Duration::from_secs(7 * 86400)));
        assert_eq!(parse_duration("30m"), Some(Duration::from_secs(1800)));
        assert_eq!(parse_duration("x"), None);
    }

    #[test]
    fn listen_takes_addresses_and_host_names() {
        let v4 = resolve_listen("127.0.0.1:9").unwrap();
        assert_eq!(v4, "127.0.0.1:9".parse().unwrap());
        let v6 = resolve_listen("[::1]:9").unwrap();
        assert_eq!(v6, "[::1]:9".parse().unwrap());
        let named = resolve_listen("localhost:9").unwrap();
        assert_eq!(named, "127.0.0.1:9".parse().unwrap());
        for bad in ["localhost", ":9", "localhost:http", "localhost:70000"] {
            let e = resolve_listen(bad).unwrap_err();
            assert!(e.starts_with("listen: "), "{bad}: {e}");
        }
        let e = resolve_listen("no-such-host.invalid:9").unwrap_err();
        assert!(
            e.contains("\"no-such-host.invalid\" does not resolve"),
            "{e}"
        );
    }

    #[test]
    fn sizes_take_binary_suffixes() {
        assert_eq!(parse_size("2G"), Some(2 << 30));
        assert_eq!(parse_size("512M"), Some(512 << 20));
        assert_eq!(parse_size("100k"), Some(100 << 10));
        assert_eq!(parse_size("4096"), Some(4096));
        assert_eq!(parse_size("G"), None);
        assert_eq!(parse_size("99999999999T"), None);
    }

    #[test]
    fn retention_has_one_name_at_a_time() {
        let both = Raw {
            output_retention: Some("1d".into()),
            job_retention: Some("2d".into()),
            ..Raw::default()
        };
        assert!(Config::validate(both).is_err());
        let old = Raw {
            job_retention: Some("2d".into()),
            ..Raw::default()
        };
        let c = Config::validate(old).unwrap();
        assert_eq!(c.output_retention, Duration::from_secs(2 * 86400));
        let bad = Raw {
            output_quota: Some("lots".into()),
            ..Raw::default()
        };
        assert!(Config::validate(bad).unwrap_err().contains("output_quota"));
    }

    #[test]
    fn per_key_limits_have_defaults_and_bounds() {
        let c = Config::validate(Raw::default()).unwrap();
        assert_eq!(c.key_output_quota, 512 << 20, "a quarter of output_quota");
        assert_eq!(c.key_max_running_jobs, None, "half the helper's max_jobs");
        assert_eq!(c.key_max_job_records, 1000);
        let c = Config::validate(raw(
            "output_quota = \"8M\"\nkey_output_quota = \"3M\"\nkey_max_running_jobs = 2\nkey_max_job_records = 5",
        ))
        .unwrap();
        assert_eq!(
            (
                c.key_output_quota,
                c.key_max_running_jobs,
                c.key_max_job_records
            ),
            (3 << 20, Some(2), 5)
        );
        for (bad, names) in [
            ("key_output_quota = \"3G\"", "output_quota"),
            ("key_output_quota = \"x\"", "key_output_quota"),
            ("key_max_running_jobs = 0", "key_max_running_jobs"),
            ("key_max_job_records = 0", "key_max_job_records"),
            (
                "key_max_job_records = 2\nkey_max_running_jobs = 3",
                "key_max_job_records",
            ),
        ] {
            let e = Config::validate(raw(bad)).unwrap_err();
            assert!(e.contains(names), "{bad}: {e}");
        }
    }

    #[test]
    fn empty_config_gets_defaults() {
        let c = Config::validate(Raw::default()).unwrap();
        assert_eq!(c.listen.port(), 8470);
        assert_eq!(c.keys_file, PathBuf::from("/var/lib/monitoreo/keys.json"));
        assert!(c.tls.is_none() && !c.allow_plaintext);
        assert!(c.max_connections >= 16);
    }

    #[test]
    fn the_connection_cap_follows_the_descriptor_limit() {
        assert_eq!(default_max_connections(400), 108);
        assert_eq!(default_max_connections(1024), 114);
        assert_eq!(default_max_connections(65536), 114);
        assert_eq!(default_max_connections(100), 16);
    }

    fn raw(text: &str) -> Raw {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn plaintext_beyond_loopback_is_refused_unless_allowed_or_tls() {
        let e = Config::validate(raw("listen = \"0.0.0.0:8470\"")).unwrap_err();
        assert!(e.contains("allow_plaintext = true"), "{e}");
        let c = Config::validate(raw("listen = \"0.0.0.0:8470\"\nallow_plaintext = true"));
        assert!(c.unwrap().allow_plaintext);
        let c = Config::validate(raw(
            "listen = \"0.0.0.0:8470\"\ntls_cert = \"c.pem\"\ntls_key = \"k.pem\"",
        ));
        assert!(c.unwrap().tls.is_some());
        for half in [
            "tls_cert = \"c\"",
            "tls_key = \"k\"",
            "tls_client_ca = \"ca\"",
        ] {
            assert!(Config::validate(raw(half)).is_err(), "{half}");
        }
        assert!(Config::validate(raw("body_timeout_s = 0")).is_err());
    }

    #[test]
    fn process_groups_are_opt_in_and_bad_rules_name_their_place() {
        assert!(Config::validate(Raw::default()).unwrap().groups.is_none());
        let c = Config::validate(raw(
            "[metrics.groups]\nmax_groups = 3\n[[metrics.groups.rule]]\ngroup = \"db\"\nname = \"postgres\"\n[[metrics.groups.rule]]\ngroup = \"{user}\"\ncmdline = \".\"\n",
        ))
        .unwrap();
        let g = c.groups.unwrap();
        assert_eq!((g.rules.len(), g.max_groups), (2, 3));
        for (bad, says) in [
            ("[metrics.groups]\n", "has no [[metrics.groups.rule]]"),
            (
                "[metrics.groups]\nmax_groups = 0\n[[metrics.groups.rule]]\ngroup = \"a\"\nname = \"a\"",
                "max_groups must be at least 1",
            ),
            (
                "[[metrics.groups.rule]]\ngroup = \"a\"\nname = \"a\"\n[[metrics.groups.rule]]\ngroup = \"b\"\ncmdline = \"[\"",
                "metrics.groups.rule #2: cmdline",
            ),
        ] {
            let e = Config::validate(raw(bad)).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
        let e = toml::from_str::<Raw>("[metrics.groups]\nmax = 1").unwrap_err();
        assert!(e.to_string().contains("unknown field `max`"), "{e}");
    }
}
