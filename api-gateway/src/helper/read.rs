//! Reading one frame from a blocking stream, as the gateway's client reads
//! the helper's answers. It lives beside that client, not in `protocol`,
//! because the helper never reads a blocking stream (its loop decodes what
//! it buffered with `protocol::decode_frame`). This file uses `protocol`,
//! `bincode` and std alone: the fuzz target
//! (`fuzz/fuzz_targets/frame_decode.rs`) compiles it as it is, to check
//! that it agrees with `decode_frame` on every input.

use std::fmt;
use std::io::{self, Read};

use protocol::frame::{decode_frame, frame_len, FrameError, HEADER_LEN};

/// Why a frame could not be read from the stream (or, for the client,
/// encoded and written).
#[derive(Debug)]
pub enum StreamError {
    /// The bytes were no frame: an oversize length, a payload that does
    /// not decode, trailing bytes.
    Frame(FrameError),
    /// The peer closed the stream in the middle of a frame.
    Truncated { have: usize, want: usize },
    /// The peer closed the stream between frames.
    Closed,
    /// An I/O error on the stream.
    Io(io::Error),
}

impl fmt::Display for StreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StreamError::Frame(e) => e.fmt(f),
            StreamError::Truncated { have, want } => {
                write!(f, "stream closed inside a frame ({have} of {want} bytes)")
            }
            StreamError::Closed => f.write_str("peer closed the connection"),
            StreamError::Io(e) => write!(f, "i/o error: {e}"),
        }
    }
}

impl std::error::Error for StreamError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StreamError::Frame(e) => Some(e),
            StreamError::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<FrameError> for StreamError {
    fn from(e: FrameError) -> Self {
        StreamError::Frame(e)
    }
}

impl From<io::Error> for StreamError {
    fn from(e: io::Error) -> Self {
        StreamError::Io(e)
    }
}

/// Reads one frame from a blocking stream. The payload buffer is allocated
/// only after the length has passed the `MAX_FRAME` check.
pub fn read_frame<R: Read, T: bincode::Decode<()>>(r: &mut R) -> Result<T, StreamError> {
    let mut buf = vec![0u8; HEADER_LEN];
    let got = read_full(r, &mut buf)?;
    if got == 0 {
        return Err(StreamError::Closed);
    }
    if let Some(len) = frame_len(&buf[..got])? {
        buf.resize(HEADER_LEN + len, 0);
    }
    let got = got + read_full(r, &mut buf[got..])?;
    match decode_frame(&buf[..got])? {
        Some((msg, _)) => Ok(msg),
        None => Err(StreamError::Truncated {
            have: got,
            want: buf.len(),
        }),
    }
}

/// Reads until `buf` is full or the stream ends; returns the bytes read.
fn read_full<R: Read>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::frame::{encode_frame, MAX_FRAME};
    use protocol::{Action, Caller, ExePin, JobId, Pinned, Request, Response, Signal, Target};

    fn samples() -> Vec<Request> {
        let caller = || Caller {
            key: "ops".into(),
            all_jobs: false,
        };
        vec![
            Request::Hello { version: 1 },
            Request::Check {
                targets: vec![Pinned {
                    target: Target {
                        pid: 42,
                        start_time: 7,
                    },
                    exe: ExePin::Unplanned,
                    pidfd_ino: None,
                }],
                action: Action::Signal(Signal::Term),
                caller: caller(),
            },
            Request::Act {
                targets: vec![Pinned {
                    target: Target {
                        pid: -3,
                        start_time: 0,
                    },
                    exe: ExePin::Unplanned,
                    pidfd_ino: None,
                }],
                action: Action::Renice(-21),
                caller: caller(),
                tree: false,
            },
            Request::Spawn {
                job: JobId([1; 16]),
                command: "printf 'a\\nb' | cat".into(),
                timeout_ms: 10_000,
                key: "ops".into(),
            },
            Request::JobStatus {
                job: JobId([2; 16]),
            },
            Request::Cancel {
                job: JobId([3; 16]),
            },
        ]
    }

    #[test]
    fn every_request_reads_back_as_sent() {
        for req in samples() {
            let bytes = encode_frame(&req).expect("encodes");
            let mut cursor = io::Cursor::new(bytes);
            assert_eq!(read_frame::<_, Request>(&mut cursor).expect("reads"), req);
        }
    }

    #[test]
    fn an_oversize_length_is_refused_before_the_payload_is_read() {
        let mut cursor = io::Cursor::new(u32::MAX.to_le_bytes().to_vec());
        assert!(matches!(
            read_frame::<_, Request>(&mut cursor),
            Err(StreamError::Frame(FrameError::TooLarge { len })) if len == u64::from(u32::MAX)
        ));
        let mut cursor = io::Cursor::new((MAX_FRAME as u32 + 1).to_le_bytes().to_vec());
        assert!(matches!(
            read_frame::<_, Request>(&mut cursor),
            Err(StreamError::Frame(FrameError::TooLarge { .. }))
        ));
    }

    #[test]
    fn truncated_and_closed_streams_are_told_apart() {
        let bytes = encode_frame(&samples()[1]).expect("encodes");
        let mut short = io::Cursor::new(bytes[..bytes.len() - 1].to_vec());
        assert!(matches!(
            read_frame::<_, Request>(&mut short),
            Err(StreamError::Truncated { .. })
        ));
        let mut empty = io::Cursor::new(Vec::new());
        assert!(matches!(
            read_frame::<_, Response>(&mut empty),
            Err(StreamError::Closed)
        ));
    }
}
