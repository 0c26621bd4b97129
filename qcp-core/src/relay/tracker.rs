//! Which requests a server connection still owes answers to, and so when it is idle again.
//!
//! The relay reports every message header it forwards, in each direction, and this tracker
//! keeps a queue of the requests the server has not answered yet, in the order it will answer
//! them (PostgreSQL answers strictly in order). A server connection is idle, and may go back
//! to the pool in Smart mode, only when the last ReadyForQuery said `I` *and* nothing is
//! outstanding: a bare "saw ReadyForQuery(I)" rule breaks as soon as a client pipelines.
//!
//! The rules follow PostgreSQL's `postgres.c` (see `../shared/design/PROTOCOL.md` §3):
//! - Query, FunctionCall and Sync each end with exactly one ReadyForQuery.
//! - Parse, Bind, Describe, Execute and Close each get one reply; after an error in one of
//!   them the server discards everything up to the next Sync, including messages the client
//!   has not sent yet.
//! - During COPY FROM STDIN the server ignores Sync and Flush, and after a failed COPY it
//!   silently drops the client's late CopyData / CopyDone / CopyFail.
//!
//! Memory: one byte per outstanding request, bounded by [`MAX_PENDING`].

use std::collections::VecDeque;

use qcp_codec::{Tag, TransactionStatus};

/// The most requests one client may have in flight before qcp refuses more.
pub const MAX_PENDING: usize = 1 << 20;

/// A request the server still owes a reply to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pending {
    Parse,
    Bind,
    Describe,
    Execute,
    Close,
    Sync,
    Query,
    FunctionCall,
    /// The client's CopyDone/CopyFail: never answered on its own, it marks where the client
    /// finished a COPY FROM STDIN so Syncs sent before it can be told from Syncs after it.
    CopyEnd,
}

impl Pending {
    fn is_extended(self) -> bool {
        matches!(
            self,
            Pending::Parse | Pending::Bind | Pending::Describe | Pending::Execute | Pending::Close
        )
    }

    fn ends_with_ready_for_query(self) -> bool {
        matches!(self, Pending::Sync | Pending::Query | Pending::FunctionCall)
    }
}

/// The client pipelined more than [`MAX_PENDING`] requests without reading the answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TooManyPending;

/// Request/answer accounting for one client's traffic on one server connection.
#[derive(Debug)]
pub struct Tracker {
    /// INVARIANT: in the order the server will answer.
    queue: VecDeque<Pending>,
    /// The server hit an error in an extended-protocol message and is discarding everything
    /// until the client's next Sync, which is not in `queue` yet.
    skip_until_sync: bool,
    status: TransactionStatus,
    /// The server is in COPY FROM STDIN (CopyInResponse seen, no CommandComplete/Error yet).
    server_copy_in: bool,
    /// The client has not yet ended the COPY FROM STDIN it was asked for.
    client_copy_in: bool,
    /// The server is streaming COPY TO STDOUT.
    copy_out: bool,
    /// CopyBoth (replication streaming): the connection can never be released.
    pinned: bool,
    /// An extended-protocol message was sent since the last Sync: the unnamed statement or
    /// portal and the implicit transaction live on this backend until the Sync, even when
    /// every reply (after a Flush) has arrived.
    unsynced: bool,
}

impl Default for Tracker {
    fn default() -> Self {
        Tracker {
            queue: VecDeque::new(),
            skip_until_sync: false,
            status: TransactionStatus::Idle,
            server_copy_in: false,
            client_copy_in: false,
            copy_out: false,
            pinned: false,
            unsynced: false,
        }
    }
}

impl Tracker {
    /// A fresh tracker for a server connection that is idle (last ReadyForQuery said `I`).
    pub fn new() -> Self {
        Self::default()
    }

    /// True when the server connection owes nothing and sits outside any transaction: the
    /// moment Smart mode gives it back to the pool.
    pub fn is_idle(&self) -> bool {
        self.queue.is_empty()
            && !self.skip_until_sync
            && self.status == TransactionStatus::Idle
            && !self.server_copy_in
            && !self.client_copy_in
            && !self.copy_out
            && !self.pinned
            && !self.unsynced
    }

    /// True when the server owes no reply at all (whatever the transaction status).
    pub fn nothing_outstanding(&self) -> bool {
        self.queue.is_empty() && !self.skip_until_sync && !self.server_copy_in && !self.copy_out
    }

    /// The status byte of the last ReadyForQuery.
    pub fn status(&self) -> TransactionStatus {
        self.status
    }

    /// True while the client owes the end of a COPY FROM STDIN.
    pub fn client_in_copy(&self) -> bool {
        self.client_copy_in
    }

    /// Number of requests awaiting an answer (for tests and diagnostics).
    pub fn pending(&self) -> usize {
        self.queue.len()
    }

