//! Writing JSON scalars straight into a byte buffer.
//!
//! Guarantees: every string written is valid JSON whatever bytes it came
//! from — invalid UTF-8 becomes U+FFFD, `"` `\` and control characters are
//! escaped — so /proc data (process names, paths, arguments) can never break
//! the document.

use std::io::Write as _;

/// Writes `s` as a JSON string (lossy UTF-8, escaped).
pub fn string(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'"');
    let text = String::from_utf8_lossy(s);
    let b = text.as_bytes();
    let mut start = 0;
    for (i, &c) in b.iter().enumerate() {
        let short: &[u8] = match c {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f => {
                out.extend_from_slice(&b[start..i]);
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(c >> 4)]);
                out.push(HEX[usize::from(c & 0xf)]);
                start = i + 1;
                continue;
            }
            _ => continue,
        };
        out.extend_from_slice(&b[start..i]);
        out.extend_from_slice(short);
        start = i + 1;
    }
    out.extend_from_slice(&b[start..]);
    out.push(b'"');
}

/// Writes an unsigned integer.
pub fn uint(out: &mut Vec<u8>, mut v: u64) {
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&tmp[i..]);
}

/// Writes a signed integer.
pub fn int(out: &mut Vec<u8>, v: i64) {
    if v < 0 {
        out.push(b'-');
    }
    uint(out, v.unsigned_abs());
}

/// Writes a float that always reads back as a float (`1.0`, not `1`);
/// NaN and infinities become `null`.
pub fn float(out: &mut Vec<u8>, v: f64) {
    if v.is_finite() {
        let _ = write!(out, "{v:?}");
    } else {
        out.extend_from_slice(b"null");
    }
}

/// Writes `ticks / hz` seconds; exact (`12.34`) when `hz` is 100.
pub fn ticks(out: &mut Vec<u8>, ticks: u64, hz: u64) {
    if hz == 100 {
        uint(out, ticks / 100);
        let cs = ticks % 100;
        out.push(b'.');
        out.push(b'0' + (cs / 10) as u8);
        out.push(b'0' + (cs % 10) as u8);
    } else {
        float(out, ticks as f64 / hz.max(1) as f64);
    }
}

/// Writes `,"key":` (the object was opened with `{"pid":N`).
pub fn key(out: &mut Vec<u8>, k: &str) {
    out.push(b',');
    out.push(b'"');
    out.extend_from_slice(k.as_bytes());
    out.extend_from_slice(b"\":");
}

/// psutil's `io_counters` names, in the order `/proc/PID/io` is parsed.
const IO_NAMES: [&str; 6] = [
    "read_count",
    "write_count",
    "read_bytes",
    "write_bytes",
    "read_chars",
    "write_chars",
];

/// Writes `io_counters` as psutil names them: one object, whoever read
/// the figures (the gateway itself or the reader).
pub fn io_counters(out: &mut Vec<u8>, v: [u64; 6]) {
    for (i, (k, x)) in IO_NAMES.into_iter().zip(v).enumerate() {
        out.extend_from_slice(if i == 0 { b"{\"" } else { b",\"" });
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(b"\":");
        uint(out, x);
    }
    out.push(b'}');
}

/// Writes `[item,item,…]`, each item by `each`.
pub fn array<T>(out: &mut Vec<u8>, items: &[T], mut each: impl FnMut(&mut Vec<u8>, &T)) {
    out.push(b'[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        each(out, item);
    }
    out.push(b']');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(b: &[u8]) -> String {
        let mut out = Vec::new();
        string(&mut out, b);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn escaped_strings_parse_back_to_the_same_text() {
        for raw in [
            &b"plain"[..],
            b"quote\" back\\slash",
            b"nl\n tab\t cr\r bell\x07 nul\x00 esc\x1b del\x7f",
            "ñandú ✓".as_bytes(),
            b"",
        ] {
            let v: String = serde_json::from_str(&s(raw)).unwrap();
            assert_eq!(v.as_bytes(), raw);
        }
    }

    #[test]
    fn invalid_utf8_becomes_replacement_character() {
        let v: String = serde_json::from_str(&s(b"a\xff\xfeb")).unwrap();
        assert_eq!(v, "a\u{fffd}\u{fffd}b");
    }

    #[test]
    fn numbers_are_valid_json() {
        let mut out = Vec::new();
        out.push(b'[');
        uint(&mut out, 0);
        out.push(b',');
        uint(&mut out, u64::MAX);
        out.push(b',');
        int(&mut out, i64::MIN);
        out.push(b',');
        float(&mut out, 3.0);
        out.push(b',');
        float(&mut out, f64::NAN);
        out.push(b',');
        ticks(&mut out, 1234, 100);
        out.push(b',');
        ticks(&mut out, 5, 100);
        out.push(b']');
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "[0,18446744073709551615,-9223372036854775808,3.0,null,12.34,0.05]"
        );
    }
}
