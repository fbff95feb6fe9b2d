//! The `[read]` section of the policy file: whose processes the reader
//! may read, and which of their private fields.
//!
//! ```toml
//! [read]
//! owners = ["alice", 1000, "60600-60699"]   # or ["*"]: every owner
//! fields = ["exe", "cwd", "num_fds", "open_files", "connections",
//!           "io_counters", "memory_maps"]
//! ```
//!
//! The file is the helper's `policy.toml`; every other section is the
//! helper's and is not looked at here. Default deny: no `[read]` section,
//! or an empty list, reads nothing. Owners are matched against a
//! process's real uid, as the helper's `[signal]` owners are; user names
//! are resolved to uids when the file is loaded. A field name the reader
//! does not serve (`environ`, `mem`, ...) is an error naming it, never
//! ignored. The file must be owned by root (or the reader's own uid) and
//! writable by nobody else, as the helper demands.

use std::collections::HashSet;
use std::fmt;
use std::ops::RangeInclusive;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use serde::Deserialize;

use crate::wire::field;

/// What the `[read]` section allows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadPolicy {
    /// Every owner (`"*"`).
    any_owner: bool,
    uids: HashSet<u32>,
    ranges: Vec<RangeInclusive<u32>>,
    /// Bits of [`field`].
    pub fields: u8,
    /// The owners as the file writes them, for the gateway to show.
    pub owners: Vec<String>,
}

/// A policy that could not be loaded; the text says which line and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyError(pub String);

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PolicyError {}

