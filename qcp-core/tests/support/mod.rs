//! Test harness: the real PostgreSQL that `scripts/test.sh` starts, and qcp instances
//! running in-process in front of it.
//!
//! The shared cluster is found through the `QCP_TEST_PG_*` variables. Tests that restart or
//! kill a server start a private cluster with [`PrivateCluster::start`] so they never
//! disturb the shared one.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use qcp_core::config::Config;
use qcp_core::Instance;

/// The users the test cluster defines (see scripts/pg-cluster.sh).
pub const SCRAM_USER: (&str, &str) = ("qcp_scram", "scram-pass");
pub const MD5_USER: (&str, &str) = ("qcp_md5", "md5-pass");
pub const PLAIN_USER: (&str, &str) = ("qcp_plain", "plain-pass");
pub const TRUST_USER: &str = "qcp_trust";
pub const DATABASE: &str = "qcp_test";
pub const OTHER_DATABASE: &str = "qcp_other";

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the tests with scripts/test.sh, which starts the test PostgreSQL cluster")
    })
}

/// The shared PostgreSQL cluster's address (host:port).
pub fn pg_addr() -> String {
    env("QCP_TEST_PG_ADDR")
}

/// A connection string straight to PostgreSQL (no qcp) as the superuser.
pub fn superuser_conninfo(addr: &str) -> String {
    let (host, port) = addr.rsplit_once(':').expect("host:port");
    format!(
        "host={host} port={port} user={} password={} dbname={DATABASE} sslmode=disable",
        env("QCP_TEST_PG_SUPERUSER"),
        env("QCP_TEST_PG_SUPERPASS")
    )
}

/// Connects with tokio-postgres; the connection task runs in the background.
pub async fn connect(conninfo: &str) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::connect(conninfo, tokio_postgres::NoTls).await?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A private directory for one test's files.
pub fn scratch_dir(tag: &str) -> tempfile::TempDir {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    tempfile::Builder::new()
        .prefix(&format!("qcp-{tag}-{n}-"))
        .tempdir_in("/tmp")
        .expect("temp dir")
}

/// How to set up one qcp instance.
#[derive(Clone)]
pub struct Setup {
    pub mode: &'static str,
    pub servers: Vec<(String, u32)>,
    pub auth_method: &'static str,
    /// Extra YAML appended at top level (e.g. a `timeouts:` block).
    pub extra: String,
    pub arena: String,
    pub users: String,
}

impl Setup {
    /// Session mode in front of the shared cluster, pool_size 4, the four test users.
    pub fn session() -> Self {
        Setup {
            mode: "Session",
            servers: vec![(pg_addr(), 4)],
            auth_method: "scram-sha-256",
            extra: String::new(),
            arena: "arena:\n  chunk_size: 16KB\n  chunks_count: 256\n".into(),
            users: format!(
                "users:\n  - name: {}\n    password: {}\n  - name: {}\n    password: {}\n  - name: {}\n    password: {}\n  - name: {TRUST_USER}\n    password: unused\n",
                SCRAM_USER.0, SCRAM_USER.1, MD5_USER.0, MD5_USER.1, PLAIN_USER.0, PLAIN_USER.1
            ),
        }
    }

    /// Smart mode, otherwise as [`Setup::session`].
    pub fn smart() -> Self {
        Setup {
            mode: "Smart",
            ..Self::session()
        }
    }

    pub fn pool_size(mut self, size: u32) -> Self {
        for server in &mut self.servers {
            server.1 = size;
        }
        self
    }

    pub fn extra(mut self, yaml: &str) -> Self {
        self.extra.push_str(yaml);
        self
    }

    /// The YAML text of this setup, with the control socket in `dir`.
    pub fn yaml(&self, dir: &Path) -> String {
        let mut yaml = format!(
            "listening_address: 127.0.0.1:0\nrelay_mode: {}\nlog_level: Off\nauth_method: {}\ncontrol_socket: {}\n{}{}servers:\n",
            self.mode,
            self.auth_method,
            dir.join("qcp.sock").display(),
            self.arena,
            self.users
        );
        for (address, pool_size) in &self.servers {
            yaml.push_str(&format!(
                "  - address: {address}\n    pool_size: {pool_size}\n"
            ));
        }
        yaml.push_str(&self.extra);
        yaml
    }

