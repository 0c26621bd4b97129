//! Lazy, borrowing iterators over the repeated parts of messages.
//!
//! Every iterator here walks bytes that the message decoder has already validated in full, so
//! iteration cannot fail and yields plain items (no `Result`). The one exception,
//! [`ErrorFields::leading`], walks bytes nothing validated and stops at the first field that
//! does not read. Nothing is copied or allocated: each item borrows from the input buffer. All
//! iterators are `Clone` (restart by cloning) and fused; the counted ones are
//! `ExactSizeIterator`.

use core::fmt;
use core::iter::FusedIterator;

use crate::error::DecodeError;
use crate::reader::Reader;
use crate::text::{utf8, Bytes, OptBytes};

/// `(name, value)` pairs of a StartupMessage, without their NUL terminators.
///
/// ```
/// use qcp_codec::{encode, Limits, ProtocolVersion, StartupPacket};
///
/// let mut buf = Vec::new();
/// encode::startup(&mut buf, ProtocolVersion::V3_0, &[("user", "alice"), ("database", "db")])?;
/// let Some((StartupPacket::Startup(s), _)) = StartupPacket::decode(&buf, &Limits::default())? else {
///     panic!("not a StartupMessage")
/// };
/// let names: Vec<&[u8]> = s.params().map(|(name, _)| name).collect();
/// assert_eq!(names, [&b"user"[..], b"database"]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct StartupParams<'a> {
    r: Reader<'a>,
}

impl<'a> StartupParams<'a> {
    /// INVARIANT: `pairs` is a validated sequence of `name\0value\0` with non-empty names.
    #[inline]
    pub(crate) const fn new(pairs: &'a [u8]) -> Self {
        Self {
            r: Reader::new(pairs),
        }
    }
}

impl<'a> Iterator for StartupParams<'a> {
    type Item = (&'a [u8], &'a [u8]);

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        let name = self.r.cstr("StartupMessage.name").ok()?;
        let value = self.r.cstr("StartupMessage.value").ok()?;
        Some((name, value))
    }
}

impl FusedIterator for StartupParams<'_> {}

impl fmt::Debug for StartupParams<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.clone().map(|(k, v)| (Bytes(k), Bytes(v))))
            .finish()
    }
}

/// A run of NUL-terminated strings (SASL mechanism names, unrecognised protocol options),
/// yielded without their terminators.
///
/// ```
/// use qcp_codec::backend::NegotiateProtocolVersion;
///
/// let v = NegotiateProtocolVersion::decode(b"\0\x03\0\0\0\0\0\x02_pq_.a\0_pq_.b\0")?;
/// let opts: Vec<&[u8]> = v.options().collect();
/// assert_eq!(opts, [&b"_pq_.a"[..], b"_pq_.b"]);
/// # Ok::<(), qcp_codec::DecodeError>(())
/// ```
#[derive(Clone)]
pub struct CStrings<'a> {
    r: Reader<'a>,
}

impl<'a> CStrings<'a> {
    /// INVARIANT: `strings` is a validated sequence of NUL-terminated strings.
    #[inline]
    pub(crate) const fn new(strings: &'a [u8]) -> Self {
        Self {
            r: Reader::new(strings),
        }
    }
}

impl<'a> Iterator for CStrings<'a> {
    type Item = &'a [u8];

    #[inline]
    fn next(&mut self) -> Option<&'a [u8]> {
        self.r.cstr("strings").ok()
    }

    #[inline]
    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.r.remaining()))
    }
}

impl FusedIterator for CStrings<'_> {}

impl fmt::Debug for CStrings<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.clone().map(Bytes)).finish()
    }
}

/// Defines a counted iterator over fixed-size big-endian integers.
macro_rules! int_iter {
    ($(#[$doc:meta])* $name:ident, $ty:ty, $read:ident) => {
        $(#[$doc])*
        #[derive(Clone)]
        pub struct $name<'a> {
            r: Reader<'a>,
            left: u16,
        }

        impl<'a> $name<'a> {
            /// INVARIANT: `raw` holds exactly `count` values.
            #[inline]
            pub(crate) const fn new(raw: &'a [u8], count: u16) -> Self {
                Self { r: Reader::new(raw), left: count }
            }
        }

        impl Iterator for $name<'_> {
            type Item = $ty;

            #[inline]
            fn next(&mut self) -> Option<$ty> {
                if self.left == 0 {
                    return None;
                }
                self.left = self.left.saturating_sub(1);
                self.r.$read(stringify!($name)).ok()
            }

            #[inline]
            fn size_hint(&self) -> (usize, Option<usize>) {
                (usize::from(self.left), Some(usize::from(self.left)))
            }
        }

        impl ExactSizeIterator for $name<'_> {}
        impl FusedIterator for $name<'_> {}

        impl fmt::Debug for $name<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_list().entries(self.clone()).finish()
            }
        }
    };
}

