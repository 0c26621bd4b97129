//! A client's start-up: encryption requests, protocol negotiation, authentication, and the
//! greeting, which qcp answers itself from the pool's cached server parameters.

use std::sync::Arc;
use std::time::Instant;

use qcp_codec::auth::{PasswordMessage, SaslInitialResponse, SaslResponse};
use qcp_codec::{encode, Limits, ProtocolVersion, StartupPacket, Tag, TransactionStatus};
use tracing::{debug, info};

use super::clients::ClientHandle;
use super::io::{write_all, Inbox, ReadError, Socket};
use super::link::{self, LinkError};
use super::server::Credentials;
use super::shared::{PoolEntry, Shared, UserEntry};
use crate::auth::{
    md5_verify, ScramCredentials, ScramError, ScramSecret, ScramServer, Secret, SCRAM_SHA_256,
};
use crate::config::AuthMethod;
use crate::errors::{sqlstate, PgError, Refusal};
use crate::pool::PoolKey;
use crate::relay::params::{parse_options, ClientParams, ParamSource, Params};

/// What a start-up packet asked for.
pub enum Opening {
    /// A client that logged in.
    Client(Box<LoggedIn>),
    /// A cancel request: (process id, secret) as qcp issued them.
    Cancel { pid: i32, secret: Vec<u8> },
}

/// A client that passed authentication and got its greeting.
pub struct LoggedIn {
    /// Its pool (whose key says its database and user).
    pub entry: Arc<PoolEntry>,
    /// What qcp logs in to servers with on its behalf.
    pub credentials: Arc<Credentials>,
    /// The parameter values the client expects its server connection to have.
    pub wanted: ClientParams,
    /// Its cancel key and shutdown waker.
    pub handle: Arc<ClientHandle>,
    /// The chunk used for the login, with any bytes the client sent after it.
    pub inbox: Inbox,
}

/// Runs the start-up of a client whose first bytes are in (or about to arrive in) `inbox`.
/// Errors are what the client is told before qcp closes the connection.
pub async fn start(shared: &Shared, socket: &Socket, mut inbox: Inbox) -> Result<Opening, Refusal> {
    let limits = shared.limits;
    let startup = loop {
        match StartupPacket::decode(inbox.unread(), &limits) {
            Ok(Some((packet, used))) => match packet {
                StartupPacket::SslRequest | StartupPacket::GssEncRequest => {
                    inbox.consume(used);
                    // Anything sent before our answer could be read as if it came over the
                    // encrypted channel (CVE-2021-23214 class): refuse it.
                    if !inbox.unread().is_empty() {
                        return Err(Refusal::from(protocol_violation(
                            "received unencrypted data after an encryption request",
                        )));
                    }
                    write_all(socket, b"N").await.map_err(|_| closed())?;
                }
                StartupPacket::Cancel(cancel) => {
                    return Ok(Opening::Cancel {
                        pid: cancel.pid(),
                        secret: cancel.secret().to_vec(),
                    });
                }
                StartupPacket::Startup(startup) => {
                    let owned = OwnedStartup::from(&startup)?;
                    inbox.consume(used);
                    break owned;
                }
            },
            Ok(None) => inbox.fill(socket).await.map_err(read_error)?,
            Err(error) => {
                return Err(Refusal::from(protocol_violation(format!(
                    "invalid start-up packet: {error}"
                ))))
            }
        }
    };

    let mut out = Vec::with_capacity(512);
    negotiate_version(&startup, &mut out);
    let user = startup.user.clone();
    let database = startup.database.clone();
    // The client's span (see serve_client) names them from here on, refusals included.
    let span = tracing::Span::current();
    span.record("user", tracing::field::display(&user));
    span.record("database", tracing::field::display(&database));

    let entry = shared.users.get(&user);
    let client_key =
        authenticate(shared, socket, &mut inbox, &limits, &user, entry, &mut out).await?;
    if let (Some(entry), Some(key)) = (entry, client_key) {
        *entry.client_key.lock().unwrap_or_else(|p| p.into_inner()) = Some(key);
    }
    let credentials = credentials_for(&user, entry);

    let key = PoolKey {
        database: database.clone(),
        user: user.clone(),
    };
    let Some(pool) = shared.pool(&key) else {
        return Err(PgError::fatal(sqlstate::INVALID_CATALOG_NAME, format!("database \"{database}\" does not exist"))
            .with_hint("no server in qcp's config serves it: add it to a server's databases list, or leave that list empty")
            .into());
    };

    let greeting = greeting_params(shared, &pool, &database, &credentials).await?;
    let mut wanted = ClientParams::new(Arc::clone(&greeting));
    for (name, value) in &startup.settings {
        wanted.set(name, value);
    }

    let secret_len = if startup.version.minor >= 2 { 32 } else { 4 };
    let handle = shared.clients.register(secret_len);
    encode::authentication_ok(&mut out);
    for (name, _) in greeting.iter() {
        let value = wanted.get(name).unwrap_or_default();
        let _ = encode::parameter_status(&mut out, name, value);
    }
    let _ = encode::backend_key_data(&mut out, handle.pid, &handle.secret);
    encode::ready_for_query(&mut out, TransactionStatus::Idle);
    write_all(socket, &out).await.map_err(|_| {
        shared.clients.unregister(handle.pid);
        closed()
    })?;
    Shared::count(&shared.stats.logins);
    info!(user = %user, database = %database, pid = handle.pid, "client logged in");
    Ok(Opening::Client(Box::new(LoggedIn {
        entry: pool,
        credentials,
        wanted,
        handle,
        inbox,
    })))
}

