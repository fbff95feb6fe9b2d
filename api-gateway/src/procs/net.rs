//! The `connections` field: inet sockets of a process.
//!
//! `/proc/net/{tcp,tcp6,udp,udp6}` (the gateway's network namespace) are
//! parsed ONCE per listing into socket inode → JSON; each process then only
//! looks up the inodes behind its own `socket:[N]` fds.

use std::collections::HashMap;
use std::fs;
use std::net::{Ipv4Addr, Ipv6Addr};

use super::json;
use super::parse::unsigned;

/// Socket inode → the JSON members after `"fd":N` (starting with `,`).
#[derive(Debug, Default)]
pub struct NetTable(HashMap<u64, Vec<u8>>);

impl NetTable {
    /// Reads the four tables now; unreadable ones are skipped.
    pub fn load() -> NetTable {
        let mut m = HashMap::new();
        for (file, family, kind) in [
            ("/proc/net/tcp", "AF_INET", "SOCK_STREAM"),
            ("/proc/net/tcp6", "AF_INET6", "SOCK_STREAM"),
            ("/proc/net/udp", "AF_INET", "SOCK_DGRAM"),
            ("/proc/net/udp6", "AF_INET6", "SOCK_DGRAM"),
        ] {
            let Ok(text) = fs::read_to_string(file) else {
                continue;
            };
            for line in text.lines().skip(1) {
                let c: Vec<&str> = line.split_whitespace().collect();
                if c.len() < 10 {
                    continue;
                }
                let inode = unsigned(c[9].as_bytes());
                if inode == 0 {
                    continue;
                }
                let mut o = Vec::with_capacity(128);
                o.extend_from_slice(b",\"family\":\"");
                o.extend_from_slice(family.as_bytes());
                o.extend_from_slice(b"\",\"type\":\"");
                o.extend_from_slice(kind.as_bytes());
                o.extend_from_slice(b"\",\"laddr\":");
                addr(&mut o, c[1], false);
                o.extend_from_slice(b",\"raddr\":");
                addr(&mut o, c[2], true);
                o.extend_from_slice(b",\"status\":\"");
                let st = if kind == "SOCK_DGRAM" {
                    "NONE"
                } else {
                    tcp_state(c[3])
                };
                o.extend_from_slice(st.as_bytes());
                o.extend_from_slice(b"\"}");
                m.insert(inode, o);
            }
        }
        NetTable(m)
    }

    /// The JSON tail of the socket with this inode, if it is inet.
    pub fn get(&self, inode: u64) -> Option<&[u8]> {
        self.0.get(&inode).map(Vec::as_slice)
    }
}

/// `0100007F:1F90` → `{"ip":"127.0.0.1","port":8080}`; an all-zero remote
/// address → `null`.
fn addr(o: &mut Vec<u8>, hex: &str, remote: bool) {
    let Some((ip, port)) = hex.split_once(':') else {
        o.extend_from_slice(b"null");
        return;
    };
    let port = u16::from_str_radix(port, 16).unwrap_or(0);
    let words: Vec<u32> = (0..ip.len() / 8)
        .filter_map(|i| u32::from_str_radix(ip.get(i * 8..i * 8 + 8)?, 16).ok())
        .collect();
    let text = match words.as_slice() {
        [w] => Ipv4Addr::from(w.to_ne_bytes()).to_string(),
        [a, b, c, d] => {
            let mut bytes = [0u8; 16];
            for (i, w) in [a, b, c, d].iter().enumerate() {
                bytes[i * 4..i * 4 + 4].copy_from_slice(&w.to_ne_bytes());
            }
            Ipv6Addr::from(bytes).to_string()
        }
        _ => {
            o.extend_from_slice(b"null");
            return;
        }
    };
    if remote && port == 0 && words.iter().all(|w| *w == 0) {
        o.extend_from_slice(b"null");
        return;
    }
    o.extend_from_slice(b"{\"ip\":");
    json::string(o, text.as_bytes());
    o.extend_from_slice(b",\"port\":");
    json::uint(o, u64::from(port));
    o.push(b'}');
}

fn tcp_state(hex: &str) -> &'static str {
    match hex {
        "01" => "ESTABLISHED",
        "02" => "SYN_SENT",
        "03" => "SYN_RECV",
        "04" => "FIN_WAIT1",
        "05" => "FIN_WAIT2",
        "06" => "TIME_WAIT",
        "07" => "CLOSE",
        "08" => "CLOSE_WAIT",
        "09" => "LAST_ACK",
        "0A" => "LISTEN",
        "0B" => "CLOSING",
        "0C" => "NEW_SYN_RECV",
        _ => "NONE",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listening_socket_is_found_by_inode() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let t = NetTable::load();
        let want = format!("{{\"ip\":\"127.0.0.1\",\"port\":{port}}}");
        let hit = t.0.values().any(|v| {
            let s = String::from_utf8_lossy(v);
            s.contains(&want) && s.contains("LISTEN") && s.contains("\"raddr\":null")
        });
        assert!(hit, "no LISTEN entry for port {port}");
    }
}
