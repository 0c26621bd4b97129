//! Sockets, timeouts and buffered message reading for the login phases.
//!
//! Sockets are async-io `Async<TcpStream>` (the reactor async-std itself runs on): besides
//! reads and writes it can wait for readiness *without a buffer*, which is what lets an idle
//! client hold no arena chunk.

use std::future::Future;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use async_io::{Async, Timer};
use futures::future::{select, Either};
use futures::{AsyncReadExt, AsyncWriteExt};
use qcp_codec::{Header, Limits, HEADER_LEN};

use crate::arena::{Arena, Chunk, Priority};

/// A TCP connection on the reactor.
pub type Socket = Async<TcpStream>;

/// The operation did not finish in time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimedOut;

/// Runs `future` for at most `limit`; a zero limit means no limit.
pub async fn timeout<F: Future>(limit: Duration, future: F) -> Result<F::Output, TimedOut> {
    if limit.is_zero() {
        return Ok(future.await);
    }
    let future = std::pin::pin!(future);
    let timer = std::pin::pin!(Timer::after(limit));
    match select(future, timer).await {
        Either::Left((output, _)) => Ok(output),
        Either::Right(_) => Err(TimedOut),
    }
}

/// Sleeps for `duration`.
pub async fn sleep(duration: Duration) {
    Timer::after(duration).await;
}

/// Connects to `address` (host:port; names are resolved) within `limit`.
pub async fn connect(address: &str, limit: Duration) -> io::Result<Socket> {
    let attempt = async {
        let addresses: Vec<SocketAddr> = async_std::net::ToSocketAddrs::to_socket_addrs(address)
            .await?
            .collect();
        let mut last_error = io::Error::new(
            io::ErrorKind::NotFound,
            format!("{address} resolves to no address"),
        );
        for candidate in addresses {
            match Async::<TcpStream>::connect(candidate).await {
                Ok(socket) => {
                    tune(&socket);
                    return Ok(socket);
                }
                Err(error) => last_error = error,
            }
        }
        Err(last_error)
    };
    match timeout(limit, attempt).await {
        Ok(result) => result,
        Err(TimedOut) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("no answer within {} s", limit.as_secs_f64()),
        )),
    }
}

/// Socket options for every connection: no Nagle delay (the relay already batches whole
/// runs of messages per write, so delaying small writes only adds latency).
pub fn tune(socket: &Socket) {
    let _ = socket.get_ref().set_nodelay(true);
}

/// Writes all of `bytes`.
pub async fn write_all(socket: &Socket, bytes: &[u8]) -> io::Result<()> {
    let mut writer = socket;
    writer.write_all(bytes).await?;
    Ok(())
}

/// Tries one non-blocking read: `Ok(0)` is end of stream, `WouldBlock` means no data yet.
#[inline]
pub fn try_read(socket: &Socket, buf: &mut [u8]) -> io::Result<usize> {
    let mut stream: &TcpStream = socket.get_ref();
    stream.read(buf)
}

/// Tries one non-blocking write.
#[inline]
pub fn try_write(socket: &Socket, buf: &[u8]) -> io::Result<usize> {
    let mut stream: &TcpStream = socket.get_ref();
    stream.write(buf)
}

/// Tries one non-blocking write of `first` then `second` (one system call for both).
#[inline]
pub fn try_write_pair(socket: &Socket, first: &[u8], second: &[u8]) -> io::Result<usize> {
    if first.is_empty() {
        return try_write(socket, second);
    }
    let mut stream: &TcpStream = socket.get_ref();
    stream.write_vectored(&[io::IoSlice::new(first), io::IoSlice::new(second)])
}

/// True if the peer has sent something or closed: used on idle pooled server connections,
/// which must be silent (anything they say means they are going away, e.g. a FATAL from
/// `pg_terminate_backend`).
pub fn has_input_or_closed(socket: &Socket) -> bool {
    let mut probe = [0u8; 1];
    match socket.get_ref().peek(&mut probe) {
        Ok(_) => true, // data, or 0 = closed
        Err(error) => error.kind() != io::ErrorKind::WouldBlock,
    }
}

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

    /// Reads more bytes from `socket` (at least one, or an error).
    pub async fn fill(&mut self, socket: &Socket) -> Result<(), ReadError> {
        if self.end == self.chunk.len() {
            if self.start == 0 {
                return Err(ReadError::TooLarge(self.end));
            }
            self.chunk.bytes_mut().copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let mut reader = socket;
        let n = reader
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
    pub async fn message(&mut self, socket: &Socket, limits: &Limits) -> Result<Header, ReadError> {
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
            self.fill(socket).await?;
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
