//! [`Tag`]: the first byte of every tagged message, as an open newtype.
//!
//! Tags are direction-dependent: `b'C'` is Close from a client but CommandComplete from a
//! server, so the constants are named per direction and several share a value
//! (`Tag::SYNC == Tag::PARAMETER_STATUS`). Unknown tags are valid `Tag`s: a relay must be able
//! to carry them.

use core::fmt;

/// The one-byte type code that starts every message after the startup phase.
///
/// An open newtype: any byte is a `Tag`, the associated constants name the ones PostgreSQL
/// defines. `Debug` and `Display` print the character (`'Q'`) or, for a non-printable byte,
/// its hex value (`0x00`).
///
/// # Example
///
/// ```
/// use qcp_codec::Tag;
///
/// assert_eq!(Tag::QUERY, Tag(b'Q'));
/// assert_eq!(Tag::SYNC, Tag::PARAMETER_STATUS); // same byte, other direction
/// assert_eq!(format!("{:?}", Tag::QUERY), "Tag('Q')");
/// assert_eq!(format!("{}", Tag(0)), "0x00");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tag(pub u8);

impl Tag {
    // ---- frontend (client to server) ----
    /// `Q` Query (frontend).
    pub const QUERY: Tag = Tag(b'Q');
    /// `P` Parse (frontend).
    pub const PARSE: Tag = Tag(b'P');
    /// `B` Bind (frontend).
    pub const BIND: Tag = Tag(b'B');
    /// `D` Describe (frontend); DataRow in the other direction.
    pub const DESCRIBE: Tag = Tag(b'D');
    /// `E` Execute (frontend); ErrorResponse in the other direction.
    pub const EXECUTE: Tag = Tag(b'E');
    /// `C` Close (frontend); CommandComplete in the other direction.
    pub const CLOSE: Tag = Tag(b'C');
    /// `S` Sync (frontend); ParameterStatus in the other direction.
    pub const SYNC: Tag = Tag(b'S');
    /// `H` Flush (frontend); CopyOutResponse in the other direction.
    pub const FLUSH: Tag = Tag(b'H');
    /// `F` FunctionCall (frontend).
    pub const FUNCTION_CALL: Tag = Tag(b'F');
    /// `f` CopyFail (frontend).
    pub const COPY_FAIL: Tag = Tag(b'f');
    /// `X` Terminate (frontend).
    pub const TERMINATE: Tag = Tag(b'X');
    /// `p` PasswordMessage, SASLInitialResponse, SASLResponse and GSSResponse (frontend): which
    /// one depends on the authentication request the server sent last.
    pub const PASSWORD: Tag = Tag(b'p');
    /// `p` SASLInitialResponse (frontend), same byte as [`Tag::PASSWORD`].
    pub const SASL_INITIAL_RESPONSE: Tag = Tag(b'p');
    /// `p` SASLResponse (frontend), same byte as [`Tag::PASSWORD`].
    pub const SASL_RESPONSE: Tag = Tag(b'p');
    /// `p` GSSResponse (frontend), same byte as [`Tag::PASSWORD`].
    pub const GSS_RESPONSE: Tag = Tag(b'p');

    // ---- both directions ----
    /// `d` CopyData (both directions).
    pub const COPY_DATA: Tag = Tag(b'd');
    /// `c` CopyDone (both directions).
    pub const COPY_DONE: Tag = Tag(b'c');

    // ---- backend (server to client) ----
    /// `R` Authentication request (backend).
    pub const AUTHENTICATION: Tag = Tag(b'R');
    /// `K` BackendKeyData (backend).
    pub const BACKEND_KEY_DATA: Tag = Tag(b'K');
    /// `v` NegotiateProtocolVersion (backend).
    pub const NEGOTIATE_PROTOCOL_VERSION: Tag = Tag(b'v');
    /// `S` ParameterStatus (backend); Sync in the other direction.
    pub const PARAMETER_STATUS: Tag = Tag(b'S');
    /// `Z` ReadyForQuery (backend).
    pub const READY_FOR_QUERY: Tag = Tag(b'Z');
    /// `E` ErrorResponse (backend); Execute in the other direction.
    pub const ERROR_RESPONSE: Tag = Tag(b'E');
    /// `N` NoticeResponse (backend).
    pub const NOTICE_RESPONSE: Tag = Tag(b'N');
    /// `T` RowDescription (backend).
    pub const ROW_DESCRIPTION: Tag = Tag(b'T');
    /// `D` DataRow (backend); Describe in the other direction.
    pub const DATA_ROW: Tag = Tag(b'D');
    /// `C` CommandComplete (backend); Close in the other direction.
    pub const COMMAND_COMPLETE: Tag = Tag(b'C');
    /// `I` EmptyQueryResponse (backend).
    pub const EMPTY_QUERY_RESPONSE: Tag = Tag(b'I');
    /// `t` ParameterDescription (backend).
    pub const PARAMETER_DESCRIPTION: Tag = Tag(b't');
    /// `n` NoData (backend).
    pub const NO_DATA: Tag = Tag(b'n');
    /// `s` PortalSuspended (backend).
    pub const PORTAL_SUSPENDED: Tag = Tag(b's');
    /// `1` ParseComplete (backend).
    pub const PARSE_COMPLETE: Tag = Tag(b'1');
    /// `2` BindComplete (backend).
    pub const BIND_COMPLETE: Tag = Tag(b'2');
    /// `3` CloseComplete (backend).
    pub const CLOSE_COMPLETE: Tag = Tag(b'3');
    /// `A` NotificationResponse (backend).
    pub const NOTIFICATION_RESPONSE: Tag = Tag(b'A');
    /// `G` CopyInResponse (backend).
    pub const COPY_IN_RESPONSE: Tag = Tag(b'G');
    /// `H` CopyOutResponse (backend); Flush in the other direction.
    pub const COPY_OUT_RESPONSE: Tag = Tag(b'H');
    /// `W` CopyBothResponse (backend).
    pub const COPY_BOTH_RESPONSE: Tag = Tag(b'W');
    /// `V` FunctionCallResponse (backend).
    pub const FUNCTION_CALL_RESPONSE: Tag = Tag(b'V');