int_iter!(
    /// Type OIDs (`Int32[n]`) of Parse and ParameterDescription; 0 means "unspecified".
    ///
    /// ```
    /// use qcp_codec::frontend::Parse;
    ///
    /// let p = Parse::decode(b"\0SELECT $1, $2\0\0\x02\0\0\0\x17\0\0\0\0")?;
    /// assert_eq!(p.param_types().collect::<Vec<u32>>(), [23, 0]);
    /// assert_eq!(p.param_types().len(), 2);
    /// # Ok::<(), qcp_codec::DecodeError>(())
    /// ```
    Oids,
    u32,
    u32
);

int_iter!(
    /// Format codes (`Int16[n]`): 0 text, 1 binary. An empty list means "all text", a single
    /// code applies to every column or parameter.
    ///
    /// ```
    /// use qcp_codec::backend::CopyResponse;
    ///
    /// let c = CopyResponse::decode(b"\x01\0\x02\0\x01\0\x01")?;
    /// assert_eq!(c.column_formats().collect::<Vec<i16>>(), [1, 1]);
    /// # Ok::<(), qcp_codec::DecodeError>(())
    /// ```
    FormatCodes,
    i16,
    i16
);

/// Length-prefixed values (`Int32 len` then `len` bytes, -1 = SQL NULL) of Bind parameters,
/// FunctionCall arguments and DataRow columns.
///
/// ```
/// use qcp_codec::backend::DataRow;
///
/// let row = DataRow::decode(b"\0\x02\0\0\0\x0242\xff\xff\xff\xff")?;
/// let values: Vec<Option<&[u8]>> = row.values().collect();
/// assert_eq!(values, [Some(&b"42"[..]), None]);
/// # Ok::<(), qcp_codec::DecodeError>(())
/// ```
#[derive(Clone)]
pub struct Values<'a> {
    r: Reader<'a>,
    left: u16,
}

impl<'a> Values<'a> {
    /// INVARIANT: `raw` holds exactly `count` validated values.
    #[inline]
    pub(crate) const fn new(raw: &'a [u8], count: u16) -> Self {
        Self {
            r: Reader::new(raw),
            left: count,
        }
    }
}

impl<'a> Iterator for Values<'a> {
    type Item = Option<&'a [u8]>;

    #[inline]
    fn next(&mut self) -> Option<Option<&'a [u8]>> {
        if self.left == 0 {
            return None;
        }
        self.left = self.left.saturating_sub(1);
        self.r.checked_value()
    }

    #[inline]
    fn size_hint(&self) -> (usize, Option<usize>) {
        (usize::from(self.left), Some(usize::from(self.left)))
    }
}

impl ExactSizeIterator for Values<'_> {}
impl FusedIterator for Values<'_> {}

impl fmt::Debug for Values<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.clone().map(OptBytes)).finish()
    }
}

/// Reads `count` values, checking each, and returns the bytes they span.
#[inline]
pub(crate) fn read_values<'a>(
    r: &mut Reader<'a>,
    count: u16,
    site: &'static str,
) -> Result<&'a [u8], DecodeError> {
    r.values(count, site)
}

/// One field of an ErrorResponse or NoticeResponse: a one-byte code and its text.
///
/// Codes PostgreSQL defines are the associated constants; unknown codes are kept, as the
/// protocol requires clients to ignore (not reject) them.
///
/// ```
/// use qcp_codec::fields::ErrorField;
///
/// let f = ErrorField { code: ErrorField::SQLSTATE, value: b"08P01" };
/// assert_eq!(f.value_str()?, "08P01");
/// # Ok::<(), qcp_codec::DecodeError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ErrorField<'a> {
    /// The field type code, e.g. `b'C'` for the SQLSTATE.
    pub code: u8,
    /// The field value, without its NUL terminator.
    pub value: &'a [u8],
}

