//! One timer for every client queued for a server connection.
//!
//! A client that finds every connection busy waits in its pool's queue for at most
//! `timeouts.query_wait`. A timer per wait would cost several system calls each time with
//! async-io (every timer it registers wakes its reactor), and under load most transactions
//! wait a little. Instead each pool records its waiters' deadlines ([`Pool::expire`] ends the
//! overdue ones) and a single task sleeps until the earliest deadline of all pools. Because
//! `query_wait` is the same for every client, a new waiter's deadline is almost never the
//! earliest: the task is poked only when the queues were empty, or hold only later deadlines.
//!
//! [`Pool::expire`]: crate::pool::Pool::expire

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Poll;
use std::time::Instant;

use async_io::Timer;
use futures::future::{select, Either};
use futures::task::AtomicWaker;

use super::shared::Shared;

/// What the task and the queued clients share.
#[derive(Debug, Default)]
pub struct WaitTimer {
    /// The deadline the task will wake at (`None`: it sleeps until poked).
    /// INVARIANT: every pending deadline is at or after it, or `poked` is set.
    armed: Mutex<Option<Instant>>,
    poked: AtomicBool,
    stopped: AtomicBool,
    waker: AtomicWaker,
}

impl WaitTimer {
    /// A client was queued until `deadline` (after its pool recorded it): makes sure the task
    /// wakes by then.
    pub fn queued(&self, deadline: Instant) {
        let mut armed = self.lock();
        if armed.is_none_or(|at| deadline < at) {
            *armed = Some(deadline);
            drop(armed);
            self.poke();
        }
    }

    /// Ends the task (at shutdown, once no client is left to wait).
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        self.poke();
    }

    fn poke(&self) {
        self.poked.store(true, Ordering::SeqCst);
        self.waker.wake();
    }

    /// Completes when poked (at once if it was since the last call).
    async fn poked(&self) {
        std::future::poll_fn(|cx| {
            self.waker.register(cx.waker());
            if self.poked.swap(false, Ordering::SeqCst) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await;
    }

    fn lock(&self) -> MutexGuard<'_, Option<Instant>> {
        // Only ever holds an `Option<Instant>`: a panic elsewhere cannot leave it half written.
        self.armed.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Ends overdue waits in every pool, then sleeps until the next deadline or a poke.
pub async fn run(shared: Arc<Shared>) {
    let timer = &shared.wait_timer;
    // The timer of the current sleep, kept while the deadline stays the same.
    let mut sleep: Option<(Instant, Timer)> = None;
    while !timer.stopped.load(Ordering::SeqCst) {
        let next = {
            // Held across the scan: a client queued meanwhile compares its deadline with
            // the result, so none is missed (clients take it after their pool's lock).
            let mut armed = timer.lock();
            let now = Instant::now();
            let next = shared
                .pools()
                .iter()
                .filter_map(|entry| entry.pool.expire(now))
                .min();
            *armed = next;
            next
        };
        let poked = std::pin::pin!(timer.poked());
        match next {
            Some(at) => {
                if sleep.as_ref().is_none_or(|(armed_at, _)| *armed_at != at) {
                    sleep = Some((at, Timer::at(at)));
                }
                if let Some((_, timer)) = sleep.as_mut() {
                    if let Either::Left(_) = select(Pin::new(timer), poked).await {
                        sleep = None;
                    }
                }
            }
            None => {
                sleep = None;
                poked.await;
            }
        }
    }
}
