//! A PostgreSQL client at the byte level, for what tokio-postgres cannot do or would hide:
//! writing exactly the bytes a test builds (any start-up packet and parameter, malformed
//! messages, pipelines of extended-protocol messages with or without a Sync), reading the
//! backend's messages one by one (slowly, or not at all), seeing the BackendKeyData, and
//! leaving without Terminate.
//!
//! - [`Wire`] is one connection: [`Wire::connect`] for start-up tests, which write the
//!   start-up themselves ([`Wire::startup`], [`Wire::read_trust_login`]) and check every byte
//!   that comes back; [`Wire::login`] and [`Wire::open`] for a client logged in (SCRAM, md5,
//!   cleartext or trust) whose queries and pipelines are the test.
//! - [`Batch`] builds frontend messages to send in one write.
//! - [`Msg`] is one backend message; the functions on a list of them ([`tags`], [`rows`],
//!   [`errors`], [`ready_status`], ...) read what tests look at.
//!
//! How strictly a connection reads the end of the stream depends on how it was opened (see
//! `Reading`): a start-up test's connection must see qcp close cleanly between two messages,
//! a logged-in client's takes any end of the stream for a close.
//!
//! Messages are encoded and decoded with qcp_codec; only the framing of the stream is done
//! here.

use std::net::SocketAddr;
use std::time::Duration;

use postgres_protocol::authentication::md5_hash;
use postgres_protocol::authentication::sasl::{ChannelBinding, ScramSha256};
use qcp_codec::auth::Authentication;
use qcp_codec::backend::{
    CommandComplete, DataRow, ParameterDescription, ParameterStatus, RowDescription,
};
use qcp_codec::frontend::Target;
use qcp_codec::{encode, BackendMessage, Header, ProtocolVersion, Tag};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use super::{Qcp, DATABASE, SCRAM_USER};

/// At most this many messages before ReadyForQuery (or another awaited tag).
const MOST_BEFORE_TAG: usize = 2_000_000;
/// At most this many messages before qcp closes a connection it is ending.
const MOST_BEFORE_CLOSE: usize = 1000;

/// How a [`Wire`] reads the stream, set by the way it was opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reading {
    /// A connection the test drives from its first byte ([`Wire::connect`]): start-up tests
    /// check everything qcp sends, so the stream may end (closed or reset) only between two
    /// messages, any other read error fails the test, nothing unexpected may come during the
    /// login, and a read may take 15 s.
    Exact,
    /// A logged-in client ([`Wire::login`]): what the test checks is what its queries get,
    /// so any read error ends the stream as a close does, a message cut off by the end is
    /// dropped, messages the login does not need are skipped, and a read may take 30 s.
    Lenient,
}