impl<'a> ErrorField<'a> {
    /// `S`: severity, possibly localised (`ERROR`, `FATAL`, `NOTICE`, ...).
    pub const SEVERITY: u8 = b'S';
    /// `V`: severity, never localised (PostgreSQL 9.6+).
    pub const SEVERITY_NONLOCALIZED: u8 = b'V';
    /// `C`: SQLSTATE code.
    pub const SQLSTATE: u8 = b'C';
    /// `M`: primary message.
    pub const MESSAGE: u8 = b'M';
    /// `D`: detail.
    pub const DETAIL: u8 = b'D';
    /// `H`: hint.
    pub const HINT: u8 = b'H';
    /// `P`: cursor position in the query string.
    pub const POSITION: u8 = b'P';
    /// `p`: position in an internally generated query.
    pub const INTERNAL_POSITION: u8 = b'p';
    /// `q`: the internally generated query.
    pub const INTERNAL_QUERY: u8 = b'q';
    /// `W`: context (call stack).
    pub const WHERE: u8 = b'W';
    /// `s`: schema name.
    pub const SCHEMA: u8 = b's';
    /// `t`: table name.
    pub const TABLE: u8 = b't';
    /// `c`: column name.
    pub const COLUMN: u8 = b'c';
    /// `d`: data type name.
    pub const DATA_TYPE: u8 = b'd';
    /// `n`: constraint name.
    pub const CONSTRAINT: u8 = b'n';
    /// `F`: source file.
    pub const FILE: u8 = b'F';
    /// `L`: source line.
    pub const LINE: u8 = b'L';
    /// `R`: source routine.
    pub const ROUTINE: u8 = b'R';

    /// The value as UTF-8 text.
    ///
    /// ```
    /// use qcp_codec::fields::ErrorField;
    /// let f = ErrorField { code: ErrorField::MESSAGE, value: b"\xff" };
    /// assert!(f.value_str().is_err());
    /// ```
    #[inline]
    pub fn value_str(&self) -> Result<&'a str, DecodeError> {
        utf8(self.value, "ErrorResponse.value")
    }
}

impl fmt::Debug for ErrorField<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ErrorField")
            .field("code", &char::from(self.code))
            .field("value", &Bytes(self.value))
            .finish()
    }
}

/// Reads one error field; `Ok(None)` at the terminating zero byte.
#[inline]
pub(crate) fn read_error_field<'a>(
    r: &mut Reader<'a>,
) -> Result<Option<ErrorField<'a>>, DecodeError> {
    match r.u8("ErrorResponse.code")? {
        0 => Ok(None),
        code => Ok(Some(ErrorField {
            code,
            value: r.cstr("ErrorResponse.value")?,
        })),
    }
}

/// The fields of an ErrorResponse or NoticeResponse, in wire order.
///
/// ```
/// use qcp_codec::backend::ErrorResponse;
///
/// let e = ErrorResponse::decode(b"SERROR\0C42601\0Msyntax error\0\0")?;
/// let codes: Vec<u8> = e.fields().map(|f| f.code).collect();
/// assert_eq!(codes, b"SCM");
/// # Ok::<(), qcp_codec::DecodeError>(())
/// ```
#[derive(Clone)]
pub struct ErrorFields<'a> {
    r: Reader<'a>,
}

impl<'a> ErrorFields<'a> {
    /// `raw` is a validated run of fields, without the final zero byte (an
    /// [`ErrorResponse`](crate::backend::ErrorResponse)'s). Iteration stops at the first field
    /// that does not read (see [`ErrorFields::leading`]), so it is safe over any bytes.
    #[inline]
    pub(crate) const fn new(raw: &'a [u8]) -> Self {
        Self {
            r: Reader::new(raw),
        }
    }

    /// The complete fields at the start of an ErrorResponse or NoticeResponse body that was
    /// not decoded, of which only the beginning may be at hand: iteration stops at the
    /// terminating zero byte, or before the first field that is cut short. Over a whole, valid
    /// body it yields what [`ErrorResponse::fields`](crate::backend::ErrorResponse::fields)
    /// yields; nothing after the last field is checked.
    ///
    /// For a relay that looks for one field (the SQLSTATE, say) in an error that may be
    /// larger than its read buffer: [`ErrorResponse::decode`](crate::backend::ErrorResponse::decode)
    /// needs the whole body.
    ///
    /// ```
    /// use qcp_codec::fields::{ErrorField, ErrorFields};
    ///
    /// // Only the start of the body has arrived: the message field is cut short.
    /// let head = b"SERROR\0C42601\0Msyntax err";
    /// let code = ErrorFields::leading(head).find(|f| f.code == ErrorField::SQLSTATE);
    /// assert_eq!(code.map(|f| f.value), Some(&b"42601"[..]));
    /// assert_eq!(ErrorFields::leading(head).count(), 2);
    /// ```
    #[inline]
    pub const fn leading(body: &'a [u8]) -> Self {
        Self::new(body)
    }
}

impl<'a> Iterator for ErrorFields<'a> {
    type Item = ErrorField<'a>;

    #[inline]
    fn next(&mut self) -> Option<ErrorField<'a>> {
        read_error_field(&mut self.r).ok().flatten()
    }
}

