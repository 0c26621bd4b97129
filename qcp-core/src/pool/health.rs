//! Which servers recently refused connections, shared by every pool.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Back-off book-keeping per server (indexed like the config's `servers`).
#[derive(Debug)]
pub struct ServerHealth {
    retry_after: Duration,
    /// `Some(t)`: the last connection attempt failed; prefer other servers until `t`.
    down_until: Mutex<Vec<Option<Instant>>>,
}

impl ServerHealth {
    /// Health records for `servers` servers, with a back-off of `retry_after`.
    pub fn new(servers: usize, retry_after: Duration) -> Self {
        ServerHealth {
            retry_after,
            down_until: Mutex::new(vec![None; servers]),
        }
    }

    /// A connection attempt to `server` failed at `now`.
    pub fn failed(&self, server: usize, now: Instant) {
        if let Some(slot) = self.lock().get_mut(server) {
            *slot = Some(now.checked_add(self.retry_after).unwrap_or(now));
        }
    }

    /// A connection to `server` succeeded.
    pub fn succeeded(&self, server: usize) {
        if let Some(slot) = self.lock().get_mut(server) {
            *slot = None;
        }
    }

    /// True while `server` is in its back-off period.
    pub fn backing_off(&self, server: usize, now: Instant) -> bool {
        self.lock()
            .get(server)
            .copied()
            .flatten()
            .is_some_and(|until| now < until)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Option<Instant>>> {
        self.down_until
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
