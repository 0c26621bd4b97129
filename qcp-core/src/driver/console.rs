//! The admin console's connection, on async-std: reads the client's simple queries, has
//! `admin::answer` answer each from a fresh snapshot, and writes the answer with its
//! ReadyForQuery. As in PgBouncer, only the simple query protocol is spoken; extended
//! protocol messages get one error per Sync batch.

use futures::future::{select, Either};
use qcp_codec::{encode, Tag, TransactionStatus};
use tracing::info;

use super::io::{Inbox, ReadError, Stream};
use super::login::ConsoleLogin;
use super::shared::Shared;
use super::snapshot;
use crate::admin::{self, Role};
use crate::errors::{sqlstate, PgError};

/// Serves a console client until it leaves (or qcp shuts down).
pub async fn serve(shared: &Shared, stream: &mut Stream, login: ConsoleLogin) {
    let ConsoleLogin {
        role,
        handle,
        mut inbox,
    } = login;
    let reason = converse(shared, stream, &mut inbox, role).await;
    shared.clients.unregister(handle.pid);
    match reason {
        Ok(()) => info!("admin console client left"),
        Err(last_words) => {
            if let Some(error) = last_words {
                shared.stats.error_sent(error.code);
                let _ = stream.write_all(&error.to_bytes()).await;
            }
            stream.goodbye(&[]);
        }
    }
}

/// The conversation: `Ok` when the client sent Terminate, `Err` with what to tell it when
/// it must go (nothing when it already went).
async fn converse(
    shared: &Shared,
    stream: &mut Stream,
    inbox: &mut Inbox,
    role: Role,
) -> Result<(), Option<PgError>> {
    let limits = shared.limits();
    let mut out = Vec::new();
    // After an extended-protocol message, everything up to the next Sync is skipped.
    let mut skipping = false;
    loop {
        let header = {
            let next = std::pin::pin!(inbox.message(stream, &limits));
            let shutdown = std::pin::pin!(shared.shutdown_requested());
            match select(next, shutdown).await {
                Either::Left((Ok(header), _)) => header,
                Either::Left((Err(ReadError::Closed | ReadError::Io(_)), _)) => return Err(None),
                Either::Left((Err(ReadError::TooLarge(len)), _)) => {
                    return Err(Some(
                        PgError::fatal(
                            sqlstate::PROGRAM_LIMIT_EXCEEDED,
                            format!("a {len}-byte message is too long for the admin console"),
                        )
                        .with_hint(
                            "console commands are short; raise arena.chunk_size if yours is not",
                        ),
                    ))
                }
                Either::Left((Err(ReadError::Protocol(error)), _)) => {
                    return Err(Some(PgError::fatal(
                        sqlstate::PROTOCOL_VIOLATION,
                        format!("invalid message: {error}"),
                    )))
                }
                Either::Right(_) => {
                    return Err(Some(PgError::fatal(
                        sqlstate::ADMIN_SHUTDOWN,
                        "terminating connection because qcp is shutting down",
                    )))
                }
            }
        };
        let body = inbox.body(&header);
        out.clear();
        match header.tag {
            Tag::QUERY => {
                let text = body.strip_suffix(&[0]).unwrap_or(body);
                let text = String::from_utf8_lossy(text);
                let view = snapshot::take(shared);
                let code = match admin::answer(&text, role, &view, &mut out) {
                    admin::Answer::Done(code) => code,
                    admin::Answer::Act { verb, argument } => {
                        let result = super::actions::perform(shared, verb, argument).await;
                        admin::acted(verb, result, &mut out)
                    }
                };
                if let Some(code) = code {
                    shared.stats.error_sent(code);
                }
                encode::ready_for_query(&mut out, TransactionStatus::Idle);
            }
            Tag::TERMINATE => return Ok(()),
            Tag::SYNC => {
                skipping = false;
                encode::ready_for_query(&mut out, TransactionStatus::Idle);
            }
            Tag::FLUSH => {}
            Tag::PARSE | Tag::BIND | Tag::DESCRIBE | Tag::EXECUTE | Tag::CLOSE => {
                if !skipping {
                    skipping = true;
                    let error = PgError::error(
                        sqlstate::FEATURE_NOT_SUPPORTED,
                        "the admin console speaks only the simple query protocol",
                    )
                    .with_hint("send the command as a simple query, as psql does");
                    shared.stats.error_sent(error.code);
                    error.encode(&mut out);
                }
            }
            other => {
                return Err(Some(PgError::fatal(
                    sqlstate::PROTOCOL_VIOLATION,
                    format!(
                        "unexpected message type {:?} in the admin console",
                        other.0 as char
                    ),
                )))
            }
        }
        inbox.consume(header.frame_len());
        if !out.is_empty() {
            stream.write_all(&out).await.map_err(|_| None)?;
        }
    }
}
