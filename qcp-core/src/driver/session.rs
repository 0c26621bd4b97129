//! A logged-in client: the relay loop between its socket and a server connection.
//!
//! One task per client moves bytes in both directions at once: it never waits on one
//! direction while the other could progress, so a client pipelining large requests while
//! the server streams large results cannot deadlock the two. All I/O here is non-blocking
//! tries plus readiness waits; when no direction can move, the task sleeps until a socket,
//! the arena, a pool or a shutdown wakes it.
//!
//! Smart mode links a server connection for each transaction and gives it back the moment
//! the [`Tracker`] says it is idle and every byte has been written; Session mode keeps it
//! until the client leaves.

use std::future::poll_fn;
use std::io;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use qcp_codec::{encode, BackendMessage, Header, Tag, TransactionStatus};
use tracing::{debug, info, warn};

use super::clients::{CancelTarget, ClientHandle};
use super::flow::{Fill, Flow};
use super::io::{timeout, try_write, write_all, Inbox, Socket};
use super::link::{self, LinkError};
use super::login::{arena_exhausted, link_error_fatal, LoggedIn};
use super::server::{Credentials, ServerConn, ServerError};
use super::shared::{PoolEntry, Shared};
use crate::arena::Priority;
use crate::config::RelayMode;
use crate::errors::{sqlstate, PgError, Refusal};
use crate::pool::PoolKey;
use crate::relay::framer::{FrameError, Inspect, Run, Verdict};
use crate::relay::params::{ClientParams, ParamSource};
use crate::relay::tracker::Tracker;

/// A server connection lent to the client.
struct Link {
    conn: ServerConn,
    tracker: Tracker,
    /// The last message from the server was an ErrorResponse (so if it then closes, the
    /// client already knows why).
    last_was_error: bool,
}

/// Which way bytes go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Direction {
    /// Client to server.
    Up,
    /// Server to client.
    Down,
}

