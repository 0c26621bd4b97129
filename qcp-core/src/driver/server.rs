//! Server connections: connecting, logging in to PostgreSQL, internal queries, health checks.

use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use qcp_codec::{encode, BackendMessage, Limits, Tag, TransactionStatus};

use super::clients::{CancelGate, CancelTarget, ServerInfo};
use super::engine::Registration;
use super::io::{connect, has_input_or_closed, timeout, Inbox, ReadError, Remote, Stream};
use crate::auth::login::to_server::rejected;
pub use crate::auth::login::Credentials;
use crate::auth::login::{LoginError, ServerLogin};
use crate::auth::SaltedPasswordCache;
use crate::errors::{sqlstate, PgError};
use crate::relay::session::Backend;
use crate::tls::ServerSide;

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
    /// TLS could not be set up: the server declined it where it is required, the handshake
    /// failed, or its certificate was not accepted.
    Tls(String),
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
            ServerError::Tls(reason) => (
                sqlstate::CONNECTION_FAILURE,
                format!("qcp could not set up TLS with server {server}: {reason}"),
                "check servers[].tls in qcp's config (mode, ca) against the server's certificate and its ssl setting",
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
            ServerError::Tls(reason) => write!(f, "TLS failed: {reason}"),
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

/// The driver's part of a server connection: the stream and what identifies the backend.
pub struct ServerIo {
    /// The connection, clear or under TLS.
    pub stream: Stream,
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
    /// TLS towards this server (`None`: clear text).
    pub tls: Option<&'a ServerSide>,
    /// The id SHOW SERVERS gives the connection.
    pub id: u64,
}

/// Opens a connection to `address` and logs in as `credentials.user` to `database`.
pub async fn open(
    server: usize,
    address: &str,
    database: &str,
    credentials: &Arc<Credentials>,
    context: LoginContext<'_>,
) -> Result<Box<ServerConn>, ServerError> {
    let limit = context.limit;
    let (socket, peer) = connect(address, limit)
        .await
        .map_err(ServerError::Connect)?;
    match timeout(
        limit,
        login(
            Stream::plain(socket),
            server,
            peer,
            database,
            credentials,
            context,
        ),
    )
    .await
    {
        Ok(result) => result.map(Box::new),
        Err(_) => Err(ServerError::TimedOut),
    }
}

async fn login(
    mut stream: Stream,
    server: usize,
    address: Remote,
    database: &str,
    credentials: &Arc<Credentials>,
    context: LoginContext<'_>,
) -> Result<ServerConn, ServerError> {
    let LoginContext {
        inbox,
        limits,
        scram_cache,
        tls,
        id,
        ..
    } = context;
    if let Some(tls) = tls {
        start_tls(&mut stream, tls).await?;
    }
    let mut out = Vec::with_capacity(128);
    let mut login = ServerLogin::start(
        Arc::clone(credentials),
        database,
        Arc::clone(scram_cache),
        &mut out,
    )?;
    if let Some(end_point) = stream.peer_end_point() {
        login.bind_to(end_point);
    }
    stream.write_all(&out).await.map_err(ServerError::Connect)?;
    loop {
        let header = inbox.message(&mut stream, &limits).await?;
        out.clear();
        let frame = inbox.unread().get(..header.frame_len()).unwrap_or_default();
        let done = login.message(header.tag, inbox.body(&header), frame, &mut out)?;
        inbox.consume(header.frame_len());
        if let Some(done) = done {
            let (pid, secret) = done.key.unwrap_or_default();
            let info = ServerInfo {
                id,
                user: credentials.user.clone(),
                database: database.to_owned(),
                local: stream.socket().local_end(),
                connected: std::time::SystemTime::now(),
                tls: stream.tls_description(),
                linked_at: Default::default(),
                prepared: Default::default(),
            };
            let io = ServerIo {
                stream,
                server,
                born: Instant::now(),
                cancel: Arc::new(CancelTarget {
                    address,
                    pid,
                    secret,
                    gate: CancelGate::default(),
                    info,
                }),
                reg: None,
            };
            return Ok(ServerConn::new(io, done.params));
        }
        if !out.is_empty() {
            stream.write_all(&out).await.map_err(ServerError::Connect)?;
        }
    }
}

/// Asks the server for TLS (SSLRequest) and, if it agrees, does the handshake; a server that
/// declines is fine only where `tls.mode` allows clear text.
async fn start_tls(stream: &mut Stream, tls: &ServerSide) -> Result<(), ServerError> {
    let mut request = Vec::with_capacity(8);
    encode::ssl_request(&mut request);
    stream
        .write_all(&request)
        .await
        .map_err(ServerError::Connect)?;
    // Exactly one byte: anything after it is the server's first TLS record (or, in clear,
    // bytes injected before the handshake, which must not be read as if encrypted).
    let mut answer = [0u8; 1];
    if stream
        .read(&mut answer)
        .await
        .map_err(ServerError::Connect)?
        == 0
    {
        return Err(ServerError::Closed);
    }
    match answer[0] {
        b'S' => stream
            .connect_tls(&tls.config, tls.name.clone())
            .await
            .map_err(|error| ServerError::Tls(error.to_string())),
        b'N' if tls.mode.requires_tls() => Err(ServerError::Tls(format!(
            "the server does not accept TLS connections, and tls.mode is {}",
            tls.mode.as_str()
        ))),
        b'N' => Ok(()),
        other => Err(ServerError::Protocol(format!(
            "the server answered the SSLRequest with {:?} instead of S or N",
            char::from(other)
        ))),
    }
}

impl From<LoginError> for ServerError {
    fn from(error: LoginError) -> Self {
        match error {
            LoginError::Rejected {
                message,
                code,
                text,
            } => ServerError::Rejected {
                message,
                code,
                text,
            },
            LoginError::Auth(reason) => ServerError::Auth(reason),
            LoginError::Protocol(reason) => ServerError::Protocol(reason),
        }
    }
}

impl ServerConn {
    /// Closes an idle connection properly: Terminate (and a TLS close_notify) first, so
    /// the server logs a clean disconnect rather than an unexpected EOF.
    pub fn close(mut self: Box<Self>) {
        self.io.stream.goodbye(b"X\0\0\0\x04");
    }

    /// The backend's process id (from its BackendKeyData).
    pub fn pid(&self) -> i32 {
        self.io.cancel.pid
    }

    /// True if the connection is still usable after sitting idle: an idle backend says
    /// nothing, so any input (typically a FATAL before it closes) or EOF means it is gone.
    pub fn is_healthy(&self) -> bool {
        !has_input_or_closed(self.io.stream.socket())
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
        self.io
            .stream
            .write_all(&out)
            .await
            .map_err(ServerError::Connect)?;
        let mut failure = None;
        loop {
            let header = inbox.message(&mut self.io.stream, limits).await?;
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
                        let frame = inbox.unread().get(..header.frame_len()).unwrap_or_default();
                        failure = Some(rejected(frame, error.sqlstate(), error.message()).into());
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
