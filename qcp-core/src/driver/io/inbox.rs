//! Reading whole messages one at a time into an arena chunk, for logins and internal
//! queries.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use qcp_codec::{Header, Limits, HEADER_LEN};

use crate::arena::{Arena, Chunk, Priority};

use super::stream::Stream;
use super::{timeout, TimedOut};

/// Why reading a message failed.
#[derive(Debug)]
pub enum ReadError {
    /// The peer closed the connection.
    Closed,
    /// A socket error.
    Io(io::Error),
    /// The bytes are not a valid message (bad length, over the limit).
    Protocol(qcp_codec::DecodeError),
    /// The message does not fit in one chunk (only small messages are read this way).
    TooLarge(usize),
}

/// A chunk used to read whole messages one at a time: logins, server start-up, internal
/// queries. Bytes read past the current message stay for the next call, and can be handed
/// to the relay afterwards ([`Inbox::into_parts`]).
pub struct Inbox {
    chunk: Chunk,
    /// INVARIANT: start <= end <= chunk.len(); unread bytes are chunk[start..end].
    start: usize,
    end: usize,
}

impl Inbox {
    /// An empty inbox on `chunk`.
    pub fn new(chunk: Chunk) -> Self {
        Inbox {
            chunk,
            start: 0,
            end: 0,
        }
    }

    /// Waits for a chunk from the arena (bounded by `limit`).
    pub async fn acquire(
        arena: &Arc<Arena>,
        priority: Priority,
        limit: Duration,
    ) -> Result<Self, TimedOut> {
        let chunk = timeout(limit, arena.acquire(priority)).await?;
        Ok(Inbox::new(chunk))
    }

    /// Puts `bytes` (read before the inbox existed) in as unread; `TooLarge` if they do
    /// not fit in the chunk.
    pub fn prefill(&mut self, bytes: &[u8]) -> Result<(), ReadError> {
        let end = self.end + bytes.len();
        let Some(room) = self.chunk.bytes_mut().get_mut(self.end..end) else {
            return Err(ReadError::TooLarge(end));
        };
        room.copy_from_slice(bytes);
        self.end = end;
        Ok(())
    }

    /// Unread bytes.
    pub fn unread(&self) -> &[u8] {
        &self.chunk.bytes()[self.start..self.end]
    }

    /// Marks `n` unread bytes as consumed.
    pub fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.end);
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// Reads more bytes from `stream` (at least one, or an error).
    pub async fn fill(&mut self, stream: &mut Stream) -> Result<(), ReadError> {
        if self.end == self.chunk.len() {
            if self.start == 0 {
                return Err(ReadError::TooLarge(self.end));
            }
            self.chunk.bytes_mut().copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let n = stream
            .read(&mut self.chunk.bytes_mut()[self.end..])
            .await
            .map_err(ReadError::Io)?;
        if n == 0 {
            return Err(ReadError::Closed);
        }
        self.end += n;
        Ok(())
    }

    /// Reads until one whole tagged message is buffered and returns its header and the
    /// range of its body in [`Inbox::unread`]. Call [`Inbox::consume`] with
    /// `header.frame_len()` when done with it.
    pub async fn message(
        &mut self,
        stream: &mut Stream,
        limits: &Limits,
    ) -> Result<Header, ReadError> {
        loop {
            if let Some(header) =
                Header::parse_limited(self.unread(), limits).map_err(ReadError::Protocol)?
            {
                let frame_len = header.frame_len();
                if frame_len > self.chunk.len() {
                    return Err(ReadError::TooLarge(frame_len));
                }
                if self.unread().len() >= frame_len {
                    return Ok(header);
                }
            }
            self.fill(stream).await?;
        }
    }

    /// The body of the message whose header [`Inbox::message`] returned.
    pub fn body(&self, header: &Header) -> &[u8] {
        self.unread()
            .get(HEADER_LEN..header.frame_len())
            .unwrap_or(&[])
    }

    /// The chunk and the unread range, for the relay to carry on from.
    pub fn into_parts(self) -> (Chunk, usize, usize) {
        (self.chunk, self.start, self.end)
    }
}
