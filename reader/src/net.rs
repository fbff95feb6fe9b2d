//! The inet sockets of a network namespace, by socket inode.
//!
//! `connections` are psutil's: the tcp and udp sockets (v4 and v6) behind
//! a process's `socket:[N]` descriptors. The tables are read from
//! `/proc/PID/net/` of a process in that namespace, once per namespace
//! per request (most processes share one), so a process in a container's
//! namespace shows its own sockets, and the reader needs no network of
//! its own.

use std::collections::HashMap;

use crate::wire::{Addr, Connection, Family, TCP_STATES};

/// Socket inode → the connection without its fd.
#[derive(Debug, Default)]
pub struct NetTable(HashMap<u64, Connection>);

impl NetTable {
    /// Parses the four tables; `read(name)` gives the text of
    /// `net/<name>` (or `None`, then that table is skipped).
    pub fn load(mut read: impl FnMut(&str) -> Option<Vec<u8>>) -> NetTable {
        let mut m = HashMap::new();
        for (file, family, stream) in [
            ("tcp", Family::Inet, true),
            ("tcp6", Family::Inet6, true),
            ("udp", Family::Inet, false),
            ("udp6", Family::Inet6, false),
        ] {
            let Some(text) = read(file) else {
                continue;
            };
            let text = String::from_utf8_lossy(&text);
            for line in text.lines().skip(1) {
                let c: Vec<&str> = line.split_whitespace().collect();
                if c.len() < 10 {
                    continue;
                }
                let Ok(inode) = c[9].parse::<u64>() else {
                    continue;
                };
                if inode == 0 {
                    continue;
                }
                let status = if stream {
                    u8::from_str_radix(c[3], 16)
                        .ok()
                        .filter(|s| usize::from(*s) < TCP_STATES.len())
                        .unwrap_or(0)
                } else {
                    0
                };
                let raddr = addr(c[2]).filter(|a| a.port != 0 || a.ip.iter().any(|b| *b != 0));
                m.insert(
                    inode,
                    Connection {
                        fd: 0,
                        family,
                        stream,
                        laddr: addr(c[1]),
                        raddr,
                        status,
                    },
                );
            }
        }
        NetTable(m)
    }

    /// The connection of socket `inode`, given its descriptor number.
    pub fn get(&self, inode: u64, fd: u32) -> Option<Connection> {
        self.0.get(&inode).map(|c| Connection { fd, ..c.clone() })
    }
}

/// `0100007F:1F90` → 127.0.0.1 port 8080 (the kernel prints each 32-bit
/// word of the address in host order).
fn addr(hex: &str) -> Option<Addr> {
    let (ip, port) = hex.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    if ip.len() != 8 && ip.len() != 32 {
        return None;
    }
    let mut bytes = Vec::with_capacity(ip.len() / 2);
    for i in 0..ip.len() / 8 {
        let w = u32::from_str_radix(ip.get(i * 8..i * 8 + 8)?, 16).ok()?;
        bytes.extend_from_slice(&w.to_ne_bytes());
    }
    Some(Addr { ip: bytes, port })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcp_and_udp_lines_become_connections() {
        let tcp = b"  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 4242 1 0\n   1: 0100007F:1F90 0100007F:C000 01 00000000:00000000 00:00000000 00000000  1000        0 4343 1 0\n".to_vec();
        let udp6 = b"header\n  0: 00000000000000000000000001000000:0035 00000000000000000000000000000000:0000 07 00000000:00000000 00:00000000 00000000 0 0 4444 2\n".to_vec();
        let t = NetTable::load(|f| match f {
            "tcp" => Some(tcp.clone()),
            "udp6" => Some(udp6.clone()),
            _ => None,
        });
        let l = t.get(4242, 3).unwrap();
        assert_eq!(TCP_STATES[usize::from(l.status)], "LISTEN");
        assert_eq!(
            l.laddr,
            Some(Addr {
                ip: vec![127, 0, 0, 1],
                port: 8080
            })
        );
        assert_eq!((l.fd, l.raddr.clone(), l.stream), (3, None, true));
        let e = t.get(4343, 4).unwrap();
        assert_eq!(TCP_STATES[usize::from(e.status)], "ESTABLISHED");
        assert_eq!(e.raddr.map(|a| a.port), Some(0xC000));
        let u = t.get(4444, 5).unwrap();
        assert_eq!((u.family, u.stream, u.status), (Family::Inet6, false, 0));
        assert_eq!(u.laddr.map(|a| (a.ip.len(), a.port)), Some((16, 53)));
        assert!(t.get(1, 1).is_none());
    }
}
