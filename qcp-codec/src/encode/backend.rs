//! Encoders for backend (server to client) messages.

use super::writer::{self, Writer};
use crate::backend::TransactionStatus;
use crate::error::EncodeError;
use crate::fields::FieldDescription;
use crate::startup::{MAX_SECRET_LEN, MIN_SECRET_LEN};
use crate::tag::Tag;

/// Appends a ParameterStatus (`S`).
///
/// ```
/// let mut out = Vec::new();
/// qcp_codec::encode::parameter_status(&mut out, "TimeZone", "UTC")?;
/// assert_eq!(out, b"S\0\0\0\x11TimeZone\0UTC\0");
/// # Ok::<(), qcp_codec::EncodeError>(())
/// ```
pub fn parameter_status(
    out: &mut Vec<u8>,
    name: impl AsRef<[u8]>,
    value: impl AsRef<[u8]>,
) -> Result<(), EncodeError> {
    writer::message(
        out,
        Some(Tag::PARAMETER_STATUS),
        "ParameterStatus",
        |w: &mut Writer<'_>| {
            w.cstr(name.as_ref(), "ParameterStatus.name")?;
            w.cstr(value.as_ref(), "ParameterStatus.value")
        },
    )
}

/// Appends a BackendKeyData (`K`). `secret` must be 4 bytes for a protocol 3.0 client and may
/// be up to 256 bytes for 3.2; outside 4..=256 this fails with [`EncodeError::InvalidValue`].
///
/// ```
/// let mut out = Vec::new();
/// qcp_codec::encode::backend_key_data(&mut out, 7, b"abcd")?;
/// assert_eq!(out, b"K\0\0\0\x0c\0\0\0\x07abcd");
/// # Ok::<(), qcp_codec::EncodeError>(())
/// ```
pub fn backend_key_data(out: &mut Vec<u8>, pid: i32, secret: &[u8]) -> Result<(), EncodeError> {
    if !(MIN_SECRET_LEN..=MAX_SECRET_LEN).contains(&secret.len()) {
        return Err(EncodeError::InvalidValue("BackendKeyData.secret"));
    }
    writer::message(
        out,
        Some(Tag::BACKEND_KEY_DATA),
        "BackendKeyData",
        |w: &mut Writer<'_>| {
            w.i32(pid);
            w.bytes(secret);
            Ok(())
        },
    )
}

/// Appends a ReadyForQuery (`Z`).
///
/// ```
/// use qcp_codec::{encode, TransactionStatus};
/// let mut out = Vec::new();
/// encode::ready_for_query(&mut out, TransactionStatus::InTransaction);
/// assert_eq!(out, b"Z\0\0\0\x05T");
/// ```
pub fn ready_for_query(out: &mut Vec<u8>, status: TransactionStatus) {
    writer::fixed(out, Tag::READY_FOR_QUERY, &[status.to_byte()]);
}

/// Appends a NegotiateProtocolVersion (`v`) announcing protocol `3.minor` and listing the
/// unrecognised `options`.
///
/// `minor` is the minor version only (0 or 2); the wire field is written as the full
/// `3 << 16 | minor` number, as PostgreSQL does and libpq expects. A `minor` above 65 535 is
/// [`EncodeError::InvalidValue`] (catching a full version number passed by mistake).
///
/// ```
/// let mut out = Vec::new();
/// qcp_codec::encode::negotiate_protocol_version(&mut out, 0, &[b"_pq_.x"])?;
/// assert_eq!(out, b"v\0\0\0\x13\0\x03\0\0\0\0\0\x01_pq_.x\0");
/// # Ok::<(), qcp_codec::EncodeError>(())
/// ```
pub fn negotiate_protocol_version(
    out: &mut Vec<u8>,
    minor: u32,
    options: &[&[u8]],
) -> Result<(), EncodeError> {
    const SITE: &str = "NegotiateProtocolVersion";
    let minor = u16::try_from(minor)
        .map_err(|_| EncodeError::InvalidValue("NegotiateProtocolVersion.version"))?;
    let version = crate::startup::ProtocolVersion { major: 3, minor };
    writer::message(
        out,
        Some(Tag::NEGOTIATE_PROTOCOL_VERSION),
        SITE,
        |w: &mut Writer<'_>| {
            w.u32(version.to_u32());
            w.i32(i32::try_from(options.len()).map_err(|_| EncodeError::TooLarge(SITE))?);
            for option in options {
                w.cstr(option, "NegotiateProtocolVersion.options")?;
            }
            Ok(())
        },
    )
}

