//! Server connections: connecting, logging in to PostgreSQL, internal queries, health checks.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use qcp_codec::auth::Authentication;
use qcp_codec::{encode, BackendMessage, Header, Limits, ProtocolVersion, Tag, TransactionStatus};

use super::clients::{CancelGate, CancelTarget};
use super::engine::Registration;
use super::io::{connect, has_input_or_closed, timeout, write_all, Inbox, ReadError, Socket};
use crate::auth::{
    md5_response, md5_response_from_hash, SaltedPasswordCache, ScramClient, ScramCredentials,
    SCRAM_SHA_256,
};
use crate::errors::{sqlstate, PgError};
use crate::relay::params::Params;
use crate::relay::session::Backend;

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

/// Why a server connection could not be opened or used.
#[derive(Debug)]
pub enum ServerError {
    /// TCP connect failed or timed out.
    Connect(io::Error),
    /// The server refused the login or a query with this ErrorResponse (raw message bytes,
    /// SQLSTATE, message), which is passed on to the client as the server sent it.
    Rejected {
        message: Vec<u8>,
        code: String,
        text: String,
    },
    /// The server asked for an authentication qcp cannot answer.
    Auth(String),
    /// The server sent something that is not valid protocol.
    Protocol(String),
    /// The server closed the connection.
    Closed,
    /// No answer in time.
    TimedOut,
}

impl ServerError {
    /// The error to show a client, as FATAL (the client's connection ends) or ERROR.
    pub fn to_client(&self, server: &str, fatal: bool) -> Vec<u8> {
        if let ServerError::Rejected { message, .. } = self {
            return message.clone();
        }
        let (code, text, hint) = match self {
            ServerError::Connect(error) => (
                sqlstate::CONNECTION_FAILURE,
                format!("qcp could not connect to server {server}: {error}"),
                "check that the server is running and that servers[].address in qcp's config is right",
            ),
            ServerError::Auth(reason) => (
                sqlstate::INVALID_AUTHORIZATION,
                format!("qcp could not log in to server {server}: {reason}"),
                "give this user a password (or the server's own SCRAM secret) in qcp's config under users",
            ),
            ServerError::Protocol(reason) => (
                sqlstate::PROTOCOL_VIOLATION,
                format!("server {server} sent invalid protocol data: {reason}"),
                "check that servers[].address points at a PostgreSQL server",
            ),
            ServerError::Closed => (
                sqlstate::CONNECTION_FAILURE,
                format!("server {server} closed the connection unexpectedly"),
                "the server may have restarted or terminated the backend; retry the transaction",
            ),
            ServerError::TimedOut => (
                sqlstate::CONNECTION_FAILURE,
                format!("server {server} did not answer in time"),
                "check the server's health, or raise timeouts.server_connect",
            ),
            ServerError::Rejected { .. } => unreachable_rejected(),
        };
        let error = if fatal {
            PgError::fatal(code, text)
        } else {
            PgError::error(code, text)
        };
        error.with_hint(hint).to_bytes()
    }
}

fn unreachable_rejected() -> (&'static str, String, &'static str) {
    (sqlstate::INTERNAL_ERROR, "internal error".into(), "")
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerError::Connect(error) => write!(f, "connect failed: {error}"),
            ServerError::Rejected { code, text, .. } => write!(f, "server error {code}: {text}"),
            ServerError::Auth(reason) => write!(f, "cannot authenticate: {reason}"),
            ServerError::Protocol(reason) => write!(f, "protocol error: {reason}"),
            ServerError::Closed => write!(f, "connection closed by server"),
            ServerError::TimedOut => write!(f, "timed out"),
        }
    }
}

impl From<ReadError> for ServerError {
    fn from(error: ReadError) -> Self {
        match error {
            ReadError::Closed => ServerError::Closed,
            ReadError::Io(error) => ServerError::Connect(error),
            ReadError::Protocol(error) => ServerError::Protocol(error.to_string()),
            ReadError::TooLarge(len) => ServerError::Protocol(format!(
                "a {len}-byte message where a small one was expected"
            )),
        }
    }
}

/// The driver's part of a server connection: the socket and what identifies the backend.
pub struct ServerIo {
    /// The socket.
    pub socket: Socket,
    /// Index of the server in the config's `servers`.
    pub server: usize,
    /// When it was opened.
    pub born: Instant,
    /// Where it is and its BackendKeyData (where a cancel goes), and the cancels on their
    /// way to it.
    pub cancel: Arc<CancelTarget>,
    /// The engine thread it is registered with, once a client used it there.
    pub reg: Option<Registration>,
}

/// One logged-in connection to a PostgreSQL server: the driver's part (`io`) and the relay's
/// protocol state.
pub type ServerConn = Backend<ServerIo>;

