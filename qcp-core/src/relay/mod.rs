//! The relay's sans-IO pieces: framing by header, request/answer accounting, session
//! parameters, named prepared statements, and the [`session`] that puts them together.
//!
//! `driver/` moves the bytes; these modules decide what the bytes mean for the connection.
//! They face untrusted peers on both sides, so the whole core is built without indexing,
//! unchecked arithmetic, `unwrap`, `expect` or panics outside tests.

#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::arithmetic_side_effects
    )
)]

pub mod framer;
pub mod params;
pub mod prepared;
pub mod scope;
pub mod session;
pub mod spellings;
pub mod statements;
pub mod tracker;
