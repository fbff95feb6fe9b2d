//! Reading processes and users from /proc (STUB: interface only; the
//! implementation is being written).
//!
//! Everything here is blocking; the HTTP layer calls it from
//! `spawn_blocking`.

use std::time::Duration;

/// Errors from reading /proc or parsing listing parameters.
#[derive(Debug, thiserror::Error)]
pub enum ProcError {
    #[error("no process with pid {0}")]
    NoSuchProcess(i32),
    #[error("unknown field {0:?}")]
    UnknownField(String),
    #[error("cannot sort by {0:?}")]
    BadSort(String),
    #[error("reading /proc: {0}")]
    Io(#[from] std::io::Error),
}

/// Which fields a listing carries (`?fields=a,b`); default = every field
/// except `memory_maps` (never `environ`).
#[derive(Debug, Clone, Default)]
pub struct Fields {}

impl Fields {
    /// Parses a comma-separated list of field names.
    pub fn parse(_list: &str) -> Result<Fields, ProcError> {
        Ok(Fields {})
    }
}

/// `?sort=-cpu_percent`: a field name, `-` prefix for descending.
#[derive(Debug, Clone)]
pub struct SortKey {
    pub field: String,
    pub descending: bool,
}

impl SortKey {
    pub fn parse(s: &str) -> Result<SortKey, ProcError> {
        let (descending, field) = match s.strip_prefix('-') {
            Some(f) => (true, f),
            None => (false, s),
        };
        Ok(SortKey {
            field: field.to_string(),
            descending,
        })
    }
}

/// A listing request.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub fields: Fields,
    /// Only processes whose real uid is this.
    pub uid: Option<u32>,
    pub sort: Option<SortKey>,
    pub limit: Option<usize>,
}

/// Reads /proc; owns the background CPU sampler.
pub struct ProcReader {
    window: Duration,
}

impl ProcReader {
    /// Starts the background sampler with this window.
    pub fn new(cpu_window: Duration) -> ProcReader {
        ProcReader { window: cpu_window }
    }

    /// The sampler's window in seconds (reported as `cpu_percent_window_s`).
    pub fn window_secs(&self) -> f64 {
        self.window.as_secs_f64()
    }

    /// A JSON array (`[{...},{...}]`) of the matching processes.
    pub fn list_json(&self, _q: &ListQuery) -> Result<Vec<u8>, ProcError> {
        Ok(b"[]".to_vec())
    }

    /// One process as a JSON object.
    pub fn one_json(&self, pid: i32, _fields: &Fields) -> Result<Vec<u8>, ProcError> {
        Err(ProcError::NoSuchProcess(pid))
    }

    /// Start time (clock ticks since boot, /proc/PID/stat field 22).
    pub fn start_time(&self, pid: i32) -> Result<u64, ProcError> {
        Err(ProcError::NoSuchProcess(pid))
    }

    /// `(username, running process count)` for every user with a process.
    pub fn users(&self) -> Result<Vec<(String, usize)>, ProcError> {
        Ok(Vec::new())
    }

    /// The uid of a user name from the passwd database, if it exists.
    pub fn uid_of_user(&self, _name: &str) -> Option<u32> {
        None
    }
}
