//! A byte-level PostgreSQL client for start-up tests: it writes exactly the bytes a test
//! builds (with qcp_codec's encoders) and reads the backend's messages one by one, so a test
//! can check what qcp sends and in which order, and that it closes the connection.
#![allow(dead_code)]

use std::time::Duration;

use qcp_codec::{encode, BackendMessage, ProtocolVersion, Tag};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long any single read may take before the test fails.
pub const READ_LIMIT: Duration = Duration::from_secs(15);

/// One backend message: its tag and body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Msg {
    pub tag: u8,
    pub body: Vec<u8>,
}

impl Msg {
    /// The message decoded with qcp_codec (panics on invalid bytes).
    pub fn decode(&self) -> BackendMessage<'_> {
        BackendMessage::decode_body(Tag(self.tag), &self.body)
            .unwrap_or_else(|e| panic!("invalid {:?} message from qcp: {e}", self.tag as char))
    }

    /// (severity, SQLSTATE, message, hint) of an ErrorResponse; panics for other messages.
    pub fn error(&self) -> ErrorFields {
        let BackendMessage::ErrorResponse(e) = self.decode() else {
            panic!("expected an ErrorResponse, got {:?}", self.tag as char);
        };
        let text = |v: Option<&[u8]>| v.map(|v| String::from_utf8_lossy(v).into_owned());
        ErrorFields {
            severity: text(e.severity()).unwrap_or_default(),
            code: text(e.sqlstate()).unwrap_or_default(),
            message: text(e.message()).unwrap_or_default(),
            hint: text(e.hint()),
            detail: text(e.detail()),
        }
    }
}

/// The fields of an ErrorResponse tests look at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErrorFields {
    pub severity: String,
    pub code: String,
    pub message: String,
    pub hint: Option<String>,
    pub detail: Option<String>,
}

/// What a completed login told the client.
#[derive(Clone, Debug)]
pub struct Greeting {
    /// NegotiateProtocolVersion, if one came: (version, options).
    pub negotiated: Option<(ProtocolVersion, Vec<String>)>,
    /// ParameterStatus values, in order.
    pub params: Vec<(String, String)>,
    /// BackendKeyData.
    pub pid: i32,
    pub secret: Vec<u8>,
    /// Every message, in order (for order checks).
    pub messages: Vec<Msg>,
}

/// A raw connection.
pub struct Raw {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl Raw {
    pub async fn connect(addr: std::net::SocketAddr) -> Raw {
        let stream = TcpStream::connect(addr).await.expect("connect to qcp");
        stream.set_nodelay(true).expect("nodelay");
        Raw {
            stream,
            buf: Vec::new(),
        }
    }

    /// Writes `bytes` in one write call.
    pub async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("write to qcp");
    }