#[derive(Deserialize)]
struct RawFile {
    read: Option<RawRead>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRead {
    #[serde(default)]
    owners: Vec<Owner>,
    #[serde(default)]
    fields: Vec<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Owner {
    Id(u32),
    Name(String),
}

impl ReadPolicy {
    /// Loads `path` after checking who may have written it.
    pub fn load(path: &Path) -> Result<ReadPolicy, PolicyError> {
        let err = |e: std::io::Error| PolicyError(format!("{}: {e}", path.display()));
        let meta = std::fs::metadata(path).map_err(err)?;
        check_trust(meta.uid(), meta.mode(), nix::unistd::geteuid().as_raw())
            .map_err(|e| PolicyError(format!("{}: {e}", path.display())))?;
        let text = std::fs::read_to_string(path).map_err(err)?;
        let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
        ReadPolicy::parse(&text, &passwd)
            .map_err(|e| PolicyError(format!("{}: {e}", path.display())))
    }

    /// Parses the policy text; `passwd` resolves user names.
    pub fn parse(text: &str, passwd: &str) -> Result<ReadPolicy, PolicyError> {
        let raw: RawFile = toml::from_str(text).map_err(|e| {
            let line = e.span().map_or(0, |s| {
                text[..s.start.min(text.len())].matches('\n').count() + 1
            });
            PolicyError(format!("line {line}: {}", e.message()))
        })?;
        let Some(read) = raw.read else {
            return Ok(ReadPolicy::default());
        };
        let mut p = ReadPolicy::default();
        for f in &read.fields {
            p.fields |= field::by_name(f).ok_or_else(|| {
                PolicyError(format!(
                    "[read] fields: {f:?} is not a field the reader serves (one of: {})",
                    field::NAMES.map(|(_, n)| n).join(", ")
                ))
            })?;
        }
        for o in read.owners {
            p.owners.push(match &o {
                Owner::Id(u) => u.to_string(),
                Owner::Name(n) => n.clone(),
            });
            match o {
                Owner::Id(u) => {
                    p.uids.insert(u);
                }
                Owner::Name(n) if n == "*" => p.any_owner = true,
                Owner::Name(n) => match range(&n) {
                    Some(r) => p.ranges.push(r),
                    None => {
                        let uid = uid_of(passwd, &n).ok_or_else(|| {
                            PolicyError(format!("[read] owners: no user named {n:?}"))
                        })?;
                        p.uids.insert(uid);
                    }
                },
            }
        }
        Ok(p)
    }

    /// The fields of a process of real uid `uid` that may be read, out of
    /// `asked`.
    pub fn allowed(&self, uid: u32, asked: u8) -> u8 {
        let owner = self.any_owner
            || self.uids.contains(&uid)
            || self.ranges.iter().any(|r| r.contains(&uid));
        if owner {
            asked & self.fields
        } else {
            0
        }
    }
}

/// `"A-B"` with A ≤ B, both decimal.
fn range(s: &str) -> Option<RangeInclusive<u32>> {
    let (a, b) = s.split_once('-')?;
    let (a, b) = (a.parse().ok()?, b.parse().ok()?);
    (a <= b).then_some(a..=b)
}

/// The uid of `name` in passwd text.
fn uid_of(passwd: &str, name: &str) -> Option<u32> {
    passwd.lines().find_map(|l| {
        let mut it = l.split(':');
        (it.next()? == name).then(|| it.nth(1)?.parse().ok())?
    })
}

/// A policy is trusted only if root (or the reader itself) owns it and
/// neither group nor others may write it.
pub fn check_trust(owner: u32, mode: u32, euid: u32) -> Result<(), String> {
    if owner != 0 && owner != euid {
        return Err(format!(
            "refusing an untrusted policy: owned by uid {owner}, must be owned by root"
        ));
    }
    if mode & 0o022 != 0 {
        return Err(format!(
            "refusing an untrusted policy: mode {:04o} is writable by group or others",
            mode & 0o7777
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0::/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n";

    #[test]
    fn owners_by_name_uid_range_and_star_allow_only_the_listed_fields() {
        let p = ReadPolicy::parse(
            "[signal]\nowners = [\"@jobs\"]\n[read]\nowners = [\"alice\", 7, \"60600-60699\"]\nfields = [\"exe\", \"io_counters\"]\n",
            PASSWD,
        )
        .unwrap();
        let two = field::EXE | field::IO_COUNTERS;
        for uid in [1000, 7, 60600, 60699] {
            assert_eq!(p.allowed(uid, field::ALL), two, "uid {uid}");
        }
        for uid in [0, 8, 60700, 65534] {
            assert_eq!(p.allowed(uid, field::ALL), 0, "uid {uid}");
        }
        assert_eq!(p.allowed(1000, field::CWD), 0);
        let star = ReadPolicy::parse("[read]\nowners = [\"*\"]\nfields = [\"cwd\"]\n", "").unwrap();
        assert_eq!(star.allowed(0, field::ALL), field::CWD);
    }

    #[test]
    fn no_read_section_reads_nothing() {
        let p = ReadPolicy::parse("[signal]\nowners = [\"@jobs\"]\n", PASSWD).unwrap();
        assert_eq!(p.allowed(1000, field::ALL), 0);
    }

    #[test]
    fn environ_mem_unknown_keys_and_users_are_errors_naming_them() {
        for (text, says) in [
            (
                "[read]\nowners = [\"*\"]\nfields = [\"environ\"]\n",
                "\"environ\"",
            ),
            ("[read]\nowners = [\"*\"]\nfields = [\"mem\"]\n", "\"mem\""),
            ("[read]\nowners = [\"*\"]\nextra = 1\n", "line 3"),
            ("[read]\nowners = [\"bob\"]\n", "no user named \"bob\""),
            ("[read]\nowners = [\"9-1\"]\n", "no user named \"9-1\""),
            ("[read\n", "line 1"),
        ] {
            let e = ReadPolicy::parse(text, PASSWD).unwrap_err();
            assert!(e.0.contains(says), "{text:?}: {e}");
        }
    }

    #[test]
    fn a_policy_others_may_write_or_another_user_owns_is_refused() {
        assert!(check_trust(0, 0o100644, 999).is_ok());
        assert!(check_trust(999, 0o100600, 999).is_ok());
        assert!(check_trust(1000, 0o100644, 999)
            .unwrap_err()
            .contains("owned by uid 1000"));
        assert!(check_trust(0, 0o100664, 999).unwrap_err().contains("0664"));
    }
}
