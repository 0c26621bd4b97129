//! Encoders for the authentication exchange: the server's `R` requests and the client's `p`
//! replies.

use super::writer::{self, Writer};
use crate::auth::Authentication;
use crate::error::EncodeError;
use crate::tag::Tag;

/// Appends an `R` message with a fixed code and no data.
fn auth_code(out: &mut Vec<u8>, code: i32) {
    writer::fixed(out, Tag::AUTHENTICATION, &code.to_be_bytes());
}

/// Appends an `R` message with a code and opaque data.
fn auth_data(out: &mut Vec<u8>, code: i32, data: &[u8]) -> Result<(), EncodeError> {
    writer::message(
        out,
        Some(Tag::AUTHENTICATION),
        "Authentication",
        |w: &mut Writer<'_>| {
            w.i32(code);
            w.bytes(data);
            Ok(())
        },
    )
}

/// Appends AuthenticationOk (`R`, code 0).
///
/// ```
/// let mut out = Vec::new();
/// qcp_codec::encode::authentication_ok(&mut out);
/// assert_eq!(out, b"R\0\0\0\x08\0\0\0\0");
/// ```
pub fn authentication_ok(out: &mut Vec<u8>) {
    auth_code(out, Authentication::OK);
}

/// Appends AuthenticationKerberosV5 (`R`, code 2).
///
/// ```
/// let mut out = Vec::new();
/// qcp_codec::encode::authentication_kerberos_v5(&mut out);
/// assert_eq!(out, b"R\0\0\0\x08\0\0\0\x02");
/// ```
pub fn authentication_kerberos_v5(out: &mut Vec<u8>) {
    auth_code(out, Authentication::KERBEROS_V5);
}

/// Appends AuthenticationCleartextPassword (`R`, code 3).
///
/// ```
/// let mut out = Vec::new();
/// qcp_codec::encode::authentication_cleartext_password(&mut out);
/// assert_eq!(out, b"R\0\0\0\x08\0\0\0\x03");
/// ```
pub fn authentication_cleartext_password(out: &mut Vec<u8>) {
    auth_code(out, Authentication::CLEARTEXT_PASSWORD);
}

/// Appends AuthenticationMD5Password (`R`, code 5) with its salt.
///
/// ```
/// let mut out = Vec::new();
/// qcp_codec::encode::authentication_md5_password(&mut out, [1, 2, 3, 4]);
/// assert_eq!(out, b"R\0\0\0\x0c\0\0\0\x05\x01\x02\x03\x04");
/// ```
pub fn authentication_md5_password(out: &mut Vec<u8>, salt: [u8; 4]) {
    let [a, b, c, d] = Authentication::MD5_PASSWORD.to_be_bytes();
    let [e, f, g, h] = salt;
    writer::fixed(out, Tag::AUTHENTICATION, &[a, b, c, d, e, f, g, h]);
}

/// Appends AuthenticationGSS (`R`, code 7).
///
/// ```
/// let mut out = Vec::new();
/// qcp_codec::encode::authentication_gss(&mut out);
/// assert_eq!(out, b"R\0\0\0\x08\0\0\0\x07");
/// ```
pub fn authentication_gss(out: &mut Vec<u8>) {
    auth_code(out, Authentication::GSS);
}

/// Appends AuthenticationGSSContinue (`R`, code 8) with its data.
///
/// ```
/// let mut out = Vec::new();
/// qcp_codec::encode::authentication_gss_continue(&mut out, b"tok")?;
/// assert_eq!(out, b"R\0\0\0\x0b\0\0\0\x08tok");
/// # Ok::<(), qcp_codec::EncodeError>(())
/// ```
pub fn authentication_gss_continue(out: &mut Vec<u8>, data: &[u8]) -> Result<(), EncodeError> {
    auth_data(out, Authentication::GSS_CONTINUE, data)
}

/// Appends AuthenticationSSPI (`R`, code 9).
///
/// ```
/// let mut out = Vec::new();
/// qcp_codec::encode::authentication_sspi(&mut out);
/// assert_eq!(out, b"R\0\0\0\x08\0\0\0\x09");
/// ```
pub fn authentication_sspi(out: &mut Vec<u8>) {
    auth_code(out, Authentication::SSPI);
}

