//! What the gateway and the reader say to each other, and the framing.
//!
//! One request per connection: the gateway sends a [`Request`] (which
//! fields, which pids), the reader answers with one [`Frame::Entry`] per
//! process, in ascending pid order, then [`Frame::End`]. Streaming one
//! process per frame lets the gateway write a listing while the reader is
//! still reading it, and keeps every frame small whatever the host's size.
//!
//! A frame is a `u32` little-endian length, then a bincode payload of
//! exactly that length. A request is at most [`MAX_REQUEST`] bytes and an
//! entry at most [`MAX_ENTRY`]; a longer length prefix is refused before
//! anything is buffered, and bincode decodes with the same limit.

use std::fmt;
use std::io::{self, Read, Write};

use bincode::config::{self, Configuration, Fixint, Limit, LittleEndian};
use bincode::{Decode, Encode};

/// Changes whenever a message changes shape.
pub const VERSION: u32 = 2;

/// Largest request payload: 4 bytes per pid of a host with a million pids.
pub const MAX_REQUEST: usize = 4 * 1024 * 1024 + 64;

/// Largest entry payload; a process whose fields would not fit has them
/// cut short ([`Private::truncated`]).
pub const MAX_ENTRY: usize = 4 * 1024 * 1024;

/// The private fields, as bits of [`Request::fields`] and
/// [`Private::refused`]. Nothing else can be asked for: there is no bit
/// for `environ`, `mem` or anything else that shows memory contents.
pub mod field {
    pub const EXE: u8 = 1;
    pub const CWD: u8 = 1 << 1;
    pub const NUM_FDS: u8 = 1 << 2;
    pub const OPEN_FILES: u8 = 1 << 3;
    pub const CONNECTIONS: u8 = 1 << 4;
    pub const IO_COUNTERS: u8 = 1 << 5;
    pub const MEMORY_MAPS: u8 = 1 << 6;
    /// Every field there is.
    pub const ALL: u8 = (1 << 7) - 1;
    /// Each bit with the name the policy and the API give it.
    pub const NAMES: [(u8, &str); 7] = [
        (EXE, "exe"),
        (CWD, "cwd"),
        (NUM_FDS, "num_fds"),
        (OPEN_FILES, "open_files"),
        (CONNECTIONS, "connections"),
        (IO_COUNTERS, "io_counters"),
        (MEMORY_MAPS, "memory_maps"),
    ];

    /// The bit of a field name.
    pub fn by_name(name: &str) -> Option<u8> {
        NAMES.iter().find(|(_, n)| *n == name).map(|(b, _)| *b)
    }
}

/// The one message the gateway sends.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct Request {
    /// [`VERSION`]; another is answered by closing the connection.
    pub version: u32,
    /// Bits of [`field`].
    pub fields: u8,
    /// Ascending pids; empty means every process.
    pub pids: Vec<u32>,
    /// Asks for the `[read]` policy in force instead (one
    /// [`Frame::Policy`]; `fields` and `pids` unused), for the gateway to
    /// show its keys what they may read.
    pub policy: bool,
}

/// What the reader sends, once per process and once at the end.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub enum Frame {
    Entry(Box<Entry>),
    /// Every process asked for has been answered (those that exited are
    /// left out).
    End,
    /// The answer to [`Request::policy`].
    Policy(Rules),
}

/// The `[read]` policy in force: its owners as the file writes them
/// (`"alice"`, `"1000"`, `"60600-60699"`, `"*"`) and its fields' bits.
#[derive(Debug, Clone, Default, PartialEq, Eq, Encode, Decode)]
pub struct Rules {
    pub owners: Vec<String>,
    pub fields: u8,
}

/// One process.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct Entry {
    pub pid: u32,
    /// Field 22 of its stat, read before and after the fields: an entry is
    /// sent only if both reads agree, so it describes one process.
    pub start_time: u64,
    pub private: Private,
}

/// A process's private fields. A field asked for is `None` when the
/// policy refused it (its bit is then in `refused`) or when it could not
/// be read (a kernel thread has no `exe`; a zombie has no `fd/`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Encode, Decode)]
pub struct Private {
    /// Bits of [`field`] the `[read]` policy refused for this process.
    pub refused: u8,
    pub exe: Option<Vec<u8>>,
    pub cwd: Option<Vec<u8>>,
    pub num_fds: Option<u64>,
    pub open_files: Option<Vec<OpenFile>>,
    pub connections: Option<Vec<Connection>>,
    /// read_count, write_count, read_bytes, write_bytes, read_chars,
    /// write_chars.
    pub io_counters: Option<[u64; 6]>,
    pub memory_maps: Option<Vec<MapGroup>>,
    /// Lists were cut short to fit [`MAX_ENTRY`].
    pub truncated: bool,
}