    /// Starts qcp in-process.
    pub fn start(&self) -> Qcp {
        let dir = scratch_dir("qcp");
        let yaml = self.yaml(dir.path());
        let config = Config::from_yaml(&yaml, "test config")
            .unwrap_or_else(|e| panic!("bad test config: {e}\n{yaml}"));
        let instance = qcp_core::start(config).expect("qcp starts");
        let addr = instance.local_addr();
        Qcp {
            instance: Some(instance),
            addr,
            dir,
        }
    }
}

/// A running qcp instance; shut down (gracefully) when dropped.
pub struct Qcp {
    instance: Option<Instance>,
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
}

impl Qcp {
    /// A libpq-style connection string through qcp.
    pub fn conninfo(&self, user: &str, password: &str, database: &str) -> String {
        format!(
            "host=127.0.0.1 port={} user={user} password={password} dbname={database} sslmode=disable",
            self.addr.port()
        )
    }

    /// Connects through qcp as the SCRAM test user to the test database.
    pub async fn client(&self) -> tokio_postgres::Client {
        connect(&self.conninfo(SCRAM_USER.0, SCRAM_USER.1, DATABASE))
            .await
            .expect("connect through qcp")
    }

    pub fn control_socket(&self) -> PathBuf {
        self.dir.path().join("qcp.sock")
    }

    pub fn status(&self) -> String {
        self.instance.as_ref().expect("running").status()
    }

    /// Starts a graceful shutdown and waits for the instance to stop (bounded).
    pub fn stop(&mut self) {
        if let Some(instance) = self.instance.take() {
            instance.shutdown();
            let (done_tx, done_rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                instance.wait();
                let _ = done_tx.send(());
            });
            done_rx
                .recv_timeout(Duration::from_secs(60))
                .expect("qcp stops within 60 s");
        }
    }
}

impl Drop for Qcp {
    fn drop(&mut self) {
        if let Some(instance) = self.instance.take() {
            // Do not wait in Drop (a failing test may hold clients open): just ask it to stop.
            instance.shutdown();
        }
    }
}

/// A PostgreSQL cluster of the test's own, for tests that restart or kill it.
pub struct PrivateCluster {
    pub dir: tempfile::TempDir,
    pub port: u16,
}

