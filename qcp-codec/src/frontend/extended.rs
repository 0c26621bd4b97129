//! Extended-query-protocol messages: Parse, Bind, Describe, Execute, Close.
//!
//! Layouts from PostgreSQL "Message Formats"; counts are 16-bit and read unsigned, as the
//! server reads them.

use core::fmt;

use crate::encode::writer::{self, Writer};
use crate::error::{DecodeError, EncodeError};
use crate::fields::{read_values, FormatCodes, Oids, Values};
use crate::reader::Reader;
use crate::tag::Tag;
use crate::text::{utf8, Bytes};

use super::Target;

/// Parse (`P`): `String name`, `String query`, `Int16 n`, `Int32[n]` parameter type OIDs.
///
/// ```
/// use qcp_codec::frontend::Parse;
///
/// let p = Parse::decode(b"s1\0SELECT $1\0\0\x01\0\0\0\x17")?;
/// assert_eq!(p.name(), b"s1");
/// assert_eq!(p.query_str()?, "SELECT $1");
/// assert_eq!(p.param_types().collect::<Vec<_>>(), [23]);
/// # Ok::<(), qcp_codec::DecodeError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Parse<'a> {
    name: &'a [u8],
    query: &'a [u8],
    /// INVARIANT: exactly `param_count` big-endian OIDs.
    param_types: &'a [u8],
    param_count: u16,
}

impl<'a> Parse<'a> {
    /// Decodes a Parse body (the bytes after the 5-byte header).
    ///
    /// ```
    /// use qcp_codec::{frontend::Parse, DecodeError};
    /// assert_eq!(Parse::decode(b"\0q\0\0\x05"), Err(DecodeError::BadCount("Parse.param_types")));
    /// ```
    pub fn decode(body: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body);
        let name = r.cstr("Parse.name")?;
        let query = r.cstr("Parse.query")?;
        let param_count = r.count(4, "Parse.param_types")?;
        let param_types = r.bytes(
            usize::from(param_count).saturating_mul(4),
            "Parse.param_types",
        )?;
        r.finish("Parse")?;
        Ok(Self {
            name,
            query,
            param_types,
            param_count,
        })
    }

    /// Prepared statement name; empty for the unnamed statement.
    ///
    /// ```
    /// # let p = qcp_codec::frontend::Parse::decode(b"s1\0SELECT 1\0\0\0")?;
    /// assert_eq!(p.name(), b"s1");
    /// # Ok::<(), qcp_codec::DecodeError>(())
    /// ```
    #[inline]
    pub const fn name(&self) -> &'a [u8] {
        self.name
    }

    /// [`Parse::name`] as UTF-8.
    ///
    /// ```
    /// # let p = qcp_codec::frontend::Parse::decode(b"s1\0SELECT 1\0\0\0")?;
    /// assert_eq!(p.name_str()?, "s1");
    /// # Ok::<(), qcp_codec::DecodeError>(())
    /// ```
    #[inline]
    pub fn name_str(&self) -> Result<&'a str, DecodeError> {
        utf8(self.name, "Parse.name")
    }

    /// The query text (one statement).
    ///
    /// ```
    /// # let p = qcp_codec::frontend::Parse::decode(b"s1\0SELECT 1\0\0\0")?;
    /// assert_eq!(p.query(), b"SELECT 1");
    /// # Ok::<(), qcp_codec::DecodeError>(())
    /// ```
    #[inline]
    pub const fn query(&self) -> &'a [u8] {
        self.query
    }

    /// [`Parse::query`] as UTF-8.
    ///
    /// ```
    /// # let p = qcp_codec::frontend::Parse::decode(b"s1\0SELECT 1\0\0\0")?;
    /// assert_eq!(p.query_str()?, "SELECT 1");
    /// # Ok::<(), qcp_codec::DecodeError>(())
    /// ```
    #[inline]
    pub fn query_str(&self) -> Result<&'a str, DecodeError> {
        utf8(self.query, "Parse.query")
    }

    /// Declared parameter type OIDs (0 = let the server infer).
    ///
    /// ```
    /// # let p = qcp_codec::frontend::Parse::decode(b"\0SELECT $1\0\0\x01\0\0\0\0")?;
    /// assert_eq!(p.param_types().collect::<Vec<_>>(), [0]);
    /// # Ok::<(), qcp_codec::DecodeError>(())
    /// ```
    #[inline]
    pub const fn param_types(&self) -> Oids<'a> {
        Oids::new(self.param_types, self.param_count)
    }

    /// Appends this message to `out`, byte for byte as decoded.
    ///
    /// ```
    /// let body = b"s1\0SELECT 1\0\0\0";
    /// let p = qcp_codec::frontend::Parse::decode(body)?;
    /// let mut out = Vec::new();
    /// p.encode(&mut out)?;
    /// assert_eq!(&out[5..], body);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        writer::message(out, Some(Tag::PARSE), "Parse", |w: &mut Writer<'_>| {
            w.cstr(self.name, "Parse.name")?;
            w.cstr(self.query, "Parse.query")?;
            w.count(usize::from(self.param_count), "Parse.param_types")?;
            w.bytes(self.param_types);
            Ok(())
        })
    }
}

