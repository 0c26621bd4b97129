//! Encoders for frontend (client to server) messages.

use super::writer::{self, Writer};
use crate::error::EncodeError;
use crate::frontend::Target;
use crate::tag::Tag;

/// Appends a Query (`Q`).
///
/// ```
/// let mut out = Vec::new();
/// qcp_codec::encode::query(&mut out, "SELECT 1")?;
/// assert_eq!(out, b"Q\0\0\0\x0dSELECT 1\0");
/// # Ok::<(), qcp_codec::EncodeError>(())
/// ```
pub fn query(out: &mut Vec<u8>, sql: impl AsRef<[u8]>) -> Result<(), EncodeError> {
    writer::message(out, Some(Tag::QUERY), "Query", |w: &mut Writer<'_>| {
        w.cstr(sql.as_ref(), "Query.sql")
    })
}

/// Appends a Parse (`P`): statement `name` (empty = unnamed), `sql`, parameter type OIDs
/// (0 = unspecified; at most 65 535).
///
/// ```
/// let mut out = Vec::new();
/// qcp_codec::encode::parse(&mut out, "s1", "SELECT $1", &[23])?;
/// assert_eq!(out, b"P\0\0\0\x17s1\0SELECT $1\0\0\x01\0\0\0\x17");
/// # Ok::<(), qcp_codec::EncodeError>(())
/// ```
pub fn parse(
    out: &mut Vec<u8>,
    name: impl AsRef<[u8]>,
    sql: impl AsRef<[u8]>,
    param_types: &[u32],
) -> Result<(), EncodeError> {
    writer::message(out, Some(Tag::PARSE), "Parse", |w: &mut Writer<'_>| {
        w.cstr(name.as_ref(), "Parse.name")?;
        w.cstr(sql.as_ref(), "Parse.query")?;
        w.oids(param_types, "Parse.param_types")
    })
}

/// Appends a Bind (`B`): destination `portal`, source `statement`, parameter format codes,
/// parameter values (`None` = NULL), result format codes.
///
/// ```
/// let mut out = Vec::new();
/// qcp_codec::encode::bind(&mut out, "", "s1", &[], &[Some(b"42"), None], &[1])?;
/// assert_eq!(out, b"B\0\0\0\x1a\0s1\0\0\0\0\x02\0\0\0\x0242\xff\xff\xff\xff\0\x01\0\x01");
/// # Ok::<(), qcp_codec::EncodeError>(())
/// ```
pub fn bind(
    out: &mut Vec<u8>,
    portal: impl AsRef<[u8]>,
    statement: impl AsRef<[u8]>,
    param_formats: &[i16],
    params: &[Option<&[u8]>],
    result_formats: &[i16],
) -> Result<(), EncodeError> {
    writer::message(out, Some(Tag::BIND), "Bind", |w: &mut Writer<'_>| {
        w.cstr(portal.as_ref(), "Bind.portal")?;
        w.cstr(statement.as_ref(), "Bind.statement")?;
        w.i16s(param_formats, "Bind.param_formats")?;
        w.values(params, "Bind.params")?;
        w.i16s(result_formats, "Bind.result_formats")
    })
}

/// Appends a Describe (`D`) of a statement or portal.
///
/// ```
/// use qcp_codec::{encode, frontend::Target};
/// let mut out = Vec::new();
/// encode::describe(&mut out, Target::Statement, "s1")?;
/// assert_eq!(out, b"D\0\0\0\x08Ss1\0");
/// # Ok::<(), qcp_codec::EncodeError>(())
/// ```
pub fn describe(
    out: &mut Vec<u8>,
    target: Target,
    name: impl AsRef<[u8]>,
) -> Result<(), EncodeError> {
    writer::message(
        out,
        Some(Tag::DESCRIBE),
        "Describe",
        |w: &mut Writer<'_>| {
            w.u8(target.to_byte());
            w.cstr(name.as_ref(), "Describe.name")
        },
    )
}

/// Appends an Execute (`E`); `max_rows` 0 means no limit.
///
/// ```
/// let mut out = Vec::new();
/// qcp_codec::encode::execute(&mut out, "", 0)?;
/// assert_eq!(out, b"E\0\0\0\x09\0\0\0\0\0");
/// # Ok::<(), qcp_codec::EncodeError>(())
/// ```
pub fn execute(
    out: &mut Vec<u8>,
    portal: impl AsRef<[u8]>,
    max_rows: i32,
) -> Result<(), EncodeError> {
    writer::message(out, Some(Tag::EXECUTE), "Execute", |w: &mut Writer<'_>| {
        w.cstr(portal.as_ref(), "Execute.portal")?;
        w.i32(max_rows);
        Ok(())
    })
}

