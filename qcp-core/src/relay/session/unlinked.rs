//! A client message while no server connection is linked: most need one, but some are
//! answered (or dropped) by qcp itself, exactly as PostgreSQL would have answered them.

use std::sync::Arc;

use qcp_codec::{encode, Header, Tag, TransactionStatus, HEADER_LEN};

use super::up::local_deallocate_answer;
use super::{Event, Session};
use crate::errors::{sqlstate, PgError};
use crate::relay::prepared;
use crate::relay::statements::Statement;

impl<S> Session<S> {
    /// The up framer stopped at a message: Terminate, or a request while no server is linked.
    /// `Ok(true)`: qcp dealt with it; otherwise the driver gets [`Event::NeedServer`].
    pub(super) fn unlinked_message(&mut self, header: Header) -> Result<bool, Event> {
        if header.tag == Tag::TERMINATE {
            return Err(Event::ClientGone);
        }
        if self.link.is_some() {
            return Ok(false);
        }
        if self.skip_to_sync {
            // After a cancelled extended-protocol request: drop up to its Sync.
            let sync = header.tag == Tag::SYNC;
            self.discard_client_message(header);
            if sync {
                self.skip_to_sync = false;
                encode::ready_for_query(&mut self.answers, TransactionStatus::Idle);
            }
            return Ok(true);
        }
        if matches!(header.tag, Tag::COPY_DATA | Tag::COPY_DONE | Tag::COPY_FAIL) {
            // The tail of a COPY the server already failed: the server would drop it too.
            self.discard_client_message(header);
            return Ok(true);
        }
        if self.smart && header.tag == Tag::QUERY && self.deallocate_unlinked(header) {
            return Ok(true);
        }
        if self.smart && header.tag == Tag::PARSE && self.prepare_unlinked() {
            return Ok(true);
        }
        Err(Event::NeedServer(header))
    }

    /// The client cancelled the request it was waiting with ([`Event::NeedServer`]'s
    /// header): answered as PostgreSQL answers a cancelled query. A simple Query or
    /// FunctionCall gets the error and ReadyForQuery; an extended-protocol request gets the
    /// error, and everything up to its Sync is dropped before ReadyForQuery, as the server
    /// does after an error.
    pub fn cancelled_while_waiting(&mut self, header: Header) {
        PgError::error(
            sqlstate::QUERY_CANCELED,
            "canceling statement due to user request",
        )
        .encode(&mut self.answers);
        let simple = matches!(header.tag, Tag::QUERY | Tag::FUNCTION_CALL);
        self.discard_client_message(header);
        if simple {
            encode::ready_for_query(&mut self.answers, TransactionStatus::Idle);
        } else {
            self.skip_to_sync = true;
        }
    }

    /// Drops the message the up framer stopped at (its body follows as discarded runs).
    fn discard_client_message(&mut self, header: Header) {
        let dropped = self.up.framer.discard(header);
        self.up.drop_scanned(dropped);
    }

    /// Smart mode: `DEALLOCATE name` of a statement the client prepared through the protocol
    /// is answered without a server (the client is outside any transaction). `false`: not
    /// such a query.
    fn deallocate_unlinked(&mut self, header: Header) -> bool {
        let body = self.up.body_read(&header);
        if body.len() != header.body_len() {
            return false;
        }
        let Some(name) = prepared::deallocated_name(body) else {
            return false;
        };
        if self.statements.remove(&name).is_none() {
            // PostgreSQL gives the error for an unknown name itself.
            return false;
        }
        self.discard_client_message(header);
        local_deallocate_answer(&mut self.answers, TransactionStatus::Idle);
        true
    }

    /// Smart mode: Parse messages followed by a Sync, of statements some server already
    /// accepted, are answered without a server: the statement is prepared on a backend when
    /// it is first used. Besides a round trip, this spares clients that prepare
    /// synchronously (libpq's `PQprepare`, pgbench `-M prepared`) from waiting for a server
    /// connection just to learn that a known statement parses. `false`: not such a sequence
    /// (it goes to a server).
    fn prepare_unlinked(&mut self) -> bool {
        if self.statements.private().is_some() {
            // Its statements are its own: none was accepted before.
            return false;
        }
        self.statements.refresh_scope(&self.wanted);
        let Some(scope) = self.statements.cached_scope_key() else {
            return false;
        };
        let mut prepared: Vec<(&[u8], Arc<Statement>)> = Vec::new();
        let mut rest = self.up.unscanned();
        let mut consumed = 0usize;
        loop {
            let Ok(Some(header)) = Header::parse(rest) else {
                return false;
            };
            let Some(body) = rest.get(HEADER_LEN..header.frame_len()) else {
                return false;
            };
            rest = rest.get(header.frame_len()..).unwrap_or_default();
            consumed = consumed.saturating_add(header.frame_len());
            match header.tag {
                Tag::SYNC => break,
                Tag::PARSE => {
                    let Some((name, definition)) = split_name(body) else {
                        return false;
                    };
                    let taken = self.statements.get(name).is_some()
                        || prepared.iter().any(|(n, _)| *n == name);
                    if name.is_empty() || taken {
                        return false;
                    }
                    match self.registry.find(scope, definition) {
                        // One that changes resolution goes to a server, which makes the client
                        // private (see `prepared`).
                        Some(statement)
                            if statement.accepted() && !statement.changes_resolution() =>
                        {
                            prepared.push((name, statement));
                        }
                        _ => return false,
                    }
                }
                _ => return false,
            }
        }
        for (name, statement) in prepared {
            self.statements.bind(name, statement);
            encode::parse_complete(&mut self.answers);
        }
        encode::ready_for_query(&mut self.answers, TransactionStatus::Idle);
        self.up.drop_scanned(consumed);
        true
    }
}

/// A Parse body's statement name and what follows its NUL.
fn split_name(body: &[u8]) -> Option<(&[u8], &[u8])> {
    let split = body.iter().position(|&b| b == 0)?;
    Some((body.get(..split)?, body.get(split.checked_add(1)?..)?))
}