impl Reading {
    /// How long a single read may take before the test fails.
    fn limit(self) -> Duration {
        match self {
            Reading::Exact => Duration::from_secs(15),
            Reading::Lenient => Duration::from_secs(30),
        }
    }
}

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
            .unwrap_or_else(|e| panic!("invalid {:?} message: {e}", self.tag as char))
    }

    /// The fields of an ErrorResponse; panics for other messages.
    pub fn error(&self) -> ErrorFields {
        let BackendMessage::ErrorResponse(e) = self.decode() else {
            panic!("expected an ErrorResponse, got {:?}", self.tag as char);
        };
        ErrorFields {
            severity: e.severity().map(text).unwrap_or_default(),
            code: e.sqlstate().map(text).unwrap_or_default(),
            message: e.message().map(text).unwrap_or_default(),
            hint: e.hint().map(text),
            detail: e.detail().map(text),
        }
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
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
#[derive(Clone, Debug, Default)]
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

impl Greeting {
    /// The (pid, secret) to cancel this client's queries with.
    pub fn key(&self) -> (i32, Vec<u8>) {
        (self.pid, self.secret.clone())
    }
}

/// The answer to one simple query, summed up ([`Wire::query_result`]). Unlike
/// [`Wire::query`], which fails the test if the connection closes, a close before
/// ReadyForQuery ends the answer too (`ready` is then `None`).
#[derive(Debug, Default)]
pub struct QueryResult {
    /// Every DataRow's columns as text (NULL = None).
    pub rows: Vec<Vec<Option<String>>>,
    /// ErrorResponses (there is at most one per query, plus a FATAL before a close).
    pub errors: Vec<ErrorFields>,
    /// The ReadyForQuery status, or `None` if the connection closed first.
    pub ready: Option<u8>,
}

impl QueryResult {
    /// The first column of the first row of a query that must have succeeded.
    pub fn value(&self) -> String {
        assert!(self.errors.is_empty(), "{:?}", self.errors);
        self.rows[0][0].clone().expect("not null")
    }
}

/// One connection (see the module documentation).
pub struct Wire {
    stream: TcpStream,
    /// Bytes read and not yet taken as messages.
    buf: Vec<u8>,
    /// Room for one read.
    chunk: Vec<u8>,
    reading: Reading,
    /// What the login told the client (empty until a login was read).
    pub greeting: Greeting,
}

impl Wire {
    /// The value of `name` in the greeting's ParameterStatus messages.
    pub fn greeting_value(&self, name: &str) -> String {
        self.greeting
            .params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("no {name} in the greeting {:?}", self.greeting.params))
    }

    fn from_stream(stream: TcpStream, reading: Reading) -> Wire {
        stream.set_nodelay(true).expect("nodelay");
        Wire {
            stream,
            buf: Vec::new(),
            chunk: vec![0; 64 * 1024],
            reading,
            greeting: Greeting::default(),
        }
    }

    /// Connects to `addr` and sends nothing.
    pub async fn connect(addr: SocketAddr) -> Wire {
        let stream = TcpStream::connect(addr).await.expect("connect to qcp");
        Wire::from_stream(stream, Reading::Exact)
    }

    /// Connects to `addr` and logs in (SCRAM, md5, cleartext or trust) with `params` (which
    /// must include `user`, and usually `database`); `recv_buffer` shrinks the socket's
    /// receive buffer (for slow-reader tests). Errors are the server's ErrorResponse.
    pub async fn login(
        addr: SocketAddr,
        password: &str,
        params: &[(&str, &str)],
        recv_buffer: Option<u32>,
    ) -> Result<Wire, ErrorFields> {
        let socket = TcpSocket::new_v4().expect("socket");
        if let Some(size) = recv_buffer {
            socket.set_recv_buffer_size(size).expect("SO_RCVBUF");
        }
        let stream = socket.connect(addr).await.expect("connect to qcp");
        let mut wire = Wire::from_stream(stream, Reading::Lenient);
        wire.startup(ProtocolVersion::V3_0, params).await;
        let user = params.iter().find(|p| p.0 == "user").map_or("", |p| p.1);
        wire.read_login(Some((user, password))).await?;
        Ok(wire)
    }

    /// Logs in through `qcp` as the SCRAM test user to the test database.
    pub async fn open(qcp: &Qcp) -> Wire {
        Wire::open_as_test_user(qcp, &[], None).await
    }

    /// Logs in through `qcp` as [`Wire::open`] does, with extra start-up parameters.
    pub async fn open_with(qcp: &Qcp, extra: &[(&str, &str)]) -> Wire {
        Wire::open_as_test_user(qcp, extra, None).await
    }

    /// Logs in through `qcp` with a tiny socket receive buffer (a slow reader).
    pub async fn open_small_buffer(qcp: &Qcp) -> Wire {
        Wire::open_as_test_user(qcp, &[], Some(4096)).await
    }

    async fn open_as_test_user(
        qcp: &Qcp,
        extra: &[(&str, &str)],
        recv_buffer: Option<u32>,
    ) -> Wire {
        let mut params = vec![("user", SCRAM_USER.0), ("database", DATABASE)];
        params.extend_from_slice(extra);
        Wire::login(qcp.addr, SCRAM_USER.1, &params, recv_buffer)
            .await
            .unwrap_or_else(|e| panic!("login through qcp failed: {e:?}"))
    }

    /// The (pid, secret) qcp gave this client for cancel requests.
    pub fn key(&self) -> (i32, Vec<u8>) {
        self.greeting.key()
    }

    // ---- writing ------------------------------------------------------------------------

    /// Writes `bytes` in one write call.
    pub async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("write to qcp");
    }

    /// Sends a StartupMessage.
    pub async fn startup(&mut self, version: ProtocolVersion, params: &[(&str, &str)]) {
        let mut out = Vec::new();
        encode::startup(&mut out, version, params).expect("encode startup");
        self.send(&out).await;
    }

    /// Sends a simple query without reading the answer.
    pub async fn send_query(&mut self, sql: &str) {
        self.send(&Batch::new().query(sql).bytes).await;
    }

    // ---- reading ------------------------------------------------------------------------

    /// Reads more bytes; `false` once the stream has ended.
    async fn fill(&mut self) -> bool {
        let limit = self.reading.limit();
        let read = tokio::time::timeout(limit, self.stream.read(&mut self.chunk))
            .await
            .unwrap_or_else(|_| panic!("qcp sent nothing for {limit:?}"));
        match read {
            Ok(n) => {
                self.buf.extend_from_slice(&self.chunk[..n]);
                n > 0
            }
            Err(_) if self.reading == Reading::Lenient => false,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => false,
            Err(e) => panic!("read from qcp failed: {e}"),
        }
    }

    /// Reads the single-byte answer to SSLRequest/GSSENCRequest; `None` at end of stream.
    pub async fn read_byte(&mut self) -> Option<u8> {
        if self.buf.is_empty() && !self.fill().await {
            return None;
        }
        Some(self.buf.remove(0))
    }

    /// The next message, or `None` once the connection closed. Cancel-safe: nothing is lost
    /// if the future is dropped.
    pub async fn recv(&mut self) -> Option<Msg> {
        loop {
            let header = Header::parse(&self.buf)
                .unwrap_or_else(|e| panic!("qcp sent a bad message header: {e}"));
            if let Some(body) = header.and_then(|h| h.body(&self.buf)) {
                let msg = Msg {
                    tag: self.buf[0],
                    body: body.to_vec(),
                };
                self.buf.drain(..5 + msg.body.len());
                return Some(msg);
            }
            if !self.fill().await {
                assert!(
                    self.reading == Reading::Lenient || self.buf.is_empty(),
                    "qcp closed the connection in the middle of a message: {:?}",
                    self.buf
                );
                return None;
            }
        }
    }

    /// The next message; fails the test if the connection closed instead.
    pub async fn next(&mut self) -> Msg {
        self.recv()
            .await
            .expect("qcp closed the connection unexpectedly")
    }

    /// The next message if one arrives within `limit` (`Some(None)` = closed). Cancel-safe:
    /// nothing is lost when the limit passes.
    pub async fn next_within(&mut self, limit: Duration) -> Option<Option<Msg>> {
        tokio::time::timeout(limit, self.recv()).await.ok()
    }

    /// Asserts that nothing at all arrives for `window` (for "must still be waiting" checks,
    /// where there is no event to wait for).
    pub async fn assert_silent(&mut self, window: Duration, what: &str) {
        if let Some(got) = self.next_within(window).await {
            panic!("{what}: expected nothing for {window:?}, got {got:?}");
        }
    }

    /// Messages up to and including the first with tag `last` (`None`: every message), at
    /// most `most`; and whether the connection closed before that message.
    async fn read_up_to(&mut self, last: Option<u8>, most: usize) -> (Vec<Msg>, bool) {
        let mut messages = Vec::new();
        while let Some(msg) = self.recv().await {
            let done = Some(msg.tag) == last;
            messages.push(msg);
            if done {
                return (messages, false);
            }
            assert!(
                messages.len() < most,
                "qcp keeps talking: {most} messages, the last {:?}",
                messages.last()
            );
        }
        (messages, true)
    }

    /// Messages up to and including the message with tag `tag`; fails the test if the
    /// connection closes first.
    pub async fn until_tag(&mut self, tag: u8) -> Vec<Msg> {
        let (messages, closed) = self.read_up_to(Some(tag), MOST_BEFORE_TAG).await;
        assert!(!closed, "qcp closed the connection unexpectedly");
        messages
    }

    /// Messages up to and including the next ReadyForQuery.
    pub async fn until_ready(&mut self) -> Vec<Msg> {
        self.until_tag(b'Z').await
    }

    /// Everything until qcp closes the connection.
    pub async fn until_closed(&mut self) -> Vec<Msg> {
        self.read_up_to(None, MOST_BEFORE_CLOSE).await.0
    }

    // ---- login --------------------------------------------------------------------------

    /// Reads a login answered without a password (qcp's `trust`), up to ReadyForQuery.
    pub async fn read_trust_login(&mut self) -> Greeting {
        if let Err(e) = self.read_login(None).await {
            panic!("login failed: {e:?}");
        }
        self.greeting.clone()
    }

    /// Reads the login up to ReadyForQuery into [`Wire::greeting`], answering authentication
    /// requests with `credentials` (user, password).
    async fn read_login(&mut self, credentials: Option<(&str, &str)>) -> Result<(), ErrorFields> {
        let mut greeting = Greeting::default();
        let mut authenticated = false;
        let mut scram: Option<ScramSha256> = None;
        loop {
            let msg = self.next().await;
            greeting.messages.push(msg.clone());
            match msg.decode() {
                BackendMessage::NegotiateProtocolVersion(v) => {
                    assert!(
                        !authenticated,
                        "NegotiateProtocolVersion after authentication"
                    );
                    let options = v.options().map(text).collect();
                    greeting.negotiated = Some((v.version(), options));
                }
                BackendMessage::Authentication(Authentication::Ok) => authenticated = true,
                BackendMessage::Authentication(request) => {
                    let Some((user, password)) = credentials else {
                        panic!("unexpected message during login: {request:?}");
                    };
                    let mut out = Vec::new();
                    match request {
                        Authentication::CleartextPassword => {
                            encode::password(&mut out, password).unwrap()
                        }
                        Authentication::Md5Password { salt } => {
                            let hash = md5_hash(user.as_bytes(), password.as_bytes(), salt);
                            encode::password(&mut out, hash).unwrap();
                        }
                        Authentication::Sasl(_) => {
                            let client = ScramSha256::new(
                                password.as_bytes(),
                                ChannelBinding::unsupported(),
                            );
                            encode::sasl_initial_response(
                                &mut out,
                                "SCRAM-SHA-256",
                                Some(client.message()),
                            )
                            .unwrap();
                            scram = Some(client);
                        }
                        Authentication::SaslContinue(data) => {
                            let client = scram.as_mut().expect("SASL continue before SASL");
                            client.update(data).expect("server-first message");
                            encode::sasl_response(&mut out, client.message()).unwrap();
                        }
                        Authentication::SaslFinal(data) => {
                            let client = scram.as_mut().expect("SASL final before SASL");
                            client.finish(data).expect("valid server signature");
                        }
                        other => panic!("unexpected authentication request {other:?}"),
                    }
                    if !out.is_empty() {
                        self.send(&out).await;
                    }
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
                    self.greeting = greeting;
                    return Ok(());
                }
                BackendMessage::ErrorResponse(_) => return Err(msg.error()),
                other => assert!(
                    self.reading == Reading::Lenient,
                    "unexpected message during login: {other:?}"
                ),
            }
        }
    }

    // ---- queries ------------------------------------------------------------------------

    /// Sends `batch` (which must end with its only Sync or Query) and returns the answer up to
    /// ReadyForQuery.
    pub async fn exchange(&mut self, batch: Batch) -> Vec<Msg> {
        self.send(&batch.bytes).await;
        self.until_ready().await
    }

    /// Runs a simple query; returns its messages up to ReadyForQuery.
    pub async fn query(&mut self, sql: &str) -> Vec<Msg> {
        self.exchange(Batch::new().query(sql)).await
    }

    /// Reads the answer to a query: up to ReadyForQuery, or until the connection closes.
    pub async fn read_result(&mut self) -> QueryResult {
        let (messages, _) = self.read_up_to(Some(b'Z'), MOST_BEFORE_TAG).await;
        QueryResult {
            rows: rows(&messages),
            errors: errors(&messages),
            ready: messages.iter().find(|m| m.tag == b'Z').map(|m| m.body[0]),
        }
    }

    /// Runs a simple query and sums up its answer (see [`Wire::read_result`]).
    pub async fn query_result(&mut self, sql: &str) -> QueryResult {
        self.send_query(sql).await;
        self.read_result().await
    }

    /// Runs a simple query that must succeed and end idle; returns its rows.
    pub async fn rows(&mut self, sql: &str) -> Vec<Vec<Option<String>>> {
        let messages = self.query(sql).await;
        assert_eq!(errors(&messages), vec![], "{sql}");
        assert_eq!(ready_status(&messages), b'I', "{sql}");
        rows(&messages)
    }

    /// First column of the first row of a query that must succeed and end idle.
    pub async fn value(&mut self, sql: &str) -> String {
        let rows = self.rows(sql).await;
        rows.first()
            .and_then(|r| r.first().cloned().flatten())
            .unwrap_or_else(|| panic!("{sql}: no value in {rows:?}"))
    }

    /// The backend the client's next transaction runs on.
    pub async fn backend_pid(&mut self) -> i32 {
        self.value("SELECT pg_backend_pid()")
            .await
            .parse()
            .expect("a pid")
    }
}

