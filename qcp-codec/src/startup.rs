//! The untagged packets a client sends before (or instead of) the tagged protocol:
//! StartupMessage, SSLRequest, GSSENCRequest and CancelRequest.
//!
//! Layout (PostgreSQL "Message Formats"): `Int32 len` (counts itself), `Int32 code`, then a
//! body that depends on the code. The code is a protocol version `major << 16 | minor` for a
//! StartupMessage, or one of the special codes with "major" 1234 for the others.
//!
//! The codec keeps no state: a caller decodes with [`StartupPacket::decode`] while the
//! connection is in its startup phase, and with [`FrontendMessage::decode`](crate::FrontendMessage::decode)
//! after it.

use core::fmt;

use crate::encode::writer::{self, Writer};
use crate::error::{DecodeError, EncodeError};
pub use crate::fields::StartupParams;
use crate::limits::Limits;
use crate::reader::Reader;
use crate::text::{utf8, Redacted};

/// The code of a CancelRequest: 1234 << 16 | 5678.
pub const CANCEL_REQUEST_CODE: u32 = 80_877_102;
/// The code of an SSLRequest: 1234 << 16 | 5679.
pub const SSL_REQUEST_CODE: u32 = 80_877_103;
/// The code of a GSSENCRequest: 1234 << 16 | 5680.
pub const GSS_ENC_REQUEST_CODE: u32 = 80_877_104;
/// The "major version" shared by the special request codes.
pub const SPECIAL_MAJOR: u16 = 1234;
/// Smallest valid startup-phase packet: the length and the code.
pub const MIN_STARTUP_LEN: u32 = 8;
/// Smallest cancel secret: 4 bytes (the only size in protocol 3.0).
pub const MIN_SECRET_LEN: usize = 4;
/// Largest cancel secret: 256 bytes (protocol 3.2).
pub const MAX_SECRET_LEN: usize = 256;

/// A protocol version number, `major << 16 | minor` on the wire.
///
/// ```
/// use qcp_codec::ProtocolVersion;
///
/// assert_eq!(ProtocolVersion::V3_0.to_u32(), 196_608);
/// assert_eq!(ProtocolVersion::from_u32(196_610), ProtocolVersion::V3_2);
/// assert!(ProtocolVersion::V3_2 > ProtocolVersion::V3_0);
/// assert_eq!(ProtocolVersion::V3_2.to_string(), "3.2");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProtocolVersion {
    /// Major version: 3 for every protocol this codec speaks.
    pub major: u16,
    /// Minor version: 0 (PostgreSQL 7.4 to 17) or 2 (PostgreSQL 18, long cancel keys).
    pub minor: u16,
}

impl ProtocolVersion {
    /// Protocol 3.0.
    pub const V3_0: ProtocolVersion = ProtocolVersion { major: 3, minor: 0 };
    /// Protocol 3.2: BackendKeyData and CancelRequest secrets of 4 to 256 bytes.
    pub const V3_2: ProtocolVersion = ProtocolVersion { major: 3, minor: 2 };

    /// Splits a wire version number into major and minor.
    ///
    /// ```
    /// use qcp_codec::ProtocolVersion;
    /// assert_eq!(ProtocolVersion::from_u32(0x0003_270F), ProtocolVersion { major: 3, minor: 9999 });
    /// ```
    #[inline]
    pub const fn from_u32(v: u32) -> Self {
        let [a, b, c, d] = v.to_be_bytes();
        Self {
            major: u16::from_be_bytes([a, b]),
            minor: u16::from_be_bytes([c, d]),
        }
    }

    /// The wire version number `major << 16 | minor`.
    ///
    /// ```
    /// use qcp_codec::ProtocolVersion;
    /// assert_eq!(ProtocolVersion { major: 3, minor: 2 }.to_u32(), 196_610);
    /// ```
    #[inline]
    pub const fn to_u32(self) -> u32 {
        let [a, b] = self.major.to_be_bytes();
        let [c, d] = self.minor.to_be_bytes();
        u32::from_be_bytes([a, b, c, d])
    }
}

