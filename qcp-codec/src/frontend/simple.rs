//! Frontend messages outside the extended query protocol: Query, FunctionCall, CopyData and
//! CopyFail. (CopyData is also a backend message and is re-exported from there.)

use core::fmt;

use crate::encode::writer::{self, Writer};
use crate::error::{DecodeError, EncodeError};
use crate::fields::{read_values, FormatCodes, Values};
use crate::reader::Reader;
use crate::tag::Tag;
use crate::text::{utf8, Bytes};

/// Query (`Q`): `String sql`, a simple-protocol query (possibly several `;`-separated
/// statements).
///
/// ```
/// use qcp_codec::frontend::Query;
/// let q = Query::decode(b"SELECT 1\0")?;
/// assert_eq!(q.sql(), b"SELECT 1");
/// # Ok::<(), qcp_codec::DecodeError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Query<'a> {
    sql: &'a [u8],
}

impl<'a> Query<'a> {
    /// Decodes a Query body.
    ///
    /// ```
    /// use qcp_codec::{frontend::Query, DecodeError};
    /// assert_eq!(Query::decode(b"SELECT 1"), Err(DecodeError::MissingNul("Query.sql")));
    /// assert_eq!(Query::decode(b"SELECT 1\0x"), Err(DecodeError::TrailingBytes("Query")));
    /// ```
    pub fn decode(body: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body);
        let sql = r.cstr("Query.sql")?;
        r.finish("Query")?;
        Ok(Self { sql })
    }

    /// The query text, without its NUL terminator.
    ///
    /// ```
    /// # let q = qcp_codec::frontend::Query::decode(b"BEGIN\0")?;
    /// assert_eq!(q.sql(), b"BEGIN");
    /// # Ok::<(), qcp_codec::DecodeError>(())
    /// ```
    #[inline]
    pub const fn sql(&self) -> &'a [u8] {
        self.sql
    }

    /// [`Query::sql`] as UTF-8.
    ///
    /// ```
    /// # let q = qcp_codec::frontend::Query::decode(b"BEGIN\0")?;
    /// assert_eq!(q.sql_str()?, "BEGIN");
    /// # Ok::<(), qcp_codec::DecodeError>(())
    /// ```
    #[inline]
    pub fn sql_str(&self) -> Result<&'a str, DecodeError> {
        utf8(self.sql, "Query.sql")
    }

    /// Appends this message to `out`.
    ///
    /// ```
    /// let q = qcp_codec::frontend::Query::decode(b"BEGIN\0")?;
    /// let mut out = Vec::new();
    /// q.encode(&mut out)?;
    /// assert_eq!(out, b"Q\0\0\0\x0aBEGIN\0");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        crate::encode::query(out, self.sql)
    }
}

impl fmt::Debug for Query<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Query")
            .field("sql", &Bytes(self.sql))
            .finish()
    }
}

/// CopyData (`d`, both directions): `Byte[n]`, a chunk of COPY data.
///
/// ```
/// use qcp_codec::frontend::CopyData;
/// let c = CopyData::decode(b"1\t2\n");
/// assert_eq!(c.data(), b"1\t2\n");
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct CopyData<'a> {
    data: &'a [u8],
}

impl<'a> CopyData<'a> {
    /// Wraps a CopyData body (any bytes are valid).
    ///
    /// ```
    /// assert!(qcp_codec::frontend::CopyData::decode(b"").data().is_empty());
    /// ```
    #[inline]
    pub const fn decode(body: &'a [u8]) -> Self {
        Self { data: body }
    }

    /// The data bytes.
    ///
    /// ```
    /// assert_eq!(qcp_codec::frontend::CopyData::decode(b"x").data(), b"x");
    /// ```
    #[inline]
    pub const fn data(&self) -> &'a [u8] {
        self.data
    }

    /// Appends this message to `out`.
    ///
    /// ```
    /// let mut out = Vec::new();
    /// qcp_codec::frontend::CopyData::decode(b"x").encode(&mut out)?;
    /// assert_eq!(out, b"d\0\0\0\x05x");
    /// # Ok::<(), qcp_codec::EncodeError>(())
    /// ```
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        crate::encode::copy_data(out, self.data)
    }
}

