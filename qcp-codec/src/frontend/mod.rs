//! Messages a client (frontend) sends after the startup phase: [`FrontendMessage`] and its
//! body types.
//!
//! Decode one message with [`FrontendMessage::decode`] (header and body) or
//! [`FrontendMessage::decode_body`] (when the caller framed it with [`Header`]).
//! Every body is validated in full before it is returned, so accessors and iterators cannot
//! fail. The `'p'` message family is returned raw as [`FrontendMessage::PasswordFamily`]: which
//! of its four layouts applies depends on the authentication step, which only the caller knows
//! (decode it with the types in [`auth`](crate::auth)).
//!
//! Layouts: PostgreSQL documentation, "Message Formats"
//! (<https://www.postgresql.org/docs/current/protocol-message-formats.html>).

mod extended;
mod simple;

use core::fmt;

pub use extended::{Bind, Close, Describe, Execute, Parse};
pub use simple::{CopyData, CopyFail, FunctionCall, Query};

use crate::encode::writer::{self, Writer};
use crate::error::{DecodeError, EncodeError};
use crate::header::Header;
use crate::limits::Limits;
use crate::reader::Reader;
use crate::tag::Tag;
use crate::text::{Bytes, Redacted};

/// What a Describe or Close refers to: a prepared statement or a portal.
///
/// ```
/// use qcp_codec::frontend::Target;
/// assert_eq!(Target::from_byte(b'S'), Some(Target::Statement));
/// assert_eq!(Target::Portal.to_byte(), b'P');
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target {
    /// `S`: a prepared statement.
    Statement,
    /// `P`: a portal.
    Portal,
}

impl Target {
    /// Maps the wire byte (`S` or `P`) to a target.
    ///
    /// ```
    /// use qcp_codec::frontend::Target;
    /// assert_eq!(Target::from_byte(b'P'), Some(Target::Portal));
    /// assert_eq!(Target::from_byte(b'X'), None);
    /// ```
    #[inline]
    pub const fn from_byte(b: u8) -> Option<Self> {
        match b {
            b'S' => Some(Self::Statement),
            b'P' => Some(Self::Portal),
            _ => None,
        }
    }

    /// The wire byte: `S` or `P`.
    ///
    /// ```
    /// use qcp_codec::frontend::Target;
    /// assert_eq!(Target::Statement.to_byte(), b'S');
    /// ```
    #[inline]
    pub const fn to_byte(self) -> u8 {
        match self {
            Self::Statement => b'S',
            Self::Portal => b'P',
        }
    }
}