/// The start-up packet's contents, owned.
struct OwnedStartup {
    version: ProtocolVersion,
    user: String,
    database: String,
    /// Settings to apply on server connections (from parameters and `options`).
    settings: Vec<(String, String)>,
    /// `_pq_.` protocol options, none of which qcp supports.
    protocol_options: Vec<String>,
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
}

/// Answers a minor version qcp does not speak, or `_pq_.` options, with
/// NegotiateProtocolVersion: qcp speaks 3.0 and 3.2 (3.1 was never used by a release).
fn negotiate_version(startup: &OwnedStartup, out: &mut Vec<u8>) {
    let minor = startup.version.minor;
    let supported = match minor {
        0 | 2 => minor,
        1 => 0,
        _ => 2,
    };
    if supported != minor || !startup.protocol_options.is_empty() {
        let options: Vec<&[u8]> = startup
            .protocol_options
            .iter()
            .map(|o| o.as_bytes())
            .collect();
        let _ = encode::negotiate_protocol_version(out, u32::from(supported), &options);
    }
}

/// Authenticates the client as `user` with the configured method. Returns the ClientKey a
/// SCRAM login revealed (for pass-through logins to servers).
async fn authenticate(
    shared: &Shared,
    socket: &Socket,
    inbox: &mut Inbox,
    limits: &Limits,
    user: &str,
    entry: Option<&UserEntry>,
    out: &mut Vec<u8>,
) -> Result<Option<[u8; 32]>, Refusal> {
    let method = shared.config.auth_method;
    if method == AuthMethod::Trust {
        return Ok(None);
    }
    let use_scram = match method {
        AuthMethod::ScramSha256 => true,
        // As PostgreSQL does: an md5 method with a SCRAM-only secret uses SCRAM. An unknown
        // user gets what most configured users get, so its challenge does not tell it apart.
        AuthMethod::Md5 => match entry {
            Some(entry) => matches!(entry.secret, Some(Secret::Scram(_))),
            None => mostly_scram_secrets(shared),
        },
        AuthMethod::Trust => false,
    };
    if use_scram {
        // Unknown users get a mock exchange that fails at the end, so a client cannot tell
        // which users exist.
        let mock;
        let verifier: &ScramSecret = match entry.and_then(|e| e.scram.as_ref()) {
            Some(verifier) => verifier,
            None => {
                mock = ScramSecret::mock(user, &shared.mock_key);
                &mock
            }
        };
        let outcome = scram_exchange(socket, inbox, limits, verifier, out).await?;
        if entry.and_then(|e| e.scram.as_ref()).is_none() {
            return Err(auth_failed(user).into());
        }
        outcome.map(Some).map_err(|_| auth_failed(user).into())
    } else {
        let salt: [u8; 4] = rand::random();
        encode::authentication_md5_password(out, salt);
        write_all(socket, out).await.map_err(|_| closed())?;
        out.clear();
        let header = expect_password_message(socket, inbox, limits).await?;
        let password = PasswordMessage::decode(inbox.body(&header))
            .map_err(|e| protocol_violation(e.to_string()))?;
        let ok = entry
            .and_then(|e| e.secret.as_ref())
            .is_some_and(|secret| md5_verify(secret, user, salt, password.password()));
        inbox.consume(header.frame_len());
        if ok {
            Ok(None)
        } else {
            Err(auth_failed(user).into())
        }
    }
}

