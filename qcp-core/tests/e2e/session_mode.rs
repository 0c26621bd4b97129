//! Session mode against the real PostgreSQL (and the Smart-mode counterparts where the same
//! behaviour is expected): when a client gets its server connection, reset and reuse, waiting
//! in line, 50 MB messages, disconnects mid-transaction, start-up parameters and cancels.

use std::time::{Duration, Instant};

use tokio_postgres::SimpleQueryMessage;

use crate::support::wire::*;
use crate::support::*;

/// The first column of the first row of a simple query's answer.
fn first_value(messages: &[SimpleQueryMessage]) -> String {
    messages
        .iter()
        .find_map(|m| match m {
            SimpleQueryMessage::Row(row) => Some(row.get(0).expect("not null").to_owned()),
            _ => None,
        })
        .expect("a row")
}

async fn show(client: &tokio_postgres::Client, name: &str) -> String {
    first_value(
        &client
            .simple_query(&format!("SHOW {name}"))
            .await
            .unwrap_or_else(|e| panic!("SHOW {name}: {e}")),
    )
}

fn mode_name(setup: &Setup) -> String {
    setup.mode.to_lowercase()
}

// ---------------------------------------------------------------------------------------
// Getting, keeping and giving back the server connection.
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_connection_is_taken_at_first_request_and_kept_until_disconnect() {
    let qcp = Setup::session().start();
    let admin = admin().await;

    let a = qcp.client().await;
    // The pool's first login opens one connection to learn the server's parameters; it sits
    // idle in the pool: the client holds nothing until its first request.
    let view = qcp.status_view();
    assert_eq!((view.clients, view.active), (1, 0), "{view:?}");
    assert_eq!(view.test_pool(), (0, 1, 0), "{view:?}");
    let opened = view.server_connections_opened;

    // Another login opens no server connection either.
    let b = qcp.client().await;
    let view = qcp.status_view();
    assert_eq!((view.clients, view.active), (2, 0), "{view:?}");
    assert_eq!(view.server_connections_opened, opened, "{view:?}");

    // The first request links A to a server connection...
    let pid_a = pid_of(&a).await;
    let view = qcp.status_view();
    assert_eq!(view.active, 1, "{view:?}");
    assert_eq!(view.test_pool(), (1, 0, 0), "{view:?}");
    let (state, _) = backend_state(&admin, pid_a)
        .await
        .expect("A's backend is there");
    assert_eq!(state, "idle");
    assert!(backends_of(&admin, SCRAM_USER.0).await.contains(&pid_a));

    // ...which it keeps, across statements and transactions, even when idle.
    for _ in 0..5 {
        assert_eq!(pid_of(&a).await, pid_a);
    }
    a.batch_execute("BEGIN; SELECT 1; COMMIT").await.unwrap();
    assert_eq!(pid_of(&a).await, pid_a);

    // B gets its own connection while A holds one.
    let pid_b = pid_of(&b).await;
    assert_ne!(pid_b, pid_a);
    let view = qcp.status_view();
    assert_eq!(view.active, 2, "{view:?}");
    assert_eq!(view.test_pool(), (2, 0, 0), "{view:?}");
    assert_eq!(pid_of(&a).await, pid_a);

    // When A leaves, its connection goes back to the pool (reset, not closed)...
    drop(a);
    wait_until(
        "A's server connection is back in the pool",
        WAIT,
        || async { qcp.status_view().test_pool() == (1, 1, 0) },
    )
    .await;
    assert_eq!(qcp.status_view().active, 1);
    assert!(backend_state(&admin, pid_a).await.is_some());

    // ...and the next client of the same database/user gets it.
    let c = qcp.client().await;
    assert_eq!(pid_of(&c).await, pid_a);
    assert_eq!(pid_of(&b).await, pid_b);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_reset_hides_one_clients_state_from_the_next() {
    let qcp = Setup::session().pool_size(1).start();
    let admin = admin().await;

    // Client A is a psql process that leaves state of every kind behind.
    let (ok, out, err) = psql(
        &qcp,
        &[],
        &[
            "-At",
            "-c",
            "CREATE TEMP TABLE qcp_reset_tmp (x int)",
            "-c",
            "INSERT INTO qcp_reset_tmp VALUES (1)",
            "-c",
            "SET work_mem = '7MB'",
            "-c",
            "SET application_name = 'left-by-a'",
            "-c",
            "SELECT set_config('qcp_test.marker', 'left-by-a', false)",
            "-c",
            "PREPARE qcp_reset_stmt AS SELECT 1",
            "-c",
            "LISTEN qcp_reset_channel",
            "-c",
            "SELECT pg_advisory_lock(4242)",
            "-c",
            "SELECT 'pid=' || pg_backend_pid()",
        ],
    )
    .await;
    assert!(ok, "psql failed: {err}");
    let pid_a: i32 = out
        .lines()
        .find_map(|l| l.strip_prefix("pid="))
        .expect("psql printed its backend pid")
        .parse()
        .unwrap();

    // pool_size 1: B must get the very same backend, after the reset.
    let b = qcp.client().await;
    assert_eq!(pid_of(&b).await, pid_a, "B reuses A's backend");
    let row = b
        .query_one(
            "SELECT (SELECT count(*) FROM pg_class WHERE relname = 'qcp_reset_tmp'), \
                    current_setting('work_mem'), \
                    current_setting('application_name'), \
                    coalesce(current_setting('qcp_test.marker', true), ''), \
                    (SELECT count(*) FROM pg_prepared_statements WHERE name = 'qcp_reset_stmt'), \
                    (SELECT count(*) FROM pg_listening_channels())",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 0, "A's temp table is gone");
    assert_ne!(row.get::<_, String>(1), "7MB", "A's SET is reset");
    assert_ne!(
        row.get::<_, String>(2),
        "left-by-a",
        "A's application_name is reset"
    );
    assert_eq!(row.get::<_, String>(3), "", "A's custom setting is reset");
    assert_eq!(row.get::<_, i64>(4), 0, "A's prepared statement is gone");
    assert_eq!(row.get::<_, i64>(5), 0, "A's LISTEN is gone");
    let b_temp = b
        .query_one("SELECT to_regclass('pg_temp.qcp_reset_tmp') IS NULL", &[])
        .await
        .unwrap();
    assert!(b_temp.get::<_, bool>(0));
    let locks: i64 = admin
        .query_one(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = $1",
            &[&pid_a],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(locks, 0, "A's advisory lock is released");
    // B can create the same temp table: nothing of A's is left.
    b.batch_execute("CREATE TEMP TABLE qcp_reset_tmp (y text)")
        .await
        .unwrap();
}

// ---------------------------------------------------------------------------------------
// Waiting in line.
// ---------------------------------------------------------------------------------------

async fn waiters_are_served_first_come_first_served(setup: Setup) {
    let qcp = setup.pool_size(1).start();
    let holder = qcp.client().await;
    holder.batch_execute("BEGIN").await.unwrap();
    let pid = pid_of(&holder).await;

    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel();
    let mut releases = Vec::new();
    for (index, name) in ["b", "c", "d"].into_iter().enumerate() {
        let client = qcp.client().await;
        let (release_tx, release_rx) = tokio::sync::oneshot::channel::<()>();
        releases.push(release_tx);
        let done_tx = done_tx.clone();
        tokio::spawn(async move {
            client.batch_execute("BEGIN").await.unwrap();
            let pid = pid_of(&client).await;
            done_tx.send((name, pid)).unwrap();
            let _ = release_rx.await;
            client.batch_execute("COMMIT").await.unwrap();
        });
        // Queue them in a known order.
        wait_until(&format!("{name} waits for the pool"), WAIT, || async {
            qcp.status_view().test_pool().2 == index as u64 + 1
        })
        .await;
    }
    assert_eq!(qcp.status_view().waiting, 3);
    // Nobody got anything while the holder holds the only connection.
    assert!(done_rx.try_recv().is_err());

    holder.batch_execute("COMMIT").await.unwrap();
    drop(holder);
    for (expected, release) in ["b", "c", "d"].into_iter().zip(releases) {
        let (name, got) = tokio::time::timeout(WAIT, done_rx.recv())
            .await
            .expect("the next waiter is served")
            .unwrap();
        assert_eq!(name, expected, "first come, first served");
        assert_eq!(got, pid, "pool_size 1: the same backend");
        assert!(done_rx.try_recv().is_err(), "only one waiter at a time");
        release.send(()).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_waiters_are_served_first_come_first_served() {
    waiters_are_served_first_come_first_served(Setup::session()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smart_waiters_are_served_first_come_first_served() {
    waiters_are_served_first_come_first_served(Setup::smart()).await;
}

async fn waiter_times_out_with_53300(setup: Setup) {
    let qcp = setup
        .pool_size(1)
        .extra("timeouts:\n  query_wait: 1s\n")
        .start();
    let holder = qcp.client().await;
    holder.batch_execute("BEGIN").await.unwrap();
    let pid = pid_of(&holder).await;

    let waiter = qcp.client().await;
    let started = Instant::now();
    let error = waiter
        .query_one("SELECT 1", &[])
        .await
        .expect_err("no connection frees up within query_wait");
    let waited = started.elapsed();
    let db = error.as_db_error().expect("an error from qcp");
    assert_eq!(db.code().code(), "53300", "{db:?}");
    assert_eq!(db.severity(), "FATAL");
    assert!(db.message().contains("query_wait"), "{db:?}");
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(5),
        "waited {waited:?}"
    );
    // The waiter's connection is closed, and it is no longer counted as waiting.
    assert!(waiter.simple_query("SELECT 1").await.is_err());
    let view = qcp.status_view();
    assert_eq!((view.waiting, view.test_pool().2), (0, 0), "{view:?}");

    // The holder carries on, and a later client gets the connection once it is free.
    assert_eq!(pid_of(&holder).await, pid);
    holder.batch_execute("COMMIT").await.unwrap();
    drop(holder);
    let next = qcp.client().await;
    assert_eq!(pid_of(&next).await, pid);
    assert_eq!(qcp.status_view().test_pool().2, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_waiter_times_out_with_53300_and_others_carry_on() {
    waiter_times_out_with_53300(Setup::session()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smart_waiter_times_out_with_53300_and_others_carry_on() {
    waiter_times_out_with_53300(Setup::smart()).await;
}

/// One timer serves every queued client: a client queued later than another still gets its
/// own full `query_wait`, neither cut short when the first one's wait ends nor forgotten.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_waiter_gets_its_own_full_query_wait() {
    let qcp = Setup::smart()
        .pool_size(1)
        .extra("timeouts:\n  query_wait: 1s\n")
        .start();
    let holder = qcp.client().await;
    holder.batch_execute("BEGIN").await.unwrap();
    let first = qcp.client().await;
    let second = qcp.client().await;

    let wait = |client: tokio_postgres::Client| async move {
        let started = Instant::now();
        let error = client
            .query_one("SELECT 1", &[])
            .await
            .expect_err("no connection frees up within query_wait");
        (sqlstate_of(&error), started.elapsed(), Instant::now())
    };
    let first = tokio::spawn(wait(first));
    wait_until(
        "the first client is queued",
        Duration::from_secs(10),
        || async { qcp.status_view().waiting == 1 },
    )
    .await;
    // The point is a later deadline: queue the second client 600 ms after the first.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let second = tokio::spawn(wait(second));

    type Outcome = (Option<String>, Duration, Instant);
    let ended = |task: tokio::task::JoinHandle<Outcome>| async move {
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("the wait ends")
            .unwrap()
    };
    let (first_code, first_waited, first_ended) = ended(first).await;
    let (second_code, second_waited, second_ended) = ended(second).await;
    assert_eq!(first_code.as_deref(), Some("53300"));
    assert_eq!(second_code.as_deref(), Some("53300"));
    for waited in [first_waited, second_waited] {
        assert!(
            waited >= Duration::from_millis(900) && waited < Duration::from_secs(5),
            "waited {waited:?}"
        );
    }
    assert!(
        second_ended >= first_ended + Duration::from_millis(400),
        "the second wait ended with the first: {:?} after it",
        second_ended.saturating_duration_since(first_ended)
    );
    assert_eq!(qcp.status_view().waiting, 0);
    holder.batch_execute("COMMIT").await.unwrap();
}

// ---------------------------------------------------------------------------------------
// 50 MB messages through 16 KB chunks.
// ---------------------------------------------------------------------------------------

const BIG: usize = 50 * 1024 * 1024;

async fn fifty_megabytes_each_way(setup: Setup) {
    let qcp = setup.start();
    assert!(qcp.status().contains("chunks of 16 KB"), "{}", qcp.status());
    let client = qcp.client().await;

    // A 50 MB simple query.
    let sql = format!("SELECT length($${}$$)", "q".repeat(BIG));
    let answer = client.simple_query(&sql).await.expect("50 MB query");
    assert_eq!(first_value(&answer), BIG.to_string());
    drop(sql);

    // A 50 MB row.
    let answer = client
        .simple_query("SELECT repeat('x', 50 * 1024 * 1024), 'after'")
        .await
        .expect("50 MB row");
    let row = answer
        .iter()
        .find_map(|m| match m {
            SimpleQueryMessage::Row(row) => Some(row),
            _ => None,
        })
        .expect("a row");
    let value = row.get(0).unwrap();
    assert_eq!(value.len(), BIG);
    assert!(value == "x".repeat(BIG), "the row arrives intact");
    assert_eq!(row.get(1), Some("after"));

    // The same row through the extended protocol, then the session goes on.
    let row = client
        .query_one("SELECT repeat('y', $1)", &[&(BIG as i32)])
        .await
        .unwrap();
    let value: &str = row.get(0);
    assert_eq!(value.len(), BIG);
    assert!(value == "y".repeat(BIG), "the row arrives intact");
    assert_eq!(
        client
            .query_one("SELECT 41 + 1", &[])
            .await
            .unwrap()
            .get::<_, i32>(0),
        42
    );
    // The 50 MB went through a few 16 KB chunks at a time, and every chunk went back.
    wait_until("the arena is unused", WAIT, || async {
        qcp.status_view().arena_in_use == 0
    })
    .await;
    let peak = qcp.status_view().arena_peak;
    assert!(peak <= 8, "streamed, not buffered: peak {peak} chunks");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_relays_50mb_query_and_50mb_row() {
    fifty_megabytes_each_way(Setup::session()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smart_relays_50mb_query_and_50mb_row() {
    fifty_megabytes_each_way(Setup::smart()).await;
}

// ---------------------------------------------------------------------------------------
// Disconnecting mid-transaction.
// ---------------------------------------------------------------------------------------

/// Waits until backend `pid` is gone or at least no longer inside a transaction.
async fn wait_not_in_transaction(admin: &tokio_postgres::Client, pid: i32) {
    wait_until(
        &format!("backend {pid} leaves its transaction"),
        WAIT,
        || async {
            match backend_state(admin, pid).await {
                None => true,
                Some((state, _)) => state == "idle",
            }
        },
    )
    .await;
}

async fn disconnect_mid_transaction_leaves_nothing(setup: Setup) {
    let mode = mode_name(&setup);
    let table = format!("qcp_midtx_{mode}");
    let qcp = setup.pool_size(2).start();
    let admin = admin().await;
    let owner = qcp.client().await;
    owner
        .batch_execute(&format!(
            "DROP TABLE IF EXISTS {table}; CREATE TABLE {table} (id int PRIMARY KEY, note text); \
             INSERT INTO {table} VALUES (1, 'one'), (2, 'two'), (3, 'three')"
        ))
        .await
        .unwrap();
    drop(owner);

    // 1. BEGIN; INSERT; then the client says goodbye (Terminate) mid-transaction.
    let a = qcp.client().await;
    a.batch_execute(&format!("BEGIN; INSERT INTO {table} VALUES (100, 'ghost')"))
        .await
        .unwrap();
    let pid_a = pid_of(&a).await;
    assert_eq!(
        backend_state(&admin, pid_a).await.unwrap().0,
        "idle in transaction"
    );
    drop(a);
    wait_not_in_transaction(&admin, pid_a).await;

    // 2. A row lock held, then the TCP connection just drops (no Terminate).
    let mut b = Wire::open(&qcp).await;
    let result = b
        .query_result(&format!(
            "BEGIN; SELECT note FROM {table} WHERE id = 1 FOR UPDATE"
        ))
        .await;
    assert!(result.errors.is_empty(), "{:?}", result.errors);
    assert_eq!(result.ready, Some(b'T'));
    let pid_b: i32 = b
        .query_result("SELECT pg_backend_pid()")
        .await
        .value()
        .parse()
        .unwrap();
    drop(b);
    wait_not_in_transaction(&admin, pid_b).await;

    // 3. A row lock held and a long query running, then the TCP connection drops: qcp
    // cancels the query rather than waiting for it (30 s) to notice.
    let mut c = Wire::open(&qcp).await;
    let result = c
        .query_result(&format!(
            "BEGIN; SELECT note FROM {table} WHERE id = 2 FOR UPDATE"
        ))
        .await;
    assert!(result.errors.is_empty(), "{:?}", result.errors);
    let pid_c: i32 = c
        .query_result("SELECT pg_backend_pid()")
        .await
        .value()
        .parse()
        .unwrap();
    c.send_query("SELECT pg_sleep(30)").await;
    wait_running(&admin, pid_c, "PgSleep").await;
    let dropped = Instant::now();
    drop(c);
    wait_until("the abandoned backend goes away", WAIT, || async {
        backend_state(&admin, pid_c).await.is_none()
    })
    .await;
    assert!(dropped.elapsed() < Duration::from_secs(5));

    // Nothing is left behind: no open transaction, no lock, no inserted row.
    for pid in [pid_a, pid_b, pid_c] {
        if let Some((state, _)) = backend_state(&admin, pid).await {
            assert_eq!(state, "idle", "backend {pid}");
        }
    }
    let other = qcp.client().await;
    other.batch_execute("BEGIN").await.unwrap();
    let locked = other
        .query(
            &format!("SELECT id FROM {table} WHERE id IN (1, 2) ORDER BY id FOR UPDATE NOWAIT"),
            &[],
        )
        .await
        .expect("the row locks are free at once");
    assert_eq!(locked.len(), 2);
    let ghosts: i64 = other
        .query_one(&format!("SELECT count(*) FROM {table} WHERE id = 100"), &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(ghosts, 0, "the uncommitted insert is not visible");
    other.batch_execute("COMMIT").await.unwrap();
    let direct: i64 = admin
        .query_one(&format!("SELECT count(*) FROM {table} WHERE id = 100"), &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(direct, 0);
    drop(other);
    let idle_in_tx: i64 = admin
        .query_one(
            "SELECT count(*) FROM pg_stat_activity WHERE pid = ANY($1) AND state LIKE 'idle in transaction%'",
            &[&vec![pid_a, pid_b, pid_c]],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(idle_in_tx, 0);
    admin
        .batch_execute(&format!("DROP TABLE {table}"))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_disconnect_mid_transaction_leaves_no_transaction_or_lock() {
    disconnect_mid_transaction_leaves_nothing(Setup::session()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smart_disconnect_mid_transaction_leaves_no_transaction_or_lock() {
    disconnect_mid_transaction_leaves_nothing(Setup::smart()).await;
}

// ---------------------------------------------------------------------------------------
// Start-up parameters.
// ---------------------------------------------------------------------------------------

const HOSTILE: &str = "x'); DROP TABLE qcp_hostile_t; --\\";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_startup_parameters_reach_the_server_connection() {
    let qcp = Setup::session().start();
    let mut wire = Wire::open_with(
        &qcp,
        &[
            ("application_name", "qcp-startup-test"),
            ("TimeZone", "Asia/Tokyo"),
            ("DateStyle", "SQL, DMY"),
            ("search_path", "qcp_no_such_schema, public"),
            ("options", "-c statement_timeout=1234"),
        ],
    )
    .await;
    // The greeting already shows the client's own values.
    let greeted = |name: &str| {
        wire.greeting
            .params
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    assert_eq!(
        greeted("application_name").as_deref(),
        Some("qcp-startup-test")
    );
    assert_eq!(greeted("TimeZone").as_deref(), Some("Asia/Tokyo"));

    assert_eq!(
        wire.value("SHOW application_name").await,
        "qcp-startup-test"
    );
    assert_eq!(wire.value("SHOW TimeZone").await, "Asia/Tokyo");
    assert_eq!(wire.value("SHOW DateStyle").await, "SQL, DMY");
    assert_eq!(
        wire.value("SHOW search_path").await,
        "qcp_no_such_schema, public"
    );
    assert_eq!(wire.value("SHOW statement_timeout").await, "1234ms");
    // It really is the backend's own setting (what other sessions see).
    assert_eq!(
        wire.value("SELECT application_name FROM pg_stat_activity WHERE pid = pg_backend_pid()")
            .await,
        "qcp-startup-test"
    );
    // The DateStyle is in effect, and the statement timeout too.
    assert_eq!(
        wire.value("SELECT '2024-03-01'::date::text").await,
        "01/03/2024"
    );
    let result = wire.query_result("SELECT pg_sleep(5)").await;
    assert_eq!(result.errors.len(), 1, "{:?}", result.errors);
    assert_eq!(result.errors[0].code, "57014");
    assert!(result.errors[0].message.contains("statement timeout"));

    // tokio-postgres, with `options` and application_name in its connection string.
    let conninfo = format!(
        "{} application_name=qcp-tokio options='-c statement_timeout=1234 -c TimeZone=Europe/Paris'",
        qcp.conninfo(SCRAM_USER.0, SCRAM_USER.1, DATABASE)
    );
    let client = connect(&conninfo).await.unwrap();
    assert_eq!(show(&client, "application_name").await, "qcp-tokio");
    assert_eq!(show(&client, "statement_timeout").await, "1234ms");
    assert_eq!(show(&client, "TimeZone").await, "Europe/Paris");

    // psql, with libpq's environment variables (PGTZ and PGDATESTYLE become start-up
    // parameters; PGOPTIONS becomes `options`).
    let (ok, out, err) = psql(
        &qcp,
        &[
            ("PGAPPNAME", "qcp-psql"),
            ("PGTZ", "America/Sao_Paulo"),
            ("PGDATESTYLE", "German"),
            (
                "PGOPTIONS",
                "-c statement_timeout=4321 -c search_path=qcp_psql_schema",
            ),
        ],
        &[
            "-At",
            "-c",
            "SHOW application_name",
            "-c",
            "SHOW TimeZone",
            "-c",
            "SHOW DateStyle",
            "-c",
            "SHOW statement_timeout",
            "-c",
            "SHOW search_path",
        ],
    )
    .await;
    assert!(ok, "psql failed: {err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        [
            "qcp-psql",
            "America/Sao_Paulo",
            "German, DMY",
            "4321ms",
            "qcp_psql_schema"
        ],
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_hostile_application_name_is_applied_literally() {
    let qcp = Setup::session().start();
    let owner = qcp.client().await;
    owner
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS qcp_hostile_t (x int); INSERT INTO qcp_hostile_t VALUES (1)",
        )
        .await
        .unwrap();
    let mut wire = Wire::open_with(&qcp, &[("application_name", HOSTILE)]).await;
    assert_eq!(wire.value("SHOW application_name").await, HOSTILE);
    let rows: i64 = wire
        .value("SELECT count(*) FROM qcp_hostile_t")
        .await
        .parse()
        .unwrap();
    assert!(rows >= 1);
    // The same through `options`, where a backslash escapes the next character.
    let mut wire = Wire::open_with(
        &qcp,
        &[(
            "options",
            "-c application_name=y');\\ DROP\\ TABLE\\ qcp_hostile_t;--",
        )],
    )
    .await;
    assert_eq!(
        wire.value("SHOW application_name").await,
        "y'); DROP TABLE qcp_hostile_t;--"
    );
    let survived: bool = owner
        .query_one("SELECT to_regclass('qcp_hostile_t') IS NOT NULL", &[])
        .await
        .unwrap()
        .get(0);
    assert!(survived, "the table survives");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smart_startup_parameters_follow_each_client_across_a_shared_backend() {
    // pool_size 1: three clients with different start-up settings take turns on one backend.
    let qcp = Setup::smart().pool_size(1).start();
    let mut plain = Wire::open(&qcp).await;
    let mut tokyo = Wire::open_with(
        &qcp,
        &[
            ("application_name", "smart-tokyo"),
            ("TimeZone", "Asia/Tokyo"),
            (
                "options",
                "-c statement_timeout=1234 -c search_path=qcp_tokyo",
            ),
        ],
    )
    .await;
    let mut paris = Wire::open_with(
        &qcp,
        &[
            ("application_name", "smart-paris"),
            ("TimeZone", "Europe/Paris"),
            ("DateStyle", "SQL, DMY"),
        ],
    )
    .await;
    let defaults = {
        let row = plain
            .query_result("SELECT current_setting('TimeZone'), current_setting('statement_timeout'), current_setting('search_path'), current_setting('application_name'), current_setting('DateStyle')")
            .await;
        row.rows[0].clone()
    };
    let mut pids = Vec::new();
    for round in 0..3 {
        for (name, wire) in [
            ("plain", &mut plain),
            ("tokyo", &mut tokyo),
            ("paris", &mut paris),
        ] {
            let result = wire
                .query_result("SELECT current_setting('TimeZone'), current_setting('statement_timeout'), current_setting('search_path'), current_setting('application_name'), current_setting('DateStyle'), pg_backend_pid()::text")
                .await;
            assert!(result.errors.is_empty(), "{name}: {:?}", result.errors);
            let mut row = result.rows[0].clone();
            pids.push(row.pop().unwrap().unwrap());
            let expected: Vec<Option<String>> = match name {
                "plain" => defaults.clone(),
                "tokyo" => vec![
                    Some("Asia/Tokyo".into()),
                    Some("1234ms".into()),
                    Some("qcp_tokyo".into()),
                    Some("smart-tokyo".into()),
                    defaults[4].clone(),
                ],
                _ => vec![
                    Some("Europe/Paris".into()),
                    defaults[1].clone(),
                    defaults[2].clone(),
                    Some("smart-paris".into()),
                    Some("SQL, DMY".into()),
                ],
            };
            assert_eq!(row, expected, "round {round}, client {name}");
        }
    }
    pids.dedup();
    assert_eq!(pids.len(), 1, "all on one backend: {pids:?}");
}

// ---------------------------------------------------------------------------------------
// Cancel requests.
// ---------------------------------------------------------------------------------------

async fn cancel_reaches_the_running_query(setup: Setup) {
    let mode = mode_name(&setup);
    let qcp = setup.start();
    let admin = admin().await;

    // tokio-postgres's own cancel (it sends qcp's key to qcp's address).
    let conninfo = format!(
        "{} application_name=qcp-cancel-{mode}",
        qcp.conninfo(SCRAM_USER.0, SCRAM_USER.1, DATABASE)
    );
    let client = connect(&conninfo).await.unwrap();
    let pid = pid_of(&client).await;
    let token = client.cancel_token();
    let sleeper = tokio::spawn(async move {
        let outcome = client.simple_query("SELECT pg_sleep(30)").await;
        (client, outcome)
    });
    wait_running(&admin, pid, "PgSleep").await;
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
    // The session goes on.
    assert_eq!(
        client
            .query_one("SELECT 7", &[])
            .await
            .unwrap()
            .get::<_, i32>(0),
        7
    );

    // Wrong keys cancel nothing.
    let mut wire = Wire::open(&qcp).await;
    let wire_pid: i32 = wire.value("SELECT pg_backend_pid()").await.parse().unwrap();
    wire.send_query("SELECT pg_sleep(30)").await;
    wait_running(&admin, wire_pid, "PgSleep").await;
    let key = wire.key();
    let mut wrong_secret = key.1.clone();
    wrong_secret[0] ^= 0x55;
    send_cancel(qcp.addr, &(key.0, wrong_secret)).await;
    send_cancel(qcp.addr, &(key.0.wrapping_add(1), key.1.clone())).await;
    // qcp has closed both cancel connections: whatever it did is done. The query still runs.
    let (state, event) = backend_state(&admin, wire_pid).await.unwrap();
    assert_eq!((state.as_str(), event.as_str()), ("active", "PgSleep"));
    // A cancel for an idle client (one that never asked anything, and one whose query is
    // over) reaches nobody, and does not linger to hit a later query.
    let mut idle = Wire::open(&qcp).await;
    send_cancel(qcp.addr, &idle.key()).await;
    let mut done = Wire::open(&qcp).await;
    assert_eq!(done.value("SELECT 9").await, "9");
    send_cancel(qcp.addr, &done.key()).await;
    let (state, event) = backend_state(&admin, wire_pid).await.unwrap();
    assert_eq!((state.as_str(), event.as_str()), ("active", "PgSleep"));
    assert_eq!(idle.value("SELECT 8").await, "8");
    assert_eq!(done.value("SELECT 10").await, "10");

    // The right key does cancel it.
    let started = Instant::now();
    send_cancel(qcp.addr, &key).await;
    let result = wire.read_result().await;
    assert_eq!(result.errors.len(), 1, "{:?}", result.errors);
    assert_eq!(result.errors[0].code, "57014");
    assert_eq!(result.ready, Some(b'I'));
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_cancel_reaches_the_running_query_and_wrong_keys_do_nothing() {
    cancel_reaches_the_running_query(Setup::session()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smart_cancel_reaches_the_running_query_and_wrong_keys_do_nothing() {
    cancel_reaches_the_running_query(Setup::smart()).await;
}

// ---------------------------------------------------------------------------------------
// Smart mode: three clients interleaving on one backend.
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smart_three_clients_interleave_on_one_backend() {
    let qcp = Setup::smart().pool_size(1).start();
    let clients = [qcp.client().await, qcp.client().await, qcp.client().await];
    clients[0]
        .batch_execute(
            "DROP TABLE IF EXISTS qcp_smart_interleave; CREATE TABLE qcp_smart_interleave (who int, n int)",
        )
        .await
        .unwrap();
    let mut pids = Vec::new();
    for n in 0..10 {
        for (who, client) in clients.iter().enumerate() {
            let who = who as i32;
            // A transaction of each client in turn: others never see its uncommitted row.
            client.batch_execute("BEGIN").await.unwrap();
            client
                .execute(
                    "INSERT INTO qcp_smart_interleave VALUES ($1, $2)",
                    &[&who, &n],
                )
                .await
                .unwrap();
            let seen: i64 = client
                .query_one("SELECT count(*) FROM qcp_smart_interleave", &[])
                .await
                .unwrap()
                .get(0);
            assert_eq!(seen, i64::from(n * 3 + who + 1));
            pids.push(pid_of(client).await);
            client.batch_execute("COMMIT").await.unwrap();
        }
    }
    pids.dedup();
    assert_eq!(pids.len(), 1, "one backend for everybody");
    let total: i64 = clients[2]
        .query_one("SELECT count(*) FROM qcp_smart_interleave", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(total, 30);
    clients[1]
        .batch_execute("DROP TABLE qcp_smart_interleave")
        .await
        .unwrap();
}
