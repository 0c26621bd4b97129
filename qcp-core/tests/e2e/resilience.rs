//! What qcp does when things go wrong around it, against the real PostgreSQL: server
//! connections killed while pooled or linked, a whole server restarted under load, a server
//! that is down, an exhausted arena, and a graceful shutdown with clients inside
//! transactions.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::wire::Wire;
use crate::support::*;

/// The client's backend pid. A simple query: tokio-postgres closes a prepared statement
/// with a request that expects an answer, and an error arriving while that answer is awaited
/// is taken for it, which would hide the unsolicited FATAL these tests look for.
async fn terminate(admin: &tokio_postgres::Client, pid: i32) {
    let done: bool = admin
        .query_one("SELECT pg_terminate_backend($1)", &[&pid])
        .await
        .expect("pg_terminate_backend")
        .get(0);
    assert!(done, "backend {pid} was there to terminate");
    wait_until(&format!("backend {pid} is gone"), WAIT, || async {
        backend_state(admin, pid).await.is_none()
    })
    .await;
}

/// The outcome of a watched connection's task, which must end within `WAIT`.
async fn connection_end(
    task: tokio::task::JoinHandle<Result<(), tokio_postgres::Error>>,
) -> Result<(), tokio_postgres::Error> {
    tokio::time::timeout(WAIT, task)
        .await
        .expect("the connection ends (no hang)")
        .expect("connection task")
}

// ---------------------------------------------------------------------------------------
// pg_terminate_backend.
// ---------------------------------------------------------------------------------------

