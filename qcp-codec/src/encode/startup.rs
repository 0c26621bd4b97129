//! Encoders for the untagged startup-phase packets.

use super::writer::{self, Writer};
use crate::error::EncodeError;
use crate::startup::{
    ProtocolVersion, CANCEL_REQUEST_CODE, GSS_ENC_REQUEST_CODE, MAX_SECRET_LEN, MIN_SECRET_LEN,
    SSL_REQUEST_CODE,
};

/// Appends a StartupMessage: version, `name\0value\0` pairs, final NUL.
///
/// Fails with [`EncodeError::InvalidValue`] if the version's major is not 3 or a name is empty
/// (an empty name would end the list early), [`EncodeError::InteriorNul`] if a name or value
/// holds a NUL. The size cap a server applies (10 000 bytes after the length) is not checked here.
///
/// ```
/// use qcp_codec::{encode, ProtocolVersion};
///
/// let mut out = Vec::new();
/// encode::startup(&mut out, ProtocolVersion::V3_0, &[("user", "bob")])?;
/// assert_eq!(out, b"\0\0\0\x12\0\x03\0\0user\0bob\0\0");
/// assert!(encode::startup(&mut out, ProtocolVersion::V3_0, &[("", "x")]).is_err());
/// # Ok::<(), qcp_codec::EncodeError>(())
/// ```
pub fn startup(
    out: &mut Vec<u8>,
    version: ProtocolVersion,
    params: &[(&str, &str)],
) -> Result<(), EncodeError> {
    if version.major != 3 {
        return Err(EncodeError::InvalidValue("StartupMessage.version"));
    }
    writer::message(out, None, "StartupMessage", |w: &mut Writer<'_>| {
        w.u32(version.to_u32());
        for (name, value) in params {
            if name.is_empty() {
                return Err(EncodeError::InvalidValue("StartupMessage.name"));
            }
            w.cstr(name.as_bytes(), "StartupMessage.name")?;
            w.cstr(value.as_bytes(), "StartupMessage.value")?;
        }
        w.u8(0);
        Ok(())
    })
}

/// Appends the 8-byte packet with only a length and `code`.
fn code_only(out: &mut Vec<u8>, code: u32) {
    out.extend_from_slice(&8u32.to_be_bytes());
    out.extend_from_slice(&code.to_be_bytes());
}

/// Appends an SSLRequest (8 bytes).
///
/// ```
/// let mut out = Vec::new();
/// qcp_codec::encode::ssl_request(&mut out);
/// assert_eq!(out, b"\0\0\0\x08\x04\xd2\x16\x2f");
/// ```
pub fn ssl_request(out: &mut Vec<u8>) {
    code_only(out, SSL_REQUEST_CODE);
}

/// Appends a GSSENCRequest (8 bytes).
///
/// ```
/// let mut out = Vec::new();
/// qcp_codec::encode::gss_enc_request(&mut out);
/// assert_eq!(out, b"\0\0\0\x08\x04\xd2\x16\x30");
/// ```
pub fn gss_enc_request(out: &mut Vec<u8>) {
    code_only(out, GSS_ENC_REQUEST_CODE);
}

/// Appends a CancelRequest. `secret` must be 4 bytes for a protocol 3.0 server, and may be up
/// to 256 bytes for 3.2; outside 4..=256 this fails with [`EncodeError::InvalidValue`].
///
/// ```
/// let mut out = Vec::new();
/// qcp_codec::encode::cancel_request(&mut out, 42, b"abcd")?;
/// assert_eq!(out, b"\0\0\0\x10\x04\xd2\x16\x2e\0\0\0\x2aabcd");
/// assert!(qcp_codec::encode::cancel_request(&mut out, 42, b"abc").is_err());
/// # Ok::<(), qcp_codec::EncodeError>(())
/// ```
pub fn cancel_request(out: &mut Vec<u8>, pid: i32, secret: &[u8]) -> Result<(), EncodeError> {
    if !(MIN_SECRET_LEN..=MAX_SECRET_LEN).contains(&secret.len()) {
        return Err(EncodeError::InvalidValue("CancelRequest.secret"));
    }
    writer::message(out, None, "CancelRequest", |w: &mut Writer<'_>| {
        w.u32(CANCEL_REQUEST_CODE);
        w.i32(pid);
        w.bytes(secret);
        Ok(())
    })
}