/// Sends a CancelRequest for `key` (pid, secret) to `addr` and waits until the receiver
/// closes the connection (it never answers), so whatever it does with the request is done.
pub async fn send_cancel(addr: SocketAddr, key: &(i32, Vec<u8>)) {
    let mut out = Vec::new();
    encode::cancel_request(&mut out, key.0, &key.1).expect("encode cancel");
    let mut stream = TcpStream::connect(addr).await.expect("connect for cancel");
    stream.write_all(&out).await.expect("send cancel");
    let mut probe = [0u8; 16];
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut probe))
        .await
        .expect("the cancel connection is closed within 10 s");
    assert!(
        matches!(read, Ok(0) | Err(_)),
        "a cancel request gets no answer, got {read:?}"
    );
}

/// Frontend messages to send in one write.
#[derive(Default, Clone)]
pub struct Batch {
    pub bytes: Vec<u8>,
}

impl Batch {
    pub fn new() -> Batch {
        Batch::default()
    }

    pub fn query(mut self, sql: &str) -> Batch {
        encode::query(&mut self.bytes, sql).expect("encode Query");
        self
    }

    pub fn parse(mut self, name: &str, sql: &str, types: &[u32]) -> Batch {
        encode::parse(&mut self.bytes, name, sql, types).expect("encode Parse");
        self
    }

