//! Which requests a server connection still owes answers to, and so when it is idle again.
//!
//! The relay reports every message header it forwards, in each direction, and this tracker
//! keeps a queue of the requests the server has not answered yet, in the order it will answer
//! them (PostgreSQL answers strictly in order). A server connection is idle, and may go back
//! to the pool in Smart mode, only when the last ReadyForQuery said `I` *and* nothing is
//! outstanding: a bare "saw ReadyForQuery(I)" rule breaks as soon as a client pipelines.
//!
//! The rules follow PostgreSQL's `postgres.c` (see docs/protocol.md, "Requests and their
//! answers", "Errors in the extended protocol" and "COPY"):
//! - Query, FunctionCall and Sync each end with exactly one ReadyForQuery.
//! - Parse, Bind, Describe, Execute and Close each get one reply; after an error in one of
//!   them the server discards everything up to the next Sync, including messages the client
//!   has not sent yet.
//! - During COPY FROM STDIN the server ignores Sync and Flush, and after a failed COPY it
//!   silently drops the client's late CopyData / CopyDone / CopyFail.
//!
//! Some requests carry a *hook*: qcp rewrote or injected them (named prepared statements in
//! Smart mode) and must act on their answer. The tracker only flags them; it reports when a
//! hooked request is answered, fails, or is skipped by the server, in request order, and the
//! caller keeps the hooks themselves in a queue of the same order.
//!
//! Memory: two bytes per outstanding request, bounded by [`MAX_PENDING`].

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

/// One outstanding request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Entry {
    pending: Pending,
    hooked: bool,
}

/// How a hooked request ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    /// The server answered it (for a Query: its ReadyForQuery came without an error).
    Done,
    /// The server answered it with an ErrorResponse.
    Failed,
}

/// What one server message did to hooked requests, in request order: first the one it
/// `answered` (if any), then `dropped` ones the server skipped or will never answer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Hooked {
    /// The hooked request this message answered, if any.
    pub answered: Option<Answer>,
    /// Hooked requests skipped after `answered` (after an error, until Sync). At most the
    /// number of requests in flight, [`MAX_PENDING`], so counting them never saturates.
    pub dropped: u32,
}

/// The client pipelined more than [`MAX_PENDING`] requests without reading the answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TooManyPending;

/// Request/answer accounting for one client's traffic on one server connection.
#[derive(Debug)]
pub struct Tracker {
    /// INVARIANT: in the order the server will answer.
    queue: VecDeque<Entry>,
    /// INVARIANT: the number of hooked entries in `queue`.
    hooks: usize,
    /// Syncs the client has sent: a message the server skips after an error is skipped
    /// together with every other message up to the next Sync, so this numbers those groups.
    syncs: u64,
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
            hooks: 0,
            syncs: 0,
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

    /// Makes this tracker fresh again, keeping its memory.
    pub fn reset(&mut self) {
        let mut queue = std::mem::take(&mut self.queue);
        queue.clear();
        *self = Tracker {
            queue,
            ..Tracker::default()
        };
    }

    /// The number of Syncs the client has sent so far: messages sent between the same two
    /// Syncs are skipped together or not at all after an error.
    pub fn batch(&self) -> u64 {
        self.syncs
    }

    /// True when the request the server will answer next carries a hook.
    pub fn head_hooked(&self) -> bool {
        self.hooks > 0 && self.queue.front().is_some_and(|e| e.hooked)
    }

    /// True when an extended-protocol message was sent since the last Sync.
    pub fn unsynced(&self) -> bool {
        self.unsynced
    }

    /// True while the server is skipping messages until the client's next Sync.
    pub fn skipping(&self) -> bool {
        self.skip_until_sync
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
        self.push(tag, false).map(|_| ())
    }

    /// Records an extended-protocol message (Parse, Bind, Describe, Close) sent to the server
    /// whose answer qcp must act on. `Ok(false)`: the server will skip it (it is discarding messages until the next Sync), so no answer
    /// will be reported.
    pub fn hooked_message(&mut self, tag: Tag) -> Result<bool, TooManyPending> {
        self.push(tag, true)
    }

