//! Arbitrary bytes through every frame decoder the helper and the gateway
//! use. Invariants: nothing panics; a decoded frame reports a length within
//! the input and re-encodes to a frame that decodes to the same message; a
//! length prefix over the limit is always refused as `TooLarge`.
#![no_main]

use std::io::Cursor;

use libfuzzer_sys::fuzz_target;
use protocol::frame::frame_len;
use protocol::{decode_frame, encode_frame, Envelope, FrameError, Request, Response, MAX_FRAME};

/// The gateway's blocking reader, compiled from its own file.
#[path = "../../api-gateway/src/helper/read.rs"]
mod read;
use read::{read_frame, StreamError};

fn check<T>(data: &[u8])
where
    T: bincode::Decode<()> + bincode::Encode + PartialEq + std::fmt::Debug,
{
    match decode_frame::<T>(data) {
        Ok(Some((msg, used))) => {
            assert!(used <= data.len());
            let again = encode_frame(&msg).expect("a decoded message re-encodes");
            let (back, _) = decode_frame::<T>(&again)
                .expect("re-encoded frame decodes")
                .expect("re-encoded frame is whole");
            assert_eq!(back, msg);
        }
        Ok(None) => {}
        Err(FrameError::TooLarge { len }) => assert!(len > MAX_FRAME as u64),
        Err(_) => {}
    }
    if let Ok(Some(len)) = frame_len(data) {
        assert!(len <= MAX_FRAME);
    }
    // A length prefix over the limit is refused as TooLarge, whatever follows.
    if let Some(head) = data.get(..4) {
        let announced = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
        if announced as usize > MAX_FRAME {
            assert!(matches!(
                decode_frame::<T>(data),
                Err(FrameError::TooLarge { .. })
            ));
            assert!(matches!(
                read_frame::<_, T>(&mut Cursor::new(data)),
                Err(StreamError::Frame(FrameError::TooLarge { .. }))
            ));
        }
    }
    // Blocking reader over the same bytes agrees with the slice decoder.
    let whole = decode_frame::<T>(data);
    match (read_frame::<_, T>(&mut Cursor::new(data)), &whole) {
        (Ok(m), Ok(Some((w, _)))) => assert_eq!(&m, w),
        (Ok(_), _) => panic!("read_frame decoded what decode_frame did not"),
        (Err(_), Ok(Some(_))) => panic!("decode_frame decoded what read_frame refused"),
        _ => {}
    }
    // Incremental: bytes arriving k at a time yield the same messages as
    // decoding the whole buffer frame by frame.
    let expected = drain::<T>(data, data.len().max(1));
    for k in 1..=17usize {
        assert_eq!(drain::<T>(data, k), expected, "split every {k} bytes");
    }
}

/// Feeds `data` into a buffer `k` bytes at a time, decoding and dropping
/// frames as they complete; stops at the first error.
fn drain<T: bincode::Decode<()> + std::fmt::Debug>(data: &[u8], k: usize) -> (Vec<String>, bool) {
    let mut buf = Vec::new();
    let mut out = Vec::new();
    for chunk in data.chunks(k) {
        buf.extend_from_slice(chunk);
        loop {
            match decode_frame::<T>(&buf) {
                Ok(Some((m, used))) => {
                    assert!(used <= buf.len());
                    out.push(format!("{m:?}"));
                    buf.drain(..used);
                }
                Ok(None) => break,
                Err(_) => return (out, true),
            }
        }
    }
    (out, false)
}

fuzz_target!(|data: &[u8]| {
    check::<Envelope>(data);
    check::<Request>(data);
    check::<Response>(data);
});
