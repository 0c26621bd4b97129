//! A login's start-up settings in the server's spelling, so that its greeting says what the
//! server would have said (`UTF8` for `client_encoding=utf8`): from what the pool learnt,
//! or, for a spelling the pool has not met yet, from a server connection, once (see
//! `relay/spellings.rs` and docs/protocol.md, "Parameter spellings").

use std::sync::Arc;
use std::time::Instant;

use super::link;
use super::login::{arena_exhausted, link_error_fatal};
use super::server::Credentials;
use super::shared::{PoolEntry, Shared};
use super::sync::{bring_in_line, SyncError};
use crate::errors::{as_fatal, Refusal};
use crate::relay::params::{ClientParams, ParamSource, Params};
use crate::relay::spellings::respell;

/// `settings` (a client's start-up settings) with each reported parameter in the spelling of
/// `pool`'s server, whose values are `greeting`. A spelling not learnt yet is asked of a
/// server connection of the pool (waiting for one as the first login of a pool does), which
/// also tells whether the server accepts the value: a refusal is the client's, FATAL, as
/// PostgreSQL refuses a bad start-up setting.
pub async fn in_server_spelling(
    shared: &Shared,
    pool: &PoolEntry,
    greeting: &Arc<Params>,
    settings: &[(String, String)],
    database: &str,
    credentials: &Arc<Credentials>,
) -> Result<Vec<(String, String)>, Refusal> {
    let respelled = {
        let learnt = pool.spellings.lock().unwrap_or_else(|p| p.into_inner());
        respell(settings, greeting, &learnt)
    };
    let mut settings = respelled.settings;
    if respelled.unknown.is_empty() {
        return Ok(settings);
    }
    // Only the unknown values are set: the client's other settings reach its server
    // connection when it gets one, as every client's do.
    let mut probe = ClientParams::new(Arc::clone(greeting));
    for &at in &respelled.unknown {
        if let Some((name, value)) = settings.get(at) {
            probe.set(name, value);
        }
    }
    let mut conn = link::acquire(shared, pool, database, credentials)
        .await
        .map_err(link_error_fatal)?;
    // Recorded as Smart mode records (smart: true), so that whatever the statement set is
    // known to the next client of the connection, in either mode.
    let result = bring_in_line(shared, &mut conn, &mut probe, true).await;
    let server = conn.io.server;
    match result {
        Ok(_) => pool.checkin(conn),
        Err(SyncError::Broken(message)) => {
            drop(conn);
            pool.pool.closed(server, Instant::now());
            return Err(Refusal::Server(message));
        }
        Err(SyncError::Rejected(message)) => {
            pool.checkin(conn);
            return Err(Refusal::Server(as_fatal(&message)));
        }
        Err(SyncError::Arena) => {
            pool.checkin(conn);
            return Err(arena_exhausted().into());
        }
    }
    let mut learnt = pool.spellings.lock().unwrap_or_else(|p| p.into_inner());
    for &at in &respelled.unknown {
        // A parameter given twice is set to its last value: only that one was asked.
        let last = settings.iter().rposition(|(name, _)| {
            settings
                .get(at)
                .is_some_and(|(asked, _)| asked.eq_ignore_ascii_case(name))
        });
        if last != Some(at) {
            continue;
        }
        if let Some((name, value)) = settings.get_mut(at) {
            if let Some(spelled) = probe.get(name) {
                learnt.learn(name, value, spelled);
                spelled.clone_into(value);
            }
        }
    }
    Ok(settings)
}