impl FusedIterator for ErrorFields<'_> {}

impl fmt::Debug for ErrorFields<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.clone()).finish()
    }
}

/// One column of a RowDescription.
///
/// ```
/// use qcp_codec::fields::FieldDescription;
///
/// let f = FieldDescription { name: b"id", table_oid: 0, column_id: 0, type_oid: 23,
///                            type_size: 4, type_modifier: -1, format: 0 };
/// assert_eq!(f.name_str()?, "id");
/// # Ok::<(), qcp_codec::DecodeError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct FieldDescription<'a> {
    /// Column name, without its NUL terminator.
    pub name: &'a [u8],
    /// OID of the table the column comes from, or 0.
    pub table_oid: u32,
    /// Attribute number of the column in that table, or 0.
    pub column_id: i16,
    /// OID of the column's data type.
    pub type_oid: u32,
    /// `pg_type.typlen`: negative for variable-width types.
    pub type_size: i16,
    /// `pg_attribute.atttypmod`, type-specific; -1 when not used.
    pub type_modifier: i32,
    /// Format code: 0 text, 1 binary (0 in a Describe reply, where it is not yet known).
    pub format: i16,
}

impl<'a> FieldDescription<'a> {
    /// Smallest encoded size of one field: an empty name (1) plus 18 fixed bytes.
    pub(crate) const MIN_LEN: usize = 19;

    /// The column name as UTF-8 text.
    ///
    /// ```
    /// use qcp_codec::fields::FieldDescription;
    /// let f = FieldDescription { name: b"\xe9", table_oid: 0, column_id: 0, type_oid: 25,
    ///                            type_size: -1, type_modifier: -1, format: 0 };
    /// assert!(f.name_str().is_err());
    /// ```
    #[inline]
    pub fn name_str(&self) -> Result<&'a str, DecodeError> {
        utf8(self.name, "RowDescription.name")
    }
}

impl fmt::Debug for FieldDescription<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FieldDescription")
            .field("name", &Bytes(self.name))
            .field("table_oid", &self.table_oid)
            .field("column_id", &self.column_id)
            .field("type_oid", &self.type_oid)
            .field("type_size", &self.type_size)
            .field("type_modifier", &self.type_modifier)
            .field("format", &self.format)
            .finish()
    }
}

/// Reads one RowDescription field.
#[inline]
pub(crate) fn read_field_description<'a>(
    r: &mut Reader<'a>,
) -> Result<FieldDescription<'a>, DecodeError> {
    const SITE: &str = "RowDescription.field";
    Ok(FieldDescription {
        name: r.cstr("RowDescription.name")?,
        table_oid: r.u32(SITE)?,
        column_id: r.i16(SITE)?,
        type_oid: r.u32(SITE)?,
        type_size: r.i16(SITE)?,
        type_modifier: r.i32(SITE)?,
        format: r.i16(SITE)?,
    })
}

/// The columns of a RowDescription.
///
/// ```
/// use qcp_codec::{backend::RowDescription, encode, fields::FieldDescription, BackendMessage, Limits};
///
/// let col = FieldDescription { name: b"n", table_oid: 0, column_id: 0, type_oid: 23,
///                              type_size: 4, type_modifier: -1, format: 0 };
/// let mut buf = Vec::new();
/// encode::row_description(&mut buf, &[col, col])?;
/// let Some((BackendMessage::RowDescription(rd), _)) = BackendMessage::decode(&buf, &Limits::default())? else {
///     panic!()
/// };
/// assert_eq!(rd.fields().collect::<Vec<_>>(), [col, col]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct RowFields<'a> {
    r: Reader<'a>,
    left: u16,
}

impl<'a> RowFields<'a> {
    /// INVARIANT: `raw` holds exactly `count` validated fields.
    #[inline]
    pub(crate) const fn new(raw: &'a [u8], count: u16) -> Self {
        Self {
            r: Reader::new(raw),
            left: count,
        }
    }
}

impl<'a> Iterator for RowFields<'a> {
    type Item = FieldDescription<'a>;

    #[inline]
    fn next(&mut self) -> Option<FieldDescription<'a>> {
        if self.left == 0 {
            return None;
        }
        self.left = self.left.saturating_sub(1);
        read_field_description(&mut self.r).ok()
    }

    #[inline]
    fn size_hint(&self) -> (usize, Option<usize>) {
        (usize::from(self.left), Some(usize::from(self.left)))
    }
}

impl ExactSizeIterator for RowFields<'_> {}
impl FusedIterator for RowFields<'_> {}

impl fmt::Debug for RowFields<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.clone()).finish()
    }
}