impl fmt::Display for ProtocolVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// An untagged startup-phase packet.
///
/// # Example
///
/// ```
/// use qcp_codec::{Limits, StartupPacket};
///
/// let (packet, used) = StartupPacket::decode(b"\0\0\0\x08\x04\xd2\x16\x2fQ", &Limits::default())?.unwrap();
/// assert_eq!(packet, StartupPacket::SslRequest);
/// assert_eq!(used, 8);
/// # Ok::<(), qcp_codec::DecodeError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartupPacket<'a> {
    /// StartupMessage: protocol version and session parameters.
    Startup(Startup<'a>),
    /// SSLRequest (code 80877103): the client asks to switch to TLS. Always 8 bytes.
    SslRequest,
    /// GSSENCRequest (code 80877104): the client asks for GSSAPI encryption. Always 8 bytes.
    GssEncRequest,
    /// CancelRequest (code 80877102): cancel the query running on another connection.
    Cancel(CancelRequest<'a>),
}

impl<'a> StartupPacket<'a> {
    /// Decodes the untagged packet at the start of `buf`.
    ///
    /// Returns `Ok(None)` if `buf` does not yet hold the whole packet, else the packet and the
    /// number of bytes it used. Checks, in order: length at least 8
    /// ([`DecodeError::InvalidLength`]), length at most `limits.startup`
    /// ([`DecodeError::StartupTooLarge`], reported as soon as the 4 length bytes are in), the
    /// code, then the whole body. Any 3.x version decodes (the caller negotiates); another
    /// major version is [`DecodeError::UnsupportedProtocolVersion`], an unknown 1234.x code
    /// [`DecodeError::UnknownStartupCode`].
    ///
    /// ```
    /// use qcp_codec::{DecodeError, Limits, StartupPacket};
    ///
    /// let limits = Limits::default();
    /// assert_eq!(StartupPacket::decode(b"\0\0\0", &limits)?, None);
    /// assert_eq!(StartupPacket::decode(b"\0\0\0\x08\x04\xd2", &limits)?, None);
    /// assert_eq!(
    ///     StartupPacket::decode(b"\0\0\x27\x15", &limits),
    ///     Err(DecodeError::StartupTooLarge { len: 10_005, limit: 10_004 })
    /// );
    /// # Ok::<(), DecodeError>(())
    /// ```
    pub fn decode(
        buf: &'a [u8],
        limits: &Limits,
    ) -> Result<Option<(StartupPacket<'a>, usize)>, DecodeError> {
        let Some((body, used)) = Self::frame(buf, limits)? else {
            return Ok(None);
        };
        Ok(Some((Self::decode_body(body)?, used)))
    }

    /// Finds the untagged packet at the start of `buf` by its length alone: its body (the
    /// code and what follows) and the number of bytes it uses, or `Ok(None)` until it is
    /// whole. The length checks are [`StartupPacket::decode`]'s; the body is not looked at,
    /// for a caller with rules of its own about it (PostgreSQL ignores whatever follows the
    /// code of an SSLRequest, for one).
    ///
    /// ```
    /// use qcp_codec::{DecodeError, Limits, StartupPacket};
    ///
    /// let limits = Limits::default();
    /// let (body, used) = StartupPacket::frame(b"\0\0\0\x0c\x04\xd2\x16\x2fjunkmore", &limits)?.unwrap();
    /// assert_eq!((body, used), (&b"\x04\xd2\x16\x2fjunk"[..], 12));
    /// assert!(matches!(
    ///     StartupPacket::frame(b"\0\0\0\x07", &limits),
    ///     Err(DecodeError::InvalidLength { len: 7, .. })
    /// ));
    /// # Ok::<(), DecodeError>(())
    /// ```
    pub fn frame(buf: &'a [u8], limits: &Limits) -> Result<Option<(&'a [u8], usize)>, DecodeError> {
        let mut r = Reader::new(buf);
        let Ok(len) = r.i32("startup length") else {
            return Ok(None);
        };
        let len = match u32::try_from(len) {
            Ok(len) if len >= MIN_STARTUP_LEN => len,
            _ => {
                return Err(DecodeError::InvalidLength {
                    tag: None,
                    len: i64::from(len),
                })
            }
        };
        if len > limits.startup {
            return Err(DecodeError::StartupTooLarge {
                len,
                limit: limits.startup,
            });
        }
        let body_len =
            usize::try_from(len.saturating_sub(4)).map_err(|_| DecodeError::StartupTooLarge {
                len,
                limit: limits.startup,
            })?;
        let Ok(body) = r.bytes(body_len, "startup body") else {
            return Ok(None);
        };
        Ok(Some((body, body_len.saturating_add(4))))
    }

    /// Decodes a packet body: everything after the `Int32` length (code included).
    ///
    /// ```
    /// use qcp_codec::StartupPacket;
    ///
    /// let p = StartupPacket::decode_body(b"\x04\xd2\x16\x2e\0\0\0\x07\x01\x02\x03\x04")?;
    /// let StartupPacket::Cancel(c) = p else { panic!() };
    /// assert_eq!((c.pid(), c.secret()), (7, &[1, 2, 3, 4][..]));
    /// # Ok::<(), qcp_codec::DecodeError>(())
    /// ```
    pub fn decode_body(body: &'a [u8]) -> Result<StartupPacket<'a>, DecodeError> {
        let mut r = Reader::new(body);
        let code = r.u32("startup code")?;
        let version = ProtocolVersion::from_u32(code);
        match code {
            SSL_REQUEST_CODE => r.finish("SSLRequest").map(|()| Self::SslRequest),
            GSS_ENC_REQUEST_CODE => r.finish("GSSENCRequest").map(|()| Self::GssEncRequest),
            CANCEL_REQUEST_CODE => {
                let pid = r.i32("CancelRequest.pid")?;
                let secret = r.rest();
                check_secret(secret, "CancelRequest.secret")?;
                Ok(Self::Cancel(CancelRequest { pid, secret }))
            }
            _ if version.major == 3 => Ok(Self::Startup(Startup::decode_params(version, r)?)),
            _ if version.major == SPECIAL_MAJOR => Err(DecodeError::UnknownStartupCode(code)),
            _ => Err(DecodeError::UnsupportedProtocolVersion(code)),
        }
    }

    /// Appends the packet (length included) to `out`. Decoded packets re-encode to the same
    /// bytes.
    ///
    /// ```
    /// use qcp_codec::StartupPacket;
    ///
    /// let mut out = Vec::new();
    /// StartupPacket::GssEncRequest.encode(&mut out)?;
    /// assert_eq!(out, b"\0\0\0\x08\x04\xd2\x16\x30");
    /// # Ok::<(), qcp_codec::EncodeError>(())
    /// ```
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        match self {
            Self::Startup(s) => s.encode(out),
            Self::SslRequest => {
                crate::encode::ssl_request(out);
                Ok(())
            }
            Self::GssEncRequest => {
                crate::encode::gss_enc_request(out);
                Ok(())
            }
            Self::Cancel(c) => c.encode(out),
        }
    }
}

/// Checks a cancel secret length is within 4..=256 bytes.
#[inline]
pub(crate) fn check_secret(secret: &[u8], site: &'static str) -> Result<(), DecodeError> {
    if (MIN_SECRET_LEN..=MAX_SECRET_LEN).contains(&secret.len()) {
        Ok(())
    } else {
        Err(DecodeError::InvalidValue(site))
    }
}

/// A StartupMessage: `Int32 version`, then `String name, String value` pairs, then a final
/// NUL that must be the last byte.
///
/// Parameters are bytes in the client's encoding; PostgreSQL requires `user` and defaults
/// `database` to it, but this type reports what was sent and leaves such policy to the caller.
///
/// ```
/// use qcp_codec::{encode, Limits, ProtocolVersion, StartupPacket};
///
/// let mut buf = Vec::new();
/// encode::startup(&mut buf, ProtocolVersion::V3_0, &[("user", "alice"), ("application_name", "psql")])?;
/// let (StartupPacket::Startup(s), _) = StartupPacket::decode(&buf, &Limits::default())?.unwrap() else {
///     panic!()
/// };
/// assert_eq!(s.version(), ProtocolVersion::V3_0);
/// assert_eq!(s.user(), Some(&b"alice"[..]));
/// assert_eq!(s.database(), None);
/// assert_eq!(s.param(b"application_name"), Some(&b"psql"[..]));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Startup<'a> {
    version: ProtocolVersion,
    /// INVARIANT: validated `name\0value\0` pairs with non-empty names, final NUL excluded.
    pairs: &'a [u8],
}

