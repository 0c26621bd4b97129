//! Messages a server (backend) sends: [`BackendMessage`] and its body types.
//!
//! Decode one message with [`BackendMessage::decode`] (header and body) or
//! [`BackendMessage::decode_body`]. Every body is validated in full before it is returned, so
//! accessors and iterators cannot fail.
//!
//! Layouts: PostgreSQL documentation, "Message Formats"
//! (<https://www.postgresql.org/docs/current/protocol-message-formats.html>).

mod notice;
mod rows;
mod session;

use core::fmt;

pub use crate::frontend::CopyData;
pub use notice::ErrorResponse;
pub use rows::{CommandComplete, CopyResponse, DataRow, ParameterDescription, RowDescription};
pub use session::{
    BackendKeyData, NegotiateProtocolVersion, NotificationResponse, ParameterStatus,
};

use crate::auth::Authentication;
use crate::encode::writer;
use crate::error::{DecodeError, EncodeError};
use crate::frontend::empty;
use crate::header::Header;
use crate::limits::Limits;
use crate::reader::Reader;
use crate::tag::Tag;
use crate::text::{Bytes, OptBytes};

/// The transaction state reported by ReadyForQuery (`Z`).
///
/// ```
/// use qcp_codec::TransactionStatus;
/// assert_eq!(TransactionStatus::from_byte(b'T'), Some(TransactionStatus::InTransaction));
/// assert_eq!(TransactionStatus::Failed.to_byte(), b'E');
/// assert_eq!(TransactionStatus::from_byte(b'x'), None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransactionStatus {
    /// `I`: not in a transaction block.
    Idle,
    /// `T`: in a transaction block.
    InTransaction,
    /// `E`: in a failed transaction block (queries rejected until it ends).
    Failed,
}

impl TransactionStatus {
    /// Maps the wire byte to a status; `None` for anything but `I`, `T`, `E`.
    ///
    /// ```
    /// use qcp_codec::TransactionStatus;
    /// assert_eq!(TransactionStatus::from_byte(b'I'), Some(TransactionStatus::Idle));
    /// ```
    #[inline]
    pub const fn from_byte(b: u8) -> Option<Self> {
        match b {
            b'I' => Some(Self::Idle),
            b'T' => Some(Self::InTransaction),
            b'E' => Some(Self::Failed),
            _ => None,
        }
    }

    /// The wire byte: `I`, `T` or `E`.
    ///
    /// ```
    /// use qcp_codec::TransactionStatus;
    /// assert_eq!(TransactionStatus::Idle.to_byte(), b'I');
    /// ```
    #[inline]
    pub const fn to_byte(self) -> u8 {
        match self {
            Self::Idle => b'I',
            Self::InTransaction => b'T',
            Self::Failed => b'E',
        }
    }

    /// Decodes a ReadyForQuery body (exactly one status byte).
    ///
    /// ```
    /// use qcp_codec::{DecodeError, TransactionStatus};
    /// assert_eq!(TransactionStatus::decode(b"I"), Ok(TransactionStatus::Idle));
    /// assert_eq!(TransactionStatus::decode(b"X"), Err(DecodeError::InvalidValue("ReadyForQuery.status")));
    /// ```
    #[inline]
    pub fn decode(body: &[u8]) -> Result<Self, DecodeError> {
        const SITE: &str = "ReadyForQuery.status";
        let mut r = Reader::new(body);
        let status = Self::from_byte(r.u8(SITE)?).ok_or(DecodeError::InvalidValue(SITE))?;
        r.finish("ReadyForQuery")?;
        Ok(status)
    }
}

