//! A logged-in client: the task that moves bytes between its socket and a server connection
//! for the sans-IO [`relay::session::Session`](crate::relay::session::Session), and does
//! what only the driver can: wait for readiness, an arena chunk or a pool, link and give
//! back server connections, close.
//!
//! All I/O here is non-blocking tries plus readiness waits; when no direction can move, the
//! task sleeps until a socket, the arena, a pool or a shutdown wakes it.

use std::future::poll_fn;
use std::io;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use tracing::{debug, info, warn};

use super::clients::ClientHandle;
use super::io::{timeout, try_read, try_write_pair, write_all, Inbox, Socket};
use super::link::{self, LinkError};
use super::login::{arena_exhausted, link_error_fatal, LoggedIn};
use super::server::{Credentials, ServerConn, ServerIo};
use super::shared::{PoolEntry, Shared};
use super::sync::{bring_in_line, SyncError};
use crate::arena::Priority;
use crate::config::RelayMode;
use crate::errors::{sqlstate, PgError, Refusal};
use crate::relay::session::{Event, Peer, Space};

type Core = crate::relay::session::Session<ServerIo>;

/// What wakes the relay loop for the async side.
#[derive(Debug)]
enum Wake {
    /// The session needs the driver (see [`Event`]).
    Session(Event),
    /// A shutdown was requested and the client holds no transaction open (or the grace
    /// period is over).
    Shutdown,
}

/// Why a session ended (for the log).
#[derive(Debug)]
enum End {
    /// The client sent Terminate or closed its socket.
    ClientLeft,
    /// qcp closed the client after telling it why.
    Refused(Refusal),
}

/// Outcome of [`ClientTask::fill`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fill {
    /// Whether anything moved (bytes read, or a retry is worth it now).
    Read(bool),
    /// The peer has bytes but the arena has no free chunk right now.
    NeedChunk,
    /// The peer closed the connection (or it broke).
    Closed,
}

/// One client's task state.
pub struct ClientTask {
    shared: Arc<Shared>,
    client: Socket,
    entry: Arc<PoolEntry>,
    credentials: Arc<Credentials>,
    handle: Arc<ClientHandle>,
    core: Core,
    /// The last read from the client emptied its socket: read again only once the reactor
    /// says it is readable (reading to find out costs a system call that fails).
    client_drained: bool,
    /// The same for the linked server connection.
    server_drained: bool,
    /// A shutdown is under way; leave at the next idle point.
    shutting_down: bool,
}

