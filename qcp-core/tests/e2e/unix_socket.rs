//! Unix-domain sockets: clients through qcp listening on one (psql, tokio-postgres, a cancel
//! request), qcp reaching the server over the server's own socket (written as a directory and
//! a port, or as the socket file), stale and occupied socket files.

use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::time::{Duration, Instant};

use qcp_core::config::Config;
use qcp_core::{Instance, LocalAddr, StartError};

use crate::support::*;

/// Starts qcp as `setup` says, but listening on `listening`, with `extra` top-level YAML
/// (such as `unix_socket_mode`); its control socket goes in `control_dir`.
fn start_listening(
    setup: &Setup,
    control_dir: &Path,
    listening: &str,
    extra: &str,
) -> Result<Instance, StartError> {
    let yaml = setup.yaml(control_dir).replace(
        "listening_address: 127.0.0.1:0\n",
        &format!("listening_address: {listening}\n{extra}"),
    );
    let config = Config::from_yaml(&yaml, "test config")
        .unwrap_or_else(|e| panic!("bad test config: {e}\n{yaml}"));
    qcp_core::start(config)
}

fn started(result: Result<Instance, StartError>) -> Instance {
    result.unwrap_or_else(|e| panic!("qcp starts: {e}"))
}

fn refused(result: Result<Instance, StartError>) -> String {
    match result {
        Ok(instance) => {
            stop_instance(instance);
            panic!("qcp started where it should have refused to")
        }
        Err(error) => error.to_string(),
    }
}

/// A libpq connection string to a socket directory and port, as the SCRAM test user.
fn socket_conninfo(dir: &str, port: u16) -> String {
    format!(
        "host={dir} port={port} user={} password={} dbname={DATABASE}",
        SCRAM_USER.0, SCRAM_USER.1
    )
}

/// The shared cluster's socket, written as its directory and port.
fn server_socket_dir_and_port() -> String {
    format!("{}:{}", pg_socket_dir(), pg_port())
}

/// The shared cluster's socket, written as the socket file.
fn server_socket_file() -> String {
    format!("{}/.s.PGSQL.{}", pg_socket_dir(), pg_port())
}