    /// Bind with text parameters (`None` = NULL) and text results.
    pub fn bind(mut self, portal: &str, statement: &str, params: &[Option<&str>]) -> Batch {
        let values: Vec<Option<&[u8]>> = params.iter().map(|p| p.map(str::as_bytes)).collect();
        encode::bind(&mut self.bytes, portal, statement, &[], &values, &[]).expect("encode Bind");
        self
    }

    pub fn describe_statement(mut self, name: &str) -> Batch {
        encode::describe(&mut self.bytes, Target::Statement, name).expect("encode Describe");
        self
    }

    pub fn describe_portal(mut self, name: &str) -> Batch {
        encode::describe(&mut self.bytes, Target::Portal, name).expect("encode Describe");
        self
    }

    pub fn execute(mut self, portal: &str, max_rows: i32) -> Batch {
        encode::execute(&mut self.bytes, portal, max_rows).expect("encode Execute");
        self
    }

    pub fn close_statement(mut self, name: &str) -> Batch {
        encode::close(&mut self.bytes, Target::Statement, name).expect("encode Close");
        self
    }

    pub fn close_portal(mut self, name: &str) -> Batch {
        encode::close(&mut self.bytes, Target::Portal, name).expect("encode Close");
        self
    }

    pub fn sync(mut self) -> Batch {
        encode::sync(&mut self.bytes);
        self
    }