    /// Reads more bytes; `false` at end of stream (or a reset, which also ends it).
    async fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 8192];
        let n = match tokio::time::timeout(READ_LIMIT, self.stream.read(&mut chunk)).await {
            Ok(Ok(n)) => n,
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionReset => 0,
            Ok(Err(e)) => panic!("read from qcp failed: {e}"),
            Err(_) => panic!("qcp sent nothing for {READ_LIMIT:?}"),
        };
        self.buf.extend_from_slice(&chunk[..n]);
        n > 0
    }

    /// Reads the single-byte answer to SSLRequest/GSSENCRequest; `None` at end of stream.
    pub async fn read_byte(&mut self) -> Option<u8> {
        if self.buf.is_empty() && !self.fill().await {
            return None;
        }
        Some(self.buf.remove(0))
    }

    /// Puts a byte back in front of what is still unread.
    pub fn unread(&mut self, byte: u8) {
        self.buf.insert(0, byte);
    }

    /// The next message, or `None` if qcp closed the connection (bytes cut off mid-message
    /// fail the test).
    pub async fn recv(&mut self) -> Option<Msg> {
        loop {
            if self.buf.len() >= 5 {
                let len = u32::from_be_bytes(self.buf[1..5].try_into().unwrap()) as usize;
                assert!(len >= 4, "qcp sent a message with length {len}");
                if self.buf.len() > len {
                    let tag = self.buf[0];
                    let body = self.buf[5..1 + len].to_vec();
                    self.buf.drain(..1 + len);
                    return Some(Msg { tag, body });
                }
            }
            if !self.fill().await {
                assert!(
                    self.buf.is_empty(),
                    "qcp closed the connection in the middle of a message: {:?}",
                    self.buf
                );
                return None;
            }
        }
    }

    /// The next message; fails the test if the connection closed instead.
    pub async fn expect(&mut self) -> Msg {
        self.recv()
            .await
            .expect("qcp closed the connection unexpectedly")
    }

    /// Reads every message until qcp closes the connection.
    pub async fn until_closed(&mut self) -> Vec<Msg> {
        let mut messages = Vec::new();
        while let Some(message) = self.recv().await {
            messages.push(message);
            assert!(messages.len() < 1000, "qcp keeps talking: {messages:?}");
        }
        messages
    }

    /// Sends a StartupMessage.
    pub async fn startup(&mut self, version: ProtocolVersion, params: &[(&str, &str)]) {
        let mut out = Vec::new();
        encode::startup(&mut out, version, params).expect("encode startup");
        self.send(&out).await;
    }

    /// Reads a login answered without a password (qcp's `trust`), up to ReadyForQuery.
    pub async fn read_trust_login(&mut self) -> Greeting {
        let mut greeting = Greeting {
            negotiated: None,
            params: Vec::new(),
            pid: 0,
            secret: Vec::new(),
            messages: Vec::new(),
        };
        let mut authenticated = false;
        loop {
            let msg = self.expect().await;
            greeting.messages.push(msg.clone());
            match msg.decode() {
                BackendMessage::NegotiateProtocolVersion(v) => {
                    assert!(
                        !authenticated,
                        "NegotiateProtocolVersion after authentication"
                    );
                    let options = v
                        .options()
                        .map(|o| String::from_utf8_lossy(o).into_owned())
                        .collect();
                    greeting.negotiated = Some((v.version(), options));
                }
                BackendMessage::Authentication(qcp_codec::auth::Authentication::Ok) => {
                    authenticated = true
                }
                BackendMessage::ParameterStatus(p) => greeting.params.push((
                    p.name_str().unwrap().to_owned(),
                    p.value_str().unwrap().to_owned(),
                )),
                BackendMessage::BackendKeyData(k) => {
                    greeting.pid = k.pid();
                    greeting.secret = k.secret().to_vec();
                }
                BackendMessage::ReadyForQuery(_) => {
                    assert!(authenticated, "ReadyForQuery without AuthenticationOk");
                    return greeting;
                }
                BackendMessage::ErrorResponse(_) => panic!("login failed: {:?}", msg.error()),
                other => panic!("unexpected message during login: {other:?}"),
            }
        }
    }

    /// Sends a simple query and returns every message up to and including ReadyForQuery.
    pub async fn query(&mut self, sql: &str) -> Vec<Msg> {
        let mut out = Vec::new();
        encode::query(&mut out, sql).expect("encode query");
        self.send(&out).await;
        self.read_until_ready().await
    }

    /// Reads messages up to and including ReadyForQuery.
    pub async fn read_until_ready(&mut self) -> Vec<Msg> {
        let mut messages = Vec::new();
        loop {
            let msg = self.expect().await;
            let done = msg.tag == b'Z';
            messages.push(msg);
            if done {
                return messages;
            }
        }
    }
}

/// The text of the first column of every DataRow in `messages`.
pub fn first_column(messages: &[Msg]) -> Vec<String> {
    messages
        .iter()
        .filter(|m| m.tag == b'D')
        .map(|m| match m.decode() {
            BackendMessage::DataRow(row) => {
                let value = row.values().next().expect("a column").expect("not null");
                String::from_utf8_lossy(value).into_owned()
            }
            _ => unreachable!(),
        })
        .collect()
}

/// The single ErrorResponse among `messages` (panics if there is not exactly one).
pub fn only_error(messages: &[Msg]) -> ErrorFields {
    let errors: Vec<&Msg> = messages.iter().filter(|m| m.tag == b'E').collect();
    assert_eq!(
        errors.len(),
        1,
        "expected one ErrorResponse in {messages:?}"
    );
    errors[0].error()
}