impl<'a> Startup<'a> {
    /// Validates the parameter list that follows the version.
    fn decode_params(version: ProtocolVersion, mut r: Reader<'a>) -> Result<Self, DecodeError> {
        let pairs = r.peek_rest();
        loop {
            let name = r.cstr("StartupMessage.name")?;
            if name.is_empty() {
                r.finish("StartupMessage")?;
                break;
            }
            r.cstr("StartupMessage.value")?;
        }
        // Everything but the final NUL.
        let used = pairs.len().saturating_sub(1);
        Ok(Self {
            version,
            pairs: pairs.get(..used).unwrap_or_default(),
        })
    }

    /// The protocol version the client asks for (any 3.x).
    ///
    /// ```
    /// use qcp_codec::{ProtocolVersion, StartupPacket};
    /// let StartupPacket::Startup(s) = StartupPacket::decode_body(b"\0\x03\0\x02\0")? else { panic!() };
    /// assert_eq!(s.version(), ProtocolVersion::V3_2);
    /// # Ok::<(), qcp_codec::DecodeError>(())
    /// ```
    #[inline]
    pub const fn version(&self) -> ProtocolVersion {
        self.version
    }

    /// The `(name, value)` parameters in wire order.
    ///
    /// ```
    /// use qcp_codec::StartupPacket;
    /// let StartupPacket::Startup(s) = StartupPacket::decode_body(b"\0\x03\0\0user\0bob\0\0")? else { panic!() };
    /// assert_eq!(s.params().collect::<Vec<_>>(), [(&b"user"[..], &b"bob"[..])]);
    /// # Ok::<(), qcp_codec::DecodeError>(())
    /// ```
    #[inline]
    pub fn params(&self) -> StartupParams<'a> {
        StartupParams::new(self.pairs)
    }

    /// The value of the first parameter called `name`, if sent.
    ///
    /// ```
    /// use qcp_codec::StartupPacket;
    /// let StartupPacket::Startup(s) = StartupPacket::decode_body(b"\0\x03\0\0user\0bob\0\0")? else { panic!() };
    /// assert_eq!(s.param(b"user"), Some(&b"bob"[..]));
    /// assert_eq!(s.param(b"options"), None);
    /// # Ok::<(), qcp_codec::DecodeError>(())
    /// ```
    #[inline]
    pub fn param(&self, name: &[u8]) -> Option<&'a [u8]> {
        self.params().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    /// The `user` parameter (required by PostgreSQL, but not by this decoder).
    ///
    /// ```
    /// use qcp_codec::StartupPacket;
    /// let StartupPacket::Startup(s) = StartupPacket::decode_body(b"\0\x03\0\0user\0bob\0\0")? else { panic!() };
    /// assert_eq!(s.user(), Some(&b"bob"[..]));
    /// # Ok::<(), qcp_codec::DecodeError>(())
    /// ```
    #[inline]
    pub fn user(&self) -> Option<&'a [u8]> {
        self.param(b"user")
    }

    /// The `database` parameter as sent (PostgreSQL defaults it to the user name when absent;
    /// see [`Startup::database_or_user`]).
    ///
    /// ```
    /// use qcp_codec::StartupPacket;
    /// let StartupPacket::Startup(s) = StartupPacket::decode_body(b"\0\x03\0\0database\0app\0\0")? else { panic!() };
    /// assert_eq!(s.database(), Some(&b"app"[..]));
    /// # Ok::<(), qcp_codec::DecodeError>(())
    /// ```
    #[inline]
    pub fn database(&self) -> Option<&'a [u8]> {
        self.param(b"database")
    }

    /// The database PostgreSQL would connect to: `database` if sent and non-empty, else `user`.
    ///
    /// ```
    /// use qcp_codec::StartupPacket;
    /// let StartupPacket::Startup(s) = StartupPacket::decode_body(b"\0\x03\0\0user\0bob\0\0")? else { panic!() };
    /// assert_eq!(s.database_or_user(), Some(&b"bob"[..]));
    /// # Ok::<(), qcp_codec::DecodeError>(())
    /// ```
    #[inline]
    pub fn database_or_user(&self) -> Option<&'a [u8]> {
        self.database()
            .filter(|d| !d.is_empty())
            .or_else(|| self.user())
    }

    /// The value of parameter `name` as UTF-8 text; `Ok(None)` if it was not sent.
    ///
    /// ```
    /// use qcp_codec::StartupPacket;
    /// let StartupPacket::Startup(s) = StartupPacket::decode_body(b"\0\x03\0\0user\0bob\0\0")? else { panic!() };
    /// assert_eq!(s.param_str(b"user")?, Some("bob"));
    /// # Ok::<(), qcp_codec::DecodeError>(())
    /// ```
    #[inline]
    pub fn param_str(&self, name: &[u8]) -> Result<Option<&'a str>, DecodeError> {
        self.param(name)
            .map(|v| utf8(v, "StartupMessage.value"))
            .transpose()
    }

    /// Appends this StartupMessage to `out`, byte for byte as decoded.
    ///
    /// ```
    /// use qcp_codec::StartupPacket;
    /// let body = b"\0\x03\0\0user\0bob\0\0";
    /// let StartupPacket::Startup(s) = StartupPacket::decode_body(body)? else { panic!() };
    /// let mut out = Vec::new();
    /// s.encode(&mut out)?;
    /// assert_eq!(&out[4..], body);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        writer::message(out, None, "StartupMessage", |w: &mut Writer<'_>| {
            w.u32(self.version.to_u32());
            w.bytes(self.pairs);
            w.u8(0);
            Ok(())
        })
    }
}

