//! A logged-in client's relay, sans-IO: every protocol decision between its socket and a
//! server connection, with no socket, no task and no clock inside.
//!
//! The driver owns the sockets and moves bytes; this [`Session`] owns the buffers (arena
//! chunks, only while bytes are in flight) and says what the bytes mean:
//! - reading: [`Session::read_space`] lends the free part of a peer's chunk, and
//!   [`Session::received`] says how much the driver read into it;
//! - scanning: [`Session::scan_down`] and [`Session::scan_up`] frame what was read by header,
//!   keep the request/answer accounting, rewrite what Smart mode must rewrite, and answer
//!   what qcp answers itself. They return [`Event`]s for what only the driver can do: link a
//!   server connection, wait for an arena chunk, give the connection back, close;
//! - writing: [`Session::client_output`] and [`Session::server_output`] are the bytes to
//!   send next (qcp's own bytes, then the relayed run), and [`Session::client_written`] and
//!   [`Session::server_written`] say how many went.
//!
//! Smart mode links a server connection for each transaction and gives it back the moment
//! the tracker says it is idle and every byte has been written ([`Session::wants_release`]);
//! Session mode keeps it until the client leaves. Bytes move in both directions at once:
//! the driver never waits on one direction while the other could progress, so a client
//! pipelining large requests while the server streams large results cannot deadlock.

mod backend;
mod down;
mod flow;
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod harness;
mod unlinked;
mod up;

use std::sync::Arc;

use qcp_codec::{Header, Limits};

pub use backend::{Backend, RelayState};
pub use flow::Space;

use crate::arena::{Arena, Chunk, Priority};
use crate::errors::PgError;
use crate::relay::framer::FrameError;
use crate::relay::params::ClientParams;
use crate::relay::prepared::StatementTally;
use crate::relay::statements::{ClientStatements, Registry};
use flow::Flow;

/// Bytes qcp may hold of its own for one peer (rewritten requests, its own answers) before
/// it stops reading more from the other: backpressure, as for relayed bytes.
const OWN_BYTES_LIMIT: usize = 64 * 1024;

/// One of the two peers of a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Peer {
    /// The client.
    Client,
    /// The linked server connection.
    Server,
}

/// Something the session cannot do by itself; the driver acts on it.
#[derive(Debug)]
pub enum Event {
    /// The client sent a request and no server connection is linked: link one
    /// ([`Session::link`]), or answer the request as cancelled
    /// ([`Session::cancelled_while_waiting`]) or refuse the client.
    NeedServer(Header),
    /// Reading from this peer needs an arena chunk and none is free right now: wait for one
    /// and hand it over with [`Session::give_chunk`].
    NeedChunk(Peer),
    /// Smart mode: the server connection is idle; take it back with [`Session::unlink`].
    Release,
    /// The client sent Terminate, or closed its connection.
    ClientGone,
    /// The server connection closed (or broke) while linked.
    ServerGone,
    /// The client broke the protocol or a limit; tell it this, then close.
    ClientError(PgError),
    /// The server sent something unframeable.
    ServerError(String),
}

/// One client's relay state.
pub struct Session<S> {
    smart: bool,
    /// The pool's named prepared statements (Smart mode).
    registry: Arc<Registry>,
    /// Parameter values the client expects (start-up values, then what the server reported
    /// while linked to it).
    wanted: ClientParams,
    up: Flow,
    down: Flow,
    link: Option<Box<Backend<S>>>,
    /// The last message from the server was an ErrorResponse (so if it then closes, the
    /// client already knows why).
    last_was_error: bool,
    /// A request cancelled while waiting for a server: drop messages up to its Sync.
    skip_to_sync: bool,
    /// Smart mode: the client's named prepared statements.
    statements: ClientStatements,
    /// A Parse larger than a chunk, gathered whole before it is rewritten (`true` once
    /// complete).
    collecting: Option<Box<(Vec<u8>, bool)>>,
    /// qcp's own answers to the client, given without a server connection; sent before
    /// anything else. Emptied (memory freed) once written, so an idle client holds none.
    answers: Vec<u8>,
}

impl<S> Session<S> {
    /// A session for a client that just logged in. `first` is the login's chunk with the
    /// range of bytes the client sent after its start-up (they are scanned first).
    pub fn new(
        smart: bool,
        limits: Limits,
        registry: Arc<Registry>,
        wanted: ClientParams,
        first: Option<(Chunk, usize, usize)>,
    ) -> Self {
        let up = match first {
            Some((chunk, start, end)) => Flow::with_bytes(limits, chunk, start, end),
            None => Flow::new(limits),
        };
        Session {
            smart,
            registry,
            wanted,
            up,
            down: Flow::new(limits),
            link: None,
            last_was_error: false,
            skip_to_sync: false,
            statements: ClientStatements::default(),
            collecting: None,
            answers: Vec::new(),
        }
    }

