//! A connection as the relay sees it: a [`Socket`], in clear text or under TLS.
//!
//! Everything above this file (logins, the engine, the session) reads and writes plaintext;
//! TLS is added and taken off here, with rustls. The engine's calls are non-blocking
//! (`try_read`, `try_write_pair`): one `match` decides clear or TLS. The async calls
//! (`read`, `write_all`, the handshakes) are the same non-blocking calls plus a wait for the
//! socket, for the logins and tasks on async-std.
//!
//! With TLS, `tls.rs` keeps what was decrypted but nobody read yet, and what was encrypted but
//! the socket did not take yet, so the kernel's readiness no longer tells the whole story: a
//! short read does not mean the socket is empty (only `WouldBlock` does), and `wants_flush`
//! says that encrypted bytes still wait for room.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::sync::Arc;

use rustls::client::UnbufferedClientConnection;
use rustls::pki_types::ServerName;
use rustls::server::UnbufferedServerConnection;
use rustls::{ClientConfig, ServerConfig};

use super::socket::{self, Socket};
use super::tls::{read_into, Pumped, Tls};

/// A client or server connection, clear or encrypted.
pub struct Stream {
    socket: Socket,
    /// Boxed: the TLS state is large, and most connections in most deployments are clear.
    tls: Option<Box<Tls>>,
}

