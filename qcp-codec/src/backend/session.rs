//! Backend messages about the session rather than a query: BackendKeyData,
//! NegotiateProtocolVersion, ParameterStatus and NotificationResponse.

use core::fmt;

use crate::encode::writer::{self, Writer};
use crate::error::{DecodeError, EncodeError};
use crate::fields::CStrings;
use crate::reader::Reader;
use crate::startup::{check_secret, ProtocolVersion};
use crate::tag::Tag;
use crate::text::{utf8, Bytes, Redacted};

/// BackendKeyData (`K`): `Int32 pid`, `Byte[n] secret` (4 bytes in protocol 3.0, 4 to 256 in
/// 3.2). The pair a client later sends in a CancelRequest.
///
/// ```
/// use qcp_codec::backend::BackendKeyData;
/// let k = BackendKeyData::decode(b"\0\0\x10\x92abcd")?;
/// assert_eq!((k.pid(), k.secret()), (4242, &b"abcd"[..]));
/// # Ok::<(), qcp_codec::DecodeError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct BackendKeyData<'a> {
    pid: i32,
    /// INVARIANT: 4..=256 bytes.
    secret: &'a [u8],
}

impl<'a> BackendKeyData<'a> {
    /// Decodes a BackendKeyData body; the secret must be 4 to 256 bytes.
    ///
    /// ```
    /// use qcp_codec::{backend::BackendKeyData, DecodeError};
    /// assert_eq!(BackendKeyData::decode(b"\0\0\0\x01abc"), Err(DecodeError::InvalidValue("BackendKeyData.secret")));
    /// ```
    pub fn decode(body: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body);
        let pid = r.i32("BackendKeyData.pid")?;
        let secret = r.rest();
        check_secret(secret, "BackendKeyData.secret")?;
        Ok(Self { pid, secret })
    }

    /// Backend process id.
    ///
    /// ```
    /// # let k = qcp_codec::backend::BackendKeyData::decode(b"\0\0\0\x07abcd")?;
    /// assert_eq!(k.pid(), 7);
    /// # Ok::<(), qcp_codec::DecodeError>(())
    /// ```
    #[inline]
    pub const fn pid(&self) -> i32 {
        self.pid
    }

    /// Secret key, 4 to 256 bytes.
    ///
    /// ```
    /// # let k = qcp_codec::backend::BackendKeyData::decode(b"\0\0\0\x07abcd")?;
    /// assert_eq!(k.secret(), b"abcd");
    /// # Ok::<(), qcp_codec::DecodeError>(())
    /// ```
    #[inline]
    pub const fn secret(&self) -> &'a [u8] {
        self.secret
    }

    /// Appends this message to `out`.
    ///
    /// ```
    /// let k = qcp_codec::backend::BackendKeyData::decode(b"\0\0\0\x07abcd")?;
    /// let mut out = Vec::new();
    /// k.encode(&mut out)?;
    /// assert_eq!(out, b"K\0\0\0\x0c\0\0\0\x07abcd");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        crate::encode::backend_key_data(out, self.pid, self.secret)
    }
}

impl fmt::Debug for BackendKeyData<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BackendKeyData")
            .field("pid", &self.pid)
            .field("secret", &Redacted(self.secret.len()))
            .finish()
    }
}

/// NegotiateProtocolVersion (`v`): `Int32 version`, `Int32 n`, `String[n]` protocol options
/// (`_pq_.*`) the server did not recognise.
///
/// The version field is the full `major << 16 | minor` number of the protocol the server will
/// use (what PostgreSQL sends and libpq checks), i.e. 3 and the newest minor it supports.
///
/// ```
/// use qcp_codec::{backend::NegotiateProtocolVersion, ProtocolVersion};
/// let v = NegotiateProtocolVersion::decode(b"\0\x03\0\0\0\0\0\x01_pq_.x\0")?;
/// assert_eq!(v.version(), ProtocolVersion::V3_0);
/// assert_eq!(v.options().collect::<Vec<_>>(), [b"_pq_.x"]);
/// # Ok::<(), qcp_codec::DecodeError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct NegotiateProtocolVersion<'a> {
    version: u32,
    /// INVARIANT: exactly `count` NUL-terminated strings.
    options: &'a [u8],
    count: u32,
}

