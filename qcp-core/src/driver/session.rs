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

use qcp_codec::{encode, BackendMessage, Header, Tag, TransactionStatus, HEADER_LEN};
use tracing::{debug, info, warn};

use super::clients::ClientHandle;
use super::flow::{Fill, Flow};
use super::io::{timeout, try_write_pair, write_all, Inbox, Socket};
use super::link::{self, LinkError};
use super::login::{arena_exhausted, link_error_fatal, LoggedIn};
use super::server::{Credentials, RelayState, ServerConn, ServerError};
use super::shared::{PoolEntry, Shared};
use crate::arena::Priority;
use crate::config::RelayMode;
use crate::errors::{sqlstate, PgError, Refusal};
use crate::relay::framer::{FrameError, Inspect, Run, Verdict, WHOLE_BODY};
use crate::relay::params::{ClientParams, ParamSource, Params};
use crate::relay::prepared::{self, Action, Consume};
use crate::relay::statements::{ClientStatements, Statement};
use crate::relay::tracker::{Hooked, Tracker};

/// Bytes qcp may hold of its own for one peer (rewritten requests) before it stops reading
/// more from the other: backpressure, as for relayed bytes.
const OWN_BYTES_LIMIT: usize = 64 * 1024;

/// Scan steps the client-to-server direction takes before it writes.
const SCANS_PER_WRITE: usize = 8;

/// How much of a simple Query's text is looked at for a `DEALLOCATE name` (Smart mode).
const QUERY_PEEK: usize = 256;

