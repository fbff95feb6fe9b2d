//! Framing: a `u32` little-endian payload length, then a bincode payload.
//!
//! The length is checked against [`MAX_FRAME`] as soon as its four bytes are
//! in, before any payload is buffered, and bincode decodes with the same
//! limit so that no length field inside the payload can make it allocate
//! more. A payload must decode to exactly its length: trailing bytes are an
//! error, so one frame can never smuggle the start of another.
//!
//! Reading a frame from a blocking stream is the gateway's client's
//! (`api-gateway/src/helper/read.rs`): the helper never does.

use std::fmt;

use bincode::config::{self, Configuration, Fixint, Limit, LittleEndian};
use bincode::{Decode, Encode};

/// Largest payload accepted, in bytes (64 KiB).
pub const MAX_FRAME: usize = 64 * 1024;

/// Bytes in the length prefix.
pub const HEADER_LEN: usize = 4;

type Config = Configuration<LittleEndian, Fixint, Limit<MAX_FRAME>>;

fn config() -> Config {
    config::standard()
        .with_little_endian()
        .with_fixed_int_encoding()
        .with_limit::<MAX_FRAME>()
}

/// Why bytes are no frame, or a message could not become one.
#[derive(Debug)]
pub enum FrameError {
    /// The length prefix announces more than [`MAX_FRAME`] bytes.
    TooLarge { len: u64 },
    /// The payload is not a valid message (garbage, wrong variant, bad
    /// UTF-8, a nested length over the limit, ...).
    Decode(String),
    /// The payload decoded but left this many bytes unread.
    TrailingBytes { extra: usize },
    /// The message could not be encoded (too large).
    Encode(String),
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::TooLarge { len } => {
                write!(f, "frame of {len} bytes is over the {MAX_FRAME}-byte limit")
            }
            FrameError::Decode(e) => write!(f, "undecodable frame: {e}"),
            FrameError::TrailingBytes { extra } => {
                write!(f, "frame has {extra} bytes after its message")
            }
            FrameError::Encode(e) => write!(f, "cannot encode frame: {e}"),
        }
    }
}

impl std::error::Error for FrameError {}

/// Encodes `msg` as one frame (length prefix included).
pub fn encode_frame<T: Encode>(msg: &T) -> Result<Vec<u8>, FrameError> {
    let payload =
        bincode::encode_to_vec(msg, config()).map_err(|e| FrameError::Encode(e.to_string()))?;
    if payload.len() > MAX_FRAME {
        return Err(FrameError::TooLarge {
            len: payload.len() as u64,
        });
    }
    // At most MAX_FRAME (checked above), so it fits the prefix.
    let len = payload.len() as u32;
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&payload);
    Ok(out)
}

/// Reads the length prefix at the start of `buf`, if all four bytes are
/// there, and refuses a length over [`MAX_FRAME`].
pub fn frame_len(buf: &[u8]) -> Result<Option<usize>, FrameError> {
    let Some(head) = buf.first_chunk::<HEADER_LEN>() else {
        return Ok(None);
    };
    let len = u32::from_le_bytes(*head);
    if len as usize > MAX_FRAME {
        return Err(FrameError::TooLarge {
            len: u64::from(len),
        });
    }
    Ok(Some(len as usize))
}

/// Decodes one message from the start of `buf`.
///
/// Returns `Ok(None)` when `buf` does not hold a whole frame yet, and
/// `Ok(Some((msg, used)))` when it does, `used` being the bytes to drop from
/// the front of `buf`. An oversize length is refused as soon as the four
/// length bytes are present.
pub fn decode_frame<T: Decode<()>>(buf: &[u8]) -> Result<Option<(T, usize)>, FrameError> {
    let Some(len) = frame_len(buf)? else {
        return Ok(None);
    };
    let Some(payload) = buf.get(HEADER_LEN..HEADER_LEN + len) else {
        return Ok(None);
    };
    let (msg, used) = bincode::decode_from_slice::<T, _>(payload, config())
        .map_err(|e| FrameError::Decode(e.to_string()))?;
    if used != len {
        return Err(FrameError::TrailingBytes { extra: len - used });
    }
    Ok(Some((msg, HEADER_LEN + len)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{Action, ExePin, JobId, Pinned, Request, Signal, Target};

    fn samples() -> Vec<Request> {
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
                caller: crate::Caller {
                    key: "ops".into(),
                    all_jobs: false,
                },
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
                caller: crate::Caller {
                    key: "ops".into(),
                    all_jobs: false,
                },
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
    fn every_request_round_trips() {
        for req in samples() {
            let bytes = encode_frame(&req).expect("encodes");
            let (back, used) = decode_frame::<Request>(&bytes)
                .expect("decodes")
                .expect("whole");
            assert_eq!(back, req);
            assert_eq!(used, bytes.len());
        }
    }

    #[test]
    fn partial_frames_wait_for_more_bytes() {
        let bytes = encode_frame(&samples()[3]).expect("encodes");
        for cut in 0..bytes.len() {
            assert!(matches!(decode_frame::<Request>(&bytes[..cut]), Ok(None)));
        }
    }

    #[test]
    fn oversize_length_is_refused_before_the_payload_arrives() {
        let head = (MAX_FRAME as u32 + 1).to_le_bytes();
        assert!(matches!(
            decode_frame::<Request>(&head),
            Err(FrameError::TooLarge { len }) if len == MAX_FRAME as u64 + 1
        ));
    }

    #[test]
    fn garbage_and_trailing_bytes_are_errors() {
        let garbage = [4u8, 0, 0, 0, 0xff, 0xff, 0xff, 0xff];
        assert!(matches!(
            decode_frame::<Request>(&garbage),
            Err(FrameError::Decode(_))
        ));
        let mut bytes = encode_frame(&Request::Hello { version: 1 }).expect("encodes");
        bytes.push(0);
        bytes[0] += 1;
        assert!(matches!(
            decode_frame::<Request>(&bytes),
            Err(FrameError::TrailingBytes { extra: 1 })
        ));
        assert!(matches!(
            decode_frame::<Request>(&[0, 0, 0, 0]),
            Err(FrameError::Decode(_))
        ));
    }

    #[test]
    fn an_oversize_message_is_not_encoded() {
        let req = Request::Spawn {
            job: JobId([0; 16]),
            command: "x".repeat(MAX_FRAME),
            timeout_ms: 1,
            key: "ops".into(),
        };
        assert!(encode_frame(&req).is_err());
    }
}
