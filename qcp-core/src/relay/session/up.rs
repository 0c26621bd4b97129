//! Client to server: framing the client's bytes, accounting every request, and in Smart mode
//! rewriting the messages that name a prepared statement and watching for SQL that may
//! change how names resolve (`relay::scope`).

use qcp_codec::{encode, Header, Tag, TransactionStatus};

use super::{frame_error_text, Event, Session, OWN_BYTES_LIMIT};
use crate::errors::{sqlstate, PgError};
use crate::relay::framer::{Inspect, Run, Verdict, WHOLE_BODY};
use crate::relay::prepared::{self, Consume};
use crate::relay::scope;
use crate::relay::statements::query_of;
use crate::relay::tracker::Tracker;

/// Scan steps the client-to-server direction takes before it writes.
const SCANS_PER_WRITE: usize = 8;

impl<S> Session<S> {
    /// Scans what the client sent (a few steps, so that a rewritten message and the bytes
    /// after it leave in one write). `Ok(true)` if anything moved.
    pub fn scan_up(&mut self) -> Result<bool, Event> {
        let mut progress = false;
        for _ in 0..SCANS_PER_WRITE {
            let backlog = self.link.as_ref().map_or(0, |l| l.relay.to_server.len());
            let blocked = backlog >= OWN_BYTES_LIMIT || self.answers.len() >= OWN_BYTES_LIMIT;
            if self.up.unscanned().is_empty() || blocked {
                break;
            }
            if !self.scan_up_once()? {
                break;
            }
            progress = true;
        }
        Ok(progress)
    }

    /// Scans the client's unscanned bytes once.
    fn scan_up_once(&mut self) -> Result<bool, Event> {
        if self.collecting.as_ref().is_some_and(|c| c.1) {
            let (body, _) = *self.collecting.take().unwrap_or_default();
            if !self.rewrite_collected(&body)? {
                self.collecting = Some(Box::new((body, true)));
                return Ok(false);
            }
        }
        let mut inspect = UpInspect {
            tracker: self.link.as_mut().map(|l| &mut l.relay.tracker),
            smart: self.smart,
            too_many: false,
            changes_resolution: false,
        };
        let flow = &mut self.up;
        let run = flow.next_run(&mut inspect);
        let too_many = inspect.too_many;
        if inspect.changes_resolution {
            // Before anything after that SQL is rewritten: the rewrites see the change.
            self.resolution_changed();
        }
        let flow = &mut self.up;
        match run {
            Ok(Run::Forward(n)) => {
                flow.pass(n);
                Ok(true)
            }
            Ok(Run::Discard(n)) => {
                if flow.sent != flow.scanned {
                    return Ok(false);
                }
                if let Some((collected, complete)) = self.collecting.as_deref_mut() {
                    collected.extend_from_slice(flow.unscanned().get(..n).unwrap_or_default());
                    *complete = flow.framer.at_boundary();
                }
                flow.drop_scanned(n);
                Ok(true)
            }
            Ok(Run::Stop(header)) => {
                if too_many {
                    return Err(too_many_pending());
                }
                if self.link.is_some() && header.tag != Tag::TERMINATE {
                    return self.up_stop(header);
                }
                // Act on it once everything before it has been written.
                if self.up.sent == self.up.scanned {
                    return self.unlinked_message(header);
                }
                Ok(false)
            }
            Ok(Run::NeedMore) => Ok(false),
            Err(error) => Err(Event::ClientError(PgError::fatal(
                sqlstate::PROTOCOL_VIOLATION,
                format!("invalid message from client: {}", frame_error_text(error)),
            ))),
        }
    }

