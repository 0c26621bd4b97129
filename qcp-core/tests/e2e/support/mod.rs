//! Test harness: the real PostgreSQL that `scripts/test.sh` starts, and qcp instances
//! running in-process in front of it.
//!
//! The shared cluster is found through the `QCP_TEST_PG_*` variables. Tests that restart or
//! kill a server start a private cluster with [`PrivateCluster::start`] so they never
//! disturb the shared one.
//!
//! The byte-level PostgreSQL client the tests use where tokio-postgres will not do is in
//! [`wire`]; [`script`] plays raw start-up byte scripts (to qcp or to PostgreSQL itself).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use qcp_core::config::Config;
use qcp_core::Instance;

pub mod proxy;
pub mod script;
pub mod wire;

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

/// The directory of the shared cluster's Unix socket (`unix_socket_directories`); the
/// socket is `DIR/.s.PGSQL.PORT`, PORT being [`pg_addr`]'s.
pub fn pg_socket_dir() -> String {
    env("QCP_TEST_PG_SOCKET_DIR")
}

/// The shared cluster's port.
pub fn pg_port() -> u16 {
    let addr = pg_addr();
    let (_, port) = addr.rsplit_once(':').expect("host:port");
    port.parse().expect("a port")
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

/// Runs a scenario as two tests: with pool_size 1 and with pool_size 2.
macro_rules! with_pools_1_and_2 {
    ($one:ident, $two:ident, $scenario:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $one() {
            $scenario(1).await;
        }

        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $two() {
            $scenario(2).await;
        }
    };
}
pub(crate) use with_pools_1_and_2;

/// Sends one command to the control socket at `socket` and returns the answer.
pub fn control_at(socket: &Path, command: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::os::unix::net::UnixStream::connect(socket).expect("control socket");
    stream
        .write_all(format!("{command}\n").as_bytes())
        .expect("send");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("answer");
    answer
}

/// The name of an instance's configuration file in its scratch directory.
pub const CONFIG_FILE: &str = "qcp.yaml";

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
        self.start_edited(|yaml| yaml)
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

    /// What the admin console and `/metrics` would show now.
    pub fn snapshot(&self) -> qcp_core::stats::Snapshot {
        self.instance.as_ref().expect("running").snapshot()
    }

    /// Where `/metrics` is served, when `metrics_address` is set.
    pub fn metrics_addr(&self) -> Option<std::net::SocketAddr> {
        self.instance.as_ref().expect("running").metrics_addr()
    }

    /// The configuration file qcp was started from.
    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join(CONFIG_FILE)
    }

    /// Replaces the configuration file with `yaml` (not applied until a reload).
    pub fn write_config(&self, yaml: &str) {
        std::fs::write(self.config_path(), yaml).expect("write the config file");
    }

    /// Sends one command over the control socket (as qcp-ctrl does) and returns the answer.
    /// Blocking: run it with `spawn_blocking` when it waits (PAUSE, WAIT_CLOSE).
    pub fn control(&self, command: &str) -> String {
        control_at(&self.control_socket(), command)
    }

    /// Reads the configuration file again, as SIGHUP and `qcp-ctrl reload` do.
    pub fn reload(&self) -> Result<qcp_core::ReloadReport, String> {
        self.instance.as_ref().expect("running").reload()
    }

    /// Reads the hba_file again, as SIGHUP does.
    pub fn reload_hba(&self) -> Result<(), String> {
        self.instance.as_ref().expect("running").reload_hba()
    }

    /// Reads the TLS files again, as SIGHUP does.
    pub fn reload_tls(&self) -> Result<(), qcp_core::tls::TlsError> {
        self.instance.as_ref().expect("running").reload_tls()
    }

    /// A task that completes when the instance stops on its own (after a SHUTDOWN).
    pub fn stopped(&mut self) -> tokio::task::JoinHandle<()> {
        let instance = self.instance.take().expect("running");
        tokio::task::spawn_blocking(move || instance.wait())
    }

    /// Starts a graceful shutdown and waits for the instance to stop (bounded).
    pub fn stop(&mut self) {
        if let Some(instance) = self.instance.take() {
            stop_instance(instance);
        }
    }
}

/// Starts a graceful shutdown of `instance` and waits for it to stop (bounded).
pub fn stop_instance(instance: Instance) {
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
        // From a file, as the qcp program runs: a reload reads it again.
        let path = dir.path().join(CONFIG_FILE);
        std::fs::write(&path, &yaml).expect("write the config file");
        let config = Config::load(&path).unwrap_or_else(|e| panic!("bad test config: {e}\n{yaml}"));
        let options = qcp_core::StartOptions {
            config_file: Some(path),
            ..Default::default()
        };
        let instance = qcp_core::start_with(config, options).expect("qcp starts");
        let addr = instance.local_addr().expect("qcp listens on TCP");
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

/// Bound for every wait on a condition.
pub const WAIT: Duration = Duration::from_secs(10);

/// Clients qcp reports holding a server connection.
pub fn active(qcp: &Qcp) -> u64 {
    qcp.status_view().active
}

/// Waits until `n` clients wait in line for the test pool.
pub async fn wait_queued(qcp: &Qcp, n: u64) {
    wait_until(
        &format!("{n} client(s) wait for the test pool"),
        WAIT,
        || async { qcp.status_view().test_pool().2 == n },
    )
    .await;
}

/// The server process behind `client`'s current server connection. A simple query:
/// tokio-postgres closes a prepared statement with a request that expects an answer, and an
/// error arriving while that answer is awaited is taken for it, which would hide an
/// unsolicited FATAL (the resilience tests look for one).
pub async fn pid_of(client: &tokio_postgres::Client) -> i32 {
    let messages = client
        .simple_query("SELECT pg_backend_pid()")
        .await
        .expect("query through qcp");
    messages
        .iter()
        .find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(row) => row.get(0).map(|v| v.parse().unwrap()),
            _ => None,
        })
        .expect("a row")
}

/// Waits until no client holds a server connection.
pub async fn wait_all_released(qcp: &Qcp) {
    wait_until("every server connection is released", WAIT, || async {
        qcp.status_view().active == 0
    })
    .await;
}

/// Waits until backend `pid` is busy in wait event `event` (e.g. "PgSleep").
pub async fn wait_running(admin: &tokio_postgres::Client, pid: i32, event: &str) {
    wait_until(
        &format!("backend {pid} is active in {event}"),
        WAIT,
        || async {
            backend_state(admin, pid)
                .await
                .is_some_and(|(state, wait)| state == "active" && wait == event)
        },
    )
    .await;
}

/// Waits until backend `pid` sits idle (outside any transaction) or is gone.
pub async fn wait_idle_or_gone(admin: &tokio_postgres::Client, pid: i32) {
    wait_until(&format!("backend {pid} is idle or gone"), WAIT, || async {
        backend_state(admin, pid)
            .await
            .is_none_or(|(state, _)| state == "idle")
    })
    .await;
}

/// Runs a psql command through `qcp` as the SCRAM test user with extra environment
/// variables; returns (success, stdout, stderr).
pub async fn psql(qcp: &Qcp, env: &[(&str, &str)], args: &[&str]) -> (bool, String, String) {
    psql_at("127.0.0.1", qcp.addr.port(), env, args).await
}

/// Runs a psql command as the SCRAM test user against `host` (an address, or a socket
/// directory as libpq takes it) and `port`; returns (success, stdout, stderr).
pub async fn psql_at(
    host: &str,
    port: u16,
    env: &[(&str, &str)],
    args: &[&str],
) -> (bool, String, String) {
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
        .env("PGHOST", host)
        .env("PGPORT", port.to_string())
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
