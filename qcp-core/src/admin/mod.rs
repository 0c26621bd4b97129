//! The admin console, PgBouncer style: a client that logs in to the `pgbouncer` (or `qcp`)
//! database sends simple-protocol queries such as `SHOW POOLS` and gets tables back.
//!
//! Monitoring tools written for PgBouncer (exporters, dashboards, scripts parsing
//! `SHOW STATS`) read these tables by column name and type, so every SHOW that PgBouncer
//! has is reproduced with PgBouncer 1.25's exact columns, in its order and with its types;
//! qcp adds two tables of its own (`SHOW ARENA`, `SHOW PREPARED_STATEMENTS`).
//!
//! This module is sans-IO: it reads a [`Snapshot`] the driver has already taken and appends
//! protocol bytes to a buffer; the driver owns the socket, the login and the ReadyForQuery.
//!
//! - `command.rs`: one query's text to a [`Command`];
//! - `resultset.rs`: a table ([`ResultSet`]) and its RowDescription/DataRow encoding;
//! - `show/`: each SHOW table built from the snapshot;
//! - `timestamp.rs`: the `2026-12-04 19:48:51 UTC` times of SHOW CLIENTS/SERVERS;
//! - `human.rs`: the same tables as aligned text with units, for `qcp-ctrl show`;
//! - `tests/`: every table against `pgbouncer_1_25_columns.txt` (PgBouncer's columns and
//!   types, read from its source) and a hand-built snapshot, through the wire and the text.

#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::arithmetic_side_effects
    )
)]

mod command;
mod human;
mod resultset;
mod show;
mod timestamp;

#[cfg(test)]
mod tests;

pub use command::{parse, Argument, Command, Item, ShutdownMode, Verb};
pub use human::render;
pub use resultset::{Column, Kind, ResultSet, Unit, Value};
pub use timestamp::format_utc;

use qcp_codec::encode;

use crate::errors::{sqlstate, PgError};
use crate::stats::Snapshot;

/// Who is asking: PgBouncer's `admin_users` may run every command, its `stats_users` only
/// SHOW.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// May run every command.
    Admin,
    /// May run SHOW commands only.
    Stats,
}

/// What became of one console query.
#[derive(Debug, PartialEq, Eq)]
pub enum Answer {
    /// Answered in `out`; with the SQLSTATE of the error answered, if one was (the driver
    /// counts the errors qcp sends).
    Done(Option<&'static str>),
    /// An admin's acting command: the driver carries it out, then reports with [`acted`].
    Act {
        /// The command.
        verb: Verb,
        /// What it applies to.
        argument: Argument,
    },
}

/// Appends the whole answer to one simple Query to `out`: a result set, a NoticeResponse
/// and CommandComplete (SHOW HELP), an EmptyQueryResponse, or one ErrorResponse (severity
/// ERROR: the console session goes on); or, for an acting command an admin may run, hands
/// it to the driver. The ReadyForQuery that ends the answer is the driver's to add.
pub fn answer(query: &str, role: Role, snapshot: &Snapshot, out: &mut Vec<u8>) -> Answer {
    let start = out.len();
    match respond(query, role, snapshot, out) {
        Ok(None) => Answer::Done(None),
        Ok(Some((verb, argument))) => Answer::Act { verb, argument },
        Err(error) => {
            // Nothing half-written goes out before the error: a client would take a
            // RowDescription without its CommandComplete for a broken stream.
            out.truncate(start);
            error.encode(out);
            Answer::Done(Some(error.code))
        }
    }
}

/// Appends the answer to an acting command the driver carried out: a NoticeResponse per
/// line of `result`'s report, then CommandComplete with the command's name (as PgBouncer
/// answers), or the ErrorResponse. Returns the SQLSTATE of the error, if any.
pub fn acted(
    verb: Verb,
    result: Result<Vec<String>, PgError>,
    out: &mut Vec<u8>,
) -> Option<&'static str> {
    let start = out.len();
    let written = result.and_then(|notices| {
        for notice in &notices {
            let fields: [(u8, &[u8]); 4] = [
                (b'S', b"NOTICE"),
                (b'V', b"NOTICE"),
                (b'C', b"00000"),
                (b'M', notice.as_bytes()),
            ];
            encode::notice_response(out, &fields).map_err(|e| unencodable(&e))?;
        }
        encode::command_complete(out, verb.name()).map_err(|e| unencodable(&e))
    });
    match written {
        Ok(()) => None,
        Err(error) => {
            out.truncate(start);
            error.encode(out);
            Some(error.code)
        }
    }
}

