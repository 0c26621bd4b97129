//! Client and server connections: TCP or Unix-domain sockets on the reactor, connecting,
//! and the non-blocking reads and writes the relay engine makes on them.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use async_io::Async;
use futures::{AsyncRead, AsyncWrite, AsyncWriteExt};

use crate::config::Endpoint;

use super::within;

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

impl Socket {
    /// Waits until the socket has room for a write (or failed).
    pub async fn writable(&self) -> io::Result<()> {
        match self {
            Socket::Tcp(socket) => socket.writable().await,
            Socket::Unix(socket) => socket.writable().await,
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

impl Socket {
    /// This end's IP address (`None` for a Unix-domain socket).
    pub fn local_ip(&self) -> Option<std::net::IpAddr> {
        match self {
            Socket::Tcp(socket) => socket.get_ref().local_addr().ok().map(|a| a.ip()),
            Socket::Unix(_) => None,
        }
    }

    /// This end's address and port, as SHOW CLIENTS/SERVERS print them (`unix` and 0 for a
    /// Unix-domain socket).
    pub fn local_end(&self) -> (String, u16) {
        match self {
            Socket::Tcp(socket) => socket
                .get_ref()
                .local_addr()
                .map_or_else(|_| (String::new(), 0), |a| (a.ip().to_string(), a.port())),
            Socket::Unix(_) => ("unix".to_owned(), 0),
        }
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
    /// The address and port SHOW CLIENTS prints (`unix` and 0 for a Unix-domain socket).
    pub fn end(&self) -> (String, u16) {
        match self {
            Peer::Tcp(address) => (address.ip().to_string(), address.port()),
            Peer::Unix(_) => ("unix".to_owned(), 0),
        }
    }

    pub(super) fn of_unix(socket: &UnixStream) -> Peer {
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
