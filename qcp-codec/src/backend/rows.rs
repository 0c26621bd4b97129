//! Backend messages describing and carrying query results: RowDescription, DataRow,
//! CommandComplete, ParameterDescription and the three Copy*Response messages.

use core::fmt;

use crate::encode::writer::{self, Writer};
use crate::error::{DecodeError, EncodeError};
use crate::fields::{
    read_field_description, FieldDescription, FormatCodes, Oids, RowFields, Values,
};
use crate::reader::Reader;
use crate::tag::Tag;
use crate::text::{utf8, Bytes};

/// RowDescription (`T`): `Int16 n`, then per column `String name`, `Int32 table OID`,
/// `Int16 column number`, `Int32 type OID`, `Int16 type size`, `Int32 type modifier`,
/// `Int16 format`.
///
/// ```
/// use qcp_codec::backend::RowDescription;
/// let rd = RowDescription::decode(b"\0\x01id\0\0\0\0\0\0\0\0\0\0\x17\0\x04\xff\xff\xff\xff\0\0")?;
/// assert_eq!(rd.len(), 1);
/// let col = rd.fields().next().unwrap();
/// assert_eq!((col.name, col.type_oid, col.type_size), (&b"id"[..], 23, 4));
/// # Ok::<(), qcp_codec::DecodeError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct RowDescription<'a> {
    /// INVARIANT: exactly `count` validated fields.
    raw: &'a [u8],
    count: u16,
}

impl<'a> RowDescription<'a> {
    /// Decodes a RowDescription body.
    ///
    /// ```
    /// use qcp_codec::{backend::RowDescription, DecodeError};
    /// assert_eq!(RowDescription::decode(b"\0\x05x\0"), Err(DecodeError::BadCount("RowDescription.fields")));
    /// ```
    pub fn decode(body: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body);
        let count = r.count(FieldDescription::MIN_LEN, "RowDescription.fields")?;
        let raw = r.peek_rest();
        for _ in 0..count {
            read_field_description(&mut r)?;
        }
        r.finish("RowDescription")?;
        Ok(Self { raw, count })
    }

    /// Number of columns.
    ///
    /// ```
    /// # let rd = qcp_codec::backend::RowDescription::decode(b"\0\0")?;
    /// assert_eq!(rd.len(), 0);
    /// # Ok::<(), qcp_codec::DecodeError>(())
    /// ```
    #[inline]
    pub const fn len(&self) -> usize {
        self.count as usize
    }

    /// `true` for a row with no columns.
    ///
    /// ```
    /// # let rd = qcp_codec::backend::RowDescription::decode(b"\0\0")?;
    /// assert!(rd.is_empty());
    /// # Ok::<(), qcp_codec::DecodeError>(())
    /// ```
    #[inline]
    pub const fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The column descriptions, in order.
    ///
    /// ```
    /// # let rd = qcp_codec::backend::RowDescription::decode(b"\0\x01n\0\0\0\0\0\0\0\0\0\0\x17\0\x04\xff\xff\xff\xff\0\x01")?;
    /// assert_eq!(rd.fields().map(|f| f.format).collect::<Vec<_>>(), [1]);
    /// # Ok::<(), qcp_codec::DecodeError>(())
    /// ```
    #[inline]
    pub const fn fields(&self) -> RowFields<'a> {
        RowFields::new(self.raw, self.count)
    }

    /// Appends this message to `out`, byte for byte as decoded.
    ///
    /// ```
    /// let rd = qcp_codec::backend::RowDescription::decode(b"\0\0")?;
    /// let mut out = Vec::new();
    /// rd.encode(&mut out)?;
    /// assert_eq!(out, b"T\0\0\0\x06\0\0");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        counted(
            out,
            Tag::ROW_DESCRIPTION,
            "RowDescription",
            self.count,
            self.raw,
        )
    }
}

impl fmt::Debug for RowDescription<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("RowDescription")
            .field(&self.fields())
            .finish()
    }
}

/// Appends `tag`, length, a 16-bit count and already-encoded elements.
fn counted(
    out: &mut Vec<u8>,
    tag: Tag,
    site: &'static str,
    count: u16,
    raw: &[u8],
) -> Result<(), EncodeError> {
    writer::message(out, Some(tag), site, |w: &mut Writer<'_>| {
        w.count(usize::from(count), site)?;
        w.bytes(raw);
        Ok(())
    })
}

