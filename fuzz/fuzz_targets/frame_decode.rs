//! Arbitrary bytes through every frame decoder the helper and the gateway
//! use. Invariants: nothing panics; a decoded frame reports a length within
//! the input and re-encodes to a frame that decodes to the same message; a
//! length prefix over the limit is always refused as `TooLarge`.
#![no_main]

use std::io::Cursor;

use libfuzzer_sys::fuzz_target;
use protocol::frame::{frame_len, read_frame};
use protocol::{decode_frame, encode_frame, FrameError, Request, Response, MAX_FRAME};

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
    // Blocking reader over the same bytes.
    let _ = read_frame::<_, T>(&mut Cursor::new(data));
    // Incremental: every prefix either waits, errors, or decodes.
    for cut in [1usize, 3, 4, 5, 8, 17] {
        if cut < data.len() {
            let _ = decode_frame::<T>(&data[..cut]);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    check::<Request>(data);
    check::<Response>(data);
});