/// A server connection lent to the client (its request accounting is in
/// `conn.relay.tracker`).
struct Link {
    conn: Box<ServerConn>,
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
    entry: Arc<PoolEntry>,
    credentials: Arc<Credentials>,
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
    /// Smart mode: the client's named prepared statements.
    statements: ClientStatements,
    /// A Parse larger than a chunk, gathered whole before it is rewritten (`true` once
    /// complete).
    collecting: Option<Box<(Vec<u8>, bool)>>,
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
    let (chunk, start, end) = inbox.into_parts();
    let limits = shared.limits;
    let smart = shared.config.relay_mode == RelayMode::Smart;
    let mut session = Session {
        up: Flow::with_bytes(limits, chunk, start, end),
        down: Flow::new(limits),
        shared,
        client,
        smart,
        entry,
        credentials,
        wanted,
        handle,
        link: None,
        shutting_down: false,
        skip_to_sync: false,
        statements: ClientStatements::default(),
        collecting: None,
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

            let quiet = self.up.is_quiet()
                && self.down.is_quiet()
                && self.collecting.is_none()
                && self
                    .link
                    .as_ref()
                    .is_none_or(|l| l.conn.relay.nothing_buffered());
            if let Some(link) = &self.link {
                if self.smart && quiet && link.conn.relay.tracker.is_idle() {
                    return Poll::Ready(Event::Release);
                }
            }
            if self.shared.is_forced() {
                return Poll::Ready(Event::Shutdown);
            }
            if self.shared.is_shutting_down() && !self.shutting_down {
                let idle_here = quiet
                    && self
                        .link
                        .as_ref()
                        .is_none_or(|l| l.conn.relay.tracker.is_idle());
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

        // Write what is ready to the client: qcp's own bytes first, then the relayed run.
        let own = &mut link.conn.relay.to_client;
        if !own.is_empty() || !flow.ready().is_empty() {
            match try_write_pair(&self.client, own, flow.ready()) {
                Ok(n) => {
                    written(own, &mut flow.sent, n);
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
            let mut inspect = DownInspect {
                relay: &mut link.conn.relay,
                params: &mut link.conn.params,
                last_was_error: &mut link.last_was_error,
                wanted: &mut self.wanted,
                statements: &mut self.statements,
                smart: self.smart,
            };
            match flow.next_run(&mut inspect) {
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
                Ok(Run::Stop(header)) => {
                    progress |= down_stop(
                        header,
                        flow,
                        link,
                        &mut self.wanted,
                        &mut self.statements,
                        self.smart,
                    );
                }
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
        let mut progress = false;

        // Scan what was read (unless qcp's own bytes for the server pile up), before writing,
        // so that a rewritten message and the bytes after it leave in one write.
        for _ in 0..SCANS_PER_WRITE {
            let backlog = self
                .link
                .as_ref()
                .map_or(0, |l| l.conn.relay.to_server.len());
            if self.up.unscanned().is_empty() || backlog >= OWN_BYTES_LIMIT {
                break;
            }
            match self.scan_up() {
                Ok(true) => progress = true,
                Ok(false) => break,
                Err(event) => return Poll::Ready(Err(event)),
            }
        }

        // Write what is ready to the server: qcp's own bytes first, then the relayed run.
        if let Some(link) = self.link.as_mut() {
            let flow = &mut self.up;
            let own = &mut link.conn.relay.to_server;
            if !own.is_empty() || !flow.ready().is_empty() {
                match try_write_pair(&link.conn.socket, own, flow.ready()) {
                    Ok(n) => {
                        written(own, &mut flow.sent, n);
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

        let flow = &mut self.up;
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

    /// Scans the client's unscanned bytes once.
    fn scan_up(&mut self) -> Result<bool, Event> {
        if self.collecting.as_ref().is_some_and(|c| c.1) {
            let (body, _) = *self.collecting.take().unwrap_or_default();
            if !self.rewrite_collected(&body)? {
                self.collecting = Some(Box::new((body, true)));
                return Ok(false);
            }
        }
        let flow = &mut self.up;
        let mut inspect = UpInspect {
            tracker: self.link.as_mut().map(|l| &mut l.conn.relay.tracker),
            smart: self.smart,
            too_many: false,
        };
        match flow.next_run(&mut inspect) {
            Ok(Run::Forward(n)) => {
                flow.scanned += n;
                Ok(true)
            }
            Ok(Run::Discard(n)) => {
                if flow.sent != flow.scanned {
                    return Ok(false);
                }
                if let (Some((collected, complete)), Some(chunk)) =
                    (self.collecting.as_deref_mut(), &flow.chunk)
                {
                    collected.extend_from_slice(&chunk.bytes()[flow.scanned..flow.scanned + n]);
                    *complete = flow.framer.at_boundary();
                }
                flow.scanned += n;
                flow.sent = flow.scanned;
                Ok(true)
            }
            Ok(Run::Stop(header)) => {
                if inspect.too_many {
                    return Err(too_many_pending());
                }
                if self.link.is_some() && header.tag != Tag::TERMINATE {
                    return self.up_stop(header);
                }
                // Act on it once everything before it has been written.
                if flow.sent == flow.scanned {
                    return Err(Event::ClientMessage(header));
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
        let Some(link) = self.link.as_mut() else {
            return Ok(false);
        };
        if header.tag == Tag::QUERY {
            return self.deallocate_linked(header);
        }
        let flow = &mut self.up;
        let relay = &mut link.conn.relay;
        // What was scanned before this message goes first.
        relay.to_server.extend_from_slice(flow.ready());
        flow.sent = flow.scanned;
        let body_len = header.body_len();
        let body = flow.body_read(&header);
        if header.tag == Tag::PARSE && body.len() < body_len {
            // Larger than the buffer: gathered whole first (qcp keeps the text anyway, to
            // prepare it again on other server connections).
            self.collecting = Some(Box::new((Vec::with_capacity(body_len.min(1 << 20)), false)));
            flow.scanned += flow.framer.discard(header);
            flow.sent = flow.scanned;
            return Ok(true);
        }
        let consume = relay
            .rewriter(&mut self.statements, &self.entry.statements)
            .message(header.tag, body, body_len)
            .map_err(rewrite_error)?;
        tracing::trace!(tag = ?header.tag, ?consume, pending = relay.to_server.len(), "rewrote a statement message");
        flow.scanned += match consume {
            Consume::Whole => flow.framer.discard(header),
            Consume::Head(n) => flow.framer.replace_head(header, n),
            // Waits for an answer; the down direction wakes this loop when one comes.
            Consume::NotYet => return Ok(false),
        };
        flow.sent = flow.scanned;
        Ok(true)
    }

    /// A Parse gathered whole (see `collecting`) is rewritten and sent. `Ok(false)`: not
    /// yet, it waits for an answer.
    fn rewrite_collected(&mut self, body: &[u8]) -> Result<bool, Event> {
        let Some(link) = self.link.as_mut() else {
            return Ok(true);
        };
        let relay = &mut link.conn.relay;
        let consume = relay
            .rewriter(&mut self.statements, &self.entry.statements)
            .message(Tag::PARSE, body, body.len())
            .map_err(rewrite_error)?;
        match consume {
            Consume::Head(n) => relay.to_server.extend_from_slice(&body[n..]),
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
        let relay = &mut link.conn.relay;
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
                flow.scanned += flow.framer.discard(header);
                flow.sent = flow.scanned;
                return Ok(true);
            }
        }
        // Anything else is the server's to answer.
        relay
            .tracker
            .client_message(Tag::QUERY)
            .map_err(|_| too_many_pending())?;
        flow.scanned += flow.framer.consume(header);
        Ok(true)
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
        if self.smart && header.tag == Tag::QUERY && self.deallocate_unlinked(header).await? {
            return Ok(());
        }
        if self.smart && header.tag == Tag::PARSE && self.prepare_unlinked().await? {
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

    /// Smart mode, no server linked: `DEALLOCATE name` of a statement the client prepared
    /// through the protocol is answered without a server (the client is outside any
    /// transaction). `Ok(false)`: not such a query.
    async fn deallocate_unlinked(&mut self, header: Header) -> Result<bool, End> {
        let body = self.up.body_read(&header);
        if body.len() != header.body_len() {
            return Ok(false);
        }
        let Some(name) = prepared::deallocated_name(body) else {
            return Ok(false);
        };
        if self.statements.remove(&name).is_none() {
            // PostgreSQL gives the error for an unknown name itself.
            return Ok(false);
        }
        self.discard_client_message(header);
        let mut out = Vec::with_capacity(32);
        local_deallocate_answer(&mut out, TransactionStatus::Idle);
        write_all(&self.client, &out)
            .await
            .map_err(|_| End::ClientLeft)?;
        Ok(true)
    }

    /// Smart mode, no server linked: Parse messages followed by a Sync, of statements some
    /// server already accepted, are answered without a server: the statement is prepared on
    /// a backend when it is first used. Besides a round trip, this spares clients that
    /// prepare synchronously (libpq's `PQprepare`, pgbench `-M prepared`) from waiting for a
    /// server connection just to learn that a known statement parses. `Ok(false)`: not such
    /// a sequence (it goes to a server).
    async fn prepare_unlinked(&mut self) -> Result<bool, End> {
        let Some(chunk) = self.up.chunk.as_ref() else {
            return Ok(false);
        };
        let bytes = &chunk.bytes()[self.up.scanned..self.up.filled];
        let mut prepared: Vec<(&[u8], Arc<Statement>)> = Vec::new();
        let mut pos = 0;
        let end = loop {
            let Ok(Some(header)) = Header::parse(&bytes[pos..]) else {
                return Ok(false);
            };
            let Some(body) = bytes.get(pos + HEADER_LEN..pos + header.frame_len()) else {
                return Ok(false);
            };
            pos += header.frame_len();
            match header.tag {
                Tag::SYNC => break pos,
                Tag::PARSE => {
                    let Some(split) = body.iter().position(|&b| b == 0) else {
                        return Ok(false);
                    };
                    let (name, definition) = (&body[..split], &body[split + 1..]);
                    let taken = self.statements.get(name).is_some()
                        || prepared.iter().any(|(n, _)| *n == name);
                    if name.is_empty() || taken {
                        return Ok(false);
                    }
                    match self.entry.statements.find(definition) {
                        Some(statement) if statement.accepted() => {
                            prepared.push((name, statement));
                        }
                        _ => return Ok(false),
                    }
                }
                _ => return Ok(false),
            }
        };
        let mut out = Vec::with_capacity(prepared.len() * 5 + 6);
        for (name, statement) in prepared {
            self.statements.bind(name, statement);
            encode::parse_complete(&mut out);
        }
        encode::ready_for_query(&mut out, TransactionStatus::Idle);
        self.up.scanned += end;
        self.up.sent = self.up.scanned;
        write_all(&self.client, &out)
            .await
            .map_err(|_| End::ClientLeft)?;
        Ok(true)
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

        let sync = if conn.in_line.holds(&self.wanted, &conn.params) {
            None
        } else {
            self.wanted.sync_sql(&conn.params)
        };
        if let Some(sql) = sync {
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
            if self.wanted.is_in_line(&conn.params) {
                conn.in_line.record(&self.wanted, &conn.params);
            }
        } else {
            conn.in_line.record(&self.wanted, &conn.params);
        }
        self.handle.set_target(Some(Arc::clone(&conn.cancel)));
        shared.stats.active.fetch_add(1, Relaxed);
        debug!(server_pid = conn.pid(), "linked");
        conn.relay
            .reset(shared.config.limits.max_prepared_statements);
        self.link = Some(Link {
            conn,
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
    async fn give_back(&self, conn: Box<ServerConn>) {
        conn.cancel
            .gate
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
        let mut ready = Vec::new();
        if let Some(link) = &self.link {
            ready.extend_from_slice(&link.conn.relay.to_client);
        }
        ready.extend_from_slice(self.down.ready());
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
        let Some(link) = self.link.take() else { return };
        self.unlinked();
        let clean = link.conn.relay.tracker.is_idle()
            && link.conn.relay.nothing_buffered()
            && self.collecting.is_none()
            && self.up.framer.at_boundary()
            && self.down.is_quiet();
        if !clean {
            // Mid-transaction or mid-result: closing is the only state PostgreSQL cleans up
            // for sure (it rolls back). A running query is cancelled first so its locks go
            // at once rather than when it next writes.
            if !link.conn.relay.tracker.nothing_outstanding() {
                cancel_backend(&link.conn).await;
            }
            debug!(
                server_pid = link.conn.pid(),
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
    super::cancel::send(&conn.cancel, std::time::Duration::from_secs(2)).await;
}

fn frame_error_text(error: FrameError) -> String {
    match error {
        FrameError::Header(error) => error.to_string(),
    }
}

/// `n` bytes of `own` then of the flow's ready run were written.
#[inline]
fn written(own: &mut Vec<u8>, sent: &mut usize, n: usize) {
    if own.is_empty() {
        *sent += n;
    } else if n >= own.len() {
        *sent += n - own.len();
        own.clear();
    } else {
        own.drain(..n);
    }
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

/// PostgreSQL's answer to a successful `DEALLOCATE name`.
fn local_deallocate_answer(out: &mut Vec<u8>, status: TransactionStatus) {
    let _ = encode::command_complete(out, "DEALLOCATE");
    encode::ready_for_query(out, status);
}

/// The down framer stopped at a reply to a hooked request that must not reach the client
/// as the server sent it: swallowed, retagged or replaced. Returns whether it moved.
fn down_stop(
    header: Header,
    flow: &mut Flow,
    link: &mut Link,
    wanted: &mut ClientParams,
    statements: &mut ClientStatements,
    smart: bool,
) -> bool {
    let relay = &mut link.conn.relay;
    let Some(hook) = relay.hooks.front() else {
        return false;
    };
    let body = flow.body_read(&header);
    let action = prepared::action(hook, header.tag, body);
    tracing::trace!(tag = ?header.tag, ?action, ?hook, "reply to a hooked request");
    if matches!(action, Action::Discard | Action::Replace) && flow.sent != flow.scanned {
        // Dropped from the middle of the stream once what comes before it is written.
        return false;
    }
    if let Action::Replace = action {
        if let Some(bytes) = prepared::replacement(hook) {
            relay.to_client.extend_from_slice(&bytes);
        }
    }
    let mut inspect = DownInspect {
        relay: &mut link.conn.relay,
        params: &mut link.conn.params,
        last_was_error: &mut link.last_was_error,
        wanted,
        statements,
        smart,
    };
    inspect.apply(header, body);
    if let (Action::Retag(tag), Some(chunk)) = (&action, flow.chunk.as_mut()) {
        chunk.bytes_mut()[flow.scanned] = tag.0;
    }
    match action {
        Action::Discard | Action::Replace => {
            flow.scanned += flow.framer.discard(header);
            flow.sent = flow.scanned;
        }
        Action::Retag(_) | Action::Forward => flow.scanned += flow.framer.consume(header),
    }
    true
}

/// Client-to-server accounting: every request goes to the tracker; without a server linked
/// (or at Terminate) the scan stops so the session can act, and in Smart mode it also stops
/// at messages that name a prepared statement (they are rewritten) and at a possible
/// `DEALLOCATE`.
struct UpInspect<'a> {
    tracker: Option<&'a mut Tracker>,
    smart: bool,
    too_many: bool,
}

impl Inspect for UpInspect<'_> {
    fn needs_body(&self, tag: Tag) -> usize {
        if !self.smart {
            return 0;
        }
        match tag {
            Tag::PARSE | Tag::BIND | Tag::DESCRIBE | Tag::CLOSE => WHOLE_BODY,
            Tag::QUERY => QUERY_PEEK,
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
            Ok(()) => Verdict::Pass,
            Err(_) => {
                self.too_many = true;
                Verdict::Stop
            }
        }
    }
}

/// Server-to-client accounting: replies go to the tracker (and settle hooked requests);
/// ParameterStatus values are recorded for the client and the server connection; in Smart
/// mode a DEALLOCATE ALL or DISCARD ALL clears what qcp knows about prepared statements.
struct DownInspect<'a> {
    relay: &'a mut RelayState,
    params: &'a mut Params,
    last_was_error: &'a mut bool,
    wanted: &'a mut ClientParams,
    statements: &'a mut ClientStatements,
    smart: bool,
}

/// How much of a CommandComplete is looked at (its tag, for DEALLOCATE ALL / DISCARD ALL).
const COMMAND_TAG_PEEK: usize = 32;

impl DownInspect<'_> {
    /// Records one server message (which the relay forwards, or changes in `down_stop`).
    fn apply(&mut self, header: Header, body: &[u8]) {
        let tag = header.tag;
        let hooked = self
            .relay
            .tracker
            .server_message(tag, body.first().copied());
        if hooked != Hooked::default() {
            let code = if tag == Tag::ERROR_RESPONSE {
                prepared::error_code(body)
            } else {
                &[]
            };
            prepared::settle_reported(
                hooked,
                code,
                &mut self.relay.hooks,
                self.statements,
                &mut self.relay.statements,
            );
        }
        *self.last_was_error = tag == Tag::ERROR_RESPONSE;
        if tag == Tag::PARAMETER_STATUS && body.len() == header.body_len() {
            if let Ok(BackendMessage::ParameterStatus(status)) =
                BackendMessage::decode_body(tag, body)
            {
                if let (Ok(name), Ok(value)) = (status.name_str(), status.value_str()) {
                    self.wanted.set(name, value);
                    self.params.set(name, value);
                }
            }
        } else if self.smart && tag == Tag::COMMAND_COMPLETE && prepared::drops_all_statements(body)
        {
            self.statements.clear();
            self.relay.statements.forget_all();
        }
    }
}

impl Inspect for DownInspect<'_> {
    fn needs_body(&self, tag: Tag) -> usize {
        match tag {
            Tag::READY_FOR_QUERY | Tag::PARAMETER_STATUS => WHOLE_BODY,
            Tag::ERROR_RESPONSE if self.relay.tracker.head_hooked() => WHOLE_BODY,
            Tag::COMMAND_COMPLETE if self.smart => COMMAND_TAG_PEEK,
            _ => 0,
        }
    }

    fn message(&mut self, header: Header, body: Option<&[u8]>) -> Verdict {
        if self.relay.tracker.head_hooked() {
            if let Some(hook) = self.relay.hooks.front() {
                if prepared::action(hook, header.tag, body.unwrap_or_default()) != Action::Forward {
                    return Verdict::Stop;
                }
            }
        }
        self.apply(header, body.unwrap_or_default());
        Verdict::Pass
    }
}

#[cfg(test)]
mod tests {
    /// Every connected client keeps a `Session` for as long as it stays, mostly idle: what is
    /// not needed between transactions (a server connection, prepared-statement maps, a
    /// large Parse being gathered) lives behind a pointer, so this stays small.
    #[test]
    fn an_idle_session_stays_small() {
        let size = std::mem::size_of::<super::Session>();
        assert!(
            size <= 320,
            "Session is {size} bytes; keep idle clients cheap"
        );
    }
}