/// Something the non-blocking loop cannot handle by itself.
#[derive(Debug)]
enum Event {
    /// The up framer stopped at this message (no server linked, or Terminate).
    ClientMessage(Header),
    /// This direction needs an arena chunk and none is free right now.
    NeedChunk(Direction),
    /// Smart mode: the server connection is idle, give it back.
    Release,
    /// The client closed its connection (or it broke).
    ClientGone,
    /// The server closed its connection (or it broke).
    ServerGone,
    /// The client broke the protocol (or a limit).
    ClientError(PgError),
    /// The server sent something unframeable.
    ServerError(String),
    /// A shutdown was requested and the client holds no transaction open.
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

/// One client's relay state.
pub struct Session {
    shared: Arc<Shared>,
    client: Socket,
    smart: bool,
    key: PoolKey,
    entry: Arc<PoolEntry>,
    credentials: Credentials,
    /// Parameter values the client expects (start-up values, then what the server reported
    /// while linked to it).
    wanted: ClientParams,
    handle: Arc<ClientHandle>,
    up: Flow,
    down: Flow,
    link: Option<Link>,
    /// A shutdown is under way; leave at the next idle point.
    shutting_down: bool,
    /// A request cancelled while waiting for a server: drop messages up to its Sync.
    skip_to_sync: bool,
}

/// Runs a logged-in client until it leaves or is closed.
pub async fn run(shared: Arc<Shared>, client: Socket, login: LoggedIn) {
    let LoggedIn {
        key,
        entry,
        credentials,
        wanted,
        handle,
        inbox,
    } = *Box::new(login);
    let (chunk, start, end) = inbox.into_parts();
    let limits = shared.limits;
    let smart = shared.config.relay_mode == RelayMode::Smart;
    let mut session = Session {
        up: Flow::with_bytes(limits, chunk, start, end),
        down: Flow::new(limits),
        shared,
        client,
        smart,
        key,
        entry,
        credentials,
        wanted,
        handle,
        link: None,
        shutting_down: false,
        skip_to_sync: false,
    };
    let started = Instant::now();
    let end = session.relay().await;
    Box::pin(session.finish(&end)).await;
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

impl Session {
    async fn relay(&mut self) -> End {
        loop {
            let event = poll_fn(|cx| self.poll_io(cx)).await;
            tracing::trace!(?event, "relay event");
            match event {
                Event::ClientMessage(header) => {
                    if let Err(end) = self.client_message(header).await {
                        return end;
                    }
                }
                Event::NeedChunk(direction) => {
                    let priority = if self.link.is_some() {
                        Priority::Linked
                    } else {
                        Priority::New
                    };
                    let waited = timeout(
                        self.shared.config.timeouts.query_wait,
                        self.shared.arena.acquire(priority),
                    )
                    .await;
                    let Ok(chunk) = waited else {
                        Shared::count(&self.shared.stats.arena_timeouts);
                        warn!("arena exhausted: no free chunk within timeouts.query_wait");
                        return self.refuse(arena_exhausted());
                    };
                    let flow = match direction {
                        Direction::Up => &mut self.up,
                        Direction::Down => &mut self.down,
                    };
                    if flow.chunk.is_none() {
                        flow.chunk = Some(chunk);
                    }
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
                Event::Shutdown => {
                    return self.refuse(
                        PgError::fatal(
                            sqlstate::ADMIN_SHUTDOWN,
                            "terminating connection because qcp is shutting down",
                        )
                        .with_hint("reconnect once qcp is back"),
                    );
                }
            }
        }
    }

    /// Does every piece of non-blocking work possible; returns when something needs the
    /// async side, or `Pending` with every needed wake-up registered.
    fn poll_io(&mut self, cx: &mut Context<'_>) -> Poll<Event> {
        self.handle.waker.register(cx.waker());
        loop {
            let mut progress = false;
            // A direction that needs a chunk waits only once the other one can do nothing
            // more: the other may be about to give its own chunk back (an arena down to its
            // last free chunk would otherwise wait on itself until query_wait).
            let mut need_chunk = None;
            if self.link.is_some() {
                match self.poll_down(cx) {
                    Poll::Ready(Ok(moved)) => progress |= moved,
                    Poll::Ready(Err(Event::NeedChunk(direction))) => need_chunk = Some(direction),
                    Poll::Ready(Err(event)) => return Poll::Ready(event),
                    Poll::Pending => {}
                }
            }
            match self.poll_up(cx) {
                Poll::Ready(Ok(moved)) => progress |= moved,
                Poll::Ready(Err(Event::NeedChunk(direction))) => {
                    need_chunk = need_chunk.or(Some(direction));
                }
                Poll::Ready(Err(event)) => return Poll::Ready(event),
                Poll::Pending => {}
            }
            self.up.release_if_empty();
            self.down.release_if_empty();
            if let Some(direction) = need_chunk {
                if !progress {
                    return Poll::Ready(Event::NeedChunk(direction));
                }
                continue;
            }

            let quiet = self.up.is_quiet() && self.down.is_quiet();
            if let Some(link) = &self.link {
                if self.smart && quiet && link.tracker.is_idle() {
                    return Poll::Ready(Event::Release);
                }
            }
            if self.shared.is_forced() {
                return Poll::Ready(Event::Shutdown);
            }
            if self.shared.is_shutting_down() && !self.shutting_down {
                let idle_here = quiet && self.link.as_ref().is_none_or(|l| l.tracker.is_idle());
                if idle_here {
                    self.shutting_down = true;
                    return Poll::Ready(Event::Shutdown);
                }
            }
            if !progress {
                return Poll::Pending;
            }
        }
    }

    /// Server to client: write what is ready, scan what was read, read more.
    fn poll_down(&mut self, cx: &mut Context<'_>) -> Poll<Result<bool, Event>> {
        let Some(link) = self.link.as_mut() else {
            return Poll::Ready(Ok(false));
        };
        let flow = &mut self.down;
        let mut progress = false;

        // Write what is ready to the client.
        if !flow.ready().is_empty() {
            match try_write(&self.client, flow.ready()) {
                Ok(n) => {
                    flow.sent += n;
                    progress = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if self.client.poll_writable(cx).is_ready() {
                        return Poll::Ready(Ok(true));
                    }
                }
                Err(_) => return Poll::Ready(Err(Event::ClientGone)),
            }
        }

        // Scan what was read.
        if !flow.unscanned().is_empty() {
            let capacity = flow.capacity();
            let mut inspect = DownInspect {
                link,
                wanted: &mut self.wanted,
            };
            let unscanned = match &flow.chunk {
                Some(chunk) => &chunk.bytes()[flow.scanned..flow.filled],
                None => &[][..],
            };
            match flow.framer.next_run(unscanned, capacity, &mut inspect) {
                Ok(Run::Forward(n)) => {
                    flow.scanned += n;
                    progress = true;
                }
                Ok(Run::NeedMore) => {}
                Ok(Run::Discard(n)) => {
                    flow.scanned += n;
                    flow.sent = flow.scanned;
                    progress = true;
                }
                Ok(Run::Stop(_)) => {}
                Err(error) => return Poll::Ready(Err(Event::ServerError(frame_error_text(error)))),
            }
        }

        // Read more from the server.
        match flow.fill(&link.conn.socket, &self.shared.arena, Priority::Linked, cx) {
            Fill::Read(moved) => progress |= moved,
            Fill::NeedChunk => return Poll::Ready(Err(Event::NeedChunk(Direction::Down))),
            Fill::Closed => return Poll::Ready(Err(Event::ServerGone)),
        }
        if progress {
            Poll::Ready(Ok(true))
        } else {
            Poll::Pending
        }
    }

    /// Client to server: write what is ready, scan what was read, read more.
    fn poll_up(&mut self, cx: &mut Context<'_>) -> Poll<Result<bool, Event>> {
        let flow = &mut self.up;
        let mut progress = false;

        // Write what is ready to the server.
        if let Some(link) = self.link.as_mut() {
            if !flow.ready().is_empty() {
                match try_write(&link.conn.socket, flow.ready()) {
                    Ok(n) => {
                        flow.sent += n;
                        progress = true;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        if link.conn.socket.poll_writable(cx).is_ready() {
                            progress = true;
                        }
                    }
                    Err(_) => return Poll::Ready(Err(Event::ServerGone)),
                }
            }
        }

        // Scan what was read.
        if !flow.unscanned().is_empty() {
            let capacity = flow.capacity();
            let mut inspect = UpInspect {
                tracker: self.link.as_mut().map(|l| &mut l.tracker),
                too_many: false,
            };
            let unscanned = match &flow.chunk {
                Some(chunk) => &chunk.bytes()[flow.scanned..flow.filled],
                None => &[][..],
            };
            match flow.framer.next_run(unscanned, capacity, &mut inspect) {
                Ok(Run::Forward(n)) => {
                    flow.scanned += n;
                    progress = true;
                }
                Ok(Run::Discard(n)) => {
                    if flow.sent == flow.scanned {
                        flow.scanned += n;
                        flow.sent = flow.scanned;
                        progress = true;
                    }
                }
                Ok(Run::Stop(header)) => {
                    if inspect.too_many {
                        return Poll::Ready(Err(Event::ClientError(PgError::fatal(
                            sqlstate::PROGRAM_LIMIT_EXCEEDED,
                            "too many pipelined requests without reading their results",
                        ))));
                    }
                    // Act on it once everything before it has been written.
                    if flow.sent == flow.scanned {
                        return Poll::Ready(Err(Event::ClientMessage(header)));
                    }
                }
                Ok(Run::NeedMore) => {}
                Err(error) => {
                    return Poll::Ready(Err(Event::ClientError(PgError::fatal(
                        sqlstate::PROTOCOL_VIOLATION,
                        format!("invalid message from client: {}", frame_error_text(error)),
                    ))))
                }
            }
        }

        // Read more from the client (an idle client holds no chunk).
        let priority = if self.link.is_some() {
            Priority::Linked
        } else {
            Priority::New
        };
        match flow.fill(&self.client, &self.shared.arena, priority, cx) {
            Fill::Read(moved) => progress |= moved,
            Fill::NeedChunk => return Poll::Ready(Err(Event::NeedChunk(Direction::Up))),
            Fill::Closed => return Poll::Ready(Err(Event::ClientGone)),
        }
        if progress {
            Poll::Ready(Ok(true))
        } else {
            Poll::Pending
        }
    }

    /// The up framer stopped at a message: Terminate, or a request while no server is linked.
    async fn client_message(&mut self, header: Header) -> Result<(), End> {
        if header.tag == Tag::TERMINATE {
            return Err(End::ClientLeft);
        }
        if self.link.is_some() {
            return Ok(());
        }
        if self.skip_to_sync {
            // After a cancelled extended-protocol request: drop up to its Sync.
            let sync = header.tag == Tag::SYNC;
            self.discard_client_message(header);
            if sync {
                self.skip_to_sync = false;
                let mut out = Vec::with_capacity(6);
                encode::ready_for_query(&mut out, TransactionStatus::Idle);
                write_all(&self.client, &out)
                    .await
                    .map_err(|_| End::ClientLeft)?;
            }
            return Ok(());
        }
        if matches!(header.tag, Tag::COPY_DATA | Tag::COPY_DONE | Tag::COPY_FAIL) {
            // The tail of a COPY the server already failed: the server would drop it too.
            self.discard_client_message(header);
            return Ok(());
        }
        if self.shared.is_shutting_down() {
            return Err(self.refuse(
                PgError::fatal(
                    sqlstate::ADMIN_SHUTDOWN,
                    "terminating connection because qcp is shutting down",
                )
                .with_hint("reconnect once qcp is back"),
            ));
        }
        match Box::pin(self.link()).await {
            Ok(true) => Ok(()),
            Ok(false) => self.cancelled_while_waiting(header).await,
            Err(refusal) => Err(End::Refused(refusal)),
        }
    }

    /// The client cancelled the request it was waiting with: answered as PostgreSQL answers
    /// a cancelled query. A simple Query or FunctionCall gets the error and ReadyForQuery; an
    /// extended-protocol request gets the error, and everything up to its Sync is dropped
    /// before ReadyForQuery, as the server does after an error.
    async fn cancelled_while_waiting(&mut self, header: Header) -> Result<(), End> {
        let mut out = PgError::error(
            sqlstate::QUERY_CANCELED,
            "canceling statement due to user request",
        )
        .to_bytes();
        let simple = matches!(header.tag, Tag::QUERY | Tag::FUNCTION_CALL);
        self.discard_client_message(header);
        if simple {
            encode::ready_for_query(&mut out, TransactionStatus::Idle);
        } else {
            self.skip_to_sync = true;
        }
        write_all(&self.client, &out)
            .await
            .map_err(|_| End::ClientLeft)
    }

    /// Drops the message the up framer stopped at (its body follows as discarded runs).
    fn discard_client_message(&mut self, header: Header) {
        let dropped = self.up.framer.discard(header);
        self.up.scanned += dropped;
        self.up.sent = self.up.scanned;
    }

    /// Takes a server connection and brings its parameters in line with the client's.
    /// `Ok(false)`: the client cancelled while it waited for one.
    async fn link(&mut self) -> Result<bool, Refusal> {
        let shared = Arc::clone(&self.shared);
        let acquired = link::acquire(
            &shared,
            &self.entry,
            &self.key.database,
            &self.credentials,
            Some(&self.handle),
        )
        .await;
        let mut conn = match acquired {
            Ok(conn) => conn,
            Err(LinkError::Canceled) => return Ok(false),
            Err(error) => return Err(link_error_fatal(error)),
        };

        if let Some(sql) = self.wanted.sync_sql(&conn.params) {
            let Ok(mut inbox) = Inbox::acquire(
                &shared.arena,
                Priority::Linked,
                shared.config.timeouts.query_wait,
            )
            .await
            else {
                self.give_back(conn).await;
                return Err(arena_exhausted().into());
            };
            // What the statement sets (`Some`) or resets (`None`), for the bookkeeping below.
            let applied: Vec<(String, Option<String>)> = self
                .wanted
                .differences(&conn.params)
                .map(|(name, value)| (name.to_owned(), Some(value.to_owned())))
                .chain(
                    self.wanted
                        .extras(&conn.params)
                        .map(|name| (name.to_owned(), None)),
                )
                .collect();
            let mut reported = Vec::new();
            let outcome = timeout(
                shared.config.timeouts.server_connect,
                conn.run_internal(&sql, &mut inbox, &shared.limits, |name, value| {
                    reported.push((name.to_owned(), value.to_owned()))
                }),
            )
            .await;
            match outcome {
                Ok(Ok(_)) => {}
                Ok(Err(ServerError::Rejected { message, .. })) => {
                    // A setting the client asked for is invalid: PostgreSQL would have
                    // refused the connection. The server connection itself is fine.
                    self.give_back(conn).await;
                    return Err(Refusal::Server(message));
                }
                Ok(Err(error)) => {
                    self.entry.pool.closed(conn.server, Instant::now());
                    return Err(Refusal::Server(
                        error.to_client(&shared.config.servers[conn.server].address, true),
                    ));
                }
                Err(_) => {
                    self.entry.pool.closed(conn.server, Instant::now());
                    return Err(Refusal::Server(
                        ServerError::TimedOut
                            .to_client(&shared.config.servers[conn.server].address, true),
                    ));
                }
            }
            if self.smart {
                // Settings the server does not report (statement_timeout, search_path...)
                // stay on the connection when it goes back to the pool: remember them, so
                // the next client that lacks them gets them reset. (Session mode runs
                // DISCARD ALL before reuse, which resets them all.)
                for (name, value) in &applied {
                    if reported.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)) {
                        continue;
                    }
                    match value {
                        Some(value) => {
                            conn.params.set(name, value);
                        }
                        None => {
                            conn.params.remove(name);
                        }
                    }
                }
            }
            // The server's canonical spelling of each value becomes the client's, and the
            // client hears about any that differ from what it was told.
            let mut statuses = Vec::new();
            for (name, value) in &reported {
                if self.wanted.set(name, value) {
                    let _ = encode::parameter_status(&mut statuses, name, value);
                }
            }
            if !statuses.is_empty() && write_all(&self.client, &statuses).await.is_err() {
                self.give_back(conn).await;
                return Err(Refusal::Silent);
            }
        }
        self.handle.set_target(Some(CancelTarget {
            address: conn.address,
            pid: conn.pid,
            secret: conn.secret.clone(),
            gate: Arc::clone(&conn.cancel_gate),
        }));
        shared.stats.active.fetch_add(1, Relaxed);
        debug!(server_pid = conn.pid, "linked");
        self.link = Some(Link {
            conn,
            tracker: Tracker::new(),
            last_was_error: false,
        });
        Ok(true)
    }

    /// Smart mode: gives the idle server connection back to the pool.
    async fn release(&mut self) {
        if let Some(link) = self.link.take() {
            self.unlinked();
            self.give_back(link.conn).await;
        }
    }

    fn unlinked(&self) {
        self.handle.set_target(None);
        self.shared.stats.active.fetch_sub(1, Relaxed);
    }

    /// Returns a clean server connection to the pool (or closes it past its lifetime). A
    /// cancel still on its way to it is waited for first: handed to another client, the
    /// connection could have that client's query cancelled.
    async fn give_back(&self, conn: ServerConn) {
        conn.cancel_gate
            .wait_idle(self.shared.config.timeouts.cancel_wait)
            .await;
        let (server, born) = (conn.server, conn.born);
        let lifetime = self.shared.config.timeouts.server_lifetime;
        if !lifetime.is_zero() && born.elapsed() >= lifetime {
            self.entry.pool.closed(server, Instant::now());
            return;
        }
        self.entry.pool.checkin(conn, server, born, Instant::now());
    }

    /// The server closed while linked: flush what it said, tell the client, end.
    async fn server_gone(&mut self) -> End {
        let last_was_error = self.link.as_ref().is_some_and(|l| l.last_was_error);
        let ready = self.down.ready().to_vec();
        if !ready.is_empty() {
            let _ = write_all(&self.client, &ready).await;
        }
        if let Some(link) = self.link.take() {
            self.unlinked();
            self.entry.pool.closed(link.conn.server, Instant::now());
        }
        if last_was_error {
            return End::Refused(Refusal::Silent);
        }
        let server = self.key.database.clone();
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
        let Some(link) = self.link.take() else { return };
        self.unlinked();
        let clean = link.tracker.is_idle() && self.up.framer.at_boundary() && self.down.is_quiet();
        if !clean {
            // Mid-transaction or mid-result: closing is the only state PostgreSQL cleans up
            // for sure (it rolls back). A running query is cancelled first so its locks go
            // at once rather than when it next writes.
            if !link.tracker.nothing_outstanding() {
                cancel_backend(&link.conn).await;
            }
            debug!(
                server_pid = link.conn.pid,
                "closing server connection left mid-transaction"
            );
            self.entry.pool.closed(link.conn.server, Instant::now());
            return;
        }
        let mut conn = link.conn;
        if !self.smart {
            // Session mode: reset everything the client may have changed.
            let reset = async {
                let mut inbox = Inbox::new(self.shared.arena.acquire(Priority::Linked).await);
                conn.run_internal("DISCARD ALL", &mut inbox, &self.shared.limits, |_, _| {})
                    .await
            };
            match timeout(self.shared.config.timeouts.server_connect, reset).await {
                Ok(Ok(_)) => {}
                _ => {
                    self.entry.pool.closed(conn.server, Instant::now());
                    return;
                }
            }
        }
        self.give_back(conn).await;
    }
}

/// Sends a CancelRequest for `conn`'s backend (best effort, bounded).
pub async fn cancel_backend(conn: &ServerConn) {
    let target = CancelTarget {
        address: conn.address,
        pid: conn.pid,
        secret: conn.secret.clone(),
        gate: Arc::clone(&conn.cancel_gate),
    };
    super::cancel::send(&target, std::time::Duration::from_secs(2)).await;
}

fn frame_error_text(error: FrameError) -> String {
    match error {
        FrameError::Header(error) => error.to_string(),
        FrameError::BodyTooLargeToInspect { tag, len } => {
            format!("message {tag:?} of {len} bytes is larger than an arena chunk")
        }
    }
}

/// Client-to-server accounting: every request goes to the tracker; without a server linked
/// (or at Terminate) the scan stops so the session can act.
struct UpInspect<'a> {
    tracker: Option<&'a mut Tracker>,
    too_many: bool,
}

