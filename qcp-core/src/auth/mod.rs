//! Authentication, sans-IO: the secrets qcp stores, SCRAM-SHA-256 as a server (qcp verifies
//! its clients) and as a client (qcp logs in to PostgreSQL servers), and md5.
//!
//! Nothing here reads a socket or a clock. Each exchange is a small state machine fed the
//! payloads of the authentication messages (SASLInitialResponse, SASLResponse,
//! AuthenticationSASLContinue, ...) and returning the payload to send back; framing those
//! payloads into protocol messages is the caller's job (qcp-codec).
//!
//! Everything received here comes from an untrusted peer: parsers return errors, never panic.
//!
//! - [`secret`]: [`Secret`] (plaintext, md5 hash or [`ScramSecret`]) parsed from PostgreSQL's
//!   stored forms; derive a plaintext user's SCRAM verifier once, with
//!   [`ScramSecret::generate`], when the configuration is loaded.
//! - [`scram_server`]: [`ScramServer`] checks a client's proof and recovers its ClientKey.
//! - [`scram_client`]: [`ScramClient`] logs in to a server with a password (PBKDF2 cached by
//!   [`SaltedPasswordCache`]) or, for SCRAM pass-through as in PgBouncer, with the ClientKey
//!   recovered from the client's own login ([`ScramCredentials::passthrough`]), which works
//!   only if qcp's secret is the server's own `pg_authid` secret (same salt and iterations).
//! - [`md5`]: the md5 challenge, answered from a plaintext password or the stored hash.
//! - [`hba`]: access rules in pg_hba.conf syntax (`hba_file`): which method, if any, a
//!   connection gets.
//!
//! ```
//! use qcp_core::auth::{ScramClient, ScramCredentials, ScramSecret, ScramServer};
//!
//! let secret = ScramSecret::from_password("pencil", b"some salt", 16);
//! let mut server = ScramServer::new(&secret);
//! let mut client = ScramClient::new(ScramCredentials::Password("pencil".into()));
//!
//! let server_first = server.handle_client_first(&client.client_first())?;
//! let client_final = client.handle_server_first(&server_first)?;
//! let outcome = server.handle_client_final(&client_final)?;
//! client.handle_server_final(&outcome.server_final)?;
//!
//! // Pass-through: log in again with the recovered ClientKey instead of the password.
//! let keys = ScramCredentials::passthrough(&secret, outcome.client_key);
//! let mut relayed = ScramClient::new(keys);
//! let mut server = ScramServer::new(&secret);
//! let server_first = server.handle_client_first(&relayed.client_first())?;
//! let client_final = relayed.handle_server_first(&server_first)?;
//! relayed.handle_server_final(&server.handle_client_final(&client_final)?.server_final)?;
//! # Ok::<(), qcp_core::auth::ScramError>(())
//! ```
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
#![warn(missing_docs)]

pub mod hba;
pub mod login;
pub mod md5;
mod primitives;
mod scram;
pub mod scram_client;
pub mod scram_server;
pub mod secret;

pub use md5::{md5_hash, md5_response, md5_response_from_hash, md5_stored, md5_verify};
pub use scram::{ScramError, MAX_ITERATIONS, SCRAM_SHA_256, SCRAM_SHA_256_PLUS};
pub use scram_client::{SaltedPasswordCache, ScramClient, ScramCredentials};
pub use scram_server::{Binding, ScramServer, ScramServerOutcome};
pub use secret::{ScramSecret, Secret, SecretError, DEFAULT_SCRAM_ITERATIONS};

/// Compares two byte strings in time that depends only on their lengths, not their contents.
///
/// Use it for every comparison involving a secret, a proof or a signature.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    subtle::ConstantTimeEq::ct_eq(a, b).into()
}

#[cfg(test)]
mod tests;