/// DataRow (`D`): `Int16 n`, then per column `Int32 len` (-1 = NULL) and `len` bytes.
///
/// Decoding walks the column lengths once to validate them; [`DataRow::values`] walks them
/// again lazily. Nothing is copied.
///
/// ```
/// use qcp_codec::backend::DataRow;
/// let row = DataRow::decode(b"\0\x02\0\0\0\x011\xff\xff\xff\xff")?;
/// assert_eq!(row.len(), 2);
/// assert_eq!(row.values().collect::<Vec<_>>(), [Some(&b"1"[..]), None]);
/// # Ok::<(), qcp_codec::DecodeError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct DataRow<'a> {
    /// INVARIANT: exactly `count` validated values.
    raw: &'a [u8],
    count: u16,
}

impl<'a> DataRow<'a> {
    /// Decodes a DataRow body.
    ///
    /// ```
    /// use qcp_codec::{backend::DataRow, DecodeError};
    /// assert_eq!(DataRow::decode(b"\0\x01\xff\xff\xff\xfe"), Err(DecodeError::InvalidValue("DataRow.values")));
    /// ```
    #[inline]
    pub fn decode(body: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body);
        let count = r.count(4, "DataRow.values")?;
        // The values run to the end of the body, so they are all that is left once checked.
        let raw = r.peek_rest();
        r.skip_values(count, "DataRow.values")?;
        r.finish("DataRow")?;
        Ok(Self { raw, count })
    }

    /// Number of columns.
    ///
    /// ```
    /// # let row = qcp_codec::backend::DataRow::decode(b"\0\x01\xff\xff\xff\xff")?;
    /// assert_eq!(row.len(), 1);
    /// # Ok::<(), qcp_codec::DecodeError>(())
    /// ```
    #[inline]
    pub const fn len(&self) -> usize {
        self.count as usize
    }

    /// `true` for a row with no columns.
    ///
    /// ```
    /// # let row = qcp_codec::backend::DataRow::decode(b"\0\0")?;
    /// assert!(row.is_empty());
    /// # Ok::<(), qcp_codec::DecodeError>(())
    /// ```
    #[inline]
    pub const fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The column values; `None` is SQL NULL.
    ///
    /// ```
    /// # let row = qcp_codec::backend::DataRow::decode(b"\0\x01\0\0\0\x02ok")?;
    /// assert_eq!(row.values().next(), Some(Some(&b"ok"[..])));
    /// # Ok::<(), qcp_codec::DecodeError>(())
    /// ```
    #[inline]
    pub const fn values(&self) -> Values<'a> {
        Values::new(self.raw, self.count)
    }

    /// Appends this message to `out`, byte for byte as decoded.
    ///
    /// ```
    /// let row = qcp_codec::backend::DataRow::decode(b"\0\x01\0\0\0\x02ok")?;
    /// let mut out = Vec::new();
    /// row.encode(&mut out)?;
    /// assert_eq!(out, b"D\0\0\0\x0c\0\x01\0\0\0\x02ok");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        counted(out, Tag::DATA_ROW, "DataRow", self.count, self.raw)
    }
}

impl fmt::Debug for DataRow<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("DataRow").field(&self.values()).finish()
    }
}

/// CommandComplete (`C`): `String tag`, e.g. `SELECT 5`, `INSERT 0 1`, `UPDATE 3`, `BEGIN`.
///
/// ```
/// use qcp_codec::backend::CommandComplete;
/// let c = CommandComplete::decode(b"INSERT 0 3\0")?;
/// assert_eq!(c.tag(), b"INSERT 0 3");
/// assert_eq!(c.rows(), Some(3));
/// # Ok::<(), qcp_codec::DecodeError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct CommandComplete<'a> {
    tag: &'a [u8],
}

