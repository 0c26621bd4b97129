//! Credentials from the database: a client whose user is not in `users` is checked against
//! the secret `auth_query` returns, run as `auth_user` on a pooled server connection (with
//! the extended protocol, the user name bound as `$1`, never spliced into the text). Results
//! are kept for `auth_cache_ttl`, unknown users included, so a flood of logins does not
//! become a flood of queries; a login that fails with a kept secret asks again, so a
//! changed password is seen by the next attempt.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use qcp_codec::{encode, BackendMessage, Tag};
use tracing::{debug, warn};

use super::io::{timeout, Inbox};
use super::link::{self, LinkError};
use super::login::{credentials_for, link_error_fatal};
use super::server::{ServerConn, ServerError};
use super::shared::{Shared, UserEntry};
use crate::auth::login::to_server::rejected;
use crate::auth::Secret;
use crate::config::AuthQuery;
use crate::errors::{sqlstate, PgError, Refusal};
use crate::pool::PoolKey;

/// Most users kept at once; beyond that, expired results are dropped first, and unknown
/// users are not kept (a client cannot grow the cache without bound).
const MAX_CACHED: usize = 10_000;

/// What `auth_query` said about one user.
#[derive(Clone)]
pub struct Found {
    /// Its secret, as a user entry (`None`: no such role, no LOGIN, or no usable password).
    pub entry: Option<Arc<UserEntry>>,
    /// It came from the cache, not from a query just now.
    pub cached: bool,
}

struct Cached {
    entry: Option<Arc<UserEntry>>,
    fetched: Instant,
}

/// The results of `auth_query`, by user name.
#[derive(Default)]
pub struct AuthCache {
    entries: Mutex<HashMap<String, Cached>>,
}

impl AuthCache {
    /// Forgets every answer (a reload changed `users` or `auth_query`).
    pub fn clear(&self) {
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }

    /// The secret of `user` for a client of `database`: kept if younger than the TTL (unless
    /// `fresh`), else asked of the server.
    pub async fn lookup(
        &self,
        shared: &Shared,
        settings: &AuthQuery,
        user: &str,
        database: &str,
        fresh: bool,
    ) -> Result<Found, Refusal> {
        let now = Instant::now();
        if !fresh && !settings.cache_ttl.is_zero() {
            let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(kept) = entries.get(user) {
                if now.saturating_duration_since(kept.fetched) < settings.cache_ttl {
                    return Ok(Found {
                        entry: kept.entry.clone(),
                        cached: true,
                    });
                }
            }
        }
        let secret = fetch(shared, settings, user, database).await?;
        let entry = secret.map(|secret| Arc::new(UserEntry::fetched(user, secret)));
        self.keep(settings, user, entry.clone(), now);
        Ok(Found {
            entry,
            cached: false,
        })
    }

