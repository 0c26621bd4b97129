//! Giving a server connection back and ending a session.

use super::tasks::Finish;
use super::*;

impl Client {
    /// Smart mode: gives the idle server connection back to the pool.
    pub(super) fn release(&mut self, cx: &mut Context<'_>) {
        if let Some(conn) = self.core.unlink() {
            self.unlinked(cx);
            self.disown(&conn, cx);
            give_back(cx.shared, &self.entry, conn);
        }
    }

    pub(super) fn unlinked(&self, cx: &mut Context<'_>) {
        self.handle.set_target(None);
        cx.shared.stats.active.fetch_sub(1, Relaxed);
    }

    /// `conn` leaves this client: its events no longer concern it.
    pub(super) fn disown(&self, conn: &ServerConn, cx: &mut Context<'_>) {
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
    pub(super) fn server_gone(&mut self, cx: &mut Context<'_>) -> End {
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
    pub(super) fn finish(&mut self, end: End, cx: &mut Context<'_>) {
        self.state = State::Ended;
        let Some(stream) = self.stream.take() else {
            return;
        };
        // Off this thread: whatever happens to the socket now is no client's business here.
        cx.home.deregister(&stream);
        cx.shared.clients.unregister(self.handle.pid);
        let clean = self.core.link_is_clean();
        let busy = self.core.link_busy();
        let conn = self.core.unlink();
        if let Some(conn) = &conn {
            self.unlinked(cx);
            self.disown(conn, cx);
        }
        let duration_ms = self
            .handle
            .info
            .connected
            .elapsed()
            .unwrap_or_default()
            .as_millis() as u64;
        let mut last_words = Vec::new();
        match &end {
            End::ClientLeft => {
                info!(duration_ms, reason = "client left", "client disconnected")
            }
            End::Refused { refusal, flush } => {
                info!(duration_ms, reason = %refusal, "client closed by qcp");
                cx.shared.stats.refusal_sent(refusal);
                last_words.extend_from_slice(flush);
                if let Some(message) = refusal.message() {
                    last_words.extend_from_slice(&message);
                }
            }
        }
        let finish = Finish {
            shared: Arc::clone(cx.shared),
            entry: Arc::clone(&self.entry),
            stream,
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

/// Returns a clean server connection to the pool (or closes it past its lifetime). A cancel
/// still on its way to it is waited for first, on the async side: handed to another client,
/// the connection could have that client's query cancelled.
pub(super) fn give_back(shared: &Arc<Shared>, entry: &Arc<PoolEntry>, conn: Box<ServerConn>) {
    if !conn.io.cancel.gate.is_idle() {
        let shared = Arc::clone(shared);
        let entry = Arc::clone(entry);
        spawn(async move {
            conn.io
                .cancel
                .gate
                .wait_idle(shared.config().timeouts.cancel_wait)
                .await;
            checkin(&shared, &entry, conn);
        });
        return;
    }
    checkin(shared, entry, conn);
}

fn checkin(shared: &Shared, entry: &PoolEntry, conn: Box<ServerConn>) {
    let (server, born) = (conn.io.server, conn.io.born);
    let lifetime = shared.config().timeouts.server_lifetime;
    if !lifetime.is_zero() && born.elapsed() >= lifetime {
        entry.pool.closed(server, Instant::now());
        return;
    }
    let home = conn.io.reg.as_ref().map(|reg| reg.home.index);
    if let Some(surplus) = entry
        .pool
        .checkin_from(conn, server, born, Instant::now(), home)
    {
        // A reload removed its server or shrank its pool.
        surplus.close();
    }
}