impl fmt::Debug for Startup<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Startup")
            .field("version", &self.version)
            .field("params", &self.params())
            .finish()
    }
}

/// A CancelRequest: `Int32 pid`, then the secret key (4 bytes in 3.0, 4..=256 in 3.2).
///
/// ```
/// use qcp_codec::{encode, Limits, StartupPacket};
///
/// let mut buf = Vec::new();
/// encode::cancel_request(&mut buf, 4242, &[7; 32])?;
/// let (StartupPacket::Cancel(c), _) = StartupPacket::decode(&buf, &Limits::default())?.unwrap() else { panic!() };
/// assert_eq!(c.pid(), 4242);
/// assert_eq!(c.secret(), &[7; 32]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct CancelRequest<'a> {
    pid: i32,
    /// INVARIANT: 4..=256 bytes.
    secret: &'a [u8],
}

impl<'a> CancelRequest<'a> {
    /// Process id of the backend whose query should be cancelled.
    ///
    /// ```
    /// use qcp_codec::StartupPacket;
    /// let StartupPacket::Cancel(c) = StartupPacket::decode_body(b"\x04\xd2\x16\x2e\0\0\0\x09abcd")? else { panic!() };
    /// assert_eq!(c.pid(), 9);
    /// # Ok::<(), qcp_codec::DecodeError>(())
    /// ```
    #[inline]
    pub const fn pid(&self) -> i32 {
        self.pid
    }