    fn keep(&self, settings: &AuthQuery, user: &str, entry: Option<Arc<UserEntry>>, now: Instant) {
        if settings.cache_ttl.is_zero() {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= MAX_CACHED && !entries.contains_key(user) {
            entries
                .retain(|_, kept| now.saturating_duration_since(kept.fetched) < settings.cache_ttl);
            if entries.len() >= MAX_CACHED && entry.is_none() {
                return;
            }
        }
        entries.insert(
            user.to_owned(),
            Cached {
                entry,
                fetched: now,
            },
        );
    }
}

/// Runs `auth_query` for `user`: `Some(secret)` for a role with a usable password.
async fn fetch(
    shared: &Shared,
    settings: &AuthQuery,
    user: &str,
    client_database: &str,
) -> Result<Option<Secret>, Refusal> {
    let database = settings.dbname.as_deref().unwrap_or(client_database);
    let key = PoolKey {
        database: database.to_owned(),
        user: settings.user.clone(),
    };
    let Some(pool) = shared.pool(&key) else {
        return Err(lookup_failed(
            user,
            format!("no server serves auth_dbname \"{database}\""),
        ));
    };
    let credentials = credentials_for(
        &settings.user,
        shared.users().get(&settings.user).map(|u| &**u),
    );
    let mut conn = match link::acquire(shared, &pool, database, &credentials).await {
        Ok(conn) => conn,
        Err(error) => {
            // A pool nobody ever got into (the database does not exist, say) is not kept:
            // clients must not be able to grow the pool list at will.
            shared.forget_unused_pool(&pool);
            // No such database: the client's user is as unknown as it would be to
            // PostgreSQL, which says so only after a password exchange (so a client cannot
            // probe database names without one).
            if let LinkError::Server {
                error: ServerError::Rejected { code, .. },
                ..
            } = &error
            {
                if code == sqlstate::INVALID_CATALOG_NAME {
                    return Ok(None);
                }
            }
            return Err(link_error_fatal(error));
        }
    };
    let Some(mut inbox) = shared.server_inbox().await else {
        return_conn(&pool, conn);
        return Err(super::login::arena_exhausted().into());
    };
    let limit = shared.config().timeouts.server_connect;
    let outcome = timeout(
        limit,
        run_lookup(
            &mut conn,
            &settings.query,
            user,
            &mut inbox,
            &shared.limits(),
        ),
    )
    .await;
    match outcome {
        Ok(Ok(password)) => {
            return_conn(&pool, conn);
            debug!(found = password.is_some(), "auth_query answered");
            match password {
                None => Ok(None),
                Some(text) => match Secret::parse(&text) {
                    Ok(secret) => Ok(Some(secret)),
                    Err(error) => {
                        warn!(%error, "auth_query returned a password qcp cannot use");
                        Ok(None)
                    }
                },
            }
        }
        Ok(Err(ServerError::Rejected { message, .. })) => {
            // The query failed (a typo, no privilege on pg_shadow); the connection is fine.
            return_conn(&pool, conn);
            let reason = Refusal::Server(message).to_string();
            warn!(%reason, "auth_query failed");
            Err(lookup_failed(user, reason))
        }
        Ok(Err(error)) => {
            drop_conn(&pool, conn);
            Err(lookup_failed(user, error.to_string()))
        }
        Err(_) => {
            drop_conn(&pool, conn);
            Err(lookup_failed(
                user,
                format!("no answer within timeouts.server_connect ({limit:?})"),
            ))
        }
    }
}

/// The connection, its query answered, goes back to the pool.
fn return_conn(pool: &super::shared::PoolEntry, conn: Box<ServerConn>) {
    pool.checkin(conn);
}

/// A server connection that broke during the query: its pool slot is freed.
fn drop_conn(pool: &super::shared::PoolEntry, conn: Box<ServerConn>) {
    let server = conn.io.server;
    drop(conn);
    pool.pool.closed(server, Instant::now());
}

fn lookup_failed(user: &str, reason: impl std::fmt::Display) -> Refusal {
    PgError::fatal(
        sqlstate::INVALID_AUTHORIZATION,
        format!("could not look up the password of user \"{user}\": {reason}"),
    )
    .with_hint("check auth_user, auth_query and auth_dbname in qcp's config (the default query reads pg_shadow, which needs a superuser or a SECURITY DEFINER function)")
    .into()
}

/// Sends `query` with `user` bound as `$1` (extended protocol, text result) and reads to
/// ReadyForQuery: `Some(password)` from the first row's second column, `None` for no row or
/// a NULL password.
async fn run_lookup(
    conn: &mut ServerConn,
    query: &str,
    user: &str,
    inbox: &mut Inbox,
    limits: &qcp_codec::Limits,
) -> Result<Option<String>, ServerError> {
    let protocol = |e: qcp_codec::EncodeError| ServerError::Protocol(e.to_string());
    let mut out = Vec::with_capacity(query.len() + user.len() + 64);
    encode::parse(&mut out, "", query, &[]).map_err(protocol)?;
    encode::bind(&mut out, "", "", &[], &[Some(user.as_bytes())], &[]).map_err(protocol)?;
    encode::execute(&mut out, "", 1).map_err(protocol)?;
    encode::sync(&mut out);
    conn.io
        .stream
        .write_all(&out)
        .await
        .map_err(ServerError::Connect)?;
    let mut password = None;
    let mut failure = None;
    loop {
        let header = inbox.message(&mut conn.io.stream, limits).await?;
        let body = inbox.body(&header);
        match BackendMessage::decode_body(header.tag, body) {
            Ok(BackendMessage::DataRow(row)) if password.is_none() => {
                let mut values = row.values();
                let _name = values.next();
                if let Some(Some(value)) = values.next() {
                    password = Some(String::from_utf8_lossy(value).into_owned());
                }
            }
            Ok(BackendMessage::ErrorResponse(error)) => {
                let frame = inbox.unread().get(..header.frame_len()).unwrap_or_default();
                failure = Some(rejected(frame, error.sqlstate(), error.message()));
            }
            Ok(BackendMessage::ParameterStatus(status)) => {
                if let (Ok(name), Ok(value)) = (status.name_str(), status.value_str()) {
                    conn.params.set(name, value);
                }
            }
            Ok(BackendMessage::ReadyForQuery(_)) => {
                inbox.consume(header.frame_len());
                return match failure {
                    Some(error) => Err(error.into()),
                    None => Ok(password),
                };
            }
            Err(_) if header.tag == Tag::READY_FOR_QUERY => {
                return Err(ServerError::Protocol("invalid ReadyForQuery".into()))
            }
            _ => {}
        }
        inbox.consume(header.frame_len());
    }
}
