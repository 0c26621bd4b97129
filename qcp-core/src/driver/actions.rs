//! The admin console's acting commands (also `qcp-ctrl pause app` and the like), carried
//! out on the running instance. As in PgBouncer:
//! - PAUSE [db] holds new requests (clients queue, up to `timeouts.query_wait`) and returns
//!   once every server connection of the database(s) is back in the pool;
//! - RESUME [db] hands connections out again;
//! - RECONNECT [db] replaces every server connection (idle ones now, the others when
//!   released), and WAIT_CLOSE [db] waits until that (or a reload's) replacement is done;
//! - KILL [db] closes the clients and server connections of the database(s) at once (57P01)
//!   and pauses them; KILL_CLIENT id closes one client;
//! - DISABLE db / ENABLE db refuse or accept new logins;
//! - SHUTDOWN (now), SHUTDOWN WAIT_FOR_SERVERS (transactions finish, then clients are told
//!   to go), SHUTDOWN WAIT_FOR_CLIENTS (no new clients; each leaves when it wants).

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tracing::info;

use super::db_controls::ResumeError;
use super::shared::{PoolEntry, Shared};
use crate::admin::{Argument, ShutdownMode, Verb};
use crate::config::is_console_database;
use crate::errors::{sqlstate, PgError};

/// How often PAUSE and WAIT_CLOSE look again (an operator's command: a few checks per
/// 100 ms cost nothing).
const RECHECK: Duration = Duration::from_millis(10);

/// Carries out `verb` on `argument`; `Ok` holds the lines the admin is told as notices.
pub async fn perform(
    shared: &Shared,
    verb: Verb,
    argument: Argument,
) -> Result<Vec<String>, PgError> {
    let database = match &argument {
        Argument::Database(name) => {
            known_database(shared, name)?;
            Some(name.as_str())
        }
        _ => None,
    };
    info!(command = verb.name(), database, "console command");
    match (verb, &argument) {
        (Verb::Reload, _) => match super::reload::reload(shared, "the console's RELOAD").await {
            Ok(report) => Ok(vec![report.to_string()]),
            Err(error) => Err(
                PgError::error(sqlstate::CONFIG_FILE_ERROR, error).with_hint(
                    "fix the file and run RELOAD again; the running configuration is unchanged",
                ),
            ),
        },
        (Verb::Pause, _) => pause(shared, database).await,
        (Verb::Resume, _) => resume(shared, database),
        (Verb::Reconnect, _) => {
            reconnect(shared, database);
            Ok(Vec::new())
        }
        (Verb::WaitClose, _) => {
            wait_close(shared, database).await;
            Ok(Vec::new())
        }
        (Verb::Kill, _) => Ok(kill(shared, database)),
        (Verb::KillClient, Argument::Client(id)) => kill_client(shared, *id),
        (Verb::Disable | Verb::Enable, Argument::Database(name)) => {
            let disable = verb == Verb::Disable;
            if !shared.controls.set_disabled(name, disable) {
                let state = if disable { "disabled" } else { "enabled" };
                return Err(not_in_state(format!(
                    "database \"{name}\" is {state} already"
                )));
            }
            Ok(Vec::new())
        }
        (Verb::Shutdown, Argument::Shutdown(mode)) => {
            match mode {
                ShutdownMode::Immediate => {
                    shared.begin_shutdown();
                    shared.force_close();
                }
                ShutdownMode::WaitForServers => shared.begin_shutdown(),
                ShutdownMode::WaitForClients => shared.begin_shutdown_waiting_for_clients(),
            }
            Ok(Vec::new())
        }
        (Verb::Suspend, _) => Err(PgError::error(
            sqlstate::FEATURE_NOT_SUPPORTED,
            "SUSPEND is PgBouncer's online restart by socket hand-over, which qcp does not do",
        )
        .with_hint("use SHUTDOWN WAIT_FOR_CLIENTS with a new qcp on the same port")),
        (verb, _) => Err(PgError::error(
            sqlstate::FEATURE_NOT_SUPPORTED,
            format!("{} is not supported", verb.name()),
        )
        .with_hint("change settings in the configuration file and RELOAD")),
    }
}