    pub fn flush(mut self) -> Batch {
        encode::flush(&mut self.bytes);
        self
    }

    pub fn copy_data(mut self, data: &[u8]) -> Batch {
        encode::copy_data(&mut self.bytes, data).expect("encode CopyData");
        self
    }

    pub fn copy_done(mut self) -> Batch {
        encode::copy_done(&mut self.bytes);
        self
    }

    pub fn copy_fail(mut self, reason: &str) -> Batch {
        encode::copy_fail(&mut self.bytes, reason).expect("encode CopyFail");
        self
    }

    /// FunctionCall with text arguments and a text result.
    pub fn function_call(mut self, oid: u32, args: &[Option<&str>]) -> Batch {
        let values: Vec<Option<&[u8]>> = args.iter().map(|a| a.map(str::as_bytes)).collect();
        encode::function_call(&mut self.bytes, oid, &[], &values, 0).expect("encode FunctionCall");
        self
    }

    pub fn terminate(mut self) -> Batch {
        encode::terminate(&mut self.bytes);
        self
    }

    /// One unnamed Parse/Bind/Execute/Sync batch of `sql` with text parameters.
    pub fn extended(self, sql: &str, params: &[Option<&str>]) -> Batch {
        self.parse("", sql, &[])
            .bind("", "", params)
            .execute("", 0)
            .sync()
    }
}

// ------------------------------------------------------------------------------------------
// Reading a list of backend messages.
// ------------------------------------------------------------------------------------------

