//! The memory a connection and a stream may hold at worst, and so how many
//! connections fit in the unit's `MemoryMax`: a client that opens every
//! connection and stream the caps allow and then reads nothing (HTTP/2
//! with zero flow-control windows, or a socket it never reads) must not
//! take the gateway past it. ARCHITECTURE.md ("Memory bound") has the
//! same arithmetic with the numbers; the unit tests below hold the two
//! and the unit file together, and `tests/h2_memory.rs` measures it.
//!
//! A stream (an HTTP/1 request, or one of an HTTP/2 connection's
//! concurrent streams) holds either its request or its answer:
//! - the request: a head of at most [`MAX_HEAD`] and a body of at most
//!   [`MAX_BODY`], read whole before the handler answers;
//! - a streamed answer (job output raw, as events, or escaped into the
//!   old route's JSON): pieces of at most [`CHUNK`] bytes, [`DEPTH`] of
//!   them queued, one more in the producer waiting to queue it, one taken
//!   by hyper waiting for window and, when the window is open but the
//!   client does not read its socket, up to [`H2_SEND_BUF`] handed to h2
//!   plus the piece that crossed it.
//!
//! Both on top of what a stream costs holding no data, [`STREAM_FIXED`].
//! A connection adds its own state ([`CONN_FIXED`]), rustls' encrypted
//! bytes the socket has not taken ([`TLS_OUT`]) and request bytes h2
//! accepted that no handler read yet (the receive window, [`H2_WINDOW`]).
//!
//! Answers that are not streamed (a process listing, an envelope) are
//! held whole and are not bounded here; see ARCHITECTURE.md.

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;

/// The gateway unit's `MemoryMax` (systemd/monitoreo-gateway.service).
pub const MEMORY_MAX: u64 = 256 * MIB;

/// What is not per connection: the idle process (18 MiB measured, a debug
/// build), the blocking pool's threads, a process listing being walked.
pub const RESERVE: u64 = 64 * MIB;

/// Largest request head (hyper's HTTP/1 read buffer, the HTTP/2 header
/// list).
pub const MAX_HEAD: usize = 16 * 1024;

/// Largest request body the router reads.
pub const MAX_BODY: usize = 64 * 1024;

/// Largest piece a streamed answer queues: a raw read, an event, a piece
/// of escaped JSON. Small, because every stream may hold a few of them
/// for as long as its client does not read.
pub const CHUNK: usize = 16 * 1024;

/// Bytes of output read for one event or one piece of escaped JSON: JSON
/// escaping writes up to six bytes for one (`\u0001`), base64 four for
/// three, and an event adds its name, id and braces (under 100 bytes),
/// so what is read stays within [`CHUNK`] once escaped, with the three
/// bytes of a cut UTF-8 sequence carried from the read before.
pub const ESCAPED_READ: usize = CHUNK / 6 - 64;
const _: () = assert!(6 * (ESCAPED_READ + 3) + 100 <= CHUNK);

/// Pieces queued between a producer and hyper: one keeps the producer
/// reading while the previous piece is sent.
pub const DEPTH: usize = 1;

/// Concurrent streams on one HTTP/2 connection.
pub const H2_STREAMS: u32 = 16;

/// Bytes h2 buffers for one stream beyond its flow-control window
/// (hyper's default is 400 KiB).
pub const H2_SEND_BUF: usize = CHUNK;

/// HTTP/2 receive window, per stream and per connection: request bodies
/// are at most [`MAX_BODY`], and h2 holds what arrives until the handler
/// reads it (hyper's default is 1 MiB each).
pub const H2_WINDOW: u32 = 64 * 1024;

/// An idle TLS HTTP/2 connection with one stream: 34 KiB measured
/// (`tests/h2_memory.rs`, 64 connections), rounded up.
pub const CONN_FIXED: u64 = 48 * KIB;

/// rustls' limit on encrypted bytes waiting for the socket (its
/// `DEFAULT_BUFFER_LIMIT`).
pub const TLS_OUT: u64 = 64 * KIB;

/// A stream that holds no data (h2 and hyper state, the handler's task,
/// a follower's producer): 9.4 KiB measured (2,048 followers of a job
/// without output), rounded up.
pub const STREAM_FIXED: u64 = 16 * KIB;

/// A stream's request at its largest.
pub const fn request_bytes() -> u64 {
    (MAX_HEAD + MAX_BODY) as u64
}

/// A streamed answer's pieces at their most: queued, in the producer's
/// hands, taken by hyper, and buffered in h2 (see the module doc; with no
/// window h2 holds none of them).
pub const fn answer_bytes() -> u64 {
    ((DEPTH + 1) * CHUNK + CHUNK + H2_SEND_BUF + CHUNK) as u64
}

/// One stream at its worst.
pub const fn per_stream() -> u64 {
    let held = if request_bytes() > answer_bytes() {
        request_bytes()
    } else {
        answer_bytes()
    };
    STREAM_FIXED + held
}

/// One connection at its worst: HTTP/2 with every stream (an HTTP/1
/// connection has one).
pub const fn per_connection() -> u64 {
    CONN_FIXED + TLS_OUT + H2_WINDOW as u64 + H2_STREAMS as u64 * per_stream()
}

/// `connections` connections at their worst (one address's cap, or the
/// global one).
pub const fn connections_bound(connections: u64) -> u64 {
    RESERVE + connections * per_connection()
}

/// The most connections [`MEMORY_MAX`] holds at their worst: the default
/// connection cap, unless the descriptor limit allows fewer.
pub const fn max_connections() -> usize {
    ((MEMORY_MAX - RESERVE) / per_connection()) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{default_max_connections, DEFAULT_MAX_CONNECTIONS_PER_CLIENT};

    #[test]
    fn the_default_caps_all_used_fit_in_memory_max() {
        assert_eq!(per_stream(), 96 * KIB);
        assert_eq!(per_connection(), 1712 * KIB);
        assert_eq!(max_connections(), 114);
        // The unit's descriptor limit would allow 48,960; memory decides.
        let global = default_max_connections(65536);
        assert_eq!(global, max_connections());
        assert!(connections_bound(global as u64) <= MEMORY_MAX);
        assert!(connections_bound(global as u64 + 1) > MEMORY_MAX);
        let per_client = DEFAULT_MAX_CONNECTIONS_PER_CLIENT;
        assert!(per_client <= global);
        assert!(connections_bound(per_client as u64) <= MEMORY_MAX);
    }

    #[test]
    fn memory_max_is_the_units() {
        let unit = include_str!("../../systemd/monitoreo-gateway.service");
        let line = unit
            .lines()
            .find_map(|l| l.strip_prefix("MemoryMax="))
            .expect("the unit sets MemoryMax");
        let mib: u64 = line
            .strip_suffix('M')
            .and_then(|n| n.parse().ok())
            .expect("MemoryMax in M");
        assert_eq!(mib * MIB, MEMORY_MAX);
    }
}