    /// Records a message the client sent to the server. Terminate is not reported here: the
    /// relay never forwards it.
    pub fn client_message(&mut self, tag: Tag) -> Result<(), TooManyPending> {
        let pending = match tag {
            Tag::QUERY => Pending::Query,
            Tag::FUNCTION_CALL => Pending::FunctionCall,
            Tag::PARSE => Pending::Parse,
            Tag::BIND => Pending::Bind,
            Tag::DESCRIBE => Pending::Describe,
            Tag::EXECUTE => Pending::Execute,
            Tag::CLOSE => Pending::Close,
            Tag::SYNC => {
                if self.server_copy_in && self.client_copy_in {
                    // Read by the server in copy mode, where Sync is ignored.
                    return Ok(());
                }
                // The server leaves skip-until-Sync when it reads this Sync.
                self.skip_until_sync = false;
                self.unsynced = false;
                Pending::Sync
            }
            Tag::COPY_DONE | Tag::COPY_FAIL => {
                self.client_copy_in = false;
                if self.queue.is_empty() {
                    // The copy already ended (the server failed it): the server drops this.
                    return Ok(());
                }
                Pending::CopyEnd
            }
            // Flush and CopyData get no reply of their own; anything else is the server's
            // business (it answers unknown messages with a FATAL error).
            _ => return Ok(()),
        };
        if pending.is_extended() {
            self.unsynced = true;
        }
        if self.skip_until_sync {
            // The server discards everything but Sync after an extended-protocol error.
            return Ok(());
        }
        if self.queue.len() >= MAX_PENDING {
            return Err(TooManyPending);
        }
        self.queue.push_back(pending);
        Ok(())
    }

    /// Records a message the server sent. `first_body_byte` is needed for ReadyForQuery only
    /// (its status byte); it is ignored for every other tag.
    pub fn server_message(&mut self, tag: Tag, first_body_byte: Option<u8>) {
        match tag {
            Tag::PARSE_COMPLETE | Tag::BIND_COMPLETE | Tag::CLOSE_COMPLETE | Tag::NO_DATA => {
                self.pop_extended();
            }
            Tag::ROW_DESCRIPTION => {
                // A RowDescription answers a Describe; inside a Query's results it does not.
                if self.head() == Some(Pending::Describe) {
                    self.pop_extended();
                }
            }
            Tag::COMMAND_COMPLETE | Tag::EMPTY_QUERY_RESPONSE | Tag::PORTAL_SUSPENDED => {
                if self.server_copy_in {
                    self.copy_in_ended();
                }
                self.copy_out = false;
                if self.head() == Some(Pending::Execute) {
                    self.pop_extended();
                }
            }
            Tag::COPY_IN_RESPONSE => self.copy_in_started(),
            Tag::COPY_OUT_RESPONSE => self.copy_out = true,
            Tag::COPY_BOTH_RESPONSE => self.pinned = true,
            Tag::ERROR_RESPONSE => self.error(),
            Tag::READY_FOR_QUERY => {
                self.ready_for_query();
                if let Some(status) = first_body_byte.and_then(status_from_byte) {
                    self.status = status;
                }
            }
            // DataRow, CopyData, CopyDone, ParameterDescription, FunctionCallResponse and the
            // asynchronous Notice / ParameterStatus / Notification answer nothing on their own.
            _ => return,
        }
        self.head();
    }

    fn head(&mut self) -> Option<Pending> {
        // A CopyEnd at the head belongs to no copy that is still running (the copy ended, or
        // never started): nothing will answer it, so it is dropped.
        while self.queue.front() == Some(&Pending::CopyEnd) && !self.server_copy_in {
            self.queue.pop_front();
        }
        self.queue.front().copied()
    }

    fn pop_extended(&mut self) {
        if self.head().is_some_and(Pending::is_extended) {
            self.queue.pop_front();
        }
    }

    fn copy_in_started(&mut self) {
        self.server_copy_in = true;
        // Syncs the client sent after the COPY's Execute but before its CopyDone reach the
        // server while it is in copy mode, where they are ignored: they will get no answer.
        let end = self.queue.iter().position(|p| *p == Pending::CopyEnd);
        let client_already_done = end.is_some();
        let stop = end.unwrap_or(self.queue.len());
        let mut index = 1; // the head is the Query or Execute that started the copy
        let mut limit = stop;
        while index < limit {
            if self.queue.get(index) == Some(&Pending::Sync) {
                self.queue.remove(index);
                limit -= 1;
            } else {
                index += 1;
            }
        }
        self.client_copy_in = !client_already_done;
        // An extended-protocol COPY whose only Syncs were ignored leaves the implicit
        // transaction open until a Sync that comes after the CopyDone.
        let extended = self.queue.front() == Some(&Pending::Execute);
        if extended && !self.queue.iter().skip(1).any(|p| *p == Pending::Sync) {
            self.unsynced = true;
        }
    }

    fn copy_in_ended(&mut self) {
        self.server_copy_in = false;
        // The copy's answer (CommandComplete or Error) also answers the client's CopyDone.
        if let Some(at) = self.queue.iter().position(|p| *p == Pending::CopyEnd) {
            self.queue.remove(at);
        }
    }

    fn error(&mut self) {
        if self.server_copy_in {
            self.copy_in_ended();
        }
        self.copy_out = false;
        if !self.head().is_some_and(Pending::is_extended) {
            // An error in a Query, FunctionCall or at Sync: its ReadyForQuery still follows.
            return;
        }
        // The server now discards every message up to the next Sync.
        while let Some(&head) = self.queue.front() {
            if head == Pending::Sync {
                return;
            }
            self.queue.pop_front();
        }
        self.skip_until_sync = true;
    }

    fn ready_for_query(&mut self) {
        self.skip_until_sync = false;
        while let Some(head) = self.queue.pop_front() {
            if head.ends_with_ready_for_query() {
                return;
            }
        }
        // Nothing was waiting for it: a Sync the server read after a COPY we thought was
        // still running. Harmless; the status update below is still right.
    }
}

fn status_from_byte(byte: u8) -> Option<TransactionStatus> {
    match byte {
        b'I' => Some(TransactionStatus::Idle),
        b'T' => Some(TransactionStatus::InTransaction),
        b'E' => Some(TransactionStatus::Failed),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