    fn push(&mut self, tag: Tag, hooked: bool) -> Result<bool, TooManyPending> {
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
                    return Ok(false);
                }
                // The server leaves skip-until-Sync when it reads this Sync.
                self.skip_until_sync = false;
                // One per Sync received, each five bytes of input: never saturates.
                self.syncs = self.syncs.saturating_add(1);
                self.unsynced = false;
                Pending::Sync
            }
            Tag::COPY_DONE | Tag::COPY_FAIL => {
                self.client_copy_in = false;
                if self.queue.is_empty() {
                    // The copy already ended (the server failed it): the server drops this.
                    return Ok(false);
                }
                Pending::CopyEnd
            }
            // Flush and CopyData get no reply of their own; anything else is the server's
            // business (it answers unknown messages with a FATAL error).
            _ => return Ok(false),
        };
        if pending.is_extended() {
            self.unsynced = true;
        }
        if self.skip_until_sync {
            // The server discards everything but Sync after an extended-protocol error.
            return Ok(false);
        }
        if self.queue.len() >= MAX_PENDING {
            return Err(TooManyPending);
        }
        self.queue.push_back(Entry { pending, hooked });
        // `hooks` counts entries of `queue`, which holds at most MAX_PENDING: never saturates.
        self.hooks = self.hooks.saturating_add(usize::from(hooked));
        Ok(true)
    }

    /// Records a message the server sent. `first_body_byte` is needed for ReadyForQuery only
    /// (its status byte); it is ignored for every other tag.
    pub fn server_message(&mut self, tag: Tag, first_body_byte: Option<u8>) -> Hooked {
        let mut hooked = Hooked::default();
        match tag {
            Tag::PARSE_COMPLETE | Tag::BIND_COMPLETE | Tag::CLOSE_COMPLETE | Tag::NO_DATA => {
                self.pop_extended(&mut hooked);
            }
            Tag::ROW_DESCRIPTION => {
                // A RowDescription answers a Describe; inside a Query's results it does not.
                if self.head() == Some(Pending::Describe) {
                    self.pop_extended(&mut hooked);
                }
            }
            Tag::COMMAND_COMPLETE | Tag::EMPTY_QUERY_RESPONSE | Tag::PORTAL_SUSPENDED => {
                if self.server_copy_in {
                    self.copy_in_ended();
                }
                self.copy_out = false;
                if self.head() == Some(Pending::Execute) {
                    self.pop_extended(&mut hooked);
                }
            }
            Tag::COPY_IN_RESPONSE => self.copy_in_started(),
            Tag::COPY_OUT_RESPONSE => self.copy_out = true,
            Tag::COPY_BOTH_RESPONSE => self.pinned = true,
            Tag::ERROR_RESPONSE => self.error(&mut hooked),
            Tag::READY_FOR_QUERY => {
                self.ready_for_query(&mut hooked);
                if let Some(status) = first_body_byte.and_then(status_from_byte) {
                    self.status = status;
                }
            }
            // DataRow, CopyData, CopyDone, ParameterDescription, FunctionCallResponse and the
            // asynchronous Notice / ParameterStatus / Notification answer nothing on their own.
            _ => return hooked,
        }
        self.head();
        hooked
    }

    fn head(&mut self) -> Option<Pending> {
        // A CopyEnd at the head belongs to no copy that is still running (the copy ended, or
        // never started): nothing will answer it, so it is dropped.
        while self
            .queue
            .front()
            .is_some_and(|e| e.pending == Pending::CopyEnd)
            && !self.server_copy_in
        {
            self.pop_front();
        }
        self.queue.front().map(|e| e.pending)
    }

    /// Removes the head; true if it was hooked.
    fn pop_front(&mut self) -> bool {
        match self.queue.pop_front() {
            Some(Entry { hooked: true, .. }) => {
                // `hooks` counted the hooked entry just removed: never saturates.
                self.hooks = self.hooks.saturating_sub(1);
                true
            }
            _ => false,
        }
    }

    fn pop_extended(&mut self, hooked: &mut Hooked) {
        if self.head().is_some_and(Pending::is_extended) && self.pop_front() {
            hooked.answered = Some(Answer::Done);
        }
    }

    fn copy_in_started(&mut self) {
        self.server_copy_in = true;
        // Syncs the client sent after the COPY's Execute but before its CopyDone reach the
        // server while it is in copy mode, where they are ignored: they will get no answer.
        let end = self
            .queue
            .iter()
            .position(|e| e.pending == Pending::CopyEnd);
        let client_already_done = end.is_some();
        let stop = end.unwrap_or(self.queue.len());
        let mut index = 1; // the head is the Query or Execute that started the copy
        let mut limit = stop;
        // `index < limit <= queue.len()` inside the loop: neither step saturates.
        while index < limit {
            if self
                .queue
                .get(index)
                .is_some_and(|e| e.pending == Pending::Sync)
            {
                self.queue.remove(index);
                limit = limit.saturating_sub(1);
            } else {
                index = index.saturating_add(1);
            }
        }
        self.client_copy_in = !client_already_done;
        // An extended-protocol COPY whose only Syncs were ignored leaves the implicit
        // transaction open until a Sync that comes after the CopyDone.
        let extended = self
            .queue
            .front()
            .is_some_and(|e| e.pending == Pending::Execute);
        if extended
            && !self
                .queue
                .iter()
                .skip(1)
                .any(|e| e.pending == Pending::Sync)
        {
            self.unsynced = true;
        }
    }

    fn copy_in_ended(&mut self) {
        self.server_copy_in = false;
        // The copy's answer (CommandComplete or Error) also answers the client's CopyDone.
        if let Some(at) = self
            .queue
            .iter()
            .position(|e| e.pending == Pending::CopyEnd)
        {
            self.queue.remove(at);
        }
    }

    fn error(&mut self, hooked: &mut Hooked) {
        if self.server_copy_in {
            self.copy_in_ended();
        }
        self.copy_out = false;
        if !self.head().is_some_and(Pending::is_extended) {
            // An error in a Query, FunctionCall or at Sync: its ReadyForQuery still follows.
            return;
        }
        if self.pop_front() {
            hooked.answered = Some(Answer::Failed);
        }
        // The server now discards every message up to the next Sync.
        while let Some(head) = self.queue.front() {
            if head.pending == Pending::Sync {
                return;
            }
            if self.pop_front() {
                hooked.dropped = hooked.dropped.saturating_add(1);
            }
        }
        self.skip_until_sync = true;
    }

    fn ready_for_query(&mut self, hooked: &mut Hooked) {
        self.skip_until_sync = false;
        // Only extended-protocol requests carry hooks: any still queued here were never
        // answered.
        while let Some(head) = self.queue.front().copied() {
            if self.pop_front() {
                hooked.dropped = hooked.dropped.saturating_add(1);
            }
            if head.pending.ends_with_ready_for_query() {
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