impl Inspect for UpInspect<'_> {
    fn needs_body(&self, _tag: Tag) -> bool {
        false
    }

    fn message(&mut self, header: Header, _body: Option<&[u8]>) -> Verdict {
        if header.tag == Tag::TERMINATE {
            return Verdict::Stop;
        }
        match self.tracker.as_deref_mut() {
            None => Verdict::Stop,
            Some(tracker) => match tracker.client_message(header.tag) {
                Ok(()) => Verdict::Pass,
                Err(_) => {
                    self.too_many = true;
                    Verdict::Stop
                }
            },
        }
    }
}

/// Server-to-client accounting: replies go to the tracker; ParameterStatus values are
/// recorded for the client and the server connection.
struct DownInspect<'a> {
    link: &'a mut Link,
    wanted: &'a mut ClientParams,
}

impl Inspect for DownInspect<'_> {
    fn needs_body(&self, tag: Tag) -> bool {
        tag == Tag::READY_FOR_QUERY || tag == Tag::PARAMETER_STATUS
    }

    fn message(&mut self, header: Header, body: Option<&[u8]>) -> Verdict {
        let body = body.unwrap_or_default();
        self.link
            .tracker
            .server_message(header.tag, body.first().copied());
        self.link.last_was_error = header.tag == Tag::ERROR_RESPONSE;
        if header.tag == Tag::PARAMETER_STATUS {
            if let Ok(BackendMessage::ParameterStatus(status)) =
                BackendMessage::decode_body(header.tag, body)
            {
                if let (Ok(name), Ok(value)) = (status.name_str(), status.value_str()) {
                    self.wanted.set(name, value);
                    self.link.conn.params.set(name, value);
                }
            }
        }
        Verdict::Pass
    }
}
