//! Nothing to run: this crate carries the Debian package's metadata (see
//! `Cargo.toml` beside it), so that `cargo deb -p monitoreo` builds a
//! package named and described as the whole product. The binaries it
//! packages are the other crates'.

#![forbid(unsafe_code)]
