//! One logged-in client on an engine thread: moves bytes between its socket and a server
//! connection for the sans-IO [`Session`](crate::relay::session::Session), with readiness
//! the kernel reported (never asked for), and does what the session cannot: take a server
//! connection from the pool (or wait in its queue), wait for an arena chunk, give the
//! connection back, close.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use futures::channel::oneshot;
use qcp_codec::Header;
use tracing::{debug, info, warn};

use super::event_loop::{Context, Entry};
use super::{wake, Adopted, Command, Loop, Registration};
use crate::arena::AcquireChunk;
use crate::arena::Priority;
use crate::config::RelayMode;
use crate::driver::clients::ClientHandle;
use crate::driver::io::{timeout, Inbox, Stream};
use crate::driver::link::LinkError;
use crate::driver::login::{arena_exhausted, link_error_fatal};
use crate::driver::server::{self, Credentials, LoginContext, ServerConn, ServerError, ServerIo};
use crate::driver::shared::{PoolEntry, Shared};
use crate::driver::spawn;
use crate::driver::sync::{bring_in_line, SyncError};
use crate::errors::{sqlstate, PgError, Refusal};
use crate::pool::{Checkout, Grant, Waiting};
use crate::relay::params::{ClientParams, ParamSource};
use crate::relay::session::{Event, Peer, Space};

mod end;
mod link;
mod stats;
mod tasks;

type Core = crate::relay::session::Session<ServerIo>;

/// Whether the client is still there after [`Client::drive`].
pub enum Life {
    /// It waits for a socket, a command or a wake-up.
    Alive,
    /// Its session ended; its slot can go.
    Ended,
}

/// Why opening a server connection for a client failed.
pub enum LinkFailure {
    /// The server did not answer: another server that serves the database may.
    Unreachable { server: String, error: ServerError },
    /// The client is told this and closed.
    Refused(Refusal),
}

/// What the kernel last said about one socket.
#[derive(Clone, Copy, Debug, Default)]
struct Ready {
    /// Bytes (or an end of stream) may be waiting: read until a read comes back short.
    readable: bool,
    /// A write may go through: write until one would block.
    writable: bool,
    /// The peer closed (or the socket failed): the kernel says so once, so reading goes on
    /// until a read returns the end of the stream, however short the reads before it.
    closed: bool,
}

/// One readiness event, as the engine thread saw it.
#[derive(Clone, Copy, Debug)]
pub struct Readiness {
    /// Bytes arrived (or the peer closed, or the socket failed).
    pub readable: bool,
    /// Room to write appeared (or the socket failed).
    pub writable: bool,
    /// The peer closed its side, or the socket failed.
    pub closed: bool,
}

impl Ready {
    fn update(&mut self, event: Readiness) {
        self.readable |= event.readable || event.closed;
        self.writable |= event.writable;
        self.closed |= event.closed;
    }
}

/// What the client waits for, besides its sockets.
enum State {
    /// Relaying (or idle): only its sockets wake it.
    Relaying,
    /// Queued in the pool for a server connection, for the request `header`.
    WaitingPool {
        waiting: Waiting<Box<ServerConn>>,
        header: Header,
    },
    /// An async task opens a server connection or syncs its parameters.
    Linking { header: Header },
    /// Waiting for an arena chunk (boxed: rare, and every idle client keeps room for its
    /// state).
    WaitingChunk(Box<ChunkWait>),
    /// The session is over (its slot goes when the thread sees this).
    Ended,
}

/// Waiting for an arena chunk to read `peer` into, until `deadline`.
struct ChunkWait {
    peer: Peer,
    acquire: AcquireChunk,
    deadline: Option<Instant>,
}

/// Why a session ended (for the log).
enum End {
    /// The client sent Terminate or closed its socket.
    ClientLeft,
    /// qcp closed the client after telling it why (and what the server said before).
    Refused { refusal: Refusal, flush: Vec<u8> },
}

/// What one step of [`Client::drive`] led to.
enum Step {
    /// Nothing more to do until something wakes the client.
    Pending,
    /// The state changed: look again.
    Continue,
    /// The session is over.
    End(End),
}

