//! Authentication: the server's requests ([`Authentication`], tag `R`) and the bodies of the
//! client's `'p'` replies ([`PasswordMessage`], [`SaslInitialResponse`], [`SaslResponse`]).
//!
//! The `'p'` tag carries one of four layouts, and only the authentication step tells which:
//! the frontend decoder returns the raw body as
//! [`FrontendMessage::PasswordFamily`](crate::FrontendMessage::PasswordFamily) and the caller,
//! which knows the step, decodes it with the type here. GSSResponse has the same layout as
//! [`SaslResponse`] (opaque bytes).
//!
//! Request codes (PostgreSQL "Message Formats"): 0 Ok, 2 KerberosV5, 3 CleartextPassword,
//! 5 MD5Password + `Byte4 salt`, 7 GSS, 8 GSSContinue + data, 9 SSPI, 10 SASL + mechanism
//! names ended by an empty string, 11 SASLContinue + data, 12 SASLFinal + data.

use core::fmt;

use crate::encode::writer::{self, Writer};
use crate::error::{DecodeError, EncodeError};
use crate::fields::CStrings;
use crate::reader::Reader;
use crate::tag::Tag;
use crate::text::{utf8, Bytes, OptBytes, Redacted};

/// An authentication request or result from the server (`R`): `Int32 code`, then data that
/// depends on the code.
///
/// ```
/// use qcp_codec::auth::Authentication;
///
/// let a = Authentication::decode(b"\0\0\0\x05\x01\x02\x03\x04")?;
/// assert_eq!(a, Authentication::Md5Password { salt: [1, 2, 3, 4] });
/// assert_eq!(a.code(), 5);
/// # Ok::<(), qcp_codec::DecodeError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Authentication<'a> {
    /// 0: authentication succeeded.
    Ok,
    /// 2: Kerberos V5 (no longer supported by PostgreSQL).
    KerberosV5,
    /// 3: send the password in clear text.
    CleartextPassword,
    /// 5: send `"md5" + hex(md5(hex(md5(password + user)) + salt))`.
    Md5Password {
        /// The 4-byte salt.
        salt: [u8; 4],
    },
    /// 7: start GSSAPI.
    Gss,
    /// 8: GSSAPI or SSPI continuation data.
    GssContinue(&'a [u8]),
    /// 9: start SSPI.
    Sspi,
    /// 10: start SASL; lists the mechanisms the server accepts.
    Sasl(SaslMechanisms<'a>),
    /// 11: SASL challenge (SCRAM server-first-message).
    SaslContinue(&'a [u8]),
    /// 12: SASL outcome (SCRAM server-final-message).
    SaslFinal(&'a [u8]),
    /// A code this codec does not know, with the data after it.
    Unknown {
        /// The request code.
        code: i32,
        /// Everything after the code.
        data: &'a [u8],
    },
}

impl<'a> Authentication<'a> {
    /// Code 0.
    pub const OK: i32 = 0;
    /// Code 2.
    pub const KERBEROS_V5: i32 = 2;
    /// Code 3.
    pub const CLEARTEXT_PASSWORD: i32 = 3;
    /// Code 5.
    pub const MD5_PASSWORD: i32 = 5;
    /// Code 7.
    pub const GSS: i32 = 7;
    /// Code 8.
    pub const GSS_CONTINUE: i32 = 8;
    /// Code 9.
    pub const SSPI: i32 = 9;
    /// Code 10.
    pub const SASL: i32 = 10;
    /// Code 11.
    pub const SASL_CONTINUE: i32 = 11;
    /// Code 12.
    pub const SASL_FINAL: i32 = 12;

    /// Decodes an Authentication (`R`) body.
    ///
    /// ```
    /// use qcp_codec::{auth::Authentication, DecodeError};
    /// assert_eq!(Authentication::decode(b"\0\0\0\0"), Ok(Authentication::Ok));
    /// assert_eq!(Authentication::decode(b"\0\0\0\0x"), Err(DecodeError::TrailingBytes("AuthenticationOk")));
    /// ```
    pub fn decode(body: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body);
        let code = r.i32("Authentication.code")?;
        let done = |r: Reader<'a>, site, v| r.finish(site).map(|()| v);
        match code {
            Self::OK => done(r, "AuthenticationOk", Self::Ok),
            Self::KERBEROS_V5 => done(r, "AuthenticationKerberosV5", Self::KerberosV5),
            Self::CLEARTEXT_PASSWORD => done(
                r,
                "AuthenticationCleartextPassword",
                Self::CleartextPassword,
            ),
            Self::MD5_PASSWORD => {
                let salt = r.array::<4>("AuthenticationMD5Password.salt")?;
                done(r, "AuthenticationMD5Password", Self::Md5Password { salt })
            }
            Self::GSS => done(r, "AuthenticationGSS", Self::Gss),
            Self::GSS_CONTINUE => Ok(Self::GssContinue(r.rest())),
            Self::SSPI => done(r, "AuthenticationSSPI", Self::Sspi),
            Self::SASL => Ok(Self::Sasl(SaslMechanisms::decode(r.rest())?)),
            Self::SASL_CONTINUE => Ok(Self::SaslContinue(r.rest())),
            Self::SASL_FINAL => Ok(Self::SaslFinal(r.rest())),
            code => Ok(Self::Unknown {
                code,
                data: r.rest(),
            }),
        }
    }

    /// The request code on the wire.
    ///
    /// ```
    /// use qcp_codec::auth::Authentication;
    /// assert_eq!(Authentication::SaslFinal(b"v=...").code(), 12);
    /// ```
    pub const fn code(&self) -> i32 {
        match self {
            Self::Ok => Self::OK,
            Self::KerberosV5 => Self::KERBEROS_V5,
            Self::CleartextPassword => Self::CLEARTEXT_PASSWORD,
            Self::Md5Password { .. } => Self::MD5_PASSWORD,
            Self::Gss => Self::GSS,
            Self::GssContinue(_) => Self::GSS_CONTINUE,
            Self::Sspi => Self::SSPI,
            Self::Sasl(_) => Self::SASL,
            Self::SaslContinue(_) => Self::SASL_CONTINUE,
            Self::SaslFinal(_) => Self::SASL_FINAL,
            Self::Unknown { code, .. } => *code,
        }
    }

    /// Appends the whole `R` message to `out`; a decoded value re-encodes to the same bytes.
    ///
    /// ```
    /// use qcp_codec::auth::Authentication;
    /// let mut out = Vec::new();
    /// Authentication::Ok.encode(&mut out)?;
    /// assert_eq!(out, b"R\0\0\0\x08\0\0\0\0");
    /// # Ok::<(), qcp_codec::EncodeError>(())
    /// ```
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        writer::message(
            out,
            Some(Tag::AUTHENTICATION),
            "Authentication",
            |w: &mut Writer<'_>| {
                w.i32(self.code());
                match self {
                    Self::Ok
                    | Self::KerberosV5
                    | Self::CleartextPassword
                    | Self::Gss
                    | Self::Sspi => {}
                    Self::Md5Password { salt } => w.bytes(salt),
                    Self::Sasl(m) => {
                        w.bytes(m.raw);
                        w.u8(0);
                    }
                    Self::GssContinue(data)
                    | Self::SaslContinue(data)
                    | Self::SaslFinal(data)
                    | Self::Unknown { data, .. } => w.bytes(data),
                }
                Ok(())
            },
        )
    }
}