    /// Smart mode, linked: the up framer stopped at a message that names a prepared
    /// statement, or at a `DEALLOCATE`. Rewrites it into qcp's own bytes for the server.
    fn up_stop(&mut self, header: Header) -> Result<bool, Event> {
        if header.tag == Tag::QUERY {
            return self.deallocate_linked(header);
        }
        let Some(link) = self.link.as_mut() else {
            return Ok(false);
        };
        let flow = &mut self.up;
        let relay = &mut link.relay;
        // What was scanned before this message goes first.
        relay.to_server.extend_from_slice(flow.ready());
        flow.sent = flow.scanned;
        let body_len = header.body_len();
        let body = flow.body_read(&header);
        if header.tag == Tag::PARSE && body.len() < body_len {
            // Larger than the buffer: gathered whole first (qcp keeps the text anyway, to
            // prepare it again on other server connections).
            self.collecting = Some(Box::new((Vec::with_capacity(body_len.min(1 << 20)), false)));
            let dropped = flow.framer.discard(header);
            flow.drop_scanned(dropped);
            return Ok(true);
        }
        let consume = relay
            .rewriter(&mut self.statements, &self.registry, &self.wanted)
            .message(header.tag, body, body_len)
            .map_err(rewrite_error)?;
        tracing::trace!(tag = ?header.tag, ?consume, pending = relay.to_server.len(), "rewrote a statement message");
        let dropped = match consume {
            Consume::Whole => flow.framer.discard(header),
            Consume::Head(n) => flow.framer.replace_head(header, n),
            // Waits for an answer; the down direction wakes this loop when one comes.
            Consume::NotYet => return Ok(false),
        };
        flow.drop_scanned(dropped);
        Ok(true)
    }

    /// A Parse gathered whole (see `collecting`) is rewritten and sent. `Ok(false)`: not
    /// yet, it waits for an answer.
    fn rewrite_collected(&mut self, body: &[u8]) -> Result<bool, Event> {
        let Some(link) = self.link.as_mut() else {
            return Ok(true);
        };
        let relay = &mut link.relay;
        let consume = relay
            .rewriter(&mut self.statements, &self.registry, &self.wanted)
            .message(Tag::PARSE, body, body.len())
            .map_err(rewrite_error)?;
        match consume {
            Consume::Head(n) => relay
                .to_server
                .extend_from_slice(body.get(n..).unwrap_or_default()),
            Consume::Whole => {}
            Consume::NotYet => return Ok(false),
        }
        Ok(true)
    }

    /// Smart mode, linked: a simple Query that may be `DEALLOCATE name`. A name the client
    /// prepared through the protocol has another name on the server, so qcp answers it itself
    /// once every earlier request has been answered (prepared statements are not
    /// transactional, so nothing on the server needs to change). Anything else goes on.
    fn deallocate_linked(&mut self, header: Header) -> Result<bool, Event> {
        let Some(link) = self.link.as_mut() else {
            return Ok(false);
        };
        let relay = &mut link.relay;
        let flow = &mut self.up;
        let body = flow.body_read(&header);
        let known = (body.len() == header.body_len())
            .then(|| prepared::deallocated_name(body))
            .flatten()
            .filter(|name| self.statements.get(name).is_some());
        if let Some(name) = known {
            let settled = relay.tracker.nothing_outstanding()
                && !relay.tracker.unsynced()
                && self.down.is_empty();
            if !settled {
                // Answered in order, and only once earlier Parse/Close are known to have
                // run: wait for the earlier answers.
                return Ok(false);
            }
            // In a failed transaction PostgreSQL refuses it (25P02): the server says so.
            let status = relay.tracker.status();
            if status != TransactionStatus::Failed && self.statements.remove(&name).is_some() {
                local_deallocate_answer(&mut relay.to_client, status);
                relay.to_server.extend_from_slice(flow.ready());
                let dropped = flow.framer.discard(header);
                flow.drop_scanned(dropped);
                return Ok(true);
            }
        }
        // Anything else is the server's to answer.
        relay
            .tracker
            .client_message(Tag::QUERY)
            .map_err(|_| too_many_pending())?;
        let changes = sql_changes_resolution(&header, Some(body));
        let passed = flow.framer.consume(header);
        flow.pass(passed);
        if changes {
            self.resolution_changed();
        }
        Ok(true)
    }