impl<'a> NegotiateProtocolVersion<'a> {
    /// Decodes a NegotiateProtocolVersion body.
    ///
    /// ```
    /// use qcp_codec::{backend::NegotiateProtocolVersion, DecodeError};
    /// assert_eq!(
    ///     NegotiateProtocolVersion::decode(b"\0\x03\0\0\0\0\0\x05x\0"),
    ///     Err(DecodeError::BadCount("NegotiateProtocolVersion.options"))
    /// );
    /// ```
    pub fn decode(body: &'a [u8]) -> Result<Self, DecodeError> {
        const SITE: &str = "NegotiateProtocolVersion.options";
        let mut r = Reader::new(body);
        let version = r.u32("NegotiateProtocolVersion.version")?;
        let count = r.i32(SITE)?;
        // Each option takes at least its NUL byte.
        let count = match u32::try_from(count) {
            Ok(n) if usize::try_from(n).is_ok_and(|n| n <= r.remaining()) => n,
            _ => return Err(DecodeError::BadCount(SITE)),
        };
        let options = r.peek_rest();
        for _ in 0..count {
            r.cstr(SITE)?;
        }
        r.finish("NegotiateProtocolVersion")?;
        Ok(Self {
            version,
            options,
            count,
        })
    }

    /// The protocol version the server will use.
    ///
    /// ```
    /// # let v = qcp_codec::backend::NegotiateProtocolVersion::decode(b"\0\x03\0\x02\0\0\0\0")?;
    /// assert_eq!(v.version(), qcp_codec::ProtocolVersion::V3_2);
    /// # Ok::<(), qcp_codec::DecodeError>(())
    /// ```
    #[inline]
    pub const fn version(&self) -> ProtocolVersion {
        ProtocolVersion::from_u32(self.version)
    }

    /// The newest minor version the server supports for the requested major version.
    ///
    /// ```
    /// # let v = qcp_codec::backend::NegotiateProtocolVersion::decode(b"\0\x03\0\x02\0\0\0\0")?;
    /// assert_eq!(v.newest_minor(), 2);
    /// # Ok::<(), qcp_codec::DecodeError>(())
    /// ```
    #[inline]
    pub const fn newest_minor(&self) -> u16 {
        self.version().minor
    }

    /// The unrecognised protocol options, in wire order.
    ///
    /// ```
    /// # let v = qcp_codec::backend::NegotiateProtocolVersion::decode(b"\0\x03\0\x02\0\0\0\0")?;
    /// assert_eq!(v.options().count(), 0);
    /// # Ok::<(), qcp_codec::DecodeError>(())
    /// ```
    #[inline]
    pub const fn options(&self) -> CStrings<'a> {
        CStrings::new(self.options)
    }

    /// Appends this message to `out`, byte for byte as decoded.
    ///
    /// ```
    /// let body = b"\0\x03\0\x02\0\0\0\x01_pq_.a\0";
    /// let v = qcp_codec::backend::NegotiateProtocolVersion::decode(body)?;
    /// let mut out = Vec::new();
    /// v.encode(&mut out)?;
    /// assert_eq!(&out[5..], body);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        const SITE: &str = "NegotiateProtocolVersion";
        writer::message(
            out,
            Some(Tag::NEGOTIATE_PROTOCOL_VERSION),
            SITE,
            |w: &mut Writer<'_>| {
                w.u32(self.version);
                w.i32(i32::try_from(self.count).map_err(|_| EncodeError::TooLarge(SITE))?);
                w.bytes(self.options);
                Ok(())
            },
        )
    }
}

impl fmt::Debug for NegotiateProtocolVersion<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NegotiateProtocolVersion")
            .field("version", &self.version())
            .field("options", &self.options())
            .finish()
    }
}