impl fmt::Debug for Authentication<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Ok => f.write_str("Ok"),
            Self::KerberosV5 => f.write_str("KerberosV5"),
            Self::CleartextPassword => f.write_str("CleartextPassword"),
            Self::Md5Password { salt } => {
                f.debug_struct("Md5Password").field("salt", salt).finish()
            }
            Self::Gss => f.write_str("Gss"),
            Self::GssContinue(d) => f.debug_tuple("GssContinue").field(&Bytes(d)).finish(),
            Self::Sspi => f.write_str("Sspi"),
            Self::Sasl(m) => m.fmt(f),
            Self::SaslContinue(d) => f.debug_tuple("SaslContinue").field(&Bytes(d)).finish(),
            Self::SaslFinal(d) => f.debug_tuple("SaslFinal").field(&Bytes(d)).finish(),
            Self::Unknown { code, data } => f
                .debug_struct("Unknown")
                .field("code", code)
                .field("data", &Bytes(data))
                .finish(),
        }
    }
}

/// The SASL mechanism names of an AuthenticationSASL request: NUL-terminated strings ended by
/// an empty one (which must be the last byte).
///
/// ```
/// use qcp_codec::auth::{Authentication, SaslMechanisms};
///
/// let Authentication::Sasl(m) = Authentication::decode(b"\0\0\0\x0aSCRAM-SHA-256-PLUS\0SCRAM-SHA-256\0\0")? else {
///     panic!()
/// };
/// assert!(m.contains(b"SCRAM-SHA-256"));
/// assert_eq!(m.iter().count(), 2);
/// # Ok::<(), qcp_codec::DecodeError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SaslMechanisms<'a> {
    /// INVARIANT: validated non-empty NUL-terminated names; the final empty one excluded.
    raw: &'a [u8],
}