/// The table behind `SHOW <what>`, for `qcp-ctrl show` (which renders it with
/// [`render`]). Accepts the same item names as SHOW, in any case; `help` gives the command
/// list as a one-column table.
pub fn table(what: &str, snapshot: &Snapshot) -> Result<ResultSet, PgError> {
    let item = command::item(what.trim())?;
    Ok(show::table(item, snapshot))
}

/// The ParameterStatus messages the console sends after a login, in order.
///
/// PgBouncer announces `<its version>/bouncer`; qcp does the same with its own version
/// (`0.1.0/qcp`). libpq reads the leading number as the server's version, so psql and the
/// drivers treat qcp's console exactly as they treat PgBouncer's (a version below any real
/// PostgreSQL, not a server to send catalog queries to). The times in SHOW CLIENTS and
/// SHOW SERVERS are UTC, hence `TimeZone` UTC (PgBouncer says GMT and prints local time).
pub fn greeting() -> &'static [(&'static str, &'static str)] {
    const GREETING: &[(&str, &str)] = &[
        ("server_version", concat!(env!("CARGO_PKG_VERSION"), "/qcp")),
        ("client_encoding", "UTF8"),
        ("server_encoding", "UTF8"),
        ("DateStyle", "ISO"),
        ("TimeZone", "UTC"),
        ("standard_conforming_strings", "on"),
        ("is_superuser", "on"),
    ];
    GREETING
}

/// Parses and answers `query`, or returns the acting command for the driver; an error
/// leaves whatever it appended for [`answer`] to drop.
fn respond(
    query: &str,
    role: Role,
    snapshot: &Snapshot,
    out: &mut Vec<u8>,
) -> Result<Option<(Verb, Argument)>, PgError> {
    match parse(query)? {
        Command::Empty => encode::empty_query_response(out),
        Command::Show(Item::Help) => help(out)?,
        Command::Show(item) => show::table(item, snapshot)
            .encode("SHOW", out)
            .map_err(|e| unencodable(&e))?,
        Command::Act { verb, .. } if role == Role::Stats => {
            return Err(PgError::error(
                sqlstate::INSUFFICIENT_PRIVILEGE,
                format!(
                "permission denied: {} needs an admin user; stats_users may only run SHOW commands",
                verb.name()
            ),
            ))
        }
        Command::Act { verb, argument } => return Ok(Some((verb, argument))),
    }
    Ok(None)
}

/// SHOW HELP: like PgBouncer, a NoticeResponse whose detail lists the commands, then
/// CommandComplete; no rows.
fn help(out: &mut Vec<u8>) -> Result<(), PgError> {
    let detail = show::help_detail();
    let fields: [(u8, &[u8]); 5] = [
        (b'S', b"NOTICE"),
        (b'V', b"NOTICE"),
        (b'C', b"00000"),
        (b'M', b"Console usage"),
        (b'D', detail.as_bytes()),
    ];
    encode::notice_response(out, &fields).map_err(|e| unencodable(&e))?;
    encode::command_complete(out, "SHOW").map_err(|e| unencodable(&e))
}

/// An answer the codec refused (a NUL inside a name, more than 65 535 columns): a bug
/// rather than bad input, reported as such.
fn unencodable(error: &qcp_codec::EncodeError) -> PgError {
    PgError::error(
        sqlstate::INTERNAL_ERROR,
        format!("the console could not encode its answer: {error}"),
    )
}
