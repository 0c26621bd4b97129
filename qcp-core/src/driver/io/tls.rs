//! One TLS connection over rustls's unbuffered API, with buffers of qcp's own: ciphertext
//! read but not yet a whole record, ciphertext encrypted but not yet taken by the socket, and
//! plaintext decrypted but not yet read. Each is empty, and holds no memory, whenever the
//! connection is quiet: an idle TLS client keeps only rustls's session state (keys, a few
//! hundred bytes of bookkeeping), where rustls's buffered API would keep a 4 KB read buffer
//! per connection for good.
//!
//! Nothing here waits: [`Tls::pump`] does what rustls can do with the bytes it has and says
//! what it needs next; `stream.rs` moves bytes between these buffers and the socket.

use rustls::client::{ClientConnectionData, UnbufferedClientConnection};
use rustls::server::{ServerConnectionData, UnbufferedServerConnection};
use rustls::unbuffered::{
    ConnectionState, EncodeError, EncryptError, InsufficientSizeError, UnbufferedStatus,
};
use rustls::CommonState;

/// Most ciphertext one read asks the socket for: a whole TLS record with its header and
/// the largest expansion TLS 1.2 allows.
pub(super) const READ_SIZE: usize = 16 * 1024 + 2048 + 5;

thread_local! {
    /// Where reads from sockets land before the bytes are given to a connection: one buffer
    /// per thread, so a connection's own incoming buffer only ever holds a partial record.
    static SCRATCH: std::cell::RefCell<Vec<u8>> = std::cell::RefCell::new(vec![0; READ_SIZE]);
}

/// Runs `read` on this thread's read buffer and hands what it read to `tls`.
pub(super) fn read_into(
    tls: &mut Tls,
    read: impl FnOnce(&mut [u8]) -> std::io::Result<usize>,
) -> std::io::Result<usize> {
    SCRATCH.with(|scratch| {
        let mut scratch = scratch.borrow_mut();
        let n = read(scratch.as_mut_slice())?;
        tls.feed(scratch.get(..n).unwrap_or_default());
        Ok(n)
    })
}

/// Either side of a TLS connection.
enum Side {
    Server(UnbufferedServerConnection),
    Client(UnbufferedClientConnection),
}

/// Where [`Tls::pump`] left the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Pumped {
    /// rustls needs more bytes from the peer (mid-record or mid-handshake).
    NeedInput,
    /// Application data may be sent (and everything that could be decrypted was).
    Ready,
    /// The peer sent close_notify: no more data comes.
    PeerClosed,
}

/// A TLS connection's state and buffers.
pub(super) struct Tls {
    side: Side,
    /// Ciphertext from the peer that rustls has not consumed yet.
    incoming: Vec<u8>,
    /// Ciphertext for the peer, from `sent` on.
    outgoing: Vec<u8>,
    sent: usize,
    /// Plaintext from the peer, from `taken` on.
    plain: Vec<u8>,
    taken: usize,
    peer_closed: bool,
}

impl Tls {
    pub(super) fn server(conn: UnbufferedServerConnection) -> Tls {
        Tls::new(Side::Server(conn))
    }

    pub(super) fn client(conn: UnbufferedClientConnection) -> Tls {
        Tls::new(Side::Client(conn))
    }

    fn new(side: Side) -> Tls {
        Tls {
            side,
            incoming: Vec::new(),
            outgoing: Vec::new(),
            sent: 0,
            plain: Vec::new(),
            taken: 0,
            peer_closed: false,
        }
    }

    fn common(&self) -> &CommonState {
        match &self.side {
            Side::Server(conn) => conn,
            Side::Client(conn) => conn,
        }
    }

    /// The ALPN protocol agreed on.
    pub(super) fn alpn_protocol(&self) -> Option<&[u8]> {
        self.common().alpn_protocol()
    }

