//! A connection as the relay sees it: a [`Socket`], in clear text or under TLS.
//!
//! Everything above this file (logins, the engine, the session) reads and writes plaintext;
//! TLS is added and taken off here, with rustls. The engine's calls are non-blocking
//! (`try_read`, `try_write_pair`): one `match` decides clear or TLS. The async calls
//! (`read`, `write_all`, the handshakes) are the same non-blocking calls plus a wait for the
//! socket, for the logins and tasks on async-std.
//!
//! With TLS, rustls keeps what it decrypted but nobody read yet, and what it encrypted but the
//! socket did not take yet, so the kernel's readiness no longer tells the whole story: a
//! short read does not mean the socket is empty (only `WouldBlock` does), and `wants_flush`
//! says that encrypted bytes still wait for room.

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::sync::Arc;

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, Connection, ServerConfig, ServerConnection};

use super::socket::{self, Socket};

/// A client or server connection, clear or encrypted.
#[derive(Debug)]
pub struct Stream {
    socket: Socket,
    /// Boxed: rustls's state is large, and most connections in most deployments are clear.
    tls: Option<Box<Connection>>,
}

/// Why a TLS handshake failed.
#[derive(Debug)]
pub enum HandshakeError {
    /// The socket failed or the peer closed it.
    Io(io::Error),
    /// The peer broke the TLS protocol or its certificate was not accepted.
    Tls(rustls::Error),
}

impl std::fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HandshakeError::Io(error) => error.fmt(f),
            HandshakeError::Tls(error) => error.fmt(f),
        }
    }
}

impl Stream {
    /// A clear-text connection.
    pub fn plain(socket: Socket) -> Stream {
        Stream { socket, tls: None }
    }

    /// The socket underneath.
    pub fn socket(&self) -> &Socket {
        &self.socket
    }

    /// Whether the connection is encrypted.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// The ALPN protocol the TLS handshake agreed on.
    pub fn alpn_protocol(&self) -> Option<&[u8]> {
        self.tls.as_ref().and_then(|tls| tls.alpn_protocol())
    }

    /// The SCRAM `tls-server-end-point` data of the peer's certificate (a server's), when
    /// on TLS and its signature algorithm names a hash.
    pub fn peer_end_point(&self) -> Option<Vec<u8>> {
        let certificates = self.tls.as_ref()?.peer_certificates()?;
        crate::tls::server_end_point(certificates.first()?)
    }

    /// Accepts a TLS handshake from a client; `already` holds bytes of it already read (a
    /// direct TLS connection's first bytes).
    pub async fn accept_tls(
        &mut self,
        config: &Arc<ServerConfig>,
        already: &[u8],
    ) -> Result<(), HandshakeError> {
        let mut conn = ServerConnection::new(Arc::clone(config)).map_err(HandshakeError::Tls)?;
        let mut prefix = already;
        while !prefix.is_empty() {
            conn.read_tls(&mut prefix).map_err(HandshakeError::Io)?;
            conn.process_new_packets().map_err(HandshakeError::Tls)?;
        }
        self.tls = Some(Box::new(Connection::Server(conn)));
        self.handshake().await
    }

    /// Starts TLS towards a server that accepted an SSLRequest.
    pub async fn connect_tls(
        &mut self,
        config: &Arc<ClientConfig>,
        name: ServerName<'static>,
    ) -> Result<(), HandshakeError> {
        let conn = ClientConnection::new(Arc::clone(config), name).map_err(HandshakeError::Tls)?;
        self.tls = Some(Box::new(Connection::Client(conn)));
        self.handshake().await
    }