impl<'a> SaslMechanisms<'a> {
    /// Decodes the list that follows code 10.
    ///
    /// ```
    /// use qcp_codec::{auth::SaslMechanisms, DecodeError};
    /// assert!(SaslMechanisms::decode(b"SCRAM-SHA-256\0\0").is_ok());
    /// assert_eq!(SaslMechanisms::decode(b"SCRAM-SHA-256\0"), Err(DecodeError::MissingNul("AuthenticationSASL.mechanism")));
    /// ```
    pub fn decode(data: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(data);
        while !r.cstr("AuthenticationSASL.mechanism")?.is_empty() {}
        r.finish("AuthenticationSASL")?;
        let used = data.len().saturating_sub(1);
        Ok(Self {
            raw: data.get(..used).unwrap_or_default(),
        })
    }

    /// The mechanism names, in the server's order of preference.
    ///
    /// ```
    /// use qcp_codec::auth::SaslMechanisms;
    /// let m = SaslMechanisms::decode(b"SCRAM-SHA-256\0\0")?;
    /// assert_eq!(m.iter().collect::<Vec<_>>(), [b"SCRAM-SHA-256"]);
    /// # Ok::<(), qcp_codec::DecodeError>(())
    /// ```
    #[inline]
    pub const fn iter(&self) -> CStrings<'a> {
        CStrings::new(self.raw)
    }

    /// Whether the server offers `mechanism`.
    ///
    /// ```
    /// use qcp_codec::auth::SaslMechanisms;
    /// let m = SaslMechanisms::decode(b"SCRAM-SHA-256\0\0")?;
    /// assert!(!m.contains(b"SCRAM-SHA-256-PLUS"));
    /// # Ok::<(), qcp_codec::DecodeError>(())
    /// ```
    #[inline]
    pub fn contains(&self, mechanism: &[u8]) -> bool {
        self.iter().any(|m| m == mechanism)
    }
}

impl<'a> IntoIterator for SaslMechanisms<'a> {
    type Item = &'a [u8];
    type IntoIter = CStrings<'a>;

    #[inline]
    fn into_iter(self) -> CStrings<'a> {
        self.iter()
    }
}

impl fmt::Debug for SaslMechanisms<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("SaslMechanisms").field(&self.iter()).finish()
    }
}

/// PasswordMessage (`p` after AuthenticationCleartextPassword or MD5Password):
/// `String password` (clear text, or `"md5"` + 32 hex digits).
///
/// ```
/// use qcp_codec::auth::PasswordMessage;
/// let p = PasswordMessage::decode(b"md5abc\0")?;
/// assert_eq!(p.password(), b"md5abc");
/// # Ok::<(), qcp_codec::DecodeError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PasswordMessage<'a> {
    password: &'a [u8],
}

impl<'a> PasswordMessage<'a> {
    /// Decodes a `p` body as a PasswordMessage.
    ///
    /// ```
    /// use qcp_codec::{auth::PasswordMessage, DecodeError};
    /// assert_eq!(PasswordMessage::decode(b"secret"), Err(DecodeError::MissingNul("PasswordMessage.password")));
    /// ```
    pub fn decode(body: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body);
        let password = r.cstr("PasswordMessage.password")?;
        r.finish("PasswordMessage")?;
        Ok(Self { password })
    }

    /// The password (or MD5 response), without its NUL terminator.
    ///
    /// ```
    /// # let p = qcp_codec::auth::PasswordMessage::decode(b"hunter2\0")?;
    /// assert_eq!(p.password(), b"hunter2");
    /// # Ok::<(), qcp_codec::DecodeError>(())
    /// ```
    #[inline]
    pub const fn password(&self) -> &'a [u8] {
        self.password
    }

    /// Appends this message to `out`.
    ///
    /// ```
    /// let p = qcp_codec::auth::PasswordMessage::decode(b"pw\0")?;
    /// let mut out = Vec::new();
    /// p.encode(&mut out)?;
    /// assert_eq!(out, b"p\0\0\0\x07pw\0");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        crate::encode::password(out, self.password)
    }
}

impl fmt::Debug for PasswordMessage<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasswordMessage")
            .field("password", &Redacted(self.password.len()))
            .finish()
    }
}

/// SASLInitialResponse (`p` after AuthenticationSASL): `String mechanism`, `Int32 len`
/// (-1 = no initial response), `Byte[len]` data (the SCRAM client-first-message).
///
/// ```
/// use qcp_codec::auth::SaslInitialResponse;
/// let s = SaslInitialResponse::decode(b"SCRAM-SHA-256\0\0\0\0\x03n,,")?;
/// assert_eq!(s.mechanism(), b"SCRAM-SHA-256");
/// assert_eq!(s.data(), Some(&b"n,,"[..]));
/// # Ok::<(), qcp_codec::DecodeError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SaslInitialResponse<'a> {
    mechanism: &'a [u8],
    data: Option<&'a [u8]>,
}

