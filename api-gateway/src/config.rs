//! Gateway configuration: TOML with every key optional, validated into
//! [`Config`] with defaults filled in.

use std::net::SocketAddr;
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
        let listen = raw.listen.as_deref().unwrap_or("127.0.0.1:8470");
        let listen: SocketAddr = listen
            .parse()
            .map_err(|_| format!("listen: {listen:?} is not an address:port"))?;
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
    fn empty_config_gets_defaults() {
        let c = Config::validate(Raw::default()).unwrap();
        assert_eq!(c.listen.port(), 8470);
        assert_eq!(c.keys_file, PathBuf::from("/var/lib/monitoreo/keys.json"));
    }
}