/// Runs `SELECT pg_sleep(30)` on `client`, cancels it with tokio-postgres's own cancel
/// request (to wherever the client connected), and checks that it ends with 57014 at once
/// and that the session goes on.
async fn cancel_a_sleep(client: tokio_postgres::Client) {
    let admin = admin().await;
    let pid: i32 = client
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .expect("query through qcp")
        .get(0);
    let token = client.cancel_token();
    let sleeper = tokio::spawn(async move {
        let outcome = client.simple_query("SELECT pg_sleep(30)").await;
        (client, outcome)
    });
    wait_until("the backend sleeps", Duration::from_secs(10), || async {
        backend_state(&admin, pid)
            .await
            .is_some_and(|(state, event)| state == "active" && event == "PgSleep")
    })
    .await;
    let started = Instant::now();
    token
        .cancel_query(tokio_postgres::NoTls)
        .await
        .expect("send cancel");
    let (client, outcome) = tokio::time::timeout(Duration::from_secs(5), sleeper)
        .await
        .expect("the query ends within 5 s")
        .unwrap();
    let error = outcome.expect_err("the query was cancelled");
    assert_eq!(sqlstate_of(&error).as_deref(), Some("57014"), "{error}");
    assert!(started.elapsed() < Duration::from_secs(5));
    let row = client.query_one("SELECT 7", &[]).await.unwrap();
    assert_eq!(row.get::<_, i32>(0), 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_connect_to_a_socket_directory_and_port() {
    let dir = scratch_dir("unix");
    let d = dir.path().display().to_string();
    // All local: clients to qcp and qcp to the server over Unix-domain sockets.
    let setup = Setup {
        servers: vec![(server_socket_dir_and_port(), 4)],
        ..Setup::session()
    };
    let instance = started(start_listening(
        &setup,
        dir.path(),
        &format!("{d}:6432"),
        "",
    ));
    let socket = dir.path().join(".s.PGSQL.6432");
    assert_eq!(
        instance.listening_address(),
        &LocalAddr::Unix(socket.clone())
    );
    assert_eq!(instance.local_addr(), None);
    let meta = std::fs::symlink_metadata(&socket).expect("the socket file exists");
    assert!(meta.file_type().is_socket());
    // unix_socket_mode's default, as PostgreSQL's and PgBouncer's.
    assert_eq!(meta.permissions().mode() & 0o777, 0o777);
    let status = instance.status();
    assert!(
        status.contains(&format!("listening_address: {}", socket.display())),
        "{status}"
    );

    // tokio-postgres with libpq's host=DIR port=PORT.
    let client = connect(&socket_conninfo(&d, 6432))
        .await
        .expect("tokio-postgres connects over the Unix socket");
    let row = client
        .query_one(
            "SELECT current_user::text, 6 * 7, inet_server_addr() IS NULL",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), SCRAM_USER.0);
    assert_eq!(row.get::<_, i32>(1), 42);
    assert!(
        row.get::<_, bool>(2),
        "the server connection is a Unix socket"
    );
    // A cancel request over qcp's socket, forwarded over the server's.
    cancel_a_sleep(client).await;

    // psql -h DIR -p PORT.
    let (ok, out, err) = psql_at(&d, 6432, &[], &["-At", "-c", "SELECT 'psql ' || 40 + 2"]).await;
    assert!(ok, "psql failed: {err}");
    assert_eq!(out.trim(), "psql 42");

    stop_instance(instance);
    assert!(!socket.exists(), "the socket file is removed at shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_file_path_with_its_own_mode() {
    let dir = scratch_dir("unix");
    let socket = dir.path().join("clients.sock");
    let instance = started(start_listening(
        &Setup::smart(),
        dir.path(),
        &socket.display().to_string(),
        "unix_socket_mode: 0700\n",
    ));
    let meta = std::fs::symlink_metadata(&socket).expect("the socket file exists");
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o700);
    // Nothing else is left next to it (it is bound in a private directory, then moved).
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !names.iter().any(|n| n.ends_with(".tmp")),
        "left over: {names:?}"
    );
    // A socket not named .s.PGSQL.PORT is for clients that take a path: speak the protocol
    // by hand (an SSLRequest is answered N).
    let mut stream = UnixStream::connect(&socket).expect("connect to the socket file");
    stream
        .write_all(&[0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f])
        .unwrap();
    let mut answer = [0u8; 1];
    stream.read_exact(&mut answer).unwrap();
    assert_eq!(&answer, b"N");
    drop(stream);
    stop_instance(instance);
    assert!(!socket.exists(), "the socket file is removed at shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_socket_file_is_replaced() {
    let dir = scratch_dir("unix");
    let d = dir.path().display().to_string();
    let socket = dir.path().join(".s.PGSQL.6432");
    // Left behind by a process that is gone: the file stays, nothing listens.
    drop(UnixListener::bind(&socket).unwrap());
    assert!(socket.exists());
    let instance = started(start_listening(
        &Setup::session(),
        dir.path(),
        &socket.display().to_string(),
        "",
    ));
    let client = connect(&socket_conninfo(&d, 6432))
        .await
        .expect("connects to the new socket");
    let row = client.query_one("SELECT 1", &[]).await.unwrap();
    assert_eq!(row.get::<_, i32>(0), 1);
    drop(client);
    stop_instance(instance);
    assert!(!socket.exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_occupied_socket_or_another_file_is_refused() {
    let dir = scratch_dir("unix");
    let d = dir.path().display().to_string();
    let control = scratch_dir("unix-ctl");
    let socket = dir.path().join(".s.PGSQL.6432");

    // Another program listens there.
    let holder = UnixListener::bind(&socket).unwrap();
    let text = refused(start_listening(
        &Setup::session(),
        control.path(),
        &format!("{d}:6432"),
        "",
    ));
    for part in [
        "listening_address",
        "another program is listening on",
        &socket.display().to_string(),
        "stop the program using it",
    ] {
        assert!(text.contains(part), "{text:?} should contain {part:?}");
    }
    // Its socket is left alone.
    assert!(UnixStream::connect(&socket).is_ok());
    drop(holder);
    std::fs::remove_file(&socket).unwrap();

    // A running qcp: a second one is refused, and the first goes on serving.
    let first = started(start_listening(
        &Setup::session(),
        dir.path(),
        &format!("{d}:6432"),
        "",
    ));
    let text = refused(start_listening(
        &Setup::session(),
        control.path(),
        &format!("{d}:6432"),
        "",
    ));
    assert!(text.contains("another program is listening"), "{text}");
    let client = connect(&socket_conninfo(&d, 6432))
        .await
        .expect("the first qcp still serves");
    client.query_one("SELECT 1", &[]).await.unwrap();
    drop(client);
    stop_instance(first);
    assert!(!socket.exists());

    // A file that is not a socket is never removed.
    let plain = dir.path().join("not-a-socket");
    std::fs::write(&plain, "keep me").unwrap();
    let text = refused(start_listening(
        &Setup::session(),
        control.path(),
        &plain.display().to_string(),
        "",
    ));
    for part in [
        "listening_address",
        "exists and is not a socket",
        "remove that file",
    ] {
        assert!(text.contains(part), "{text:?} should contain {part:?}");
    }
    assert_eq!(std::fs::read_to_string(&plain).unwrap(), "keep me");

    // A directory that does not exist.
    let text = refused(start_listening(
        &Setup::session(),
        control.path(),
        &format!("{d}/missing/qcp.sock"),
        "",
    ));
    assert!(
        text.contains("listening_address") && text.contains("create the directory"),
        "{text}"
    );
}

async fn server_over_its_unix_socket(setup: Setup) {
    let qcp = setup.start();
    let client = qcp.client().await;
    let row = client
        .query_one("SELECT inet_server_addr() IS NULL, 5 * 5", &[])
        .await
        .unwrap();
    assert!(
        row.get::<_, bool>(0),
        "the server connection is a Unix socket"
    );
    assert_eq!(row.get::<_, i32>(1), 25);
    // The client's cancel request goes to qcp over TCP, and from qcp to the server over its
    // Unix socket.
    cancel_a_sleep(client).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_server_at_a_socket_directory_and_port() {
    server_over_its_unix_socket(Setup {
        servers: vec![(server_socket_dir_and_port(), 4)],
        ..Setup::session()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smart_server_at_a_socket_file() {
    // Pool size 1: the sleep runs on the backend whose pid the client saw.
    server_over_its_unix_socket(Setup {
        servers: vec![(server_socket_file(), 1)],
        ..Setup::smart()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_server_socket_is_named_in_the_error() {
    let dir = scratch_dir("unix");
    let address = format!("{}:5432", dir.path().display());
    let qcp = Setup {
        servers: vec![(address.clone(), 1)],
        ..Setup::session()
    }
    .start();
    let error = connect(&qcp.conninfo(SCRAM_USER.0, SCRAM_USER.1, DATABASE))
        .await
        .expect_err("no server there");
    let text = error
        .as_db_error()
        .map(|e| e.message().to_owned())
        .unwrap_or_else(|| error.to_string());
    assert_eq!(sqlstate_of(&error).as_deref(), Some("08006"), "{text}");
    let socket = dir.path().join(".s.PGSQL.5432");
    assert!(
        text.contains(&address) && text.contains(&format!("socket \"{}\"", socket.display())),
        "{text}"
    );
}
