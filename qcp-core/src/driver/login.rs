//! A client's start-up: encryption requests, protocol negotiation, authentication, and the
//! greeting, which qcp answers itself from the pool's cached server parameters.

use std::sync::Arc;

use tracing::{debug, info};

use super::auth_query::Found;
use super::clients::{ClientHandle, ClientInfo};
use super::io::{Inbox, Peer, ReadError, Stream};
use super::link::{self, LinkError};
use super::server::Credentials;
use super::shared::{PoolEntry, Shared, UserEntry};
use super::spelling::in_server_spelling;
use crate::admin::{self, Role};
use crate::auth::hba::{Connection, Method as HbaMethod, Transport};
use crate::auth::login::from_client::{
    greeting, protocol_violation, read_opening, AuthStep, Authenticator, Opening as ClientOpening,
    OwnedStartup, TlsOffer, UserSecrets,
};
use crate::auth::{ScramCredentials, Secret};
use crate::config::{is_console_database, AuthMethod, ClientTlsMode};
use crate::errors::{sqlstate, PgError, Refusal};
use crate::pool::PoolKey;
use crate::relay::params::{ClientParams, ParamSource, Params};

/// What a start-up packet asked for.
pub enum Opening {
    /// A client that logged in.
    Client(Box<LoggedIn>),
    /// A cancel request: (process id, secret) as qcp issued them.
    Cancel { pid: i32, secret: Vec<u8> },
    /// A user of `admin_users` or `stats_users` that logged in to the admin console.
    Console(Box<ConsoleLogin>),
}