/// A message from client to server.
///
/// # Example
///
/// ```
/// use qcp_codec::{encode, FrontendMessage, Limits};
///
/// let mut buf = Vec::new();
/// encode::query(&mut buf, "SELECT 1")?;
/// encode::sync(&mut buf);
/// let limits = Limits::default();
/// let (first, used) = FrontendMessage::decode(&buf, &limits)?.unwrap();
/// let FrontendMessage::Query(q) = first else { panic!() };
/// assert_eq!(q.sql(), b"SELECT 1");
/// let (second, _) = FrontendMessage::decode(&buf[used..], &limits)?.unwrap();
/// assert_eq!(second, FrontendMessage::Sync);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[non_exhaustive]
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum FrontendMessage<'a> {
    /// `Q` simple query.
    Query(Query<'a>),
    /// `P` create a prepared statement.
    Parse(Parse<'a>),
    /// `B` bind parameters into a portal.
    Bind(Bind<'a>),
    /// `D` describe a statement or portal.
    Describe(Describe<'a>),
    /// `E` execute a portal.
    Execute(Execute<'a>),
    /// `C` close a statement or portal.
    Close(Close<'a>),
    /// `S` end of an extended-protocol batch.
    Sync,
    /// `H` ask the server to send pending output.
    Flush,
    /// `F` legacy fast-path function call.
    FunctionCall(FunctionCall<'a>),
    /// `d` COPY data.
    CopyData(CopyData<'a>),
    /// `c` end of COPY data.
    CopyDone,
    /// `f` abort COPY FROM STDIN.
    CopyFail(CopyFail<'a>),
    /// `X` close the connection.
    Terminate,
    /// `p` PasswordMessage, SASLInitialResponse, SASLResponse or GSSResponse, undecoded; use
    /// [`PasswordMessage`](crate::auth::PasswordMessage),
    /// [`SaslInitialResponse`](crate::auth::SaslInitialResponse) or
    /// [`SaslResponse`](crate::auth::SaslResponse) for the step the caller is in.
    PasswordFamily(&'a [u8]),
    /// A tag this codec does not know; kept so a relay can forward it unchanged.
    Unknown {
        /// The tag byte.
        tag: Tag,
        /// The body, as on the wire.
        body: &'a [u8],
    },
}

impl<'a> FrontendMessage<'a> {
    /// Decodes the message at the start of `buf`.
    ///
    /// Returns `Ok(None)` while `buf` holds less than a whole message, else the message and the
    /// number of bytes it used (`1 + len`). The header is checked against `limits.message`
    /// before the body has arrived.
    ///
    /// ```
    /// use qcp_codec::{FrontendMessage, Limits};
    ///
    /// let limits = Limits::default();
    /// assert_eq!(FrontendMessage::decode(b"X\0\0", &limits)?, None);
    /// assert_eq!(FrontendMessage::decode(b"X\0\0\0\x04", &limits)?, Some((FrontendMessage::Terminate, 5)));
    /// # Ok::<(), qcp_codec::DecodeError>(())
    /// ```
    #[inline]
    pub fn decode(buf: &'a [u8], limits: &Limits) -> Result<Option<(Self, usize)>, DecodeError> {
        let Some(header) = Header::parse_limited(buf, limits)? else {
            return Ok(None);
        };
        let Some(body) = header.body(buf) else {
            return Ok(None);
        };
        Ok(Some((
            Self::decode_body(header.tag, body)?,
            header.frame_len(),
        )))
    }

    /// Decodes a message body whose tag the caller has already read.
    ///
    /// ```
    /// use qcp_codec::{DecodeError, FrontendMessage, Tag};
    ///
    /// assert_eq!(FrontendMessage::decode_body(Tag::SYNC, b""), Ok(FrontendMessage::Sync));
    /// assert_eq!(FrontendMessage::decode_body(Tag::SYNC, b"x"), Err(DecodeError::TrailingBytes("Sync")));
    /// assert!(matches!(FrontendMessage::decode_body(Tag(b'?'), b"x"), Ok(FrontendMessage::Unknown { .. })));
    /// ```
    pub fn decode_body(tag: Tag, body: &'a [u8]) -> Result<Self, DecodeError> {
        Ok(match tag {
            Tag::QUERY => Self::Query(Query::decode(body)?),
            Tag::PARSE => Self::Parse(Parse::decode(body)?),
            Tag::BIND => Self::Bind(Bind::decode(body)?),
            Tag::DESCRIBE => Self::Describe(Describe::decode(body)?),
            Tag::EXECUTE => Self::Execute(Execute::decode(body)?),
            Tag::CLOSE => Self::Close(Close::decode(body)?),
            Tag::SYNC => empty(body, "Sync", Self::Sync)?,
            Tag::FLUSH => empty(body, "Flush", Self::Flush)?,
            Tag::FUNCTION_CALL => Self::FunctionCall(FunctionCall::decode(body)?),
            Tag::COPY_DATA => Self::CopyData(CopyData::decode(body)),
            Tag::COPY_DONE => empty(body, "CopyDone", Self::CopyDone)?,
            Tag::COPY_FAIL => Self::CopyFail(CopyFail::decode(body)?),
            Tag::TERMINATE => empty(body, "Terminate", Self::Terminate)?,
            Tag::PASSWORD => Self::PasswordFamily(body),
            tag => Self::Unknown { tag, body },
        })
    }

    /// The message's tag.
    ///
    /// ```
    /// use qcp_codec::{FrontendMessage, Tag};
    /// assert_eq!(FrontendMessage::Flush.tag(), Tag::FLUSH);
    /// ```
    pub const fn tag(&self) -> Tag {
        match self {
            Self::Query(_) => Tag::QUERY,
            Self::Parse(_) => Tag::PARSE,
            Self::Bind(_) => Tag::BIND,
            Self::Describe(_) => Tag::DESCRIBE,
            Self::Execute(_) => Tag::EXECUTE,
            Self::Close(_) => Tag::CLOSE,
            Self::Sync => Tag::SYNC,
            Self::Flush => Tag::FLUSH,
            Self::FunctionCall(_) => Tag::FUNCTION_CALL,
            Self::CopyData(_) => Tag::COPY_DATA,
            Self::CopyDone => Tag::COPY_DONE,
            Self::CopyFail(_) => Tag::COPY_FAIL,
            Self::Terminate => Tag::TERMINATE,
            Self::PasswordFamily(_) => Tag::PASSWORD,
            Self::Unknown { tag, .. } => *tag,
        }
    }

    /// Appends the whole message (tag, length, body) to `out`. A decoded message re-encodes
    /// to exactly the bytes it was decoded from. On error `out` is left unchanged.
    ///
    /// ```
    /// use qcp_codec::{FrontendMessage, Limits};
    ///
    /// let wire = b"E\0\0\0\x09\0\0\0\0\0";
    /// let (msg, _) = FrontendMessage::decode(wire, &Limits::default())?.unwrap();
    /// let mut out = Vec::new();
    /// msg.encode(&mut out)?;
    /// assert_eq!(out, wire);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        match self {
            Self::Query(m) => m.encode(out),
            Self::Parse(m) => m.encode(out),
            Self::Bind(m) => m.encode(out),
            Self::Describe(m) => m.encode(out),
            Self::Execute(m) => m.encode(out),
            Self::Close(m) => m.encode(out),
            Self::FunctionCall(m) => m.encode(out),
            Self::CopyData(m) => m.encode(out),
            Self::CopyFail(m) => m.encode(out),
            Self::Sync | Self::Flush | Self::CopyDone | Self::Terminate => {
                writer::fixed(out, self.tag(), &[]);
                Ok(())
            }
            Self::PasswordFamily(body) => raw(out, Tag::PASSWORD, body),
            Self::Unknown { tag, body } => raw(out, *tag, body),
        }
    }
}

/// Checks an empty-bodied message really is empty.
#[inline]
pub(crate) fn empty<T>(body: &[u8], site: &'static str, value: T) -> Result<T, DecodeError> {
    Reader::new(body).finish(site).map(|()| value)
}

/// Appends a message with an opaque body.
#[inline]
pub(crate) fn raw(out: &mut Vec<u8>, tag: Tag, body: &[u8]) -> Result<(), EncodeError> {
    writer::message(out, Some(tag), "message", |w: &mut Writer<'_>| {
        w.bytes(body);
        Ok(())
    })
}

impl fmt::Debug for FrontendMessage<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Query(m) => m.fmt(f),
            Self::Parse(m) => m.fmt(f),
            Self::Bind(m) => m.fmt(f),
            Self::Describe(m) => m.fmt(f),
            Self::Execute(m) => m.fmt(f),
            Self::Close(m) => m.fmt(f),
            Self::Sync => f.write_str("Sync"),
            Self::Flush => f.write_str("Flush"),
            Self::FunctionCall(m) => m.fmt(f),
            Self::CopyData(m) => m.fmt(f),
            Self::CopyDone => f.write_str("CopyDone"),
            Self::CopyFail(m) => m.fmt(f),
            Self::Terminate => f.write_str("Terminate"),
            // May hold a password or password hash: never print it.
            Self::PasswordFamily(body) => f
                .debug_tuple("PasswordFamily")
                .field(&Redacted(body.len()))
                .finish(),
            Self::Unknown { tag, body } => f
                .debug_struct("Unknown")
                .field("tag", tag)
                .field("body", &Bytes(body))
                .finish(),
        }
    }
}
