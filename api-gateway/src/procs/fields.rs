//! The one table of process fields ([`TABLE`]): name, whether a listing
//! carries it by default, whether `?sort=` takes it, its JSON Schema and
//! what it means. The `fields=` parser, the output order, the sort keys,
//! the OpenAPI `Process` schema and the README's list all come from it
//! (tests check the reader writes fields in table order and that the
//! README lists exactly these names).
//!
//! Guarantees: only names in the table are accepted; `environ` is not one
//! of them and never will be (it holds secrets of other users' programs).
//! The costly fields (`memory_full_info`, `memory_maps`, `connections`) are
//! read only when named.

/// One process field; the discriminant is its row in [`TABLE`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    Pid,
    Ppid,
    Name,
    Status,
    Terminal,
    Nice,
    NumThreads,
    CpuNum,
    StartTime,
    CreateTime,
    CpuTimes,
    CpuPercent,
    MemoryPercent,
    Username,
    Uids,
    Gids,
    NumCtxSwitches,
    CpuAffinity,
    Cmdline,
    MemoryInfo,
    MemoryInfoEx,
    MemoryFullInfo,
    IoCounters,
    Exe,
    Cwd,
    NumFds,
    OpenFiles,
    Connections,
    Threads,
    MemoryMaps,
}

/// A row of the field table.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    pub field: Field,
    /// The JSON key and the name `?fields=` takes.
    pub name: &'static str,
    /// In a listing without `?fields=`.
    pub default: bool,
    /// Accepted by `?sort=` (as `name` or `-name`).
    pub sortable: bool,
    /// JSON Schema of the value (a field the kernel hides is `null`; the
    /// schema says so where it can happen).
    pub schema: &'static str,
    /// One sentence for the OpenAPI document and the README.
    pub doc: &'static str,
}

const fn row(
    field: Field,
    name: &'static str,
    default: bool,
    sortable: bool,
    schema: &'static str,
    doc: &'static str,
) -> Spec {
    Spec {
        field,
        name,
        default,
        sortable,
        schema,
        doc,
    }
}

use Field as F;

/// Named in the OpenAPI components (`openapi/schemas.rs`) because two
/// fields share each shape.
const IDS: &str = r##"{"oneOf":[{"$ref":"#/components/schemas/IdTriple"},{"type":"null"}]}"##;
const STATM: &str = r##"{"oneOf":[{"$ref":"#/components/schemas/Statm"},{"type":"null"}]}"##;