impl fmt::Debug for ServerIo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerConn")
            .field("server", &self.server)
            .field("pid", &self.cancel.pid)
            .finish_non_exhaustive()
    }
}

/// Everything `open` needs besides the target.
pub struct LoginContext<'a> {
    /// A chunk to read the server's replies into.
    pub inbox: &'a mut Inbox,
    /// Bounds the whole connect + login.
    pub limit: Duration,
    /// Message size limits.
    pub limits: Limits,
    /// Shared cache of SCRAM salted passwords.
    pub scram_cache: &'a Arc<SaltedPasswordCache>,
}

/// Opens a connection to `address` and logs in as `credentials.user` to `database`.
pub async fn open(
    server: usize,
    address: &str,
    database: &str,
    credentials: &Credentials,
    context: LoginContext<'_>,
) -> Result<Box<ServerConn>, ServerError> {
    let limit = context.limit;
    let socket = connect(address, limit)
        .await
        .map_err(ServerError::Connect)?;
    let peer = socket.get_ref().peer_addr().map_err(ServerError::Connect)?;
    match timeout(
        limit,
        login(socket, server, peer, database, credentials, context),
    )
    .await
    {
        Ok(result) => result.map(Box::new),
        Err(_) => Err(ServerError::TimedOut),
    }
}

async fn login(
    socket: Socket,
    server: usize,
    address: SocketAddr,
    database: &str,
    credentials: &Credentials,
    context: LoginContext<'_>,
) -> Result<ServerConn, ServerError> {
    let LoginContext {
        inbox,
        limits,
        scram_cache,
        ..
    } = context;
    let mut out = Vec::with_capacity(128);
    encode::startup(
        &mut out,
        ProtocolVersion::V3_0,
        &[("user", &credentials.user), ("database", database)],
    )
    .map_err(|e| ServerError::Auth(format!("cannot encode the start-up packet: {e}")))?;
    write_all(&socket, &out)
        .await
        .map_err(ServerError::Connect)?;

    let io = ServerIo {
        socket,
        server,
        born: Instant::now(),
        cancel: Arc::new(CancelTarget {
            address,
            pid: 0,
            secret: Vec::new(),
            gate: CancelGate::default(),
        }),
        reg: None,
    };
    let mut conn = ServerConn::new(io, Params::new());
    let mut scram: Option<ScramClient> = None;
    loop {
        let header = inbox.message(&conn.io.socket, &limits).await?;
        let body = inbox.body(&header);
        out.clear();
        let message = BackendMessage::decode_body(header.tag, body)
            .map_err(|e| ServerError::Protocol(e.to_string()))?;
        match message {
            BackendMessage::Authentication(request) => {
                answer_auth(request, credentials, &mut scram, scram_cache, &mut out)?;
            }
            BackendMessage::ParameterStatus(status) => {
                if let (Ok(name), Ok(value)) = (status.name_str(), status.value_str()) {
                    conn.params.set(name, value);
                }
            }
            BackendMessage::BackendKeyData(key) => {
                conn.io.cancel = Arc::new(CancelTarget {
                    address,
                    pid: key.pid(),
                    secret: key.secret().to_vec(),
                    gate: CancelGate::default(),
                });
            }
            BackendMessage::ReadyForQuery(_) => {
                inbox.consume(header.frame_len());
                return Ok(conn);
            }
            BackendMessage::ErrorResponse(error) => {
                return Err(rejected(
                    header,
                    inbox.unread(),
                    error.sqlstate(),
                    error.message(),
                ));
            }
            // Notices and a NegotiateProtocolVersion (we ask for 3.0, which every server
            // speaks) need no answer.
            _ => {}
        }
        inbox.consume(header.frame_len());
        if !out.is_empty() {
            write_all(&conn.io.socket, &out)
                .await
                .map_err(ServerError::Connect)?;
        }
    }
}

fn rejected(
    header: Header,
    unread: &[u8],
    code: Option<&[u8]>,
    text: Option<&[u8]>,
) -> ServerError {
    ServerError::Rejected {
        message: unread
            .get(..header.frame_len())
            .unwrap_or_default()
            .to_vec(),
        code: String::from_utf8_lossy(code.unwrap_or(b"XX000")).into_owned(),
        text: String::from_utf8_lossy(text.unwrap_or(b"")).into_owned(),
    }
}

