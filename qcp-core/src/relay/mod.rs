//! The relay's sans-IO pieces: framing by header and request/answer accounting.
//!
//! `driver/` moves the bytes; these modules decide what the bytes mean for the connection.

pub mod framer;
pub mod params;
pub mod prepared;
pub mod statements;
pub mod tracker;