/// Every field, in output order.
pub const TABLE: [Spec; 30] = [
    row(F::Pid, "pid", true, true, r#"{"type":"integer","minimum":1}"#,
        "Process id; always present."),
    row(F::Ppid, "ppid", true, true, r#"{"type":"integer","minimum":0}"#,
        "Parent's pid."),
    row(F::Name, "name", true, true, r#"{"type":["string","null"]}"#,
        "The kernel's comm (at most 15 bytes); null only when withheld (another key's job)."),
    row(F::Status, "status", true, true,
        r#"{"type":"string","enum":["running","sleeping","disk-sleep","stopped","tracing-stop","zombie","dead","wake-kill","waking","idle","parked","unknown"]}"#,
        "psutil's state name."),
    row(F::Terminal, "terminal", true, true, r#"{"type":["string","null"]}"#,
        "Controlling terminal's device path, or null."),
    row(F::Nice, "nice", true, true, r#"{"type":"integer","minimum":-20,"maximum":19}"#,
        "Nice value."),
    row(F::NumThreads, "num_threads", true, true, r#"{"type":"integer","minimum":0}"#,
        "Number of threads."),
    row(F::CpuNum, "cpu_num", true, true, r#"{"type":"integer"}"#,
        "CPU the process last ran on."),
    row(F::StartTime, "start_time", true, true, r#"{"type":"integer","minimum":0}"#,
        "Clock ticks after boot (/proc/PID/stat field 22): the exact identity to echo back in DELETE and PATCH."),
    row(F::CreateTime, "create_time", true, true, r#"{"type":"number"}"#,
        "Start as Unix epoch seconds (psutil's create_time; too coarse to identify a process)."),
    row(F::CpuTimes, "cpu_times", true, true,
        r#"{"type":"object","required":["user","system","children_user","children_system","iowait"],"properties":{"user":{"type":"number"},"system":{"type":"number"},"children_user":{"type":"number"},"children_system":{"type":"number"},"iowait":{"type":"number"}}}"#,
        "CPU seconds; sorts by user + system."),
    row(F::CpuPercent, "cpu_percent", true, true, r#"{"type":"number","minimum":0}"#,
        "Percent of one CPU since the previous read of the process (the answer's cpu_percent_window_s and cpu_percent_age_s say how long and how old)."),
    row(F::MemoryPercent, "memory_percent", true, true, r#"{"type":"number","minimum":0}"#,
        "RSS as a percent of MemTotal."),
    row(F::Username, "username", true, true, r#"{"type":["string","null"]}"#,
        "Name of the real uid; the uid in decimal when it has no passwd entry (accepted as a user name everywhere)."),
    row(F::Uids, "uids", true, false, IDS, "Real, effective and saved uid."),
    row(F::Gids, "gids", true, false, IDS, "Real, effective and saved gid."),
    row(F::NumCtxSwitches, "num_ctx_switches", true, false,
        r#"{"type":["object","null"],"required":["voluntary","involuntary"],"properties":{"voluntary":{"type":"integer"},"involuntary":{"type":"integer"}}}"#,
        "Context switches."),
    row(F::CpuAffinity, "cpu_affinity", true, false,
        r#"{"type":["array","null"],"items":{"type":"integer","minimum":0}}"#,
        "CPUs the process may run on."),
    row(F::Cmdline, "cmdline", true, false, r#"{"type":["array","null"],"items":{"type":"string"}}"#,
        "Arguments, split like psutil."),
    row(F::MemoryInfo, "memory_info", true, true, STATM,
        "Bytes from /proc/PID/statm; sorts by rss."),
    row(F::MemoryInfoEx, "memory_info_ex", true, true, STATM,
        "The old service's name for the same statm figures (psutil's Linux memory_info_ex); sorts by rss."),
    row(F::MemoryFullInfo, "memory_full_info", false, false,
        r#"{"type":["object","null"],"required":["rss","vms","shared","text","lib","data","dirty","uss","pss","swap"],"properties":{"rss":{"type":"integer"},"vms":{"type":"integer"},"shared":{"type":"integer"},"text":{"type":"integer"},"lib":{"type":"integer"},"data":{"type":"integer"},"dirty":{"type":"integer"},"uss":{"type":"integer"},"pss":{"type":"integer"},"swap":{"type":"integer"}}}"#,
        "memory_info plus uss, pss and swap from /proc/PID/smaps_rollup; costly, only when named; null for processes the gateway may not trace."),
    row(F::IoCounters, "io_counters", true, false,
        r#"{"type":["object","null"],"required":["read_count","write_count","read_bytes","write_bytes","read_chars","write_chars"],"properties":{"read_count":{"type":"integer"},"write_count":{"type":"integer"},"read_bytes":{"type":"integer"},"write_bytes":{"type":"integer"},"read_chars":{"type":"integer"},"write_chars":{"type":"integer"}}}"#,
        "From /proc/PID/io."),
    row(F::Exe, "exe", true, true, r#"{"type":["string","null"]}"#,
        "Path of the executable."),
    row(F::Cwd, "cwd", true, true, r#"{"type":["string","null"]}"#,
        "Working directory."),
    row(F::NumFds, "num_fds", true, true, r#"{"type":["integer","null"],"minimum":0}"#,
        "Open descriptors."),
    row(F::OpenFiles, "open_files", true, false,
        r#"{"type":["array","null"],"items":{"type":"object","required":["path","fd"],"properties":{"path":{"type":"string"},"fd":{"type":"integer"}}}}"#,
        "Regular files open, with their descriptor."),
    row(F::Connections, "connections", false, false,
        r##"{"type":["array","null"],"items":{"type":"object","required":["fd","family","type","laddr","raddr","status"],"properties":{"fd":{"type":"integer"},"family":{"enum":["AF_INET","AF_INET6"]},"type":{"enum":["SOCK_STREAM","SOCK_DGRAM"]},"laddr":{"$ref":"#/components/schemas/SocketAddress"},"raddr":{"oneOf":[{"$ref":"#/components/schemas/SocketAddress"},{"type":"null"}]},"status":{"type":"string"}}}}"##,
        "Inet sockets (from the gateway's network namespace); costly, only when named."),
    row(F::Threads, "threads", true, false,
        r#"{"type":["array","null"],"items":{"type":"object","required":["id","user_time","system_time"],"properties":{"id":{"type":"integer"},"user_time":{"type":"number"},"system_time":{"type":"number"}}}}"#,
        "Threads with their CPU seconds."),
    row(F::MemoryMaps, "memory_maps", false, false,
        r#"{"type":["array","null"],"items":{"type":"object","required":["path","rss","size","pss","shared_clean","shared_dirty","private_clean","private_dirty","referenced","anonymous","swap"],"properties":{"path":{"type":"string"},"rss":{"type":"integer"},"size":{"type":"integer"},"pss":{"type":"integer"},"shared_clean":{"type":"integer"},"shared_dirty":{"type":"integer"},"private_clean":{"type":"integer"},"private_dirty":{"type":"integer"},"referenced":{"type":"integer"},"anonymous":{"type":"integer"},"swap":{"type":"integer"}}}}"#,
        "Mappings grouped by path, from /proc/PID/smaps; costly, only when named."),
];