    /// The raw byte.
    ///
    /// ```
    /// assert_eq!(qcp_codec::Tag::QUERY.to_byte(), b'Q');
    /// ```
    #[inline]
    pub const fn to_byte(self) -> u8 {
        self.0
    }

    /// The name of the frontend (client to server) message with this tag, if any.
    ///
    /// ```
    /// use qcp_codec::Tag;
    /// assert_eq!(Tag(b'C').frontend_name(), Some("Close"));
    /// assert_eq!(Tag(b'Z').frontend_name(), None);
    /// ```
    pub const fn frontend_name(self) -> Option<&'static str> {
        Some(match self {
            Self::QUERY => "Query",
            Self::PARSE => "Parse",
            Self::BIND => "Bind",
            Self::DESCRIBE => "Describe",
            Self::EXECUTE => "Execute",
            Self::CLOSE => "Close",
            Self::SYNC => "Sync",
            Self::FLUSH => "Flush",
            Self::FUNCTION_CALL => "FunctionCall",
            Self::COPY_DATA => "CopyData",
            Self::COPY_DONE => "CopyDone",
            Self::COPY_FAIL => "CopyFail",
            Self::TERMINATE => "Terminate",
            Self::PASSWORD => "PasswordMessage",
            _ => return None,
        })
    }

    /// The name of the backend (server to client) message with this tag, if any.
    ///
    /// ```
    /// use qcp_codec::Tag;
    /// assert_eq!(Tag(b'C').backend_name(), Some("CommandComplete"));
    /// assert_eq!(Tag(b'Q').backend_name(), None);
    /// ```
    pub const fn backend_name(self) -> Option<&'static str> {
        Some(match self {
            Self::AUTHENTICATION => "Authentication",
            Self::BACKEND_KEY_DATA => "BackendKeyData",
            Self::NEGOTIATE_PROTOCOL_VERSION => "NegotiateProtocolVersion",
            Self::PARAMETER_STATUS => "ParameterStatus",
            Self::READY_FOR_QUERY => "ReadyForQuery",
            Self::ERROR_RESPONSE => "ErrorResponse",
            Self::NOTICE_RESPONSE => "NoticeResponse",
            Self::ROW_DESCRIPTION => "RowDescription",
            Self::DATA_ROW => "DataRow",
            Self::COMMAND_COMPLETE => "CommandComplete",
            Self::EMPTY_QUERY_RESPONSE => "EmptyQueryResponse",
            Self::PARAMETER_DESCRIPTION => "ParameterDescription",
            Self::NO_DATA => "NoData",
            Self::PORTAL_SUSPENDED => "PortalSuspended",
            Self::PARSE_COMPLETE => "ParseComplete",
            Self::BIND_COMPLETE => "BindComplete",
            Self::CLOSE_COMPLETE => "CloseComplete",
            Self::NOTIFICATION_RESPONSE => "NotificationResponse",
            Self::COPY_IN_RESPONSE => "CopyInResponse",
            Self::COPY_OUT_RESPONSE => "CopyOutResponse",
            Self::COPY_BOTH_RESPONSE => "CopyBothResponse",
            Self::COPY_DATA => "CopyData",
            Self::COPY_DONE => "CopyDone",
            Self::FUNCTION_CALL_RESPONSE => "FunctionCallResponse",
            _ => return None,
        })
    }
}

impl From<u8> for Tag {
    #[inline]
    fn from(b: u8) -> Self {
        Tag(b)
    }
}

impl From<Tag> for u8 {
    #[inline]
    fn from(t: Tag) -> Self {
        t.0
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_ascii_graphic() {
            write!(f, "'{}'", char::from(self.0))
        } else {
            write!(f, "{:#04x}", self.0)
        }
    }
}

impl fmt::Debug for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tag({self})")
    }
}