/// A database some configured server serves.
fn known_database(shared: &Shared, name: &str) -> Result<(), PgError> {
    if shared.servers().serving(name).is_empty() {
        return Err(PgError::error(
            sqlstate::INVALID_CATALOG_NAME,
            format!("database \"{name}\" does not exist"),
        )
        .with_hint("no server in qcp's config serves it; SHOW DATABASES lists those that exist"));
    }
    Ok(())
}

fn not_in_state(message: String) -> PgError {
    PgError::error(sqlstate::OBJECT_NOT_IN_PREREQUISITE_STATE, message)
}

/// The pools of `database` (`None`: every pool).
fn pools_of(shared: &Shared, database: Option<&str>) -> Vec<Arc<PoolEntry>> {
    shared
        .pools()
        .into_iter()
        .filter(|entry| database.is_none_or(|name| entry.pool.key().database == name))
        .collect()
}

async fn pause(shared: &Shared, database: Option<&str>) -> Result<Vec<String>, PgError> {
    if !shared.controls.pause(database) {
        return Err(not_in_state(match database {
            Some(name) => format!("database \"{name}\" is paused already"),
            None => "qcp is paused already".to_owned(),
        }));
    }
    // Pools created from now on start paused (`Shared::pool`); wait for those that exist,
    // and for any created meanwhile.
    loop {
        let busy = pools_of(shared, database)
            .iter()
            .map(|entry| {
                entry.pool.pause();
                entry.pool.in_use()
            })
            .sum::<u32>();
        if busy == 0 || shared.is_shutting_down() {
            return Ok(Vec::new());
        }
        super::io::sleep(RECHECK).await;
    }
}

fn resume(shared: &Shared, database: Option<&str>) -> Result<Vec<String>, PgError> {
    shared.controls.resume(database).map_err(|error| {
        not_in_state(match (error, database) {
            (ResumeError::AllPaused, _) => {
                "qcp is paused as a whole: RESUME it without a database name".to_owned()
            }
            (ResumeError::NotPaused, Some(name)) => format!("database \"{name}\" is not paused"),
            (ResumeError::NotPaused, None) => "qcp is not paused".to_owned(),
        })
    })?;
    let now = Instant::now();
    for entry in pools_of(shared, database) {
        if !shared.controls.is_paused(&entry.pool.key().database) {
            entry.pool.resume(now);
        }
    }
    Ok(Vec::new())
}

fn reconnect(shared: &Shared, database: Option<&str>) {
    shared.controls.mark_reset(database, SystemTime::now());
    let now = Instant::now();
    for entry in pools_of(shared, database) {
        for conn in entry.pool.reconnect(now) {
            conn.close();
        }
    }
}

/// Waits until no server connection opened before the last RECONNECT, KILL or reload that
/// replaced connections of `database` (`None`: any) is left.
async fn wait_close(shared: &Shared, database: Option<&str>) {
    loop {
        let snapshot = super::snapshot::take(shared);
        let stale = snapshot.servers.iter().any(|server| {
            database.is_none_or(|name| server.database == name)
                && shared
                    .controls
                    .reset_mark(&server.database)
                    .is_some_and(|mark| server.connect_time < mark)
        });
        if !stale || shared.is_shutting_down() {
            return;
        }
        super::io::sleep(RECHECK).await;
    }
}

fn kill(shared: &Shared, database: Option<&str>) -> Vec<String> {
    // New clients wait until RESUME, as in PgBouncer.
    shared.controls.pause(database);
    for entry in pools_of(shared, database) {
        entry.pool.pause();
    }
    reconnect(shared, database);
    let mut killed = 0;
    for handle in shared.clients.all() {
        let theirs = database.is_none_or(|name| handle.info.database == name);
        if theirs && !is_console_database(&handle.info.database) {
            handle.kill();
            killed += 1;
        }
    }
    vec![format!(
        "{killed} client(s) closed; new requests wait until RESUME"
    )]
}

fn kill_client(shared: &Shared, id: u64) -> Result<Vec<String>, PgError> {
    let handle = shared
        .clients
        .all()
        .into_iter()
        .find(|handle| handle.id == id)
        .ok_or_else(|| {
            PgError::error(sqlstate::UNDEFINED_OBJECT, format!("client {id} not found"))
                .with_hint("SHOW CLIENTS lists the clients with their id")
        })?;
    handle.kill();
    Ok(Vec::new())
}