impl std::fmt::Debug for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stream")
            .field("socket", &self.socket)
            .field("tls", &self.tls.is_some())
            .finish()
    }
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

    /// The TLS version and cipher suite (empty in clear text), for SHOW CLIENTS/SERVERS.
    pub fn tls_description(&self) -> String {
        self.tls
            .as_ref()
            .map_or_else(String::new, |tls| tls.description())
    }

    /// The ALPN protocol the TLS handshake agreed on.
    pub fn alpn_protocol(&self) -> Option<&[u8]> {
        self.tls.as_ref().and_then(|tls| tls.alpn_protocol())
    }

    /// The common name of the peer's certificate (a client's, verified against
    /// `client_tls.ca` during the handshake), when it showed one.
    pub fn peer_common_name(&self) -> Option<String> {
        let certificates = self.tls.as_ref()?.peer_certificates()?;
        crate::tls::common_name(certificates.first()?)
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
        let conn =
            UnbufferedServerConnection::new(Arc::clone(config)).map_err(HandshakeError::Tls)?;
        let mut tls = Tls::server(conn);
        tls.feed(already);
        self.tls = Some(Box::new(tls));
        self.handshake().await
    }

    /// Starts TLS towards a server that accepted an SSLRequest.
    pub async fn connect_tls(
        &mut self,
        config: &Arc<ClientConfig>,
        name: ServerName<'static>,
    ) -> Result<(), HandshakeError> {
        let conn = UnbufferedClientConnection::new(Arc::clone(config), name)
            .map_err(HandshakeError::Tls)?;
        self.tls = Some(Box::new(Tls::client(conn)));
        self.handshake().await
    }

    async fn handshake(&mut self) -> Result<(), HandshakeError> {
        loop {
            let Some(tls) = self.tls.as_deref_mut() else {
                return Ok(());
            };
            let pumped = tls.pump(&[]).map(|(_, pumped)| pumped);
            if let Err(error) = pumped {
                // Tell the peer why, if the socket takes it now.
                let _ = flush(tls, &self.socket);
                return Err(HandshakeError::Tls(error));
            }
            self.flush_all().await.map_err(HandshakeError::Io)?;
            let Some(tls) = self.tls.as_deref_mut() else {
                return Ok(());
            };
            if !tls.is_handshaking() {
                return Ok(());
            }
            if pumped == Ok(Pumped::PeerClosed) {
                return Err(HandshakeError::Io(closed_during_handshake()));
            }
            match fill(tls, &self.socket) {
                Ok(0) => return Err(HandshakeError::Io(closed_during_handshake())),
                Ok(_) => {}
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
        self.tls
            .as_ref()
            .is_some_and(|tls| !tls.pending_output().is_empty())
    }

    /// One non-blocking read of plaintext: `Ok(0)` is the end of the stream, `WouldBlock`
    /// means nothing yet. Under TLS a short read does not mean the socket is empty.
    #[inline]
    pub fn try_read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.tls.as_deref_mut() {
            None => socket::try_read(&self.socket, buf),
            Some(tls) => read_plaintext(tls, &self.socket, buf),
        }
    }

    /// One non-blocking write of `first` then `second`; returns how many plaintext bytes were
    /// taken. Under TLS, what was encrypted earlier goes first, and nothing new is taken
    /// while it cannot go (so at most one batch waits, encrypted).
    #[inline]
    pub fn try_write_pair(&mut self, first: &[u8], second: &[u8]) -> io::Result<usize> {
        match self.tls.as_deref_mut() {
            None => socket::try_write_pair(&self.socket, first, second),
            Some(tls) => write_plaintext(tls, &self.socket, first, second),
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

    /// Writes all of `bytes` (and whatever was still encrypted and waiting).
    pub async fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        let mut rest = bytes;
        while !rest.is_empty() {
            match self.try_write_pair(&[], rest) {
                Ok(0) if !self.wants_flush() => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => rest = rest.get(n..).unwrap_or_default(),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.socket.writable().await?,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.flush_all().await
    }

    /// Sends whatever was encrypted and still waits.
    pub async fn flush_all(&mut self) -> io::Result<()> {
        loop {
            let Some(tls) = self.tls.as_deref_mut() else {
                return Ok(());
            };
            match flush(tls, &self.socket) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.socket.writable().await?,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                other => return other,
            }
        }
    }

    /// Last words without waiting, for a connection about to be closed: `bytes` (such as
    /// Terminate) and, under TLS, a close_notify. Whatever does not fit is dropped.
    pub fn goodbye(&mut self, bytes: &[u8]) {
        match self.tls.as_deref_mut() {
            None => {
                let _ = socket::try_write(&self.socket, bytes);
            }
            Some(tls) => {
                let _ = tls.pump(bytes);
                tls.close();
                let _ = flush(tls, &self.socket);
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

fn closed_during_handshake() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "the peer closed the connection during the TLS handshake",
    )
}

fn invalid(error: rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, error)
}

/// One read from the socket into the TLS connection's incoming buffer.
fn fill(tls: &mut Tls, socket: &Socket) -> io::Result<usize> {
    read_into(tls, |buf| socket::try_read(socket, buf))
}

/// Writes what is encrypted until it is all out (`Ok`) or the socket is full (`WouldBlock`).
fn flush(tls: &mut Tls, socket: &Socket) -> io::Result<()> {
    while !tls.pending_output().is_empty() {
        let n = socket::try_write(socket, tls.pending_output())?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        tls.output_sent(n);
    }
    Ok(())
}

fn read_plaintext(tls: &mut Tls, socket: &Socket, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        if tls.has_plaintext() {
            return Ok(tls.take_plaintext(buf));
        }
        if tls.peer_closed() {
            return Ok(0);
        }
        let (filled, pumped) = tls.pump_into(buf).map_err(|error| {
            let _ = flush(tls, socket);
            invalid(error)
        })?;
        // A key update or an alert may need an answer; it goes now if it can.
        match flush(tls, socket) {
            Err(e) if e.kind() != io::ErrorKind::WouldBlock => return Err(e),
            _ => {}
        }
        if filled > 0 {
            return Ok(filled);
        }
        if tls.has_plaintext() {
            continue;
        }
        if pumped == Pumped::PeerClosed {
            return Ok(0);
        }
        // The end of the stream without close_notify is an end all the same.
        if fill(tls, socket)? == 0 {
            return Ok(0);
        }
    }
}

fn write_plaintext(
    tls: &mut Tls,
    socket: &Socket,
    first: &[u8],
    second: &[u8],
) -> io::Result<usize> {
    flush(tls, socket)?;
    let mut taken = 0;
    for part in [first, second] {
        if part.is_empty() {
            continue;
        }
        let (n, pumped) = tls.pump(part).map_err(invalid)?;
        taken += n;
        if n < part.len() || pumped != Pumped::Ready {
            break;
        }
    }
    match flush(tls, socket) {
        Err(e) if e.kind() != io::ErrorKind::WouldBlock => Err(e),
        _ if taken == 0 && !(first.is_empty() && second.is_empty()) => {
            Err(io::ErrorKind::WouldBlock.into())
        }
        _ => Ok(taken),
    }
}