    /// The protocol version and cipher suite agreed on, as SHOW CLIENTS prints them
    /// (`TLSv1.3/TLS13_AES_256_GCM_SHA384`).
    pub(super) fn description(&self) -> String {
        let common = self.common();
        let version = match common.protocol_version() {
            Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3".to_owned(),
            Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2".to_owned(),
            Some(other) => format!("{other:?}"),
            None => return String::new(),
        };
        match common.negotiated_cipher_suite() {
            Some(suite) => format!("{version}/{:?}", suite.suite()),
            None => version,
        }
    }

    /// The peer's certificate chain.
    pub(super) fn peer_certificates(
        &self,
    ) -> Option<&[rustls::pki_types::CertificateDer<'static>]> {
        self.common().peer_certificates()
    }

    /// Whether the handshake is still under way.
    pub(super) fn is_handshaking(&self) -> bool {
        self.common().is_handshaking()
    }

    /// Ciphertext waiting for the socket.
    pub(super) fn pending_output(&self) -> &[u8] {
        self.outgoing.get(self.sent..).unwrap_or_default()
    }

    /// `n` bytes of [`Tls::pending_output`] went out; the buffer is freed once empty.
    pub(super) fn output_sent(&mut self, n: usize) {
        self.sent = self.sent.saturating_add(n).min(self.outgoing.len());
        if self.sent == self.outgoing.len() {
            self.outgoing = Vec::new();
            self.sent = 0;
        }
    }

    /// Whether decrypted bytes wait to be read.
    pub(super) fn has_plaintext(&self) -> bool {
        self.taken < self.plain.len()
    }

    /// Copies decrypted bytes into `buf`; the buffer is freed once empty.
    pub(super) fn take_plaintext(&mut self, buf: &mut [u8]) -> usize {
        let available = self.plain.get(self.taken..).unwrap_or_default();
        let n = available.len().min(buf.len());
        if let (Some(to), Some(from)) = (buf.get_mut(..n), available.get(..n)) {
            to.copy_from_slice(from);
        }
        self.taken = self.taken.saturating_add(n);
        if self.taken >= self.plain.len() {
            self.plain = Vec::new();
            self.taken = 0;
        }
        n
    }

    /// Whether the peer said close_notify.
    pub(super) fn peer_closed(&self) -> bool {
        self.peer_closed
    }

    /// Lets rustls do all it can with the bytes it has: the handshake's messages and alerts
    /// go to the outgoing buffer, application data is decrypted into the plaintext buffer, and
    /// `data` (if any, once the handshake allows) is encrypted. Returns how much of `data` was
    /// encrypted and where the connection stands.
    pub(super) fn pump(&mut self, data: &[u8]) -> Result<(usize, Pumped), rustls::Error> {
        self.pump_with(data, &mut [])
            .map(|(encrypted, _, pumped)| (encrypted, pumped))
    }

    /// [`Tls::pump`] for a reader: decrypted application data goes straight into `buf` (what
    /// does not fit waits in the plaintext buffer). Returns how much of `buf` was filled.
    pub(super) fn pump_into(&mut self, buf: &mut [u8]) -> Result<(usize, Pumped), rustls::Error> {
        self.pump_with(&[], buf)
            .map(|(_, filled, pumped)| (filled, pumped))
    }

    fn pump_with(
        &mut self,
        data: &[u8],
        buf: &mut [u8],
    ) -> Result<(usize, usize, Pumped), rustls::Error> {
        let mut encrypted = 0;
        let mut sink = Sink { buf, filled: 0 };
        // rustls moves one step per call; a connection never needs many (the bound only
        // guards against a loop that would not settle).
        for _ in 0..1_000 {
            let Tls {
                side,
                incoming,
                outgoing,
                plain,
                peer_closed,
                ..
            } = self;
            let rest = data.get(encrypted..).unwrap_or_default();
            let (discard, outcome) = advance(
                side,
                incoming.as_mut_slice(),
                outgoing,
                (&mut sink, plain),
                rest,
            );
            if discard > 0 {
                incoming.drain(..discard.min(incoming.len()));
                if incoming.is_empty() {
                    *incoming = Vec::new();
                }
            }
            let outcome = match outcome {
                Ok(outcome) => outcome,
                Err(error) => {
                    // rustls queued an alert that tells the peer why: encode it for sending.
                    self.encode_alerts();
                    return Err(error);
                }
            };
            match outcome {
                Step::Again => {}
                Step::Encrypted(n) => encrypted = encrypted.saturating_add(n),
                Step::Stop(Pumped::PeerClosed) => {
                    *peer_closed = true;
                    return Ok((encrypted, sink.filled, Pumped::PeerClosed));
                }
                Step::Stop(pumped) => return Ok((encrypted, sink.filled, pumped)),
            }
        }
        Ok((encrypted, sink.filled, Pumped::NeedInput))
    }

