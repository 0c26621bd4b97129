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