/// Appends a Close (`C`) of a statement or portal.
///
/// ```
/// use qcp_codec::{encode, frontend::Target};
/// let mut out = Vec::new();
/// encode::close(&mut out, Target::Portal, "")?;
/// assert_eq!(out, b"C\0\0\0\x06P\0");
/// # Ok::<(), qcp_codec::EncodeError>(())
/// ```
pub fn close(out: &mut Vec<u8>, target: Target, name: impl AsRef<[u8]>) -> Result<(), EncodeError> {
    writer::message(out, Some(Tag::CLOSE), "Close", |w: &mut Writer<'_>| {
        w.u8(target.to_byte());
        w.cstr(name.as_ref(), "Close.name")
    })
}

/// Appends a Sync (`S`).
///
/// ```
/// let mut out = Vec::new();
/// qcp_codec::encode::sync(&mut out);
/// assert_eq!(out, b"S\0\0\0\x04");
/// ```
pub fn sync(out: &mut Vec<u8>) {
    writer::fixed(out, Tag::SYNC, &[]);
}

/// Appends a Flush (`H`).
///
/// ```
/// let mut out = Vec::new();
/// qcp_codec::encode::flush(&mut out);
/// assert_eq!(out, b"H\0\0\0\x04");
/// ```
pub fn flush(out: &mut Vec<u8>) {
    writer::fixed(out, Tag::FLUSH, &[]);
}

/// Appends a Terminate (`X`).
///
/// ```
/// let mut out = Vec::new();
/// qcp_codec::encode::terminate(&mut out);
/// assert_eq!(out, b"X\0\0\0\x04");
/// ```
pub fn terminate(out: &mut Vec<u8>) {
    writer::fixed(out, Tag::TERMINATE, &[]);
}

/// Appends a CopyData (`d`, either direction).
///
/// ```
/// let mut out = Vec::new();
/// qcp_codec::encode::copy_data(&mut out, b"1\n")?;
/// assert_eq!(out, b"d\0\0\0\x061\n");
/// # Ok::<(), qcp_codec::EncodeError>(())
/// ```
pub fn copy_data(out: &mut Vec<u8>, data: &[u8]) -> Result<(), EncodeError> {
    writer::message(
        out,
        Some(Tag::COPY_DATA),
        "CopyData",
        |w: &mut Writer<'_>| {
            w.bytes(data);
            Ok(())
        },
    )
}

/// Appends a CopyDone (`c`, either direction).
///
/// ```
/// let mut out = Vec::new();
/// qcp_codec::encode::copy_done(&mut out);
/// assert_eq!(out, b"c\0\0\0\x04");
/// ```
pub fn copy_done(out: &mut Vec<u8>) {
    writer::fixed(out, Tag::COPY_DONE, &[]);
}

/// Appends a CopyFail (`f`).
///
/// ```
/// let mut out = Vec::new();
/// qcp_codec::encode::copy_fail(&mut out, "no")?;
/// assert_eq!(out, b"f\0\0\0\x07no\0");
/// # Ok::<(), qcp_codec::EncodeError>(())
/// ```
pub fn copy_fail(out: &mut Vec<u8>, reason: impl AsRef<[u8]>) -> Result<(), EncodeError> {
    writer::message(
        out,
        Some(Tag::COPY_FAIL),
        "CopyFail",
        |w: &mut Writer<'_>| w.cstr(reason.as_ref(), "CopyFail.reason"),
    )
}

/// Appends a FunctionCall (`F`): function OID, argument formats, arguments (`None` = NULL),
/// result format.
///
/// ```
/// let mut out = Vec::new();
/// qcp_codec::encode::function_call(&mut out, 1000, &[1], &[None], 1)?;
/// assert_eq!(out, b"F\0\0\0\x14\0\0\x03\xe8\0\x01\0\x01\0\x01\xff\xff\xff\xff\0\x01");
/// # Ok::<(), qcp_codec::EncodeError>(())
/// ```
pub fn function_call(
    out: &mut Vec<u8>,
    oid: u32,
    arg_formats: &[i16],
    args: &[Option<&[u8]>],
    result_format: i16,
) -> Result<(), EncodeError> {
    writer::message(
        out,
        Some(Tag::FUNCTION_CALL),
        "FunctionCall",
        |w: &mut Writer<'_>| {
            w.u32(oid);
            w.i16s(arg_formats, "FunctionCall.arg_formats")?;
            w.values(args, "FunctionCall.args")?;
            w.i16(result_format);
            Ok(())
        },
    )
}
