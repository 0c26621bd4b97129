//! Sockets, timeouts and buffered message reading for the login phases.
//!
//! Sockets are async-io `Async<TcpStream>` or `Async<UnixStream>` (the reactor async-std
//! itself runs on): besides reads and writes they can wait for readiness *without a buffer*,
//! which is what lets an idle client hold no arena chunk. [`Socket`] is either; the engine
//! reads and writes the inner stream directly (one `match` per call, nothing else).

use std::fmt;
use std::future::Future;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use async_io::{Async, Timer};
use futures::future::{select, Either};
use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use qcp_codec::{Header, Limits, HEADER_LEN};

use crate::arena::{Arena, Chunk, Priority};
use crate::config::{Endpoint, MAX_SOCKET_PATH};

/// A client or server connection on the reactor: TCP or a Unix-domain socket.
#[derive(Debug)]
pub enum Socket {
    /// A TCP connection.
    Tcp(Async<TcpStream>),
    /// A Unix-domain stream socket.
    Unix(Async<UnixStream>),
}

impl Socket {
    /// Waits until the socket is readable (data, end of stream or an error), reading nothing.
    pub async fn readable(&self) -> io::Result<()> {
        match self {
            Socket::Tcp(socket) => socket.readable().await,
            Socket::Unix(socket) => socket.readable().await,
        }
    }
}

impl AsFd for Socket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            Socket::Tcp(socket) => socket.get_ref().as_fd(),
            Socket::Unix(socket) => socket.get_ref().as_fd(),
        }
    }
}

impl AsRawFd for Socket {
    fn as_raw_fd(&self) -> RawFd {
        self.as_fd().as_raw_fd()
    }
}

impl AsyncRead for &Socket {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        match *self {
            Socket::Tcp(socket) => Pin::new(&mut &*socket).poll_read(cx, buf),
            Socket::Unix(socket) => Pin::new(&mut &*socket).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for &Socket {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match *self {
            Socket::Tcp(socket) => Pin::new(&mut &*socket).poll_write(cx, buf),
            Socket::Unix(socket) => Pin::new(&mut &*socket).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match *self {
            Socket::Tcp(socket) => Pin::new(&mut &*socket).poll_flush(cx),
            Socket::Unix(socket) => Pin::new(&mut &*socket).poll_flush(cx),
        }
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match *self {
            Socket::Tcp(socket) => Pin::new(&mut &*socket).poll_close(cx),
            Socket::Unix(socket) => Pin::new(&mut &*socket).poll_close(cx),
        }
    }
}

/// Where a connected server is, as connected to: a cancel request for it goes there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Remote {
    /// The address a TCP connection reached (names already resolved).
    Tcp(SocketAddr),
    /// A Unix-domain socket file.
    Unix(PathBuf),
}

impl fmt::Display for Remote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Remote::Tcp(address) => address.fmt(f),
            Remote::Unix(path) => path.display().fmt(f),
        }
    }
}

/// Where qcp accepts clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocalAddr {
    /// A TCP address (with the port the system chose when `listening_address` had port 0).
    Tcp(SocketAddr),
    /// The path of a Unix-domain socket.
    Unix(PathBuf),
}

impl fmt::Display for LocalAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LocalAddr::Tcp(address) => address.fmt(f),
            LocalAddr::Unix(path) => path.display().fmt(f),
        }
    }
}

/// Who a client is, for the log: its address, or for a Unix-domain socket `unix` with the
/// peer's process and user id where the system tells them (`unix(pid=123,uid=1000)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    /// A TCP client's address.
    Tcp(SocketAddr),
    /// A Unix-domain socket client: its process id and user id, if known.
    Unix(Option<(i32, u32)>),
}

impl Peer {
    fn of_unix(socket: &UnixStream) -> Peer {
        #[cfg(any(target_os = "linux", target_os = "android"))]
        {
            let credentials = rustix::net::sockopt::socket_peercred(socket).ok();
            Peer::Unix(credentials.map(|c| (c.pid.as_raw_nonzero().get(), c.uid.as_raw())))
        }
        #[cfg(not(any(target_os = "linux", target_os = "android")))]
        {
            let _ = socket;
            Peer::Unix(None)
        }
    }
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Peer::Tcp(address) => address.fmt(f),
            Peer::Unix(Some((pid, uid))) => write!(f, "unix(pid={pid},uid={uid})"),
            Peer::Unix(None) => f.write_str("unix"),
        }
    }
}

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

/// Runs a connect attempt for at most `limit` (0 = no limit); running out is an I/O error.
async fn within<T>(limit: Duration, attempt: impl Future<Output = io::Result<T>>) -> io::Result<T> {
    match timeout(limit, attempt).await {
        Ok(result) => result,
        Err(TimedOut) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("no answer within {} s", limit.as_secs_f64()),
        )),
    }
}

