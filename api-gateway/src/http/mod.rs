//! The HTTP layer, independent of what the API does: the accept loop
//! ([`server`]), the route-table engine with authentication, scope check,
//! body limit and audit ([`router`]), building typed requests from the raw
//! parts ([`extract`]), the one envelope writer ([`reply`]) and the one
//! error type ([`error`]). It never imports `api`: the table is handed to
//! it at start-up.

pub mod error;
pub mod extract;
pub mod reply;
pub mod router;
pub mod server;
