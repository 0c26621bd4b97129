//! The arena: all memory that carries client and server traffic, allocated once at start-up.
//!
//! The arena is one allocation of `chunk_size * chunks_count` bytes, split into equal chunks.
//! Every buffer the relay reads into is a [`Chunk`] borrowed from here and given back when the
//! bytes in it have been forwarded, so an idle client holds no chunk at all and qcp's memory
//! for traffic is fixed from the first second.
//!
//! When every chunk is in use, callers queue first come, first served ([`Arena::acquire`]).
//! A small part of the arena is *reserved* for connections that already hold a server
//! ([`Priority::Linked`]): they must be able to drain the server's reply, or a crowd of new
//! requests could take every chunk while the transactions they wait for cannot finish.

#![cfg_attr(
    not(test),
    deny(
        clippy::indexing_slicing,
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::arithmetic_side_effects
    )
)]

mod stats;

use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use futures::channel::oneshot;

pub use stats::ArenaStats;
use stats::Counters;

/// Who is asking for a chunk; decides queue order and access to the reserve.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Priority {
    /// New work: a login, or a request from a client that holds no server connection.
    New,
    /// Traffic of a client that holds a server connection: served first, may use the reserve.
    Linked,
}

/// The fixed pool of traffic buffers. Cheap to share: wrap it in an [`Arc`].
pub struct Arena {
    chunk_size: usize,
    chunks_count: usize,
    /// Chunks that only [`Priority::Linked`] callers may take.
    reserve: usize,
    state: Mutex<State>,
    counters: Counters,
}

struct State {
    /// INVARIANT: every slice has length `chunk_size`; `free.len() + in use == chunks_count`.
    free: Vec<&'static mut [u8]>,
    linked_waiters: VecDeque<oneshot::Sender<Chunk>>,
    new_waiters: VecDeque<oneshot::Sender<Chunk>>,
}

impl Arena {
    /// Allocates and touches `chunk_size * chunks_count` bytes, so the memory is really
    /// committed at start-up rather than on first use.
    ///
    /// The allocation lives for the rest of the process (it is the process's traffic memory),
    /// which is what lets chunks be handed out as plain `&'static mut [u8]` without `unsafe`.
    pub fn new(chunk_size: usize, chunks_count: usize) -> Arc<Arena> {
        assert!(
            chunk_size > 0 && chunks_count > 0,
            "config validation guarantees a non-empty arena"
        );
        // Config validation bounds the arena's size, so this never saturates.
        let total = chunk_size.saturating_mul(chunks_count);
        // A non-zero fill writes every page: zero-filled memory could stay unmapped.
        let memory: &'static mut [u8] = vec![0xA5u8; total].leak();
        let free: Vec<&'static mut [u8]> = memory.chunks_exact_mut(chunk_size).collect();
        // Keep up to an eighth of the arena (at least one chunk, when there are two or more)
        // for connections that already hold a server.
        let reserve = if chunks_count >= 2 {
            (chunks_count / 8).max(1)
        } else {
            0
        };
        Arc::new(Arena {
            chunk_size,
            chunks_count,
            reserve,
            state: Mutex::new(State {
                free,
                linked_waiters: VecDeque::new(),
                new_waiters: VecDeque::new(),
            }),
            counters: Counters::default(),
        })
    }

    /// Size of one chunk in bytes.
    pub fn chunk_size(&self) -> usize {
        self.chunk_size
    }

    /// Number of chunks in the arena.
    pub fn chunks_count(&self) -> usize {
        self.chunks_count
    }

    /// Chunks kept for traffic of clients that hold a server connection.
    pub fn reserved(&self) -> usize {
        self.reserve
    }

    /// A snapshot of usage counters, for `qcp-ctrl status`.
    pub fn stats(&self) -> ArenaStats {
        let waiting = {
            let state = self.lock();
            // A waiter that gave up stays queued until a chunk is offered to it; it is not
            // waiting any more.
            let alive = |queue: &VecDeque<oneshot::Sender<Chunk>>| {
                queue.iter().filter(|w| !w.is_canceled()).count()
            };
            alive(&state.linked_waiters).saturating_add(alive(&state.new_waiters))
        };
        self.counters
            .snapshot(self.chunk_size, self.chunks_count, waiting)
    }

    /// Takes a chunk now if one is free for this priority and nobody of the same or higher
    /// priority is queued ahead (first come, first served).
    pub fn try_acquire(self: &Arc<Self>, priority: Priority) -> Option<Chunk> {
        let mut state = self.lock();
        self.take_locked(&mut state, priority)
            .map(|memory| self.wrap(memory))
    }