/// The bodies of the messages with tag `tag`.
fn bodies(messages: &[Msg], tag: u8) -> impl Iterator<Item = &[u8]> {
    messages
        .iter()
        .filter(move |m| m.tag == tag)
        .map(|m| m.body.as_slice())
}

/// The first message with tag `tag`; fails the test if there is none.
fn first_of<'m>(messages: &'m [Msg], tag: u8, what: &str) -> &'m Msg {
    messages
        .iter()
        .find(|m| m.tag == tag)
        .unwrap_or_else(|| panic!("no {what} in {messages:?}"))
}

/// Asynchronous messages (ParameterStatus, Notice, Notification) answer no request.
fn is_async(tag: u8) -> bool {
    matches!(tag, b'S' | b'N' | b'A')
}

/// The tags of `messages` as a string (asynchronous messages left out): "12DCZ".
pub fn tags(messages: &[Msg]) -> String {
    messages
        .iter()
        .filter(|m| !is_async(m.tag))
        .map(|m| m.tag as char)
        .collect()
}

/// The status byte of the last ReadyForQuery in `messages`.
pub fn ready_status(messages: &[Msg]) -> u8 {
    messages
        .iter()
        .rev()
        .find(|m| m.tag == b'Z')
        .map(|m| m.body[0])
        .unwrap_or_else(|| panic!("no ReadyForQuery in {messages:?}"))
}

/// Every DataRow's columns as text (`None` = NULL).
pub fn rows(messages: &[Msg]) -> Vec<Vec<Option<String>>> {
    bodies(messages, b'D')
        .map(|body| {
            let row = DataRow::decode(body).expect("a valid DataRow");
            row.values().map(|v| v.map(text)).collect()
        })
        .collect()
}

/// The first column of every DataRow (which must not be NULL).
pub fn first_column(messages: &[Msg]) -> Vec<String> {
    rows(messages)
        .into_iter()
        .map(|row| {
            let value = row.into_iter().next().expect("a column");
            value.expect("not null")
        })
        .collect()
}

/// CommandComplete tags ("SELECT 1", "COPY 3", ...).
pub fn command_tags(messages: &[Msg]) -> Vec<String> {
    bodies(messages, b'C')
        .map(|body| CommandComplete::decode(body).expect("a valid CommandComplete"))
        .map(|complete| text(complete.tag()))
        .collect()
}

/// Every ErrorResponse's fields.
pub fn errors(messages: &[Msg]) -> Vec<ErrorFields> {
    messages
        .iter()
        .filter(|m| m.tag == b'E')
        .map(Msg::error)
        .collect()
}

/// SQLSTATEs of every ErrorResponse.
pub fn error_codes(messages: &[Msg]) -> Vec<String> {
    errors(messages).into_iter().map(|e| e.code).collect()
}

/// The single ErrorResponse among `messages` (panics if there is not exactly one).
pub fn only_error(messages: &[Msg]) -> ErrorFields {
    let mut errors = errors(messages);
    assert_eq!(
        errors.len(),
        1,
        "expected one ErrorResponse in {messages:?}"
    );
    errors.remove(0)
}

/// The value of the FunctionCallResponse (`V`) as text.
pub fn function_result(messages: &[Msg]) -> Option<String> {
    let BackendMessage::FunctionCallResponse(value) =
        first_of(messages, b'V', "FunctionCallResponse").decode()
    else {
        unreachable!("decoded by its tag");
    };
    value.map(text)
}

/// The latest ParameterStatus value for `name` among `messages`.
pub fn parameter_status(messages: &[Msg], name: &str) -> Option<String> {
    bodies(messages, b'S')
        .map(|body| ParameterStatus::decode(body).expect("a valid ParameterStatus"))
        .filter(|p| p.name() == name.as_bytes())
        .map(|p| text(p.value()))
        .last()
}

/// The parameter type OIDs of the ParameterDescription (`t`) among `messages`.
pub fn parameter_types(messages: &[Msg]) -> Vec<u32> {
    let msg = first_of(messages, b't', "ParameterDescription");
    let description = ParameterDescription::decode(&msg.body).expect("a valid description");
    description.types().collect()
}

/// The number of fields of the RowDescription (`T`) among `messages`.
pub fn row_fields(messages: &[Msg]) -> usize {
    let msg = first_of(messages, b'T', "RowDescription");
    RowDescription::decode(&msg.body)
        .expect("a valid RowDescription")
        .len()
}
