//! Bringing a server connection's parameters in line with what a client expects, before it
//! is linked (Smart mode, and Session mode's first link).

use qcp_codec::encode;

use super::io::timeout;
use super::server::{ServerConn, ServerError};
use super::shared::Shared;
use crate::relay::params::{ClientParams, ParamSource};

/// Why a parameter sync failed.
pub enum SyncError {
    /// The server refused a setting the client asked for (PostgreSQL would have refused the
    /// client's connection): the client gets this ErrorResponse; the server connection
    /// itself is fine.
    Rejected(Vec<u8>),
    /// The server connection broke or timed out: the client gets this; the connection is
    /// closed.
    Broken(Vec<u8>),
    /// No arena chunk for the replies within `timeouts.query_wait`.
    Arena,
}

/// Sets on `conn` what `wanted` expects and it lacks, resets what another client left, and
/// returns the ParameterStatus messages the client must hear (the server's canonical
/// spelling of values that differ from what the client was told).
pub async fn bring_in_line(
    shared: &Shared,
    conn: &mut ServerConn,
    wanted: &mut ClientParams,
    smart: bool,
) -> Result<Vec<u8>, SyncError> {
    if conn.in_line.holds(wanted, &conn.params) {
        return Ok(Vec::new());
    }
    let Some(sql) = wanted.sync_sql(&conn.params) else {
        conn.in_line.record(wanted, &conn.params);
        return Ok(Vec::new());
    };
    let Some(mut inbox) = shared.server_inbox().await else {
        return Err(SyncError::Arena);
    };
    // What the statement sets (`Some`) or resets (`None`), for the bookkeeping below.
    let applied: Vec<(String, Option<String>)> = wanted
        .differences(&conn.params)
        .map(|(name, value)| (name.to_owned(), Some(value.to_owned())))
        .chain(
            wanted
                .extras(&conn.params)
                .map(|name| (name.to_owned(), None)),
        )
        .collect();
    let mut reported = Vec::new();
    let outcome = timeout(
        shared.config().timeouts.server_connect,
        conn.run_internal(&sql, &mut inbox, &shared.limits(), |name, value| {
            reported.push((name.to_owned(), value.to_owned()))
        }),
    )
    .await;
    let address = || {
        shared
            .server(conn.io.server)
            .map_or_else(|| "?".to_owned(), |s| s.address)
    };
    match outcome {
        Ok(Ok(_)) => {}
        Ok(Err(ServerError::Rejected { message, .. })) => return Err(SyncError::Rejected(message)),
        Ok(Err(error)) => return Err(SyncError::Broken(error.to_client(&address(), true))),
        Err(_) => {
            return Err(SyncError::Broken(
                ServerError::TimedOut.to_client(&address(), true),
            ))
        }
    }
    // A reported parameter that was set and not reported back kept its value: the server
    // reports a value only when it changed (PostgreSQL 14 and later), so the value asked for
    // is, in the server's spelling, the one the connection had (`utf8` on a `UTF8`
    // connection). It is not recorded as asked: that spelling would differ from the next
    // client's and cost a SET at every checkout (see docs/protocol.md, "Parameter spellings").
    let mut kept = Vec::new();
    for (name, value) in &applied {
        if reported.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)) {
            continue;
        }
        if wanted.reports(name) {
            if let Some(current) = conn.params.get(name) {
                kept.push((name.clone(), current.to_owned()));
            }
            continue;
        }
        // Settings the server does not report (statement_timeout, search_path...) stay on
        // the connection when it goes back to the pool: remember them, so the next client
        // that lacks them gets them reset. (Session mode runs DISCARD ALL before reuse,
        // which resets them all.)
        if smart {
            match value {
                Some(value) => {
                    conn.params.set(name, value);
                }
                None => {
                    conn.params.remove(name);
                }
            }
        }
    }
    // The server's canonical spelling of each value becomes the client's, and the client
    // hears about any that differ from what it was told.
    let mut statuses = Vec::new();
    for (name, value) in reported.iter().chain(&kept) {
        if wanted.set(name, value) {
            let _ = encode::parameter_status(&mut statuses, name, value);
        }
    }
    if wanted.is_in_line(&conn.params) {
        conn.in_line.record(wanted, &conn.params);
    }
    Ok(statuses)
}
