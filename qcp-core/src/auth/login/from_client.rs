//! A client logging in to qcp, sans-IO: its first packet, its authentication, and the
//! greeting qcp answers with. The driver reads, writes, finds the pool and registers the
//! client; every protocol decision is here.

use qcp_codec::auth::{PasswordMessage, SaslInitialResponse, SaslResponse};
use qcp_codec::{encode, Limits, ProtocolVersion, StartupPacket, Tag, TransactionStatus};

use crate::auth::{
    md5_verify, Binding, ScramError, ScramSecret, ScramServer, Secret, SCRAM_SHA_256,
    SCRAM_SHA_256_PLUS,
};
use crate::config::AuthMethod;
use crate::errors::{sqlstate, PgError, Refusal};
use crate::relay::params::parse_options;

/// What qcp can offer a client about encryption (from `client_tls`), and where it stands.
#[derive(Debug, Clone, Copy, Default)]
pub struct TlsOffer {
    /// TLS can be started: `client_tls` has a certificate and is not disabled.
    pub available: bool,
    /// Clear-text start-up packets are refused (`client_tls.mode: require`).
    pub required: bool,
    /// The connection is already encrypted.
    pub encrypted: bool,
}

/// The first byte of a TLS handshake record: a client that starts TLS at once (PostgreSQL
/// 17's `sslnegotiation=direct`) sends it where a start-up packet's length would begin, and
/// no valid length starts with it (start-up packets are far shorter than 0x16000000 bytes).
const TLS_HANDSHAKE_RECORD: u8 = 0x16;

