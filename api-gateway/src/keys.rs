//! API keys: a JSON file of `{name, sha256, scopes, created, expires,
//! revoked}` records. Tokens are `mon_` + base64url(32 random bytes) and
//! are never stored; lookups hash the presented token with SHA-256 and
//! compare in constant time. The server re-reads the file when its mtime
//! changes, so `keys add`/`revoke` apply without a restart. Writes are
//! atomic (temp file + rename) with mode 0600.
//!
//! A key may instead name a client-certificate subject (`cert_subject`,
//! e.g. `CN=ops`): over TLS with `tls_client_ca`, a verified client
//! certificate with that subject authenticates as the key when no bearer
//! header is sent. Such a key has no token anyone was shown.
//!
//! The keys commands may run as root in a directory the gateway user owns,
//! i.e. one a compromised gateway can fill with links. So they read and
//! write only through a descriptor of that directory, never follow a link
//! at the keys file or at a temp name, and, run as root, first become the
//! user who owns the directories on the way to it ([`act_as_owner`]).

use std::ffi::OsStr;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

use base64::Engine;
use nix::errno::Errno;
use nix::fcntl::{AtFlags, OFlag};
use nix::sys::stat::{Mode, SFlag};
use nix::unistd::{Gid, Uid};
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};

use crate::x509::Subject;

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    Read,
    Signal,
    Renice,
    Exec,
    /// Sees and cancels every key's jobs, not only its own.
    Admin,
    /// `GET /metrics` (unless `metrics_public` opens it to everyone).
    Metrics,
}

impl Scope {
    /// Every scope, in the order the docs list them.
    pub const ALL: [Scope; 5] = [
        Scope::Read,
        Scope::Signal,
        Scope::Renice,
        Scope::Exec,
        Scope::Admin,
    ];

    pub fn parse(s: &str) -> Option<Scope> {
        match s.trim() {
            "read" => Some(Scope::Read),
            "signal" => Some(Scope::Signal),
            "renice" => Some(Scope::Renice),
            "exec" => Some(Scope::Exec),
            "admin" => Some(Scope::Admin),
            "metrics" => Some(Scope::Metrics),
            _ => None,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Signal => "signal",
            Scope::Renice => "renice",
            Scope::Exec => "exec",
            Scope::Admin => "admin",
            Scope::Metrics => "metrics",
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
    /// A client-certificate subject that authenticates as this key
    /// (`CN=ops`); such a key's token was never shown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cert_subject: Option<String>,
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
    #[error(
        "{0} is a symbolic link; the keys commands do not follow links there \
         (replace it with the real file or directory, or configure the real path)"
    )]
    Link(PathBuf),
    #[error("acting as uid {uid}, gid {gid} (the owner of {dir}): {why}")]
    Identity {
        dir: PathBuf,
        uid: u32,
        gid: u32,
        why: String,
    },
}

/// A uid and gid: whom the keys commands act as, and to whom a keys file
/// they write is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    pub uid: Uid,
    pub gid: Gid,
}

/// Why a presented token was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum AuthFailure {
    Unknown,
    Expired,
    Revoked,
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

/// Splits a keys file path into its directory and file name.
fn split(path: &Path) -> Result<(&Path, &OsStr), KeyError> {
    let name = path.file_name().ok_or_else(|| {
        KeyError::Invalid(format!("keys file {} does not name a file", path.display()))
    })?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    Ok((dir, name))
}

/// An `O_NOFOLLOW` open of a link fails with `ELOOP` (`ENOTDIR` with
/// `O_DIRECTORY`); a link gets the error that says so.
fn link_or_io(path: &Path, e: Errno) -> KeyError {
    let is_link = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
    if matches!(e, Errno::ELOOP | Errno::ENOTDIR) && is_link {
        KeyError::Link(path.into())
    } else {
        KeyError::Io(path.into(), e.into())
    }
}

