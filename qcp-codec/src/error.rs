//! Error types: [`DecodeError`] for bytes that are not a valid message, [`EncodeError`] for
//! values that cannot be put on the wire.
//!
//! Both are small `Copy` enums that name the place where things went wrong with a
//! `&'static str` "site" such as `"Bind.params"`, so a caller can match on them, log them and
//! return them without allocating. "Need more bytes" is never an error: decoders return
//! `Ok(None)` for that.

use core::fmt;

use crate::startup::ProtocolVersion;
use crate::tag::Tag;

/// Why a byte sequence is not a valid PostgreSQL protocol message.
///
/// Every variant except the length ones carries a `&'static str` naming the message and field
/// (the *site*) where decoding stopped, e.g. `"Parse.query"`.
///
/// # Example
///
/// ```
/// use qcp_codec::{DecodeError, Header};
///
/// // A length of 3 cannot even cover the length field itself.
/// let err = Header::parse(b"Q\0\0\0\x03").unwrap_err();
/// assert!(matches!(err, DecodeError::InvalidLength { len: 3, .. }));
/// assert_eq!(err.to_string(), "invalid length 3 in message 'Q'");
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// A length field is below the minimum (4 for a tagged message, 8 for an untagged startup
    /// packet) or negative. `tag` is `None` for startup packets. Message boundaries are lost.
    InvalidLength {
        /// Tag of the message, `None` for an untagged startup-phase packet.
        tag: Option<Tag>,
        /// The length exactly as read from the wire (signed).
        len: i64,
    },
    /// A tagged message declares a length above [`Limits::message`](crate::Limits::message).
    MessageTooLarge {
        /// Tag of the message, `None` if not known.
        tag: Option<Tag>,
        /// Declared length (counts itself, not the tag).
        len: u32,
        /// The limit in force.
        limit: u32,
    },
    /// A startup-phase packet declares a length above
    /// [`Limits::startup`](crate::Limits::startup) (PostgreSQL's cap is 10 004 bytes, the
    /// length field included).
    StartupTooLarge {
        /// Declared length (counts itself).
        len: u32,
        /// The limit in force.
        limit: u32,
    },
    /// The message body ended in the middle of the named field.
    Truncated(&'static str),
    /// The named string field has no NUL terminator before the end of the body.
    MissingNul(&'static str),
    /// Bytes are left over after the last field of the named message.
    TrailingBytes(&'static str),
    /// The named field is not valid UTF-8 (only returned by the `*_str()` accessors).
    InvalidUtf8(&'static str),
    /// The named count is negative or larger than the remaining bytes could hold.
    BadCount(&'static str),
    /// The named field holds a value the protocol does not allow (e.g. a transaction status
    /// other than `I`, `T`, `E`, a value length below -1, a cancel secret outside 4..=256 bytes).
    InvalidValue(&'static str),
    /// An untagged packet carries the special major version 1234 with an unknown minor code.
    UnknownStartupCode(u32),
    /// A StartupMessage asks for a protocol whose major version is not 3 (the raw
    /// `major << 16 | minor` number is given; 2.0 is 131072).
    UnsupportedProtocolVersion(u32),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::InvalidLength {
                tag: Some(tag),
                len,
            } => {
                write!(f, "invalid length {len} in message {tag}")
            }
            Self::InvalidLength { tag: None, len } => {
                write!(f, "invalid length {len} in startup packet")
            }
            Self::MessageTooLarge {
                tag: Some(tag),
                len,
                limit,
            } => write!(
                f,
                "message {tag} of length {len} exceeds the limit of {limit}"
            ),
            Self::MessageTooLarge {
                tag: None,
                len,
                limit,
            } => write!(f, "message of length {len} exceeds the limit of {limit}"),
            Self::StartupTooLarge { len, limit } => {
                write!(
                    f,
                    "startup packet of length {len} exceeds the limit of {limit}"
                )
            }
            Self::Truncated(site) => write!(f, "message truncated in {site}"),
            Self::MissingNul(site) => write!(f, "missing NUL terminator in {site}"),
            Self::TrailingBytes(site) => write!(f, "unexpected bytes after the end of {site}"),
            Self::InvalidUtf8(site) => write!(f, "invalid UTF-8 in {site}"),
            Self::BadCount(site) => write!(f, "count in {site} does not fit the message"),
            Self::InvalidValue(site) => write!(f, "invalid value in {site}"),
            Self::UnknownStartupCode(code) => {
                write!(f, "unknown startup packet code {code}")
            }
            Self::UnsupportedProtocolVersion(v) => write!(
                f,
                "unsupported protocol version {}",
                ProtocolVersion::from_u32(v)
            ),
        }
    }
}

impl std::error::Error for DecodeError {}

/// Why a value cannot be encoded as a PostgreSQL protocol message.
///
/// When an encoder returns an error it has left the output buffer exactly as it found it.
///
/// # Example
///
/// ```
/// use qcp_codec::{encode, EncodeError};
///
/// let mut out = Vec::new();
/// let err = encode::query(&mut out, "SELECT 1\0; DROP TABLE t").unwrap_err();
/// assert_eq!(err, EncodeError::InteriorNul("Query.sql"));
/// assert!(out.is_empty());
/// ```
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncodeError {
    /// The named string field contains a NUL byte, which would end it early on the wire.
    InteriorNul(&'static str),
    /// The named message, field or count does not fit its wire type (`Int32` length,
    /// 16-bit count).
    TooLarge(&'static str),
    /// The named field holds a value that would not decode back to the same message (an empty
    /// startup parameter name, a zero error-field code, a secret outside 4..=256 bytes, ...).
    InvalidValue(&'static str),
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::InteriorNul(site) => write!(f, "interior NUL byte in {site}"),
            Self::TooLarge(site) => write!(f, "{site} is too large for the wire format"),
            Self::InvalidValue(site) => write!(f, "invalid value for {site}"),
        }
    }
}

impl std::error::Error for EncodeError {}