/// A client of the admin console, greeted.
pub struct ConsoleLogin {
    /// What it may do.
    pub role: Role,
    /// Its cancel key (a cancel for it is ignored) and shutdown waker.
    pub handle: Arc<ClientHandle>,
    /// The chunk used for the login, with any bytes the client sent after it.
    pub inbox: Inbox,
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
/// Errors are what the client is told before qcp closes the connection. The protocol
/// decisions are `auth::login::from_client`'s; this reads, writes, finds the pool and
/// registers the client.
pub async fn start(
    shared: &Shared,
    stream: &mut Stream,
    peer: &Peer,
    mut inbox: Inbox,
) -> Result<Opening, Refusal> {
    let limits = shared.limits();
    let mut out = Vec::with_capacity(512);
    let tls = shared.tls();
    let client_tls = tls.clients.as_ref();
    let mut offer = TlsOffer {
        available: client_tls.is_some(),
        required: tls.client_mode() == ClientTlsMode::Require,
        ..TlsOffer::default()
    };
    let startup = loop {
        let Some((opening, used)) = read_opening(inbox.unread(), &limits, &mut offer, &mut out)?
        else {
            inbox.fill(stream).await.map_err(read_error)?;
            continue;
        };
        inbox.consume(used);
        match opening {
            ClientOpening::Encryption { injected } => {
                stream.write_all(&out).await.map_err(|_| closed())?;
                out.clear();
                // As PostgreSQL: the answer first, then the refusal of what came behind it.
                if let Some(error) = injected {
                    return Err(error.into());
                }
            }
            ClientOpening::StartTls { .. } | ClientOpening::DirectTls => {
                let Some(side) = client_tls else {
                    return Err(closed());
                };
                let (direct, injected) = match opening {
                    ClientOpening::StartTls { injected } => (false, injected),
                    _ => (true, None),
                };
                if !direct {
                    stream.write_all(&out).await.map_err(|_| closed())?;
                    out.clear();
                }
                // Direct TLS: the handshake's first bytes are already in the inbox.
                let already = if direct { inbox.unread() } else { &[] };
                let handshake = stream.accept_tls(&side.config, already).await;
                let taken = already.len();
                inbox.consume(taken);
                if let Err(error) = handshake {
                    info!(%error, "client TLS handshake failed");
                    return Err(closed());
                }
                // Clear text sent behind the SSLRequest is refused inside TLS, as PostgreSQL
                // refuses it after its handshake.
                if let Some(error) = injected {
                    return Err(error.into());
                }
                // As PostgreSQL: a direct TLS client must say it speaks PostgreSQL (ALPN), so
                // that TLS meant for another service is not taken for a login.
                if direct && stream.alpn_protocol() != Some(crate::tls::ALPN_POSTGRESQL) {
                    return Err(protocol_violation(
                        "direct TLS connection without the ALPN protocol \"postgresql\"",
                    )
                    .with_hint("use a client that offers ALPN postgresql with sslnegotiation=direct (libpq 17 or later)")
                    .into());
                }
                offer.encrypted = true;
            }
            ClientOpening::Cancel { pid, secret } => return Ok(Opening::Cancel { pid, secret }),
            ClientOpening::Startup(startup) => break startup,
        }
    };

    startup.negotiate_version(&mut out);
    let user = startup.user.clone();
    let database = startup.database.clone();
    // The client's span (see serve_client) names them from here on, refusals included.
    let span = tracing::Span::current();
    span.record("user", tracing::field::display(&user));
    span.record("database", tracing::field::display(&database));

    // The access rules first: a client they refuse costs no lookup and hears why at once.
    let method = access(shared, stream, peer, &user, &database, offer.encrypted)?;
    // A user not in `users` may be known to the database (auth_query); not for the admin
    // console, whose users are configured ones.
    // The users and settings this login started with, kept to its end even if a reload
    // comes meanwhile.
    let users = shared.users();
    let config = shared.config_full();
    let fetched = match (users.get(&user), &config.auth_query) {
        (None, Some(settings)) if !is_console_database(&database) => Some(
            shared
                .auth_cache
                .lookup(shared, settings, &user, &database, false)
                .await?,
        ),
        _ => None,
    };
    let entry = users
        .get(&user)
        .map(|u| &**u)
        .or_else(|| fetched.as_ref().and_then(|f| f.entry.as_deref()));
    let known = entry.map(|e| UserSecrets {
        scram: e.scram.as_ref(),
        secret: e.secret.as_ref(),
    });
    let unknown_gets_scram = method == AuthMethod::Md5 && mostly_scram_secrets(shared);
    // Channel binding is to qcp's own TLS connection with the client.
    let end_point = client_tls
        .filter(|_| offer.encrypted)
        .and_then(|side| side.end_point.as_deref());
    let (mut auth, mut step) = Authenticator::start(
        method,
        &user,
        known,
        &shared.mock_key,
        unknown_gets_scram,
        end_point,
        &mut out,
    );
    let client_key = loop {
        match step {
            AuthStep::Done(key) => break key,
            AuthStep::Continue => {
                stream.write_all(&out).await.map_err(|_| closed())?;
                out.clear();
                let header = inbox.message(stream, &limits).await.map_err(read_error)?;
                let answer = auth.message(header.tag, inbox.body(&header), &mut out);
                inbox.consume(header.frame_len());
                step = match answer {
                    Ok(step) => step,
                    Err(refusal) => {
                        refresh_after_failure(shared, fetched.as_ref(), &user, &database).await;
                        return Err(refusal);
                    }
                };
            }
        }
    };
    if let (Some(entry), Some(key)) = (entry, client_key) {
        *entry.client_key.lock().unwrap_or_else(|p| p.into_inner()) = Some(key);
    }
    if is_console_database(&database) {
        let role = console_role(shared, &user, &database)?;
        let params = admin::greeting().iter().copied();
        let handle = welcome(shared, stream, peer, &startup, params, &mut out).await?;
        info!(user = %user, pid = handle.pid, "admin console client logged in");
        return Ok(Opening::Console(Box::new(ConsoleLogin {
            role,
            handle,
            inbox,
        })));
    }
    let credentials = credentials_for(&user, entry);

    let key = PoolKey {
        database: database.clone(),
        user: user.clone(),
    };
    if shared.controls.is_disabled(&database) {
        // PostgreSQL's words for a database that does not allow connections.
        return Err(PgError::fatal(
            sqlstate::OBJECT_NOT_IN_PREREQUISITE_STATE,
            format!("database \"{database}\" is not currently accepting connections"),
        )
        .with_hint("an administrator disabled it in qcp's console (ENABLE re-opens it)")
        .into());
    }
    let Some(pool) = shared.pool(&key) else {
        return Err(PgError::fatal(sqlstate::INVALID_CATALOG_NAME, format!("database \"{database}\" does not exist"))
            .with_hint("no server in qcp's config serves it: add it to a server's databases list, or leave that list empty")
            .into());
    };

    let greeting_params = greeting_params(shared, &pool, &database, &credentials).await?;
    // The client is greeted, and compared with server connections, in the server's spelling.
    let settings = in_server_spelling(
        shared,
        &pool,
        &greeting_params,
        &startup.settings,
        &database,
        &credentials,
    )
    .await?;
    let mut wanted = ClientParams::new(Arc::clone(&greeting_params));
    for (name, value) in &settings {
        wanted.set(name, value);
    }

    let params = greeting_params
        .iter()
        .map(|(name, _)| (name, wanted.get(name).unwrap_or_default()));
    let handle = welcome(shared, stream, peer, &startup, params, &mut out).await?;
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

/// A login failed with a secret `auth_query` returned earlier: ask again, so that a
/// password changed since is what the next attempt is checked against. (This attempt's
/// proof was made for the old secret's salt, so it cannot be checked again.)
async fn refresh_after_failure(
    shared: &Shared,
    fetched: Option<&Found>,
    user: &str,
    database: &str,
) {
    let (Some(found), Some(settings)) = (fetched, &shared.config().auth_query) else {
        return;
    };
    if !found.cached {
        return;
    }
    if let Err(refusal) = shared
        .auth_cache
        .lookup(shared, settings, user, database, true)
        .await
    {
        debug!(%refusal, "auth_query could not be asked again after a failed login");
    }
}

/// Registers an authenticated client (a process id and cancel secret, and what SHOW
/// CLIENTS shows of it) and sends it the rest of its greeting: AuthenticationOk, `params`,
/// BackendKeyData and ReadyForQuery (after whatever `out` holds already).
async fn welcome<'a>(
    shared: &Shared,
    stream: &mut Stream,
    peer: &Peer,
    startup: &OwnedStartup,
    params: impl Iterator<Item = (&'a str, &'a str)>,
    out: &mut Vec<u8>,
) -> Result<Arc<ClientHandle>, Refusal> {
    let application_name = startup
        .settings
        .iter()
        .find(|(name, _)| name == "application_name")
        .map(|(_, value)| value.clone())
        .unwrap_or_default();
    let info = ClientInfo {
        user: startup.user.clone(),
        database: startup.database.clone(),
        peer: peer.end(),
        local: stream.socket().local_end(),
        connected: std::time::SystemTime::now(),
        application_name,
        tls: stream.tls_description(),
    };
    let handle = shared.clients.register(startup.secret_len(), info);
    greeting(out, params, handle.pid, &handle.secret);
    if stream.write_all(out).await.is_err() {
        shared.clients.unregister(handle.pid);
        return Err(closed());
    }
    Ok(handle)
}

/// How the client must authenticate: `auth_method`, or what the first `hba_file` rule that
/// matches says; refused (28000, in PostgreSQL's words) when a rule rejects it or none
/// matches, and for `cert` when its certificate does not name the user.
fn access(
    shared: &Shared,
    stream: &Stream,
    peer: &Peer,
    user: &str,
    database: &str,
    encrypted: bool,
) -> Result<AuthMethod, Refusal> {
    let Some(rules) = shared.hba() else {
        return Ok(shared.config().auth_method);
    };
    let (transport, host) = match (peer, stream.socket().local_ip()) {
        (Peer::Tcp(address), Some(local)) => (
            Transport::Host {
                peer: address.ip(),
                local,
                tls: encrypted,
            },
            address.ip().to_string(),
        ),
        _ => (Transport::Local, "[local]".to_owned()),
    };
    let encryption = if encrypted {
        "SSL encryption"
    } else {
        "no encryption"
    };
    let refuse = |what: &str| -> Refusal {
        PgError::fatal(
            sqlstate::INVALID_AUTHORIZATION,
            format!("{what} for host \"{host}\", user \"{user}\", database \"{database}\", {encryption}"),
        )
        .into()
    };
    let connection = Connection {
        transport,
        database,
        user,
    };
    let Some(rule) = rules.find(&connection) else {
        return Err(refuse("no pg_hba.conf entry"));
    };
    debug!(line = rule.line, method = ?rule.method, "hba_file rule matched");
    Ok(match rule.method {
        HbaMethod::Reject => return Err(refuse("pg_hba.conf rejects connection")),
        HbaMethod::Trust => AuthMethod::Trust,
        HbaMethod::Md5 => AuthMethod::Md5,
        HbaMethod::ScramSha256 => AuthMethod::ScramSha256,
        HbaMethod::Cert => match stream.peer_common_name() {
            Some(name) if name == user => AuthMethod::Trust,
            Some(_) => {
                return Err(PgError::fatal(
                    sqlstate::INVALID_AUTHORIZATION,
                    format!("certificate authentication failed for user \"{user}\""),
                )
                .into())
            }
            None => {
                return Err(PgError::fatal(
                    sqlstate::INVALID_AUTHORIZATION,
                    "connection requires a valid client certificate",
                )
                .with_hint("connect with a client certificate whose common name is the user (qcp asks for one when client_tls.ca is set)")
                .into())
            }
        },
    })
}

/// What an authenticated user may do in the admin console: `admin_users` everything,
/// `stats_users` SHOW; anyone else is refused as PostgreSQL refuses a user without the
/// CONNECT privilege.
fn console_role(shared: &Shared, user: &str, database: &str) -> Result<Role, Refusal> {
    let listed = |names: &[String]| names.iter().any(|n| n == user);
    if listed(&shared.config().admin_users) {
        return Ok(Role::Admin);
    }
    if listed(&shared.config().stats_users) {
        return Ok(Role::Stats);
    }
    Err(PgError::fatal(
        sqlstate::INSUFFICIENT_PRIVILEGE,
        format!("permission denied for database \"{database}\""),
    )
    .with_hint("the admin console is for the users in admin_users and stats_users in qcp's config")
    .into())
}

/// True when more configured users have only a SCRAM secret than not (md5 method: those are
/// asked for SCRAM, the others for md5).
fn mostly_scram_secrets(shared: &Shared) -> bool {
    let users = shared.users();
    let scram = users
        .values()
        .filter(|u| matches!(u.secret, Some(Secret::Scram(_))))
        .count();
    scram * 2 > users.len()
}

/// What qcp logs in to servers with for this user: one shared copy per configured user, so
/// that each client holds a pointer rather than its own.
pub(super) fn credentials_for(user: &str, entry: Option<&UserEntry>) -> Arc<Credentials> {
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
    let conn = match link::acquire(shared, pool, database, credentials).await {
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
    pool.checkin(conn);
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

/// The refusal of a start-up message larger than an arena chunk.
pub fn startup_too_large(len: usize) -> PgError {
    PgError::fatal(
        sqlstate::PROGRAM_LIMIT_EXCEEDED,
        format!("a {len}-byte start-up message does not fit in one arena chunk"),
    )
    .with_hint("raise arena.chunk_size in qcp's config")
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
        ReadError::TooLarge(len) => startup_too_large(len).into(),
    }
}