impl<'a> CommandComplete<'a> {
    /// Decodes a CommandComplete body.
    ///
    /// ```
    /// use qcp_codec::{backend::CommandComplete, DecodeError};
    /// assert_eq!(CommandComplete::decode(b"BEGIN"), Err(DecodeError::MissingNul("CommandComplete.tag")));
    /// ```
    pub fn decode(body: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body);
        let tag = r.cstr("CommandComplete.tag")?;
        r.finish("CommandComplete")?;
        Ok(Self { tag })
    }

    /// The command tag.
    ///
    /// ```
    /// # let c = qcp_codec::backend::CommandComplete::decode(b"COMMIT\0")?;
    /// assert_eq!(c.tag(), b"COMMIT");
    /// # Ok::<(), qcp_codec::DecodeError>(())
    /// ```
    #[inline]
    pub const fn tag(&self) -> &'a [u8] {
        self.tag
    }

    /// [`CommandComplete::tag`] as UTF-8.
    ///
    /// ```
    /// # let c = qcp_codec::backend::CommandComplete::decode(b"COMMIT\0")?;
    /// assert_eq!(c.tag_str()?, "COMMIT");
    /// # Ok::<(), qcp_codec::DecodeError>(())
    /// ```
    #[inline]
    pub fn tag_str(&self) -> Result<&'a str, DecodeError> {
        utf8(self.tag, "CommandComplete.tag")
    }

    /// The row count at the end of the tag (`SELECT 5` gives 5), if the last word is a number.
    ///
    /// ```
    /// # use qcp_codec::backend::CommandComplete;
    /// assert_eq!(CommandComplete::decode(b"UPDATE 12\0")?.rows(), Some(12));
    /// assert_eq!(CommandComplete::decode(b"BEGIN\0")?.rows(), None);
    /// # Ok::<(), qcp_codec::DecodeError>(())
    /// ```
    pub fn rows(&self) -> Option<u64> {
        let last = self.tag.rsplit(|&b| b == b' ').next()?;
        if last.is_empty() || last.len() == self.tag.len() {
            return None;
        }
        last.iter().try_fold(0u64, |n, &d| {
            if d.is_ascii_digit() {
                n.checked_mul(10)?
                    .checked_add(u64::from(d.wrapping_sub(b'0')))
            } else {
                None
            }
        })
    }

    /// Appends this message to `out`.
    ///
    /// ```
    /// let c = qcp_codec::backend::CommandComplete::decode(b"BEGIN\0")?;
    /// let mut out = Vec::new();
    /// c.encode(&mut out)?;
    /// assert_eq!(out, b"C\0\0\0\x0aBEGIN\0");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        crate::encode::command_complete(out, self.tag)
    }
}

impl fmt::Debug for CommandComplete<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("CommandComplete")
            .field(&Bytes(self.tag))
            .finish()
    }
}

/// ParameterDescription (`t`): `Int16 n`, `Int32[n]` parameter type OIDs of a prepared
/// statement.
///
/// ```
/// use qcp_codec::backend::ParameterDescription;
/// let p = ParameterDescription::decode(b"\0\x01\0\0\0\x19")?;
/// assert_eq!(p.types().collect::<Vec<_>>(), [25]);
/// # Ok::<(), qcp_codec::DecodeError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ParameterDescription<'a> {
    /// INVARIANT: exactly `count` OIDs.
    raw: &'a [u8],
    count: u16,
}

impl<'a> ParameterDescription<'a> {
    /// Decodes a ParameterDescription body.
    ///
    /// ```
    /// use qcp_codec::{backend::ParameterDescription, DecodeError};
    /// assert_eq!(ParameterDescription::decode(b"\0\x01\0\0"), Err(DecodeError::BadCount("ParameterDescription.types")));
    /// ```
    pub fn decode(body: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body);
        let count = r.count(4, "ParameterDescription.types")?;
        let raw = r.bytes(
            usize::from(count).saturating_mul(4),
            "ParameterDescription.types",
        )?;
        r.finish("ParameterDescription")?;
        Ok(Self { raw, count })
    }

    /// Number of parameters.
    ///
    /// ```
    /// # let p = qcp_codec::backend::ParameterDescription::decode(b"\0\0")?;
    /// assert_eq!(p.len(), 0);
    /// # Ok::<(), qcp_codec::DecodeError>(())
    /// ```
    #[inline]
    pub const fn len(&self) -> usize {
        self.count as usize
    }

    /// `true` when the statement takes no parameters.
    ///
    /// ```
    /// # let p = qcp_codec::backend::ParameterDescription::decode(b"\0\0")?;
    /// assert!(p.is_empty());
    /// # Ok::<(), qcp_codec::DecodeError>(())
    /// ```
    #[inline]
    pub const fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Parameter type OIDs.
    ///
    /// ```
    /// # let p = qcp_codec::backend::ParameterDescription::decode(b"\0\x01\0\0\0\x17")?;
    /// assert_eq!(p.types().next(), Some(23));
    /// # Ok::<(), qcp_codec::DecodeError>(())
    /// ```
    #[inline]
    pub const fn types(&self) -> Oids<'a> {
        Oids::new(self.raw, self.count)
    }

    /// Appends this message to `out`.
    ///
    /// ```
    /// let p = qcp_codec::backend::ParameterDescription::decode(b"\0\x01\0\0\0\x17")?;
    /// let mut out = Vec::new();
    /// p.encode(&mut out)?;
    /// assert_eq!(out, b"t\0\0\0\x0a\0\x01\0\0\0\x17");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        counted(
            out,
            Tag::PARAMETER_DESCRIPTION,
            "ParameterDescription",
            self.count,
            self.raw,
        )
    }
}