/// One logged-in client.
pub struct Client {
    /// Told apart from an earlier client that had the same token.
    serial: u64,
    token: usize,
    /// The client's connection (`None` once the session ended and the async side took it).
    stream: Option<Stream>,
    entry: Arc<PoolEntry>,
    credentials: Arc<Credentials>,
    handle: Arc<ClientHandle>,
    core: Core,
    state: State,
    /// Wakes this client on its thread (pool grants, arena chunks, cancel, shutdown).
    waker: Waker,
    client_ready: Ready,
    server_ready: Ready,
    /// Servers that did not answer for the current request (the next is tried).
    unreachable: u16,
    /// A shutdown is under way; leave at the next idle point.
    shutting_down: bool,
    /// Dropped when the session ends.
    guard: async_std::channel::Sender<()>,
    span: tracing::Span,
    /// What is in progress, for the statistics.
    timing: stats::Timing,
}

impl Client {
    /// A client adopted by thread `home` under `token`.
    pub fn new(
        adopted: Adopted,
        token: usize,
        serial: u64,
        home: &Arc<Loop>,
        shared: &Shared,
    ) -> Self {
        let Adopted {
            stream,
            login,
            guard,
            span,
        } = adopted;
        let crate::driver::login::LoggedIn {
            entry,
            credentials,
            wanted,
            handle,
            inbox,
        } = *login;
        let smart = shared.config().relay_mode == RelayMode::Smart;
        let core = Core::new(
            smart,
            shared.limits(),
            Arc::clone(&entry.statements),
            wanted,
            Some(inbox.into_parts()),
        );
        let waker = wake::for_client(home, token);
        handle.waker.register(&waker);
        Client {
            serial,
            token,
            stream: Some(stream),
            entry,
            credentials,
            handle,
            core,
            state: State::Relaying,
            waker,
            // Whatever the client sent meanwhile is read at once; the registration reports
            // the rest.
            client_ready: Ready {
                readable: true,
                writable: true,
                closed: false,
            },
            server_ready: Ready::default(),
            unreachable: 0,
            shutting_down: false,
            guard,
            span,
            timing: stats::Timing::default(),
        }
    }

    /// Its serial number.
    pub fn serial(&self) -> u64 {
        self.serial
    }

    /// Its tracing span (peer, user, database).
    pub fn span(&self) -> &tracing::Span {
        &self.span
    }

    /// Its connection (`None` once the session ended).
    pub fn stream(&self) -> Option<&Stream> {
        self.stream.as_ref()
    }

    /// The kernel reported on the client's socket.
    pub fn client_ready(&mut self, readiness: Readiness) {
        self.client_ready.update(readiness);
    }

    /// The kernel reported on the linked server connection's socket.
    pub fn server_ready(&mut self, readiness: Readiness) {
        self.server_ready.update(readiness);
    }

    /// Does everything that can be done now.
    pub fn drive(&mut self, cx: &mut Context<'_>) -> Life {
        let span = self.span.clone();
        let _entered = span.enter();
        // A cancel or shutdown wake-up takes the waker out of the handle: put it back.
        self.handle.waker.register(&self.waker);
        for _ in 0..1_000_000 {
            let step = match &self.state {
                State::Relaying => self.pump(cx),
                State::WaitingPool { .. } => self.poll_pool(cx),
                State::Linking { .. } => Step::Pending,
                State::WaitingChunk(_) => self.poll_chunk(cx),
                State::Ended => return Life::Ended,
            };
            match step {
                Step::Pending => return Life::Alive,
                Step::Continue => {}
                Step::End(end) => {
                    self.finish(end, cx);
                    return Life::Ended;
                }
            }
        }
        // A loop that never settles is a bug; yield to the other clients and come back.
        warn!("engine: a client kept busy for a million steps");
        cx.home.wake_token(self.token);
        Life::Alive
    }