impl fmt::Debug for Parse<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Parse")
            .field("name", &Bytes(self.name))
            .field("query", &Bytes(self.query))
            .field("param_types", &self.param_types())
            .finish()
    }
}

/// Bind (`B`): `String portal`, `String statement`, `Int16 n` + `Int16[n]` parameter
/// formats, `Int16 n` + n values (`Int32 len`, -1 = NULL, then bytes), `Int16 n` +
/// `Int16[n]` result formats.
///
/// The format-code counts are not checked against the parameter count (0, 1 or n is the
/// server's rule); the server reports a mismatch itself.
///
/// ```
/// use qcp_codec::frontend::Bind;
///
/// let b = Bind::decode(b"\0s1\0\0\0\0\x02\0\0\0\x0242\xff\xff\xff\xff\0\x01\0\x01")?;
/// assert_eq!(b.statement(), b"s1");
/// assert_eq!(b.params().collect::<Vec<_>>(), [Some(&b"42"[..]), None]);
/// assert_eq!(b.result_formats().collect::<Vec<_>>(), [1]);
/// # Ok::<(), qcp_codec::DecodeError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Bind<'a> {
    portal: &'a [u8],
    statement: &'a [u8],
    /// INVARIANT: exactly `param_format_count` `Int16`s.
    param_formats: &'a [u8],
    param_format_count: u16,
    /// INVARIANT: exactly `param_count` validated values.
    params: &'a [u8],
    param_count: u16,
    /// INVARIANT: exactly `result_format_count` `Int16`s.
    result_formats: &'a [u8],
    result_format_count: u16,
}

