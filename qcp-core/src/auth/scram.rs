//! What the SCRAM server and client share: the error type, limits, and the attribute syntax
//! of RFC 5802 section 7.
//!
//! A SCRAM message is a comma-separated list of `<letter>=<value>` attributes. No value may
//! contain a comma (user names escape it as `=2C`, nonces exclude it, the rest is base64), so
//! splitting on `,` is exact.

use std::fmt;

use base64::{engine::general_purpose::STANDARD, Engine as _};

use super::primitives::random_bytes;

/// The SASL mechanism name qcp offers and uses.
pub const SCRAM_SHA_256: &str = "SCRAM-SHA-256";

/// SCRAM-SHA-256 with channel binding, offered to clients whose connection to qcp is TLS
/// (the binding is to qcp's own TLS connection, which is what the client can check).
pub const SCRAM_SHA_256_PLUS: &str = "SCRAM-SHA-256-PLUS";

/// The channel-binding type qcp (and PostgreSQL) support.
pub const TLS_SERVER_END_POINT: &str = "tls-server-end-point";

/// Largest iteration count qcp accepts from a server when logging in to it; more would let
/// a server make qcp spin in PBKDF2. 100,000 is the cap the PostgreSQL client libraries
/// adopted (postgres-protocol, pgjdbc) after CVE-2026-42198; PostgreSQL's default is 4096.
pub const MAX_ITERATIONS: u32 = 100_000;

/// Length of the random part of the nonces qcp creates, before base64, as PostgreSQL's
/// `SCRAM_RAW_NONCE_LEN`.
const RAW_NONCE_LEN: usize = 18;

/// Longest `e=` text from a server that [`ScramError::ServerError`] keeps.
const MAX_SERVER_ERROR_LEN: usize = 256;

/// A failed SCRAM exchange. The `Display` text is meant for operators and clients.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScramError {
    /// The peer's message does not follow RFC 5802's syntax; names what is wrong.
    Malformed(&'static str),
    /// The client asked for channel binding (`p=` gs2 flag) where qcp cannot offer it (no
    /// TLS, or not the `-PLUS` mechanism, or another binding type).
    ChannelBindingNotSupported,
    /// The client said it could bind but thought qcp could not (`y`), while qcp offered
    /// `SCRAM-SHA-256-PLUS`: someone may have removed the offer on the way (a downgrade).
    ChannelBindingDowngrade,
    /// The client-final-message's `c=` does not repeat the client-first-message's gs2 header.
    ChannelBindingMismatch,
    /// The peer used an optional SCRAM feature qcp does not implement; names it.
    Unsupported(&'static str),
    /// The nonce in the peer's message is not the one of this exchange.
    NonceMismatch,
    /// The client's proof is wrong: the client does not know the password.
    InvalidProof,
    /// The server's signature is wrong: the server does not know the password's keys.
    ServerSignatureMismatch,
    /// The server ended the exchange with `e=`; holds its (sanitised) text.
    ServerError(String),
    /// The server's iteration count is 0 or above [`MAX_ITERATIONS`].
    UnsupportedIterations(u32),
    /// Pass-through keys were derived for another salt or iteration count than the server's.
    KeysDoNotMatchServerSalt,
    /// A message arrived in a state that does not expect it (or after the exchange ended).
    OutOfOrder,
}

impl fmt::Display for ScramError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScramError::Malformed(what) => write!(f, "malformed SCRAM message: {what}"),
            ScramError::ChannelBindingNotSupported => {
                f.write_str("client requires SCRAM channel binding, but it is not supported")
            }
            ScramError::ChannelBindingDowngrade => f.write_str(
                "the client supports SCRAM channel binding but thinks the server does not, \
                 while qcp offered it",
            ),
            ScramError::ChannelBindingMismatch => f.write_str(
                "SCRAM channel-binding attribute does not match the client-first-message",
            ),
            ScramError::Unsupported(what) => write!(f, "unsupported SCRAM feature: {what}"),
            ScramError::NonceMismatch => f.write_str("SCRAM nonce mismatch"),
            ScramError::InvalidProof => f.write_str("invalid SCRAM client proof"),
            ScramError::ServerSignatureMismatch => f.write_str(
                "the server's SCRAM signature is invalid: the server does not hold this user's \
                 password (misconfiguration or an impostor server)",
            ),
            ScramError::ServerError(text) => write!(f, "the server rejected SCRAM: {text}"),
            ScramError::UnsupportedIterations(n) => write!(
                f,
                "the server asks for {n} SCRAM iterations; qcp accepts 1 to {MAX_ITERATIONS}"
            ),
            ScramError::KeysDoNotMatchServerSalt => f.write_str(
                "the server's SCRAM salt or iteration count differs from the SCRAM secret in \
                 qcp's configuration: for SCRAM pass-through the secret configured in qcp must \
                 be the server's own pg_authid secret (or configure the plaintext password)",
            ),
            ScramError::OutOfOrder => f.write_str("SCRAM message out of order"),
        }
    }
}

