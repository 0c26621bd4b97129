//! A client's first packets, sans-IO: encryption requests, a cancel request, the start-up
//! packet, and the refusal of anything else exactly as PostgreSQL refuses it (the same error
//! fields, in the same layout, or no word at all where PostgreSQL only logs and closes). The
//! rules are in docs/protocol.md, "Refusing a start-up packet".

use qcp_codec::startup::{CANCEL_REQUEST_CODE, GSS_ENC_REQUEST_CODE, SSL_REQUEST_CODE};
use qcp_codec::{Limits, ProtocolVersion, StartupPacket};

use crate::errors::{sqlstate, PgError, Refusal};
use crate::relay::params::parse_options;

/// What qcp can offer a client about encryption (from `client_tls`), and where it stands.
#[derive(Debug, Clone, Copy, Default)]
pub struct TlsOffer {
    /// TLS can be started: `client_tls` has a certificate and is not disabled.
    pub available: bool,
    /// Clear-text start-up packets are refused (`client_tls.mode: require`).
    pub required: bool,
    /// The connection is already encrypted: neither request is one any more.
    pub encrypted: bool,
    /// An SSLRequest was answered `N` already: another is not a request but, as PostgreSQL
    /// reads it, a start-up packet for an unknown protocol.
    pub ssl_declined: bool,
    /// A GSSENCRequest was answered `N` already (the same rule).
    pub gss_declined: bool,
}

/// The first byte of a TLS handshake record: a client that starts TLS at once (PostgreSQL
/// 17's `sslnegotiation=direct`) sends it where a start-up packet's length would begin, and
/// no valid length starts with it (start-up packets are far shorter than 0x16000000 bytes).
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// PostgreSQL's log line for every start-up packet it closes on without a reply.
const INVALID_LENGTH: &str = "invalid length of startup packet";

/// What a client's first packet asked for.
#[derive(Debug)]
pub enum Opening {
    /// An SSLRequest answered `S` in `out`: the TLS handshake follows.
    StartTls {
        /// Bytes came in clear right behind the request: this refusal follows the handshake.
        injected: Option<PgError>,
    },
    /// The client began a TLS handshake without asking (direct TLS); nothing was consumed.
    DirectTls,
    /// An SSLRequest or GSSENCRequest, answered `N` in `out`: the client goes on in clear.
    Encryption {
        /// Bytes came in clear right behind the request: this refusal follows the `N`.
        injected: Option<PgError>,
    },
    /// A CancelRequest.
    Cancel {
        /// The process id qcp issued.
        pid: i32,
        /// The cancel secret qcp issued.
        secret: Vec<u8>,
    },
    /// A start-up packet.
    Startup(Box<OwnedStartup>),
}