/// Connects to a configured server `address` (`host:port`, names resolved, or a Unix socket:
/// see [`Endpoint::parse`]) within `limit`; returns the socket and where it is connected.
pub async fn connect(address: &str, limit: Duration) -> io::Result<(Socket, Remote)> {
    let endpoint = Endpoint::parse(address, false)
        .map_err(|message| io::Error::new(io::ErrorKind::InvalidInput, message))?;
    within(limit, async {
        match endpoint {
            Endpoint::Tcp(address) => {
                let candidates: Vec<SocketAddr> =
                    async_std::net::ToSocketAddrs::to_socket_addrs(&address)
                        .await?
                        .collect();
                let mut last_error = io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("{address} resolves to no address"),
                );
                for candidate in candidates {
                    let remote = Remote::Tcp(candidate);
                    match connect_once(&remote).await {
                        Ok(socket) => return Ok((socket, remote)),
                        Err(error) => last_error = error,
                    }
                }
                Err(last_error)
            }
            Endpoint::Unix(path) => {
                let remote = Remote::Unix(path);
                let socket = connect_once(&remote).await?;
                Ok((socket, remote))
            }
        }
    })
    .await
}

/// Connects to `remote` again (a cancel request) within `limit`.
pub async fn connect_to(remote: &Remote, limit: Duration) -> io::Result<Socket> {
    within(limit, connect_once(remote)).await
}

async fn connect_once(remote: &Remote) -> io::Result<Socket> {
    match remote {
        Remote::Tcp(address) => {
            let socket = Socket::Tcp(Async::<TcpStream>::connect(*address).await?);
            tune(&socket);
            Ok(socket)
        }
        Remote::Unix(path) => match Async::<UnixStream>::connect(path).await {
            Ok(socket) => Ok(Socket::Unix(socket)),
            // As libpq says it: the error alone would not tell which file was tried.
            Err(error) => Err(io::Error::new(
                error.kind(),
                format!("socket \"{}\": {error}", path.display()),
            )),
        },
    }
}

/// Socket options for every connection: no Nagle delay on TCP (the relay already batches
/// whole runs of messages per write, so delaying small writes only adds latency).
pub fn tune(socket: &Socket) {
    if let Socket::Tcp(socket) = socket {
        let _ = socket.get_ref().set_nodelay(true);
    }
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
    match socket {
        Socket::Tcp(socket) => Read::read(&mut socket.get_ref(), buf),
        Socket::Unix(socket) => Read::read(&mut socket.get_ref(), buf),
    }
}

/// Tries one non-blocking write.
#[inline]
pub fn try_write(socket: &Socket, buf: &[u8]) -> io::Result<usize> {
    match socket {
        Socket::Tcp(socket) => Write::write(&mut socket.get_ref(), buf),
        Socket::Unix(socket) => Write::write(&mut socket.get_ref(), buf),
    }
}

/// Tries one non-blocking write of `first` then `second` (one system call for both).
#[inline]
pub fn try_write_pair(socket: &Socket, first: &[u8], second: &[u8]) -> io::Result<usize> {
    if first.is_empty() {
        return try_write(socket, second);
    }
    let pair = [io::IoSlice::new(first), io::IoSlice::new(second)];
    match socket {
        Socket::Tcp(socket) => Write::write_vectored(&mut socket.get_ref(), &pair),
        Socket::Unix(socket) => Write::write_vectored(&mut socket.get_ref(), &pair),
    }
}

/// True if the peer has sent something or closed: used on idle pooled server connections,
/// which must be silent (anything they say means they are going away, e.g. a FATAL from
/// `pg_terminate_backend`).
pub fn has_input_or_closed(socket: &Socket) -> bool {
    use rustix::net::RecvFlags;
    let mut probe = [0u8; 1];
    match rustix::net::recv(
        socket,
        &mut probe[..],
        RecvFlags::PEEK | RecvFlags::DONTWAIT,
    ) {
        Ok(_) => true, // data, or 0 = closed
        Err(errno) => errno != rustix::io::Errno::WOULDBLOCK,
    }
}

/// The socket qcp accepts clients on.
pub enum Listener {
    /// `host:port`.
    Tcp(Async<TcpListener>),
    /// A Unix-domain socket file, removed when the listener is dropped.
    Unix(SocketFile),
}

/// A listening Unix-domain socket and its file.
pub struct SocketFile {
    listener: Async<UnixListener>,
    path: PathBuf,
    /// The file's device and inode: only this file is removed at the end, not one another
    /// program put there since.
    id: (u64, u64),
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        use std::os::unix::fs::MetadataExt;
        if let Ok(meta) = std::fs::symlink_metadata(&self.path) {
            if (meta.dev(), meta.ino()) == self.id {
                let _ = std::fs::remove_file(&self.path);
            }
        }
    }
}