/// Opens the directory that holds the keys file without following a link
/// in its last component; every later open and rename is relative to it,
/// so a path swapped afterwards cannot redirect them.
fn open_dir(dir: &Path) -> Result<OwnedFd, KeyError> {
    nix::fcntl::open(
        dir,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| link_or_io(dir, e))
}

/// Reads `name` in `dir` without following a link (`None`: there is no
/// such file). `O_NONBLOCK` so a planted FIFO cannot hang the command;
/// anything but a regular file is refused before reading.
fn load_at(dir: &OwnedFd, name: &OsStr, path: &Path) -> Result<Option<Vec<KeyRecord>>, KeyError> {
    let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK;
    let fd = match nix::fcntl::openat(dir, name, flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Ok(None),
        Err(Errno::ELOOP) => {
            let st = nix::sys::stat::fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW);
            return Err(match st {
                Ok(st)
                    if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFLNK =>
                {
                    KeyError::Link(path.into())
                }
                _ => KeyError::Io(path.into(), Errno::ELOOP.into()),
            });
        }
        Err(e) => return Err(KeyError::Io(path.into(), e.into())),
    };
    let st = nix::sys::stat::fstat(&fd).map_err(|e| KeyError::Io(path.into(), e.into()))?;
    if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT != SFlag::S_IFREG {
        return Err(KeyError::Invalid(format!(
            "keys file {} is not a regular file",
            path.display()
        )));
    }
    let mut b = Vec::new();
    File::from(fd)
        .read_to_end(&mut b)
        .map_err(|e| KeyError::Io(path.into(), e))?;
    if b.is_empty() {
        return Ok(Some(Vec::new()));
    }
    serde_json::from_slice(&b)
        .map(Some)
        .map_err(|e| KeyError::Parse(path.into(), e))
}

/// What the keys commands read: like [`load`], but a link at the keys file
/// or at its directory is an error instead of being followed, and so is
/// anything but a regular file. A missing file or directory is an empty
/// list.
pub fn load_no_follow(path: &Path) -> Result<Vec<KeyRecord>, KeyError> {
    Ok(read_no_follow(path)?.unwrap_or_default())
}

/// Like [`load_no_follow`], but says whether there is a keys file at all:
/// `None` when neither it nor its directory exists.
pub fn read_no_follow(path: &Path) -> Result<Option<Vec<KeyRecord>>, KeyError> {
    let (dir_path, name) = split(path)?;
    let dir = match open_dir(dir_path) {
        Ok(d) => d,
        Err(KeyError::Io(_, e)) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    load_at(&dir, name, path)
}

/// A temp file name nobody can predict (16 bytes from the OS RNG), so a
/// link cannot be planted at it in advance.
fn temp_name() -> Result<String, KeyError> {
    let mut raw = [0u8; 16];
    SystemRandom::new()
        .fill(&mut raw)
        .map_err(|_| KeyError::Invalid("the OS random generator failed".into()))?;
    let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!(".keys.{hex}.tmp"))
}

/// Writes atomically with mode 0600 through a descriptor of the keys
/// file's directory: the temp file is created `O_EXCL | O_NOFOLLOW` under a
/// random name, its mode and owner are set on the descriptor, and it is
/// renamed over the keys file within the same directory (which replaces a
/// link there rather than writing through it). `give_to` (from
/// [`act_as_owner`]) is who gets the file when root writes it.
pub fn save(path: &Path, keys: &[KeyRecord], give_to: Option<Owner>) -> Result<(), KeyError> {
    let (dir_path, name) = split(path)?;
    // Whatever the caller's umask: the directory holds the keys and, as
    // the state dir, every job's output.
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir_path)
        .map_err(|e| KeyError::Io(dir_path.into(), e))?;
    let dir = open_dir(dir_path)?;
    save_at(&dir, name, path, keys, give_to)
}