/// A regular file a process has open.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct OpenFile {
    pub path: Vec<u8>,
    pub fd: u32,
}

/// An inet socket a process has open, psutil's shape.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct Connection {
    pub fd: u32,
    /// `AF_INET` or `AF_INET6`.
    pub family: Family,
    /// `SOCK_STREAM` (tcp) or `SOCK_DGRAM` (udp).
    pub stream: bool,
    pub laddr: Option<Addr>,
    /// `None` for an unconnected socket.
    pub raddr: Option<Addr>,
    /// The TCP state's index in [`TCP_STATES`], 0 (`NONE`) for udp.
    pub status: u8,
}

/// Address family of a [`Connection`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Encode, Decode)]
pub enum Family {
    Inet,
    Inet6,
}

/// An address and port; `ip` is 4 or 16 bytes.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct Addr {
    pub ip: Vec<u8>,
    pub port: u16,
}

/// psutil's names of the kernel's TCP states, by the state's number.
pub const TCP_STATES: [&str; 13] = [
    "NONE",
    "ESTABLISHED",
    "SYN_SENT",
    "SYN_RECV",
    "FIN_WAIT1",
    "FIN_WAIT2",
    "TIME_WAIT",
    "CLOSE",
    "CLOSE_WAIT",
    "LAST_ACK",
    "LISTEN",
    "CLOSING",
    "NEW_SYN_RECV",
];

/// psutil's `memory_maps(grouped=True)` row: a path (`[anon]`, `[heap]`,
/// ... for the unnamed) and its sizes in bytes, in [`MAP_KEYS`] order.
#[derive(Debug, Clone, PartialEq, Eq, Encode, Decode)]
pub struct MapGroup {
    pub path: Vec<u8>,
    pub sizes: [u64; 10],
}

/// The names of [`MapGroup::sizes`], in order (psutil's).
pub const MAP_KEYS: [&str; 10] = [
    "rss",
    "size",
    "pss",
    "shared_clean",
    "shared_dirty",
    "private_clean",
    "private_dirty",
    "referenced",
    "anonymous",
    "swap",
];

/// Why a frame could not be read or written.
#[derive(Debug)]
pub enum WireError {
    /// The length prefix announces more than the limit.
    TooLarge {
        len: usize,
        limit: usize,
    },
    /// The payload is not a valid message, or leaves bytes unread.
    Decode(String),
    /// The message does not fit its limit.
    Encode(String),
    /// The peer closed the stream between frames.
    Closed,
    Io(io::Error),
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::TooLarge { len, limit } => {
                write!(f, "frame of {len} bytes is over the {limit}-byte limit")
            }
            WireError::Decode(e) => write!(f, "undecodable frame: {e}"),
            WireError::Encode(e) => write!(f, "cannot encode frame: {e}"),
            WireError::Closed => f.write_str("the peer closed the connection"),
            WireError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for WireError {}

impl From<io::Error> for WireError {
    fn from(e: io::Error) -> Self {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            WireError::Closed
        } else {
            WireError::Io(e)
        }
    }
}

type Config<const N: usize> = Configuration<LittleEndian, Fixint, Limit<N>>;

fn cfg<const N: usize>() -> Config<N> {
    config::standard()
        .with_little_endian()
        .with_fixed_int_encoding()
        .with_limit::<N>()
}

/// Writes `msg` as one frame of at most `N` bytes.
fn write<const N: usize, T: Encode>(w: &mut impl Write, msg: &T) -> Result<(), WireError> {
    let mut buf = vec![0u8; 4];
    bincode::encode_into_std_write(msg, &mut buf, cfg::<N>())
        .map_err(|e| WireError::Encode(e.to_string()))?;
    let len = buf.len() - 4;
    if len > N {
        return Err(WireError::TooLarge { len, limit: N });
    }
    buf[..4].copy_from_slice(&(len as u32).to_le_bytes());
    w.write_all(&buf)?;
    Ok(())
}