    /// Moves bytes both ways until nothing moves; acts on the session's events.
    fn pump(&mut self, cx: &mut Context<'_>) -> Step {
        let mut progress = false;
        // A direction that needs a chunk waits only once the other one can do nothing more:
        // the other may be about to give its own chunk back.
        let mut need_chunk = None;

        // Server to client: write what is ready, scan what was read, read more.
        match self.write_client(cx.home.index) {
            Ok(moved) => progress |= moved,
            Err(event) => return self.on_event(event, cx),
        }
        if self.core.is_linked() {
            match self.core.scan_down() {
                Ok(moved) => progress |= moved,
                Err(event) => return self.on_event(event, cx),
            }
            self.note_answers(cx);
            match self.fill(Peer::Server, cx) {
                Ok(moved) => progress |= moved,
                Err(Event::NeedChunk(peer)) => need_chunk = Some(peer),
                Err(event) => return self.on_event(event, cx),
            }
        }

        // Client to server: scan (before writing, so that a rewritten message and the bytes
        // after it leave in one write), write, read more.
        match self.core.scan_up() {
            Ok(moved) => progress |= moved,
            Err(event) => return self.on_event(event, cx),
        }
        self.note_requests(cx);
        match self.write_server() {
            Ok(moved) => progress |= moved,
            Err(event) => return self.on_event(event, cx),
        }
        match self.fill(Peer::Client, cx) {
            Ok(moved) => progress |= moved,
            Err(Event::NeedChunk(peer)) => need_chunk = need_chunk.or(Some(peer)),
            Err(event) => return self.on_event(event, cx),
        }

        self.core.release_idle_chunks();
        if let Some(peer) = need_chunk {
            if !progress {
                return self.on_event(Event::NeedChunk(peer), cx);
            }
            return Step::Continue;
        }
        if self.core.wants_release() {
            return self.on_event(Event::Release, cx);
        }
        if cx.shared.is_forced() {
            return refuse(shutting_down());
        }
        if self.handle.is_killed() {
            return refuse(killed());
        }
        if cx.shared.is_draining() && !self.shutting_down && self.core.is_idle() {
            self.shutting_down = true;
            return refuse(shutting_down());
        }
        if progress {
            Step::Continue
        } else {
            Step::Pending
        }
    }

    /// Acts on what the session asked for.
    fn on_event(&mut self, event: Event, cx: &mut Context<'_>) -> Step {
        match event {
            Event::NeedServer(header) => {
                if cx.shared.is_draining() {
                    return refuse(shutting_down());
                }
                self.unreachable = 0;
                self.checkout(header, cx)
            }
            Event::NeedChunk(peer) => {
                let limit = cx.shared.config().timeouts.query_wait;
                let deadline = (!limit.is_zero()).then(|| Instant::now() + limit);
                if let Some(deadline) = deadline {
                    cx.timers
                        .push(std::cmp::Reverse((deadline, self.token, self.serial)));
                }
                let acquire = cx.shared.arena.acquire(self.core.priority());
                self.state = State::WaitingChunk(Box::new(ChunkWait {
                    peer,
                    acquire,
                    deadline,
                }));
                Step::Continue
            }
            Event::Release => {
                self.release(cx);
                Step::Continue
            }
            Event::ClientGone => Step::End(End::ClientLeft),
            Event::ServerGone => Step::End(self.server_gone(cx)),
            Event::ClientError(error) => refuse(error),
            Event::ServerError(reason) => {
                warn!(%reason, "server sent invalid protocol data");
                refuse(PgError::fatal(
                    sqlstate::PROTOCOL_VIOLATION,
                    format!("server sent invalid protocol data: {reason}"),
                ))
            }
        }
    }

    /// Writes what the session has for the client (one vectored write).
    fn write_client(&mut self, thread: usize) -> Result<bool, Event> {
        if !self.client_ready.writable {
            return Ok(false);
        }
        let Some(stream) = &mut self.stream else {
            return Err(Event::ClientGone);
        };
        let (own, relayed) = self.core.client_output();
        if own.is_empty() && relayed.is_empty() && !stream.wants_flush() {
            return Ok(false);
        }
        match stream.try_write_pair(own, relayed) {
            Ok(n) => {
                self.core.client_written(n);
                self.note_sent(thread, n);
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                self.client_ready.writable = false;
                Ok(false)
            }
            Err(_) => Err(Event::ClientGone),
        }
    }

    /// Writes what the session has for the linked server (one vectored write).
    fn write_server(&mut self) -> Result<bool, Event> {
        if !self.server_ready.writable {
            return Ok(false);
        }
        let Some((io, own, relayed)) = self.core.linked_output() else {
            return Ok(false);
        };
        if own.is_empty() && relayed.is_empty() && !io.stream.wants_flush() {
            return Ok(false);
        }
        match io.stream.try_write_pair(own, relayed) {
            Ok(n) => {
                self.core.server_written(n);
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                self.server_ready.writable = false;
                Ok(false)
            }
            Err(_) => Err(Event::ServerGone),
        }
    }