async fn terminated_while_idle_in_pool(setup: Setup) {
    let smart = setup.mode == "Smart";
    let qcp = setup
        .pool_size(1)
        .extra("timeouts:\n  query_wait: 3s\n")
        .start();
    let admin = admin().await;
    let a = qcp.client().await;
    let pid = pid_of(&a).await;
    if !smart {
        drop(a);
    }
    wait_until("the connection is idle in the pool", WAIT, || async {
        qcp.status_view().test_pool() == (0, 1, 0)
    })
    .await;
    terminate(&admin, pid).await;

    // The next client gets a fresh connection without noticing anything.
    let b = qcp.client().await;
    let fresh = pid_of(&b).await;
    assert_ne!(fresh, pid);
    assert_eq!(
        b.query_one("SELECT 6 * 7", &[])
            .await
            .unwrap()
            .get::<_, i32>(0),
        42
    );
    let opened = qcp.status_view().server_connections_opened;
    assert_eq!(opened, 2, "the dead one was replaced once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_server_terminated_while_pooled_is_replaced_transparently() {
    terminated_while_idle_in_pool(Setup::session()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smart_server_terminated_while_pooled_is_replaced_transparently() {
    terminated_while_idle_in_pool(Setup::smart()).await;
}

async fn terminated_while_linked(setup: Setup) {
    let qcp = setup
        .pool_size(1)
        .extra("timeouts:\n  query_wait: 3s\n")
        .start();
    let admin = admin().await;
    let conninfo = qcp.conninfo(SCRAM_USER.0, SCRAM_USER.1, DATABASE);

    // Killed while the client sits inside a transaction.
    let (a, a_connection) = connect_watched(&conninfo).await.unwrap();
    a.batch_execute("BEGIN").await.unwrap();
    let pid = pid_of(&a).await;
    terminate(&admin, pid).await;
    // The client hears PostgreSQL's own FATAL and its connection ends.
    let ended = connection_end(a_connection)
        .await
        .expect_err("the connection ends with an error");
    assert_eq!(sqlstate_of(&ended).as_deref(), Some("57P01"), "{ended}");
    let next = tokio::time::timeout(WAIT, a.simple_query("SELECT 1"))
        .await
        .expect("no hang");
    assert!(next.is_err());
    // The pool forgot it.
    wait_until("the pool dropped the connection", WAIT, || async {
        qcp.status_view().test_pool() == (0, 0, 0)
    })
    .await;

    // Killed while the client's query runs.
    let b = qcp.client().await;
    let pid_b = pid_of(&b).await;
    assert_ne!(pid_b, pid);
    let sleeper = tokio::spawn(async move { b.simple_query("SELECT pg_sleep(30)").await });
    wait_until("pg_sleep runs", WAIT, || async {
        backend_state(&admin, pid_b)
            .await
            .is_some_and(|(_, event)| event == "PgSleep")
    })
    .await;
    terminate(&admin, pid_b).await;
    let error = tokio::time::timeout(WAIT, sleeper)
        .await
        .expect("the query ends (no hang)")
        .unwrap()
        .expect_err("the query fails");
    assert_eq!(sqlstate_of(&error).as_deref(), Some("57P01"), "{error}");

    // Later clients get fresh connections (pool_size 1: the slot was freed).
    for _ in 0..3 {
        let c = qcp.client().await;
        let pid_c = pid_of(&c).await;
        assert!(pid_c != pid && pid_c != pid_b);
        c.batch_execute("BEGIN; SELECT 1; COMMIT").await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_server_terminated_while_linked_gives_a_clear_error() {
    terminated_while_linked(Setup::session()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smart_server_terminated_while_linked_gives_a_clear_error() {
    terminated_while_linked(Setup::smart()).await;
}

// ---------------------------------------------------------------------------------------
// The whole server restarted under load.
// ---------------------------------------------------------------------------------------

/// One qcp instance in front of the private cluster, with load running through it.
struct Load {
    qcp: Qcp,
    conninfo: String,
    loaders: Vec<tokio::task::JoinHandle<tokio_postgres::Error>>,
    long: tokio::task::JoinHandle<
        Result<Vec<tokio_postgres::SimpleQueryMessage>, tokio_postgres::Error>,
    >,
    pgbench: tokio::process::Child,
    bystander: tokio_postgres::Client,
    _script: tempfile::TempDir,
}

/// Starts `setup` in front of `cluster` with load: four clients running short transactions
/// in a loop, one long query, pgbench with two clients, and a client that logged in but
/// has asked nothing yet.
async fn start_load(mut setup: Setup, cluster: &PrivateCluster) -> Load {
    setup.servers = vec![(cluster.addr(), 8)];
    let qcp = setup
        .extra("timeouts:\n  query_wait: 5s\n  server_connect: 5s\n")
        .start();
    let conninfo = qcp.conninfo(SCRAM_USER.0, SCRAM_USER.1, DATABASE);
    let done = Arc::new(AtomicUsize::new(0));
    let mut loaders = Vec::new();
    for _ in 0..4 {
        let client = connect(&conninfo).await.unwrap();
        let done = Arc::clone(&done);
        loaders.push(tokio::spawn(async move {
            loop {
                let outcome = client
                    .batch_execute("BEGIN; SELECT pg_sleep(0.005); COMMIT")
                    .await;
                if let Err(error) = outcome {
                    return error;
                }
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let bystander = connect(&conninfo).await.unwrap();
    let long = connect(&conninfo).await.unwrap();
    let long = tokio::spawn(async move { long.simple_query("SELECT pg_sleep(60)").await });
    let script = scratch_dir("pgbench");
    let script_path = script.path().join("load.sql");
    std::fs::write(&script_path, "SELECT pg_sleep(0.005);\n").unwrap();
    let bindir = std::env::var("QCP_TEST_PG_BINDIR").unwrap();
    let pgbench = tokio::process::Command::new(std::path::Path::new(&bindir).join("pgbench"))
        .env("PGPASSWORD", SCRAM_USER.1)
        .env("PGSSLMODE", "disable")
        .args(["-n", "-c", "2", "-T", "120", "-h", "127.0.0.1", "-p"])
        .arg(qcp.addr.port().to_string())
        .args(["-U", SCRAM_USER.0, "-f"])
        .arg(&script_path)
        .arg(DATABASE)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("run pgbench");
    wait_until("the load is running", WAIT, || async {
        done.load(Ordering::Relaxed) >= 40 && qcp.status_view().test_pool().0 >= 7
    })
    .await;
    Load {
        qcp,
        conninfo,
        loaders,
        long,
        pgbench,
        bystander,
        _script: script,
    }
}

/// After the server stopped: every client in flight got an error, none hangs, and a new
/// client gets a clear error at once.
async fn check_load_failed(load: &mut Load) {
    for loader in load.loaders.drain(..) {
        let error = tokio::time::timeout(WAIT, loader)
            .await
            .expect("a loader ends with an error (no hang)")
            .unwrap();
        assert!(
            error.as_db_error().is_some() || error.is_closed(),
            "unexpected error: {error:?}"
        );
    }
    let long = tokio::time::timeout(WAIT, &mut load.long)
        .await
        .expect("the long query ends (no hang)")
        .unwrap();
    let error = long.expect_err("the long query fails");
    assert_eq!(sqlstate_of(&error).as_deref(), Some("57P01"), "{error}");
    let status = tokio::time::timeout(Duration::from_secs(30), load.pgbench.wait())
        .await
        .expect("pgbench ends (no hang)")
        .unwrap();
    assert!(!status.success(), "pgbench reports the failure");
    let mut stderr = String::new();
    tokio::io::AsyncReadExt::read_to_string(load.pgbench.stderr.as_mut().unwrap(), &mut stderr)
        .await
        .unwrap();
    assert!(stderr.contains("aborted"), "{stderr}");

    // While the server is down, a new client gets a clear error at once.
    let error = match connect(&load.conninfo).await {
        Ok(client) => client
            .query_one("SELECT 1", &[])
            .await
            .expect_err("the server is down"),
        Err(error) => error,
    };
    let code = sqlstate_of(&error);
    assert!(
        matches!(code.as_deref(), Some("08006") | Some("57P03")),
        "{error:?}"
    );
}

/// After the restart: new clients work (the first attempts may still find the server
/// starting up), and the client that had asked nothing never notices.
async fn check_load_recovered(load: Load) {
    let conninfo = &load.conninfo;
    wait_until(
        "a new client works after the restart",
        Duration::from_secs(30),
        || async {
            match connect(conninfo).await {
                Ok(client) => client.query_one("SELECT 1", &[]).await.is_ok(),
                Err(_) => false,
            }
        },
    )
    .await;
    load.bystander
        .batch_execute("BEGIN; SELECT 1; COMMIT")
        .await
        .expect("the bystander never notices the restart");
    let mut clients = Vec::new();
    for _ in 0..4 {
        let client = connect(conninfo).await.expect("connect after the restart");
        client
            .batch_execute("BEGIN; SELECT pg_sleep(0.001); COMMIT")
            .await
            .expect("query after the restart");
        clients.push(client);
    }
    drop(load.qcp);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_restart_under_load_errors_then_recovers_session_and_smart() {
    // One private cluster, with a Session-mode and a Smart-mode qcp in front of it.
    let cluster = PrivateCluster::start();
    let mut loads = Vec::new();
    for setup in [Setup::session(), Setup::smart()] {
        loads.push(start_load(setup, &cluster).await);
    }

    // Stop the server (fast: every session is terminated).
    let cluster = tokio::task::spawn_blocking(move || {
        cluster.stop();
        cluster
    })
    .await
    .unwrap();
    for load in &mut loads {
        check_load_failed(load).await;
    }

    let cluster = tokio::task::spawn_blocking(move || {
        cluster.start_again();
        cluster
    })
    .await
    .unwrap();
    for load in loads {
        check_load_recovered(load).await;
    }
    drop(cluster);
}

// ---------------------------------------------------------------------------------------
// Two servers, one of them down.
// ---------------------------------------------------------------------------------------

async fn one_server_down(mut setup: Setup) {
    let dead = format!("127.0.0.1:{}", free_port());
    let live = pg_addr();
    let live_port: i32 = live.rsplit_once(':').unwrap().1.parse().unwrap();
    // The dead server comes first: it is picked first while both pools are empty.
    setup.servers = vec![(dead, 3), (live, 3)];
    let qcp = setup.start();
    let admin = admin().await;

    let clients = [qcp.client().await, qcp.client().await, qcp.client().await];
    let mut pids = Vec::new();
    for client in &clients {
        // Inside a transaction, so even Smart mode holds three connections at once.
        client.batch_execute("BEGIN").await.expect("no error");
        let row = client
            .query_one("SELECT pg_backend_pid(), inet_server_port()", &[])
            .await
            .expect("no error");
        assert_eq!(row.get::<_, i32>(1), live_port);
        pids.push(row.get::<_, i32>(0));
    }
    pids.sort_unstable();
    pids.dedup();
    assert_eq!(pids.len(), 3, "three connections");
    let live_backends = backends_of(&admin, SCRAM_USER.0).await;
    for pid in &pids {
        assert!(
            live_backends.contains(pid),
            "backend {pid} is on the live server"
        );
    }
    let view = qcp.status_view();
    assert_eq!(view.test_pool(), (3, 0, 0), "{view:?}");
    assert_eq!(view.server_connections_opened, 3, "{view:?}");
    for client in &clients {
        client.batch_execute("COMMIT").await.unwrap();
    }
    drop(clients);
    // More clients, one after the other: still no error.
    for _ in 0..5 {
        let client = qcp.client().await;
        client.query_one("SELECT 1", &[]).await.expect("no error");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_with_one_server_down_uses_the_live_one() {
    one_server_down(Setup::session()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smart_with_one_server_down_uses_the_live_one() {
    one_server_down(Setup::smart()).await;
}

// ---------------------------------------------------------------------------------------
// Arena exhaustion.
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_arena_exhaustion_refuses_new_work_and_recovers() {
    // Four 1 KB chunks; one of them is reserved for clients that hold a server connection.
    let mut setup = Setup::session()
        .pool_size(8)
        .extra("timeouts:\n  query_wait: 1s\n");
    setup.arena = "arena:\n  chunk_size: 1KB\n  chunks_count: 4\n".into();
    let qcp = setup.start();
    let admin = admin().await;
    let conninfo = qcp.conninfo(SCRAM_USER.0, SCRAM_USER.1, DATABASE);

    // An established client (linked), and one logged in that has not asked anything yet.
    let established = qcp.client().await;
    let established_pid = pid_of(&established).await;
    let unlinked = qcp.client().await;

    // Three clients ask for a 16 MB row each and never read it: each stream holds a chunk.
    let app = "qcp-arena-reader";
    let mut readers = Vec::new();
    for _ in 0..3 {
        let mut reader = Wire::login(
            qcp.addr,
            SCRAM_USER.1,
            &[
                ("user", SCRAM_USER.0),
                ("database", DATABASE),
                ("application_name", app),
            ],
            Some(4096),
        )
        .await
        .expect("reader logs in");
        reader
            .send_query("SELECT repeat('x', 16 * 1024 * 1024)")
            .await;
        readers.push(reader);
    }
    wait_until("the readers' streams are stuck", WAIT, || async {
        let stuck: i64 = admin
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND wait_event = 'ClientWrite'",
                &[&app],
            )
            .await
            .unwrap()
            .get(0);
        stuck == 3 && qcp.status_view().arena_in_use == 3
    })
    .await;

    // New work is refused with a clear FATAL... A backend waits on ClientWrite now and then
    // while its stream still moves, and a moving stream gives its chunk back between
    // batches; so a login may still get in until the readers' socket buffers are full.
    let refused = std::sync::Mutex::new(None);
    wait_until("a login is refused for want of a chunk", WAIT, || async {
        let started = Instant::now();
        match connect(&conninfo).await {
            Ok(_) => false,
            Err(error) => {
                *refused.lock().unwrap() = Some((error, started.elapsed()));
                true
            }
        }
    })
    .await;
    let (error, took) = refused.into_inner().unwrap().expect("a login was refused");
    let db = error.as_db_error().expect("qcp's error");
    assert_eq!(db.code().code(), "53200", "{db:?}");
    assert_eq!(db.severity(), "FATAL");
    assert!(db.message().contains("arena"), "{db:?}");
    assert!(
        db.hint().unwrap_or_default().contains("chunks_count"),
        "{db:?}"
    );
    assert!(took < Duration::from_secs(5), "{took:?}");
    let error = unlinked
        .query_one("SELECT 1", &[])
        .await
        .expect_err("a first request is new work");
    assert_eq!(sqlstate_of(&error).as_deref(), Some("53200"), "{error}");
    // Those who gave up are no longer counted as waiting.
    let view = qcp.status_view();
    assert_eq!(view.arena_waiting, 0, "{view:?}");

    // ...while the established client keeps working, on the reserve.
    for n in 0..5i32 {
        let row = established
            .query_one("SELECT $1::int + 1, length(repeat('z', 100000))", &[&n])
            .await
            .unwrap_or_else(|e| panic!("established client works: {e:?}\n{}", qcp.status()));
        assert_eq!(row.get::<_, i32>(0), n + 1);
        assert_eq!(row.get::<_, i32>(1), 100_000);
    }
    assert_eq!(pid_of(&established).await, established_pid);
    let view = qcp.status_view();
    assert!(view.arena_in_use >= 3, "{view:?}");
    assert!(view.arena_exhausted >= 2, "{view:?}");
    assert!(
        qcp.status().contains("arena: 4 chunks of 1 KB"),
        "{}",
        qcp.status()
    );

    // The readers leave: their chunks come back, and new clients get in again.
    drop(readers);
    wait_until("the readers' chunks are back", WAIT, || async {
        qcp.status_view().arena_in_use == 0
    })
    .await;
    let fresh = connect(&conninfo).await.expect("a new client gets in");
    assert_eq!(
        fresh
            .query_one("SELECT length(repeat('w', 50000))", &[])
            .await
            .unwrap()
            .get::<_, i32>(0),
        50_000
    );
    established.query_one("SELECT 1", &[]).await.unwrap();
    wait_until("the readers' backends are gone", WAIT, || async {
        let left: i64 = admin
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1",
                &[&app],
            )
            .await
            .unwrap()
            .get(0);
        left == 0
    })
    .await;
}

// ---------------------------------------------------------------------------------------
// Graceful shutdown.
// ---------------------------------------------------------------------------------------

async fn shutdown_lets_transactions_finish(setup: Setup) {
    let table = format!("qcp_shutdown_{}", setup.mode.to_lowercase());
    let mut qcp = setup.start();
    let admin = admin().await;
    let conninfo = qcp.conninfo(SCRAM_USER.0, SCRAM_USER.1, DATABASE);
    let owner = qcp.client().await;
    owner
        .batch_execute(&format!(
            "DROP TABLE IF EXISTS {table}; CREATE TABLE {table} (n int)"
        ))
        .await
        .unwrap();
    drop(owner);

    let (busy, busy_connection) = connect_watched(&conninfo).await.unwrap();
    busy.batch_execute(&format!("BEGIN; INSERT INTO {table} VALUES (1)"))
        .await
        .unwrap();
    let busy_pid = pid_of(&busy).await;
    let (linked, linked_connection) = connect_watched(&conninfo).await.unwrap();
    let linked_pid = pid_of(&linked).await;
    let (fresh, fresh_connection) = connect_watched(&conninfo).await.unwrap();

    let stopper = tokio::task::spawn_blocking(move || qcp.stop());

    // Idle clients are told at once.
    for (name, connection) in [("linked", linked_connection), ("fresh", fresh_connection)] {
        let error = connection_end(connection)
            .await
            .expect_err("an idle client is closed with an error");
        assert_eq!(
            sqlstate_of(&error).as_deref(),
            Some("57P01"),
            "{name}: {error}"
        );
    }
    assert!(linked.simple_query("SELECT 1").await.is_err());
    assert!(fresh.simple_query("SELECT 1").await.is_err());
    // No new client gets anything done.
    let late = tokio::time::timeout(WAIT, async {
        connect(&conninfo).await?.simple_query("SELECT 1").await
    })
    .await
    .expect("a late client is not left hanging");
    assert!(late.is_err(), "a late client got in: {late:?}");

    // The client inside a transaction finishes it...
    busy.batch_execute(&format!("INSERT INTO {table} VALUES (2)"))
        .await
        .expect("the transaction goes on");
    busy.batch_execute("COMMIT").await.expect("COMMIT succeeds");
    // ...and is then told.
    let error = connection_end(busy_connection)
        .await
        .expect_err("then the client is closed with an error");
    assert_eq!(sqlstate_of(&error).as_deref(), Some("57P01"), "{error}");
    tokio::time::timeout(WAIT, stopper)
        .await
        .expect("stop() returns")
        .unwrap();

    // qcp closed its server connections on the way out.
    wait_until("qcp's server connections are closed", WAIT, || async {
        backend_state(&admin, busy_pid).await.is_none()
            && backend_state(&admin, linked_pid).await.is_none()
    })
    .await;
    let committed: i64 = admin
        .query_one(&format!("SELECT count(*) FROM {table}"), &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(committed, 2);
    admin
        .batch_execute(&format!("DROP TABLE {table}"))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_shutdown_lets_a_transaction_finish_then_closes() {
    shutdown_lets_transactions_finish(Setup::session()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smart_shutdown_lets_a_transaction_finish_then_closes() {
    shutdown_lets_transactions_finish(Setup::smart()).await;
}

/// Connections that send part of their start-up packet and stop hold no arena chunk and no
/// login slot: an established client goes on, and a new login gets in at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_sent_start_up_packets_hold_no_memory_and_block_nobody() {
    // 32 chunks: logins in progress may hold 8.
    let mut setup = Setup::smart().extra("timeouts:\n  query_wait: 1s\n");
    setup.arena = "arena:\n  chunk_size: 16KB\n  chunks_count: 32\n".into();
    let qcp = setup.start();
    let established = qcp.client().await;
    // Its login's chunk goes back once its relay thread has taken it over.
    wait_until("the established client holds no chunk", WAIT, || async {
        qcp.status_view().arena_in_use == 0
    })
    .await;
    let crowd = half_started_logins(&qcp, 40).await;
    wait_until("the crowd is logging in", WAIT, || async {
        qcp.snapshot().login_clients == 40
    })
    .await;
    assert_eq!(
        qcp.status_view().arena_in_use,
        0,
        "no chunk for half a packet"
    );
    established
        .simple_query("SELECT 1")
        .await
        .expect("the established client goes on");
    let started = Instant::now();
    let client = qcp.client().await;
    client.simple_query("SELECT 1").await.expect("a new login");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    drop(crowd);
}

/// Clients that send their start-up packet and then stall in the password exchange hold at
/// most a quarter of the arena: an established client goes on working, a new login beyond
/// that share is told why instead of waiting for a chunk, and logins work again once the
/// crowd leaves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_logins_cannot_starve_established_clients() {
    // 32 chunks: logins in progress may hold 8.
    let mut setup = Setup::smart().extra("timeouts:\n  query_wait: 1s\n");
    setup.arena = "arena:\n  chunk_size: 16KB\n  chunks_count: 32\n".into();
    let qcp = setup.start();
    let established = qcp.client().await;

    // 40 connections send a start-up packet, and never answer the password request.
    let crowd = stalled_after_start_up(&qcp, 40).await;
    wait_until("the stalled logins hold their share", WAIT, || async {
        qcp.status_view().arena_in_use == 8
    })
    .await;

    // The established client's traffic still finds chunks, large results included.
    for n in 0..20 {
        let row = established
            .query_one("SELECT $1::int, repeat('y', 100000)", &[&n])
            .await
            .expect("an established client is not starved");
        assert_eq!(row.get::<_, i32>(0), n);
    }
    // The established client's last chunk goes back just after it read its answer; the
    // crowd still holds its 8 and no more.
    wait_until("only the crowd's chunks are in use", WAIT, || async {
        qcp.status_view().arena_in_use == 8
    })
    .await;

    // A new login waits for a login slot at most query_wait, then hears why.
    let started = Instant::now();
    let error = connect(&qcp.conninfo(SCRAM_USER.0, SCRAM_USER.1, DATABASE))
        .await
        .expect_err("no login slot is free");
    assert_eq!(sqlstate_of(&error).as_deref(), Some("53300"), "{error}");
    assert!(
        format!("{error:?}").contains("logging in at once"),
        "{error:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));

    // The crowd leaves: logins work again.
    drop(crowd);
    wait_until("the crowd's chunks are back", WAIT, || async {
        qcp.status_view().arena_in_use == 0
    })
    .await;
    let client = qcp.client().await;
    client
        .simple_query("SELECT 1")
        .await
        .expect("a new login works");
}

/// A login flood: a thousand connections that never finish their start-up packet and three
/// hundred that fail their password, at once. A legitimate client still logs in within a
/// second, the arena holds nothing for the half-sent packets, and qcp's memory grows by a
/// bounded amount.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_flood_leaves_room_for_legitimate_clients() {
    // md5: the failing clients' own hashing costs this test process next to nothing (a
    // SCRAM client's PBKDF2 in a debug build would make the test time itself).
    let mut setup = Setup::smart();
    setup.auth_method = "md5";
    let qcp = setup.start();
    // The pool's first login opens its server connection and learns the greeting: done
    // before the flood, so the timed login below measures the login itself.
    qcp.client()
        .await
        .simple_query("SELECT 1")
        .await
        .expect("warm-up");
    let before = resident_bytes();
    let half = half_started_logins(&qcp, 1000).await;
    // Wrong passwords, all at once (each a whole md5 exchange that fails).
    let conninfo = qcp.conninfo(MD5_USER.0, "wrong", DATABASE);
    let failing: Vec<_> = (0..300)
        .map(|_| {
            let conninfo = conninfo.clone();
            tokio::spawn(
                async move { connect(&conninfo).await.err().and_then(|e| sqlstate_of(&e)) },
            )
        })
        .collect();
    wait_until("the half-sent crowd is logging in", WAIT, || async {
        qcp.snapshot().login_clients >= 1000
    })
    .await;
    // In the middle of it: a legitimate login, timed.
    let started = Instant::now();
    let client = qcp.client().await;
    client
        .simple_query("SELECT 1")
        .await
        .expect("legitimate query");
    let took = started.elapsed();
    eprintln!("a legitimate login during the flood took {took:?}");
    assert!(
        took < Duration::from_secs(1),
        "a legitimate login took {took:?}"
    );
    // Logins in progress (the failing ones) hold at most their share of the arena.
    let arena = qcp.status_view().arena_in_use;
    assert!(
        arena <= 64,
        "logins hold at most a quarter of 256 chunks: {arena}"
    );
    for task in failing {
        assert_eq!(task.await.expect("join").as_deref(), Some("28P01"));
    }
    // Once they are done, the thousand half-sent packets (still connected) hold none.
    wait_until(
        "only the half-sent crowd is left, holding no chunk",
        WAIT,
        || async { qcp.status_view().arena_in_use == 0 },
    )
    .await;
    assert!(qcp.snapshot().login_clients >= 1000);
    // 1300 connections' worth of sockets, tasks and buffers on both sides of this process:
    // a few tens of KB each at most.
    let grown = resident_bytes().saturating_sub(before);
    assert!(grown < 96 << 20, "memory grew by {grown} bytes");
    drop(half);
}

/// This process's resident memory, from /proc.
fn resident_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .expect("VmRSS")
}

/// `n` connections that send a whole start-up packet (the SCRAM user, the test database)
/// and then never answer qcp's password request.
async fn stalled_after_start_up(qcp: &Qcp, n: usize) -> Vec<tokio::net::TcpStream> {
    let mut body = 196_608u32.to_be_bytes().to_vec();
    for (key, value) in [("user", SCRAM_USER.0), ("database", DATABASE)] {
        body.extend_from_slice(key.as_bytes());
        body.push(0);
        body.extend_from_slice(value.as_bytes());
        body.push(0);
    }
    body.push(0);
    let mut packet = ((body.len() + 4) as u32).to_be_bytes().to_vec();
    packet.extend_from_slice(&body);
    let mut crowd = Vec::new();
    for _ in 0..n {
        let mut raw = tokio::net::TcpStream::connect(qcp.addr)
            .await
            .expect("connect");
        tokio::io::AsyncWriteExt::write_all(&mut raw, &packet)
            .await
            .expect("send the start-up packet");
        crowd.push(raw);
    }
    crowd
}

/// A login in progress counts toward `limits.max_client_connections`: connections that
/// never finish their start-up cannot take qcp past the limit, and once they leave, logins
/// work again.
#[tokio::test]
async fn logins_in_progress_count_toward_max_client_connections() {
    let qcp = Setup::smart()
        .extra("limits:\n  max_client_connections: 3\n")
        .start();
    let established = qcp.client().await;
    // Two connections that send half a start-up packet and stop: with the established
    // client, three.
    let crowd = half_started_logins(&qcp, 2).await;
    wait_until("both count as logging in", WAIT, || async {
        qcp.snapshot().login_clients == 2
    })
    .await;
    let error = connect(&qcp.conninfo(SCRAM_USER.0, SCRAM_USER.1, DATABASE))
        .await
        .expect_err("a fourth connection is refused");
    assert_eq!(sqlstate_of(&error).as_deref(), Some("53300"), "{error}");
    established
        .simple_query("SELECT 1")
        .await
        .expect("the established client goes on");
    drop(crowd);
    wait_until("the crowd has left", WAIT, || async {
        qcp.snapshot().login_clients == 0
    })
    .await;
    let client = connect(&qcp.conninfo(SCRAM_USER.0, SCRAM_USER.1, DATABASE))
        .await
        .expect("logins work again");
    client.simple_query("SELECT 1").await.expect("query");
}

/// `n` connections that send the first four bytes of a start-up packet and stop there.
async fn half_started_logins(qcp: &Qcp, n: usize) -> Vec<tokio::net::TcpStream> {
    let mut crowd = Vec::new();
    for _ in 0..n {
        let mut raw = tokio::net::TcpStream::connect(qcp.addr)
            .await
            .expect("connect");
        tokio::io::AsyncWriteExt::write_all(&mut raw, &[0, 0, 0, 80])
            .await
            .expect("send four bytes");
        crowd.push(raw);
    }
    crowd
}