/// True when more configured users have only a SCRAM secret than not (md5 method: those are
/// asked for SCRAM, the others for md5).
fn mostly_scram_secrets(shared: &Shared) -> bool {
    let scram = shared
        .users
        .values()
        .filter(|u| matches!(u.secret, Some(Secret::Scram(_))))
        .count();
    scram * 2 > shared.users.len()
}

/// The SCRAM-SHA-256 exchange. The outer error ends the login at once (protocol problems);
/// the inner one is a failed proof.
async fn scram_exchange(
    socket: &Socket,
    inbox: &mut Inbox,
    limits: &Limits,
    verifier: &ScramSecret,
    out: &mut Vec<u8>,
) -> Result<Result<[u8; 32], ScramError>, Refusal> {
    let _ = encode::authentication_sasl(out, &[SCRAM_SHA_256]);
    write_all(socket, out).await.map_err(|_| closed())?;
    out.clear();
    let mut server = ScramServer::new(verifier);

    let header = expect_password_message(socket, inbox, limits).await?;
    let initial = SaslInitialResponse::decode(inbox.body(&header))
        .map_err(|e| protocol_violation(e.to_string()))?;
    if initial.mechanism() != SCRAM_SHA_256.as_bytes() {
        return Err(Refusal::from(protocol_violation(
            "client selected an invalid SASL authentication mechanism",
        )));
    }
    let first = initial
        .data()
        .ok_or_else(|| protocol_violation("SASLInitialResponse without data"))?;
    let reply = server
        .handle_client_first(first)
        .map_err(scram_protocol_error)?;
    inbox.consume(header.frame_len());
    let _ = encode::authentication_sasl_continue(out, &reply);
    write_all(socket, out).await.map_err(|_| closed())?;
    out.clear();

    let header = expect_password_message(socket, inbox, limits).await?;
    let response =
        SaslResponse::decode(inbox.body(&header)).map_err(|e| protocol_violation(e.to_string()))?;
    let outcome = server.handle_client_final(response.data());
    inbox.consume(header.frame_len());
    match outcome {
        Ok(outcome) => {
            let _ = encode::authentication_sasl_final(out, &outcome.server_final);
            Ok(Ok(outcome.client_key))
        }
        Err(ScramError::InvalidProof) => Ok(Err(ScramError::InvalidProof)),
        Err(error) => Err(scram_protocol_error(error).into()),
    }
}

async fn expect_password_message(
    socket: &Socket,
    inbox: &mut Inbox,
    limits: &Limits,
) -> Result<qcp_codec::Header, Refusal> {
    let header = inbox.message(socket, limits).await.map_err(read_error)?;
    if header.tag != Tag::PASSWORD {
        return Err(Refusal::from(protocol_violation(format!(
            "expected a password message, got message type {:?}",
            header.tag
        ))));
    }
    Ok(header)
}

/// What qcp logs in to servers with for this user: one shared copy per configured user, so
/// that each client holds a pointer rather than its own.
fn credentials_for(user: &str, entry: Option<&UserEntry>) -> Arc<Credentials> {
    let mut credentials = Credentials {
        user: user.to_owned(),
        ..Credentials::default()
    };
    let Some(entry) = entry else {
        return Arc::new(credentials);
    };
    let mut cached = entry.credentials.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(shared) = cached.as_ref() {
        return Arc::clone(shared);
    }
    match &entry.secret {
        Some(Secret::Plain(password)) => credentials.password = Some(password.clone()),
        Some(Secret::Md5(hash)) => credentials.md5 = Some(*hash),
        Some(Secret::Scram(secret)) => {
            match *entry.client_key.lock().unwrap_or_else(|p| p.into_inner()) {
                Some(key) => {
                    credentials.scram_keys = Some(ScramCredentials::passthrough(secret, key));
                }
                // Not known until a client proves it: not worth keeping yet.
                None => return Arc::new(credentials),
            }
        }
        None => {}
    }
    let credentials = Arc::new(credentials);
    *cached = Some(Arc::clone(&credentials));
    credentials
}

