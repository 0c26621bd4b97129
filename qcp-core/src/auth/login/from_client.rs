//! A client logging in to qcp, sans-IO: its first packet (in [`super::opening`]), its
//! authentication, and the greeting qcp answers with. The driver reads, writes, finds the
//! pool and registers the client; every protocol decision is here.

use qcp_codec::auth::{PasswordMessage, SaslInitialResponse, SaslResponse};
use qcp_codec::{encode, Tag, TransactionStatus};

use crate::auth::{
    md5_verify, Binding, ScramError, ScramSecret, ScramServer, Secret, SCRAM_SHA_256,
    SCRAM_SHA_256_PLUS,
};
use crate::config::AuthMethod;
use crate::errors::{sqlstate, PgError, Refusal};

pub use super::opening::{
    parse_bool, protocol_violation, read_opening, Opening, OwnedStartup, TlsOffer,
};

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

#[cfg(test)]
mod tests;