impl fmt::Debug for ParameterDescription<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ParameterDescription")
            .field(&self.types())
            .finish()
    }
}

/// The body of CopyInResponse (`G`), CopyOutResponse (`H`) and CopyBothResponse (`W`):
/// `Int8` overall format (0 text, 1 binary), `Int16 n`, `Int16[n]` column formats.
///
/// ```
/// use qcp_codec::backend::CopyResponse;
/// let c = CopyResponse::decode(b"\0\0\x01\0\0")?;
/// assert_eq!(c.format(), 0);
/// assert_eq!(c.column_formats().collect::<Vec<_>>(), [0]);
/// # Ok::<(), qcp_codec::DecodeError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct CopyResponse<'a> {
    format: i8,
    /// INVARIANT: exactly `count` `Int16`s.
    raw: &'a [u8],
    count: u16,
}

impl<'a> CopyResponse<'a> {
    /// Decodes a Copy*Response body.
    ///
    /// ```
    /// use qcp_codec::{backend::CopyResponse, DecodeError};
    /// assert_eq!(CopyResponse::decode(b"\0\0\x02\0\0"), Err(DecodeError::BadCount("CopyResponse.column_formats")));
    /// ```
    pub fn decode(body: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body);
        let format = r.i8("CopyResponse.format")?;
        let count = r.count(2, "CopyResponse.column_formats")?;
        let raw = r.bytes(
            usize::from(count).saturating_mul(2),
            "CopyResponse.column_formats",
        )?;
        r.finish("CopyResponse")?;
        Ok(Self { format, raw, count })
    }

    /// Overall format: 0 text, 1 binary.
    ///
    /// ```
    /// # let c = qcp_codec::backend::CopyResponse::decode(b"\x01\0\0")?;
    /// assert_eq!(c.format(), 1);
    /// # Ok::<(), qcp_codec::DecodeError>(())
    /// ```
    #[inline]
    pub const fn format(&self) -> i8 {
        self.format
    }

    /// Per-column format codes.
    ///
    /// ```
    /// # let c = qcp_codec::backend::CopyResponse::decode(b"\x01\0\x01\0\x01")?;
    /// assert_eq!(c.column_formats().len(), 1);
    /// # Ok::<(), qcp_codec::DecodeError>(())
    /// ```
    #[inline]
    pub const fn column_formats(&self) -> FormatCodes<'a> {
        FormatCodes::new(self.raw, self.count)
    }

    /// Appends this body with `tag` ([`Tag::COPY_IN_RESPONSE`], [`Tag::COPY_OUT_RESPONSE`] or
    /// [`Tag::COPY_BOTH_RESPONSE`]), byte for byte as decoded.
    ///
    /// ```
    /// use qcp_codec::Tag;
    /// let c = qcp_codec::backend::CopyResponse::decode(b"\0\0\0")?;
    /// let mut out = Vec::new();
    /// c.encode(Tag::COPY_IN_RESPONSE, &mut out)?;
    /// assert_eq!(out, b"G\0\0\0\x07\0\0\0");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn encode(&self, tag: Tag, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        writer::message(out, Some(tag), "CopyResponse", |w: &mut Writer<'_>| {
            w.i8(self.format);
            w.count(usize::from(self.count), "CopyResponse.column_formats")?;
            w.bytes(self.raw);
            Ok(())
        })
    }
}

impl fmt::Debug for CopyResponse<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CopyResponse")
            .field("format", &self.format)
            .field("column_formats", &self.column_formats())
            .finish()
    }
}