    /// After a failure, lets rustls encode the alert it queued (it does that before it
    /// reports the failure again).
    fn encode_alerts(&mut self) {
        for _ in 0..4 {
            let Tls {
                side,
                outgoing,
                plain,
                ..
            } = self;
            let mut sink = Sink {
                buf: &mut [],
                filled: 0,
            };
            let (_, outcome) = advance(side, &mut [], outgoing, (&mut sink, plain), &[]);
            if !matches!(outcome, Ok(Step::Again)) {
                return;
            }
        }
    }

    /// Queues a close_notify for the peer (when the handshake allows it).
    pub(super) fn close(&mut self) {
        let Tls { side, outgoing, .. } = self;
        let _ = match side {
            Side::Server(conn) => close_notify(conn.process_tls_records(&mut []), outgoing),
            Side::Client(conn) => close_notify(conn.process_tls_records(&mut []), outgoing),
        };
    }

    /// Bytes of the peer's handshake already read elsewhere (a direct TLS client's first
    /// bytes, read while telling it from a start-up packet).
    pub(super) fn feed(&mut self, bytes: &[u8]) {
        self.incoming.extend_from_slice(bytes);
    }
}

/// Where decrypted application data goes: a reader's buffer first.
struct Sink<'b> {
    buf: &'b mut [u8],
    filled: usize,
}

impl Sink<'_> {
    /// Puts `payload` into the reader's buffer, and what does not fit into `plain` (which
    /// keeps the order: once it holds bytes, everything goes after them).
    fn put(&mut self, payload: &[u8], plain: &mut Vec<u8>) {
        let room = if plain.is_empty() {
            self.buf.len().saturating_sub(self.filled)
        } else {
            0
        };
        let n = room.min(payload.len());
        let end = self.filled.saturating_add(n);
        if let (Some(to), Some(from)) = (self.buf.get_mut(self.filled..end), payload.get(..n)) {
            to.copy_from_slice(from);
            self.filled = end;
        }
        plain.extend_from_slice(payload.get(n..).unwrap_or_default());
    }
}

/// What one state of rustls led to.
enum Step {
    /// Something was done; ask rustls again.
    Again,
    /// This many bytes of the application data were encrypted.
    Encrypted(usize),
    /// Nothing more can happen until the caller acts.
    Stop(Pumped),
}