/// What a client's first packet asked for.
#[derive(Debug)]
pub enum Opening {
    /// An SSLRequest answered `S` in `out`: the TLS handshake follows.
    StartTls,
    /// The client began a TLS handshake without asking (direct TLS); nothing was consumed.
    DirectTls,
    /// An SSLRequest or GSSENCRequest, answered `N` in `out`: the client goes on in clear.
    Encryption,
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
/// `Ok(Some((opening, used)))`: `used` bytes were consumed.
pub fn read_opening(
    input: &[u8],
    limits: &Limits,
    tls: TlsOffer,
    out: &mut Vec<u8>,
) -> Result<Option<(Opening, usize)>, PgError> {
    if input.first() == Some(&TLS_HANDSHAKE_RECORD) && !tls.encrypted {
        if tls.available {
            return Ok(Some((Opening::DirectTls, 0)));
        }
        return Err(protocol_violation(
            "the client started a TLS handshake, and qcp has no TLS for clients",
        )
        .with_hint("set client_tls in qcp's config, or connect without sslnegotiation=direct"));
    }
    let (packet, used) = match StartupPacket::decode(input, limits) {
        Ok(Some(decoded)) => decoded,
        Ok(None) => return Ok(None),
        Err(error) => {
            return Err(protocol_violation(format!(
                "invalid start-up packet: {error}"
            )))
        }
    };
    let opening = match packet {
        StartupPacket::SslRequest | StartupPacket::GssEncRequest => {
            // Anything sent before our answer could be read as if it came over the encrypted
            // channel (CVE-2021-23214 class): refuse it.
            if input.len() > used {
                return Err(protocol_violation(
                    "received unencrypted data after an encryption request",
                ));
            }
            let tls_now =
                matches!(packet, StartupPacket::SslRequest) && tls.available && !tls.encrypted;
            if tls_now {
                out.push(b'S');
                Opening::StartTls
            } else {
                out.push(b'N');
                Opening::Encryption
            }
        }
        StartupPacket::Cancel(cancel) => Opening::Cancel {
            pid: cancel.pid(),
            secret: cancel.secret().to_vec(),
        },
        StartupPacket::Startup(_) if tls.required && !tls.encrypted => {
            return Err(PgError::fatal(
                sqlstate::INVALID_AUTHORIZATION,
                "qcp accepts only encrypted connections (client_tls.mode is require)",
            )
            .with_hint("connect with sslmode=require (or verify-ca, verify-full)"));
        }
        StartupPacket::Startup(startup) => {
            Opening::Startup(Box::new(OwnedStartup::from(&startup)?))
        }
    };
    Ok(Some((opening, used)))
}

/// The start-up packet's contents, owned.
#[derive(Debug)]
pub struct OwnedStartup {
    /// The protocol version asked for.
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
        let version = startup.version();
        if version.major != 3 {
            return Err(PgError::fatal(
                sqlstate::FEATURE_NOT_SUPPORTED,
                format!(
                    "unsupported frontend protocol {}.{}: qcp supports 3.0 to 3.2",
                    version.major, version.minor
                ),
            ));
        }
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
                "replication" => {
                    if !matches!(
                        value.to_ascii_lowercase().as_str(),
                        "false" | "off" | "no" | "0"
                    ) {
                        return Err(PgError::fatal(
                            sqlstate::FEATURE_NOT_SUPPORTED,
                            "qcp does not relay replication connections",
                        )
                        .with_hint("connect replication clients to the server directly"));
                    }
                }
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
            version,
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
            let _ = encode::negotiate_protocol_version(out, u32::from(supported), &options);
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

/// What qcp knows of a configured user.
#[derive(Clone, Copy, Debug)]
pub struct UserSecrets<'a> {
    /// The SCRAM verifier (the configured secret, or one derived from a plaintext password).
    pub scram: Option<&'a ScramSecret>,
    /// The configured secret.
    pub secret: Option<&'a Secret>,
}

/// Where an authentication stands after a step.
#[derive(Debug, PartialEq, Eq)]
pub enum AuthStep {
    /// A request was written to `out`: send it and feed the client's next password message.
    Continue,
    /// Authenticated; the ClientKey a SCRAM login revealed, for pass-through logins.
    Done(Option<[u8; 32]>),
}

/// One client's authentication in progress.
pub struct Authenticator {
    user: String,
    state: AuthState,
}

enum AuthState {
    /// SCRAM, before the client's first message; `known`: a real user (else a mock
    /// exchange that fails at the end, so a client cannot tell which users exist).
    ScramFirst {
        server: ScramServer,
        known: bool,
        /// The channel-binding data of qcp's TLS certificate, when the client is on TLS.
        end_point: Option<Vec<u8>>,
    },
    ScramFinal {
        server: ScramServer,
        known: bool,
    },
    Md5 {
        salt: [u8; 4],
        secret: Option<Secret>,
    },
    Over,
}

impl Authenticator {
    /// Starts authenticating `user` with `method`. `known` is what qcp knows of the user
    /// (`None`: not configured); `mock_key` makes a believable SCRAM exchange for unknown
    /// users; `unknown_gets_scram` says which challenge an unknown user gets under md5 (the
    /// one most configured users get); `end_point` is the channel-binding data of qcp's
    /// certificate when the client is on TLS (SCRAM-SHA-256-PLUS is offered then). The first
    /// request goes to `out`.
    pub fn start(
        method: AuthMethod,
        user: &str,
        known: Option<UserSecrets<'_>>,
        mock_key: &[u8],
        unknown_gets_scram: bool,
        end_point: Option<&[u8]>,
        out: &mut Vec<u8>,
    ) -> (Authenticator, AuthStep) {
        let over = |step| {
            (
                Authenticator {
                    user: user.to_owned(),
                    state: AuthState::Over,
                },
                step,
            )
        };
        let use_scram = match method {
            AuthMethod::Trust => return over(AuthStep::Done(None)),
            AuthMethod::ScramSha256 => true,
            // As PostgreSQL does: an md5 method with a SCRAM-only secret uses SCRAM.
            AuthMethod::Md5 => match known {
                Some(known) => matches!(known.secret, Some(Secret::Scram(_))),
                None => unknown_gets_scram,
            },
        };
        let state = if use_scram {
            let verifier = known.and_then(|k| k.scram);
            let server = match verifier {
                Some(verifier) => ScramServer::new(verifier),
                None => ScramServer::new(&ScramSecret::mock(user, mock_key)),
            };
            // As PostgreSQL: -PLUS first, for clients that pick the first they support.
            let _ = match end_point {
                Some(_) => encode::authentication_sasl(out, &[SCRAM_SHA_256_PLUS, SCRAM_SHA_256]),
                None => encode::authentication_sasl(out, &[SCRAM_SHA_256]),
            };
            AuthState::ScramFirst {
                server,
                known: verifier.is_some(),
                end_point: end_point.map(<[u8]>::to_vec),
            }
        } else {
            let salt: [u8; 4] = rand::random();
            encode::authentication_md5_password(out, salt);
            AuthState::Md5 {
                salt,
                secret: known.and_then(|k| k.secret.cloned()),
            }
        };
        (
            Authenticator {
                user: user.to_owned(),
                state,
            },
            AuthStep::Continue,
        )
    }

