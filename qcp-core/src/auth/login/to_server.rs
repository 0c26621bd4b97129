//! qcp logging in to a PostgreSQL server, sans-IO: the start-up packet out, then one server
//! message at a time in, the answers out, until ReadyForQuery.
//!
//! qcp answers whatever the server asks for that it can: SCRAM-SHA-256 (with the password,
//! or with the keys a client's own SCRAM login revealed), md5 (with the password or its
//! hash), cleartext, or nothing (trust).

use std::fmt;
use std::sync::Arc;

use qcp_codec::auth::Authentication;
use qcp_codec::{encode, BackendMessage, ProtocolVersion, Tag};

use crate::auth::{
    md5_response, md5_response_from_hash, SaltedPasswordCache, ScramClient, ScramCredentials,
    SCRAM_SHA_256, SCRAM_SHA_256_PLUS,
};
use crate::relay::params::Params;

/// What qcp logs in to a server with.
#[derive(Clone, Default)]
pub struct Credentials {
    /// The role name.
    pub user: String,
    /// A plaintext password, if configured.
    pub password: Option<String>,
    /// The md5 hash `md5(password || user)`, if configured instead of a plaintext password.
    pub md5: Option<[u8; 16]>,
    /// SCRAM keys recovered from a client's proof (pass-through), if only a SCRAM secret is
    /// configured.
    pub scram_keys: Option<ScramCredentials>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print secrets.
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("password", &self.password.is_some())
            .field("md5", &self.md5.is_some())
            .field("scram_keys", &self.scram_keys.is_some())
            .finish()
    }
}

/// Why a server login failed (the protocol part; connecting is the driver's).
#[derive(Debug)]
pub enum LoginError {
    /// The server refused with this ErrorResponse (its whole message, SQLSTATE, text),
    /// passed on to the client as the server sent it.
    Rejected {
        /// The ErrorResponse, header included.
        message: Vec<u8>,
        /// Its SQLSTATE.
        code: String,
        /// Its primary message.
        text: String,
    },
    /// The server asked for an authentication qcp cannot answer.
    Auth(String),
    /// The server sent something that is not valid protocol.
    Protocol(String),
}

/// What the server said it is, once logged in.
#[derive(Debug, Default)]
pub struct LoggedIn {
    /// The parameters it reported.
    pub params: Params,
    /// Its BackendKeyData: process id and cancel secret.
    pub key: Option<(i32, Vec<u8>)>,
}

/// One login in progress.
pub struct ServerLogin {
    credentials: Arc<Credentials>,
    cache: Arc<SaltedPasswordCache>,
    scram: Option<ScramClient>,
    /// The channel-binding data of the server's TLS certificate, when on TLS.
    end_point: Option<Vec<u8>>,
    done: LoggedIn,
}

impl ServerLogin {
    /// Starts a login as `credentials.user` to `database`: the start-up packet goes to `out`.
    pub fn start(
        credentials: Arc<Credentials>,
        database: &str,
        cache: Arc<SaltedPasswordCache>,
        out: &mut Vec<u8>,
    ) -> Result<Self, LoginError> {
        encode::startup(
            out,
            ProtocolVersion::V3_0,
            &[("user", &credentials.user), ("database", database)],
        )
        .map_err(|e| LoginError::Auth(format!("cannot encode the start-up packet: {e}")))?;
        Ok(ServerLogin {
            credentials,
            cache,
            scram: None,
            end_point: None,
            done: LoggedIn::default(),
        })
    }

    /// The connection is TLS and the server's certificate has the `tls-server-end-point`
    /// data `end_point`: a SCRAM login binds to it when the server offers
    /// SCRAM-SHA-256-PLUS.
    pub fn bind_to(&mut self, end_point: Vec<u8>) {
        self.end_point = Some(end_point);
    }