/// Decodes the client's first packet from `input`. `Ok(None)`: more bytes are needed;
/// `Ok(Some((opening, used)))`: `used` bytes were consumed; an error is what the client must
/// be told (or [`Refusal::Hangup`]: nothing) before its connection is closed. A request
/// answered `N` is recorded in `tls` (the caller records a TLS handshake, `encrypted`).
pub fn read_opening(
    input: &[u8],
    limits: &Limits,
    tls: &mut TlsOffer,
    out: &mut Vec<u8>,
) -> Result<Option<(Opening, usize)>, Refusal> {
    if input.first() == Some(&TLS_HANDSHAKE_RECORD) && !tls.encrypted {
        if tls.available {
            return Ok(Some((Opening::DirectTls, 0)));
        }
        // Read as a length, the record's first bytes are far over the limit.
        return Err(Refusal::Hangup(INVALID_LENGTH));
    }
    let (body, used) = match StartupPacket::frame(input, limits) {
        Ok(Some(framed)) => framed,
        Ok(None) => return Ok(None),
        Err(_) => return Err(Refusal::Hangup(INVALID_LENGTH)),
    };
    let code = match body.get(..4).and_then(|c| <[u8; 4]>::try_from(c).ok()) {
        Some(code) => u32::from_be_bytes(code),
        None => return Err(Refusal::Hangup(INVALID_LENGTH)),
    };
    // Anything sent before the answer to an encryption request could be read as if it came
    // over the encrypted channel (CVE-2021-23214 class): it is refused once answered.
    let injected = |request: &str| {
        (input.len() > used).then(|| {
            protocol_violation(format!("received unencrypted data after {request}"))
                .with_detail("This could be either a client-software bug or evidence of an attempted man-in-the-middle attack.")
        })
    };
    // As PostgreSQL: whatever follows the code of an encryption request is ignored.
    let opening = match code {
        SSL_REQUEST_CODE if !tls.ssl_declined && !tls.encrypted => {
            let injected = injected("SSL request");
            if tls.available {
                out.push(b'S');
                Opening::StartTls { injected }
            } else {
                out.push(b'N');
                tls.ssl_declined = true;
                Opening::Encryption { injected }
            }
        }
        GSS_ENC_REQUEST_CODE if !tls.gss_declined && !tls.encrypted => {
            out.push(b'N');
            tls.gss_declined = true;
            Opening::Encryption {
                injected: injected("GSSAPI encryption request"),
            }
        }
        // A cancel of any other length is only logged by PostgreSQL.
        CANCEL_REQUEST_CODE => match StartupPacket::decode_body(body) {
            Ok(StartupPacket::Cancel(cancel)) => Opening::Cancel {
                pid: cancel.pid(),
                secret: cancel.secret().to_vec(),
            },
            _ => return Err(Refusal::Hangup(INVALID_LENGTH)),
        },
        _ => Opening::Startup(Box::new(startup(code, body, *tls)?)),
    };
    Ok(Some((opening, used)))
}

/// A start-up packet (or what PostgreSQL takes for one: any other code, an encryption
/// request already answered included), checked in PostgreSQL's order: the version, the
/// layout, the parameters, the user; then `client_tls.mode: require`, which stands where
/// PostgreSQL's `hostssl` rules would.
fn startup(code: u32, body: &[u8], tls: TlsOffer) -> Result<OwnedStartup, Refusal> {
    let version = ProtocolVersion::from_u32(code);
    if version.major != 3 {
        let error = PgError::fatal(
            sqlstate::FEATURE_NOT_SUPPORTED,
            format!(
                "unsupported frontend protocol {version}: server supports {}.0 to {}",
                ProtocolVersion::V3_2.major,
                ProtocolVersion::V3_2
            ),
        );
        // A client of protocol 1 or 2 could not read protocol 3's ErrorResponse. A code of 0
        // is PostgreSQL's "no protocol yet", which gets protocol 3's layout.
        return Err(if version.major < 3 && code != 0 {
            Refusal::Protocol2(error)
        } else {
            Refusal::Error(error)
        });
    }
    // With a 3.x code, decoding fails only on the layout of the parameter list.
    let Ok(StartupPacket::Startup(decoded)) = StartupPacket::decode_body(body) else {
        return Err(protocol_violation(
            "invalid startup packet layout: expected terminator as last byte",
        )
        .into());
    };
    let owned = OwnedStartup::from(&decoded)?;
    if tls.required && !tls.encrypted {
        return Err(PgError::fatal(
            sqlstate::INVALID_AUTHORIZATION,
            "qcp accepts only encrypted connections (client_tls.mode is require)",
        )
        .with_hint("connect with sslmode=require (or verify-ca, verify-full)")
        .into());
    }
    Ok(owned)
}

/// The start-up packet's contents, owned.
#[derive(Debug)]
pub struct OwnedStartup {
    /// The protocol version asked for (some 3.x).
    pub version: ProtocolVersion,
    /// The role name.
    pub user: String,
    /// The database (the user's name when none was given).
    pub database: String,
    /// Settings to apply on server connections (from parameters and `options`).
    pub settings: Vec<(String, String)>,
    /// `_pq_.` protocol options, none of which qcp supports.
    pub protocol_options: Vec<String>,
}