impl PrivateCluster {
    pub fn start() -> Self {
        let script = env("QCP_TEST_PG_CLUSTER_SCRIPT");
        let dir = scratch_dir("pg");
        let port = free_port();
        let status = Command::new("bash")
            .arg(&script)
            .args([
                "start",
                &dir.path().join("data").display().to_string(),
                &port.to_string(),
            ])
            .status()
            .expect("run pg-cluster.sh");
        assert!(status.success(), "private cluster failed to start");
        PrivateCluster { dir, port }
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn pg_ctl(&self, args: &[&str]) {
        let bindir = env("QCP_TEST_PG_BINDIR");
        let status = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(Path::new(&bindir).join("pg_ctl"))
            .args(["-D", &self.data(), "-w", "-t", "60", "-l"])
            .arg(self.dir.path().join("data").join("postgres.log"))
            .args(args)
            .status()
            .expect("run pg_ctl");
        assert!(status.success(), "pg_ctl {args:?} failed");
    }

    /// Stops the server (fast shutdown: sessions are terminated).
    pub fn stop(&self) {
        self.pg_ctl(&["stop", "-m", "fast"]);
    }

    /// Starts it again on the same port.
    pub fn start_again(&self) {
        self.pg_ctl(&["start"]);
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        let script = env("QCP_TEST_PG_CLUSTER_SCRIPT");
        let _ = Command::new("bash")
            .arg(&script)
            .args(["stop", &self.data()])
            .status();
    }
}

/// A TCP port nobody listens on right now.
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

/// Polls `condition` until it holds, up to `limit`; for waiting on state that has no event to
/// wait for (e.g. a row appearing in pg_stat_activity). Panics with `what` on timeout.
pub async fn wait_until<F, Fut>(what: &str, limit: Duration, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    loop {
        if condition().await {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

impl Setup {
    /// Starts qcp in-process with this setup's YAML passed through `edit` first (for settings
    /// the fields above do not cover, such as a server's `databases`).
    pub fn start_edited(&self, edit: impl FnOnce(String) -> String) -> Qcp {
        let dir = scratch_dir("qcp");
        let yaml = edit(self.yaml(dir.path()));
        let config = Config::from_yaml(&yaml, "test config")
            .unwrap_or_else(|e| panic!("bad test config: {e}\n{yaml}"));
        let instance = qcp_core::start(config).expect("qcp starts");
        let addr = instance.local_addr();
        Qcp {
            instance: Some(instance),
            addr,
            dir,
        }
    }
}

/// The number after `key: ` in `qcp-ctrl status` text (such as `server_connections_opened`).
pub fn status_count(status: &str, key: &str) -> u64 {
    let prefix = format!("{key}: ");
    status
        .lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no `{key}` count in status:\n{status}"))
}

/// A stored password of a test role, as `pg_authid.rolpassword` holds it (read as the
/// superuser straight from PostgreSQL).
pub async fn stored_secret(role: &str) -> String {
    let admin = connect(&superuser_conninfo(&pg_addr()))
        .await
        .expect("superuser connects to the test cluster");
    admin
        .query_one(
            "SELECT rolpassword FROM pg_authid WHERE rolname = $1",
            &[&role],
        )
        .await
        .expect("read pg_authid")
        .get(0)
}

// ------------------------------------------------------------------------------------------
// Session-mode and resilience helpers.
// ------------------------------------------------------------------------------------------

/// Connects with tokio-postgres and keeps the connection task's outcome, so a test can see
/// the error that ended it (e.g. an unsolicited FATAL from qcp).
pub async fn connect_watched(
    conninfo: &str,
) -> Result<
    (
        tokio_postgres::Client,
        tokio::task::JoinHandle<Result<(), tokio_postgres::Error>>,
    ),
    tokio_postgres::Error,
> {
    let (client, connection) = tokio_postgres::connect(conninfo, tokio_postgres::NoTls).await?;
    Ok((client, tokio::spawn(connection)))
}

/// A superuser connection straight to the shared cluster (no qcp).
pub async fn admin() -> tokio_postgres::Client {
    connect(&superuser_conninfo(&pg_addr()))
        .await
        .expect("superuser connects to the test cluster")
}

/// The SQLSTATE of a server (or qcp) error, if the error carries one.
pub fn sqlstate_of(error: &tokio_postgres::Error) -> Option<String> {
    error.code().map(|c| c.code().to_owned())
}

/// `(state, wait_event)` of backend `pid` in pg_stat_activity, `None` once it is gone.
pub async fn backend_state(admin: &tokio_postgres::Client, pid: i32) -> Option<(String, String)> {
    admin
        .query_opt(
            "SELECT coalesce(state, ''), coalesce(wait_event, '') FROM pg_stat_activity WHERE pid = $1",
            &[&pid],
        )
        .await
        .expect("read pg_stat_activity")
        .map(|row| (row.get(0), row.get(1)))
}

/// Backend pids connected to database `DATABASE` as `user`, from pg_stat_activity.
pub async fn backends_of(admin: &tokio_postgres::Client, user: &str) -> Vec<i32> {
    admin
        .query(
            "SELECT pid FROM pg_stat_activity WHERE usename = $1 AND datname = $2 ORDER BY pid",
            &[&user, &DATABASE],
        )
        .await
        .expect("read pg_stat_activity")
        .iter()
        .map(|row| row.get(0))
        .collect()
}

/// The numbers of `Qcp::status()` text that tests look at.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StatusView {
    pub clients: u64,
    pub active: u64,
    pub waiting: u64,
    /// Per pool ("database/user"): server connections (active, idle) and clients waiting.
    pub pools: Vec<(String, u64, u64, u64)>,
    pub arena_in_use: u64,
    pub arena_peak: u64,
    pub arena_waiting: u64,
    pub arena_exhausted: u64,
    pub server_connections_opened: u64,
}

fn number_after(text: &str, key: &str) -> u64 {
    let start = text
        .find(key)
        .unwrap_or_else(|| panic!("no {key:?} in status line {text:?}"))
        + key.len();
    text[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap_or_else(|_| panic!("no number after {key:?} in {text:?}"))
}

impl StatusView {
    pub fn parse(status: &str) -> StatusView {
        let mut view = StatusView::default();
        for line in status.lines() {
            if let Some(rest) = line.strip_prefix("clients: ") {
                view.clients = number_after(rest, "");
                view.active = number_after(rest, "active ");
                view.waiting = number_after(rest, "waiting ");
            } else if let Some(rest) = line.strip_prefix("arena: ") {
                view.arena_in_use = number_after(rest, "in use ");
                view.arena_peak = number_after(rest, "peak ");
                view.arena_waiting = number_after(rest, "waiting ");
                view.arena_exhausted = number_after(rest, "exhausted ");
            } else if let Some(rest) = line.strip_prefix("server_connections_opened: ") {
                view.server_connections_opened = number_after(rest, "");
            } else if let Some(rest) = line.strip_prefix("  ") {
                if let Some((name, counts)) = rest.split_once(": server connections ") {
                    view.pools.push((
                        name.to_owned(),
                        number_after(counts, "active "),
                        number_after(counts, "idle "),
                        number_after(counts, "clients waiting "),
                    ));
                }
            }
        }
        view
    }

    /// (active, idle, waiting) of the test pool `qcp_test/qcp_scram` (zeros before it exists).
    pub fn test_pool(&self) -> (u64, u64, u64) {
        let name = format!("{DATABASE}/{}", SCRAM_USER.0);
        self.pools
            .iter()
            .find(|p| p.0 == name)
            .map_or((0, 0, 0), |p| (p.1, p.2, p.3))
    }
}

impl Qcp {
    /// The parsed status.
    pub fn status_view(&self) -> StatusView {
        StatusView::parse(&self.status())
    }
}

/// An ErrorResponse seen by [`Wire`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WireError {
    pub severity: String,
    pub code: String,
    pub message: String,
}

/// The outcome of one simple query on a [`Wire`] connection.
#[derive(Debug, Default)]
pub struct WireResult {
    /// Every DataRow's columns as text (NULL = None).
    pub rows: Vec<Vec<Option<String>>>,
    /// ErrorResponses (there is at most one per query, plus a FATAL before a close).
    pub errors: Vec<WireError>,
    /// The ReadyForQuery status, or `None` if the connection closed first.
    pub ready: Option<u8>,
}

/// A minimal PostgreSQL client on a raw socket, for what tokio-postgres cannot do: any
/// start-up parameter, reading slowly (or not at all), closing without Terminate, and
/// seeing the BackendKeyData.
pub struct Wire {
    pub stream: tokio::net::TcpStream,
    buf: Vec<u8>,
    /// The BackendKeyData qcp sent.
    pub pid: i32,
    pub secret: Vec<u8>,
    /// ParameterStatus values from the login.
    pub params: Vec<(String, String)>,
}

/// How long a [`Wire`] read may take before the test fails.
pub const WIRE_READ_LIMIT: Duration = Duration::from_secs(30);

impl Wire {
    /// Connects to `addr` and logs in (SCRAM, md5, cleartext or trust) with `params` (which
    /// must include `user`, and usually `database`); `recv_buffer` shrinks the socket's
    /// receive buffer (for slow-reader tests). Errors are the server's ErrorResponse.
    pub async fn login(
        addr: SocketAddr,
        password: &str,
        params: &[(&str, &str)],
        recv_buffer: Option<u32>,
    ) -> Result<Wire, WireError> {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        if let Some(size) = recv_buffer {
            socket.set_recv_buffer_size(size).expect("SO_RCVBUF");
        }
        let stream = socket.connect(addr).await.expect("connect to qcp");
        stream.set_nodelay(true).expect("nodelay");
        let mut wire = Wire {
            stream,
            buf: Vec::new(),
            pid: 0,
            secret: Vec::new(),
            params: Vec::new(),
        };
        let mut out = Vec::new();
        qcp_codec::encode::startup(&mut out, qcp_codec::ProtocolVersion::V3_0, params)
            .expect("encode startup");
        wire.send(&out).await;
        let mut scram: Option<postgres_protocol::authentication::sasl::ScramSha256> = None;
        loop {
            let Some((tag, body)) = wire.recv().await else {
                panic!("qcp closed the connection during the login");
            };
            out.clear();
            match tag {
                b'R' => {
                    let code = u32::from_be_bytes(body[..4].try_into().unwrap());
                    match code {
                        0 => {}
                        3 => qcp_codec::encode::password(&mut out, password).unwrap(),
                        5 => {
                            let user = params.iter().find(|p| p.0 == "user").unwrap().1;
                            let hash = postgres_protocol::authentication::md5_hash(
                                user.as_bytes(),
                                password.as_bytes(),
                                body[4..8].try_into().unwrap(),
                            );
                            qcp_codec::encode::password(&mut out, hash).unwrap();
                        }
                        10 => {
                            let client = postgres_protocol::authentication::sasl::ScramSha256::new(
                                password.as_bytes(),
                                postgres_protocol::authentication::sasl::ChannelBinding::unsupported(),
                            );
                            qcp_codec::encode::sasl_initial_response(
                                &mut out,
                                "SCRAM-SHA-256",
                                Some(client.message()),
                            )
                            .unwrap();
                            scram = Some(client);
                        }
                        11 => {
                            let client = scram.as_mut().expect("SASL continue before SASL");
                            client.update(&body[4..]).expect("server-first message");
                            qcp_codec::encode::sasl_response(&mut out, client.message()).unwrap();
                        }
                        12 => {
                            let client = scram.as_mut().expect("SASL final before SASL");
                            client.finish(&body[4..]).expect("valid server signature");
                        }
                        other => panic!("unexpected authentication request {other}"),
                    }
                    if !out.is_empty() {
                        wire.send(&out).await;
                    }
                }
                b'S' => {
                    let mut parts = body.split(|b| *b == 0);
                    let name = String::from_utf8_lossy(parts.next().unwrap()).into_owned();
                    let value = String::from_utf8_lossy(parts.next().unwrap()).into_owned();
                    wire.params.push((name, value));
                }
                b'K' => {
                    wire.pid = i32::from_be_bytes(body[..4].try_into().unwrap());
                    wire.secret = body[4..].to_vec();
                }
                b'E' => return Err(parse_wire_error(&body)),
                b'Z' => return Ok(wire),
                _ => {}
            }
        }
    }

    /// Logs in through `qcp` as the SCRAM test user to the test database, with extra
    /// start-up parameters.
    pub async fn login_to(qcp: &Qcp, extra: &[(&str, &str)]) -> Wire {
        let mut params = vec![("user", SCRAM_USER.0), ("database", DATABASE)];
        params.extend_from_slice(extra);
        Wire::login(qcp.addr, SCRAM_USER.1, &params, None)
            .await
            .unwrap_or_else(|e| panic!("login through qcp failed: {e:?}"))
    }

    /// Writes `bytes`.
    pub async fn send(&mut self, bytes: &[u8]) {
        use tokio::io::AsyncWriteExt;
        self.stream.write_all(bytes).await.expect("write to qcp");
    }

    /// Sends a simple query without reading the answer.
    pub async fn send_query(&mut self, sql: &str) {
        let mut out = Vec::new();
        qcp_codec::encode::query(&mut out, sql).expect("encode query");
        self.send(&out).await;
    }

    /// The next message (tag, body), or `None` once the connection closed.
    pub async fn recv(&mut self) -> Option<(u8, Vec<u8>)> {
        use tokio::io::AsyncReadExt;
        loop {
            if self.buf.len() >= 5 {
                let len = u32::from_be_bytes(self.buf[1..5].try_into().unwrap()) as usize;
                if self.buf.len() > len {
                    let tag = self.buf[0];
                    let body = self.buf[5..1 + len].to_vec();
                    self.buf.drain(..1 + len);
                    return Some((tag, body));
                }
            }
            let mut chunk = vec![0u8; 64 * 1024];
            let read = tokio::time::timeout(WIRE_READ_LIMIT, self.stream.read(&mut chunk))
                .await
                .expect("qcp answered within the read limit");
            match read {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// Reads the answer to a query: up to ReadyForQuery, or until the connection closes.
    pub async fn read_result(&mut self) -> WireResult {
        let mut result = WireResult::default();
        while let Some((tag, body)) = self.recv().await {
            match tag {
                b'D' => result.rows.push(parse_data_row(&body)),
                b'E' => result.errors.push(parse_wire_error(&body)),
                b'Z' => {
                    result.ready = Some(body[0]);
                    break;
                }
                _ => {}
            }
        }
        result
    }

    /// Runs a simple query and reads its answer.
    pub async fn query(&mut self, sql: &str) -> WireResult {
        self.send_query(sql).await;
        self.read_result().await
    }

    /// Runs a query that must succeed and returns its first column's first value.
    pub async fn value(&mut self, sql: &str) -> String {
        let result = self.query(sql).await;
        assert!(result.errors.is_empty(), "{sql}: {:?}", result.errors);
        result.rows[0][0].clone().expect("not null")
    }
}

fn parse_wire_error(body: &[u8]) -> WireError {
    let mut error = WireError {
        severity: String::new(),
        code: String::new(),
        message: String::new(),
    };
    let mut rest = body;
    while let Some((&field, tail)) = rest.split_first() {
        if field == 0 {
            break;
        }
        let end = tail.iter().position(|b| *b == 0).expect("NUL");
        let text = String::from_utf8_lossy(&tail[..end]).into_owned();
        match field {
            b'V' => error.severity = text,
            b'C' => error.code = text,
            b'M' => error.message = text,
            _ => {}
        }
        rest = &tail[end + 1..];
    }
    error
}

/// The values of a DataRow body, as text (`None` for NULL).
pub fn parse_data_row(body: &[u8]) -> Vec<Option<String>> {
    let count = u16::from_be_bytes(body[..2].try_into().unwrap()) as usize;
    let mut at = 2;
    let mut row = Vec::with_capacity(count);
    for _ in 0..count {
        let len = i32::from_be_bytes(body[at..at + 4].try_into().unwrap());
        at += 4;
        if len < 0 {
            row.push(None);
        } else {
            let len = len as usize;
            row.push(Some(
                String::from_utf8_lossy(&body[at..at + len]).into_owned(),
            ));
            at += len;
        }
    }
    row
}

/// Sends a CancelRequest for (`pid`, `secret`) to `addr` and waits until the receiver closes
/// the connection (it never answers), so whatever it does with the request is done.
pub async fn send_cancel(addr: SocketAddr, pid: i32, secret: &[u8]) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut out = Vec::new();
    qcp_codec::encode::cancel_request(&mut out, pid, secret).expect("encode cancel");
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connect for cancel");
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

/// Runs a psql command through `qcp` as the SCRAM test user with extra environment
/// variables; returns (success, stdout, stderr).
pub async fn psql(qcp: &Qcp, env: &[(&str, &str)], args: &[&str]) -> (bool, String, String) {
    let bindir = std::env::var("QCP_TEST_PG_BINDIR").unwrap_or_else(|_| "/usr/bin".into());
    let mut command = tokio::process::Command::new(Path::new(&bindir).join("psql"));
    for name in [
        "PGHOST",
        "PGPORT",
        "PGUSER",
        "PGDATABASE",
        "PGPASSWORD",
        "PGOPTIONS",
        "PGTZ",
        "PGDATESTYLE",
        "PGAPPNAME",
        "PGSERVICE",
        "PGSSLMODE",
    ] {
        command.env_remove(name);
    }
    command
        .env("PGHOST", "127.0.0.1")
        .env("PGPORT", qcp.addr.port().to_string())
        .env("PGUSER", SCRAM_USER.0)
        .env("PGPASSWORD", SCRAM_USER.1)
        .env("PGDATABASE", DATABASE)
        .env("PGSSLMODE", "disable")
        .env("PGCONNECT_TIMEOUT", "10");
    for (name, value) in env {
        command.env(name, value);
    }
    command
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1"])
        .args(args);
    command.kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(60), command.output())
        .await
        .expect("psql finishes within 60 s")
        .expect("run psql");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}