    /// The client's next message (`tag`, `body`); what to answer goes to `out`. An error
    /// ends the login with what the client must be told.
    pub fn message(
        &mut self,
        tag: Tag,
        body: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<AuthStep, Refusal> {
        if tag != Tag::PASSWORD {
            return Err(protocol_violation(format!(
                "expected a password message, got message type {tag:?}"
            ))
            .into());
        }
        match std::mem::replace(&mut self.state, AuthState::Over) {
            AuthState::ScramFirst {
                mut server,
                known,
                end_point,
            } => {
                let initial = SaslInitialResponse::decode(body)
                    .map_err(|e| protocol_violation(e.to_string()))?;
                let mechanism = initial.mechanism();
                let binding = match end_point {
                    Some(end_point) if mechanism == SCRAM_SHA_256_PLUS.as_bytes() => {
                        Binding::Required(end_point)
                    }
                    Some(_) if mechanism == SCRAM_SHA_256.as_bytes() => Binding::Declined,
                    None if mechanism == SCRAM_SHA_256.as_bytes() => Binding::Unavailable,
                    _ => {
                        return Err(protocol_violation(
                            "client selected an invalid SASL authentication mechanism",
                        )
                        .into())
                    }
                };
                server.set_binding(binding);
                let first = initial
                    .data()
                    .ok_or_else(|| protocol_violation("SASLInitialResponse without data"))?;
                let reply = server
                    .handle_client_first(first)
                    .map_err(scram_protocol_error)?;
                let _ = encode::authentication_sasl_continue(out, &reply);
                self.state = AuthState::ScramFinal { server, known };
                Ok(AuthStep::Continue)
            }
            AuthState::ScramFinal { mut server, known } => {
                let response =
                    SaslResponse::decode(body).map_err(|e| protocol_violation(e.to_string()))?;
                match server.handle_client_final(response.data()) {
                    Ok(outcome) if known => {
                        let _ = encode::authentication_sasl_final(out, &outcome.server_final);
                        Ok(AuthStep::Done(Some(outcome.client_key)))
                    }
                    Ok(_) | Err(ScramError::InvalidProof) => Err(self.failed()),
                    Err(error) => Err(scram_protocol_error(error).into()),
                }
            }
            AuthState::Md5 { salt, secret } => {
                let password =
                    PasswordMessage::decode(body).map_err(|e| protocol_violation(e.to_string()))?;
                let ok = secret.as_ref().is_some_and(|secret| {
                    md5_verify(secret, &self.user, salt, password.password())
                });
                if ok {
                    Ok(AuthStep::Done(None))
                } else {
                    Err(self.failed())
                }
            }
            AuthState::Over => Err(protocol_violation("unexpected password message").into()),
        }
    }

    /// Wrong passwords and unknown users get the same answer.
    fn failed(&self) -> Refusal {
        PgError::fatal(
            sqlstate::INVALID_PASSWORD,
            format!("password authentication failed for user \"{}\"", self.user),
        )
        .into()
    }
}

/// The rest of the greeting after authentication: AuthenticationOk, the ParameterStatus
/// values the client's session starts with, its BackendKeyData, ReadyForQuery.
pub fn greeting<'a>(
    out: &mut Vec<u8>,
    params: impl Iterator<Item = (&'a str, &'a str)>,
    pid: i32,
    secret: &[u8],
) {
    encode::authentication_ok(out);
    for (name, value) in params {
        let _ = encode::parameter_status(out, name, value);
    }
    let _ = encode::backend_key_data(out, pid, secret);
    encode::ready_for_query(out, TransactionStatus::Idle);
}

fn scram_protocol_error(error: ScramError) -> PgError {
    match error {
        ScramError::ChannelBindingNotSupported => PgError::fatal(
            sqlstate::FEATURE_NOT_SUPPORTED,
            "SCRAM channel binding needs TLS and SCRAM-SHA-256-PLUS with tls-server-end-point",
        )
        .with_hint("connect with sslmode=require (qcp's client_tls) to bind, or with channel_binding=disable"),
        ScramError::ChannelBindingDowngrade => {
            protocol_violation("SCRAM channel binding negotiation error").with_hint(
                "the client supports channel binding but thinks qcp does not; something between them may have removed qcp's SCRAM-SHA-256-PLUS offer",
            )
        }
        other => protocol_violation(format!("malformed SCRAM message: {other}")),
    }
}

/// A FATAL protocol_violation.
pub fn protocol_violation(message: impl Into<String>) -> PgError {
    PgError::fatal(sqlstate::PROTOCOL_VIOLATION, message)
}

#[cfg(test)]
mod tests;
