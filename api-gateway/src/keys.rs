//! API keys: a JSON file of `{name, sha256, scopes, created, expires,
//! revoked}` records. Tokens are `mon_` + base64url(32 random bytes) and
//! are never stored; lookups hash the presented token with SHA-256 and
//! compare in constant time. The server re-reads the file when its mtime
//! changes, so `keys add`/`revoke` apply without a restart. Writes are
//! atomic (temp file + rename) with mode 0600.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    Read,
    Signal,
    Renice,
    Exec,
}

impl Scope {
    pub fn parse(s: &str) -> Option<Scope> {
        match s.trim() {
            "read" => Some(Scope::Read),
            "signal" => Some(Scope::Signal),
            "renice" => Some(Scope::Renice),
            "exec" => Some(Scope::Exec),
            _ => None,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Signal => "signal",
            Scope::Renice => "renice",
            Scope::Exec => "exec",
        }
    }
}

/// One stored key (no secret: only the token's SHA-256, hex).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyRecord {
    pub name: String,
    pub sha256: String,
    pub scopes: Vec<Scope>,
    /// Unix seconds.
    pub created: u64,
    pub expires: Option<u64>,
    #[serde(default)]
    pub revoked: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("keys file {0}: {1}")]
    Io(PathBuf, std::io::Error),
    #[error("keys file {0} is not valid: {1}")]
    Parse(PathBuf, serde_json::Error),
    #[error("a key named {0:?} already exists")]
    Exists(String),
    #[error("no key named {0:?}")]
    NoSuchKey(String),
    #[error("{0}")]
    Invalid(String),
}

/// Why a presented token was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum AuthFailure {
    Unknown,
    Expired,
    Revoked,
}

pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn sha256_hex(token: &str) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// Compares without an early exit (ring's `verify_slices_are_equal` is
/// deprecated for outside use): the time depends only on the lengths, which
/// are the fixed 64 hex digits of a SHA-256.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Reads the keys file; a missing file is an empty list.
pub fn load(path: &Path) -> Result<Vec<KeyRecord>, KeyError> {
    match std::fs::read(path) {
        Ok(b) if b.is_empty() => Ok(Vec::new()),
        Ok(b) => serde_json::from_slice(&b).map_err(|e| KeyError::Parse(path.into(), e)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(KeyError::Io(path.into(), e)),
    }
}

/// Writes atomically with mode 0600. When run as root, the file is chowned
/// to the owner of `owner_of` (the state dir) so the gateway can read it.
pub fn save(path: &Path, keys: &[KeyRecord], owner_of: Option<&Path>) -> Result<(), KeyError> {
    let io = |e| KeyError::Io(path.into(), e);
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io)?;
    let tmp = dir.join(format!(".keys.json.{}", std::process::id()));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io)?;
    let body = serde_json::to_vec_pretty(keys).map_err(|e| KeyError::Parse(path.into(), e))?;
    f.write_all(&body).map_err(io)?;
    f.sync_all().map_err(io)?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
    if nix::unistd::geteuid().is_root() {
        if let Some(meta) = owner_of.and_then(|p| std::fs::metadata(p).ok()) {
            use std::os::unix::fs::MetadataExt;
            std::os::unix::fs::chown(&tmp, Some(meta.uid()), Some(meta.gid())).map_err(io)?;
        }
    }
    std::fs::rename(&tmp, path).map_err(io)
}

/// Creates a key; returns the token (shown once).
pub fn add(
    path: &Path,
    name: &str,
    scopes: Vec<Scope>,
    expires_in: Option<std::time::Duration>,
    owner_of: Option<&Path>,
) -> Result<String, KeyError> {
    if name.is_empty()
        || name.len() > 64
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    {
        return Err(KeyError::Invalid(
            "key names are 1-64 characters of A-Z a-z 0-9 - _ .".into(),
        ));
    }
    let mut keys = load(path)?;
    if keys.iter().any(|k| k.name == name) {
        return Err(KeyError::Exists(name.into()));
    }
    let mut raw = [0u8; 32];
    SystemRandom::new()
        .fill(&mut raw)
        .map_err(|_| KeyError::Invalid("the OS random generator failed".into()))?;
    let token = format!(
        "mon_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
    );
    let now = now_secs();
    keys.push(KeyRecord {
        name: name.into(),
        sha256: sha256_hex(&token),
        scopes,
        created: now,
        expires: expires_in.map(|d| now + d.as_secs()),
        revoked: false,
    });
    save(path, &keys, owner_of)?;
    Ok(token)
}

/// Marks a key revoked (kept so the audit trail's names stay meaningful).
pub fn revoke(path: &Path, name: &str, owner_of: Option<&Path>) -> Result<(), KeyError> {
    let mut keys = load(path)?;
    let k = keys
        .iter_mut()
        .find(|k| k.name == name)
        .ok_or_else(|| KeyError::NoSuchKey(name.into()))?;
    k.revoked = true;
    save(path, &keys, owner_of)
}

/// The server's view: the keys, reloaded when the file's mtime changes.
pub struct KeyStore {
    path: PathBuf,
    cache: Mutex<(Option<FileStamp>, Vec<KeyRecord>)>,
}

/// What identifies one version of the keys file: mtime, size and inode
/// (writes are renames, so the inode changes even within one mtime tick).
type FileStamp = (SystemTime, u64, u64);

/// A caller who presented a valid key.
#[derive(Debug, Clone)]
pub struct Caller {
    pub name: String,
    pub scopes: Vec<Scope>,
}

impl KeyStore {
    pub fn new(path: PathBuf) -> KeyStore {
        KeyStore {
            path,
            cache: Mutex::new((None, Vec::new())),
        }
    }

    /// Checks a bearer token.
    pub fn authenticate(&self, token: &str) -> Result<Caller, AuthFailure> {
        let mtime: Option<FileStamp> = std::fs::metadata(&self.path).ok().and_then(|m| {
            use std::os::unix::fs::MetadataExt;
            Some((m.modified().ok()?, m.len(), m.ino()))
        });
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.0 != mtime || mtime.is_none() {
            match load(&self.path) {
                Ok(keys) => *cache = (mtime, keys),
                Err(e) => eprintln!("monitoreo-gateway: {e}; keeping the previous keys"),
            }
        }
        let want = sha256_hex(token);
        let now = now_secs();
        for k in &cache.1 {
            if constant_time_eq(k.sha256.as_bytes(), want.as_bytes()) {
                if k.revoked {
                    return Err(AuthFailure::Revoked);
                }
                if k.expires.is_some_and(|e| e <= now) {
                    return Err(AuthFailure::Expired);
                }
                return Ok(Caller {
                    name: k.name.clone(),
                    scopes: k.scopes.clone(),
                });
            }
        }
        Err(AuthFailure::Unknown)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn added_key_authenticates_and_revoked_key_does_not() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("keys.json");
        let t = add(&p, "ops", vec![Scope::Read], None, None).unwrap();
        assert!(t.starts_with("mon_") && t.len() == 4 + 43);
        let s = KeyStore::new(p.clone());
        assert_eq!(s.authenticate(&t).unwrap().name, "ops");
        assert_eq!(s.authenticate("mon_x").unwrap_err(), AuthFailure::Unknown);
        std::thread::sleep(std::time::Duration::from_millis(20));
        revoke(&p, "ops", None).unwrap();
        assert_eq!(s.authenticate(&t).unwrap_err(), AuthFailure::Revoked);
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}
