//! Getting a server connection for a client on its engine thread: from the pool's idle
//! list (linked at once when its parameters are in line), by waiting in the pool's queue, or
//! by having the async side open one or sync its parameters.

use super::end::give_back;
use super::tasks::{OpenTask, SyncTask};
use super::*;

impl Client {
    /// Asks the pool for a server connection for the request `header`.
    pub(super) fn checkout(&mut self, header: Header, cx: &mut Context<'_>) -> Step {
        self.note_wait(cx);
        let now = Instant::now();
        let limit = cx.shared.config().timeouts.query_wait;
        let deadline = (!limit.is_zero()).then(|| now + limit);
        // A connection registered with this thread needs no move between threads.
        let here = cx.home.index;
        match self
            .entry
            .pool
            .checkout_on(now, deadline, Some(here), |conn| {
                registered_here(conn, here)
            }) {
            Checkout::Now(grant) => self.granted(grant, header, cx),
            Checkout::Wait(waiting) => {
                if let Some(deadline) = deadline {
                    cx.shared.wait_timer.queued(deadline);
                }
                cx.shared.stats.waiting.fetch_add(1, Relaxed);
                self.handle.waiting_since.store(cx.now_us, Relaxed);
                self.handle.set_waiting(true);
                self.state = State::WaitingPool { waiting, header };
                Step::Continue
            }
        }
    }

    /// Waits in the pool's queue: for a grant, the end of the wait, or a cancel.
    pub(super) fn poll_pool(&mut self, cx: &mut Context<'_>) -> Step {
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
                    if let Some(surplus) = self.entry.pool.give_back(grant, Instant::now()) {
                        surplus.close();
                    }
                }
                self.left_queue(cx);
                self.note_wait_abandoned();
                self.state = State::Relaying;
                self.core.cancelled_while_waiting(header);
                return Step::Continue;
            }
            Poll::Pending if cx.shared.is_forced() || self.handle.is_killed() => {
                self.left_queue(cx);
                self.state = State::Relaying;
                return refuse(if self.handle.is_killed() {
                    killed()
                } else {
                    shutting_down()
                });
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

    pub(super) fn left_queue(&self, cx: &mut Context<'_>) {
        cx.shared.stats.waiting.fetch_sub(1, Relaxed);
        self.handle.set_waiting(false);
        self.handle.waiting_since.store(0, Relaxed);
    }

    /// The pool granted an idle connection, or a slot to open one.
    pub(super) fn granted(
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
    pub(super) fn use_conn(
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
        self.core.claim(&mut conn);
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
    pub(super) fn own(&self, conn: &mut ServerConn, cx: &mut Context<'_>) -> io::Result<()> {
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
            reg.home.deregister(&conn.io.stream);
        }
        let token = cx.slab.insert(Entry::Server {
            owner: Some(self.token),
            heard: false,
        });
        if let Err(error) = cx.home.register(&conn.io.stream, token) {
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
    pub(super) fn link(
        &mut self,
        conn: Box<ServerConn>,
        statuses: Vec<u8>,
        cx: &mut Context<'_>,
    ) -> Step {
        self.core.answer(&statuses);
        self.note_linked(&conn, cx);
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
            .link(conn, cx.shared.config().limits.max_prepared_statements);
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
                self.unreachable = self.unreachable.saturating_add(1);
                // Another server may serve this database: try it before failing.
                if usize::from(self.unreachable) < cx.shared.server_count() {
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
    pub(super) fn after_command(&mut self, step: Step, cx: &mut Context<'_>) {
        if let Step::End(end) = step {
            self.finish(end, cx);
        }
    }
}

/// True if an idle pooled connection can be used: nothing was heard from it while it sat
/// in the pool (an idle backend says nothing; input means it is going away, e.g. a FATAL
/// from `pg_terminate_backend`). Only what was heard is checked with a read.
/// True if `conn` is registered with engine thread `here`.
fn registered_here(conn: &ServerConn, here: usize) -> bool {
    conn.io.reg.as_ref().is_some_and(|r| r.home.index == here)
}

pub(super) fn healthy(conn: &ServerConn, cx: &mut Context<'_>) -> bool {
    match &conn.io.reg {
        Some(reg) if reg.home.index == cx.home.index => match cx.slab.get(reg.token) {
            Some(Entry::Server { heard: false, .. }) => true,
            _ => conn.is_healthy(),
        },
        _ => conn.is_healthy(),
    }
}