/// Appends AuthenticationSASL (`R`, code 10) listing `mechanisms`. An empty name is
/// [`EncodeError::InvalidValue`] (it would end the list early).
///
/// ```
/// let mut out = Vec::new();
/// qcp_codec::encode::authentication_sasl(&mut out, &["SCRAM-SHA-256"])?;
/// assert_eq!(out, b"R\0\0\0\x17\0\0\0\x0aSCRAM-SHA-256\0\0");
/// # Ok::<(), qcp_codec::EncodeError>(())
/// ```
pub fn authentication_sasl(out: &mut Vec<u8>, mechanisms: &[&str]) -> Result<(), EncodeError> {
    const SITE: &str = "AuthenticationSASL.mechanism";
    writer::message(
        out,
        Some(Tag::AUTHENTICATION),
        "AuthenticationSASL",
        |w: &mut Writer<'_>| {
            w.i32(Authentication::SASL);
            for m in mechanisms {
                if m.is_empty() {
                    return Err(EncodeError::InvalidValue(SITE));
                }
                w.cstr(m.as_bytes(), SITE)?;
            }
            w.u8(0);
            Ok(())
        },
    )
}

/// Appends AuthenticationSASLContinue (`R`, code 11): the SCRAM server-first-message.
///
/// ```
/// let mut out = Vec::new();
/// qcp_codec::encode::authentication_sasl_continue(&mut out, b"r=x,s=y,i=4096")?;
/// assert_eq!(&out[..9], b"R\0\0\0\x16\0\0\0\x0b");
/// # Ok::<(), qcp_codec::EncodeError>(())
/// ```
pub fn authentication_sasl_continue(out: &mut Vec<u8>, data: &[u8]) -> Result<(), EncodeError> {
    auth_data(out, Authentication::SASL_CONTINUE, data)
}

/// Appends AuthenticationSASLFinal (`R`, code 12): the SCRAM server-final-message.
///
/// ```
/// let mut out = Vec::new();
/// qcp_codec::encode::authentication_sasl_final(&mut out, b"v=abc")?;
/// assert_eq!(out, b"R\0\0\0\x0d\0\0\0\x0cv=abc");
/// # Ok::<(), qcp_codec::EncodeError>(())
/// ```
pub fn authentication_sasl_final(out: &mut Vec<u8>, data: &[u8]) -> Result<(), EncodeError> {
    auth_data(out, Authentication::SASL_FINAL, data)
}

/// Appends a PasswordMessage (`p`): a clear-text password or an `md5...` response.
///
/// ```
/// let mut out = Vec::new();
/// qcp_codec::encode::password(&mut out, "hunter2")?;
/// assert_eq!(out, b"p\0\0\0\x0chunter2\0");
/// # Ok::<(), qcp_codec::EncodeError>(())
/// ```
pub fn password(out: &mut Vec<u8>, password: impl AsRef<[u8]>) -> Result<(), EncodeError> {
    writer::message(
        out,
        Some(Tag::PASSWORD),
        "PasswordMessage",
        |w: &mut Writer<'_>| w.cstr(password.as_ref(), "PasswordMessage.password"),
    )
}

/// Appends a SASLInitialResponse (`p`): mechanism name and optional initial data
/// (`None` is sent as length -1).
///
/// ```
/// let mut out = Vec::new();
/// qcp_codec::encode::sasl_initial_response(&mut out, "SCRAM-SHA-256", Some(b"n,,n=,r=abc"))?;
/// assert_eq!(&out[5..19], b"SCRAM-SHA-256\0");
/// # Ok::<(), qcp_codec::EncodeError>(())
/// ```
pub fn sasl_initial_response(
    out: &mut Vec<u8>,
    mechanism: impl AsRef<[u8]>,
    data: Option<&[u8]>,
) -> Result<(), EncodeError> {
    writer::message(
        out,
        Some(Tag::SASL_INITIAL_RESPONSE),
        "SASLInitialResponse",
        |w: &mut Writer<'_>| {
            w.cstr(mechanism.as_ref(), "SASLInitialResponse.mechanism")?;
            w.value(data, "SASLInitialResponse.data")
        },
    )
}

/// Appends a SASLResponse (`p`): the SCRAM client-final-message (also the GSSResponse layout).
///
/// ```
/// let mut out = Vec::new();
/// qcp_codec::encode::sasl_response(&mut out, b"c=biws")?;
/// assert_eq!(out, b"p\0\0\0\x0ac=biws");
/// # Ok::<(), qcp_codec::EncodeError>(())
/// ```
pub fn sasl_response(out: &mut Vec<u8>, data: &[u8]) -> Result<(), EncodeError> {
    writer::message(
        out,
        Some(Tag::SASL_RESPONSE),
        "SASLResponse",
        |w: &mut Writer<'_>| {
            w.bytes(data);
            Ok(())
        },
    )
}