impl Field {
    /// This field's row.
    pub fn spec(self) -> &'static Spec {
        &TABLE[self as usize]
    }

    /// The JSON key of this field.
    pub fn name(self) -> &'static str {
        self.spec().name
    }

    /// The field with this JSON key.
    pub fn from_name(name: &str) -> Option<Field> {
        TABLE.iter().find(|s| s.name == name).map(|s| s.field)
    }

    /// Whether `?sort=` accepts it.
    pub fn sortable(self) -> bool {
        self.spec().sortable
    }

    fn bit(self) -> u64 {
        1 << (self as u32)
    }
}

/// Which fields a listing carries (`?fields=a,b`). `pid` is always
/// written, named or not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fields(u64);

impl Default for Fields {
    /// The table's default set.
    fn default() -> Fields {
        TABLE
            .iter()
            .filter(|s| s.default)
            .fold(Fields::none(), |set, s| set.with(s.field))
    }
}

impl Fields {
    /// The named fields plus `pid`. Each of `names` is a comma-separated
    /// list; blanks around a name are ignored. An empty name or a name not
    /// in the table (`environ` included) is an error naming it.
    pub fn parse<S: AsRef<str>>(lists: &[S]) -> Result<Fields, String> {
        let mut set = Fields::none().with(Field::Pid);
        for list in lists {
            for name in list.as_ref().split(',').map(str::trim) {
                if name.is_empty() {
                    return Err(format!("fields has an empty name in {:?}", list.as_ref()));
                }
                let f = Field::from_name(name).ok_or_else(|| {
                    format!(
                        "unknown field {name:?} in fields; see the Process schema for the names"
                    )
                })?;
                set = set.with(f);
            }
        }
        Ok(set)
    }

    /// No field at all.
    pub fn none() -> Fields {
        Fields(0)
    }

    /// Every field (including the costly ones).
    pub fn all() -> Fields {
        TABLE.iter().fold(Fields(0), |s, r| s.with(r.field))
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
        TABLE
            .iter()
            .filter(move |s| self.has(s.field))
            .map(|s| s.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_line_up_with_the_enum_and_schemas_are_json() {
        for (i, s) in TABLE.iter().enumerate() {
            assert_eq!(s.field as usize, i, "{}", s.name);
            assert_eq!(Field::from_name(s.name), Some(s.field));
            let v: serde_json::Value =
                serde_json::from_str(s.schema).unwrap_or_else(|e| panic!("{} schema: {e}", s.name));
            assert!(v.is_object());
        }
    }

    #[test]
    fn every_field_of_the_old_service_is_in_the_table() {
        // The seed README's list (psutil as_dict on Linux).
        for old in [
            "cmdline",
            "connections",
            "cpu_percent",
            "cpu_times",
            "cpu_affinity",
            "create_time",
            "cwd",
            "exe",
            "gids",
            "memory_info",
            "memory_info_ex",
            "memory_maps",
            "memory_percent",
            "name",
            "nice",
            "num_ctx_switches",
            "num_fds",
            "num_threads",
            "open_files",
            "pid",
            "ppid",
            "status",
            "terminal",
            "threads",
            "uids",
            "username",
        ] {
            assert!(Field::from_name(old).is_some(), "{old}");
        }
    }

    #[test]
    fn default_set_leaves_out_exactly_the_costly_fields() {
        let d = Fields::default();
        let left_out: Vec<&str> = Fields::all()
            .names()
            .filter(|n| !d.names().any(|m| m == *n))
            .collect();
        assert_eq!(left_out, ["memory_full_info", "connections", "memory_maps"]);
    }

    #[test]
    fn parse_selects_exactly_the_named_fields_plus_pid_in_table_order() {
        let f = Fields::parse(&[" name ,memory_maps", "status"]).expect("names");
        let names: Vec<_> = f.names().collect();
        assert_eq!(names, ["pid", "name", "status", "memory_maps"]);
        assert!(Fields::parse(&["pid,,name"]).is_err());
        assert!(Fields::parse(&["pid,"]).is_err());
    }

    #[test]
    fn environ_is_never_a_field_and_unknown_names_are_named() {
        let e = Fields::parse(&["pid,environ"]).expect_err("environ");
        assert!(e.contains("\"environ\""), "{e}");
        assert!(!Fields::all().names().any(|n| n == "environ"));
        assert!(Fields::parse(&["memory_info_ex"]).is_ok());
    }
}
