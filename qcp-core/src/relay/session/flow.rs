//! One direction of a relayed connection: an arena chunk (only while bytes are in flight),
//! the framer, and the cursors that say what has been scanned and sent.

use std::sync::Arc;

use qcp_codec::{Header, Limits, HEADER_LEN};

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
}

/// Where the next bytes from a peer can go (see `Session::read_space`).
pub enum Space<'a> {
    /// Read into this (never empty).
    Free(&'a mut [u8]),
    /// The chunk is full of bytes not yet sent: read again once some are written.
    Full,
    /// No chunk is held and the arena has none free right now.
    NeedChunk,
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
        }
    }

    /// A direction starting with `chunk[start..end]` unscanned (bytes left over from a login).
    pub fn with_bytes(limits: Limits, chunk: Chunk, start: usize, end: usize) -> Self {
        let end = end.min(chunk.len());
        let start = start.min(end);
        let mut flow = Flow {
            chunk: Some(chunk),
            sent: start,
            scanned: start,
            filled: end,
            framer: Framer::new(limits),
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
        self.bytes(self.sent, self.scanned)
    }

    /// Bytes read but not scanned yet.
    #[inline]
    pub fn unscanned(&self) -> &[u8] {
        self.bytes(self.scanned, self.filled)
    }

    #[inline]
    fn bytes(&self, from: usize, to: usize) -> &[u8] {
        self.chunk
            .as_ref()
            .and_then(|chunk| chunk.bytes().get(from..to))
            .unwrap_or_default()
    }

    /// Frames the next bytes read but not scanned yet (see [`Framer::next_run`]).
    #[inline]
    pub fn next_run(&mut self, inspect: &mut impl Inspect) -> Result<Run, FrameError> {
        let capacity = self.capacity();
        let unscanned = self
            .chunk
            .as_ref()
            .and_then(|chunk| chunk.bytes().get(self.scanned..self.filled))
            .unwrap_or_default();
        self.framer.next_run(unscanned, capacity, inspect)
    }

    /// As much of the body of the message whose header starts at `scanned` as has been read
    /// (all of it when its length is `header.body_len()`).
    pub fn body_read(&self, header: &Header) -> &[u8] {
        let start = self.scanned.saturating_add(HEADER_LEN).min(self.filled);
        let end = self.filled.min(start.saturating_add(header.body_len()));
        self.bytes(start, end)
    }

    /// Capacity of the chunk (0 without one).
    #[inline]
    pub fn capacity(&self) -> usize {
        self.chunk.as_ref().map_or(0, Chunk::len)
    }

    /// Free space to read into: takes a chunk from the arena if none is held, and makes room
    /// by moving held bytes to the front when the end of the chunk is reached.
    pub fn space(&mut self, arena: &Arc<Arena>, priority: Priority) -> Space<'_> {
        if self.chunk.is_none() {
            match arena.try_acquire(priority) {
                Some(chunk) => self.chunk = Some(chunk),
                None => return Space::NeedChunk,
            }
        }
        let Some(chunk) = self.chunk.as_mut() else {
            return Space::NeedChunk;
        };
        if self.filled == chunk.len() && self.sent > 0 {
            chunk.bytes_mut().copy_within(self.sent..self.filled, 0);
            self.scanned = self.scanned.saturating_sub(self.sent);
            self.filled = self.filled.saturating_sub(self.sent);
            self.sent = 0;
        }
        match chunk.bytes_mut().get_mut(self.filled..) {
            Some(space) if !space.is_empty() => Space::Free(space),
            _ => Space::Full,
        }
    }

    /// `n` bytes were read into the space [`Flow::space`] gave.
    #[inline]
    pub fn received(&mut self, n: usize) {
        self.filled = self.filled.saturating_add(n).min(self.capacity());
    }

    /// Gives a chunk the driver waited for to this direction (if it still has none).
    pub fn give_chunk(&mut self, chunk: Chunk) {
        if self.chunk.is_none() {
            self.chunk = Some(chunk);
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

    /// The scan moved `n` bytes from unscanned to ready.
    #[inline]
    pub fn pass(&mut self, n: usize) {
        self.scanned = self.scanned.saturating_add(n).min(self.filled);
    }

    /// The scan dropped `n` bytes (nothing before them is waiting to be written).
    #[inline]
    pub fn drop_scanned(&mut self, n: usize) {
        self.pass(n);
        self.sent = self.scanned;
    }

    /// `n` bytes of the ready run were written.
    #[inline]
    pub fn wrote(&mut self, n: usize) {
        self.sent = self.sent.saturating_add(n).min(self.scanned);
    }
}