    async fn handshake(&mut self) -> Result<(), HandshakeError> {
        loop {
            let Some(conn) = self.tls.as_deref_mut() else {
                return Ok(());
            };
            match flush(conn, &self.socket) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.socket.writable().await.map_err(HandshakeError::Io)?;
                    continue;
                }
                Err(e) => return Err(HandshakeError::Io(e)),
            }
            if !conn.is_handshaking() {
                return Ok(());
            }
            match conn.read_tls(&mut Reader(&self.socket)) {
                Ok(0) => {
                    return Err(HandshakeError::Io(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the peer closed the connection during the TLS handshake",
                    )))
                }
                Ok(_) => {
                    if let Err(error) = conn.process_new_packets() {
                        // rustls queued an alert that tells the peer why: send it if we can.
                        let _ = flush(conn, &self.socket);
                        return Err(HandshakeError::Tls(error));
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.socket.readable().await.map_err(HandshakeError::Io)?;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(HandshakeError::Io(e)),
            }
        }
    }

    /// Whether encrypted bytes wait for room in the socket.
    pub fn wants_flush(&self) -> bool {
        self.tls.as_ref().is_some_and(|tls| tls.wants_write())
    }

    /// One non-blocking read of plaintext: `Ok(0)` is the end of the stream, `WouldBlock`
    /// means nothing yet. Under TLS a short read does not mean the socket is empty.
    #[inline]
    pub fn try_read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.tls.as_deref_mut() {
            None => socket::try_read(&self.socket, buf),
            Some(conn) => read_plaintext(conn, &self.socket, buf),
        }
    }

    /// One non-blocking write of `first` then `second`; returns how many plaintext bytes were
    /// taken. Under TLS, what was encrypted earlier goes first, and nothing new is taken
    /// while it cannot go (so at most one batch waits, encrypted, outside the arena).
    #[inline]
    pub fn try_write_pair(&mut self, first: &[u8], second: &[u8]) -> io::Result<usize> {
        match self.tls.as_deref_mut() {
            None => socket::try_write_pair(&self.socket, first, second),
            Some(conn) => write_plaintext(conn, &self.socket, first, second),
        }
    }

    /// Reads at least one byte (or the end of the stream, `Ok(0)`).
    pub async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.try_read(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    // Under TLS, rustls may owe the peer an answer before it says more.
                    self.flush_all().await?;
                    self.socket.readable().await?;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                other => return other,
            }
        }
    }

    /// Writes all of `bytes` (and whatever rustls still held).
    pub async fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        let mut rest = bytes;
        while !rest.is_empty() {
            match self.try_write_pair(&[], rest) {
                Ok(0) if !self.wants_flush() => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => rest = &rest[n..],
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.socket.writable().await?,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.flush_all().await
    }

    /// Sends whatever rustls still holds.
    pub async fn flush_all(&mut self) -> io::Result<()> {
        loop {
            let Some(conn) = self.tls.as_deref_mut() else {
                return Ok(());
            };
            match flush(conn, &self.socket) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.socket.writable().await?,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                other => return other,
            }
        }
    }

    /// Sends what is ready now without waiting: `Ok(true)` if nothing is left.
    pub fn try_flush(&mut self) -> io::Result<bool> {
        let Some(conn) = self.tls.as_deref_mut() else {
            return Ok(true);
        };
        match flush(conn, &self.socket) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Last words without waiting, for a connection about to be closed: `bytes` (such as
    /// Terminate) and, under TLS, a close_notify. Whatever does not fit is dropped.
    pub fn goodbye(&mut self, bytes: &[u8]) {
        match self.tls.as_deref_mut() {
            None => {
                let _ = socket::try_write(&self.socket, bytes);
            }
            Some(conn) => {
                let _ = conn.writer().write_all(bytes);
                conn.send_close_notify();
                let _ = flush(conn, &self.socket);
            }
        }
    }
}

impl AsFd for Stream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.socket.as_fd()
    }
}

impl AsRawFd for Stream {
    fn as_raw_fd(&self) -> RawFd {
        self.socket.as_raw_fd()
    }
}

/// The socket as `io::Read` for rustls (non-blocking).
struct Reader<'a>(&'a Socket);

impl Read for Reader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        socket::try_read(self.0, buf)
    }
}

/// The socket as `io::Write` for rustls (non-blocking; rustls writes its records vectored).
struct Writer<'a>(&'a Socket);

impl Write for Writer<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        socket::try_write(self.0, buf)
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        socket::try_write_vectored(self.0, bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Writes what rustls holds until it is all out (`Ok`) or the socket is full (`WouldBlock`).
fn flush(conn: &mut Connection, socket: &Socket) -> io::Result<()> {
    while conn.wants_write() {
        conn.write_tls(&mut Writer(socket))?;
    }
    Ok(())
}

fn read_plaintext(conn: &mut Connection, socket: &Socket, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match conn.reader().read(buf) {
            // Plaintext, or 0 after the peer's close_notify.
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            // The peer closed without close_notify (UnexpectedEof), or worse.
            Err(e) => return Err(e),
        }
        if conn.read_tls(&mut Reader(socket))? == 0 {
            // The next reader().read reports the end (clean or not).
            continue;
        }
        if let Err(error) = conn.process_new_packets() {
            let _ = flush(conn, socket);
            return Err(io::Error::new(io::ErrorKind::InvalidData, error));
        }
        // A key update or an alert may need an answer; it goes now if it can.
        if conn.wants_write() {
            match flush(conn, socket) {
                Err(e) if e.kind() != io::ErrorKind::WouldBlock => return Err(e),
                _ => {}
            }
        }
    }
}

fn write_plaintext(
    conn: &mut Connection,
    socket: &Socket,
    first: &[u8],
    second: &[u8],
) -> io::Result<usize> {
    flush(conn, socket)?;
    let mut taken = conn.writer().write(first)?;
    if taken == first.len() {
        taken += conn.writer().write(second)?;
    }
    match flush(conn, socket) {
        Err(e) if e.kind() != io::ErrorKind::WouldBlock => Err(e),
        _ => Ok(taken),
    }
}
