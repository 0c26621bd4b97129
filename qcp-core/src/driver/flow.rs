//! One direction of a relayed connection: an arena chunk (only while bytes are in flight),
//! the framer, and the cursors that say what has been scanned and sent.

use std::io;
use std::sync::Arc;
use std::task::Context;

use qcp_codec::{Header, Limits, HEADER_LEN};

use super::io::{try_read, Socket};
use crate::arena::{Arena, Chunk, Priority};
use crate::relay::framer::{FrameError, Framer, Inspect, Run};

/// Bytes in flight from one peer to the other.
pub struct Flow {
    /// Present only while bytes are in flight: an idle direction holds no memory.
    pub chunk: Option<Chunk>,
    /// INVARIANT: sent <= scanned <= filled <= chunk length (all 0 without a chunk).
    /// Bytes before `sent` are gone (written or discarded).
    pub sent: usize,
    /// Bytes before `scanned` were cleared by the framer for forwarding.
    pub scanned: usize,
    /// Bytes before `filled` were read from the peer.
    pub filled: usize,
    /// Message boundaries of this direction.
    pub framer: Framer,
    /// The last read emptied the socket: read again only once the reactor says it is
    /// readable (reading to find out costs a system call that fails).
    drained: bool,
}

impl Flow {
    /// An empty direction.
    pub fn new(limits: Limits) -> Self {
        Flow {
            chunk: None,
            sent: 0,
            scanned: 0,
            filled: 0,
            framer: Framer::new(limits),
            drained: false,
        }
    }

    /// A direction starting with `chunk[start..end]` unscanned (bytes left over from a login).
    pub fn with_bytes(limits: Limits, chunk: Chunk, start: usize, end: usize) -> Self {
        let mut flow = Flow {
            chunk: Some(chunk),
            sent: start,
            scanned: start,
            filled: end,
            framer: Framer::new(limits),
            drained: false,
        };
        flow.release_if_empty();
        flow
    }

    /// True when no byte is held (nothing read and not yet sent or discarded).
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.sent == self.filled
    }

    /// True when nothing is held and no message is half way through.
    #[inline]
    pub fn is_quiet(&self) -> bool {
        self.is_empty() && self.framer.at_boundary()
    }

    /// Bytes scanned and ready to write.
    #[inline]
    pub fn ready(&self) -> &[u8] {
        match &self.chunk {
            Some(chunk) => &chunk.bytes()[self.sent..self.scanned],
            None => &[],
        }
    }

    /// Bytes read but not scanned yet.
    #[inline]
    pub fn unscanned(&self) -> &[u8] {
        match &self.chunk {
            Some(chunk) => &chunk.bytes()[self.scanned..self.filled],
            None => &[],
        }
    }

    /// Frames the next bytes read but not scanned yet (see [`Framer::next_run`]).
    #[inline]
    pub fn next_run(&mut self, inspect: &mut impl Inspect) -> Result<Run, FrameError> {
        let capacity = self.capacity();
        let unscanned = match &self.chunk {
            Some(chunk) => &chunk.bytes()[self.scanned..self.filled],
            None => &[][..],
        };
        self.framer.next_run(unscanned, capacity, inspect)
    }

    /// As much of the body of the message whose header starts at `scanned` as has been read
    /// (all of it when its length is `header.body_len()`).
    pub fn body_read(&self, header: &Header) -> &[u8] {
        match &self.chunk {
            Some(chunk) => {
                let start = (self.scanned + HEADER_LEN).min(self.filled);
                &chunk.bytes()[start..self.filled.min(start + header.body_len())]
            }
            None => &[],
        }
    }

    /// Capacity of the chunk (0 without one).
    #[inline]
    pub fn capacity(&self) -> usize {
        self.chunk.as_ref().map_or(0, Chunk::len)
    }

    /// Free space to read into, making room by moving held bytes to the front when the end of
    /// the chunk is reached. `None` without a chunk.
    pub fn space(&mut self) -> Option<&mut [u8]> {
        let chunk = self.chunk.as_mut()?;
        if self.filled == chunk.len() && self.sent > 0 {
            chunk.bytes_mut().copy_within(self.sent..self.filled, 0);
            self.scanned -= self.sent;
            self.filled -= self.sent;
            self.sent = 0;
        }
        Some(&mut chunk.bytes_mut()[self.filled..])
    }

    /// Reads what `socket` has into the free space. Without a chunk, one is taken only once
    /// the peer has something to say, so an idle direction holds no memory.
    pub fn fill(
        &mut self,
        socket: &Socket,
        arena: &Arc<Arena>,
        priority: Priority,
        cx: &mut Context<'_>,
    ) -> Fill {
        if self.chunk.is_none() {
            if socket.poll_readable(cx).is_pending() {
                return Fill::Read(false);
            }
            match arena.try_acquire(priority) {
                Some(chunk) => self.chunk = Some(chunk),
                None => return Fill::NeedChunk,
            }
            self.drained = false;
        } else if self.drained {
            if socket.poll_readable(cx).is_pending() {
                return Fill::Read(false);
            }
            self.drained = false;
        }
        let Some(space) = self.space().filter(|s| !s.is_empty()) else {
            return Fill::Read(false);
        };
        let asked = space.len();
        match try_read(socket, space) {
            Ok(0) => Fill::Closed,
            Ok(n) => {
                self.filled += n;
                // Less than asked for: the socket is empty now.
                self.drained = n < asked;
                Fill::Read(true)
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                // A readiness already seen (and now used up) may answer Ready once more;
                // the second answer is the one that registers for the next.
                self.drained = true;
                let again =
                    socket.poll_readable(cx).is_ready() && socket.poll_readable(cx).is_ready();
                if again {
                    self.drained = false;
                }
                Fill::Read(again)
            }
            Err(_) => Fill::Closed,
        }
    }

    /// Gives the chunk back to the arena when nothing is held.
    #[inline]
    pub fn release_if_empty(&mut self) {
        if self.is_empty() {
            self.chunk = None;
            self.sent = 0;
            self.scanned = 0;
            self.filled = 0;
        }
    }
}

/// Outcome of [`Flow::fill`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fill {
    /// Whether anything moved (bytes read, or a retry is worth it now).
    Read(bool),
    /// The peer has bytes but the arena has no free chunk right now.
    NeedChunk,
    /// The peer closed the connection (or it broke).
    Closed,
}
