//! A length inside a frame that claims more than the frame limit is refused
//! before anything of that size is allocated. Proven with a global
//! allocator that records, per thread, the largest allocation made: it
//! needs `unsafe`, so it lives in a test binary of its own rather than in
//! the crate.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use protocol::{decode_frame, encode_frame, FrameError, JobId, Request, MAX_FRAME};

/// The system allocator, recording the largest allocation of each thread
/// (tests run on threads of their own, so one test's allocations do not
/// count in another's).
struct Recording;

thread_local! {
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn record(size: usize) {
    // `try_with`: an allocation during the thread's teardown is not recorded.
    let _ = LARGEST.try_with(|m| m.set(m.get().max(size)));
}

// SAFETY: every call is passed on to `System` unchanged; recording the size
// neither allocates nor touches the memory.
unsafe impl GlobalAlloc for Recording {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        record(layout.size());
        // SAFETY: the caller's contract for `alloc`, passed on as is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        record(layout.size());
        // SAFETY: the caller's contract for `alloc_zeroed`, passed on as is.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        record(new_size);
        // SAFETY: the caller's contract for `realloc`, passed on as is.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract for `dealloc`, passed on as is.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Recording = Recording;

/// The largest allocation `f` made on this thread, and its result.
fn largest_allocation<T>(f: impl FnOnce() -> T) -> (usize, T) {
    LARGEST.with(|m| m.set(0));
    let out = f();
    (LARGEST.with(Cell::get), out)
}

fn spawn(command: String) -> Request {
    Request::Spawn {
        job: JobId([7; 16]),
        command,
        timeout_ms: 1000,
        key: "ops".into(),
    }
}

/// A Spawn frame whose command claims `claimed` bytes (and holds one):
/// built from a real encoding, so that it follows the message's layout.
fn spawn_claiming(claimed: u64) -> Vec<u8> {
    let mut frame = encode_frame(&spawn("C".into())).expect("encodes");
    let mut field = 1u64.to_le_bytes().to_vec();
    field.push(b'C');
    let at = frame
        .windows(field.len())
        .position(|w| w == field)
        .expect("the command's length and byte");
    frame[at..at + 8].copy_from_slice(&claimed.to_le_bytes());
    frame
}

#[test]
fn a_string_length_over_the_limit_does_not_allocate() {
    // The recording sees what a decode allocates: a command of 40 KiB,
    // within the limit, is one allocation of its size.
    let long = encode_frame(&spawn("x".repeat(40 << 10))).expect("encodes");
    let (largest, decoded) = largest_allocation(|| decode_frame::<Request>(&long));
    assert!(matches!(decoded, Ok(Some(_))), "{decoded:?}");
    assert!(largest >= 40 << 10, "largest allocation {largest} bytes");

    // Just over the limit, an allocatable size, and a size no allocator
    // could give: refused by the limit, with nothing of it allocated (the
    // error's message is all there is).
    for claimed in [MAX_FRAME as u64 + 1, 1 << 20, 1 << 63] {
        let frame = spawn_claiming(claimed);
        let (largest, decoded) = largest_allocation(|| decode_frame::<Request>(&frame));
        assert!(
            largest < 1024,
            "a command claiming {claimed} bytes made an allocation of {largest} bytes"
        );
        match decoded {
            Err(FrameError::Decode(e)) => assert!(e.contains("LimitExceeded"), "{claimed}: {e}"),
            other => panic!("{claimed}: {other:?}"),
        }
    }
}
