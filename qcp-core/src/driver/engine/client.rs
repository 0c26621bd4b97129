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
use crate::driver::io::{timeout, try_read, try_write_pair, write_all, Inbox, Socket};
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
    /// The client's socket (`None` once the session ended and the async side took it).
    socket: Option<Socket>,
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
    unreachable: usize,
    /// A shutdown is under way; leave at the next idle point.
    shutting_down: bool,
    /// Dropped when the session ends.
    guard: async_std::channel::Sender<()>,
    span: tracing::Span,
    started: Instant,
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
            socket,
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
        let smart = shared.config.relay_mode == RelayMode::Smart;
        let core = Core::new(
            smart,
            shared.limits,
            Arc::clone(&entry.statements),
            wanted,
            Some(inbox.into_parts()),
        );
        let waker = wake::for_client(home, token);
        handle.waker.register(&waker);
        Client {
            serial,
            token,
            socket: Some(socket),
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
            started: Instant::now(),
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

    /// Its socket (`None` once the session ended).
    pub fn socket(&self) -> Option<&Socket> {
        self.socket.as_ref()
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
        match self.write_client() {
            Ok(moved) => progress |= moved,
            Err(event) => return self.on_event(event, cx),
        }
        if self.core.is_linked() {
            match self.core.scan_down() {
                Ok(moved) => progress |= moved,
                Err(event) => return self.on_event(event, cx),
            }
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
        if cx.shared.is_shutting_down() && !self.shutting_down && self.core.is_idle() {
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
                if cx.shared.is_shutting_down() {
                    return refuse(shutting_down());
                }
                self.unreachable = 0;
                self.checkout(header, cx)
            }
            Event::NeedChunk(peer) => {
                let limit = cx.shared.config.timeouts.query_wait;
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
    fn write_client(&mut self) -> Result<bool, Event> {
        if !self.client_ready.writable {
            return Ok(false);
        }
        let (own, relayed) = self.core.client_output();
        if own.is_empty() && relayed.is_empty() {
            return Ok(false);
        }
        let Some(socket) = &self.socket else {
            return Err(Event::ClientGone);
        };
        match try_write_pair(socket, own, relayed) {
            Ok(n) => {
                self.core.client_written(n);
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
        let Some(link) = self.core.linked() else {
            return Ok(false);
        };
        let (own, relayed) = self.core.server_output();
        if own.is_empty() && relayed.is_empty() {
            return Ok(false);
        }
        match try_write_pair(&link.io.socket, own, relayed) {
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
        let socket = match peer {
            Peer::Client => match &self.socket {
                Some(socket) => socket,
                None => return Err(Event::ClientGone),
            },
            Peer::Server => match server {
                Some(io) => &io.socket,
                None => return Ok(false),
            },
        };
        let asked = space.len();
        let gone = match peer {
            Peer::Client => Event::ClientGone,
            Peer::Server => Event::ServerGone,
        };
        match try_read(socket, space) {
            Ok(0) => Err(gone),
            Ok(n) => {
                self.core.received(peer, n);
                // Less than asked for: the socket is empty now, and the kernel reports the
                // next bytes.
                if n < asked && !ready.closed {
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

    /// Asks the pool for a server connection for the request `header`.
    fn checkout(&mut self, header: Header, cx: &mut Context<'_>) -> Step {
        let now = Instant::now();
        let limit = cx.shared.config.timeouts.query_wait;
        let deadline = (!limit.is_zero()).then(|| now + limit);
        match self.entry.pool.checkout(now, deadline) {
            Checkout::Now(grant) => self.granted(grant, header, cx),
            Checkout::Wait(waiting) => {
                if let Some(deadline) = deadline {
                    cx.shared.wait_timer.queued(deadline);
                }
                cx.shared.stats.waiting.fetch_add(1, Relaxed);
                self.handle.set_waiting(true);
                self.state = State::WaitingPool { waiting, header };
                Step::Continue
            }
        }
    }

    /// Waits in the pool's queue: for a grant, the end of the wait, or a cancel.
    fn poll_pool(&mut self, cx: &mut Context<'_>) -> Step {
        let State::WaitingPool { waiting, header } = &mut self.state else {
            return Step::Continue;
        };
        let header = *header;
        let mut context = std::task::Context::from_waker(&self.waker);
        let polled = Pin::new(&mut *waiting).poll(&mut context);
        let outcome = match polled {
            Poll::Ready(Ok(grant)) => Some(Ok(grant)),
            // The pool drops a waiter only once its deadline has passed.
            Poll::Ready(Err(oneshot::Canceled)) => Some(Err(())),
            Poll::Pending if self.handle.take_cancel() => {
                // Leaving the queue: a grant that arrived meanwhile goes back to the pool.
                waiting.close();
                if let Ok(Some(grant)) = waiting.try_recv() {
                    self.entry.pool.give_back(grant, Instant::now());
                }
                self.left_queue(cx);
                self.state = State::Relaying;
                self.core.cancelled_while_waiting(header);
                return Step::Continue;
            }
            Poll::Pending if cx.shared.is_forced() => {
                self.left_queue(cx);
                self.state = State::Relaying;
                return refuse(shutting_down());
            }
            Poll::Pending => None,
        };
        match outcome {
            None => Step::Pending,
            Some(result) => {
                self.left_queue(cx);
                self.state = State::Relaying;
                match result {
                    Ok(grant) => self.granted(grant, header, cx),
                    Err(()) => Step::End(End::Refused {
                        refusal: link_error_fatal(LinkError::PoolTimeout),
                        flush: Vec::new(),
                    }),
                }
            }
        }
    }

    fn left_queue(&self, cx: &mut Context<'_>) {
        cx.shared.stats.waiting.fetch_sub(1, Relaxed);
        self.handle.set_waiting(false);
    }

    /// The pool granted an idle connection, or a slot to open one.
    fn granted(
        &mut self,
        grant: Grant<Box<ServerConn>>,
        header: Header,
        cx: &mut Context<'_>,
    ) -> Step {
        match grant {
            Grant::Idle { conn, server, .. } => {
                if !healthy(&conn, cx) {
                    debug!(
                        server,
                        pid = conn.pid(),
                        "dropping a pooled server connection that went away while idle"
                    );
                    drop(conn);
                    self.entry.pool.closed(server, Instant::now());
                    return self.checkout(header, cx);
                }
                self.use_conn(conn, header, cx)
            }
            Grant::Open { server } => {
                self.state = State::Linking { header };
                let task = OpenTask {
                    shared: Arc::clone(cx.shared),
                    entry: Arc::clone(&self.entry),
                    credentials: Arc::clone(&self.credentials),
                    home: Arc::clone(cx.home),
                    token: self.token,
                    serial: self.serial,
                    server,
                };
                spawn(task.run());
                Step::Pending
            }
        }
    }

    /// A connection for the request: registered with this thread, then linked once its
    /// parameters are in line with the client's.
    fn use_conn(
        &mut self,
        mut conn: Box<ServerConn>,
        header: Header,
        cx: &mut Context<'_>,
    ) -> Step {
        if let Err(error) = self.own(&mut conn, cx) {
            warn!(%error, "engine: cannot register a server connection");
            self.entry.pool.closed(conn.io.server, Instant::now());
            return self.checkout(header, cx);
        }
        let wanted = self.core.wanted();
        if conn.in_line.holds(wanted, &conn.params) {
            return self.link(conn, Vec::new(), cx);
        }
        if wanted.sync_sql(&conn.params).is_none() {
            conn.in_line.record(wanted, &conn.params);
            return self.link(conn, Vec::new(), cx);
        }
        // The parameters differ: an async task sets them (rare once clients look alike).
        self.state = State::Linking { header };
        let task = SyncTask {
            shared: Arc::clone(cx.shared),
            home: Arc::clone(cx.home),
            token: self.token,
            serial: self.serial,
            smart: self.core.is_smart(),
            wanted: Box::new(wanted.clone()),
            conn,
        };
        spawn(task.run());
        Step::Pending
    }

    /// Makes this client the owner of `conn`'s registration on this thread, registering it
    /// here first if it is new or lives on another thread.
    fn own(&self, conn: &mut ServerConn, cx: &mut Context<'_>) -> io::Result<()> {
        if let Some(reg) = &conn.io.reg {
            if reg.home.index == cx.home.index {
                if let Some(Entry::Server { owner, heard }) = cx.slab.get_mut(reg.token) {
                    *owner = Some(self.token);
                    *heard = false;
                    return Ok(());
                }
            }
            // Registered with another thread: it moves here (rare: a thread takes another
            // thread's idle connection only when it has none of its own).
            reg.home.deregister(&conn.io.socket);
        }
        let token = cx.slab.insert(Entry::Server {
            owner: Some(self.token),
            heard: false,
        });
        if let Err(error) = cx.home.register(&conn.io.socket, token) {
            cx.slab.remove(token);
            return Err(error);
        }
        // The old registration (if any) tells its thread to free its token.
        conn.io.reg = Some(Registration {
            home: Arc::clone(cx.home),
            token,
        });
        Ok(())
    }

    /// Links `conn` (in line with the client) and tells the client `statuses`.
    fn link(&mut self, conn: Box<ServerConn>, statuses: Vec<u8>, cx: &mut Context<'_>) -> Step {
        self.core.answer(&statuses);
        self.handle.set_target(Some(Arc::clone(&conn.io.cancel)));
        cx.shared.stats.active.fetch_add(1, Relaxed);
        debug!(server_pid = conn.pid(), "linked");
        // An idle backend has said nothing; a write goes through until it would block.
        self.server_ready = Ready {
            readable: false,
            writable: true,
            closed: false,
        };
        self.state = State::Relaying;
        self.core
            .link(conn, cx.shared.config.limits.max_prepared_statements);
        Step::Continue
    }

    /// The async side opened a connection for this client (or could not).
    pub fn opened(&mut self, result: Result<Box<ServerConn>, LinkFailure>, cx: &mut Context<'_>) {
        let State::Linking { header } = self.state else {
            // Not waiting for one any more: the connection goes back (or closes).
            if let Ok(conn) = result {
                give_back(cx.shared, &self.entry, conn);
            }
            return;
        };
        let step = match result {
            Ok(conn) => {
                self.state = State::Relaying;
                self.use_conn(conn, header, cx)
            }
            Err(LinkFailure::Unreachable { server, error }) => {
                self.unreachable += 1;
                // Another server may serve this database: try it before failing.
                if self.unreachable < cx.shared.config.servers.len() {
                    self.state = State::Relaying;
                    self.checkout(header, cx)
                } else {
                    Step::End(End::Refused {
                        refusal: link_error_fatal(LinkError::Server { server, error }),
                        flush: Vec::new(),
                    })
                }
            }
            Err(LinkFailure::Refused(refusal)) => Step::End(End::Refused {
                refusal,
                flush: Vec::new(),
            }),
        };
        self.after_command(step, cx);
    }

    /// The async side synced a connection's parameters for this client.
    pub fn synced(
        &mut self,
        conn: Box<ServerConn>,
        wanted: ClientParams,
        result: Result<Vec<u8>, SyncError>,
        cx: &mut Context<'_>,
    ) {
        *self.core.wanted_mut() = wanted;
        let step = match result {
            Ok(statuses) => self.link(conn, statuses, cx),
            Err(SyncError::Rejected(message)) => {
                // A setting the client asked for is invalid: PostgreSQL would have refused
                // the connection. The server connection itself is fine.
                self.disown(&conn, cx);
                give_back(cx.shared, &self.entry, conn);
                Step::End(End::Refused {
                    refusal: Refusal::Server(message),
                    flush: Vec::new(),
                })
            }
            Err(SyncError::Broken(message)) => {
                self.entry.pool.closed(conn.io.server, Instant::now());
                Step::End(End::Refused {
                    refusal: Refusal::Server(message),
                    flush: Vec::new(),
                })
            }
            Err(SyncError::Arena) => {
                self.disown(&conn, cx);
                give_back(cx.shared, &self.entry, conn);
                Step::End(End::Refused {
                    refusal: arena_exhausted().into(),
                    flush: Vec::new(),
                })
            }
        };
        self.after_command(step, cx);
    }

    /// A command's step that ended the session is finished here; the thread drives the
    /// client next (a finished client stays in its slot as ended).
    fn after_command(&mut self, step: Step, cx: &mut Context<'_>) {
        if let Step::End(end) = step {
            self.finish(end, cx);
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
                if deadline.is_some_and(|d| Instant::now() >= d) || cx.shared.is_forced() {
                    self.state = State::Relaying;
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

    /// Smart mode: gives the idle server connection back to the pool.
    fn release(&mut self, cx: &mut Context<'_>) {
        if let Some(conn) = self.core.unlink() {
            self.unlinked(cx);
            self.disown(&conn, cx);
            give_back(cx.shared, &self.entry, conn);
        }
    }

    fn unlinked(&self, cx: &mut Context<'_>) {
        self.handle.set_target(None);
        cx.shared.stats.active.fetch_sub(1, Relaxed);
    }

    /// `conn` leaves this client: its events no longer concern it.
    fn disown(&self, conn: &ServerConn, cx: &mut Context<'_>) {
        if let Some(reg) = &conn.io.reg {
            if reg.home.index == cx.home.index {
                if let Some(Entry::Server { owner, heard }) = cx.slab.get_mut(reg.token) {
                    *owner = None;
                    *heard = false;
                }
            }
        }
    }

    /// The server closed while linked: what it said goes to the client, then why.
    fn server_gone(&mut self, cx: &mut Context<'_>) -> End {
        let last_was_error = self.core.last_was_error();
        let flush = self.core.pending_client_bytes();
        if let Some(conn) = self.core.unlink() {
            self.unlinked(cx);
            self.entry.pool.closed(conn.io.server, Instant::now());
        }
        if last_was_error {
            return End::Refused {
                refusal: Refusal::Silent,
                flush,
            };
        }
        let database = self.entry.pool.key().database.clone();
        End::Refused {
            refusal: Refusal::Error(
                PgError::fatal(
                    sqlstate::CONNECTION_FAILURE,
                    format!("the server connection for database \"{database}\" was lost"),
                )
                .with_hint(
                    "the server may have restarted or terminated the backend; reconnect and retry",
                ),
            ),
            flush,
        }
    }

    /// Ends the session: the last words to the client, and the server connection back to
    /// the pool if it is clean (else closed), happen on the async side, which may wait.
    fn finish(&mut self, end: End, cx: &mut Context<'_>) {
        self.state = State::Ended;
        let Some(socket) = self.socket.take() else {
            return;
        };
        // Off this thread: whatever happens to the socket now is no client's business here.
        cx.home.deregister(&socket);
        cx.shared.clients.unregister(self.handle.pid);
        let clean = self.core.link_is_clean();
        let busy = self.core.link_busy();
        let conn = self.core.unlink();
        if let Some(conn) = &conn {
            self.unlinked(cx);
            self.disown(conn, cx);
        }
        let duration_ms = self.started.elapsed().as_millis() as u64;
        let mut last_words = Vec::new();
        match &end {
            End::ClientLeft => {
                info!(duration_ms, reason = "client left", "client disconnected")
            }
            End::Refused { refusal, flush } => {
                info!(duration_ms, reason = %refusal, "client closed by qcp");
                last_words.extend_from_slice(flush);
                if let Some(message) = refusal.message() {
                    last_words.extend_from_slice(&message);
                }
            }
        }
        let finish = Finish {
            shared: Arc::clone(cx.shared),
            entry: Arc::clone(&self.entry),
            socket,
            last_words,
            conn,
            clean,
            busy,
            smart: self.core.is_smart(),
            guard: self.guard.clone(),
        };
        spawn(tracing::Instrument::instrument(
            finish.run(),
            self.span.clone(),
        ));
    }
}

fn refuse(error: PgError) -> Step {
    Step::End(End::Refused {
        refusal: Refusal::Error(error),
        flush: Vec::new(),
    })
}

fn shutting_down() -> PgError {
    PgError::fatal(
        sqlstate::ADMIN_SHUTDOWN,
        "terminating connection because qcp is shutting down",
    )
    .with_hint("reconnect once qcp is back")
}

/// True if an idle pooled connection can be used: nothing was heard from it while it sat
/// in the pool (an idle backend says nothing; input means it is going away, e.g. a FATAL
/// from `pg_terminate_backend`). Only what was heard is checked with a read.
fn healthy(conn: &ServerConn, cx: &mut Context<'_>) -> bool {
    match &conn.io.reg {
        Some(reg) if reg.home.index == cx.home.index => match cx.slab.get(reg.token) {
            Some(Entry::Server { heard: false, .. }) => true,
            _ => conn.is_healthy(),
        },
        _ => conn.is_healthy(),
    }
}

/// Returns a clean server connection to the pool (or closes it past its lifetime). A cancel
/// still on its way to it is waited for first, on the async side: handed to another client,
/// the connection could have that client's query cancelled.
fn give_back(shared: &Arc<Shared>, entry: &Arc<PoolEntry>, conn: Box<ServerConn>) {
    if !conn.io.cancel.gate.is_idle() {
        let shared = Arc::clone(shared);
        let entry = Arc::clone(entry);
        spawn(async move {
            conn.io
                .cancel
                .gate
                .wait_idle(shared.config.timeouts.cancel_wait)
                .await;
            checkin(&shared, &entry, conn);
        });
        return;
    }
    checkin(shared, entry, conn);
}

fn checkin(shared: &Shared, entry: &PoolEntry, conn: Box<ServerConn>) {
    let (server, born) = (conn.io.server, conn.io.born);
    let lifetime = shared.config.timeouts.server_lifetime;
    if !lifetime.is_zero() && born.elapsed() >= lifetime {
        entry.pool.closed(server, Instant::now());
        return;
    }
    entry.pool.checkin(conn, server, born, Instant::now());
}

/// Opens a server connection for a client, on the async side.
struct OpenTask {
    shared: Arc<Shared>,
    entry: Arc<PoolEntry>,
    credentials: Arc<Credentials>,
    home: Arc<Loop>,
    token: usize,
    serial: u64,
    server: usize,
}

impl OpenTask {
    async fn run(self) {
        let result = self.open().await;
        self.home.send(Command::Opened {
            token: self.token,
            serial: self.serial,
            result,
        });
    }

    async fn open(&self) -> Result<Box<ServerConn>, LinkFailure> {
        let shared = &self.shared;
        let server = self.server;
        let Some(config) = shared.config.servers.get(server) else {
            self.entry.pool.closed(server, Instant::now());
            return Err(LinkFailure::Refused(link_error_fatal(LinkError::Arena)));
        };
        // The login's replies need a buffer only now, not while queued for the grant.
        let Ok(mut inbox) = Inbox::acquire(
            &shared.arena,
            Priority::Linked,
            shared.config.timeouts.query_wait,
        )
        .await
        else {
            self.entry.pool.closed(server, Instant::now());
            return Err(LinkFailure::Refused(link_error_fatal(LinkError::Arena)));
        };
        let context = LoginContext {
            inbox: &mut inbox,
            limit: shared.config.timeouts.server_connect,
            limits: shared.limits,
            scram_cache: &shared.scram_cache,
        };
        let database = &self.entry.pool.key().database;
        match server::open(
            server,
            &config.address,
            database,
            &self.credentials,
            context,
        )
        .await
        {
            Ok(conn) => {
                shared.health.succeeded(server);
                Shared::count(&shared.stats.server_connects);
                debug!(server = %config.address, pid = conn.pid(), "opened server connection");
                Ok(conn)
            }
            Err(error) => {
                self.entry.pool.closed(server, Instant::now());
                warn!(server = %config.address, %error, "server login failed");
                let unreachable = matches!(
                    error,
                    ServerError::Connect(_) | ServerError::TimedOut | ServerError::Closed
                );
                if unreachable {
                    shared.health.failed(server, Instant::now());
                    return Err(LinkFailure::Unreachable {
                        server: config.address.clone(),
                        error,
                    });
                }
                Err(LinkFailure::Refused(link_error_fatal(LinkError::Server {
                    server: config.address.clone(),
                    error,
                })))
            }
        }
    }
}

/// Brings a connection's parameters in line with a client's, on the async side.
struct SyncTask {
    shared: Arc<Shared>,
    home: Arc<Loop>,
    token: usize,
    serial: u64,
    smart: bool,
    wanted: Box<ClientParams>,
    conn: Box<ServerConn>,
}

impl SyncTask {
    async fn run(mut self) {
        let result =
            bring_in_line(&self.shared, &mut self.conn, &mut self.wanted, self.smart).await;
        self.home.send(Command::Synced {
            token: self.token,
            serial: self.serial,
            conn: self.conn,
            wanted: self.wanted,
            result,
        });
    }
}

/// The end of a session, on the async side: last words to the client, then the server
/// connection back to the pool (Session mode: after `DISCARD ALL`) or closed.
struct Finish {
    shared: Arc<Shared>,
    entry: Arc<PoolEntry>,
    socket: Socket,
    last_words: Vec<u8>,
    conn: Option<Box<ServerConn>>,
    clean: bool,
    busy: bool,
    smart: bool,
    guard: async_std::channel::Sender<()>,
}

impl Finish {
    async fn run(self) {
        let Finish {
            shared,
            entry,
            socket,
            last_words,
            conn,
            clean,
            busy,
            smart,
            guard,
        } = self;
        if !last_words.is_empty() {
            let _ = timeout(Duration::from_secs(1), write_all(&socket, &last_words)).await;
        }
        drop(socket);
        if let Some(mut conn) = conn {
            if !clean {
                // Mid-transaction or mid-result: closing is the only state PostgreSQL
                // cleans up for sure (it rolls back). A running query is cancelled first so
                // its locks go at once rather than when it next writes.
                if busy {
                    crate::driver::cancel::send(&conn.io.cancel, Duration::from_secs(2)).await;
                }
                debug!(
                    server_pid = conn.pid(),
                    "closing server connection left mid-transaction"
                );
                entry.pool.closed(conn.io.server, Instant::now());
            } else if !smart {
                // Session mode: reset everything the client may have changed.
                let reset = async {
                    let mut inbox = Inbox::new(shared.arena.acquire(Priority::Linked).await);
                    conn.run_internal("DISCARD ALL", &mut inbox, &shared.limits, |_, _| {})
                        .await
                };
                match timeout(shared.config.timeouts.server_connect, reset).await {
                    Ok(Ok(_)) => give_back(&shared, &entry, conn),
                    _ => entry.pool.closed(conn.io.server, Instant::now()),
                }
            } else {
                give_back(&shared, &entry, conn);
            }
        }
        drop(guard);
    }
}

#[cfg(test)]
mod tests {
    /// Every connected client keeps this for as long as it stays, mostly idle: what is not
    /// needed between transactions (a server connection, prepared-statement maps, a large
    /// Parse being gathered) lives behind a pointer, so this stays small.
    #[test]
    fn an_idle_client_stays_small() {
        let size = std::mem::size_of::<super::Client>();
        assert!(
            size <= 432,
            "Client is {size} bytes; keep idle clients cheap"
        );
    }
}