/// Appends an error or notice body with `tag`.
fn error_fields(out: &mut Vec<u8>, tag: Tag, fields: &[(u8, &[u8])]) -> Result<(), EncodeError> {
    writer::message(out, Some(tag), "ErrorResponse", |w: &mut Writer<'_>| {
        for (code, value) in fields {
            if *code == 0 {
                return Err(EncodeError::InvalidValue("ErrorResponse.code"));
            }
            w.u8(*code);
            w.cstr(value, "ErrorResponse.value")?;
        }
        w.u8(0);
        Ok(())
    })
}

/// Appends an ErrorResponse (`E`) with `(code, value)` fields in the given order (see
/// [`ErrorField`](crate::fields::ErrorField) for the codes). A zero code is
/// [`EncodeError::InvalidValue`] (it would end the list early).
///
/// ```
/// let mut out = Vec::new();
/// qcp_codec::encode::error_response(&mut out, &[(b'S', b"ERROR"), (b'C', b"08P01"), (b'M', b"bad")])?;
/// assert_eq!(out, b"E\0\0\0\x18SERROR\0C08P01\0Mbad\0\0");
/// # Ok::<(), qcp_codec::EncodeError>(())
/// ```
pub fn error_response(out: &mut Vec<u8>, fields: &[(u8, &[u8])]) -> Result<(), EncodeError> {
    error_fields(out, Tag::ERROR_RESPONSE, fields)
}

/// Appends a NoticeResponse (`N`); same rules as [`error_response`].
///
/// ```
/// let mut out = Vec::new();
/// qcp_codec::encode::notice_response(&mut out, &[(b'S', b"NOTICE"), (b'M', b"queued")])?;
/// assert_eq!(out[0], b'N');
/// # Ok::<(), qcp_codec::EncodeError>(())
/// ```
pub fn notice_response(out: &mut Vec<u8>, fields: &[(u8, &[u8])]) -> Result<(), EncodeError> {
    error_fields(out, Tag::NOTICE_RESPONSE, fields)
}

/// Appends a CommandComplete (`C`).
///
/// ```
/// let mut out = Vec::new();
/// qcp_codec::encode::command_complete(&mut out, "SELECT 1")?;
/// assert_eq!(out, b"C\0\0\0\x0dSELECT 1\0");
/// # Ok::<(), qcp_codec::EncodeError>(())
/// ```
pub fn command_complete(out: &mut Vec<u8>, tag: impl AsRef<[u8]>) -> Result<(), EncodeError> {
    writer::message(
        out,
        Some(Tag::COMMAND_COMPLETE),
        "CommandComplete",
        |w: &mut Writer<'_>| w.cstr(tag.as_ref(), "CommandComplete.tag"),
    )
}

/// Appends an EmptyQueryResponse (`I`).
///
/// ```
/// let mut out = Vec::new();
/// qcp_codec::encode::empty_query_response(&mut out);
/// assert_eq!(out, b"I\0\0\0\x04");
/// ```
pub fn empty_query_response(out: &mut Vec<u8>) {
    writer::fixed(out, Tag::EMPTY_QUERY_RESPONSE, &[]);
}

/// Appends a ParseComplete (`1`).
///
/// ```
/// let mut out = Vec::new();
/// qcp_codec::encode::parse_complete(&mut out);
/// assert_eq!(out, b"1\0\0\0\x04");
/// ```
pub fn parse_complete(out: &mut Vec<u8>) {
    writer::fixed(out, Tag::PARSE_COMPLETE, &[]);
}