    /// The secret key, 4 to 256 bytes.
    ///
    /// ```
    /// use qcp_codec::StartupPacket;
    /// let StartupPacket::Cancel(c) = StartupPacket::decode_body(b"\x04\xd2\x16\x2e\0\0\0\x09abcd")? else { panic!() };
    /// assert_eq!(c.secret(), b"abcd");
    /// # Ok::<(), qcp_codec::DecodeError>(())
    /// ```
    #[inline]
    pub const fn secret(&self) -> &'a [u8] {
        self.secret
    }

    /// Appends this CancelRequest to `out`.
    ///
    /// ```
    /// use qcp_codec::StartupPacket;
    /// let StartupPacket::Cancel(c) = StartupPacket::decode_body(b"\x04\xd2\x16\x2e\0\0\0\x09abcd")? else { panic!() };
    /// let mut out = Vec::new();
    /// c.encode(&mut out)?;
    /// assert_eq!(out, b"\0\0\0\x10\x04\xd2\x16\x2e\0\0\0\x09abcd");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        crate::encode::cancel_request(out, self.pid, self.secret)
    }
}

impl fmt::Debug for CancelRequest<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancelRequest")
            .field("pid", &self.pid)
            .field("secret", &Redacted(self.secret.len()))
            .finish()
    }
}
