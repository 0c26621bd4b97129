//! ErrorResponse and NoticeResponse, which share one body layout.

use core::fmt;

use crate::encode::writer::{self, Writer};
use crate::error::{DecodeError, EncodeError};
use crate::fields::{read_error_field, ErrorField, ErrorFields};
use crate::reader::Reader;
use crate::tag::Tag;

/// The body of an ErrorResponse (`E`) or NoticeResponse (`N`): repeated `Byte1 code`,
/// `String value`, ended by a zero byte that must be the last byte.
///
/// Field codes this codec does not know are kept and yielded, not rejected, as the protocol
/// asks. The helpers return the first field with the given code.
///
/// ```
/// use qcp_codec::backend::ErrorResponse;
///
/// let e = ErrorResponse::decode(b"SFATAL\0VFATAL\0C28P01\0Mpassword authentication failed\0\0")?;
/// assert_eq!(e.severity(), Some(&b"FATAL"[..]));
/// assert_eq!(e.sqlstate(), Some(&b"28P01"[..]));
/// assert_eq!(e.message(), Some(&b"password authentication failed"[..]));
/// assert_eq!(e.hint(), None);
/// # Ok::<(), qcp_codec::DecodeError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ErrorResponse<'a> {
    /// INVARIANT: validated fields, without the final zero byte.
    fields: &'a [u8],
}

impl<'a> ErrorResponse<'a> {
    /// Decodes an ErrorResponse or NoticeResponse body.
    ///
    /// ```
    /// use qcp_codec::{backend::ErrorResponse, DecodeError};
    /// assert_eq!(ErrorResponse::decode(b"SERROR\0"), Err(DecodeError::Truncated("ErrorResponse.code")));
    /// assert_eq!(ErrorResponse::decode(b"SERROR\0\0x"), Err(DecodeError::TrailingBytes("ErrorResponse")));
    /// ```
    pub fn decode(body: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body);
        while read_error_field(&mut r)?.is_some() {}
        r.finish("ErrorResponse")?;
        let used = body.len().saturating_sub(1);
        Ok(Self {
            fields: body.get(..used).unwrap_or_default(),
        })
    }

    /// All fields, in wire order.
    ///
    /// ```
    /// # let e = qcp_codec::backend::ErrorResponse::decode(b"SERROR\0Xfuture field\0\0")?;
    /// assert_eq!(e.fields().map(|f| f.code).collect::<Vec<_>>(), b"SX");
    /// # Ok::<(), qcp_codec::DecodeError>(())
    /// ```
    #[inline]
    pub const fn fields(&self) -> ErrorFields<'a> {
        ErrorFields::new(self.fields)
    }

    /// The value of the first field with `code`.
    ///
    /// ```
    /// use qcp_codec::fields::ErrorField;
    /// # let e = qcp_codec::backend::ErrorResponse::decode(b"SERROR\0P12\0\0")?;
    /// assert_eq!(e.field(ErrorField::POSITION), Some(&b"12"[..]));
    /// # Ok::<(), qcp_codec::DecodeError>(())
    /// ```
    #[inline]
    pub fn field(&self, code: u8) -> Option<&'a [u8]> {
        self.fields().find(|f| f.code == code).map(|f| f.value)
    }

    /// `S`: severity, possibly localised.
    ///
    /// ```
    /// # let e = qcp_codec::backend::ErrorResponse::decode(b"SERREUR\0VERROR\0\0")?;
    /// assert_eq!(e.severity(), Some(&b"ERREUR"[..]));
    /// # Ok::<(), qcp_codec::DecodeError>(())
    /// ```
    #[inline]
    pub fn severity(&self) -> Option<&'a [u8]> {
        self.field(ErrorField::SEVERITY)
    }

    /// `V`: severity, never localised (PostgreSQL 9.6+).
    ///
    /// ```
    /// # let e = qcp_codec::backend::ErrorResponse::decode(b"SERREUR\0VERROR\0\0")?;
    /// assert_eq!(e.severity_nonlocalized(), Some(&b"ERROR"[..]));
    /// # Ok::<(), qcp_codec::DecodeError>(())
    /// ```
    #[inline]
    pub fn severity_nonlocalized(&self) -> Option<&'a [u8]> {
        self.field(ErrorField::SEVERITY_NONLOCALIZED)
    }

    /// `C`: the SQLSTATE code.
    ///
    /// ```
    /// # let e = qcp_codec::backend::ErrorResponse::decode(b"C57014\0\0")?;
    /// assert_eq!(e.sqlstate(), Some(&b"57014"[..]));
    /// # Ok::<(), qcp_codec::DecodeError>(())
    /// ```
    #[inline]
    pub fn sqlstate(&self) -> Option<&'a [u8]> {
        self.field(ErrorField::SQLSTATE)
    }

    /// `M`: the primary message.
    ///
    /// ```
    /// # let e = qcp_codec::backend::ErrorResponse::decode(b"Mboom\0\0")?;
    /// assert_eq!(e.message(), Some(&b"boom"[..]));
    /// # Ok::<(), qcp_codec::DecodeError>(())
    /// ```
    #[inline]
    pub fn message(&self) -> Option<&'a [u8]> {
        self.field(ErrorField::MESSAGE)
    }

    /// `D`: detail.
    ///
    /// ```
    /// # let e = qcp_codec::backend::ErrorResponse::decode(b"Dmore\0\0")?;
    /// assert_eq!(e.detail(), Some(&b"more"[..]));
    /// # Ok::<(), qcp_codec::DecodeError>(())
    /// ```
    #[inline]
    pub fn detail(&self) -> Option<&'a [u8]> {
        self.field(ErrorField::DETAIL)
    }

    /// `H`: hint.
    ///
    /// ```
    /// # let e = qcp_codec::backend::ErrorResponse::decode(b"Htry again\0\0")?;
    /// assert_eq!(e.hint(), Some(&b"try again"[..]));
    /// # Ok::<(), qcp_codec::DecodeError>(())
    /// ```
    #[inline]
    pub fn hint(&self) -> Option<&'a [u8]> {
        self.field(ErrorField::HINT)
    }

    /// Appends this body as an ErrorResponse (`tag` = [`Tag::ERROR_RESPONSE`]) or a
    /// NoticeResponse ([`Tag::NOTICE_RESPONSE`]), byte for byte as decoded.
    ///
    /// ```
    /// use qcp_codec::Tag;
    /// let e = qcp_codec::backend::ErrorResponse::decode(b"Mx\0\0")?;
    /// let mut out = Vec::new();
    /// e.encode(Tag::NOTICE_RESPONSE, &mut out)?;
    /// assert_eq!(out, b"N\0\0\0\x08Mx\0\0");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn encode(&self, tag: Tag, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        writer::message(out, Some(tag), "ErrorResponse", |w: &mut Writer<'_>| {
            w.bytes(self.fields);
            w.u8(0);
            Ok(())
        })
    }
}

impl fmt::Debug for ErrorResponse<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ErrorResponse")
            .field(&self.fields())
            .finish()
    }
}
