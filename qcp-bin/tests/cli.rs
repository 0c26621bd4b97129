//! The `qcp` and `qcp-ctrl` programs, run as the built binaries: usage, `--check`, config
//! errors, and a real qcp process in front of the test PostgreSQL cluster controlled with
//! `qcp-ctrl` and signals, with its log file.
//!
//! The tests that start qcp need the cluster of `scripts/test.sh` (the `QCP_TEST_PG_*`
//! variables).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use tokio::process::{Child, Command};
use tokio_postgres::error::SqlState;

const QCP: &str = env!("CARGO_BIN_EXE_qcp");
const QCP_CTRL: &str = env!("CARGO_BIN_EXE_qcp-ctrl");

/// Longest any command may run.
const RUN_LIMIT: Duration = Duration::from_secs(30);
/// timeouts.shutdown of the qcp processes started here.
const GRACE: Duration = Duration::from_secs(10);

struct Ran {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

/// Runs a program to its end (bounded) and captures its output.
async fn run(program: &str, args: &[&str]) -> Ran {
    let child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("run {program}: {e}"));
    let output: Output = tokio::time::timeout(RUN_LIMIT, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("{program} {args:?} did not finish within {RUN_LIMIT:?}"))
        .expect("wait for the program");
    Ran {
        status: output.status,
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn scratch() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("qcp-cli-")
        .tempdir_in("/tmp")
        .expect("temp dir")
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write file");
    path
}

fn pg_addr() -> String {
    std::env::var("QCP_TEST_PG_ADDR").expect(
        "QCP_TEST_PG_ADDR is not set: run the tests with scripts/test.sh, which starts the test PostgreSQL cluster",
    )
}

// ---- usage ------------------------------------------------------------------------------------

#[tokio::test]
async fn help_and_version() {
    let help = run(QCP, &["--help"]).await;
    assert!(help.status.success(), "{}", help.stderr);
    for part in [
        "Usage: qcp",
        "--config",
        "--check",
        "--version",
        "qcp-ctrl quit",
    ] {
        assert!(
            help.stdout.contains(part),
            "{part} missing from:\n{}",
            help.stdout
        );
    }

    let version = run(QCP, &["--version"]).await;
    assert!(version.status.success());
    assert_eq!(
        version.stdout.trim(),
        format!("qcp {}", env!("CARGO_PKG_VERSION"))
    );

    let ctrl = run(QCP_CTRL, &["--help"]).await;
    assert!(ctrl.status.success(), "{}", ctrl.stderr);
    for part in ["Usage: qcp-ctrl", "--socket", "--config", "quit", "status"] {
        assert!(
            ctrl.stdout.contains(part),
            "{part} missing from:\n{}",
            ctrl.stdout
        );
    }

    // A command is required; an unknown one is refused.
    for args in [&[][..], &["restart"][..]] {
        let bad = run(QCP_CTRL, args).await;
        assert!(!bad.status.success(), "qcp-ctrl {args:?} succeeded");
        assert!(!bad.stderr.is_empty() || !bad.stdout.is_empty());
    }
}

// ---- --check and config errors ----------------------------------------------------------------

#[tokio::test]
async fn check_prints_the_effective_settings_without_passwords() {
    let dir = scratch();
    let config = write(
        dir.path(),
        "qcp.yaml",
        "listening_address: 127.0.0.1:6543\n\
         relay_mode: Smart\n\
         arena:\n  chunk_size: 64 KB\n  total_size: 3 MB\n\
         servers:\n  - address: 127.0.0.1:5432\n    pool_size: 7\n\
         users:\n  - name: alice\n    password: \"alice-very-secret\"\n\
         \x20 - name: bob\n    password: \"SCRAM-SHA-256$4096:c2FsdHNhbHRzYWx0$g4E3Sfnmb59G1Zk3ERUUyOuCvzvsEnDTuxHIbJDhh0A=:q8F8nHPKBZTvj3nMDfm1XyL5Kb0jAvJfh/WMx9jZmSw=\"\n\
         timeouts:\n  query_wait: 90s\n",
    );
    let config = config.to_str().unwrap();
    let out = run(QCP, &["--check", "--config", config]).await;
    assert!(out.status.success(), "{}", out.stderr);
    assert!(
        out.stdout.contains("configuration is valid"),
        "{}",
        out.stdout
    );
    for line in [
        "listening_address: 127.0.0.1:6543",
        "relay_mode: Smart",
        "arena.chunk_size: 64 KB (65536 B)",
        "arena.chunks_count: 48",
        "arena.total_size: 3 MB (3145728 B)",
        "servers[0].pool_size: 7",
        "users[0].name: alice",
        "users[0].password: plaintext",
        "users[1].password: SCRAM secret",
        "timeouts.query_wait: ",
    ] {
        assert!(
            out.stdout.contains(line),
            "{line:?} missing from:\n{}",
            out.stdout
        );
    }
    for secret in ["alice-very-secret", "c2FsdHNhbHRzYWx0", "g4E3Sfnmb59G1Zk3"] {
        assert!(
            !out.stdout.contains(secret),
            "{secret} printed:\n{}",
            out.stdout
        );
        assert!(!out.stderr.contains(secret));
    }
}

/// Every kind of mistake: `qcp --check` and `qcp` alike print a message naming the setting
/// (and the line where known) and exit non-zero without starting.
#[tokio::test]
async fn bad_configs_name_the_setting_and_fail() {
    let dir = scratch();
    let server = "servers:\n  - address: 127.0.0.1:5432\nauth_method: trust\n";
    let cases: Vec<(&str, String, Vec<&str>)> = vec![
        (
            "unknown key",
            format!("{server}relay_mode: Session\nlog_levle: Info\n"),
            vec!["line 5", "`log_levle`", "unknown field"],
        ),
        (
            "wrong type",
            "servers:\n  - address: 127.0.0.1:5432\n    pool_size: many\nauth_method: trust\n"
                .to_owned(),
            vec!["line 3", "`servers[0].pool_size`"],
        ),
        (
            "both chunks_count and total_size",
            format!("{server}arena:\n  chunks_count: 10\n  total_size: 1 MB\n"),
            vec!["`arena", "both `chunks_count` and `total_size`"],
        ),
        (
            "chunk too small",
            format!("{server}arena:\n  chunk_size: 100\n"),
            vec!["line 5", "`arena.chunk_size`", "too small"],
        ),
        (
            "bad log file path",
            format!("{server}log_output: {{file: /nonexistent/dir/x.log}}\n"),
            vec!["log_output", "/nonexistent/dir/x.log"],
        ),
    ];
    for (name, yaml, parts) in cases {
        let path = write(
            dir.path(),
            &format!("{}.yaml", name.replace(' ', "_")),
            &yaml,
        );
        let path = path.to_str().unwrap();
        for args in [&["--check", "--config", path][..], &["--config", path][..]] {
            let out = run(QCP, args).await;
            assert!(
                !out.status.success(),
                "{name}: qcp {args:?} succeeded:\n{}",
                out.stdout
            );
            for part in &parts {
                assert!(
                    out.stderr.contains(part),
                    "{name}: {part:?} missing from qcp {args:?}'s error:\n{}",
                    out.stderr
                );
            }
            assert!(!out.stdout.contains("configuration is valid"), "{name}");
        }
    }

    let missing = dir.path().join("missing.yaml");
    let missing = missing.to_str().unwrap();
    for args in [
        &["--check", "--config", missing][..],
        &["--config", missing][..],
    ] {
        let out = run(QCP, args).await;
        assert!(!out.status.success());
        assert!(
            out.stderr.contains("cannot read config file") && out.stderr.contains(missing),
            "{}",
            out.stderr
        );
    }
}

#[tokio::test]
async fn ctrl_without_a_running_qcp_says_so() {
    let dir = scratch();
    let socket = dir.path().join("nobody.sock");
    let socket = socket.to_str().unwrap();
    for command in ["quit", "status"] {
        let out = run(QCP_CTRL, &["--socket", socket, command]).await;
        assert!(!out.status.success(), "qcp-ctrl {command} succeeded");
        assert!(
            out.stderr.contains("no qcp instance answers") && out.stderr.contains(socket),
            "{}",
            out.stderr
        );
    }
    // Through a config file's control_socket.
    let config = write(
        dir.path(),
        "qcp.yaml",
        &format!(
            "servers:\n  - address: 127.0.0.1:5432\nauth_method: trust\ncontrol_socket: {socket}\n"
        ),
    );
    let out = run(QCP_CTRL, &["--config", config.to_str().unwrap(), "quit"]).await;
    assert!(!out.status.success());
    assert!(out.stderr.contains(socket), "{}", out.stderr);
}

// ---- a real qcp process -----------------------------------------------------------------------

/// A qcp process in front of the test cluster; killed if the test ends early.
struct Running {
    child: Child,
    dir: tempfile::TempDir,
    config: PathBuf,
    socket: PathBuf,
    log: PathBuf,
    /// host:port clients connect to (or the Unix socket's path).
    addr: String,
}

/// Starts `qcp --config FILE` (Session mode, logging at Info to a file) and waits until its
/// control socket answers.
async fn start_qcp(extra_users: &str) -> Running {
    start_qcp_with(extra_users, |dir| dir.join("qcp.sock")).await
}

/// [`start_qcp`] with the control socket where `socket` puts it in the scratch directory.
async fn start_qcp_with(extra_users: &str, socket: impl FnOnce(&Path) -> PathBuf) -> Running {
    start_qcp_at(|_| "127.0.0.1:0".to_owned(), extra_users, socket).await
}

/// [`start_qcp_with`] with the `listening_address` that `listening` gives for the scratch
/// directory.
async fn start_qcp_at(
    listening: impl FnOnce(&Path) -> String,
    extra_users: &str,
    socket: impl FnOnce(&Path) -> PathBuf,
) -> Running {
    start_qcp_in(scratch(), listening, extra_users, socket, &[]).await
}

/// [`start_qcp_at`] in `dir`, with more environment variables for qcp.
async fn start_qcp_in(
    dir: tempfile::TempDir,
    listening: impl FnOnce(&Path) -> String,
    extra_users: &str,
    socket: impl FnOnce(&Path) -> PathBuf,
    env: &[(&str, &Path)],
) -> Running {
    let listening = listening(dir.path());
    let socket = socket(dir.path());
    let log = dir.path().join("qcp.log");
    let yaml = format!(
        "listening_address: {listening}\n\
         relay_mode: Session\n\
         log_level: Info\n\
         log_output:\n  file: {log}\n\
         auth_method: scram-sha-256\n\
         control_socket: {socket}\n\
         arena:\n  chunk_size: 16 KB\n  chunks_count: 64\n\
         users:\n  - name: qcp_scram\n    password: scram-pass\n{extra_users}\
         servers:\n  - address: {pg}\n    pool_size: 2\n\
         timeouts:\n  shutdown: {grace}s\n",
        log = log.display(),
        socket = socket.display(),
        pg = pg_addr(),
        grace = GRACE.as_secs(),
    );
    let config = write(dir.path(), "qcp.yaml", &yaml);
    let mut child = Command::new(QCP)
        .arg("--config")
        .arg(&config)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start qcp");
    // Wait for the control socket (qcp binds it before it accepts clients).
    let deadline = Instant::now() + RUN_LIMIT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("qcp status") {
            panic!("qcp exited at start-up with {status}; log:\n{}", read(&log));
        }
        if socket.exists() {
            let out = run(QCP_CTRL, &["--socket", socket.to_str().unwrap(), "status"]).await;
            if out.status.success() {
                break out.stdout;
            }
        }
        assert!(Instant::now() < deadline, "qcp did not start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let addr = status
        .lines()
        .find_map(|l| l.strip_prefix("listening_address: "))
        .unwrap_or_else(|| panic!("no listening_address in status:\n{status}"))
        .to_owned();
    Running {
        child,
        dir,
        config,
        socket,
        log,
        addr,
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

impl Running {
    fn conninfo(&self, user: &str, password: &str) -> String {
        let (host, port) = self.addr.rsplit_once(':').unwrap();
        format!(
            "host={host} port={port} user={user} password={password} dbname=qcp_test sslmode=disable"
        )
    }

    async fn status(&self) -> String {
        let out = run(
            QCP_CTRL,
            &["--socket", self.socket.to_str().unwrap(), "status"],
        )
        .await;
        assert!(out.status.success(), "qcp-ctrl status: {}", out.stderr);
        out.stdout
    }

    /// Waits until the log file holds a line with every one of `parts`, and returns it.
    async fn log_line(&self, parts: &[&str]) -> String {
        let deadline = Instant::now() + RUN_LIMIT;
        loop {
            let log = read(&self.log);
            if let Some(line) = log.lines().find(|l| parts.iter().all(|p| l.contains(p))) {
                return line.to_owned();
            }
            assert!(
                Instant::now() < deadline,
                "no log line with {parts:?} in:\n{log}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits (bounded) for the process to exit.
    async fn exited(&mut self, limit: Duration) -> ExitStatus {
        tokio::time::timeout(limit, self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("qcp still runs after {limit:?}; log:\n{}", read(&self.log)))
            .expect("wait for qcp")
    }
}

/// A client whose connection task's outcome the test can see (the FATAL a shutdown sends
/// arrives there, not at a query).
async fn client(
    conninfo: &str,
) -> (
    tokio_postgres::Client,
    tokio::task::JoinHandle<Result<(), tokio_postgres::Error>>,
) {
    let (client, connection) = tokio_postgres::connect(conninfo, tokio_postgres::NoTls)
        .await
        .expect("connect through qcp");
    (client, tokio::spawn(connection))
}

async fn assert_told_shutdown(
    connection: tokio::task::JoinHandle<Result<(), tokio_postgres::Error>>,
) {
    let outcome = tokio::time::timeout(GRACE, connection)
        .await
        .expect("the idle client was closed within the grace period")
        .expect("connection task");
    let error = outcome.expect_err("the connection ends with an error");
    let db = error
        .as_db_error()
        .unwrap_or_else(|| panic!("no ErrorResponse: {error}"));
    assert_eq!(db.severity(), "FATAL");
    assert_eq!(db.code(), &SqlState::ADMIN_SHUTDOWN, "{db:?}");
}

/// `qcp-ctrl status`, then `qcp-ctrl --config FILE quit` with an idle client connected: the
/// client gets FATAL 57P01 and qcp exits 0 within the grace period.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_status_and_quit_stop_a_running_qcp() {
    let mut qcp = start_qcp("").await;
    let mode = std::fs::metadata(&qcp.socket).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "control socket mode {mode:o}");
    assert!(
        !qcp.dir.path().join(".qcp.sock.tmp").exists(),
        "the private directory the socket was bound in is gone"
    );
    assert!(qcp.addr.starts_with("127.0.0.1:") && !qcp.addr.ends_with(":0"));

    let (db, connection) = client(&qcp.conninfo("qcp_scram", "scram-pass")).await;
    let row = db.query_one("SELECT 6 * 7", &[]).await.unwrap();
    assert_eq!(row.get::<_, i32>(0), 42);

    let status = qcp.status().await;
    for part in [
        format!("listening_address: {}", qcp.addr),
        "relay_mode: Session".to_owned(),
        "state: running".to_owned(),
        "clients: 1 (active 1, waiting 0, idle 0)".to_owned(),
        "pools: 1".to_owned(),
        "qcp_test/qcp_scram: server connections active 1, idle 0".to_owned(),
        "arena: 64 chunks of 16 KB (1 MB in all)".to_owned(),
    ] {
        assert!(status.contains(&part), "{part:?} missing from:\n{status}");
    }
    qcp.log_line(&[
        "INFO",
        "client logged in",
        "user=qcp_scram",
        "database=qcp_test",
    ])
    .await;

    let asked = Instant::now();
    let out = run(
        QCP_CTRL,
        &["--config", qcp.config.to_str().unwrap(), "quit"],
    )
    .await;
    assert!(out.status.success(), "qcp-ctrl quit: {}", out.stderr);
    assert!(out.stdout.contains("shutting down"), "{}", out.stdout);
    assert_told_shutdown(connection).await;
    let status = qcp.exited(GRACE).await;
    assert!(status.success(), "qcp exited with {status}");
    assert!(asked.elapsed() < GRACE);
    assert!(!qcp.socket.exists(), "the control socket is removed");
    qcp.log_line(&["INFO", "qcp stopped"]).await;
    drop(db);
}

/// SIGTERM stops qcp the same way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_a_running_qcp() {
    let mut qcp = start_qcp("").await;
    let (db, connection) = client(&qcp.conninfo("qcp_scram", "scram-pass")).await;
    db.simple_query("SELECT 1").await.unwrap();
    let pid = qcp.child.id().expect("qcp runs").to_string();
    let asked = Instant::now();
    let kill = run("kill", &["-TERM", &pid]).await;
    assert!(kill.status.success(), "{}", kill.stderr);
    assert_told_shutdown(connection).await;
    let status = qcp.exited(GRACE).await;
    assert!(status.success(), "qcp exited with {status}");
    assert!(asked.elapsed() < GRACE);
    assert!(!qcp.socket.exists());
    qcp.log_line(&["stop signal received"]).await;
    drop(db);
}

/// SIGHUP and `qcp-ctrl reload` read the configuration file again: a new log level and log
/// file take effect, an invalid file changes nothing and qcp-ctrl exits 1 with the error
/// (which the log says too), and qcp goes on serving throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_and_ctrl_reload_apply_the_file_and_qcp_goes_on() {
    let mut qcp = start_qcp("").await;
    let pid = qcp.child.id().expect("qcp runs").to_string();
    let kill = run("kill", &["-HUP", &pid]).await;
    assert!(kill.status.success(), "{}", kill.stderr);
    qcp.log_line(&["SIGHUP", "nothing changed"]).await;
    let (db, _connection) = client(&qcp.conninfo("qcp_scram", "scram-pass")).await;
    db.simple_query("SELECT 1").await.expect("qcp still serves");

    // A new level and a new log file, through qcp-ctrl.
    let yaml = read(&qcp.config);
    let moved = qcp.dir.path().join("moved.log");
    let edited = yaml.replace("log_level: Info", "log_level: Debug").replace(
        &format!("file: {}", qcp.log.display()),
        &format!("file: {}", moved.display()),
    );
    std::fs::write(&qcp.config, &edited).unwrap();
    let config = qcp.config.to_str().unwrap().to_owned();
    let out = run(QCP_CTRL, &["--config", &config, "reload"]).await;
    assert!(out.status.success(), "{}{}", out.stdout, out.stderr);
    assert!(
        out.stdout.contains("log_level, log_output"),
        "{}",
        out.stdout
    );
    qcp.log = moved;
    let (other, _connection) = client(&qcp.conninfo("qcp_scram", "scram-pass")).await;
    other.simple_query("SELECT 1").await.unwrap();
    qcp.log_line(&["DEBUG", "opened server connection"]).await;

    // An invalid file: qcp-ctrl exits 1 with the error, the log says it, nothing changes.
    std::fs::write(&qcp.config, format!("{edited}  query_wait: soon\n")).unwrap();
    let out = run(QCP_CTRL, &["--config", &config, "reload"]).await;
    assert_eq!(out.status.code(), Some(1), "{}{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains("timeouts.query_wait") && out.stderr.contains("line"),
        "{}",
        out.stderr
    );
    qcp.log_line(&["reload failed", "timeouts.query_wait"])
        .await;
    db.simple_query("SELECT 1").await.expect("qcp still serves");
}

/// The console's acting commands from qcp-ctrl: pause, resume, disable, enable, kill-client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_runs_the_console_commands() {
    let qcp = start_qcp("").await;
    let socket = qcp.socket.to_str().unwrap().to_owned();
    let ctrl = |args: &'static [&'static str]| {
        let socket = socket.clone();
        async move {
            let mut all = vec!["--socket", socket.as_str()];
            all.extend_from_slice(args);
            run(QCP_CTRL, &all).await
        }
    };
    let out = ctrl(&["pause", "qcp_test"]).await;
    assert!(
        out.status.success() && out.stdout.starts_with("ok: PAUSE"),
        "{}{}",
        out.stdout,
        out.stderr
    );
    let out = ctrl(&["resume", "qcp_test"]).await;
    assert!(out.status.success(), "{}{}", out.stdout, out.stderr);
    let out = ctrl(&["resume", "qcp_test"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stderr.contains("is not paused"), "{}", out.stderr);
    let out = ctrl(&["disable", "qcp_test"]).await;
    assert!(out.status.success(), "{}{}", out.stdout, out.stderr);
    let refused = tokio_postgres::connect(
        &qcp.conninfo("qcp_scram", "scram-pass"),
        tokio_postgres::NoTls,
    )
    .await
    .err()
    .expect("disabled");
    assert_eq!(
        refused.code(),
        Some(&SqlState::OBJECT_NOT_IN_PREREQUISITE_STATE),
        "{refused}"
    );
    let out = ctrl(&["enable", "qcp_test"]).await;
    assert!(out.status.success(), "{}{}", out.stdout, out.stderr);
    let (db, _connection) = client(&qcp.conninfo("qcp_scram", "scram-pass")).await;
    db.simple_query("SELECT 1").await.expect("enabled again");
    let out = ctrl(&["kill-client", "424242"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        out.stderr.contains("client 424242 not found"),
        "{}",
        out.stderr
    );
    let out = ctrl(&["shutdown", "--wait-for-clients", "--wait-for-servers"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", out.stderr);
}

/// The log file of a real qcp: one span per client (address, user, database); connect,
/// login and disconnect (with duration and reason) at Info; refused clients and failed server
/// logins at Warn.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_follows_each_client() {
    // qcp_md5's password in qcp is not the one the server has: qcp accepts the client, the
    // server refuses qcp.
    let mut qcp = start_qcp("  - name: qcp_md5\n    password: not-md5-pass\n").await;
    assert!(qcp.log.exists(), "log_output file created");
    qcp.log_line(&["INFO", "qcp started", &qcp.addr]).await;

    // A client that logs in, runs a query and leaves.
    let (db, connection) = client(&qcp.conninfo("qcp_scram", "scram-pass")).await;
    db.simple_query("SELECT 1").await.unwrap();
    drop(db);
    connection.await.unwrap().unwrap();
    let connected = qcp
        .log_line(&["INFO", "client connected", "peer=127.0.0.1:"])
        .await;
    let peer = connected
        .split("peer=")
        .nth(1)
        .and_then(|rest| rest.split(['}', ' ']).next())
        .unwrap()
        .to_owned();
    let span = format!("client{{peer={peer} user=qcp_scram database=qcp_test}}");
    qcp.log_line(&["INFO", &span, "client logged in"]).await;
    let left = qcp
        .log_line(&[
            "INFO",
            &span,
            "client disconnected",
            "duration_ms=",
            "reason=",
        ])
        .await;
    assert!(left.contains("client left"), "{left}");

    // A wrong password.
    let refused =
        tokio_postgres::connect(&qcp.conninfo("qcp_scram", "wrong"), tokio_postgres::NoTls)
            .await
            .err()
            .expect("refused");
    assert_eq!(refused.code(), Some(&SqlState::INVALID_PASSWORD));
    qcp.log_line(&[
        "WARN",
        "refused client",
        "user=qcp_scram",
        "28P01",
        "password authentication failed",
    ])
    .await;

    // The server refuses qcp's login: the client gets the server's error, the log a warning.
    let failed = tokio_postgres::connect(
        &qcp.conninfo("qcp_md5", "not-md5-pass"),
        tokio_postgres::NoTls,
    )
    .await
    .err()
    .expect("the server refuses");
    assert_eq!(failed.code(), Some(&SqlState::INVALID_PASSWORD), "{failed}");
    qcp.log_line(&["WARN", "server login failed", "user=qcp_md5"])
        .await;
    qcp.log_line(&["WARN", "refused client", "user=qcp_md5"])
        .await;

    // Nothing secret in the log.
    let log = read(&qcp.log);
    for secret in ["scram-pass", "not-md5-pass"] {
        assert!(!log.contains(secret), "{secret} in the log:\n{log}");
    }

    let out = run(
        QCP_CTRL,
        &["--socket", qcp.socket.to_str().unwrap(), "quit"],
    )
    .await;
    assert!(out.status.success());
    assert!(qcp.exited(GRACE).await.success());
    let _ = &qcp.dir;
}

/// The longest control_socket path the config accepts (107 bytes on Linux) works: qcp does
/// not need room for a longer temporary name next to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_socket_at_the_longest_accepted_path() {
    let mut qcp = start_qcp_with("", |dir| {
        let prefix = format!("{}/", dir.display());
        dir.join("s".repeat(107 - prefix.len()))
    })
    .await;
    assert_eq!(qcp.socket.as_os_str().len(), 107);
    let mode = std::fs::metadata(&qcp.socket).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "control socket mode {mode:o}");
    assert!(qcp.status().await.contains("state: running"));
    // Nothing but the socket and the files this test wrote is left in the directory.
    let mut names: Vec<String> = std::fs::read_dir(qcp.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let socket_name = qcp
        .socket
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let mut expected = vec!["qcp.log".to_owned(), "qcp.yaml".to_owned(), socket_name];
    expected.sort();
    assert_eq!(names, expected);
    let out = run(
        QCP_CTRL,
        &["--config", qcp.config.to_str().unwrap(), "quit"],
    )
    .await;
    assert!(out.status.success(), "{}", out.stderr);
    assert!(qcp.exited(GRACE).await.success());
    assert!(!qcp.socket.exists());
}

/// A second qcp with the same control socket refuses to start (the first keeps running); a
/// socket left behind by a killed qcp is replaced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_instance_is_refused_and_a_stale_socket_is_replaced() {
    let mut first = start_qcp("").await;
    let config = first.config.to_str().unwrap().to_owned();
    let second = run(QCP, &["--config", &config]).await;
    assert!(!second.status.success(), "a second qcp started");
    assert!(
        second.stderr.contains("another qcp instance is running")
            && second.stderr.contains("control_socket"),
        "{}",
        second.stderr
    );
    assert!(first.status().await.contains("state: running"));

    let pid = first.child.id().expect("qcp runs").to_string();
    assert!(run("kill", &["-KILL", &pid]).await.status.success());
    assert!(!first.exited(GRACE).await.success());
    assert!(first.socket.exists(), "a killed qcp leaves its socket");

    let mut again = Command::new(QCP)
        .args(["--config", &config])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start qcp again");
    let deadline = Instant::now() + RUN_LIMIT;
    loop {
        if let Some(status) = again.try_wait().unwrap() {
            panic!("qcp did not replace the stale socket: exited with {status}");
        }
        let out = run(QCP_CTRL, &["--config", &config, "status"]).await;
        if out.status.success() {
            assert!(out.stdout.contains("state: running"));
            break;
        }
        assert!(Instant::now() < deadline, "qcp did not start again");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let out = run(QCP_CTRL, &["--config", &config, "quit"]).await;
    assert!(out.status.success(), "{}", out.stderr);
    let status = tokio::time::timeout(GRACE, again.wait())
        .await
        .expect("qcp stops")
        .unwrap();
    assert!(status.success());
}

/// qcp listening on a Unix-domain socket (`DIR:PORT`): a client connects with libpq's
/// `host=DIR port=PORT` and is logged as `unix`; a socket left by a killed qcp is replaced, a
/// second qcp is refused, and SIGTERM removes the socket file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unix_socket_listener_is_replaced_after_a_crash_and_removed_at_exit() {
    let mut first = start_qcp_at(
        |dir| format!("{}:6543", dir.display()),
        "",
        |dir| dir.join("qcp.sock"),
    )
    .await;
    let dir = first.dir.path().display().to_string();
    let listening = first.dir.path().join(".s.PGSQL.6543");
    assert_eq!(first.addr, listening.display().to_string());
    let conninfo =
        format!("host={dir} port=6543 user=qcp_scram password=scram-pass dbname=qcp_test");
    let (db, _) = client(&conninfo).await;
    db.simple_query("SELECT 1").await.unwrap();
    first
        .log_line(&["INFO", "client connected", "peer=unix"])
        .await;
    drop(db);

    let config = first.config.to_str().unwrap().to_owned();
    let pid = first.child.id().expect("qcp runs").to_string();
    assert!(run("kill", &["-KILL", &pid]).await.status.success());
    assert!(!first.exited(GRACE).await.success());
    assert!(listening.exists(), "a killed qcp leaves its socket file");
    // Its control socket is left too: the next qcp replaces both.
    let mut again = Command::new(QCP)
        .args(["--config", &config])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start qcp again");
    let deadline = Instant::now() + RUN_LIMIT;
    let db = loop {
        if let Some(status) = again.try_wait().unwrap() {
            panic!("qcp did not replace the stale socket: exited with {status}");
        }
        if let Ok((db, connection)) =
            tokio_postgres::connect(&conninfo, tokio_postgres::NoTls).await
        {
            tokio::spawn(connection);
            break db;
        }
        assert!(Instant::now() < deadline, "qcp did not start again");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let row = db.query_one("SELECT 6 * 7", &[]).await.unwrap();
    assert_eq!(row.get::<_, i32>(0), 42);
    drop(db);

    let second = run(QCP, &["--config", &config]).await;
    assert!(!second.status.success(), "a second qcp started");
    assert!(
        second.stderr.contains("listening_address")
            && second.stderr.contains("another program is listening"),
        "{}",
        second.stderr
    );

    let pid = again.id().expect("qcp runs").to_string();
    assert!(run("kill", &["-TERM", &pid]).await.status.success());
    let status = tokio::time::timeout(GRACE, again.wait())
        .await
        .expect("qcp stops")
        .unwrap();
    assert!(status.success(), "qcp exited with {status}");
    assert!(!listening.exists(), "the socket file is removed at exit");
}

// ---- qcp-ctrl passwd --------------------------------------------------------------------------

/// Runs `qcp-ctrl passwd ARGS` with `input` on standard input (not a terminal).
async fn passwd(args: &[&str], input: &str) -> Ran {
    use tokio::io::AsyncWriteExt;
    let mut child = Command::new(QCP_CTRL)
        .arg("passwd")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("run qcp-ctrl passwd");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin
        .write_all(input.as_bytes())
        .await
        .expect("write the password");
    drop(stdin);
    let output = tokio::time::timeout(RUN_LIMIT, child.wait_with_output())
        .await
        .expect("qcp-ctrl passwd finishes")
        .expect("wait");
    Ran {
        status: output.status,
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// The secret `qcp-ctrl passwd` prints serves both sides: qcp checks clients with it, and
/// the same secret set on the server (ALTER ROLE ... PASSWORD 'SCRAM-SHA-256$...') lets qcp
/// log in there by reusing the client's proof; no plaintext password is stored anywhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_passwd_makes_a_secret_that_logs_in_through_qcp() {
    let out = passwd(&["qcp_passwd_user"], "pw-Ünïcode-1\n").await;
    assert!(out.status.success(), "{}", out.stderr);
    let secret = out
        .stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("password: \""))
        .and_then(|l| l.strip_suffix('"'))
        .unwrap_or_else(|| panic!("no password line in:\n{}", out.stdout))
        .to_owned();
    assert!(secret.starts_with("SCRAM-SHA-256$4096:"), "{secret}");

    // The same secret for the role on the server.
    let (admin, connection) = tokio_postgres::connect(
        &format!(
            "host={} port={} user=postgres password=qcp-super-pass dbname=qcp_test sslmode=disable",
            pg_addr().rsplit_once(':').unwrap().0,
            pg_addr().rsplit_once(':').unwrap().1
        ),
        tokio_postgres::NoTls,
    )
    .await
    .expect("connect as the superuser");
    tokio::spawn(connection);
    admin
        .batch_execute(&format!(
            "DO $$ BEGIN
               IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'qcp_passwd_user') THEN
                 CREATE ROLE qcp_passwd_user LOGIN;
               END IF;
             END $$;
             ALTER ROLE qcp_passwd_user LOGIN PASSWORD '{secret}';
             GRANT CONNECT ON DATABASE qcp_test TO qcp_passwd_user;"
        ))
        .await
        .expect("set the role's secret");

    let qcp = start_qcp(&out.stdout).await;
    let (db, _connection) = client(&qcp.conninfo("qcp_passwd_user", "pw-Ünïcode-1")).await;
    let row = db
        .query_one("SELECT current_user::text", &[])
        .await
        .expect("a query through qcp");
    assert_eq!(row.get::<_, String>(0), "qcp_passwd_user");
    let wrong = tokio_postgres::connect(
        &qcp.conninfo("qcp_passwd_user", "pw-unicode-1"),
        tokio_postgres::NoTls,
    )
    .await;
    assert!(wrong.is_err(), "another password must not log in");

    // An empty password is refused, and nothing is printed.
    let out = passwd(&["someone"], "\n").await;
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    assert!(out.stderr.contains("empty password"), "{}", out.stderr);
}

/// `log_format: json`: every line of the log is one JSON object, with the message among its
/// fields and the client's span (user, database) beside it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_are_one_object_per_line() {
    let mut qcp = start_qcp("log_format: json\n").await;
    let (db, connection) = client(&qcp.conninfo("qcp_scram", "scram-pass")).await;
    db.simple_query("SELECT 1").await.unwrap();
    drop(db);
    connection.await.unwrap().unwrap();
    qcp.log_line(&["client disconnected"]).await;
    let out = run(
        QCP_CTRL,
        &["--socket", qcp.socket.to_str().unwrap(), "quit"],
    )
    .await;
    assert!(out.status.success());
    assert!(qcp.exited(GRACE).await.success());
    let log = read(&qcp.log);
    let events: Vec<serde_json::Value> = log
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
        .collect();
    let message =
        |event: &serde_json::Value| event["fields"]["message"].as_str().map(str::to_owned);
    let started = events
        .iter()
        .find(|e| message(e).as_deref() == Some("qcp started"))
        .unwrap_or_else(|| panic!("no start event in:\n{log}"));
    assert_eq!(started["level"], "INFO", "{started}");
    assert!(started["timestamp"].is_string(), "{started}");
    let logged_in = events
        .iter()
        .find(|e| message(e).as_deref() == Some("client logged in"))
        .unwrap_or_else(|| panic!("no login event in:\n{log}"));
    assert_eq!(logged_in["span"]["user"], "qcp_scram", "{logged_in}");
    assert_eq!(logged_in["span"]["database"], "qcp_test", "{logged_in}");
}

/// Under systemd's Type=notify, qcp sends READY=1 on NOTIFY_SOCKET once it accepts clients.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_is_sent_to_systemd_once_listening() {
    let dir = scratch();
    let notify = dir.path().join("notify.sock");
    let socket = std::os::unix::net::UnixDatagram::bind(&notify).expect("bind NOTIFY_SOCKET");
    socket
        .set_read_timeout(Some(RUN_LIMIT))
        .expect("read timeout");
    let qcp = start_qcp_in(
        dir,
        |_| "127.0.0.1:0".to_owned(),
        "",
        |dir| dir.join("qcp.sock"),
        &[("NOTIFY_SOCKET", notify.as_path())],
    )
    .await;
    let mut buf = [0u8; 256];
    let n = socket.recv(&mut buf).expect("qcp notifies systemd");
    assert_eq!(&buf[..n], b"READY=1\n");
    // Ready means listening: a client gets in.
    let (db, _connection) = client(&qcp.conninfo("qcp_scram", "scram-pass")).await;
    db.simple_query("SELECT 1").await.unwrap();
}

/// packaging/qcp.service passes `systemd-analyze verify` without a warning (with the paths
/// pointed at the binaries just built), where systemd-analyze is installed.
#[tokio::test]
async fn the_systemd_unit_verifies() {
    let Ok(analyze) = which("systemd-analyze") else {
        eprintln!("systemd-analyze is not installed: the unit is not checked here");
        return;
    };
    let unit = include_str!("../../packaging/qcp.service");
    assert!(unit.contains("Type=notify"), "qcp sends READY=1: {unit}");
    let dir = scratch();
    let unit = unit
        .replace("/usr/local/bin/qcp", QCP)
        .replace("/etc/qcp/qcp.yaml", "/dev/null");
    let path = write(dir.path(), "qcp.service", &unit);
    let out = run(
        analyze.to_str().unwrap(),
        &["verify", path.to_str().unwrap()],
    )
    .await;
    assert!(
        out.status.success() && out.stderr.trim().is_empty(),
        "systemd-analyze verify: {}\n{}",
        out.status,
        out.stderr
    );
}

/// The first `name` on PATH.
fn which(name: &str) -> Result<PathBuf, ()> {
    let path = std::env::var_os("PATH").ok_or(())?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .ok_or(())
}