/// Appends a BindComplete (`2`).
///
/// ```
/// let mut out = Vec::new();
/// qcp_codec::encode::bind_complete(&mut out);
/// assert_eq!(out, b"2\0\0\0\x04");
/// ```
pub fn bind_complete(out: &mut Vec<u8>) {
    writer::fixed(out, Tag::BIND_COMPLETE, &[]);
}

/// Appends a CloseComplete (`3`).
///
/// ```
/// let mut out = Vec::new();
/// qcp_codec::encode::close_complete(&mut out);
/// assert_eq!(out, b"3\0\0\0\x04");
/// ```
pub fn close_complete(out: &mut Vec<u8>) {
    writer::fixed(out, Tag::CLOSE_COMPLETE, &[]);
}

/// Appends a NoData (`n`).
///
/// ```
/// let mut out = Vec::new();
/// qcp_codec::encode::no_data(&mut out);
/// assert_eq!(out, b"n\0\0\0\x04");
/// ```
pub fn no_data(out: &mut Vec<u8>) {
    writer::fixed(out, Tag::NO_DATA, &[]);
}

/// Appends a PortalSuspended (`s`).
///
/// ```
/// let mut out = Vec::new();
/// qcp_codec::encode::portal_suspended(&mut out);
/// assert_eq!(out, b"s\0\0\0\x04");
/// ```
pub fn portal_suspended(out: &mut Vec<u8>) {
    writer::fixed(out, Tag::PORTAL_SUSPENDED, &[]);
}

/// Appends a RowDescription (`T`) with one entry per column (at most 65 535).
///
/// ```
/// use qcp_codec::{encode, fields::FieldDescription};
/// let col = FieldDescription { name: b"n", table_oid: 0, column_id: 0, type_oid: 23,
///                              type_size: 4, type_modifier: -1, format: 0 };
/// let mut out = Vec::new();
/// encode::row_description(&mut out, &[col])?;
/// assert_eq!(out.len(), 1 + 4 + 2 + 2 + 18);
/// # Ok::<(), qcp_codec::EncodeError>(())
/// ```
pub fn row_description(
    out: &mut Vec<u8>,
    columns: &[FieldDescription<'_>],
) -> Result<(), EncodeError> {
    writer::message(
        out,
        Some(Tag::ROW_DESCRIPTION),
        "RowDescription",
        |w: &mut Writer<'_>| {
            w.count(columns.len(), "RowDescription.fields")?;
            for c in columns {
                w.cstr(c.name, "RowDescription.name")?;
                w.u32(c.table_oid);
                w.i16(c.column_id);
                w.u32(c.type_oid);
                w.i16(c.type_size);
                w.i32(c.type_modifier);
                w.i16(c.format);
            }
            Ok(())
        },
    )
}

/// Appends a DataRow (`D`); `None` is SQL NULL.
///
/// ```
/// let mut out = Vec::new();
/// qcp_codec::encode::data_row(&mut out, &[Some(b"1"), None])?;
/// assert_eq!(out, b"D\0\0\0\x0f\0\x02\0\0\0\x011\xff\xff\xff\xff");
/// # Ok::<(), qcp_codec::EncodeError>(())
/// ```
pub fn data_row(out: &mut Vec<u8>, values: &[Option<&[u8]>]) -> Result<(), EncodeError> {
    writer::message(out, Some(Tag::DATA_ROW), "DataRow", |w: &mut Writer<'_>| {
        w.values(values, "DataRow.values")
    })
}

/// Appends a ParameterDescription (`t`) with parameter type OIDs.
///
/// ```
/// let mut out = Vec::new();
/// qcp_codec::encode::parameter_description(&mut out, &[23, 25])?;
/// assert_eq!(out, b"t\0\0\0\x0e\0\x02\0\0\0\x17\0\0\0\x19");
/// # Ok::<(), qcp_codec::EncodeError>(())
/// ```
pub fn parameter_description(out: &mut Vec<u8>, types: &[u32]) -> Result<(), EncodeError> {
    writer::message(
        out,
        Some(Tag::PARAMETER_DESCRIPTION),
        "ParameterDescription",
        |w: &mut Writer<'_>| w.oids(types, "ParameterDescription.types"),
    )
}

