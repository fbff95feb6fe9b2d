//! Other users' private fields, from monitoreo-reader.
//!
//! The gateway holds no capability, so the kernel refuses it another
//! user's `exe`, `cwd`, `io`, `fd/` and `smaps`. A listing that asks for
//! any of those opens one connection to the reader before its walk and
//! sends every pid it will read; the reader answers one frame per process
//! in pid order while the walk goes on, and [`Stream::get`] takes each
//! process's frame as the walk reaches it. One round trip per listing,
//! and the two processes read in parallel.
//!
//! Guarantees: a frame is used only for the process it names with the
//! start time the walk read (a pid reused in between gets nothing); a
//! reader that is absent, busy, slow or speaking nonsense costs the
//! listing nothing but those fields, which are then `null` with the
//! reason [`UNAVAILABLE`]; a field the reader's policy refused is `null`
//! with [`POLICY`]. Values from the reader are written through the same
//! JSON writers as the gateway's own reads.

use std::io::BufReader;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use reader::wire::{self, field, Frame, Private, Request, MAP_KEYS, TCP_STATES};

use super::fields::Field;
use super::json::{self, key};

/// The `withheld` reason of a field the reader's `[read]` policy refuses.
pub const POLICY: &str = "read_policy";
/// The `withheld` reason of a field no reader answered for.
pub const UNAVAILABLE: &str = "reader_unavailable";

/// The longest wait for one frame before the reader is given up on.
const FRAME_TIMEOUT: Duration = Duration::from_secs(10);

/// The fields the reader serves, with their bits.
pub const FIELDS: [(Field, u8); 7] = [
    (Field::Exe, field::EXE),
    (Field::Cwd, field::CWD),
    (Field::NumFds, field::NUM_FDS),
    (Field::OpenFiles, field::OPEN_FILES),
    (Field::Connections, field::CONNECTIONS),
    (Field::IoCounters, field::IO_COUNTERS),
    (Field::MemoryMaps, field::MEMORY_MAPS),
];

/// The reader's bit of `f`, 0 if it does not serve it.
pub fn bit(f: Field) -> u8 {
    FIELDS.iter().find(|(g, _)| *g == f).map_or(0, |(_, b)| *b)
}

/// One listing's answer from the reader, consumed in pid order.
pub struct Stream {
    conn: Option<BufReader<UnixStream>>,
    buf: Vec<u8>,
    /// A frame read ahead (its pid is past the one last asked for).
    ahead: Option<Box<wire::Entry>>,
}

/// What the reader said of one process.
pub enum Lookup {
    Read(Private),
    /// The reader answered, but not for this process (it exited, or its
    /// pid was reused between the two reads).
    Missing,
    /// No reader, or it stopped answering.
    Unavailable,
}

impl Stream {
    /// Connects to `socket` and asks `fields` (reader bits) of `pids`
    /// (ascending). A failure makes a stream that answers
    /// [`Lookup::Unavailable`].
    pub fn open(socket: &Path, fields: u8, pids: Vec<u32>) -> Stream {
        let conn = UnixStream::connect(socket).ok().and_then(|mut s| {
            s.set_read_timeout(Some(FRAME_TIMEOUT)).ok()?;
            s.set_write_timeout(Some(FRAME_TIMEOUT)).ok()?;
            let req = Request {
                version: wire::VERSION,
                fields,
                pids,
            };
            wire::write_request(&mut s, &req).ok()?;
            Some(BufReader::with_capacity(64 * 1024, s))
        });
        Stream {
            conn,
            buf: Vec::new(),
            ahead: None,
        }
    }

    /// A stream with no reader behind it.
    pub fn none() -> Stream {
        Stream {
            conn: None,
            buf: Vec::new(),
            ahead: None,
        }
    }

    /// The reader's entry for `pid` with start time `start`; frames of
    /// lower pids (processes the walk did not reach) are skipped.
    pub fn get(&mut self, pid: u32, start: u64) -> Lookup {
        loop {
            if let Some(e) = self.ahead.take() {
                if e.pid > pid {
                    self.ahead = Some(e);
                    return Lookup::Missing;
                }
                if e.pid == pid {
                    return if e.start_time == start {
                        Lookup::Read(e.private)
                    } else {
                        Lookup::Missing
                    };
                }
            }
            let Some(conn) = self.conn.as_mut() else {
                return Lookup::Unavailable;
            };
            match wire::read_frame(conn, &mut self.buf) {
                Ok(Frame::Entry(e)) => self.ahead = Some(e),
                Ok(Frame::End) => {
                    // Nothing more will come: every later pid is missing,
                    // which the sentinel says without another read.
                    self.ahead = Some(Box::new(wire::Entry {
                        pid: u32::MAX,
                        start_time: 0,
                        private: Private::default(),
                    }));
                }
                Err(_) => {
                    self.conn = None;
                    return Lookup::Unavailable;
                }
            }
        }
    }
}