    /// Reads what `peer` has into the session's free space (a chunk is taken only when the
    /// kernel said the peer has something to say: an idle client holds no memory).
    /// `Err(NeedChunk)`: bytes wait and the arena has no chunk now.
    fn fill(&mut self, peer: Peer, cx: &mut Context<'_>) -> Result<bool, Event> {
        let ready = match peer {
            Peer::Client => self.client_ready,
            Peer::Server => self.server_ready,
        };
        if !ready.readable {
            return Ok(false);
        }
        let (space, server) = self.core.read_space(peer, &cx.shared.arena);
        let space = match space {
            Space::Free(space) => space,
            Space::Full => return Ok(false),
            Space::NeedChunk => return Err(Event::NeedChunk(peer)),
        };
        let stream = match peer {
            Peer::Client => match &mut self.stream {
                Some(stream) => stream,
                None => return Err(Event::ClientGone),
            },
            Peer::Server => match server {
                Some(io) => &mut io.stream,
                None => return Ok(false),
            },
        };
        // Under TLS a short read only means a record ended: only WouldBlock says "empty".
        let short_means_empty = !stream.is_tls();
        let asked = space.len();
        let gone = match peer {
            Peer::Client => Event::ClientGone,
            Peer::Server => Event::ServerGone,
        };
        match stream.try_read(space) {
            Ok(0) => Err(gone),
            Ok(n) => {
                self.core.received(peer, n);
                if peer == Peer::Client {
                    self.note_received(cx.home.index, n);
                }
                // Less than asked for: the socket is empty now, and the kernel reports the
                // next bytes.
                if n < asked && !ready.closed && short_means_empty {
                    self.set_readable(peer, false);
                }
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock && !ready.closed => {
                self.set_readable(peer, false);
                Ok(false)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(true),
            Err(_) => Err(gone),
        }
    }

    fn set_readable(&mut self, peer: Peer, readable: bool) {
        match peer {
            Peer::Client => self.client_ready.readable = readable,
            Peer::Server => self.server_ready.readable = readable,
        }
    }

    /// Waits for an arena chunk, until the wait's deadline.
    fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Step {
        let State::WaitingChunk(wait) = &mut self.state else {
            return Step::Continue;
        };
        let ChunkWait {
            peer,
            acquire,
            deadline,
        } = &mut **wait;
        let peer = *peer;
        let mut context = std::task::Context::from_waker(&self.waker);
        match Pin::new(acquire).poll(&mut context) {
            Poll::Ready(chunk) => {
                self.core.give_chunk(peer, chunk);
                self.state = State::Relaying;
                Step::Continue
            }
            Poll::Pending => {
                let killed = self.handle.is_killed();
                if deadline.is_some_and(|d| Instant::now() >= d) || cx.shared.is_forced() || killed
                {
                    self.state = State::Relaying;
                    if killed {
                        return refuse(self::killed());
                    }
                    if cx.shared.is_forced() {
                        return refuse(shutting_down());
                    }
                    Shared::count(&cx.shared.stats.arena_timeouts);
                    warn!("arena exhausted: no free chunk within timeouts.query_wait");
                    return refuse(arena_exhausted());
                }
                Step::Pending
            }
        }
    }
}

fn refuse(error: PgError) -> Step {
    Step::End(End::Refused {
        refusal: Refusal::Error(error),
        flush: Vec::new(),
    })
}

/// What KILL and KILL_CLIENT tell a client, in PostgreSQL's words for a terminated backend.
fn killed() -> PgError {
    PgError::fatal(
        sqlstate::ADMIN_SHUTDOWN,
        "terminating connection due to administrator command",
    )
    .with_hint("an administrator closed this connection in qcp's console; reconnect")
}

fn shutting_down() -> PgError {
    PgError::fatal(
        sqlstate::ADMIN_SHUTDOWN,
        "terminating connection because qcp is shutting down",
    )
    .with_hint("reconnect once qcp is back")
}

#[cfg(test)]
mod tests {
    /// Every connected client keeps this for as long as it stays, mostly idle: what is not
    /// needed between transactions (a server connection, prepared-statement maps, a large
    /// Parse being gathered) lives behind a pointer, so this stays small. (448: the
    /// statistics' three start times took 24 bytes; dropping a 16-byte start instant that
    /// only fed a log line paid for most of them.)
    #[test]
    fn an_idle_client_stays_small() {
        let size = std::mem::size_of::<super::Client>();
        assert!(
            size <= 448,
            "Client is {size} bytes; keep idle clients cheap"
        );
    }
}