impl<'a> Bind<'a> {
    /// Decodes a Bind body.
    ///
    /// ```
    /// use qcp_codec::{frontend::Bind, DecodeError};
    /// // One parameter whose length says 9 bytes, but only 1 follows.
    /// let err = Bind::decode(b"\0\0\0\0\0\x01\0\0\0\x09x").unwrap_err();
    /// assert_eq!(err, DecodeError::Truncated("Bind.params"));
    /// ```
    pub fn decode(body: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body);
        let portal = r.cstr("Bind.portal")?;
        let statement = r.cstr("Bind.statement")?;
        let param_format_count = r.count(2, "Bind.param_formats")?;
        let param_formats = r.bytes(
            usize::from(param_format_count).saturating_mul(2),
            "Bind.param_formats",
        )?;
        let param_count = r.count(4, "Bind.params")?;
        let params = read_values(&mut r, param_count, "Bind.params")?;
        let result_format_count = r.count(2, "Bind.result_formats")?;
        let result_formats = r.bytes(
            usize::from(result_format_count).saturating_mul(2),
            "Bind.result_formats",
        )?;
        r.finish("Bind")?;
        Ok(Self {
            portal,
            statement,
            param_formats,
            param_format_count,
            params,
            param_count,
            result_formats,
            result_format_count,
        })
    }

    /// Decodes only the two names at the start of a Bind body, `(portal, statement)`: `body`
    /// may stop anywhere after them, and nothing after them is read or checked.
    ///
    /// For a relay that renames the statement without holding the whole message (a Bind's
    /// parameter values may be far larger than its read buffer); [`Bind::decode`] needs the
    /// whole body.
    ///
    /// ```
    /// use qcp_codec::{frontend::Bind, DecodeError};
    ///
    /// // The parameter values have not arrived yet.
    /// assert_eq!(Bind::decode_names(b"p1\0s1\0\0\0\0\x01\0\0")?, (&b"p1"[..], &b"s1"[..]));
    /// assert_eq!(Bind::decode_names(b"p1\0s1"), Err(DecodeError::MissingNul("Bind.statement")));
    /// assert_eq!(Bind::decode_names(b"p1"), Err(DecodeError::MissingNul("Bind.portal")));
    /// # Ok::<(), qcp_codec::DecodeError>(())
    /// ```
    #[inline]
    pub fn decode_names(body: &'a [u8]) -> Result<(&'a [u8], &'a [u8]), DecodeError> {
        let mut r = Reader::new(body);
        let portal = r.cstr("Bind.portal")?;
        let statement = r.cstr("Bind.statement")?;
        Ok((portal, statement))
    }

    /// Destination portal name; empty for the unnamed portal.
    ///
    /// ```
    /// # let b = qcp_codec::frontend::Bind::decode(b"p1\0s1\0\0\0\0\0\0\0")?;
    /// assert_eq!(b.portal(), b"p1");
    /// # Ok::<(), qcp_codec::DecodeError>(())
    /// ```
    #[inline]
    pub const fn portal(&self) -> &'a [u8] {
        self.portal
    }

    /// [`Bind::portal`] as UTF-8.
    ///
    /// ```
    /// # let b = qcp_codec::frontend::Bind::decode(b"p1\0s1\0\0\0\0\0\0\0")?;
    /// assert_eq!(b.portal_str()?, "p1");
    /// # Ok::<(), qcp_codec::DecodeError>(())
    /// ```
    #[inline]
    pub fn portal_str(&self) -> Result<&'a str, DecodeError> {
        utf8(self.portal, "Bind.portal")
    }

    /// Source prepared statement name; empty for the unnamed statement.
    ///
    /// ```
    /// # let b = qcp_codec::frontend::Bind::decode(b"p1\0s1\0\0\0\0\0\0\0")?;
    /// assert_eq!(b.statement(), b"s1");
    /// # Ok::<(), qcp_codec::DecodeError>(())
    /// ```
    #[inline]
    pub const fn statement(&self) -> &'a [u8] {
        self.statement
    }

    /// [`Bind::statement`] as UTF-8.
    ///
    /// ```
    /// # let b = qcp_codec::frontend::Bind::decode(b"p1\0s1\0\0\0\0\0\0\0")?;
    /// assert_eq!(b.statement_str()?, "s1");
    /// # Ok::<(), qcp_codec::DecodeError>(())
    /// ```
    #[inline]
    pub fn statement_str(&self) -> Result<&'a str, DecodeError> {
        utf8(self.statement, "Bind.statement")
    }

    /// Parameter format codes.
    ///
    /// ```
    /// # let b = qcp_codec::frontend::Bind::decode(b"\0\0\0\x01\0\x01\0\0\0\0")?;
    /// assert_eq!(b.param_formats().collect::<Vec<_>>(), [1]);
    /// # Ok::<(), qcp_codec::DecodeError>(())
    /// ```
    #[inline]
    pub const fn param_formats(&self) -> FormatCodes<'a> {
        FormatCodes::new(self.param_formats, self.param_format_count)
    }

    /// Parameter values; `None` is SQL NULL.
    ///
    /// ```
    /// # let b = qcp_codec::frontend::Bind::decode(b"\0\0\0\0\0\x01\xff\xff\xff\xff\0\0")?;
    /// assert_eq!(b.params().collect::<Vec<_>>(), [None]);
    /// assert_eq!(b.params().len(), 1);
    /// # Ok::<(), qcp_codec::DecodeError>(())
    /// ```
    #[inline]
    pub const fn params(&self) -> Values<'a> {
        Values::new(self.params, self.param_count)
    }

    /// Result column format codes.
    ///
    /// ```
    /// # let b = qcp_codec::frontend::Bind::decode(b"\0\0\0\0\0\0\0\x02\0\0\0\x01")?;
    /// assert_eq!(b.result_formats().collect::<Vec<_>>(), [0, 1]);
    /// # Ok::<(), qcp_codec::DecodeError>(())
    /// ```
    #[inline]
    pub const fn result_formats(&self) -> FormatCodes<'a> {
        FormatCodes::new(self.result_formats, self.result_format_count)
    }

    /// Appends this message to `out`, byte for byte as decoded.
    ///
    /// ```
    /// let body = b"p1\0s1\0\0\0\0\0\0\0";
    /// let b = qcp_codec::frontend::Bind::decode(body)?;
    /// let mut out = Vec::new();
    /// b.encode(&mut out)?;
    /// assert_eq!(&out[5..], body);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        writer::message(out, Some(Tag::BIND), "Bind", |w: &mut Writer<'_>| {
            w.cstr(self.portal, "Bind.portal")?;
            w.cstr(self.statement, "Bind.statement")?;
            w.count(usize::from(self.param_format_count), "Bind.param_formats")?;
            w.bytes(self.param_formats);
            w.count(usize::from(self.param_count), "Bind.params")?;
            w.bytes(self.params);
            w.count(usize::from(self.result_format_count), "Bind.result_formats")?;
            w.bytes(self.result_formats);
            Ok(())
        })
    }
}