/// Writes the value of reader field `f` from `p`, or returns `false` if
/// `p` has none for it.
pub fn write(out: &mut Vec<u8>, f: Field, p: &Private) -> bool {
    match f {
        Field::Exe | Field::Cwd => {
            let Some(path) = (if f == Field::Exe { &p.exe } else { &p.cwd }) else {
                return false;
            };
            key(out, f.name());
            json::string(out, path);
        }
        Field::NumFds => {
            let Some(n) = p.num_fds else {
                return false;
            };
            key(out, f.name());
            json::uint(out, n);
        }
        Field::IoCounters => {
            let Some(v) = p.io_counters else {
                return false;
            };
            key(out, f.name());
            let names = [
                "read_count",
                "write_count",
                "read_bytes",
                "write_bytes",
                "read_chars",
                "write_chars",
            ];
            for (i, (k, x)) in names.into_iter().zip(v).enumerate() {
                out.extend_from_slice(if i == 0 { b"{\"" } else { b",\"" });
                out.extend_from_slice(k.as_bytes());
                out.extend_from_slice(b"\":");
                json::uint(out, x);
            }
            out.push(b'}');
        }
        Field::OpenFiles => {
            let Some(files) = &p.open_files else {
                return false;
            };
            key(out, f.name());
            out.push(b'[');
            for (i, o) in files.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(b"{\"path\":");
                json::string(out, &o.path);
                out.extend_from_slice(b",\"fd\":");
                json::uint(out, u64::from(o.fd));
                out.push(b'}');
            }
            out.push(b']');
        }
        Field::Connections => {
            let Some(conns) = &p.connections else {
                return false;
            };
            key(out, f.name());
            out.push(b'[');
            for (i, c) in conns.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(b"{\"fd\":");
                json::uint(out, u64::from(c.fd));
                out.extend_from_slice(match c.family {
                    wire::Family::Inet => b",\"family\":\"AF_INET\"",
                    wire::Family::Inet6 => b",\"family\":\"AF_INET6\"",
                });
                out.extend_from_slice(if c.stream {
                    b",\"type\":\"SOCK_STREAM\""
                } else {
                    b",\"type\":\"SOCK_DGRAM\""
                });
                out.extend_from_slice(b",\"laddr\":");
                addr(out, c.laddr.as_ref());
                out.extend_from_slice(b",\"raddr\":");
                addr(out, c.raddr.as_ref());
                out.extend_from_slice(b",\"status\":");
                let st = TCP_STATES.get(usize::from(c.status)).unwrap_or(&"NONE");
                json::string(out, st.as_bytes());
                out.push(b'}');
            }
            out.push(b']');
        }
        Field::MemoryMaps => {
            let Some(maps) = &p.memory_maps else {
                return false;
            };
            key(out, f.name());
            out.push(b'[');
            for (i, g) in maps.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(b"{\"path\":");
                json::string(out, &g.path);
                for (k, x) in MAP_KEYS.iter().zip(g.sizes) {
                    key(out, k);
                    json::uint(out, x);
                }
                out.push(b'}');
            }
            out.push(b']');
        }
        _ => return false,
    }
    true
}

/// `{"ip":"…","port":N}`, or `null`.
fn addr(out: &mut Vec<u8>, a: Option<&wire::Addr>) {
    let text = a.and_then(|a| match a.ip.len() {
        4 => <[u8; 4]>::try_from(a.ip.as_slice())
            .ok()
            .map(|b| (std::net::Ipv4Addr::from(b).to_string(), a.port)),
        16 => <[u8; 16]>::try_from(a.ip.as_slice())
            .ok()
            .map(|b| (std::net::Ipv6Addr::from(b).to_string(), a.port)),
        _ => None,
    });
    match text {
        Some((ip, port)) => {
            out.extend_from_slice(b"{\"ip\":");
            json::string(out, ip.as_bytes());
            out.extend_from_slice(b",\"port\":");
            json::uint(out, u64::from(port));
            out.push(b'}');
        }
        None => out.extend_from_slice(b"null"),
    }
}