    /// True in Smart mode.
    pub fn is_smart(&self) -> bool {
        self.smart
    }

    /// The parameter values the client expects.
    pub fn wanted(&self) -> &ClientParams {
        &self.wanted
    }

    /// The parameter values the client expects, for the driver's parameter sync.
    pub fn wanted_mut(&mut self) -> &mut ClientParams {
        &mut self.wanted
    }

    /// The linked server connection.
    pub fn linked(&self) -> Option<&Backend<S>> {
        self.link.as_deref()
    }

    /// The linked server connection, mutable (the driver reaches its socket through it).
    pub fn linked_mut(&mut self) -> Option<&mut Backend<S>> {
        self.link.as_deref_mut()
    }

    /// True while a server connection is linked.
    pub fn is_linked(&self) -> bool {
        self.link.is_some()
    }

    /// Before a parameter sync and [`Session::link`]: if another client's SQL may have
    /// changed `backend`'s name resolution, its resolution parameters are marked unknown so
    /// that the sync sets them to what this client expects (see `relay::scope`).
    pub fn claim(&self, backend: &mut Backend<S>) {
        backend.claim(self.statements.private());
    }

    /// Links `backend` (in line with the client's parameters already). Its request
    /// accounting starts afresh.
    pub fn link(&mut self, mut backend: Box<Backend<S>>, max_prepared_statements: usize) {
        backend.relay.reset(max_prepared_statements);
        self.last_was_error = false;
        self.link = Some(backend);
    }

    /// Takes the linked server connection back (to give it to the pool, or close it).
    pub fn unlink(&mut self) -> Option<Box<Backend<S>>> {
        self.link.take()
    }

    /// Queues bytes for the client, sent before anything else (e.g. the ParameterStatus
    /// messages of a parameter sync).
    pub fn answer(&mut self, bytes: &[u8]) {
        self.answers.extend_from_slice(bytes);
    }

    /// The arena priority of this session's next chunk: traffic of a linked client may use
    /// the reserve, so its transaction can always finish.
    pub fn priority(&self) -> Priority {
        if self.link.is_some() {
            Priority::Linked
        } else {
            Priority::New
        }
    }

    /// True if reading from `peer` now needs a chunk from the arena first.
    pub fn holds_no_chunk(&self, peer: Peer) -> bool {
        self.flow(peer).chunk.is_none()
    }

    /// Free space to read `peer`'s next bytes into (a chunk is taken from the arena if none
    /// is held: call this only when the peer has something to say, so an idle client holds
    /// no memory), with the driver's part of the linked server connection (to read from).
    pub fn read_space(&mut self, peer: Peer, arena: &Arc<Arena>) -> (Space<'_>, Option<&mut S>) {
        let priority = self.priority();
        let io = self.link.as_deref_mut().map(|link| &mut link.io);
        let flow = match peer {
            Peer::Client => &mut self.up,
            Peer::Server => &mut self.down,
        };
        (flow.space(arena, priority), io)
    }

    /// `n` bytes from `peer` were read into the space [`Session::read_space`] gave.
    pub fn received(&mut self, peer: Peer, n: usize) {
        self.flow_mut(peer).received(n);
    }

    /// A chunk the driver waited for after [`Event::NeedChunk`].
    pub fn give_chunk(&mut self, peer: Peer, chunk: Chunk) {
        self.flow_mut(peer).give_chunk(chunk);
    }

    /// What to write to the client next: qcp's own bytes, then the relayed run (either may
    /// be empty; one vectored write sends both).
    pub fn client_output(&self) -> (&[u8], &[u8]) {
        if !self.answers.is_empty() {
            return (&self.answers, &[]);
        }
        match &self.link {
            Some(link) => (&link.relay.to_client, self.down.ready()),
            None => (&[], self.down.ready()),
        }
    }

    /// `n` bytes of [`Session::client_output`] were written.
    pub fn client_written(&mut self, n: usize) {
        if !self.answers.is_empty() {
            consume_own(&mut self.answers, n);
            if self.answers.is_empty() {
                self.answers = Vec::new();
            }
            return;
        }
        match self.link.as_mut() {
            Some(link) => written(&mut link.relay.to_client, &mut self.down, n),
            None => self.down.wrote(n),
        }
    }

    /// What to write to the server next: qcp's own bytes (rewritten requests), then the
    /// relayed run. Empty without a linked server connection.
    pub fn server_output(&self) -> (&[u8], &[u8]) {
        match &self.link {
            Some(link) => (&link.relay.to_server, self.up.ready()),
            None => (&[], &[]),
        }
    }

