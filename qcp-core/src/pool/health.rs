//! Which servers recently refused connections, shared by every pool.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Back-off book-keeping per server (indexed by server id, see `ServerTable`).
#[derive(Debug)]
pub struct ServerHealth {
    /// `timeouts.server_login_retry`, in force since the last reload.
    retry_after: Mutex<Duration>,
    /// `Some(t)`: the last connection attempt failed; prefer other servers until `t`.
    down_until: Mutex<Vec<Option<Instant>>>,
}

impl ServerHealth {
    /// Health records for `servers` servers, with a back-off of `retry_after`.
    pub fn new(servers: usize, retry_after: Duration) -> Self {
        ServerHealth {
            retry_after: Mutex::new(retry_after),
            down_until: Mutex::new(vec![None; servers]),
        }
    }

    /// Makes room for servers a reload added (ids are never reused, so the list only grows).
    pub fn resize(&self, servers: usize) {
        let mut down = self.lock();
        if down.len() < servers {
            down.resize(servers, None);
        }
    }

    /// A reloaded `timeouts.server_login_retry`.
    pub fn set_retry_after(&self, retry_after: Duration) {
        *self
            .retry_after
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = retry_after;
    }

    /// A connection attempt to `server` failed at `now`.
    pub fn failed(&self, server: usize, now: Instant) {
        let retry_after = *self
            .retry_after
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(slot) = self.lock().get_mut(server) {
            *slot = Some(now.checked_add(retry_after).unwrap_or(now));
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
