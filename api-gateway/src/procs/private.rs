//! Other users' private fields, from monitoreo-reader.
//!
//! The gateway holds no capability, so the kernel refuses it another
//! user's `exe`, `cwd`, `io`, `fd/` and `smaps`. A listing that asks for
//! any of those opens one connection to the reader when the walk first
//! meets such a process (a listing of the gateway's own processes never
//! does) and sends every pid of the walk; the reader answers one frame per
//! process in pid order while the walk goes on, and [`Stream::get`] takes
//! each process's frame as the walk reaches it. One round trip per
//! listing, and the two processes read in parallel.
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
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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

/// Idle connections to the reader, reused so that a single process's
/// read pays no connect (and the reader no thread start).
#[derive(Debug, Default)]
pub struct Pool(Mutex<Vec<(UnixStream, Instant)>>);

/// Idle connections kept at most.
const POOL_MAX: usize = 16;
/// An idle connection older than this is closed rather than reused (the
/// reader closes its side after a minute).
const POOL_AGE: Duration = Duration::from_secs(20);

impl Pool {
    fn take(&self) -> Option<UnixStream> {
        let mut v = self.0.lock().ok()?;
        while let Some((s, at)) = v.pop() {
            if at.elapsed() < POOL_AGE {
                return Some(s);
            }
        }
        None
    }

    fn put(&self, s: UnixStream) {
        if let Ok(mut v) = self.0.lock() {
            if v.len() < POOL_MAX {
                v.push((s, Instant::now()));
            }
        }
    }
}

/// What a stream asks: the socket, the fields, the pids.
type Ask = (PathBuf, u8, Vec<u32>);

/// One listing's answer from the reader, consumed in pid order.
pub struct Stream {
    /// What to ask, until the first [`Stream::get`] asks it.
    pending: Option<Ask>,
    pool: Option<Arc<Pool>>,
    /// The question again while a reused connection has answered
    /// nothing: if it turns out closed, a fresh one is asked once.
    retry: Option<Ask>,
    /// `End` was read: the connection may serve another stream.
    ended: bool,
    /// Entries that may still come (pids asked, less entries read).
    left: usize,
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
    /// A stream that will ask the reader at `socket` for `fields` (reader
    /// bits) of `pids` (ascending) when first used, on a connection from
    /// `pool` if one is idle there.
    pub fn new(socket: &Path, fields: u8, pids: Vec<u32>, pool: Option<Arc<Pool>>) -> Stream {
        Stream {
            pending: Some((socket.to_path_buf(), fields, pids)),
            pool,
            retry: None,
            ended: false,
            left: 0,
            conn: None,
            buf: Vec::new(),
            ahead: None,
        }
    }

    /// Sends the request on `s` (a fresh connection when `None`); a
    /// failure leaves no connection, so every lookup answers
    /// [`Lookup::Unavailable`].
    fn ask(s: Option<UnixStream>, ask: &Ask) -> Option<BufReader<UnixStream>> {
        let (socket, fields, pids) = ask;
        let mut s = match s {
            Some(s) => s,
            None => {
                let s = UnixStream::connect(socket).ok()?;
                s.set_read_timeout(Some(FRAME_TIMEOUT)).ok()?;
                s.set_write_timeout(Some(FRAME_TIMEOUT)).ok()?;
                s
            }
        };
        let req = Request {
            version: wire::VERSION,
            fields: *fields,
            pids: pids.clone(),
            policy: false,
        };
        wire::write_request(&mut s, &req).ok()?;
        Some(BufReader::with_capacity(64 * 1024, s))
    }

    /// A stream with no reader behind it.
    pub fn none() -> Stream {
        Stream {
            pending: None,
            pool: None,
            retry: None,
            ended: false,
            left: 0,
            conn: None,
            buf: Vec::new(),
            ahead: None,
        }
    }

    /// The reader's entry for `pid` with start time `start`; frames of
    /// lower pids (processes the walk did not reach) are skipped.
    pub fn get(&mut self, pid: u32, start: u64) -> Lookup {
        if let Some(ask) = self.pending.take() {
            self.left = ask.2.len();
            match self.pool.as_ref().and_then(|p| p.take()) {
                Some(reused) => {
                    self.conn = Stream::ask(Some(reused), &ask);
                    self.retry = Some(ask);
                }
                None => self.conn = Stream::ask(None, &ask),
            }
        }
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
                Ok(Frame::Entry(e)) => {
                    self.retry = None;
                    self.left = self.left.saturating_sub(1);
                    self.ahead = Some(e);
                }
                Ok(Frame::End) => {
                    self.retry = None;
                    self.ended = true;
                    // Nothing more will come: every later pid is missing,
                    // which the sentinel says without another read.
                    self.ahead = Some(Box::new(wire::Entry {
                        pid: u32::MAX,
                        start_time: 0,
                        private: Private::default(),
                    }));
                }
                Ok(Frame::Policy(_)) => {
                    // Not an answer to a listing: the reader is not one.
                    self.conn = None;
                    return Lookup::Unavailable;
                }
                Err(_) => {
                    // A reused connection the reader had closed: ask once
                    // more on a fresh one.
                    self.conn = self.retry.take().and_then(|ask| Stream::ask(None, &ask));
                    if self.conn.is_none() {
                        return Lookup::Unavailable;
                    }
                }
            }
        }
    }
}

