//! sd_notify over a Unix datagram socket (`$NOTIFY_SOCKET`, `@` = abstract).

use std::os::unix::net::UnixDatagram;

/// Sends `msg` (e.g. `READY=1`) if `NOTIFY_SOCKET` is set; errors are
/// logged, never fatal.
pub fn notify(msg: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let r = (|| -> std::io::Result<()> {
        let sock = UnixDatagram::unbound()?;
        let bytes = path.as_encoded_bytes();
        if let Some(name) = bytes.strip_prefix(b"@") {
            use std::os::linux::net::SocketAddrExt;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
            sock.send_to_addr(msg.as_bytes(), &addr)?;
        } else {
            sock.send_to(msg.as_bytes(), &path)?;
        }
        Ok(())
    })();
    if let Err(e) = r {
        eprintln!("monitoreo-gateway: sd_notify {msg}: {e}");
    }
}
