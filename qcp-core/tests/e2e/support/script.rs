//! Byte scripts for the start-up phase, played over a raw socket to any server (qcp or
//! PostgreSQL itself), and what came back, decoded for comparison.
//!
//! A [`Step`] list writes bytes, reads the one-byte answers to encryption requests, starts
//! TLS and shuts the sending side; [`play`] then reads everything until the server closes
//! (a reset counts as a close) and returns it as [`Heard`] items: single bytes, protocol-3
//! messages (an ErrorResponse or NoticeResponse as its fields, less the source-location
//! fields F, L and R that only PostgreSQL sends), and protocol-2 error texts.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// One step of a script.
#[derive(Clone, Debug)]
pub enum Step {
    /// Writes these bytes in one write.
    Send(Vec<u8>),
    /// Reads the one-byte answer to an encryption request.
    Answer,
    /// Runs a TLS handshake (server name `localhost`); later steps go through TLS.
    Tls,
    /// Shuts the sending side down: nothing more will come.
    Shut,
}

/// Something the server sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Heard {
    /// The answer to an encryption request.
    Byte(char),
    /// An ErrorResponse or NoticeResponse: its tag and fields (code, text), F/L/R left out.
    Fields(char, Vec<(char, String)>),
    /// Any other protocol-3 message: its tag and body.
    Message(char, Vec<u8>),
    /// An error in protocol 2's layout (`E`, text, NUL): the text.
    Protocol2(String),
    /// The server closed the connection (the last item, always).
    Closed,
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// The connection, in clear until a [`Step::Tls`].
enum Conn {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl Conn {
    fn io(&mut self) -> &mut dyn Io {
        match self {
            Conn::Plain(tcp) => tcp,
            Conn::Tls(tls) => tls.as_mut(),
        }
    }
}

/// Each read may take this long before the test fails: every script ends in a close.
const READ_LIMIT: Duration = Duration::from_secs(15);

/// Plays `steps` against `addr`, trusting `tls` for TLS steps; returns everything heard.
pub async fn play(addr: SocketAddr, steps: &[Step], tls: &rustls::ClientConfig) -> Vec<Heard> {
    let tcp = TcpStream::connect(addr).await.expect("connect");
    tcp.set_nodelay(true).expect("nodelay");
    let mut conn = Conn::Plain(tcp);
    let mut heard = Vec::new();
    for step in steps {
        match step {
            Step::Send(bytes) => conn.io().write_all(bytes).await.expect("write"),
            Step::Answer => {
                let mut byte = [0u8; 1];
                tokio::time::timeout(READ_LIMIT, conn.io().read_exact(&mut byte))
                    .await
                    .expect("an answer in time")
                    .expect("an answer byte");
                heard.push(Heard::Byte(byte[0] as char));
            }
            Step::Tls => {
                let Conn::Plain(tcp) = conn else {
                    panic!("a script starts TLS once")
                };
                let connector = tokio_rustls::TlsConnector::from(Arc::new(tls.clone()));
                let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
                let stream = connector.connect(name, tcp).await.expect("TLS handshake");
                conn = Conn::Tls(Box::new(stream));
            }
            Step::Shut => conn.io().shutdown().await.expect("shutdown"),
        }
    }
    let mut bytes = Vec::new();
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        let read = tokio::time::timeout(READ_LIMIT, conn.io().read(&mut chunk))
            .await
            .unwrap_or_else(|_| panic!("nothing and no close for {READ_LIMIT:?}: {bytes:?}"));
        match read {
            Ok(0) => break,
            Ok(n) => bytes.extend_from_slice(&chunk[..n]),
            // A close with our bytes unread is a reset; TLS may end without close_notify.
            Err(_) => break,
        }
    }
    heard.extend(decode(&bytes));
    heard.push(Heard::Closed);
    heard
}

/// Decodes what a server sent during the start-up phase.
pub fn decode(mut bytes: &[u8]) -> Vec<Heard> {
    let mut heard = Vec::new();
    while let Some(&tag) = bytes.first() {
        // Protocol 2's error has no length: its text starts right after the tag.
        if tag == b'E' && bytes.get(1).is_some_and(|&b| b != 0) {
            let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
            heard.push(Heard::Protocol2(
                String::from_utf8_lossy(&bytes[1..end]).into_owned(),
            ));
            bytes = bytes.get(end + 1..).unwrap_or_default();
            continue;
        }
        assert!(bytes.len() >= 5, "a message cut short: {bytes:?}");
        let len = u32::from_be_bytes(bytes[1..5].try_into().unwrap()) as usize;
        assert!(bytes.len() > len, "a message cut short: {bytes:?}");
        let body = &bytes[5..1 + len];
        heard.push(match tag {
            b'E' | b'N' => Heard::Fields(tag as char, fields(body)),
            _ => Heard::Message(tag as char, body.to_vec()),
        });
        bytes = &bytes[1 + len..];
    }
    heard
}

/// An error's fields, less PostgreSQL's source location (file, line, routine).
fn fields(mut body: &[u8]) -> Vec<(char, String)> {
    let mut fields = Vec::new();
    while let Some((&code, rest)) = body.split_first() {
        if code == 0 {
            break;
        }
        let end = rest
            .iter()
            .position(|&b| b == 0)
            .expect("a NUL-terminated field");
        if !matches!(code, b'F' | b'L' | b'R') {
            fields.push((
                code as char,
                String::from_utf8_lossy(&rest[..end]).into_owned(),
            ));
        }
        body = &rest[end + 1..];
    }
    fields
}

/// A CA and a certificate for `localhost` it signed, as PEM files, for qcp's `client_tls`.
pub struct TestCert {
    _dir: tempfile::TempDir,
    pub ca_pem: String,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl TestCert {
    pub fn new() -> TestCert {
        let dir = super::scratch_dir("cert");
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(rcgen::DnType::CommonName, "qcp script CA");
        let ca = ca.self_signed(&ca_key).expect("CA certificate");
        let key = KeyPair::generate().expect("key");
        let cert = CertificateParams::new(vec!["localhost".to_owned()])
            .expect("params")
            .signed_by(&key, &ca, &ca_key)
            .expect("certificate");
        let cert_path = dir.path().join("qcp.crt");
        let key_path = dir.path().join("qcp.key");
        std::fs::write(&cert_path, cert.pem()).expect("write certificate");
        write_private(&key_path, &key.serialize_pem());
        TestCert {
            ca_pem: ca.pem(),
            cert: cert_path,
            key: key_path,
            _dir: dir,
        }
    }

    /// qcp's `client_tls` with this certificate.
    pub fn client_tls(&self) -> String {
        format!(
            "client_tls:\n  mode: allow\n  cert: {}\n  key: {}\n",
            self.cert.display(),
            self.key.display()
        )
    }
}

/// Writes a private key file readable by its owner only (PostgreSQL and qcp refuse others).
pub fn write_private(path: &Path, pem: &str) {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .expect("key file");
    std::io::Write::write_all(&mut file, pem.as_bytes()).expect("write key");
}

/// A rustls client that trusts the CAs in these PEM texts (and no ALPN).
pub fn trusting(pems: &[&str]) -> rustls::ClientConfig {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for pem in pems {
        for cert in rustls::pki_types::CertificateDer::pem_slice_iter(pem.as_bytes()) {
            roots
                .add(cert.expect("PEM certificate"))
                .expect("trust anchor");
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth()
}