    /// [`Session::server_output`] with the linked connection to write it to (`None` while
    /// none is linked).
    pub fn linked_output(&mut self) -> Option<(&mut S, &[u8], &[u8])> {
        let link = self.link.as_deref_mut()?;
        Some((&mut link.io, &link.relay.to_server, self.up.ready()))
    }

    /// `n` bytes of [`Session::server_output`] were written.
    pub fn server_written(&mut self, n: usize) {
        if let Some(link) = self.link.as_mut() {
            written(&mut link.relay.to_server, &mut self.up, n);
        }
    }

    /// Gives chunks whose bytes have all been sent back to the arena.
    pub fn release_idle_chunks(&mut self) {
        self.up.release_if_empty();
        self.down.release_if_empty();
    }

    /// True when no byte is held in either direction, no message is half way through and qcp
    /// has nothing of its own to send.
    pub fn is_quiet(&self) -> bool {
        self.up.is_quiet()
            && self.down.is_quiet()
            && self.collecting.is_none()
            && self.answers.is_empty()
            && self
                .link
                .as_ref()
                .is_none_or(|l| l.relay.nothing_buffered())
    }

    /// True at an idle point: quiet, and the linked server (if any) owes nothing and is
    /// outside a transaction. A shutdown closes clients here.
    pub fn is_idle(&self) -> bool {
        self.is_quiet() && self.link.as_ref().is_none_or(|l| l.relay.tracker.is_idle())
    }

    /// Smart mode: the linked server connection can go back to the pool now.
    pub fn wants_release(&self) -> bool {
        self.smart && self.link.is_some() && self.is_idle()
    }

    /// True if the linked server connection was left in a state a next client can use: no
    /// request outstanding, outside a transaction, no message half way through.
    pub fn link_is_clean(&self) -> bool {
        self.link.as_ref().is_some_and(|link| {
            link.relay.tracker.is_idle()
                && link.relay.nothing_buffered()
                && self.collecting.is_none()
                && self.up.framer.at_boundary()
                && self.down.is_quiet()
        })
    }

    /// True if the linked server still owes answers (a query may be running).
    pub fn link_busy(&self) -> bool {
        self.link
            .as_ref()
            .is_some_and(|link| !link.relay.tracker.nothing_outstanding())
    }

    /// True if the linked server owes nothing and is outside a transaction (its last
    /// ReadyForQuery said `I`): a transaction ended, for the statistics.
    pub fn link_outside_transaction(&self) -> bool {
        self.link.as_ref().is_some_and(|link| {
            link.relay.tracker.nothing_outstanding()
                && link.relay.tracker.status() == qcp_codec::TransactionStatus::Idle
        })
    }

    /// How many named prepared statements the client has (Smart mode).
    pub fn statement_count(&self) -> usize {
        self.statements.len()
    }

    /// Takes what the statement rewrites counted on the linked server connection.
    pub fn take_tally(&mut self) -> StatementTally {
        self.link
            .as_mut()
            .map(|link| std::mem::take(&mut link.relay.tally))
            .unwrap_or_default()
    }

    /// True if the server's last message was an ErrorResponse.
    pub fn last_was_error(&self) -> bool {
        self.last_was_error
    }

    /// Everything scanned for the client and not yet written (to flush before closing).
    pub fn pending_client_bytes(&self) -> Vec<u8> {
        // In the order `client_output` hands them out: qcp's answers, its own bytes for
        // the linked server's client, the relayed run.
        let own = self.link.as_ref().map_or(&[][..], |l| &l.relay.to_client);
        [&self.answers[..], own, self.down.ready()].concat()
    }

    fn flow(&self, peer: Peer) -> &Flow {
        match peer {
            Peer::Client => &self.up,
            Peer::Server => &self.down,
        }
    }

    fn flow_mut(&mut self, peer: Peer) -> &mut Flow {
        match peer {
            Peer::Client => &mut self.up,
            Peer::Server => &mut self.down,
        }
    }
}

/// `n` bytes of `own` then of the flow's ready run were written.
#[inline]
fn written(own: &mut Vec<u8>, flow: &mut Flow, n: usize) {
    if own.is_empty() {
        flow.wrote(n);
    } else if n >= own.len() {
        flow.wrote(n.saturating_sub(own.len()));
        own.clear();
    } else {
        consume_own(own, n);
    }
}

/// Drops the first `n` bytes of `own`.
#[inline]
fn consume_own(own: &mut Vec<u8>, n: usize) {
    own.drain(..n.min(own.len()));
}

fn frame_error_text(error: FrameError) -> String {
    match error {
        FrameError::Header(error) => error.to_string(),
    }
}

#[cfg(test)]
mod tests;