fn save_at(
    dir: &OwnedFd,
    name: &OsStr,
    path: &Path,
    keys: &[KeyRecord],
    give_to: Option<Owner>,
) -> Result<(), KeyError> {
    let io = |e: std::io::Error| KeyError::Io(path.into(), e);
    let body = serde_json::to_vec_pretty(keys).map_err(|e| KeyError::Parse(path.into(), e))?;
    let tmp = temp_name()?;
    let fd = nix::fcntl::openat(
        dir,
        tmp.as_str(),
        OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_WRONLY | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o600),
    )
    .map_err(|e| io(e.into()))?;
    let mut f = File::from(fd);
    let written = (|| -> std::io::Result<()> {
        f.write_all(&body)?;
        // The umask may have taken bits off; set exactly 0600.
        nix::sys::stat::fchmod(&f, Mode::from_bits_truncate(0o600))?;
        if let Some(o) = give_to {
            nix::unistd::fchown(&f, Some(o.uid), Some(o.gid))?;
        }
        f.sync_all()?;
        nix::fcntl::renameat(dir, tmp.as_str(), dir, name)?;
        Ok(())
    })();
    if let Err(e) = written {
        let _ = nix::unistd::unlinkat(dir, tmp.as_str(), nix::unistd::UnlinkatFlags::NoRemoveDir);
        return Err(io(e));
    }
    // Make the rename itself durable.
    nix::unistd::fsync(dir).map_err(|e| io(e.into()))
}

/// The owner of `dir`, or of its nearest existing ancestor when it does
/// not exist yet (it will be created by whoever acts there).
fn owner_of(dir: &Path) -> Result<Owner, KeyError> {
    use std::os::unix::fs::MetadataExt;
    for a in dir.ancestors() {
        let a = if a.as_os_str().is_empty() {
            Path::new(".")
        } else {
            a
        };
        match std::fs::metadata(a) {
            Ok(m) => {
                return Ok(Owner {
                    uid: Uid::from_raw(m.uid()),
                    gid: Gid::from_raw(m.gid()),
                })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(KeyError::Io(a.into(), e)),
        }
    }
    Err(KeyError::Invalid(format!(
        "no part of {} exists",
        dir.display()
    )))
}

/// Run as root, the keys commands give up root before they touch the keys
/// file: whoever owns a directory on the way to it can plant links there,
/// and root following one reads and writes wherever that user likes. So
/// they become that user (`setgroups([])`, `setresgid`, `setresuid`, then
/// checked), and a link then reaches only what its planter could reach
/// anyway. With the default `keys_file` that user is the owner of the
/// state dir.
///
/// Every existing directory from `/` to the keys file's directory is
/// looked at without following its last component (a planted link counts
/// as its planter's). One non-root owner: act as it, with the group of the
/// deepest directory it owns. Two different ones: refuse, acting as
/// either would expose the other. Root's alone: stay root (the
/// descriptor-relative I/O of [`save`] and [`load_no_follow`] is the
/// defence there) and return `Some(owner of state_dir)`, to whom a written
/// keys file is given so that the gateway can read it. Not root: nothing
/// changes and the result is `None`.
///
/// Called on the main thread before any other thread exists, so none is
/// left running as root.
pub fn act_as_owner(state_dir: &Path, keys_file: &Path) -> Result<Option<Owner>, KeyError> {
    use std::os::unix::fs::MetadataExt;
    if !nix::unistd::geteuid().is_root() {
        return Ok(None);
    }
    let dir = split(keys_file)?.0;
    let dir = if dir.is_absolute() {
        dir.to_path_buf()
    } else {
        let cwd = std::env::current_dir().map_err(|e| KeyError::Io(".".into(), e))?;
        cwd.join(dir)
    };
    // (uid, gid, directory), deepest first.
    let mut owners: Vec<(Uid, Gid, &Path)> = Vec::new();
    for a in dir.ancestors() {
        let m = match std::fs::symlink_metadata(a) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(KeyError::Io(a.into(), e)),
        };
        let uid = Uid::from_raw(m.uid());
        if !uid.is_root() && !owners.iter().any(|o| o.0 == uid) {
            owners.push((uid, Gid::from_raw(m.gid()), a));
        }
    }
    match owners.as_slice() {
        [] => Ok(Some(owner_of(state_dir)?)),
        [(uid, gid, d)] => {
            become_owner(
                Owner {
                    uid: *uid,
                    gid: *gid,
                },
                d,
            )?;
            Ok(None)
        }
        [(u1, _, d1), (u2, _, d2), ..] => Err(KeyError::Invalid(format!(
            "the way to keys file {} passes through directories of different users \
             ({} is uid {u1}, {} is uid {u2}); acting as either would expose the \
             other, so nothing was done: keep the keys file in the state dir",
            keys_file.display(),
            d1.display(),
            d2.display(),
        ))),
    }
}

