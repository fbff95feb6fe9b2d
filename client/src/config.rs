//! The contexts file: named gateways, each with its URL and how to
//! authenticate. A key itself is never stored here nor taken from the
//! command line (where any user's `ps` would show it): a context names the
//! file or the environment variable that holds it.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::Failure;

/// The file as written: `current` and `[contexts.NAME]` tables.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current: Option<String>,
    #[serde(default)]
    pub contexts: BTreeMap<String, Context>,
}

/// One gateway.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Context {
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_file: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_env: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_cert: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_key: Option<PathBuf>,
}

impl Context {
    /// How the context authenticates, for `contexts ls`.
    pub fn auth(&self) -> String {
        let mut parts = Vec::new();
        if let Some(f) = &self.key_file {
            parts.push(format!("key file {}", f.display()));
        }
        if let Some(v) = &self.key_env {
            parts.push(format!("key in ${v}"));
        }
        if let Some(c) = &self.client_cert {
            parts.push(format!("client certificate {}", c.display()));
        }
        if parts.is_empty() {
            "none".into()
        } else {
            parts.join(", ")
        }
    }

    /// The bearer token, read now from its file or variable; `None` for a
    /// context that authenticates by client certificate alone.
    pub fn key(&self) -> Result<Option<String>, Failure> {
        let key = if let Some(f) = &self.key_file {
            std::fs::read_to_string(f)
                .map_err(|e| Failure::Local(format!("key file {}: {e}", f.display())))?
        } else if let Some(v) = &self.key_env {
            std::env::var(v).map_err(|_| {
                Failure::Local(format!(
                    "the environment variable {v} holding the key is not set"
                ))
            })?
        } else {
            return Ok(None);
        };
        let key = key.trim().to_string();
        if key.is_empty() || key.bytes().any(|b| !b.is_ascii_graphic()) {
            return Err(Failure::Local(
                "the key is empty or holds characters a key does not have".into(),
            ));
        }
        Ok(Some(key))
    }
}

/// `$XDG_CONFIG_HOME/monitoreo/config.toml`, else `~/.config/...`.
pub fn default_path() -> Result<PathBuf, Failure> {
    let base = match std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
        Some(x) => PathBuf::from(x),
        None => match std::env::var_os("HOME").filter(|v| !v.is_empty()) {
            Some(h) => PathBuf::from(h).join(".config"),
            None => {
                return Err(Failure::Local(
                    "neither XDG_CONFIG_HOME nor HOME is set: name the file with --config".into(),
                ))
            }
        },
    };
    Ok(base.join("monitoreo").join("config.toml"))
}

impl Config {
    /// Reads `path`; a missing file is an empty configuration.
    pub fn load(path: &Path) -> Result<Config, Failure> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Config::default()),
            Err(e) => return Err(Failure::Local(format!("{}: {e}", path.display()))),
        };
        toml::from_str(&text).map_err(|e| Failure::Local(format!("{}: {e}", path.display())))
    }

    /// Writes the file atomically, mode 0600 in a 0700 directory made if
    /// missing: it names where keys are, which is nobody else's business.
    pub fn save(&self, path: &Path) -> Result<(), Failure> {
        let io = |e: std::io::Error| Failure::Local(format!("{}: {e}", path.display()));
        let text = toml::to_string(self)
            .map_err(|e| Failure::Local(format!("cannot write the configuration: {e}")))?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            if !dir.exists() {
                std::fs::create_dir_all(dir).map_err(io)?;
                std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                    .map_err(io)?;
            }
        }
        let tmp = path.with_extension(format!("toml.{}.tmp", std::process::id()));
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io)?;
        f.write_all(text.as_bytes())
            .and_then(|()| f.sync_all())
            .map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)
    }
}
