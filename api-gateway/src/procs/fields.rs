//! The names of the process fields and sets of them.
//!
//! Guarantees: only the names in [`FIELD_NAMES`] are accepted; `environ` is
//! not one of them and never will be (it holds secrets of other users'
//! programs). `memory_maps` and `connections` are costly and are only read
//! when named.

use super::ProcError;

/// One process field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Pid,
    Ppid,
    Name,
    Exe,
    Cmdline,
    Status,
    Username,
    Uids,
    Gids,
    Terminal,
    Nice,
    CreateTime,
    StartTime,
    CpuTimes,
    CpuPercent,
    CpuNum,
    MemoryInfo,
    MemoryPercent,
    NumThreads,
    NumCtxSwitches,
    NumFds,
    OpenFiles,
    Threads,
    Cwd,
    IoCounters,
    CpuAffinity,
    MemoryMaps,
    Connections,
}

/// Every field, in output order.
pub const ALL_FIELDS: [Field; 28] = [
    Field::Pid,
    Field::Ppid,
    Field::Name,
    Field::Exe,
    Field::Cmdline,
    Field::Status,
    Field::Username,
    Field::Uids,
    Field::Gids,
    Field::Terminal,
    Field::Nice,
    Field::CreateTime,
    Field::StartTime,
    Field::CpuTimes,
    Field::CpuPercent,
    Field::CpuNum,
    Field::MemoryInfo,
    Field::MemoryPercent,
    Field::NumThreads,
    Field::NumCtxSwitches,
    Field::NumFds,
    Field::OpenFiles,
    Field::Threads,
    Field::Cwd,
    Field::IoCounters,
    Field::CpuAffinity,
    Field::MemoryMaps,
    Field::Connections,
];

/// The names accepted in `?fields=`, same order as [`ALL_FIELDS`].
pub const FIELD_NAMES: [&str; 28] = [
    "pid",
    "ppid",
    "name",
    "exe",
    "cmdline",
    "status",
    "username",
    "uids",
    "gids",
    "terminal",
    "nice",
    "create_time",
    "start_time",
    "cpu_times",
    "cpu_percent",
    "cpu_num",
    "memory_info",
    "memory_percent",
    "num_threads",
    "num_ctx_switches",
    "num_fds",
    "open_files",
    "threads",
    "cwd",
    "io_counters",
    "cpu_affinity",
    "memory_maps",
    "connections",
];

impl Field {
    /// The JSON key of this field.
    pub fn name(self) -> &'static str {
        FIELD_NAMES[self as usize]
    }

    /// The field with this JSON key.
    pub fn from_name(name: &str) -> Option<Field> {
        FIELD_NAMES
            .iter()
            .position(|n| *n == name)
            .map(|i| ALL_FIELDS[i])
    }

    /// Whether `?sort=` accepts it (scalars, plus `cpu_times` = user+system
    /// and `memory_info` = rss).
    pub fn sortable(self) -> bool {
        !matches!(
            self,
            Field::Cmdline
                | Field::Uids
                | Field::Gids
                | Field::NumCtxSwitches
                | Field::OpenFiles
                | Field::Threads
                | Field::IoCounters
                | Field::CpuAffinity
                | Field::MemoryMaps
                | Field::Connections
        )
    }

    fn bit(self) -> u32 {
        1 << (self as u32)
    }
}

/// Which fields a listing carries (`?fields=a,b`). The default is every
/// field except `memory_maps` and `connections`; `environ` is never served.
/// `pid` is always written, named or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fields(u32);

impl Default for Fields {
    fn default() -> Fields {
        Fields::all()
            .without(Field::MemoryMaps)
            .without(Field::Connections)
    }
}

impl Fields {
    /// Parses a comma-separated list of field names; blanks around names
    /// are ignored, an empty list means the default set. Any name not in
    /// [`FIELD_NAMES`] (including `environ`) is `UnknownField`.
    pub fn parse(list: &str) -> Result<Fields, ProcError> {
        let mut set = Fields::none();
        for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let f = Field::from_name(name).ok_or_else(|| ProcError::UnknownField(name.into()))?;
            set = set.with(f);
        }
        Ok(if set == Fields::none() {
            Fields::default()
        } else {
            set.with(Field::Pid)
        })
    }

    /// No field at all.
    pub fn none() -> Fields {
        Fields(0)
    }

    /// Every field (including the costly `memory_maps` and `connections`).
    pub fn all() -> Fields {
        ALL_FIELDS.iter().fold(Fields(0), |s, f| s.with(*f))
    }

    /// Whether `f` is in the set.
    pub fn has(self, f: Field) -> bool {
        self.0 & f.bit() != 0
    }

    /// Whether any of `fs` is in the set.
    pub fn any(self, fs: &[Field]) -> bool {
        fs.iter().any(|f| self.has(*f))
    }

    /// The set plus `f`.
    pub fn with(self, f: Field) -> Fields {
        Fields(self.0 | f.bit())
    }

    /// The set minus `f`.
    pub fn without(self, f: Field) -> Fields {
        Fields(self.0 & !f.bit())
    }

    /// The names in the set, in output order.
    pub fn names(self) -> impl Iterator<Item = &'static str> {
        ALL_FIELDS
            .into_iter()
            .filter(move |f| self.has(*f))
            .map(Field::name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_fields_line_up() {
        for (i, f) in ALL_FIELDS.iter().enumerate() {
            assert_eq!(*f as usize, i);
            assert_eq!(Field::from_name(f.name()), Some(*f));
        }
    }

    #[test]
    fn default_set_leaves_out_maps_and_connections() {
        let d = Fields::default();
        assert!(d.has(Field::Cmdline) && d.has(Field::OpenFiles) && d.has(Field::Threads));
        assert!(!d.has(Field::MemoryMaps));
        assert!(!d.has(Field::Connections));
        assert_eq!(d.names().count(), 26);
    }

    #[test]
    fn parse_selects_exactly_the_named_fields_plus_pid() {
        let f = Fields::parse(" name ,memory_maps,,status").unwrap();
        let names: Vec<_> = f.names().collect();
        assert_eq!(names, ["pid", "name", "status", "memory_maps"]);
        assert_eq!(Fields::parse("").unwrap(), Fields::default());
    }

    #[test]
    fn environ_is_never_a_field() {
        assert!(
            matches!(Fields::parse("environ"), Err(ProcError::UnknownField(n)) if n == "environ")
        );
        assert!(matches!(
            Fields::parse("pid,environ"),
            Err(ProcError::UnknownField(_))
        ));
        assert!(!Fields::all().names().any(|n| n == "environ"));
    }

    #[test]
    fn unknown_field_is_named_in_the_error() {
        match Fields::parse("pid,bogus") {
            Err(ProcError::UnknownField(n)) => assert_eq!(n, "bogus"),
            other => panic!("{other:?}"),
        }
    }
}