/// The parameters to greet clients of `pool` with: cached, or learnt from a server
/// connection (which then stays in the pool for the client's first request).
async fn greeting_params(
    shared: &Shared,
    pool: &PoolEntry,
    database: &str,
    credentials: &Arc<Credentials>,
) -> Result<Arc<Params>, Refusal> {
    if let Some(params) = pool
        .greeting
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone()
    {
        return Ok(params);
    }
    let conn = match link::acquire(shared, pool, database, credentials, None).await {
        Ok(conn) => conn,
        Err(error) => {
            // A pool no client ever got into (e.g. the database does not exist) is not
            // kept: clients must not be able to grow the pool list at will.
            shared.forget_unused_pool(pool);
            return Err(link_error_fatal(error));
        }
    };
    let params = Arc::new(conn.params.clone());
    *pool.greeting.lock().unwrap_or_else(|p| p.into_inner()) = Some(Arc::clone(&params));
    debug!(
        params = params.len(),
        "learnt server parameters for greetings"
    );
    let (server, born) = (conn.io.server, conn.io.born);
    pool.pool.checkin(conn, server, born, Instant::now());
    Ok(params)
}

/// The FATAL error a client gets when no server connection can be had.
pub fn link_error_fatal(error: LinkError) -> Refusal {
    match error {
        LinkError::PoolTimeout => PgError::fatal(
            sqlstate::TOO_MANY_CONNECTIONS,
            "no server connection became free within timeouts.query_wait",
        )
        .with_hint(
            "raise servers[].pool_size or timeouts.query_wait in qcp's config, or retry later",
        )
        .into(),
        LinkError::Server { server, error } => Refusal::Server(error.to_client(&server, true)),
        LinkError::Arena => arena_exhausted().into(),
        // Only clients already logged in can be cancelled while they wait.
        LinkError::Canceled => PgError::fatal(
            sqlstate::QUERY_CANCELED,
            "canceling statement due to user request",
        )
        .into(),
    }
}

/// The error for a client that found no arena chunk within `timeouts.query_wait`.
pub fn arena_exhausted() -> PgError {
    PgError::fatal(
        sqlstate::OUT_OF_MEMORY,
        "qcp's memory arena has no free chunk",
    )
    .with_hint("raise arena.chunks_count (or total_size) in qcp's config, or retry later")
}

fn scram_protocol_error(error: ScramError) -> PgError {
    match error {
        ScramError::ChannelBindingNotSupported => PgError::fatal(
            sqlstate::FEATURE_NOT_SUPPORTED,
            "qcp does not support SCRAM channel binding",
        )
        .with_hint("connect with channel_binding=disable (or prefer)"),
        other => protocol_violation(format!("malformed SCRAM message: {other}")),
    }
}

fn auth_failed(user: &str) -> PgError {
    PgError::fatal(
        sqlstate::INVALID_PASSWORD,
        format!("password authentication failed for user \"{user}\""),
    )
}

fn protocol_violation(message: impl Into<String>) -> PgError {
    PgError::fatal(sqlstate::PROTOCOL_VIOLATION, message)
}

/// The client went away: there is nobody to tell.
fn closed() -> Refusal {
    Refusal::Silent
}

fn read_error(error: ReadError) -> Refusal {
    match error {
        ReadError::Closed | ReadError::Io(_) => closed(),
        ReadError::Protocol(error) => {
            protocol_violation(format!("invalid message: {error}")).into()
        }
        ReadError::TooLarge(len) => PgError::fatal(
            sqlstate::PROGRAM_LIMIT_EXCEEDED,
            format!("a {len}-byte start-up message does not fit in one arena chunk"),
        )
        .with_hint("raise arena.chunk_size in qcp's config")
        .into(),
    }
}
