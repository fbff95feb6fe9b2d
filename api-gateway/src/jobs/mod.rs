//! Commands run through the API: their files and records ([`store`],
//! [`meta`], and in memory [`index`]), what each key may start
//! ([`admit`]) and their life cycle ([`lifecycle`]: start, look, delete).

pub mod admit;
pub mod events;
pub mod follow;
pub mod hub;
pub mod index;
pub mod lifecycle;
pub mod meta;
pub mod output;
pub mod owners;
pub mod store;

pub use meta::{JobState, Meta};
pub use store::JobStore;