/// ParameterStatus (`S`): `String name`, `String value`; the server reports a run-time
/// parameter (at startup, and whenever a reported setting changes).
///
/// ```
/// use qcp_codec::backend::ParameterStatus;
/// let p = ParameterStatus::decode(b"TimeZone\0UTC\0")?;
/// assert_eq!((p.name(), p.value()), (&b"TimeZone"[..], &b"UTC"[..]));
/// # Ok::<(), qcp_codec::DecodeError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ParameterStatus<'a> {
    name: &'a [u8],
    value: &'a [u8],
}

impl<'a> ParameterStatus<'a> {
    /// Decodes a ParameterStatus body.
    ///
    /// ```
    /// use qcp_codec::{backend::ParameterStatus, DecodeError};
    /// assert_eq!(ParameterStatus::decode(b"TimeZone\0UTC"), Err(DecodeError::MissingNul("ParameterStatus.value")));
    /// ```
    pub fn decode(body: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body);
        let name = r.cstr("ParameterStatus.name")?;
        let value = r.cstr("ParameterStatus.value")?;
        r.finish("ParameterStatus")?;
        Ok(Self { name, value })
    }

    /// Parameter name.
    ///
    /// ```
    /// # let p = qcp_codec::backend::ParameterStatus::decode(b"DateStyle\0ISO, MDY\0")?;
    /// assert_eq!(p.name(), b"DateStyle");
    /// # Ok::<(), qcp_codec::DecodeError>(())
    /// ```
    #[inline]
    pub const fn name(&self) -> &'a [u8] {
        self.name
    }

    /// [`ParameterStatus::name`] as UTF-8.
    ///
    /// ```
    /// # let p = qcp_codec::backend::ParameterStatus::decode(b"DateStyle\0ISO, MDY\0")?;
    /// assert_eq!(p.name_str()?, "DateStyle");
    /// # Ok::<(), qcp_codec::DecodeError>(())
    /// ```
    #[inline]
    pub fn name_str(&self) -> Result<&'a str, DecodeError> {
        utf8(self.name, "ParameterStatus.name")
    }

    /// Current value.
    ///
    /// ```
    /// # let p = qcp_codec::backend::ParameterStatus::decode(b"DateStyle\0ISO, MDY\0")?;
    /// assert_eq!(p.value(), b"ISO, MDY");
    /// # Ok::<(), qcp_codec::DecodeError>(())
    /// ```
    #[inline]
    pub const fn value(&self) -> &'a [u8] {
        self.value
    }

    /// [`ParameterStatus::value`] as UTF-8.
    ///
    /// ```
    /// # let p = qcp_codec::backend::ParameterStatus::decode(b"DateStyle\0ISO, MDY\0")?;
    /// assert_eq!(p.value_str()?, "ISO, MDY");
    /// # Ok::<(), qcp_codec::DecodeError>(())
    /// ```
    #[inline]
    pub fn value_str(&self) -> Result<&'a str, DecodeError> {
        utf8(self.value, "ParameterStatus.value")
    }

    /// Appends this message to `out`.
    ///
    /// ```
    /// let p = qcp_codec::backend::ParameterStatus::decode(b"a\0b\0")?;
    /// let mut out = Vec::new();
    /// p.encode(&mut out)?;
    /// assert_eq!(out, b"S\0\0\0\x08a\0b\0");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        crate::encode::parameter_status(out, self.name, self.value)
    }
}

impl fmt::Debug for ParameterStatus<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ParameterStatus")
            .field("name", &Bytes(self.name))
            .field("value", &Bytes(self.value))
            .finish()
    }
}