/// The user the packaged gateway runs as (the unit's `User=`, created by
/// sysusers.d): the owner of a state dir the keys commands make when no
/// directory on the disk names the gateway's user.
pub const GATEWAY_USER: &str = "monitoreo";

/// Run as root by `keys add`, makes a missing `state_dir` under a
/// root-owned directory, mode 0700, for [`GATEWAY_USER`]: left to the
/// umask and root, it would be 0755, open to every user. Without that
/// user nothing on the machine names the gateway's user, and the
/// directory is made root's, still 0700 (a gateway run as another user
/// then fails on it at start rather than exposing anything). Its missing
/// parents are made root's, 0755, like `/var/lib`. A state dir that
/// exists, or whose nearest existing ancestor is a user's (then [`save`]
/// makes it, as that user), is not touched. Returns whose it was made,
/// `None` when it was not.
pub fn make_state_dir(state_dir: &Path) -> Result<Option<Owner>, KeyError> {
    match std::fs::symlink_metadata(state_dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Ok(_) => return Ok(None),
        Err(e) => return Err(KeyError::Io(state_dir.into(), e)),
    }
    if !nix::unistd::geteuid().is_root() || !owner_of(state_dir)?.uid.is_root() {
        return Ok(None);
    }
    let io = |e: std::io::Error| KeyError::Io(state_dir.into(), e);
    let owner = nix::unistd::User::from_name(GATEWAY_USER)
        .map_err(|e| io(e.into()))?
        .map_or(
            Owner {
                uid: Uid::from_raw(0),
                gid: Gid::from_raw(0),
            },
            |u| Owner {
                uid: u.uid,
                gid: u.gid,
            },
        );
    if let Some(parent) = state_dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(parent)
            .map_err(|e| KeyError::Io(parent.into(), e))?;
    }
    nix::unistd::mkdir(state_dir, Mode::from_bits_truncate(0o700)).map_err(|e| io(e.into()))?;
    // Owner and exact mode (the umask may have taken bits) are set on a
    // descriptor of the directory just made, not by path.
    let fd = nix::fcntl::open(
        state_dir,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| io(e.into()))?;
    nix::unistd::fchown(&fd, Some(owner.uid), Some(owner.gid)).map_err(|e| io(e.into()))?;
    nix::sys::stat::fchmod(&fd, Mode::from_bits_truncate(0o700)).map_err(|e| io(e.into()))?;
    Ok(Some(owner))
}