impl fmt::Debug for CopyData<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CopyData")
            .field("data", &Bytes(self.data))
            .finish()
    }
}

/// CopyFail (`f`): `String reason`; the client aborts a COPY FROM STDIN.
///
/// ```
/// use qcp_codec::frontend::CopyFail;
/// let c = CopyFail::decode(b"user cancelled\0")?;
/// assert_eq!(c.reason(), b"user cancelled");
/// # Ok::<(), qcp_codec::DecodeError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct CopyFail<'a> {
    reason: &'a [u8],
}

impl<'a> CopyFail<'a> {
    /// Decodes a CopyFail body.
    ///
    /// ```
    /// use qcp_codec::{frontend::CopyFail, DecodeError};
    /// assert_eq!(CopyFail::decode(b"oops"), Err(DecodeError::MissingNul("CopyFail.reason")));
    /// ```
    pub fn decode(body: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body);
        let reason = r.cstr("CopyFail.reason")?;
        r.finish("CopyFail")?;
        Ok(Self { reason })
    }

    /// Why the client gave up.
    ///
    /// ```
    /// # let c = qcp_codec::frontend::CopyFail::decode(b"oops\0")?;
    /// assert_eq!(c.reason(), b"oops");
    /// # Ok::<(), qcp_codec::DecodeError>(())
    /// ```
    #[inline]
    pub const fn reason(&self) -> &'a [u8] {
        self.reason
    }

    /// [`CopyFail::reason`] as UTF-8.
    ///
    /// ```
    /// # let c = qcp_codec::frontend::CopyFail::decode(b"oops\0")?;
    /// assert_eq!(c.reason_str()?, "oops");
    /// # Ok::<(), qcp_codec::DecodeError>(())
    /// ```
    #[inline]
    pub fn reason_str(&self) -> Result<&'a str, DecodeError> {
        utf8(self.reason, "CopyFail.reason")
    }

    /// Appends this message to `out`.
    ///
    /// ```
    /// let c = qcp_codec::frontend::CopyFail::decode(b"oops\0")?;
    /// let mut out = Vec::new();
    /// c.encode(&mut out)?;
    /// assert_eq!(out, b"f\0\0\0\x09oops\0");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        crate::encode::copy_fail(out, self.reason)
    }
}

impl fmt::Debug for CopyFail<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CopyFail")
            .field("reason", &Bytes(self.reason))
            .finish()
    }
}

/// FunctionCall (`F`, legacy fast-path): `Int32 function OID`, `Int16 n` + `Int16[n]`
/// argument formats, `Int16 n` + n values (`Int32 len`, -1 = NULL, bytes), `Int16` result
/// format.
///
/// ```
/// use qcp_codec::frontend::FunctionCall;
/// let f = FunctionCall::decode(b"\0\0\x03\xe8\0\0\0\x01\0\0\0\x01x\0\0")?;
/// assert_eq!(f.oid(), 1000);
/// assert_eq!(f.args().collect::<Vec<_>>(), [Some(&b"x"[..])]);
/// # Ok::<(), qcp_codec::DecodeError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct FunctionCall<'a> {
    oid: u32,
    /// INVARIANT: exactly `arg_format_count` `Int16`s.
    arg_formats: &'a [u8],
    arg_format_count: u16,
    /// INVARIANT: exactly `arg_count` validated values.
    args: &'a [u8],
    arg_count: u16,
    result_format: i16,
}