impl fmt::Debug for Bind<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bind")
            .field("portal", &Bytes(self.portal))
            .field("statement", &Bytes(self.statement))
            .field("param_formats", &self.param_formats())
            .field("params", &self.params())
            .field("result_formats", &self.result_formats())
            .finish()
    }
}

/// Defines Describe and Close, which share the layout `Byte1 'S'|'P'`, `String name`.
macro_rules! target_message {
    ($(#[$doc:meta])* $name:ident, $tag:expr, $kind_site:literal, $name_site:literal, $body:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq)]
        pub struct $name<'a> {
            kind: Target,
            name: &'a [u8],
        }

        impl<'a> $name<'a> {
            #[doc = concat!("Decodes a ", stringify!($name), " body.")]
            ///
            /// ```
            #[doc = concat!("use qcp_codec::{frontend::", stringify!($name), ", DecodeError};")]
            #[doc = concat!("assert_eq!(", stringify!($name), "::decode(b\"X\\0\"), Err(DecodeError::InvalidValue(\"", $kind_site, "\")));")]
            /// ```
            pub fn decode(body: &'a [u8]) -> Result<Self, DecodeError> {
                let mut r = Reader::new(body);
                let kind = Target::from_byte(r.u8($kind_site)?).ok_or(DecodeError::InvalidValue($kind_site))?;
                let name = r.cstr($name_site)?;
                r.finish(stringify!($name))?;
                Ok(Self { kind, name })
            }

            /// Whether a statement or a portal is meant.
            ///
            /// ```
            #[doc = concat!("# let m = qcp_codec::frontend::", stringify!($name), "::decode(", $body, ")?;")]
            /// assert_eq!(m.kind(), qcp_codec::frontend::Target::Statement);
            /// # Ok::<(), qcp_codec::DecodeError>(())
            /// ```
            #[inline]
            pub const fn kind(&self) -> Target {
                self.kind
            }

            /// The statement or portal name; empty for the unnamed one.
            ///
            /// ```
            #[doc = concat!("# let m = qcp_codec::frontend::", stringify!($name), "::decode(", $body, ")?;")]
            /// assert_eq!(m.name(), b"s1");
            /// # Ok::<(), qcp_codec::DecodeError>(())
            /// ```
            #[inline]
            pub const fn name(&self) -> &'a [u8] {
                self.name
            }

            #[doc = concat!("[`", stringify!($name), "::name`] as UTF-8.")]
            ///
            /// ```
            #[doc = concat!("# let m = qcp_codec::frontend::", stringify!($name), "::decode(", $body, ")?;")]
            /// assert_eq!(m.name_str()?, "s1");
            /// # Ok::<(), qcp_codec::DecodeError>(())
            /// ```
            #[inline]
            pub fn name_str(&self) -> Result<&'a str, DecodeError> {
                utf8(self.name, $name_site)
            }

            /// Appends this message to `out`, byte for byte as decoded.
            ///
            /// ```
            #[doc = concat!("let m = qcp_codec::frontend::", stringify!($name), "::decode(", $body, ")?;")]
            /// let mut out = Vec::new();
            /// m.encode(&mut out)?;
            #[doc = concat!("assert_eq!(&out[5..], ", $body, ");")]
            /// # Ok::<(), Box<dyn std::error::Error>>(())
            /// ```
            pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
                writer::message(out, Some($tag), stringify!($name), |w: &mut Writer<'_>| {
                    w.u8(self.kind.to_byte());
                    w.cstr(self.name, $name_site)
                })
            }
        }

        impl fmt::Debug for $name<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($name))
                    .field("kind", &self.kind)
                    .field("name", &Bytes(self.name))
                    .finish()
            }
        }
    };
}