/// Sets every uid and gid to `who` and drops supplementary groups, then
/// reads them back and checks that root cannot be taken back: a partial
/// change must not go unnoticed.
fn become_owner(who: Owner, dir: &Path) -> Result<(), KeyError> {
    use nix::unistd::{getgroups, getresgid, getresuid, setgroups, setresgid, setresuid, User};
    let uid = who.uid;
    let fail = |gid: Gid, why: String| KeyError::Identity {
        dir: dir.into(),
        uid: uid.as_raw(),
        gid: gid.as_raw(),
        why,
    };
    // Group root would keep access that the owner does not have: take
    // the owner's own primary group instead, if it has one.
    let gid = if who.gid.as_raw() == 0 {
        User::from_uid(uid)
            .ok()
            .flatten()
            .map(|u| u.gid)
            .filter(|g| g.as_raw() != 0)
            .ok_or_else(|| {
                fail(
                    who.gid,
                    "the directory's group is root and the user has no other \
                     primary group; give the directory the gateway's group"
                        .into(),
                )
            })?
    } else {
        who.gid
    };
    setgroups(&[]).map_err(|e| fail(gid, format!("setgroups: {e}")))?;
    setresgid(gid, gid, gid).map_err(|e| fail(gid, format!("setresgid: {e}")))?;
    setresuid(uid, uid, uid).map_err(|e| fail(gid, format!("setresuid: {e}")))?;
    let u = getresuid().map_err(|e| fail(gid, format!("getresuid: {e}")))?;
    let g = getresgid().map_err(|e| fail(gid, format!("getresgid: {e}")))?;
    let groups = getgroups().map_err(|e| fail(gid, format!("getgroups: {e}")))?;
    let uids_ok = [u.real, u.effective, u.saved].iter().all(|&x| x == uid);
    let gids_ok = [g.real, g.effective, g.saved].iter().all(|&x| x == gid);
    if !uids_ok || !gids_ok || groups.iter().any(|&x| x != gid) {
        return Err(fail(
            gid,
            format!("still uids {u:?}, gids {g:?}, groups {groups:?}"),
        ));
    }
    if nix::unistd::setuid(Uid::from_raw(0)).is_ok() {
        return Err(fail(gid, "root could be taken back".into()));
    }
    Ok(())
}

/// What a key name may be, for messages.
pub const NAME_RULE: &str = "1-64 characters of A-Z a-z 0-9 - _ .";

/// Whether `name` follows [`NAME_RULE`].
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

/// Creates a key; returns the token (shown once). With `cert_subject`
/// the key authenticates by client certificate, and the token returned
/// is not to be shown.
pub fn add(
    path: &Path,
    name: &str,
    scopes: Vec<Scope>,
    expires_in: Option<std::time::Duration>,
    cert_subject: Option<&str>,
    give_to: Option<Owner>,
) -> Result<String, KeyError> {
    if !valid_name(name) {
        return Err(KeyError::Invalid(format!("key names are {NAME_RULE}")));
    }
    let cert_subject = match cert_subject {
        Some(s) => Some(
            Subject::parse(s)
                .map_err(|e| KeyError::Invalid(format!("--cert-subject: {e}")))?
                .to_string(),
        ),
        None => None,
    };
    let mut keys = load_no_follow(path)?;
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
    let now = crate::clock::now_secs();
    keys.push(KeyRecord {
        name: name.into(),
        sha256: sha256_hex(&token),
        scopes,
        created: now,
        expires: expires_in.map(|d| now + d.as_secs()),
        revoked: false,
        cert_subject,
    });
    save(path, &keys, give_to)?;
    Ok(token)
}

/// Marks a key revoked (kept so the audit trail's names stay meaningful).
pub fn revoke(path: &Path, name: &str, give_to: Option<Owner>) -> Result<(), KeyError> {
    let mut keys = load_no_follow(path)?;
    let k = keys
        .iter_mut()
        .find(|k| k.name == name)
        .ok_or_else(|| KeyError::NoSuchKey(name.into()))?;
    k.revoked = true;
    save(path, &keys, give_to)
}