impl std::error::Error for ScramError {}

/// Splits a message into its comma-separated attributes.
pub(crate) fn attributes(message: &[u8]) -> impl Iterator<Item = &[u8]> {
    message.split(|&b| b == b',')
}

/// The value of `part` if it is the attribute `name=value`, else `Malformed(what)`.
pub(crate) fn attribute<'a>(
    part: Option<&'a [u8]>,
    name: u8,
    what: &'static str,
) -> Result<&'a [u8], ScramError> {
    part.and_then(|p| p.strip_prefix(&[name, b'='][..]))
        .ok_or(ScramError::Malformed(what))
}

/// Checks an optional extension attribute (`<letter>=<value>`), which is then ignored as
/// RFC 5802 requires.
pub(crate) fn check_extension(part: &[u8]) -> Result<(), ScramError> {
    match part {
        [name, b'=', ..] if name.is_ascii_alphabetic() => Ok(()),
        _ => Err(ScramError::Malformed(
            "attribute is not of the form <letter>=<value>",
        )),
    }
}

/// RFC 5802 `printable`: `%x21-2B / %x2D-7E`, non-empty.
pub(crate) fn is_valid_nonce(nonce: &[u8]) -> bool {
    !nonce.is_empty()
        && nonce
            .iter()
            .all(|&b| (0x21..=0x7e).contains(&b) && b != b',')
}

/// A fresh nonce: base64 of 18 random bytes, as PostgreSQL and libpq make theirs.
pub(crate) fn random_nonce() -> String {
    STANDARD.encode(random_bytes::<RAW_NONCE_LEN>())
}

/// Decodes padded base64 into exactly `N` bytes; `Malformed(what)` otherwise.
pub(crate) fn decode_array<const N: usize>(
    value: &[u8],
    what: &'static str,
) -> Result<[u8; N], ScramError> {
    STANDARD
        .decode(value)
        .ok()
        .and_then(|v| v.try_into().ok())
        .ok_or(ScramError::Malformed(what))
}

/// Decodes padded base64; `Malformed(what)` otherwise.
pub(crate) fn decode_vec(value: &[u8], what: &'static str) -> Result<Vec<u8>, ScramError> {
    STANDARD
        .decode(value)
        .map_err(|_| ScramError::Malformed(what))
}

/// `part1 || "," || part2 || "," || ...`, for the AuthMessage.
pub(crate) fn join_with_commas(parts: &[&[u8]]) -> Vec<u8> {
    let len = parts
        .iter()
        .fold(parts.len(), |acc, p| acc.saturating_add(p.len()));
    let mut out = Vec::with_capacity(len);
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(part);
    }
    out
}

/// A server's `e=` text reduced to printable ASCII and capped, safe to log and relay.
pub(crate) fn sanitize_server_error(text: &[u8]) -> String {
    text.iter()
        .take(MAX_SERVER_ERROR_LEN)
        .map(|&b| {
            if (0x20..=0x7e).contains(&b) {
                char::from(b)
            } else {
                '?'
            }
        })
        .collect()
}