    /// Smart mode: SQL the client sent may have changed how names resolve on the linked
    /// backend. The client's statements are its own from now on, and the backend is marked
    /// as changed by it (see `relay::scope`).
    pub(super) fn resolution_changed(&mut self) {
        let client = self.statements.make_private(&self.registry);
        if let Some(link) = self.link.as_mut() {
            link.relay.resolution.changed(client);
        }
    }
}

/// True if a simple Query, or an unnamed Parse, may change how names resolve when it runs
/// (`body`: as much of it as the buffer holds). A text too large to see whole counts as a
/// change.
fn sql_changes_resolution(header: &Header, body: Option<&[u8]>) -> bool {
    let body = body.unwrap_or_default();
    if body.len() < header.body_len() {
        return true;
    }
    let sql = match header.tag {
        // The name (empty: a named Parse is rewritten, not passed) and its NUL, then the text.
        Tag::PARSE => query_of(body.get(1..).unwrap_or_default()),
        _ => body,
    };
    scope::changes_resolution(sql)
}

/// PostgreSQL's answer to a successful `DEALLOCATE name`.
pub(super) fn local_deallocate_answer(out: &mut Vec<u8>, status: TransactionStatus) {
    let _ = encode::command_complete(out, "DEALLOCATE");
    encode::ready_for_query(out, status);
}

fn too_many_pending() -> Event {
    Event::ClientError(PgError::fatal(
        sqlstate::PROGRAM_LIMIT_EXCEEDED,
        "too many pipelined requests without reading their results",
    ))
}

fn rewrite_error(error: prepared::RewriteError) -> Event {
    match error {
        prepared::RewriteError::TooManyPending => too_many_pending(),
        prepared::RewriteError::Malformed(what) => Event::ClientError(PgError::fatal(
            sqlstate::PROTOCOL_VIOLATION,
            format!("invalid message from client: {what}"),
        )),
    }
}

/// Client-to-server accounting: every request goes to the tracker; without a server linked
/// (or at Terminate) the scan stops so the session can act, and in Smart mode it also stops
/// at messages that name a prepared statement (they are rewritten) and at a possible
/// `DEALLOCATE`.
struct UpInspect<'a> {
    tracker: Option<&'a mut Tracker>,
    smart: bool,
    too_many: bool,
    /// A simple Query or unnamed Parse passed that may change how names resolve.
    changes_resolution: bool,
}

impl Inspect for UpInspect<'_> {
    fn needs_body(&self, tag: Tag) -> usize {
        if !self.smart {
            return 0;
        }
        match tag {
            // A Query's text is scanned for changes of name resolution, and may be a
            // DEALLOCATE.
            Tag::PARSE | Tag::BIND | Tag::DESCRIBE | Tag::CLOSE | Tag::QUERY => WHOLE_BODY,
            _ => 0,
        }
    }

    fn message(&mut self, header: Header, body: Option<&[u8]>) -> Verdict {
        if header.tag == Tag::TERMINATE {
            return Verdict::Stop;
        }
        let Some(tracker) = self.tracker.as_deref_mut() else {
            return Verdict::Stop;
        };
        if self.smart {
            let body = body.unwrap_or_default();
            if prepared::names_statement(header.tag, body)
                || (header.tag == Tag::QUERY && prepared::may_deallocate(body))
            {
                return Verdict::Stop;
            }
        }
        match tracker.client_message(header.tag) {
            Ok(()) => {
                if self.smart && matches!(header.tag, Tag::QUERY | Tag::PARSE) {
                    self.changes_resolution |= sql_changes_resolution(&header, body);
                }
                Verdict::Pass
            }
            Err(_) => {
                self.too_many = true;
                Verdict::Stop
            }
        }
    }
}
