//! Per-pool counters, sharded by thread: each engine thread adds to its own shard (relaxed
//! atomics on a cache line no other thread writes), the async side to one more; readers sum
//! the shards.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use super::histogram::{Histogram, HistogramSnapshot};

/// The counters of one pool, in the order PgBouncer's SHOW STATS lists them, and more.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(usize)]
pub enum Counter {
    /// Times a server connection was linked to a client.
    ServerAssignments,
    /// Transactions completed (ReadyForQuery `I` after a request).
    Xacts,
    /// Queries completed (the server owed nothing more).
    Queries,
    /// Bytes received from clients.
    Received,
    /// Bytes sent to clients.
    Sent,
    /// Microseconds spent in transactions.
    XactTime,
    /// Microseconds spent in queries.
    QueryTime,
    /// Microseconds clients waited for a server connection.
    WaitTime,
    /// Parse messages of named statements from clients (Smart mode).
    ClientParses,
    /// Parse messages qcp sent to servers for clients' named statements (misses).
    ServerParses,
    /// Bind messages of named statements from clients.
    Binds,
    /// A client's named statement found already prepared on its server (a Parse saved).
    StatementHits,
    /// Statements closed on a server to make room (`max_prepared_statements`).
    Evictions,
    /// Server connections opened.
    ServerConnects,
    /// Server connections that could not be opened or logged in.
    ServerConnectFailures,
}

/// Number of [`Counter`]s.
pub const COUNTERS: usize = Counter::ServerConnectFailures as usize + 1;

/// One thread's part of a pool's counters (aligned so no two shards share a cache line).
#[derive(Debug, Default)]
#[repr(align(128))]
pub struct Shard {
    counters: [AtomicU64; COUNTERS],
    /// Transaction durations.
    pub xact_time: Histogram,
    /// Query durations.
    pub query_time: Histogram,
    /// Waits for a server connection.
    pub wait_time: Histogram,
}

impl Shard {
    /// Adds `n` to `counter`.
    #[inline]
    pub fn add(&self, counter: Counter, n: u64) {
        if let Some(c) = self.counters.get(counter as usize) {
            c.fetch_add(n, Relaxed);
        }
    }
}

/// A pool's counters: one [`Shard`] per engine thread plus one for the async side.
#[derive(Debug)]
pub struct PoolCounters {
    shards: Box<[Shard]>,
}

impl PoolCounters {
    /// Counters for `threads` engine threads (and the async side).
    pub fn new(threads: usize) -> Self {
        let shards = (0..=threads).map(|_| Shard::default()).collect();
        PoolCounters { shards }
    }

    /// The shard of engine thread `thread`; `None` (or a thread beyond the count) is the
    /// async side's.
    #[inline]
    pub fn shard(&self, thread: Option<usize>) -> &Shard {
        let last = self.shards.len().saturating_sub(1);
        let index = thread.map_or(last, |t| t.min(last));
        // `new` makes at least one shard.
        match self.shards.get(index) {
            Some(shard) => shard,
            None => unreachable_shard(),
        }
    }

    /// Adds `n` to `counter` in the async side's shard (for events off the hot path).
    pub fn add(&self, counter: Counter, n: u64) {
        self.shard(None).add(counter, n);
    }

    /// The counters summed over every shard.
    pub fn totals(&self) -> Totals {
        let mut totals = Totals::default();
        for shard in self.shards.iter() {
            for (total, c) in totals.counts.iter_mut().zip(&shard.counters) {
                *total = total.wrapping_add(c.load(Relaxed));
            }
            shard.xact_time.add_to(&mut totals.xact_time);
            shard.query_time.add_to(&mut totals.query_time);
            shard.wait_time.add_to(&mut totals.wait_time);
        }
        totals
    }
}

#[cold]
fn unreachable_shard() -> &'static Shard {
    static SPARE: std::sync::OnceLock<Shard> = std::sync::OnceLock::new();
    SPARE.get_or_init(Shard::default)
}

/// A pool's counters at one instant, summed over shards.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    counts: [u64; COUNTERS],
    /// Transaction durations.
    pub xact_time: HistogramSnapshot,
    /// Query durations.
    pub query_time: HistogramSnapshot,
    /// Waits for a server connection.
    pub wait_time: HistogramSnapshot,
}

impl Totals {
    /// One counter's value.
    pub fn get(&self, counter: Counter) -> u64 {
        self.counts.get(counter as usize).copied().unwrap_or(0)
    }

    /// Sets one counter (for tests and hand-built snapshots).
    pub fn set(&mut self, counter: Counter, value: u64) {
        if let Some(c) = self.counts.get_mut(counter as usize) {
            *c = value;
        }
    }

    /// Adds `other` into these totals (e.g. to sum pools by database).
    pub fn merge(&mut self, other: &Totals) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a = a.wrapping_add(*b);
        }
        self.xact_time.merge(&other.xact_time);
        self.query_time.merge(&other.query_time);
        self.wait_time.merge(&other.wait_time);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_add_up() {
        let c = PoolCounters::new(2);
        c.shard(Some(0)).add(Counter::Queries, 3);
        c.shard(Some(1)).add(Counter::Queries, 4);
        c.shard(Some(7)).add(Counter::Queries, 1);
        c.add(Counter::ServerConnects, 2);
        c.shard(Some(0)).xact_time.observe(10);
        let t = c.totals();
        assert_eq!(t.get(Counter::Queries), 8);
        assert_eq!(t.get(Counter::ServerConnects), 2);
        assert_eq!(t.get(Counter::Xacts), 0);
        assert_eq!(t.xact_time.count(), 1);
    }

    #[test]
    fn a_shard_fills_its_own_cache_lines() {
        assert_eq!(std::mem::align_of::<Shard>(), 128);
        assert_eq!(std::mem::size_of::<Shard>() % 128, 0);
    }
}