/// Reads one frame of at most `N` bytes; `buf` is reused.
fn read<const N: usize, T: Decode<()>>(
    r: &mut impl Read,
    buf: &mut Vec<u8>,
) -> Result<T, WireError> {
    let mut head = [0u8; 4];
    r.read_exact(&mut head)?;
    let len = u32::from_le_bytes(head) as usize;
    if len > N {
        return Err(WireError::TooLarge { len, limit: N });
    }
    buf.resize(len, 0);
    r.read_exact(buf).map_err(|e| match WireError::from(e) {
        WireError::Closed => WireError::Decode("the stream ended inside a frame".into()),
        e => e,
    })?;
    let (msg, used) = bincode::decode_from_slice(buf, cfg::<N>())
        .map_err(|e| WireError::Decode(e.to_string()))?;
    if used != len {
        return Err(WireError::Decode(format!(
            "{} bytes after the message",
            len - used
        )));
    }
    Ok(msg)
}

/// Sends the request (the gateway's side).
pub fn write_request(w: &mut impl Write, req: &Request) -> Result<(), WireError> {
    write::<MAX_REQUEST, _>(w, req)
}

/// Reads the request (the reader's side).
pub fn read_request(r: &mut impl Read, buf: &mut Vec<u8>) -> Result<Request, WireError> {
    read::<MAX_REQUEST, _>(r, buf)
}

/// Sends one answer frame (the reader's side).
pub fn write_frame(w: &mut impl Write, f: &Frame) -> Result<(), WireError> {
    write::<MAX_ENTRY, _>(w, f)
}

/// Reads one answer frame (the gateway's side).
pub fn read_frame(r: &mut impl Read, buf: &mut Vec<u8>) -> Result<Frame, WireError> {
    read::<MAX_ENTRY, _>(r, buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_and_an_entry_survive_the_round_trip() {
        let req = Request {
            version: VERSION,
            fields: field::ALL,
            pids: vec![2, 3, 70000],
            policy: false,
        };
        let mut b = Vec::new();
        write_request(&mut b, &req).unwrap();
        let mut buf = Vec::new();
        assert_eq!(read_request(&mut b.as_slice(), &mut buf).unwrap(), req);

        let e = Frame::Entry(Box::new(Entry {
            pid: 7,
            start_time: 99,
            private: Private {
                exe: Some(b"/bin/sh".to_vec()),
                memory_maps: Some(vec![MapGroup {
                    path: b"[heap]".to_vec(),
                    sizes: [1; 10],
                }]),
                ..Private::default()
            },
        }));
        let mut b = Vec::new();
        write_frame(&mut b, &e).unwrap();
        write_frame(&mut b, &Frame::End).unwrap();
        let mut r = b.as_slice();
        assert_eq!(read_frame(&mut r, &mut buf).unwrap(), e);
        assert_eq!(read_frame(&mut r, &mut buf).unwrap(), Frame::End);
        assert!(matches!(
            read_frame(&mut r, &mut buf),
            Err(WireError::Closed)
        ));
    }

    #[test]
    fn an_oversized_length_is_refused_before_any_payload_is_read() {
        let mut b = ((MAX_REQUEST + 1) as u32).to_le_bytes().to_vec();
        b.extend_from_slice(&[0; 16]);
        let mut buf = Vec::new();
        let e = read_request(&mut b.as_slice(), &mut buf).unwrap_err();
        assert!(matches!(e, WireError::TooLarge { .. }), "{e}");
        assert!(buf.is_empty());
    }

    #[test]
    fn trailing_bytes_and_garbage_are_refused() {
        let mut b = Vec::new();
        write_frame(&mut b, &Frame::End).unwrap();
        b[0] += 1;
        b.push(0);
        let mut buf = Vec::new();
        assert!(matches!(
            read_frame(&mut b.as_slice(), &mut buf),
            Err(WireError::Decode(_))
        ));
        let garbage = [3u8, 0, 0, 0, 9, 9, 9];
        assert!(matches!(
            read_frame(&mut garbage.as_slice(), &mut buf),
            Err(WireError::Decode(_))
        ));
        let cut = [8u8, 0, 0, 0, 1];
        assert!(matches!(
            read_request(&mut cut.as_slice(), &mut buf),
            Err(WireError::Decode(_))
        ));
    }

    #[test]
    fn every_field_has_one_bit_and_one_name() {
        let mut all = 0;
        for (bit, name) in field::NAMES {
            assert_eq!(field::by_name(name), Some(bit));
            assert_eq!(all & bit, 0);
            all |= bit;
        }
        assert_eq!(all, field::ALL);
        assert_eq!(field::by_name("environ"), None);
    }
}
