//! What one client adds to its pool's statistics, on its own thread's shard of the
//! counters (relaxed atomic adds to a cache line no other thread writes), timed with the
//! thread's clock (read once per wake-up, see `Context::now_us`).
//!
//! The figures mean what PgBouncer's mean: a query runs from the request that finds the
//! server owing nothing until the server owes nothing again (a pipeline counts once); a
//! transaction from the first such request until ReadyForQuery `I`; a wait from the request
//! that needs a server connection until one is linked.

use super::*;
use crate::stats::Counter;

/// Start times of what is in progress, µs since the instance started (0: nothing).
#[derive(Debug, Default)]
pub(super) struct Timing {
    query: u64,
    xact: u64,
    wait: u64,
}

impl Client {
    /// Bytes read from the client.
    #[inline]
    pub(super) fn note_received(&self, thread: usize, n: usize) {
        let shard = self.entry.counters.shard(Some(thread));
        shard.add(Counter::Received, n as u64);
    }

    /// Bytes written to the client.
    #[inline]
    pub(super) fn note_sent(&self, thread: usize, n: usize) {
        let shard = self.entry.counters.shard(Some(thread));
        shard.add(Counter::Sent, n as u64);
    }

    /// After the client's bytes were scanned: a request that the server now owes answers to
    /// starts a query (and a transaction, outside one).
    #[inline]
    pub(super) fn note_requests(&mut self, cx: &Context<'_>) {
        if self.timing.query != 0 || !self.core.link_busy() {
            return;
        }
        self.timing.query = cx.now_us;
        if self.timing.xact == 0 {
            self.timing.xact = cx.now_us;
        }
        self.handle.request_at.store(cx.now_us, Relaxed);
    }

    /// After the server's bytes were scanned: the query ends once the server owes nothing,
    /// the transaction once it is also outside one.
    #[inline]
    pub(super) fn note_answers(&mut self, cx: &Context<'_>) {
        if self.timing.query == 0 || self.core.link_busy() {
            return;
        }
        let shard = self.entry.counters.shard(Some(cx.home.index));
        let took = cx.now_us.saturating_sub(self.timing.query);
        self.timing.query = 0;
        shard.add(Counter::Queries, 1);
        shard.add(Counter::QueryTime, took);
        shard.query_time.observe(took);
        let tally = self.core.take_tally();
        if !tally.is_empty() {
            shard.add(Counter::ClientParses, u64::from(tally.client_parses));
            shard.add(Counter::ServerParses, u64::from(tally.server_parses));
            shard.add(Counter::Binds, u64::from(tally.binds));
            shard.add(Counter::StatementHits, u64::from(tally.hits));
            shard.add(Counter::Evictions, u64::from(tally.evictions));
        }
        if self.timing.xact == 0 || !self.core.link_outside_transaction() {
            return;
        }
        let took = cx.now_us.saturating_sub(self.timing.xact);
        self.timing.xact = 0;
        shard.add(Counter::Xacts, 1);
        shard.add(Counter::XactTime, took);
        shard.xact_time.observe(took);
        let statements = u32::try_from(self.core.statement_count()).unwrap_or(u32::MAX);
        self.handle.prepared.store(statements, Relaxed);
        if let Some(link) = self.core.linked() {
            let prepared = u32::try_from(link.relay.statements.len()).unwrap_or(u32::MAX);
            link.io.cancel.info.prepared.store(prepared, Relaxed);
        }
    }

    /// The client needs a server connection: its wait starts (unless it already waits, as
    /// when one server did not answer and the next is tried).
    pub(super) fn note_wait(&mut self, cx: &Context<'_>) {
        if self.timing.wait == 0 {
            self.timing.wait = cx.now_us;
        }
    }

    /// The client stopped waiting without a connection (a cancel answered its request).
    pub(super) fn note_wait_abandoned(&mut self) {
        self.timing.wait = 0;
    }

    /// A server connection was linked: one assignment, and the wait that led to it.
    pub(super) fn note_linked(&mut self, conn: &ServerConn, cx: &Context<'_>) {
        let shard = self.entry.counters.shard(Some(cx.home.index));
        shard.add(Counter::ServerAssignments, 1);
        if self.timing.wait != 0 {
            let waited = cx.now_us.saturating_sub(self.timing.wait);
            self.timing.wait = 0;
            shard.add(Counter::WaitTime, waited);
            shard.wait_time.observe(waited);
        }
        // What was in progress belonged to the previous connection (one that broke).
        self.timing.query = 0;
        self.timing.xact = 0;
        conn.io.cancel.info.linked_at.store(cx.now_us, Relaxed);
    }
}