/// Appends a NotificationResponse (`A`).
///
/// ```
/// let mut out = Vec::new();
/// qcp_codec::encode::notification_response(&mut out, 42, "jobs", "")?;
/// assert_eq!(out, b"A\0\0\0\x0e\0\0\0\x2ajobs\0\0");
/// # Ok::<(), qcp_codec::EncodeError>(())
/// ```
pub fn notification_response(
    out: &mut Vec<u8>,
    pid: i32,
    channel: impl AsRef<[u8]>,
    payload: impl AsRef<[u8]>,
) -> Result<(), EncodeError> {
    writer::message(
        out,
        Some(Tag::NOTIFICATION_RESPONSE),
        "NotificationResponse",
        |w: &mut Writer<'_>| {
            w.i32(pid);
            w.cstr(channel.as_ref(), "NotificationResponse.channel")?;
            w.cstr(payload.as_ref(), "NotificationResponse.payload")
        },
    )
}

/// Appends a Copy*Response body with `tag`.
fn copy_response(
    out: &mut Vec<u8>,
    tag: Tag,
    format: i8,
    column_formats: &[i16],
) -> Result<(), EncodeError> {
    writer::message(out, Some(tag), "CopyResponse", |w: &mut Writer<'_>| {
        w.i8(format);
        w.i16s(column_formats, "CopyResponse.column_formats")
    })
}

/// Appends a CopyInResponse (`G`): overall format (0 text, 1 binary) and column formats.
///
/// ```
/// let mut out = Vec::new();
/// qcp_codec::encode::copy_in_response(&mut out, 0, &[0, 0])?;
/// assert_eq!(out, b"G\0\0\0\x0b\0\0\x02\0\0\0\0");
/// # Ok::<(), qcp_codec::EncodeError>(())
/// ```
pub fn copy_in_response(
    out: &mut Vec<u8>,
    format: i8,
    column_formats: &[i16],
) -> Result<(), EncodeError> {
    copy_response(out, Tag::COPY_IN_RESPONSE, format, column_formats)
}

/// Appends a CopyOutResponse (`H`).
///
/// ```
/// let mut out = Vec::new();
/// qcp_codec::encode::copy_out_response(&mut out, 1, &[1])?;
/// assert_eq!(out, b"H\0\0\0\x09\x01\0\x01\0\x01");
/// # Ok::<(), qcp_codec::EncodeError>(())
/// ```
pub fn copy_out_response(
    out: &mut Vec<u8>,
    format: i8,
    column_formats: &[i16],
) -> Result<(), EncodeError> {
    copy_response(out, Tag::COPY_OUT_RESPONSE, format, column_formats)
}

/// Appends a CopyBothResponse (`W`).
///
/// ```
/// let mut out = Vec::new();
/// qcp_codec::encode::copy_both_response(&mut out, 0, &[])?;
/// assert_eq!(out, b"W\0\0\0\x07\0\0\0");
/// # Ok::<(), qcp_codec::EncodeError>(())
/// ```
pub fn copy_both_response(
    out: &mut Vec<u8>,
    format: i8,
    column_formats: &[i16],
) -> Result<(), EncodeError> {
    copy_response(out, Tag::COPY_BOTH_RESPONSE, format, column_formats)
}

/// Appends a FunctionCallResponse (`V`); `None` is SQL NULL.
///
/// ```
/// let mut out = Vec::new();
/// qcp_codec::encode::function_call_response(&mut out, Some(b"ok"))?;
/// assert_eq!(out, b"V\0\0\0\x0a\0\0\0\x02ok");
/// # Ok::<(), qcp_codec::EncodeError>(())
/// ```
pub fn function_call_response(out: &mut Vec<u8>, value: Option<&[u8]>) -> Result<(), EncodeError> {
    writer::message(
        out,
        Some(Tag::FUNCTION_CALL_RESPONSE),
        "FunctionCallResponse",
        |w: &mut Writer<'_>| w.value(value, "FunctionCallResponse.value"),
    )
}