impl Drop for Stream {
    /// A connection whose answer was read to its end goes back to the
    /// pool, after reading the last few frames of a short answer (a single
    /// process's); one left further from its end (a listing cut short) is
    /// closed.
    fn drop(&mut self) {
        if self.pool.is_none() {
            return;
        }
        while !self.ended && self.left <= 4 {
            let Some(conn) = self.conn.as_mut() else {
                return;
            };
            match wire::read_frame(conn, &mut self.buf) {
                Ok(Frame::Entry(_)) => self.left = self.left.saturating_sub(1),
                Ok(Frame::End) => self.ended = true,
                Ok(Frame::Policy(_)) | Err(_) => return,
            }
        }
        if let (true, Some(conn), Some(pool)) = (self.ended, self.conn.take(), &self.pool) {
            if conn.buffer().is_empty() {
                pool.put(conn.into_inner());
            }
        }
    }
}

/// The `[read]` policy the reader at `socket` is under, on a connection
/// of its own; `None` if it does not answer.
pub fn rules(socket: &Path) -> Option<wire::Rules> {
    let mut s = UnixStream::connect(socket).ok()?;
    s.set_read_timeout(Some(FRAME_TIMEOUT)).ok()?;
    s.set_write_timeout(Some(FRAME_TIMEOUT)).ok()?;
    let ask = Request {
        version: wire::VERSION,
        fields: 0,
        pids: Vec::new(),
        policy: true,
    };
    wire::write_request(&mut s, &ask).ok()?;
    match wire::read_frame(&mut s, &mut Vec::new()).ok()? {
        Frame::Policy(r) => Some(r),
        _ => None,
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
            json::io_counters(out, v);
        }
        Field::OpenFiles => {
            let Some(files) = &p.open_files else {
                return false;
            };
            key(out, f.name());
            json::array(out, files, |out, o| {
                out.extend_from_slice(b"{\"path\":");
                json::string(out, &o.path);
                out.extend_from_slice(b",\"fd\":");
                json::uint(out, u64::from(o.fd));
                out.push(b'}');
            });
        }
        Field::Connections => {
            let Some(conns) = &p.connections else {
                return false;
            };
            key(out, f.name());
            json::array(out, conns, |out, c| {
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
            });
        }
        Field::MemoryMaps => {
            let Some(maps) = &p.memory_maps else {
                return false;
            };
            key(out, f.name());
            json::array(out, maps, |out, g| {
                out.extend_from_slice(b"{\"path\":");
                json::string(out, &g.path);
                for (k, x) in MAP_KEYS.iter().zip(g.sizes) {
                    key(out, k);
                    json::uint(out, x);
                }
                out.push(b'}');
            });
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

#[cfg(test)]
mod tests {
    use super::*;
    use reader::wire::{Addr, Connection, Family, MapGroup, OpenFile};

    fn object(p: &Private, fields: &[Field]) -> serde_json::Value {
        let mut out = b"{\"pid\":1".to_vec();
        for f in fields {
            assert!(write(&mut out, *f, p), "{f:?}");
        }
        out.push(b'}');
        serde_json::from_slice(&out).expect("valid JSON")
    }

    #[test]
    fn the_readers_values_take_the_gateways_own_shapes() {
        let p = Private {
            exe: Some(b"/usr/bin/a\"b".to_vec()),
            cwd: Some(b"/tmp".to_vec()),
            num_fds: Some(4),
            open_files: Some(vec![OpenFile {
                path: b"/etc/hostname".to_vec(),
                fd: 3,
            }]),
            connections: Some(vec![Connection {
                fd: 5,
                family: Family::Inet6,
                stream: true,
                laddr: Some(Addr {
                    ip: [0; 16].to_vec(),
                    port: 80,
                }),
                raddr: None,
                status: 10,
            }]),
            io_counters: Some([1, 2, 3, 4, 5, 6]),
            memory_maps: Some(vec![MapGroup {
                path: b"[heap]".to_vec(),
                sizes: [7; 10],
            }]),
            ..Private::default()
        };
        let all: Vec<Field> = FIELDS.iter().map(|(f, _)| *f).collect();
        let v = object(&p, &all);
        assert_eq!(v["exe"], "/usr/bin/a\"b");
        assert_eq!(
            v["open_files"],
            serde_json::json!([{"path": "/etc/hostname", "fd": 3}])
        );
        assert_eq!(
            v["connections"],
            serde_json::json!([{"fd": 5, "family": "AF_INET6", "type": "SOCK_STREAM",
                "laddr": {"ip": "::", "port": 80}, "raddr": null, "status": "LISTEN"}])
        );
        assert_eq!(v["io_counters"]["write_chars"], 6);
        assert_eq!(v["memory_maps"][0]["path"], "[heap]");
        assert_eq!(v["memory_maps"][0]["swap"], 7);
        assert_eq!(v["num_fds"], 4);
    }

    #[test]
    fn a_field_the_reader_did_not_give_writes_nothing() {
        let mut out = Vec::new();
        for (f, _) in FIELDS {
            assert!(!write(&mut out, f, &Private::default()), "{f:?}");
        }
        assert!(out.is_empty());
        assert_eq!(bit(Field::Cmdline), 0);
    }

    #[test]
    fn a_reader_that_is_not_there_answers_unavailable_and_frames_match_by_start_time() {
        let mut s = Stream::new(
            Path::new("/nonexistent/reader.sock"),
            field::ALL,
            vec![1],
            None,
        );
        assert!(matches!(s.get(1, 0), Lookup::Unavailable));
        // A stream whose reader said End: every pid is missing, not
        // unavailable, and a frame for another start time is no answer.
        let mut s = Stream::none();
        s.ahead = Some(Box::new(wire::Entry {
            pid: 9,
            start_time: 5,
            private: Private::default(),
        }));
        assert!(matches!(s.get(3, 1), Lookup::Missing));
        assert!(matches!(s.get(9, 6), Lookup::Missing));
        assert!(matches!(s.get(10, 0), Lookup::Unavailable));
    }
}