impl<'a> FunctionCall<'a> {
    /// Decodes a FunctionCall body.
    ///
    /// ```
    /// use qcp_codec::{frontend::FunctionCall, DecodeError};
    /// assert_eq!(FunctionCall::decode(b"\0\0\x03\xe8\0\x09"), Err(DecodeError::BadCount("FunctionCall.arg_formats")));
    /// ```
    pub fn decode(body: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body);
        let oid = r.u32("FunctionCall.oid")?;
        let arg_format_count = r.count(2, "FunctionCall.arg_formats")?;
        let arg_formats = r.bytes(
            usize::from(arg_format_count).saturating_mul(2),
            "FunctionCall.arg_formats",
        )?;
        let arg_count = r.count(4, "FunctionCall.args")?;
        let args = read_values(&mut r, arg_count, "FunctionCall.args")?;
        let result_format = r.i16("FunctionCall.result_format")?;
        r.finish("FunctionCall")?;
        Ok(Self {
            oid,
            arg_formats,
            arg_format_count,
            args,
            arg_count,
            result_format,
        })
    }

    /// OID of the function to call.
    ///
    /// ```
    /// # let f = qcp_codec::frontend::FunctionCall::decode(b"\0\0\0\x07\0\0\0\0\0\x01")?;
    /// assert_eq!(f.oid(), 7);
    /// # Ok::<(), qcp_codec::DecodeError>(())
    /// ```
    #[inline]
    pub const fn oid(&self) -> u32 {
        self.oid
    }

    /// Argument format codes.
    ///
    /// ```
    /// # let f = qcp_codec::frontend::FunctionCall::decode(b"\0\0\0\x07\0\x01\0\x01\0\0\0\x01")?;
    /// assert_eq!(f.arg_formats().collect::<Vec<_>>(), [1]);
    /// # Ok::<(), qcp_codec::DecodeError>(())
    /// ```
    #[inline]
    pub const fn arg_formats(&self) -> FormatCodes<'a> {
        FormatCodes::new(self.arg_formats, self.arg_format_count)
    }

    /// Argument values; `None` is SQL NULL.
    ///
    /// ```
    /// # let f = qcp_codec::frontend::FunctionCall::decode(b"\0\0\0\x07\0\0\0\x01\xff\xff\xff\xff\0\0")?;
    /// assert_eq!(f.args().collect::<Vec<_>>(), [None]);
    /// # Ok::<(), qcp_codec::DecodeError>(())
    /// ```
    #[inline]
    pub const fn args(&self) -> Values<'a> {
        Values::new(self.args, self.arg_count)
    }

    /// Result format code: 0 text, 1 binary.
    ///
    /// ```
    /// # let f = qcp_codec::frontend::FunctionCall::decode(b"\0\0\0\x07\0\0\0\0\0\x01")?;
    /// assert_eq!(f.result_format(), 1);
    /// # Ok::<(), qcp_codec::DecodeError>(())
    /// ```
    #[inline]
    pub const fn result_format(&self) -> i16 {
        self.result_format
    }

    /// Appends this message to `out`, byte for byte as decoded.
    ///
    /// ```
    /// let body = b"\0\0\0\x07\0\0\0\0\0\x01";
    /// let f = qcp_codec::frontend::FunctionCall::decode(body)?;
    /// let mut out = Vec::new();
    /// f.encode(&mut out)?;
    /// assert_eq!(&out[5..], body);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        writer::message(
            out,
            Some(Tag::FUNCTION_CALL),
            "FunctionCall",
            |w: &mut Writer<'_>| {
                w.u32(self.oid);
                w.count(
                    usize::from(self.arg_format_count),
                    "FunctionCall.arg_formats",
                )?;
                w.bytes(self.arg_formats);
                w.count(usize::from(self.arg_count), "FunctionCall.args")?;
                w.bytes(self.args);
                w.i16(self.result_format);
                Ok(())
            },
        )
    }
}

impl fmt::Debug for FunctionCall<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FunctionCall")
            .field("oid", &self.oid)
            .field("arg_formats", &self.arg_formats())
            .field("args", &self.args())
            .field("result_format", &self.result_format)
            .finish()
    }
}