fn answer_auth(
    request: Authentication<'_>,
    credentials: &Credentials,
    scram: &mut Option<ScramClient>,
    cache: &Arc<SaltedPasswordCache>,
    out: &mut Vec<u8>,
) -> Result<(), ServerError> {
    let encode_error =
        |e: qcp_codec::EncodeError| ServerError::Auth(format!("cannot encode the reply: {e}"));
    match request {
        Authentication::Ok => Ok(()),
        Authentication::CleartextPassword => {
            let password = credentials.password.as_deref().ok_or_else(|| {
                ServerError::Auth(format!(
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
                return Err(ServerError::Auth(format!(
                    "the server asks for an md5 password for {:?}, and qcp has neither the password nor its md5 hash",
                    credentials.user
                )));
            };
            encode::password(out, response).map_err(encode_error)
        }
        Authentication::Sasl(mechanisms) => {
            if !mechanisms.iter().any(|m| m == SCRAM_SHA_256.as_bytes()) {
                return Err(ServerError::Auth(
                    "the server offers no SASL mechanism qcp supports (SCRAM-SHA-256)".into(),
                ));
            }
            let scram_credentials = if let Some(password) = &credentials.password {
                ScramCredentials::Password(password.clone())
            } else if let Some(keys) = &credentials.scram_keys {
                keys.clone()
            } else {
                return Err(ServerError::Auth(format!(
                    "the server asks for SCRAM-SHA-256 and qcp has no password for {:?}; with only a SCRAM secret configured, a client must log in with SCRAM first so qcp can reuse its proof",
                    credentials.user
                )));
            };
            let mut client = ScramClient::new(scram_credentials).with_cache(Arc::clone(cache));
            let first = client.client_first();
            encode::sasl_initial_response(out, SCRAM_SHA_256, Some(&first))
                .map_err(encode_error)?;
            *scram = Some(client);
            Ok(())
        }
        Authentication::SaslContinue(data) => {
            let client = scram
                .as_mut()
                .ok_or_else(|| ServerError::Protocol("SASLContinue before SASL".into()))?;
            let reply = client
                .handle_server_first(data)
                .map_err(|e| ServerError::Auth(e.to_string()))?;
            encode::sasl_response(out, &reply).map_err(encode_error)
        }
        Authentication::SaslFinal(data) => {
            let client = scram
                .as_mut()
                .ok_or_else(|| ServerError::Protocol("SASLFinal before SASL".into()))?;
            client
                .handle_server_final(data)
                .map_err(|e| ServerError::Auth(e.to_string()))
        }
        other => Err(ServerError::Auth(format!(
            "the server asks for an authentication method qcp does not support ({other:?})"
        ))),
    }
}

impl ServerConn {
    /// The backend's process id (from its BackendKeyData).
    pub fn pid(&self) -> i32 {
        self.io.cancel.pid
    }

    /// True if the connection is still usable after sitting idle: an idle backend says
    /// nothing, so any input (typically a FATAL before it closes) or EOF means it is gone.
    pub fn is_healthy(&self) -> bool {
        !has_input_or_closed(&self.io.socket)
    }

    /// Runs `sql` as a simple query whose results nobody sees. ParameterStatus messages
    /// update `self.params` and are passed to `on_param`. Fails with the server's error, after
    /// reading up to its ReadyForQuery, so the connection stays usable (unless it closed).
    pub async fn run_internal(
        &mut self,
        sql: &str,
        inbox: &mut Inbox,
        limits: &Limits,
        mut on_param: impl FnMut(&str, &str),
    ) -> Result<TransactionStatus, ServerError> {
        let mut out = Vec::with_capacity(sql.len() + 6);
        encode::query(&mut out, sql).map_err(|e| ServerError::Protocol(e.to_string()))?;
        write_all(&self.io.socket, &out)
            .await
            .map_err(ServerError::Connect)?;
        let mut failure = None;
        loop {
            let header = inbox.message(&self.io.socket, limits).await?;
            let body = inbox.body(&header);
            match header.tag {
                Tag::PARAMETER_STATUS => {
                    if let Ok(BackendMessage::ParameterStatus(status)) =
                        BackendMessage::decode_body(header.tag, body)
                    {
                        if let (Ok(name), Ok(value)) = (status.name_str(), status.value_str()) {
                            self.params.set(name, value);
                            on_param(name, value);
                        }
                    }
                }
                Tag::ERROR_RESPONSE => {
                    if let Ok(BackendMessage::ErrorResponse(error)) =
                        BackendMessage::decode_body(header.tag, body)
                    {
                        failure = Some(rejected(
                            header,
                            inbox.unread(),
                            error.sqlstate(),
                            error.message(),
                        ));
                    }
                }
                Tag::READY_FOR_QUERY => {
                    let status = match BackendMessage::decode_body(header.tag, body) {
                        Ok(BackendMessage::ReadyForQuery(status)) => status,
                        _ => return Err(ServerError::Protocol("invalid ReadyForQuery".into())),
                    };
                    inbox.consume(header.frame_len());
                    return match failure {
                        Some(error) => Err(error),
                        None => Ok(status),
                    };
                }
                _ => {}
            }
            inbox.consume(header.frame_len());
        }
    }
}