impl Listener {
    /// Listens on `endpoint`; a Unix-domain socket file gets the permissions `mode`.
    pub async fn bind(endpoint: &Endpoint, mode: u32) -> io::Result<Listener> {
        match endpoint {
            Endpoint::Tcp(address) => bind_tcp(address).map(Listener::Tcp),
            Endpoint::Unix(path) => bind_unix(path, mode).await.map(Listener::Unix),
        }
    }

    /// Where clients connect.
    pub fn local_addr(&self) -> io::Result<LocalAddr> {
        match self {
            Listener::Tcp(listener) => listener.get_ref().local_addr().map(LocalAddr::Tcp),
            Listener::Unix(file) => Ok(LocalAddr::Unix(file.path.clone())),
        }
    }

    /// Accepts the next client.
    pub async fn accept(&self) -> io::Result<(Socket, Peer)> {
        match self {
            Listener::Tcp(listener) => {
                let (socket, address) = listener.accept().await?;
                let socket = Socket::Tcp(socket);
                tune(&socket);
                Ok((socket, Peer::Tcp(address)))
            }
            Listener::Unix(file) => {
                let (socket, _) = file.listener.accept().await?;
                let peer = Peer::of_unix(socket.get_ref());
                Ok((Socket::Unix(socket), peer))
            }
        }
    }
}

fn bind_tcp(address: &str) -> io::Result<Async<TcpListener>> {
    use std::net::ToSocketAddrs;
    let mut last = io::Error::new(io::ErrorKind::NotFound, "the address resolves to nothing");
    for candidate in address.to_socket_addrs()? {
        match Async::<TcpListener>::bind(candidate) {
            Ok(listener) => return Ok(listener),
            Err(error) => last = error,
        }
    }
    Err(last)
}

/// Creates the socket file `path` with permissions `mode`. A socket file already there is
/// replaced if nothing answers on it (left by a process that is gone), and is an error if
/// something does; any other kind of file there is an error. The socket is bound inside a
/// private (0700) directory next to `path`, given its mode, then moved into place, so nobody
/// can connect to it before it has its permissions (as the control socket).
async fn bind_unix(path: &Path, mode: u32) -> io::Result<SocketFile> {
    use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt, PermissionsExt};
    let shown = path.display();
    match std::fs::symlink_metadata(path) {
        Ok(meta) if !meta.file_type().is_socket() => {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{shown} exists and is not a socket"),
            ))
        }
        Ok(_) => match timeout(Duration::from_secs(1), Async::<UnixStream>::connect(path)).await {
            Ok(Err(error)) if error.kind() == io::ErrorKind::ConnectionRefused => {
                std::fs::remove_file(path)?;
            }
            Ok(Err(error)) => {
                return Err(io::Error::new(
                    error.kind(),
                    format!("cannot tell whether a program listens on {shown}: {error}"),
                ))
            }
            // Answered, or too busy to answer at once: in use either way.
            Ok(Ok(_)) | Err(TimedOut) => {
                return Err(io::Error::new(
                    io::ErrorKind::AddrInUse,
                    format!("another program is listening on {shown}"),
                ))
            }
        },
        Err(error) if error.kind() == io::ErrorKind::NotFound => {}
        Err(error) => return Err(error),
    }
    let restrict = |at: &Path| std::fs::set_permissions(at, std::fs::Permissions::from_mode(mode));
    let private = private_dir(path);
    let inner = private.join("s");
    let listener = if inner.as_os_str().len() > MAX_SOCKET_PATH {
        // No room for the directory in the path: bind in place and set the mode at once.
        let listener = Async::<UnixListener>::bind(path)?;
        if let Err(error) = restrict(path) {
            let _ = std::fs::remove_file(path);
            return Err(error);
        }
        listener
    } else {
        // Left over by a qcp that crashed while starting.
        let _ = std::fs::remove_dir_all(&private);
        std::fs::DirBuilder::new().mode(0o700).create(&private)?;
        let bound = Async::<UnixListener>::bind(&inner).and_then(|listener| {
            restrict(&inner)?;
            std::fs::rename(&inner, path)?;
            Ok(listener)
        });
        let _ = std::fs::remove_dir_all(&private);
        bound?
    };
    let meta = std::fs::symlink_metadata(path)?;
    Ok(SocketFile {
        listener,
        path: path.to_owned(),
        id: (meta.dev(), meta.ino()),
    })
}

/// `dir/.name.tmp` for `dir/name`: on the same file system, so the socket can be renamed out.
fn private_dir(path: &Path) -> PathBuf {
    let mut name = std::ffi::OsString::from(".");
    name.push(path.file_name().unwrap_or_default());
    name.push(".tmp");
    path.with_file_name(name)
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