/// Runs a logged-in client until it leaves or is closed.
pub async fn run(shared: Arc<Shared>, client: Socket, login: Box<LoggedIn>) {
    let LoggedIn {
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
    let mut task = ClientTask {
        shared,
        client,
        entry,
        credentials,
        handle,
        core,
        client_drained: false,
        server_drained: false,
        shutting_down: false,
    };
    let started = Instant::now();
    let end = task.relay().await;
    Box::pin(task.finish(&end)).await;
    match &end {
        End::ClientLeft => info!(
            duration_ms = started.elapsed().as_millis() as u64,
            reason = "client left",
            "client disconnected"
        ),
        End::Refused(reason) => {
            info!(duration_ms = started.elapsed().as_millis() as u64, %reason, "client closed by qcp")
        }
    }
}

impl ClientTask {
    async fn relay(&mut self) -> End {
        loop {
            let wake = poll_fn(|cx| self.poll_io(cx)).await;
            tracing::trace!(?wake, "relay event");
            let event = match wake {
                Wake::Session(event) => event,
                Wake::Shutdown => return self.refuse(shutting_down()),
            };
            match event {
                Event::NeedServer(header) => {
                    if self.shared.is_shutting_down() {
                        return self.refuse(shutting_down());
                    }
                    match Box::pin(self.link()).await {
                        Ok(true) => {}
                        Ok(false) => self.core.cancelled_while_waiting(header),
                        Err(refusal) => return End::Refused(refusal),
                    }
                }
                Event::NeedChunk(peer) => {
                    let waited = timeout(
                        self.shared.config.timeouts.query_wait,
                        self.shared.arena.acquire(self.core.priority()),
                    )
                    .await;
                    let Ok(chunk) = waited else {
                        Shared::count(&self.shared.stats.arena_timeouts);
                        warn!("arena exhausted: no free chunk within timeouts.query_wait");
                        return self.refuse(arena_exhausted());
                    };
                    self.core.give_chunk(peer, chunk);
                }
                Event::Release => self.release().await,
                Event::ClientGone => return End::ClientLeft,
                Event::ServerGone => return self.server_gone().await,
                Event::ClientError(error) => return self.refuse(error),
                Event::ServerError(reason) => {
                    warn!(%reason, "server sent invalid protocol data");
                    return self.refuse(PgError::fatal(
                        sqlstate::PROTOCOL_VIOLATION,
                        format!("server sent invalid protocol data: {reason}"),
                    ));
                }
            }
        }
    }

    /// Does every piece of non-blocking work possible; returns when something needs the
    /// async side, or `Pending` with every needed wake-up registered.
    fn poll_io(&mut self, cx: &mut Context<'_>) -> Poll<Wake> {
        self.handle.waker.register(cx.waker());
        loop {
            let mut progress = false;
            // A direction that needs a chunk waits only once the other one can do nothing
            // more: the other may be about to give its own chunk back (an arena down to its
            // last free chunk would otherwise wait on itself until query_wait).
            let mut need_chunk = None;

            // Server to client: write what is ready, scan what was read, read more.
            match self.write_client(cx) {
                Ok(moved) => progress |= moved,
                Err(event) => return Poll::Ready(Wake::Session(event)),
            }
            if self.core.is_linked() {
                match self.core.scan_down() {
                    Ok(moved) => progress |= moved,
                    Err(event) => return Poll::Ready(Wake::Session(event)),
                }
                match self.fill(Peer::Server, cx) {
                    Fill::Read(moved) => progress |= moved,
                    Fill::NeedChunk => need_chunk = Some(Peer::Server),
                    Fill::Closed => return Poll::Ready(Wake::Session(Event::ServerGone)),
                }
            }

            // Client to server: scan what was read (before writing, so that a rewritten
            // message and the bytes after it leave in one write), write, read more.
            match self.core.scan_up() {
                Ok(moved) => progress |= moved,
                Err(event) => return Poll::Ready(Wake::Session(event)),
            }
            match self.write_server(cx) {
                Ok(moved) => progress |= moved,
                Err(event) => return Poll::Ready(Wake::Session(event)),
            }
            match self.fill(Peer::Client, cx) {
                Fill::Read(moved) => progress |= moved,
                Fill::NeedChunk => need_chunk = need_chunk.or(Some(Peer::Client)),
                Fill::Closed => return Poll::Ready(Wake::Session(Event::ClientGone)),
            }

            self.core.release_idle_chunks();
            if let Some(peer) = need_chunk {
                if !progress {
                    return Poll::Ready(Wake::Session(Event::NeedChunk(peer)));
                }
                continue;
            }
            if self.core.wants_release() {
                return Poll::Ready(Wake::Session(Event::Release));
            }
            if self.shared.is_forced() {
                return Poll::Ready(Wake::Shutdown);
            }
            if self.shared.is_shutting_down() && !self.shutting_down && self.core.is_idle() {
                self.shutting_down = true;
                return Poll::Ready(Wake::Shutdown);
            }
            if !progress {
                return Poll::Pending;
            }
        }
    }

    /// Writes what the session has for the client (one vectored write).
    fn write_client(&mut self, cx: &mut Context<'_>) -> Result<bool, Event> {
        let (own, relayed) = self.core.client_output();
        if own.is_empty() && relayed.is_empty() {
            return Ok(false);
        }
        match try_write_pair(&self.client, own, relayed) {
            Ok(n) => {
                self.core.client_written(n);
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                Ok(self.client.poll_writable(cx).is_ready())
            }
            Err(_) => Err(Event::ClientGone),
        }
    }

    /// Writes what the session has for the linked server (one vectored write).
    fn write_server(&mut self, cx: &mut Context<'_>) -> Result<bool, Event> {
        let Some(link) = self.core.linked() else {
            return Ok(false);
        };
        let (own, relayed) = self.core.server_output();
        if own.is_empty() && relayed.is_empty() {
            return Ok(false);
        }
        let socket = &link.io.socket;
        match try_write_pair(socket, own, relayed) {
            Ok(n) => {
                self.core.server_written(n);
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                Ok(socket.poll_writable(cx).is_ready())
            }
            Err(_) => Err(Event::ServerGone),
        }
    }

    /// Reads what `peer` has into the session's free space. Without a chunk, one is taken
    /// only once the peer has something to say, so an idle direction holds no memory.
    fn fill(&mut self, peer: Peer, cx: &mut Context<'_>) -> Fill {
        if self.core.holds_no_chunk(peer) || self.drained(peer) {
            let Some(socket) = self.socket(peer) else {
                return Fill::Read(false);
            };
            if socket.poll_readable(cx).is_pending() {
                return Fill::Read(false);
            }
            self.set_drained(peer, false);
        }
        let (space, server) = self.core.read_space(peer, &self.shared.arena);
        let space = match space {
            Space::Free(space) => space,
            Space::Full => return Fill::Read(false),
            Space::NeedChunk => return Fill::NeedChunk,
        };
        let socket = match peer {
            Peer::Client => &self.client,
            Peer::Server => match server {
                Some(io) => &io.socket,
                None => return Fill::Read(false),
            },
        };
        let asked = space.len();
        match try_read(socket, space) {
            Ok(0) => Fill::Closed,
            Ok(n) => {
                self.core.received(peer, n);
                // Less than asked for: the socket is empty now.
                self.set_drained(peer, n < asked);
                Fill::Read(true)
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                // A readiness already seen (and now used up) may answer Ready once more;
                // the second answer is the one that registers for the next.
                let again = self.socket(peer).is_some_and(|socket| {
                    socket.poll_readable(cx).is_ready() && socket.poll_readable(cx).is_ready()
                });
                self.set_drained(peer, !again);
                Fill::Read(again)
            }
            Err(_) => Fill::Closed,
        }
    }

    fn socket(&self, peer: Peer) -> Option<&Socket> {
        match peer {
            Peer::Client => Some(&self.client),
            Peer::Server => self.core.linked().map(|link| &link.io.socket),
        }
    }

    fn drained(&self, peer: Peer) -> bool {
        match peer {
            Peer::Client => self.client_drained,
            Peer::Server => self.server_drained,
        }
    }

    fn set_drained(&mut self, peer: Peer, drained: bool) {
        match peer {
            Peer::Client => self.client_drained = drained,
            Peer::Server => self.server_drained = drained,
        }
    }

    /// Takes a server connection and brings its parameters in line with the client's.
    /// `Ok(false)`: the client cancelled while it waited for one.
    async fn link(&mut self) -> Result<bool, Refusal> {
        let shared = Arc::clone(&self.shared);
        let acquired = link::acquire(
            &shared,
            &self.entry,
            &self.entry.pool.key().database,
            &self.credentials,
            Some(&self.handle),
        )
        .await;
        let mut conn = match acquired {
            Ok(conn) => conn,
            Err(LinkError::Canceled) => return Ok(false),
            Err(error) => return Err(link_error_fatal(error)),
        };
        let smart = self.core.is_smart();
        match bring_in_line(&shared, &mut conn, self.core.wanted_mut(), smart).await {
            Ok(statuses) => self.core.answer(&statuses),
            Err(SyncError::Rejected(message)) => {
                self.give_back(conn).await;
                return Err(Refusal::Server(message));
            }
            Err(SyncError::Broken(message)) => {
                self.entry.pool.closed(conn.io.server, Instant::now());
                return Err(Refusal::Server(message));
            }
            Err(SyncError::Arena) => {
                self.give_back(conn).await;
                return Err(arena_exhausted().into());
            }
        }
        self.handle.set_target(Some(Arc::clone(&conn.io.cancel)));
        shared.stats.active.fetch_add(1, Relaxed);
        debug!(server_pid = conn.pid(), "linked");
        self.server_drained = false;
        self.core
            .link(conn, shared.config.limits.max_prepared_statements);
        Ok(true)
    }

    /// Smart mode: gives the idle server connection back to the pool.
    async fn release(&mut self) {
        if let Some(conn) = self.core.unlink() {
            self.unlinked();
            self.give_back(conn).await;
        }
    }

    fn unlinked(&self) {
        self.handle.set_target(None);
        self.shared.stats.active.fetch_sub(1, Relaxed);
    }

    /// Returns a clean server connection to the pool (or closes it past its lifetime). A
    /// cancel still on its way to it is waited for first: handed to another client, the
    /// connection could have that client's query cancelled.
    async fn give_back(&self, conn: Box<ServerConn>) {
        conn.io
            .cancel
            .gate
            .wait_idle(self.shared.config.timeouts.cancel_wait)
            .await;
        let (server, born) = (conn.io.server, conn.io.born);
        let lifetime = self.shared.config.timeouts.server_lifetime;
        if !lifetime.is_zero() && born.elapsed() >= lifetime {
            self.entry.pool.closed(server, Instant::now());
            return;
        }
        self.entry.pool.checkin(conn, server, born, Instant::now());
    }

    /// The server closed while linked: flush what it said, tell the client, end.
    async fn server_gone(&mut self) -> End {
        let last_was_error = self.core.last_was_error();
        let ready = self.core.pending_client_bytes();
        if !ready.is_empty() {
            let _ = write_all(&self.client, &ready).await;
        }
        if let Some(conn) = self.core.unlink() {
            self.unlinked();
            self.entry.pool.closed(conn.io.server, Instant::now());
        }
        if last_was_error {
            return End::Refused(Refusal::Silent);
        }
        let server = self.entry.pool.key().database.clone();
        self.refuse(
            PgError::fatal(
                sqlstate::CONNECTION_FAILURE,
                format!("the server connection for database \"{server}\" was lost"),
            )
            .with_hint(
                "the server may have restarted or terminated the backend; reconnect and retry",
            ),
        )
    }

    fn refuse(&self, error: PgError) -> End {
        End::Refused(Refusal::Error(error))
    }

    /// Cleans up after the relay loop: tells the client why (if qcp closed it), then gives
    /// the server connection back if it is clean, or closes it.
    async fn finish(&mut self, end: &End) {
        if let End::Refused(refusal) = end {
            if let Some(message) = refusal.message() {
                let _ = timeout(
                    std::time::Duration::from_secs(1),
                    write_all(&self.client, &message),
                )
                .await;
            }
        }
        self.shared.clients.unregister(self.handle.pid);
        let clean = self.core.link_is_clean();
        let busy = self.core.link_busy();
        let Some(mut conn) = self.core.unlink() else {
            return;
        };
        self.unlinked();
        if !clean {
            // Mid-transaction or mid-result: closing is the only state PostgreSQL cleans up
            // for sure (it rolls back). A running query is cancelled first so its locks go
            // at once rather than when it next writes.
            if busy {
                cancel_backend(&conn).await;
            }
            debug!(
                server_pid = conn.pid(),
                "closing server connection left mid-transaction"
            );
            self.entry.pool.closed(conn.io.server, Instant::now());
            return;
        }
        if !self.core.is_smart() {
            // Session mode: reset everything the client may have changed.
            let reset = async {
                let mut inbox = Inbox::new(self.shared.arena.acquire(Priority::Linked).await);
                conn.run_internal("DISCARD ALL", &mut inbox, &self.shared.limits, |_, _| {})
                    .await
            };
            match timeout(self.shared.config.timeouts.server_connect, reset).await {
                Ok(Ok(_)) => {}
                _ => {
                    self.entry.pool.closed(conn.io.server, Instant::now());
                    return;
                }
            }
        }
        self.give_back(conn).await;
    }
}

/// Sends a CancelRequest for `conn`'s backend (best effort, bounded).
pub async fn cancel_backend(conn: &ServerConn) {
    super::cancel::send(&conn.io.cancel, std::time::Duration::from_secs(2)).await;
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
    /// Every connected client keeps its task state for as long as it stays, mostly idle:
    /// what is not needed between transactions (a server connection, prepared-statement
    /// maps, a large Parse being gathered) lives behind a pointer, so this stays small.
    #[test]
    fn an_idle_client_task_stays_small() {
        let size = std::mem::size_of::<super::ClientTask>();
        assert!(
            size <= 320,
            "ClientTask is {size} bytes; keep idle clients cheap"
        );
    }
}