    /// Takes a chunk, waiting in line if none is free. The caller bounds the wait with its
    /// own timeout; dropping the returned future leaves the queue cleanly.
    pub fn acquire(self: &Arc<Self>, priority: Priority) -> AcquireChunk {
        let mut state = self.lock();
        if let Some(memory) = self.take_locked(&mut state, priority) {
            return AcquireChunk {
                inner: Acquire::Ready(Some(self.wrap(memory))),
            };
        }
        self.counters.exhausted();
        let (sender, receiver) = oneshot::channel();
        match priority {
            Priority::Linked => state.linked_waiters.push_back(sender),
            Priority::New => state.new_waiters.push_back(sender),
        }
        AcquireChunk {
            inner: Acquire::Waiting(receiver),
        }
    }

    fn take_locked(&self, state: &mut State, priority: Priority) -> Option<&'static mut [u8]> {
        match priority {
            Priority::Linked if state.linked_waiters.is_empty() => state.free.pop(),
            Priority::New if state.new_waiters.is_empty() && state.linked_waiters.is_empty() => {
                if state.free.len() > self.reserve {
                    state.free.pop()
                } else {
                    None
                }
            }
            _ => None,
        }
    }

    fn wrap(self: &Arc<Self>, memory: &'static mut [u8]) -> Chunk {
        self.counters.acquired();
        Chunk {
            memory: Some(memory),
            arena: Arc::clone(self),
        }
    }

    /// Gives a chunk's memory back: to the first waiter still waiting, else to the free list.
    fn give_back(self: &Arc<Self>, mut memory: &'static mut [u8]) {
        let mut state = self.lock();
        loop {
            // Linked waiters first; new work only while the reserve stays intact.
            let waiter = if let Some(waiter) = state.linked_waiters.pop_front() {
                waiter
            } else if state.free.len() >= self.reserve {
                match state.new_waiters.pop_front() {
                    Some(waiter) => waiter,
                    None => break,
                }
            } else {
                break;
            };
            // `Chunk` is built without counting it as released; a waiter that gave up hands
            // the chunk straight back through `Err`, and we try the next one.
            let chunk = Chunk {
                memory: Some(memory),
                arena: Arc::clone(self),
            };
            match waiter.send(chunk) {
                Ok(()) => {
                    self.counters.handed_over();
                    return;
                }
                Err(mut chunk) => match chunk.memory.take() {
                    Some(back) => memory = back,
                    // A chunk owns its memory until dropped: this cannot happen.
                    None => return,
                },
            }
        }
        self.counters.released();
        state.free.push(memory);
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave the free list inconsistent (every
        // operation is a single push or pop), so a poisoned lock is still usable.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl fmt::Debug for Arena {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Arena")
            .field("chunk_size", &self.chunk_size)
            .field("chunks_count", &self.chunks_count)
            .field("reserve", &self.reserve)
            .finish_non_exhaustive()
    }
}

/// One chunk of the arena, owned by one connection until dropped.
pub struct Chunk {
    /// INVARIANT: `Some` until `Drop` (or a failed hand-over) takes it.
    memory: Option<&'static mut [u8]>,
    arena: Arc<Arena>,
}

impl Chunk {
    /// The chunk's bytes.
    #[inline]
    pub fn bytes(&self) -> &[u8] {
        self.memory.as_deref().unwrap_or(&[])
    }

    /// The chunk's bytes, writable.
    #[inline]
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        self.memory.as_deref_mut().unwrap_or(&mut [])
    }

    /// Capacity in bytes (the arena's chunk size).
    #[inline]
    pub fn len(&self) -> usize {
        self.bytes().len()
    }

    /// Always false for a live chunk; present for API symmetry with `len`.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.bytes().is_empty()
    }
}

impl Drop for Chunk {
    fn drop(&mut self) {
        if let Some(memory) = self.memory.take() {
            self.arena.give_back(memory);
        }
    }
}

impl fmt::Debug for Chunk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Chunk").field("len", &self.len()).finish()
    }
}

/// Future returned by [`Arena::acquire`].
pub struct AcquireChunk {
    inner: Acquire,
}

enum Acquire {
    Ready(Option<Chunk>),
    Waiting(oneshot::Receiver<Chunk>),
}

impl std::future::Future for AcquireChunk {
    type Output = Chunk;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Chunk> {
        use std::task::Poll;
        match &mut self.inner {
            Acquire::Ready(chunk) => {
                // Polled again after it completed: nothing more will come.
                match chunk.take() {
                    Some(chunk) => Poll::Ready(chunk),
                    None => Poll::Pending,
                }
            }
            Acquire::Waiting(receiver) => match std::pin::Pin::new(receiver).poll(cx) {
                Poll::Ready(Ok(chunk)) => Poll::Ready(chunk),
                // The arena never drops a waiter's sender without sending: it lives as long as
                // the process, and `give_back` either sends or moves on to the next waiter.
                Poll::Ready(Err(oneshot::Canceled)) => Poll::Pending,
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

#[cfg(test)]
mod tests;