target_message!(
    /// Describe (`D`): `Byte1 'S'|'P'`, `String name`. Asks for a statement's parameter and
    /// row descriptions, or a portal's row description.
    ///
    /// ```
    /// use qcp_codec::frontend::{Describe, Target};
    /// let d = Describe::decode(b"Pp1\0")?;
    /// assert_eq!((d.kind(), d.name()), (Target::Portal, &b"p1"[..]));
    /// # Ok::<(), qcp_codec::DecodeError>(())
    /// ```
    Describe,
    Tag::DESCRIBE,
    "Describe.kind",
    "Describe.name",
    "b\"Ss1\\0\""
);

target_message!(
    /// Close (`C`): `Byte1 'S'|'P'`, `String name`. Closes a prepared statement or portal.
    ///
    /// ```
    /// use qcp_codec::frontend::{Close, Target};
    /// let c = Close::decode(b"Ss1\0")?;
    /// assert_eq!((c.kind(), c.name()), (Target::Statement, &b"s1"[..]));
    /// # Ok::<(), qcp_codec::DecodeError>(())
    /// ```
    Close,
    Tag::CLOSE,
    "Close.kind",
    "Close.name",
    "b\"Ss1\\0\""
);

/// Execute (`E`): `String portal`, `Int32 max_rows` (0 = no limit).
///
/// ```
/// use qcp_codec::frontend::Execute;
/// let e = Execute::decode(b"\0\0\0\0\x0a")?;
/// assert_eq!((e.portal(), e.max_rows()), (&b""[..], 10));
/// # Ok::<(), qcp_codec::DecodeError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Execute<'a> {
    portal: &'a [u8],
    max_rows: i32,
}

impl<'a> Execute<'a> {
    /// Decodes an Execute body.
    ///
    /// ```
    /// use qcp_codec::{frontend::Execute, DecodeError};
    /// assert_eq!(Execute::decode(b"\0\0\0"), Err(DecodeError::Truncated("Execute.max_rows")));
    /// ```
    pub fn decode(body: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body);
        let portal = r.cstr("Execute.portal")?;
        let max_rows = r.i32("Execute.max_rows")?;
        r.finish("Execute")?;
        Ok(Self { portal, max_rows })
    }

    /// Portal name; empty for the unnamed portal.
    ///
    /// ```
    /// # let e = qcp_codec::frontend::Execute::decode(b"p1\0\0\0\0\0")?;
    /// assert_eq!(e.portal(), b"p1");
    /// # Ok::<(), qcp_codec::DecodeError>(())
    /// ```
    #[inline]
    pub const fn portal(&self) -> &'a [u8] {
        self.portal
    }

    /// [`Execute::portal`] as UTF-8.
    ///
    /// ```
    /// # let e = qcp_codec::frontend::Execute::decode(b"p1\0\0\0\0\0")?;
    /// assert_eq!(e.portal_str()?, "p1");
    /// # Ok::<(), qcp_codec::DecodeError>(())
    /// ```
    #[inline]
    pub fn portal_str(&self) -> Result<&'a str, DecodeError> {
        utf8(self.portal, "Execute.portal")
    }

    /// Maximum number of rows to return; 0 (or negative) means no limit.
    ///
    /// ```
    /// # let e = qcp_codec::frontend::Execute::decode(b"p1\0\0\0\0\0")?;
    /// assert_eq!(e.max_rows(), 0);
    /// # Ok::<(), qcp_codec::DecodeError>(())
    /// ```
    #[inline]
    pub const fn max_rows(&self) -> i32 {
        self.max_rows
    }

    /// Appends this message to `out`.
    ///
    /// ```
    /// let e = qcp_codec::frontend::Execute::decode(b"\0\0\0\0\0")?;
    /// let mut out = Vec::new();
    /// e.encode(&mut out)?;
    /// assert_eq!(out, b"E\0\0\0\x09\0\0\0\0\0");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        crate::encode::execute(out, self.portal, self.max_rows)
    }
}

impl fmt::Debug for Execute<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Execute")
            .field("portal", &Bytes(self.portal))
            .field("max_rows", &self.max_rows)
            .finish()
    }
}
