//! The descriptor limit, which sizes the default connection cap: every
//! connection is one descriptor, and running out of them stops accepting
//! for everyone.

use nix::sys::resource::{getrlimit, setrlimit, Resource};

/// The current soft `RLIMIT_NOFILE` (1024 if it cannot be read).
pub fn nofile() -> u64 {
    getrlimit(Resource::RLIMIT_NOFILE).map_or(1024, |(soft, _)| soft)
}

/// Raises the soft `RLIMIT_NOFILE` to the hard one, as servers that hold
/// many sockets do (the soft default of 1024 exists for `select(2)`,
/// which the gateway does not use). A refusal (a seccomp filter, say)
/// leaves the limit as it was. Returns the soft limit in force.
pub fn raise_nofile() -> u64 {
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        if soft < hard {
            let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
        }
    }
    nofile()
}