/// One call of rustls on `incoming`, for either side, and [`step`] on the state it returns.
fn advance(
    side: &mut Side,
    incoming: &mut [u8],
    outgoing: &mut Vec<u8>,
    sink: (&mut Sink<'_>, &mut Vec<u8>),
    data: &[u8],
) -> (usize, Result<Step, rustls::Error>) {
    match side {
        Side::Server(conn) => {
            step::<ServerConnectionData>(conn.process_tls_records(incoming), outgoing, sink, data)
        }
        Side::Client(conn) => {
            step::<ClientConnectionData>(conn.process_tls_records(incoming), outgoing, sink, data)
        }
    }
}

/// Acts on one state: returns how much of the incoming buffer rustls consumed and what
/// happened.
fn step<Data>(
    status: UnbufferedStatus<'_, '_, Data>,
    outgoing: &mut Vec<u8>,
    (sink, plain): (&mut Sink<'_>, &mut Vec<u8>),
    data: &[u8],
) -> (usize, Result<Step, rustls::Error>) {
    let UnbufferedStatus { discard, state } = status;
    let state = match state {
        Ok(state) => state,
        Err(error) => return (discard, Err(error)),
    };
    let outcome = match state {
        ConnectionState::ReadTraffic(mut traffic) => loop {
            match traffic.next_record() {
                Some(Ok(record)) => sink.put(record.payload, plain),
                Some(Err(error)) => break Err(error),
                None => break Ok(Step::Again),
            }
        },
        ConnectionState::EncodeTlsData(mut encode) => {
            let result = write_into(outgoing, 0, |room| match encode.encode(room) {
                Ok(n) => Ok(n),
                Err(EncodeError::InsufficientSize(InsufficientSizeError { required_size })) => {
                    Err(Some(required_size))
                }
                Err(_) => Err(None),
            });
            match result {
                Ok(_) => Ok(Step::Again),
                Err(()) => Err(rustls::Error::General(
                    "TLS message could not be encoded".into(),
                )),
            }
        }
        // qcp sends what is in `outgoing` itself, whenever the socket takes it.
        ConnectionState::TransmitTlsData(transmit) => {
            transmit.done();
            Ok(Step::Again)
        }
        ConnectionState::BlockedHandshake => Ok(Step::Stop(Pumped::NeedInput)),
        ConnectionState::PeerClosed => Ok(Step::Stop(Pumped::PeerClosed)),
        ConnectionState::Closed => Ok(Step::Stop(Pumped::PeerClosed)),
        ConnectionState::WriteTraffic(mut traffic) => {
            if data.is_empty() {
                Ok(Step::Stop(Pumped::Ready))
            } else {
                // Each record adds a header, a tag and a content type (at most 64 bytes).
                let hint = data.len().saturating_add(data.len() / 16_384 * 64 + 64);
                let result = write_into(outgoing, hint, |room| match traffic.encrypt(data, room) {
                    Ok(n) => Ok(n),
                    Err(EncryptError::InsufficientSize(InsufficientSizeError {
                        required_size,
                    })) => Err(Some(required_size)),
                    Err(_) => Err(None),
                });
                match result {
                    Ok(_) => Ok(Step::Encrypted(data.len())),
                    Err(()) => Err(rustls::Error::EncryptError),
                }
            }
        }
        // No early data is accepted (rustls's default), and states a later rustls adds are
        // not ones qcp asked for.
        _ => Err(rustls::Error::General("unexpected TLS state".into())),
    };
    (discard, outcome)
}

/// Queues a close_notify if `status` lets the connection write.
fn close_notify<Data>(
    status: UnbufferedStatus<'_, '_, Data>,
    outgoing: &mut Vec<u8>,
) -> Result<(), ()> {
    match status.state {
        Ok(ConnectionState::WriteTraffic(mut traffic)) => {
            write_into(outgoing, 0, |room| match traffic.queue_close_notify(room) {
                Ok(n) => Ok(n),
                Err(EncryptError::InsufficientSize(InsufficientSizeError { required_size })) => {
                    Err(Some(required_size))
                }
                Err(_) => Err(None),
            })
            .map(|_| ())
        }
        _ => Err(()),
    }
}

/// Appends to `out` what `write` puts into the room it is given, growing the room when
/// `write` says how much it needs (`Err(Some(size))`); `Err(None)` is a failure.
fn write_into(
    out: &mut Vec<u8>,
    hint: usize,
    mut write: impl FnMut(&mut [u8]) -> Result<usize, Option<usize>>,
) -> Result<usize, ()> {
    let used = out.len();
    let mut room = hint.max(256);
    for _ in 0..4 {
        out.resize(used.saturating_add(room), 0);
        match write(out.get_mut(used..).unwrap_or_default()) {
            Ok(n) => {
                out.truncate(used.saturating_add(n));
                return Ok(n);
            }
            Err(Some(required)) => room = required,
            Err(None) => break,
        }
    }
    out.truncate(used);
    Err(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};

    use super::*;

    /// A server and a client connection that trust each other (a self-signed certificate for
    /// `localhost`).
    fn pair() -> (Tls, Tls) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let der = CertificateDer::from(cert.der().to_vec());
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let server = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![der.clone()],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            )
            .unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots.add(der).unwrap();
        let client = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let server = Tls::server(UnbufferedServerConnection::new(Arc::new(server)).unwrap());
        let name = ServerName::try_from("localhost").unwrap();
        let client = Tls::client(UnbufferedClientConnection::new(Arc::new(client), name).unwrap());
        (server, client)
    }

    /// Moves what `from` has encrypted to `to`, in pieces of at most `piece` bytes.
    fn carry(from: &mut Tls, to: &mut Tls, piece: usize) {
        while !from.pending_output().is_empty() {
            let n = from.pending_output().len().min(piece);
            let bytes = from.pending_output()[..n].to_vec();
            from.output_sent(n);
            to.feed(&bytes);
        }
    }

    fn handshake(server: &mut Tls, client: &mut Tls) {
        for _ in 0..20 {
            client.pump(&[]).unwrap();
            carry(client, server, 100);
            server.pump(&[]).unwrap();
            carry(server, client, 100);
            if !client.is_handshaking() && !server.is_handshaking() {
                return;
            }
        }
        panic!("the handshake did not finish");
    }

    /// Everything `reader` can decrypt now, read `chunk` bytes at a time.
    fn drain(reader: &mut Tls, chunk: usize) -> Vec<u8> {
        let mut got = Vec::new();
        let mut buf = vec![0; chunk];
        loop {
            if reader.has_plaintext() {
                let n = reader.take_plaintext(&mut buf);
                got.extend_from_slice(&buf[..n]);
                continue;
            }
            let (n, _) = reader.pump_into(&mut buf).unwrap();
            if n == 0 && !reader.has_plaintext() {
                return got;
            }
            got.extend_from_slice(&buf[..n]);
        }
    }

    #[test]
    fn data_crosses_in_any_pieces_and_buffers_are_freed_when_quiet() {
        let (mut server, mut client) = pair();
        handshake(&mut server, &mut client);
        // Larger than several records, read through a small buffer, carried in odd pieces.
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let (n, pumped) = client.pump(&data).unwrap();
        assert_eq!((n, pumped), (data.len(), Pumped::Ready));
        carry(&mut client, &mut server, 1_000);
        assert_eq!(drain(&mut server, 7), data);
        // And back, the other way.
        server.pump(b"answer").unwrap();
        carry(&mut server, &mut client, 3);
        assert_eq!(drain(&mut client, 4096), b"answer");
        // Quiet again: no buffer keeps memory.
        for tls in [&server, &client] {
            assert_eq!(tls.incoming.capacity(), 0);
            assert_eq!(tls.outgoing.capacity(), 0);
            assert_eq!(tls.plain.capacity(), 0);
        }
    }

    #[test]
    fn close_notify_ends_the_stream_for_the_peer() {
        let (mut server, mut client) = pair();
        handshake(&mut server, &mut client);
        client.close();
        carry(&mut client, &mut server, 10);
        let (_, pumped) = server.pump(&[]).unwrap();
        assert_eq!(pumped, Pumped::PeerClosed);
        assert!(server.peer_closed());
    }

    #[test]
    fn corrupted_records_fail_with_an_alert_for_the_peer() {
        let (mut server, mut client) = pair();
        handshake(&mut server, &mut client);
        client.pump(b"hello").unwrap();
        let mut bytes = client.pending_output().to_vec();
        client.output_sent(bytes.len());
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
        server.feed(&bytes);
        assert!(
            server.pump(&[]).is_err(),
            "a record that fails its tag is refused"
        );
        assert!(
            !server.pending_output().is_empty(),
            "an alert tells the peer why"
        );
    }
}