impl<'a> SaslInitialResponse<'a> {
    /// Decodes a `p` body as a SASLInitialResponse.
    ///
    /// ```
    /// use qcp_codec::{auth::SaslInitialResponse, DecodeError};
    /// assert_eq!(
    ///     SaslInitialResponse::decode(b"SCRAM-SHA-256\0\0\0\0\x09n,,"),
    ///     Err(DecodeError::Truncated("SASLInitialResponse.data"))
    /// );
    /// ```
    pub fn decode(body: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body);
        let mechanism = r.cstr("SASLInitialResponse.mechanism")?;
        let data = r.value("SASLInitialResponse.data")?;
        r.finish("SASLInitialResponse")?;
        Ok(Self { mechanism, data })
    }

    /// The chosen mechanism name.
    ///
    /// ```
    /// # let s = qcp_codec::auth::SaslInitialResponse::decode(b"SCRAM-SHA-256\0\xff\xff\xff\xff")?;
    /// assert_eq!(s.mechanism(), b"SCRAM-SHA-256");
    /// # Ok::<(), qcp_codec::DecodeError>(())
    /// ```
    #[inline]
    pub const fn mechanism(&self) -> &'a [u8] {
        self.mechanism
    }

    /// [`SaslInitialResponse::mechanism`] as UTF-8.
    ///
    /// ```
    /// # let s = qcp_codec::auth::SaslInitialResponse::decode(b"SCRAM-SHA-256\0\xff\xff\xff\xff")?;
    /// assert_eq!(s.mechanism_str()?, "SCRAM-SHA-256");
    /// # Ok::<(), qcp_codec::DecodeError>(())
    /// ```
    #[inline]
    pub fn mechanism_str(&self) -> Result<&'a str, DecodeError> {
        utf8(self.mechanism, "SASLInitialResponse.mechanism")
    }

    /// The initial response; `None` when the client sent length -1.
    ///
    /// ```
    /// # let s = qcp_codec::auth::SaslInitialResponse::decode(b"SCRAM-SHA-256\0\xff\xff\xff\xff")?;
    /// assert_eq!(s.data(), None);
    /// # Ok::<(), qcp_codec::DecodeError>(())
    /// ```
    #[inline]
    pub const fn data(&self) -> Option<&'a [u8]> {
        self.data
    }

    /// Appends this message to `out`.
    ///
    /// ```
    /// let s = qcp_codec::auth::SaslInitialResponse::decode(b"X\0\xff\xff\xff\xff")?;
    /// let mut out = Vec::new();
    /// s.encode(&mut out)?;
    /// assert_eq!(out, b"p\0\0\0\x0aX\0\xff\xff\xff\xff");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        crate::encode::sasl_initial_response(out, self.mechanism, self.data)
    }
}

impl fmt::Debug for SaslInitialResponse<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SaslInitialResponse")
            .field("mechanism", &Bytes(self.mechanism))
            .field("data", &OptBytes(self.data))
            .finish()
    }
}

/// SASLResponse (`p` after AuthenticationSASLContinue): `Byte[n]` data (the SCRAM
/// client-final-message). GSSResponse has the same layout.
///
/// ```
/// use qcp_codec::auth::SaslResponse;
/// assert_eq!(SaslResponse::decode(b"c=biws,r=abc,p=xyz")?.data(), b"c=biws,r=abc,p=xyz");
/// # Ok::<(), qcp_codec::DecodeError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SaslResponse<'a> {
    data: &'a [u8],
}

impl<'a> SaslResponse<'a> {
    /// Decodes a `p` body as a SASLResponse (any bytes are valid; the `Result` is kept for
    /// symmetry with the other `'p'` decoders).
    ///
    /// ```
    /// assert!(qcp_codec::auth::SaslResponse::decode(b"").is_ok());
    /// ```
    #[inline]
    pub const fn decode(body: &'a [u8]) -> Result<Self, DecodeError> {
        Ok(Self { data: body })
    }

    /// The response data.
    ///
    /// ```
    /// # let s = qcp_codec::auth::SaslResponse::decode(b"abc")?;
    /// assert_eq!(s.data(), b"abc");
    /// # Ok::<(), qcp_codec::DecodeError>(())
    /// ```
    #[inline]
    pub const fn data(&self) -> &'a [u8] {
        self.data
    }

    /// Appends this message to `out`.
    ///
    /// ```
    /// let s = qcp_codec::auth::SaslResponse::decode(b"abc")?;
    /// let mut out = Vec::new();
    /// s.encode(&mut out)?;
    /// assert_eq!(out, b"p\0\0\0\x07abc");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        crate::encode::sasl_response(out, self.data)
    }
}

impl fmt::Debug for SaslResponse<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SaslResponse")
            .field("data", &Bytes(self.data))
            .finish()
    }
}