/// Whether a stored key is usable now.
fn usable(k: &KeyRecord, now: u64) -> Result<Caller, AuthFailure> {
    if k.revoked {
        return Err(AuthFailure::Revoked);
    }
    if k.expires.is_some_and(|e| e <= now) {
        return Err(AuthFailure::Expired);
    }
    Ok(Caller {
        name: k.name.clone(),
        scopes: k.scopes.clone(),
    })
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

    /// The keys, re-read if the file changed.
    fn current(&self) -> std::sync::MutexGuard<'_, (Option<FileStamp>, Vec<KeyRecord>)> {
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
        cache
    }

    /// Checks a bearer token.
    pub fn authenticate(&self, token: &str) -> Result<Caller, AuthFailure> {
        let cache = self.current();
        let want = sha256_hex(token);
        let now = crate::clock::now_secs();
        for k in &cache.1 {
            if constant_time_eq(k.sha256.as_bytes(), want.as_bytes()) {
                return usable(k, now);
            }
        }
        Err(AuthFailure::Unknown)
    }

    /// Checks the subject of a verified client certificate against the
    /// keys' `cert_subject`.
    pub fn authenticate_subject(&self, subject: &Subject) -> Result<Caller, AuthFailure> {
        let cache = self.current();
        let now = crate::clock::now_secs();
        cache
            .1
            .iter()
            .find(|k| {
                k.cert_subject
                    .as_deref()
                    .and_then(|s| Subject::parse(s).ok())
                    .is_some_and(|s| s.matches(subject))
            })
            .map_or(Err(AuthFailure::Unknown), |k| usable(k, now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn added_key_authenticates_and_revoked_key_does_not() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("keys.json");
        let t = add(&p, "ops", vec![Scope::Read], None, None, None).unwrap();
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

    #[test]
    fn a_certificate_subject_authenticates_as_its_key_in_any_order() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("keys.json");
        add(
            &p,
            "ops",
            vec![Scope::Read],
            None,
            Some("cn=ops, O=Example"),
            None,
        )
        .unwrap();
        let s = KeyStore::new(p.clone());
        let sub = Subject::parse("O=Example,CN=ops").unwrap();
        assert_eq!(s.authenticate_subject(&sub).unwrap().name, "ops");
        for other in ["CN=ops", "CN=ops+O=Example"] {
            let other = Subject::parse(other).unwrap();
            assert_eq!(
                s.authenticate_subject(&other).unwrap_err(),
                AuthFailure::Unknown
            );
        }
        assert!(add(&p, "bad", vec![Scope::Read], None, Some("CN"), None).is_err());
        std::thread::sleep(std::time::Duration::from_millis(20));
        revoke(&p, "ops", None).unwrap();
        assert_eq!(
            s.authenticate_subject(&sub).unwrap_err(),
            AuthFailure::Revoked
        );
    }

    #[test]
    fn a_link_at_the_keys_file_is_refused_and_its_target_untouched() {
        let d = tempfile::tempdir().unwrap();
        let target = d.path().join("elsewhere.json");
        std::fs::write(&target, "[]").unwrap();
        let p = d.path().join("keys.json");
        std::os::unix::fs::symlink(&target, &p).unwrap();
        let link = |r: Result<(), KeyError>| matches!(r, Err(KeyError::Link(l)) if l == p);
        assert!(link(
            add(&p, "ops", vec![Scope::Read], None, None, None).map(drop)
        ));
        assert!(link(revoke(&p, "ops", None)));
        assert!(link(load_no_follow(&p).map(drop)));
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "[]");
        assert!(std::fs::symlink_metadata(&p).unwrap().is_symlink());
    }

    #[test]
    fn a_link_at_the_keys_directory_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let real = d.path().join("real");
        std::fs::create_dir(&real).unwrap();
        let dir = d.path().join("linked");
        std::os::unix::fs::symlink(&real, &dir).unwrap();
        let p = dir.join("keys.json");
        let r = add(&p, "ops", vec![Scope::Read], None, None, None);
        assert!(matches!(r, Err(KeyError::Link(l)) if l == dir));
        assert!(std::fs::read_dir(&real).unwrap().next().is_none());
    }

    #[test]
    fn a_fifo_at_the_keys_file_is_refused_without_blocking() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("keys.json");
        nix::unistd::mkfifo(&p, Mode::from_bits_truncate(0o600)).unwrap();
        assert!(matches!(load_no_follow(&p), Err(KeyError::Invalid(_))));
    }

    #[test]
    fn writes_leave_only_the_keys_file() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("keys.json");
        add(&p, "a", vec![Scope::Read], None, None, None).unwrap();
        add(&p, "b", vec![Scope::Exec], None, None, None).unwrap();
        let names: Vec<_> = std::fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["keys.json"]);
        assert_eq!(load_no_follow(&p).unwrap().len(), 2);
        assert!(load_no_follow(&d.path().join("missing/keys.json"))
            .unwrap()
            .is_empty());
    }
}
