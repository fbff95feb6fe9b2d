//! The HTTP layer, independent of what the API does: the accept loop and
//! admission ([`server`], [`admission`]), TLS ([`tls`]; certificate
//! subjects in [`crate::x509`]), one connection with its timers and
//! lingering close ([`conn`], [`connstate`]), the route-table engine with
//! authentication, scope check, body limits and audit ([`router`]),
//! response compression ([`compress`]) and building typed requests from
//! the raw parts ([`extract`]). Below it, and used by it: refused-
//! authentication counting ([`crate::throttle`]), the one envelope writer
//! ([`crate::reply`]) and the one error type ([`crate::error`]). It never
//! imports `api`, nor anything that knows of processes or jobs: the table,
//! and the authenticator, audit sink and meter the router calls, are
//! handed to it at start-up (`router::Hooks`).

pub mod admission;
pub mod compress;
pub mod conn;
pub mod connstate;
pub mod extract;
pub mod router;
pub mod server;
pub mod tls;
