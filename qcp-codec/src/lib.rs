//! # qcp-codec: the PostgreSQL wire protocol, typed and zero-copy
//!
//! A codec for the PostgreSQL frontend/backend protocol, versions 3.0 and 3.2, in both
//! directions: framing, decoding and encoding of every message, written for proxies and
//! poolers that face untrusted peers.
//!
//! ## What it does
//!
//! - **Framing** by header only: [`Header::parse`] reads the 5-byte tag and length, and
//!   [`split_frames`] / [`header::Frames`] walk a buffer frame by frame, so a relay can forward
//!   messages it never decodes.
//! - **Decoding** into borrowed, typed messages: [`StartupPacket`] for the untagged first
//!   packets, [`FrontendMessage`] and [`BackendMessage`] for everything after. Every decoder
//!   returns `Ok(None)` when it needs more bytes, or the message and the number of bytes it
//!   used. Bodies are validated in full when decoded (counts fit before anything loops, every
//!   string has its NUL, nothing trails), so accessors and the lazy iterators in [`fields`]
//!   cannot fail.
//! - **Encoding** with the free functions in [`encode`] or each message's `encode()`: appends
//!   to the caller's `Vec<u8>`, back-fills the length, and leaves the buffer untouched on error.
//!   A decoded message re-encodes to exactly its input bytes.
//! - **Hostile input** is expected: lengths are checked against [`Limits`] before a body is
//!   awaited, arithmetic is checked, and the crate is built with `forbid(unsafe_code)` and lints
//!   that forbid indexing, `unwrap` and panics outside tests. The [`fuzzing`] entry points state
//!   the properties fuzzers check.
//!
//! ## What it does not do
//!
//! - **No I/O and no async.** It works on byte slices; reading and writing sockets is the
//!   caller's job.
//! - **No allocation on decode.** Decoded messages borrow from the input buffer. (Encoders
//!   append to the caller's `Vec`, which may grow.)
//! - **No state.** It does not track the connection phase: the caller picks
//!   [`StartupPacket::decode`] before the startup packet and [`FrontendMessage::decode`] after,
//!   and decodes a `'p'` message body with the [`auth`] type for the step it is in.
//! - **No text decoding.** Protocol strings are bytes in the session's `client_encoding`;
//!   accessors return `&[u8]`, and the `*_str()` variants check UTF-8 and return
//!   [`DecodeError::InvalidUtf8`] otherwise.
//! - **No protocol 2.0**, no SQL parsing, no authentication crypto (see [`auth`] for the
//!   message layouts only).
//!
//! ## Example
//!
//! ```
//! use qcp_codec::{encode, BackendMessage, Limits, TransactionStatus};
//!
//! // A server answering `SELECT 1`.
//! let mut wire = Vec::new();
//! encode::data_row(&mut wire, &[Some(b"1")])?;
//! encode::command_complete(&mut wire, "SELECT 1")?;
//! encode::ready_for_query(&mut wire, TransactionStatus::Idle);
//!
//! let limits = Limits::default();
//! let mut rest = &wire[..];
//! while let Some((msg, used)) = BackendMessage::decode(rest, &limits)? {
//!     if let BackendMessage::DataRow(row) = msg {
//!         assert_eq!(row.values().next(), Some(Some(&b"1"[..])));
//!     }
//!     rest = &rest[used..];
//! }
//! assert!(rest.is_empty());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Message layouts follow the PostgreSQL documentation, "Message Formats"
//! (<https://www.postgresql.org/docs/current/protocol-message-formats.html>).

#![forbid(unsafe_code)]
#![deny(missing_docs)]
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

mod reader;
mod text;

pub mod auth;
pub mod backend;
pub mod encode;
pub mod error;
pub mod fields;
pub mod frontend;
pub mod header;
pub mod limits;
pub mod startup;
pub mod tag;

#[doc(hidden)]
pub mod fuzzing;

pub use backend::{BackendMessage, TransactionStatus};
pub use error::{DecodeError, EncodeError};
pub use frontend::FrontendMessage;
pub use header::{split_frames, Header, HEADER_LEN};
pub use limits::Limits;
pub use startup::{CancelRequest, ProtocolVersion, Startup, StartupPacket, StartupParams};
pub use tag::Tag;
