//! Arena usage counters (lock-free, read by `qcp-ctrl status`).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};

#[derive(Default)]
pub(super) struct Counters {
    in_use: AtomicUsize,
    peak: AtomicUsize,
    acquisitions: AtomicU64,
    exhausted: AtomicU64,
}

impl Counters {
    pub(super) fn acquired(&self) {
        self.acquisitions.fetch_add(1, Relaxed);
        let now = self.in_use.fetch_add(1, Relaxed).saturating_add(1);
        self.peak.fetch_max(now, Relaxed);
    }

    /// A chunk went from one owner straight to a waiter: still in use, one more acquisition.
    pub(super) fn handed_over(&self) {
        self.acquisitions.fetch_add(1, Relaxed);
    }

    pub(super) fn released(&self) {
        self.in_use.fetch_sub(1, Relaxed);
    }

    pub(super) fn exhausted(&self) {
        self.exhausted.fetch_add(1, Relaxed);
    }

    pub(super) fn snapshot(
        &self,
        chunk_size: usize,
        chunks_count: usize,
        waiting: usize,
    ) -> ArenaStats {
        ArenaStats {
            chunk_size,
            chunks_count,
            in_use: self.in_use.load(Relaxed),
            peak: self.peak.load(Relaxed),
            acquisitions: self.acquisitions.load(Relaxed),
            exhausted: self.exhausted.load(Relaxed),
            waiting,
        }
    }
}

/// A point-in-time view of arena usage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArenaStats {
    /// Bytes per chunk.
    pub chunk_size: usize,
    /// Chunks in the arena.
    pub chunks_count: usize,
    /// Chunks held right now.
    pub in_use: usize,
    /// Most chunks ever held at once.
    pub peak: usize,
    /// Chunks handed out since start-up.
    pub acquisitions: u64,
    /// Times a caller found no free chunk and had to queue.
    pub exhausted: u64,
    /// Callers queued for a chunk right now.
    pub waiting: usize,
}
