//! The relay's sans-IO pieces: framing by header, request/answer accounting, session
//! parameters, named prepared statements, and the [`session`] that puts them together.
//!
//! `driver/` moves the bytes; these modules decide what the bytes mean for the connection.

pub mod framer;
pub mod params;
pub mod prepared;
pub mod session;
pub mod statements;
pub mod tracker;