    /// One whole message from the server (`frame` is all of it, header included); what to
    /// answer goes to `out`. `Ok(Some(..))` once the server is ready for queries.
    pub fn message(
        &mut self,
        tag: Tag,
        body: &[u8],
        frame: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<Option<LoggedIn>, LoginError> {
        let message = BackendMessage::decode_body(tag, body)
            .map_err(|e| LoginError::Protocol(e.to_string()))?;
        match message {
            BackendMessage::Authentication(request) => self.answer(request, out)?,
            BackendMessage::ParameterStatus(status) => {
                if let (Ok(name), Ok(value)) = (status.name_str(), status.value_str()) {
                    self.done.params.set(name, value);
                }
            }
            BackendMessage::BackendKeyData(key) => {
                self.done.key = Some((key.pid(), key.secret().to_vec()));
            }
            BackendMessage::ReadyForQuery(_) => {
                return Ok(Some(std::mem::take(&mut self.done)));
            }
            BackendMessage::ErrorResponse(error) => {
                return Err(rejected(frame, error.sqlstate(), error.message()));
            }
            // Notices and a NegotiateProtocolVersion (qcp asks for 3.0, which every server
            // speaks) need no answer.
            _ => {}
        }
        Ok(None)
    }

    fn answer(&mut self, request: Authentication<'_>, out: &mut Vec<u8>) -> Result<(), LoginError> {
        let credentials = &self.credentials;
        let encode_error =
            |e: qcp_codec::EncodeError| LoginError::Auth(format!("cannot encode the reply: {e}"));
        match request {
            Authentication::Ok => Ok(()),
            Authentication::CleartextPassword => {
                let password = credentials.password.as_deref().ok_or_else(|| {
                    LoginError::Auth(format!(
                        "the server asks for the cleartext password of {:?}, and qcp has none",
                        credentials.user
                    ))
                })?;
                encode::password(out, password).map_err(encode_error)
            }
            Authentication::Md5Password { salt } => {
                let response = if let Some(password) = &credentials.password {
                    md5_response(&credentials.user, password, salt)
                } else if let Some(hash) = &credentials.md5 {
                    md5_response_from_hash(hash, salt)
                } else {
                    return Err(LoginError::Auth(format!(
                        "the server asks for an md5 password for {:?}, and qcp has neither the password nor its md5 hash",
                        credentials.user
                    )));
                };
                encode::password(out, response).map_err(encode_error)
            }
            Authentication::Sasl(mechanisms) => {
                if !mechanisms.iter().any(|m| m == SCRAM_SHA_256.as_bytes()) {
                    return Err(LoginError::Auth(
                        "the server offers no SASL mechanism qcp supports (SCRAM-SHA-256)".into(),
                    ));
                }
                let scram_credentials = if let Some(password) = &credentials.password {
                    ScramCredentials::Password(password.clone())
                } else if let Some(keys) = &credentials.scram_keys {
                    keys.clone()
                } else {
                    return Err(LoginError::Auth(format!(
                        "the server asks for SCRAM-SHA-256 and qcp has no password for {:?}; with only a SCRAM secret configured, a client must log in with SCRAM first so qcp can reuse its proof",
                        credentials.user
                    )));
                };
                let mut client =
                    ScramClient::new(scram_credentials).with_cache(Arc::clone(&self.cache));
                let plus = mechanisms
                    .iter()
                    .any(|m| m == SCRAM_SHA_256_PLUS.as_bytes());
                client = match (&self.end_point, plus) {
                    (Some(end_point), true) => client.with_channel_binding(end_point),
                    (Some(_), false) => client.could_bind(),
                    (None, _) => client,
                };
                let first = client.client_first();
                encode::sasl_initial_response(out, client.mechanism(), Some(&first))
                    .map_err(encode_error)?;
                self.scram = Some(client);
                Ok(())
            }
            Authentication::SaslContinue(data) => {
                let client = self
                    .scram
                    .as_mut()
                    .ok_or_else(|| LoginError::Protocol("SASLContinue before SASL".into()))?;
                let reply = client
                    .handle_server_first(data)
                    .map_err(|e| LoginError::Auth(e.to_string()))?;
                encode::sasl_response(out, &reply).map_err(encode_error)
            }
            Authentication::SaslFinal(data) => {
                let client = self
                    .scram
                    .as_mut()
                    .ok_or_else(|| LoginError::Protocol("SASLFinal before SASL".into()))?;
                client
                    .handle_server_final(data)
                    .map_err(|e| LoginError::Auth(e.to_string()))
            }
            other => Err(LoginError::Auth(format!(
                "the server asks for an authentication method qcp does not support ({other:?})"
            ))),
        }
    }
}

/// A server's ErrorResponse, kept whole for the client.
pub fn rejected(frame: &[u8], code: Option<&[u8]>, text: Option<&[u8]>) -> LoginError {
    LoginError::Rejected {
        message: frame.to_vec(),
        code: String::from_utf8_lossy(code.unwrap_or(b"XX000")).into_owned(),
        text: String::from_utf8_lossy(text.unwrap_or(b"")).into_owned(),
    }
}

#[cfg(test)]
mod tests;
