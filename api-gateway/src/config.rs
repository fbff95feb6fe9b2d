//! Gateway configuration: TOML with every key optional, validated into
//! [`Config`] with defaults filled in.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

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
    state_dir: Option<PathBuf>,
    keys_file: Option<PathBuf>,
    audit_log: Option<String>,
    job_retention: Option<String>,
    default_timeout_s: Option<u64>,
    max_connections: Option<usize>,
    header_timeout_s: Option<u64>,
    cpu_window_s: Option<f64>,
    require_start_time: Option<bool>,
    metrics_public: Option<bool>,
}

/// Validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub helper_socket: PathBuf,
    pub state_dir: PathBuf,
    pub keys_file: PathBuf,
    /// `None` = stderr.
    pub audit_log: Option<PathBuf>,
    pub job_retention: Duration,
    pub default_timeout_s: u64,
    pub max_connections: usize,
    pub header_timeout: Duration,
    pub cpu_window: Duration,
    /// DELETE and PATCH without `start_time` are refused (400).
    pub require_start_time: bool,
    /// `GET /metrics` without a key (otherwise it needs the `metrics`
    /// scope).
    pub metrics_public: bool,
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
        let retention = raw.job_retention.as_deref().unwrap_or("7d");
        let job_retention = parse_duration(retention)
            .ok_or_else(|| format!("job_retention: {retention:?} is not like 7d/12h/30m/60s"))?;
        let cpu = raw.cpu_window_s.unwrap_or(1.0);
        if !(0.1..=60.0).contains(&cpu) {
            return Err("cpu_window_s must be between 0.1 and 60".into());
        }
        let max_connections = raw.max_connections.unwrap_or(256);
        if max_connections == 0 {
            return Err("max_connections must be at least 1".into());
        }
        Ok(Config {
            listen,
            helper_socket: raw
                .helper_socket
                .unwrap_or_else(|| "/run/monitoreo/privhelper.sock".into()),
            state_dir,
            keys_file,
            audit_log: raw.audit_log.filter(|s| !s.is_empty()).map(PathBuf::from),
            job_retention,
            default_timeout_s: raw.default_timeout_s.unwrap_or(10).max(1),
            max_connections,
            header_timeout: Duration::from_secs(raw.header_timeout_s.unwrap_or(10).max(1)),
            cpu_window: Duration::from_secs_f64(cpu),
            require_start_time: raw.require_start_time.unwrap_or(false),
            metrics_public: raw.metrics_public.unwrap_or(false),
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
    fn empty_config_gets_defaults() {
        let c = Config::validate(Raw::default()).unwrap();
        assert_eq!(c.listen.port(), 8470);
        assert_eq!(c.keys_file, PathBuf::from("/var/lib/monitoreo/keys.json"));
    }
}