/// A message from server to client.
///
/// ```
/// use qcp_codec::{encode, BackendMessage, Limits, TransactionStatus};
///
/// let mut buf = Vec::new();
/// encode::ready_for_query(&mut buf, TransactionStatus::Idle);
/// let (msg, used) = BackendMessage::decode(&buf, &Limits::default())?.unwrap();
/// assert_eq!(msg, BackendMessage::ReadyForQuery(TransactionStatus::Idle));
/// assert_eq!(used, 6);
/// # Ok::<(), qcp_codec::DecodeError>(())
/// ```
#[non_exhaustive]
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum BackendMessage<'a> {
    /// `R` authentication request or result.
    Authentication(Authentication<'a>),
    /// `K` cancellation key for this session.
    BackendKeyData(BackendKeyData<'a>),
    /// `v` the server's answer to an unsupported minor version or protocol options.
    NegotiateProtocolVersion(NegotiateProtocolVersion<'a>),
    /// `S` a run-time parameter's value.
    ParameterStatus(ParameterStatus<'a>),
    /// `Z` ready for a new query, with the transaction state.
    ReadyForQuery(TransactionStatus),
    /// `E` an error.
    ErrorResponse(ErrorResponse<'a>),
    /// `N` a notice (same body layout as an error).
    NoticeResponse(ErrorResponse<'a>),
    /// `T` columns of the rows that follow.
    RowDescription(RowDescription<'a>),
    /// `D` one result row.
    DataRow(DataRow<'a>),
    /// `C` a command finished.
    CommandComplete(CommandComplete<'a>),
    /// `I` the query string was empty.
    EmptyQueryResponse,
    /// `t` parameter types of a described statement.
    ParameterDescription(ParameterDescription<'a>),
    /// `n` the described statement or portal returns no rows.
    NoData,
    /// `s` Execute stopped at its row limit.
    PortalSuspended,
    /// `1` Parse done.
    ParseComplete,
    /// `2` Bind done.
    BindComplete,
    /// `3` Close done.
    CloseComplete,
    /// `A` a NOTIFY for a channel this session listens on.
    NotificationResponse(NotificationResponse<'a>),
    /// `G` the server is ready to receive COPY data.
    CopyInResponse(CopyResponse<'a>),
    /// `H` the server is about to send COPY data.
    CopyOutResponse(CopyResponse<'a>),
    /// `W` COPY data flows both ways (replication).
    CopyBothResponse(CopyResponse<'a>),
    /// `d` COPY data.
    CopyData(CopyData<'a>),
    /// `c` end of COPY data.
    CopyDone,
    /// `V` result of a FunctionCall; `None` is SQL NULL.
    FunctionCallResponse(Option<&'a [u8]>),
    /// A tag this codec does not know; kept so a relay can forward it unchanged.
    Unknown {
        /// The tag byte.
        tag: Tag,
        /// The body, as on the wire.
        body: &'a [u8],
    },
}

impl<'a> BackendMessage<'a> {
    /// Decodes the message at the start of `buf`.
    ///
    /// Returns `Ok(None)` while `buf` holds less than a whole message, else the message and the
    /// number of bytes it used (`1 + len`). The header is checked against `limits.message`
    /// before the body has arrived.
    ///
    /// ```
    /// use qcp_codec::{BackendMessage, Limits};
    ///
    /// let limits = Limits::default();
    /// assert_eq!(BackendMessage::decode(b"1\0\0\0", &limits)?, None);
    /// assert_eq!(BackendMessage::decode(b"1\0\0\0\x04", &limits)?, Some((BackendMessage::ParseComplete, 5)));
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
        // DataRow is most of what a server sends: decode it here, inlined into the caller's
        // loop, rather than through the out-of-line match over every tag.
        let msg = if header.tag == Tag::DATA_ROW {
            Self::DataRow(DataRow::decode(body)?)
        } else {
            Self::decode_body(header.tag, body)?
        };
        Ok(Some((msg, header.frame_len())))
    }

    /// Decodes a message body whose tag the caller has already read.
    ///
    /// ```
    /// use qcp_codec::{BackendMessage, DecodeError, Tag, TransactionStatus};
    ///
    /// assert_eq!(
    ///     BackendMessage::decode_body(Tag::READY_FOR_QUERY, b"T"),
    ///     Ok(BackendMessage::ReadyForQuery(TransactionStatus::InTransaction))
    /// );
    /// assert_eq!(
    ///     BackendMessage::decode_body(Tag::READY_FOR_QUERY, b"Q"),
    ///     Err(DecodeError::InvalidValue("ReadyForQuery.status"))
    /// );
    /// ```
    pub fn decode_body(tag: Tag, body: &'a [u8]) -> Result<Self, DecodeError> {
        Ok(match tag {
            Tag::DATA_ROW => Self::DataRow(DataRow::decode(body)?),
            Tag::AUTHENTICATION => Self::Authentication(Authentication::decode(body)?),
            Tag::BACKEND_KEY_DATA => Self::BackendKeyData(BackendKeyData::decode(body)?),
            Tag::NEGOTIATE_PROTOCOL_VERSION => {
                Self::NegotiateProtocolVersion(NegotiateProtocolVersion::decode(body)?)
            }
            Tag::PARAMETER_STATUS => Self::ParameterStatus(ParameterStatus::decode(body)?),
            Tag::READY_FOR_QUERY => Self::ReadyForQuery(TransactionStatus::decode(body)?),
            Tag::ERROR_RESPONSE => Self::ErrorResponse(ErrorResponse::decode(body)?),
            Tag::NOTICE_RESPONSE => Self::NoticeResponse(ErrorResponse::decode(body)?),
            Tag::ROW_DESCRIPTION => Self::RowDescription(RowDescription::decode(body)?),
            Tag::COMMAND_COMPLETE => Self::CommandComplete(CommandComplete::decode(body)?),
            Tag::EMPTY_QUERY_RESPONSE => {
                empty(body, "EmptyQueryResponse", Self::EmptyQueryResponse)?
            }
            Tag::PARAMETER_DESCRIPTION => {
                Self::ParameterDescription(ParameterDescription::decode(body)?)
            }
            Tag::NO_DATA => empty(body, "NoData", Self::NoData)?,
            Tag::PORTAL_SUSPENDED => empty(body, "PortalSuspended", Self::PortalSuspended)?,
            Tag::PARSE_COMPLETE => empty(body, "ParseComplete", Self::ParseComplete)?,
            Tag::BIND_COMPLETE => empty(body, "BindComplete", Self::BindComplete)?,
            Tag::CLOSE_COMPLETE => empty(body, "CloseComplete", Self::CloseComplete)?,
            Tag::NOTIFICATION_RESPONSE => {
                Self::NotificationResponse(NotificationResponse::decode(body)?)
            }
            Tag::COPY_IN_RESPONSE => Self::CopyInResponse(CopyResponse::decode(body)?),
            Tag::COPY_OUT_RESPONSE => Self::CopyOutResponse(CopyResponse::decode(body)?),
            Tag::COPY_BOTH_RESPONSE => Self::CopyBothResponse(CopyResponse::decode(body)?),
            Tag::COPY_DATA => Self::CopyData(CopyData::decode(body)),
            Tag::COPY_DONE => empty(body, "CopyDone", Self::CopyDone)?,
            Tag::FUNCTION_CALL_RESPONSE => {
                let mut r = Reader::new(body);
                let value = r.value("FunctionCallResponse.value")?;
                r.finish("FunctionCallResponse")?;
                Self::FunctionCallResponse(value)
            }
            tag => Self::Unknown { tag, body },
        })
    }

    /// The message's tag.
    ///
    /// ```
    /// use qcp_codec::{BackendMessage, Tag};
    /// assert_eq!(BackendMessage::NoData.tag(), Tag::NO_DATA);
    /// ```
    pub const fn tag(&self) -> Tag {
        match self {
            Self::Authentication(_) => Tag::AUTHENTICATION,
            Self::BackendKeyData(_) => Tag::BACKEND_KEY_DATA,
            Self::NegotiateProtocolVersion(_) => Tag::NEGOTIATE_PROTOCOL_VERSION,
            Self::ParameterStatus(_) => Tag::PARAMETER_STATUS,
            Self::ReadyForQuery(_) => Tag::READY_FOR_QUERY,
            Self::ErrorResponse(_) => Tag::ERROR_RESPONSE,
            Self::NoticeResponse(_) => Tag::NOTICE_RESPONSE,
            Self::RowDescription(_) => Tag::ROW_DESCRIPTION,
            Self::DataRow(_) => Tag::DATA_ROW,
            Self::CommandComplete(_) => Tag::COMMAND_COMPLETE,
            Self::EmptyQueryResponse => Tag::EMPTY_QUERY_RESPONSE,
            Self::ParameterDescription(_) => Tag::PARAMETER_DESCRIPTION,
            Self::NoData => Tag::NO_DATA,
            Self::PortalSuspended => Tag::PORTAL_SUSPENDED,
            Self::ParseComplete => Tag::PARSE_COMPLETE,
            Self::BindComplete => Tag::BIND_COMPLETE,
            Self::CloseComplete => Tag::CLOSE_COMPLETE,
            Self::NotificationResponse(_) => Tag::NOTIFICATION_RESPONSE,
            Self::CopyInResponse(_) => Tag::COPY_IN_RESPONSE,
            Self::CopyOutResponse(_) => Tag::COPY_OUT_RESPONSE,
            Self::CopyBothResponse(_) => Tag::COPY_BOTH_RESPONSE,
            Self::CopyData(_) => Tag::COPY_DATA,
            Self::CopyDone => Tag::COPY_DONE,
            Self::FunctionCallResponse(_) => Tag::FUNCTION_CALL_RESPONSE,
            Self::Unknown { tag, .. } => *tag,
        }
    }

    /// Appends the whole message (tag, length, body) to `out`. A decoded message re-encodes
    /// to exactly the bytes it was decoded from. On error `out` is left unchanged.
    ///
    /// ```
    /// use qcp_codec::{BackendMessage, Limits};
    ///
    /// let wire = b"C\0\0\0\x0dSELECT 1\0";
    /// let (msg, _) = BackendMessage::decode(wire, &Limits::default())?.unwrap();
    /// let mut out = Vec::new();
    /// msg.encode(&mut out)?;
    /// assert_eq!(out, wire);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        match self {
            Self::Authentication(m) => m.encode(out),
            Self::BackendKeyData(m) => m.encode(out),
            Self::NegotiateProtocolVersion(m) => m.encode(out),
            Self::ParameterStatus(m) => m.encode(out),
            Self::ReadyForQuery(status) => {
                crate::encode::ready_for_query(out, *status);
                Ok(())
            }
            Self::ErrorResponse(m) | Self::NoticeResponse(m) => m.encode(self.tag(), out),
            Self::RowDescription(m) => m.encode(out),
            Self::DataRow(m) => m.encode(out),
            Self::CommandComplete(m) => m.encode(out),
            Self::ParameterDescription(m) => m.encode(out),
            Self::NotificationResponse(m) => m.encode(out),
            Self::CopyInResponse(m) | Self::CopyOutResponse(m) | Self::CopyBothResponse(m) => {
                m.encode(self.tag(), out)
            }
            Self::CopyData(m) => m.encode(out),
            Self::EmptyQueryResponse
            | Self::NoData
            | Self::PortalSuspended
            | Self::ParseComplete
            | Self::BindComplete
            | Self::CloseComplete
            | Self::CopyDone => {
                writer::fixed(out, self.tag(), &[]);
                Ok(())
            }
            Self::FunctionCallResponse(value) => crate::encode::function_call_response(out, *value),
            Self::Unknown { tag, body } => crate::frontend::raw(out, *tag, body),
        }
    }
}

impl fmt::Debug for BackendMessage<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Authentication(m) => f.debug_tuple("Authentication").field(m).finish(),
            Self::BackendKeyData(m) => m.fmt(f),
            Self::NegotiateProtocolVersion(m) => m.fmt(f),
            Self::ParameterStatus(m) => m.fmt(f),
            Self::ReadyForQuery(s) => f.debug_tuple("ReadyForQuery").field(s).finish(),
            Self::ErrorResponse(m) => m.fmt(f),
            Self::NoticeResponse(m) => f.debug_tuple("NoticeResponse").field(&m.fields()).finish(),
            Self::RowDescription(m) => m.fmt(f),
            Self::DataRow(m) => m.fmt(f),
            Self::CommandComplete(m) => m.fmt(f),
            Self::EmptyQueryResponse => f.write_str("EmptyQueryResponse"),
            Self::ParameterDescription(m) => m.fmt(f),
            Self::NoData => f.write_str("NoData"),
            Self::PortalSuspended => f.write_str("PortalSuspended"),
            Self::ParseComplete => f.write_str("ParseComplete"),
            Self::BindComplete => f.write_str("BindComplete"),
            Self::CloseComplete => f.write_str("CloseComplete"),
            Self::NotificationResponse(m) => m.fmt(f),
            Self::CopyInResponse(m) => f.debug_tuple("CopyInResponse").field(m).finish(),
            Self::CopyOutResponse(m) => f.debug_tuple("CopyOutResponse").field(m).finish(),
            Self::CopyBothResponse(m) => f.debug_tuple("CopyBothResponse").field(m).finish(),
            Self::CopyData(m) => m.fmt(f),
            Self::CopyDone => f.write_str("CopyDone"),
            Self::FunctionCallResponse(v) => f
                .debug_tuple("FunctionCallResponse")
                .field(&OptBytes(*v))
                .finish(),
            Self::Unknown { tag, body } => f
                .debug_struct("Unknown")
                .field("tag", tag)
                .field("body", &Bytes(body))
                .finish(),
        }
    }
}