/// NotificationResponse (`A`): `Int32 pid`, `String channel`, `String payload`; a NOTIFY
/// delivered to a listening session.
///
/// ```
/// use qcp_codec::backend::NotificationResponse;
/// let n = NotificationResponse::decode(b"\0\0\0\x2ajobs\0run 7\0")?;
/// assert_eq!((n.pid(), n.channel(), n.payload()), (42, &b"jobs"[..], &b"run 7"[..]));
/// # Ok::<(), qcp_codec::DecodeError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct NotificationResponse<'a> {
    pid: i32,
    channel: &'a [u8],
    payload: &'a [u8],
}

impl<'a> NotificationResponse<'a> {
    /// Decodes a NotificationResponse body.
    ///
    /// ```
    /// use qcp_codec::{backend::NotificationResponse, DecodeError};
    /// assert_eq!(NotificationResponse::decode(b"\0\0"), Err(DecodeError::Truncated("NotificationResponse.pid")));
    /// ```
    pub fn decode(body: &'a [u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body);
        let pid = r.i32("NotificationResponse.pid")?;
        let channel = r.cstr("NotificationResponse.channel")?;
        let payload = r.cstr("NotificationResponse.payload")?;
        r.finish("NotificationResponse")?;
        Ok(Self {
            pid,
            channel,
            payload,
        })
    }

    /// Process id of the notifying backend.
    ///
    /// ```
    /// # let n = qcp_codec::backend::NotificationResponse::decode(b"\0\0\0\x01c\0p\0")?;
    /// assert_eq!(n.pid(), 1);
    /// # Ok::<(), qcp_codec::DecodeError>(())
    /// ```
    #[inline]
    pub const fn pid(&self) -> i32 {
        self.pid
    }

    /// Channel name.
    ///
    /// ```
    /// # let n = qcp_codec::backend::NotificationResponse::decode(b"\0\0\0\x01c\0p\0")?;
    /// assert_eq!(n.channel(), b"c");
    /// # Ok::<(), qcp_codec::DecodeError>(())
    /// ```
    #[inline]
    pub const fn channel(&self) -> &'a [u8] {
        self.channel
    }

    /// [`NotificationResponse::channel`] as UTF-8.
    ///
    /// ```
    /// # let n = qcp_codec::backend::NotificationResponse::decode(b"\0\0\0\x01c\0p\0")?;
    /// assert_eq!(n.channel_str()?, "c");
    /// # Ok::<(), qcp_codec::DecodeError>(())
    /// ```
    #[inline]
    pub fn channel_str(&self) -> Result<&'a str, DecodeError> {
        utf8(self.channel, "NotificationResponse.channel")
    }

    /// Payload (may be empty).
    ///
    /// ```
    /// # let n = qcp_codec::backend::NotificationResponse::decode(b"\0\0\0\x01c\0p\0")?;
    /// assert_eq!(n.payload(), b"p");
    /// # Ok::<(), qcp_codec::DecodeError>(())
    /// ```
    #[inline]
    pub const fn payload(&self) -> &'a [u8] {
        self.payload
    }

    /// [`NotificationResponse::payload`] as UTF-8.
    ///
    /// ```
    /// # let n = qcp_codec::backend::NotificationResponse::decode(b"\0\0\0\x01c\0p\0")?;
    /// assert_eq!(n.payload_str()?, "p");
    /// # Ok::<(), qcp_codec::DecodeError>(())
    /// ```
    #[inline]
    pub fn payload_str(&self) -> Result<&'a str, DecodeError> {
        utf8(self.payload, "NotificationResponse.payload")
    }

    /// Appends this message to `out`.
    ///
    /// ```
    /// let n = qcp_codec::backend::NotificationResponse::decode(b"\0\0\0\x01c\0p\0")?;
    /// let mut out = Vec::new();
    /// n.encode(&mut out)?;
    /// assert_eq!(out, b"A\0\0\0\x0c\0\0\0\x01c\0p\0");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        crate::encode::notification_response(out, self.pid, self.channel, self.payload)
    }
}

impl fmt::Debug for NotificationResponse<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NotificationResponse")
            .field("pid", &self.pid)
            .field("channel", &Bytes(self.channel))
            .field("payload", &Bytes(self.payload))
            .finish()
    }
}