impl OwnedStartup {
    fn from(startup: &qcp_codec::Startup<'_>) -> Result<Self, PgError> {
        let mut user = None;
        let mut database = None;
        let mut settings = Vec::new();
        let mut protocol_options = Vec::new();
        for (name, value) in startup.params() {
            let (Ok(name), Ok(value)) = (std::str::from_utf8(name), std::str::from_utf8(value))
            else {
                return Err(protocol_violation(
                    "start-up parameters must be valid UTF-8",
                ));
            };
            match name {
                "user" => user = Some(value.to_owned()),
                "database" => database = Some(value.to_owned()),
                // `database` asks for logical replication, a true value for physical.
                "replication" => match parse_bool(value) {
                    Some(false) => {}
                    None if value != "database" => {
                        return Err(PgError::fatal(
                            sqlstate::INVALID_PARAMETER_VALUE,
                            format!("invalid value for parameter \"replication\": \"{value}\""),
                        )
                        .with_hint("Valid values are: \"false\", 0, \"true\", 1, \"database\"."));
                    }
                    _ => {
                        return Err(PgError::fatal(
                            sqlstate::FEATURE_NOT_SUPPORTED,
                            "qcp does not relay replication connections",
                        )
                        .with_hint("connect replication clients to the server directly"));
                    }
                },
                "options" => {
                    let parsed = parse_options(value).map_err(|switch| {
                        PgError::fatal(
                            sqlstate::FEATURE_NOT_SUPPORTED,
                            format!("qcp cannot apply the start-up option {switch:?}"),
                        )
                        .with_hint("use -c name=value or --name=value in options")
                    })?;
                    settings.extend(parsed);
                }
                name if name.starts_with("_pq_.") => protocol_options.push(name.to_owned()),
                name => settings.push((name.to_owned(), value.to_owned())),
            }
        }
        let Some(user) = user.filter(|u| !u.is_empty()) else {
            return Err(PgError::fatal(
                sqlstate::INVALID_AUTHORIZATION,
                "no PostgreSQL user name specified in startup packet",
            ));
        };
        let database = database
            .filter(|d| !d.is_empty())
            .unwrap_or_else(|| user.clone());
        Ok(OwnedStartup {
            version: startup.version(),
            user,
            database,
            settings,
            protocol_options,
        })
    }

    /// Answers a minor version qcp does not speak, or `_pq_.` options, with
    /// NegotiateProtocolVersion: qcp speaks 3.0 and 3.2 (3.1 was never used by a release).
    pub fn negotiate_version(&self, out: &mut Vec<u8>) {
        let minor = self.version.minor;
        let supported = match minor {
            0 | 2 => minor,
            1 => 0,
            _ => 2,
        };
        if supported != minor || !self.protocol_options.is_empty() {
            let options: Vec<&[u8]> = self.protocol_options.iter().map(|o| o.as_bytes()).collect();
            let _ =
                qcp_codec::encode::negotiate_protocol_version(out, u32::from(supported), &options);
        }
    }

    /// The length of the cancel secret to issue: 32 bytes in protocol 3.2, 4 in 3.0.
    pub fn secret_len(&self) -> usize {
        if self.version.minor >= 2 {
            32
        } else {
            4
        }
    }
}

/// A boolean the way PostgreSQL reads one (`parse_bool`): any prefix of `true`, `false`,
/// `yes` or `no`, `on`, `of`/`off`, `1` or `0`, in any case; nothing else (no spaces).
pub fn parse_bool(value: &str) -> Option<bool> {
    let value = value.to_ascii_lowercase();
    let prefix_of = |word: &str| !value.is_empty() && word.starts_with(value.as_str());
    // A lone `o` could be either.
    let two = value.len() >= 2;
    match value.as_bytes().first()? {
        b't' if prefix_of("true") => Some(true),
        b'f' if prefix_of("false") => Some(false),
        b'y' if prefix_of("yes") => Some(true),
        b'n' if prefix_of("no") => Some(false),
        b'o' if two && prefix_of("on") => Some(true),
        b'o' if two && prefix_of("off") => Some(false),
        b'1' if value.len() == 1 => Some(true),
        b'0' if value.len() == 1 => Some(false),
        _ => None,
    }
}

/// A FATAL protocol_violation.
pub fn protocol_violation(message: impl Into<String>) -> PgError {
    PgError::fatal(sqlstate::PROTOCOL_VIOLATION, message)
}

#[cfg(test)]
mod tests;
