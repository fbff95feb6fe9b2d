//! The passwd database, cached: uid ↔ user name.
//!
//! Guarantees: the file is re-read when its mtime or size changes (checked
//! with one stat per lookup batch), so users added while the gateway runs
//! are seen; a missing or unreadable file gives an empty table (uids are
//! then shown as numbers), never an error.

use std::collections::HashMap;
use std::fs;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// One snapshot of the passwd file.
#[derive(Debug, Default)]
pub struct Table {
    by_uid: HashMap<u32, String>,
    by_name: HashMap<String, u32>,
}

impl Table {
    /// Parses passwd text; the first entry for a uid or name wins.
    pub fn parse(text: &str) -> Table {
        let mut t = Table::default();
        for line in text.lines() {
            let mut it = line.split(':');
            let (Some(name), Some(_), Some(uid)) = (it.next(), it.next(), it.next()) else {
                continue;
            };
            let Ok(uid) = uid.parse::<u32>() else {
                continue;
            };
            if name.is_empty() || name.starts_with('#') {
                continue;
            }
            t.by_uid.entry(uid).or_insert_with(|| name.to_string());
            t.by_name.entry(name.to_string()).or_insert(uid);
        }
        t
    }

    /// The name of `uid`, if it has one.
    pub fn name(&self, uid: u32) -> Option<&str> {
        self.by_uid.get(&uid).map(String::as_str)
    }

    /// The uid of `name`, if it exists.
    pub fn uid(&self, name: &str) -> Option<u32> {
        self.by_name.get(name).copied()
    }
}

type Stamp = Option<(SystemTime, u64)>;

/// The cached passwd file.
#[derive(Debug)]
pub struct Passwd {
    path: PathBuf,
    cache: Mutex<(Stamp, Arc<Table>)>,
}

impl Passwd {
    /// A cache of the file at `path` (read on first use).
    pub fn new(path: impl Into<PathBuf>) -> Passwd {
        Passwd {
            path: path.into(),
            cache: Mutex::new((None, Arc::new(Table::default()))),
        }
    }

    /// The current table, re-read if the file changed.
    pub fn table(&self) -> Arc<Table> {
        let stamp = fs::metadata(&self.path)
            .ok()
            .and_then(|m| Some((m.modified().ok()?, m.len())));
        let mut c = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if stamp.is_none() || c.0 != stamp {
            let text = fs::read_to_string(&self.path).unwrap_or_default();
            *c = (stamp, Arc::new(Table::parse(&text)));
        }
        c.1.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_maps_both_ways_and_skips_junk() {
        let t = Table::parse("root:x:0:0::/root:/bin/sh\nbad line\nbob:x:1000:1000::/h:/bin/sh\nalias:x:0:0::/:/bin/sh\n");
        assert_eq!(t.name(0), Some("root"));
        assert_eq!(t.uid("bob"), Some(1000));
        assert_eq!(t.uid("alias"), Some(0));
        assert_eq!(t.name(4), None);
    }

    #[test]
    fn passwd_is_reloaded_when_the_file_changes() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("passwd");
        fs::write(&p, "a:x:1:1::/:/bin/sh\n").unwrap();
        let pw = Passwd::new(&p);
        assert_eq!(pw.table().uid("a"), Some(1));
        fs::write(&p, "a:x:1:1::/:/bin/sh\nnewuser:x:77:77::/:/bin/sh\n").unwrap();
        assert_eq!(pw.table().uid("newuser"), Some(77));
    }
}
