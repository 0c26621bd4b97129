//! Smart mode (transaction pooling) against the real PostgreSQL, at the byte level: when a
//! client gets a server connection and when it gives it back (see docs/protocol.md, "When a
//! server connection is free"), pipelined queries and extended batches, errors mid-pipeline,
//! Flush without Sync, explicit transactions, and clients that vanish mid-transaction,
//! mid-pipeline or mid-result (see "Errors in the extended protocol", "Sync, Flush and the
//! implicit transaction" and "Client gone mid-transaction").
//!
//! pool_size 1 (or 2) forces clients to share a backend: a second client's query queued in
//! qcp is the witness that the first still holds the connection, and a second client getting
//! exactly its own rows is the witness that nothing of the first leaked.

use std::time::Duration;

use crate::support::wire::*;
use crate::support::*;

/// A second client's query, run in the background; returns the client and its messages.
fn spawn_query(mut conn: Wire, sql: &'static str) -> tokio::task::JoinHandle<(Wire, Vec<Msg>)> {
    tokio::spawn(async move {
        let messages = conn.query(sql).await;
        (conn, messages)
    })
}

/// Awaits a background query (bounded).
async fn finish(task: tokio::task::JoinHandle<(Wire, Vec<Msg>)>) -> (Wire, Vec<Msg>) {
    tokio::time::timeout(WAIT, task)
        .await
        .expect("the waiting client is served")
        .expect("the waiting client's task")
}

/// The backend that a client identified by its application_name holds right now, and its
/// state.
async fn backend_of_app(admin: &tokio_postgres::Client, app: &str) -> Option<(i32, String)> {
    admin
        .query_opt(
            "SELECT pid, coalesce(state, '') FROM pg_stat_activity WHERE application_name = $1",
            &[&app],
        )
        .await
        .expect("read pg_stat_activity")
        .map(|row| (row.get(0), row.get(1)))
}

/// What a backend in the middle of an extended sequence without Sync looks like: an open
/// (implicit) transaction, reading the next message. PostgreSQL reports "idle" states only
/// when it sends ReadyForQuery, so the state stays "active".
const MID_EXTENDED: (&str, &str, bool) = ("active", "ClientRead", true);

/// (state, wait_event, inside a transaction) of backend `pid`.
async fn backend_view(admin: &tokio_postgres::Client, pid: i32) -> Option<(String, String, bool)> {
    admin
        .query_opt(
            "SELECT coalesce(state, ''), coalesce(wait_event, ''), xact_start IS NOT NULL \
             FROM pg_stat_activity WHERE pid = $1",
            &[&pid],
        )
        .await
        .expect("read pg_stat_activity")
        .map(|row| (row.get(0), row.get(1), row.get(2)))
}

/// Waits (bounded) until backend `pid` looks like `view`: a backend that has just sent its
/// last reply reaches its ClientRead wait a moment later.
async fn assert_backend_reaches(
    admin: &tokio_postgres::Client,
    pid: i32,
    view: (&str, &str, bool),
) {
    let expected = owned(view);
    wait_until(
        "the backend reaches the expected state",
        Duration::from_secs(5),
        || async { backend_view(admin, pid).await == expected },
    )
    .await;
}

fn owned(view: (&str, &str, bool)) -> Option<(String, String, bool)> {
    Some((view.0.to_owned(), view.1.to_owned(), view.2))
}

/// Checks that `messages` are exactly one query's answer of `value` (no stale rows).
fn assert_only(messages: &[Msg], value: &str) {
    assert_eq!(tags(messages), "TDCZ", "{messages:?}");
    assert_eq!(first_column(messages), [value]);
    assert_eq!(ready_status(messages), b'I');
}

// ---------------------------------------------------------------------------------------
// When the server connection is taken and given back.
// ---------------------------------------------------------------------------------------

/// A client holds nothing until its first request, holds the backend for the whole
/// transaction, and gives it back at ReadyForQuery(I); the other client of a one-connection
/// pool then gets the very same backend.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smart_link_is_taken_at_the_first_request_and_given_back_when_idle() {
    let qcp = Setup::smart().pool_size(1).start();
    let mut a = Wire::open(&qcp).await;
    let b = Wire::open(&qcp).await;
    assert_eq!(
        active(&qcp),
        0,
        "logged-in clients hold no server connection"
    );

    let pid = a.backend_pid().await;
    wait_until("A's connection is back in the pool", WAIT, || async {
        qcp.status_view().test_pool() == (0, 1, 0)
    })
    .await;
    assert_eq!(active(&qcp), 0);

    // BEGIN pins the backend: B queues, A keeps working on it.
    let begin = a.query("BEGIN").await;
    assert_eq!(ready_status(&begin), b'T');
    assert_eq!(active(&qcp), 1);
    let waiter = spawn_query(b, "SELECT pg_backend_pid()");
    wait_queued(&qcp, 1).await;
    for _ in 0..3 {
        let inside = a.query("SELECT pg_backend_pid()").await;
        assert_eq!(ready_status(&inside), b'T');
        assert_eq!(first_column(&inside), [pid.to_string()]);
    }
    assert!(!waiter.is_finished(), "B ran while A was in a transaction");
    assert_eq!(qcp.status_view().test_pool(), (1, 0, 1));

    let commit = a.query("COMMIT").await;
    assert_eq!(ready_status(&commit), b'I');
    let (mut b, answer) = finish(waiter).await;
    assert_only(&answer, &pid.to_string());
    wait_all_released(&qcp).await;

    // And back: A gets it again after B's single-statement transaction.
    assert_eq!(a.backend_pid().await, pid);
    assert_eq!(b.backend_pid().await, pid);
    wait_all_released(&qcp).await;
}

/// The server has sent its whole answer (ReadyForQuery(I) included) but the client has not
/// read it: the bytes qcp still holds must reach the client before the backend goes to
/// anyone else. A chunk bigger than the result lets qcp read all of it from the server while
/// the slow client's socket is full.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smart_release_waits_until_every_byte_reached_the_client() {
    const ROWS: usize = 6_000;
    let setup = Setup {
        arena: "arena:\n  chunk_size: 8MB\n  chunks_count: 8\n".into(),
        ..Setup::smart().pool_size(1)
    };
    let qcp = setup.start();
    let admin = admin().await;
    let mut a = Wire::open_small_buffer(&qcp).await;
    let pid = a.backend_pid().await;
    wait_all_released(&qcp).await;

    a.send(
        &Batch::new()
            .query(&format!(
                "SELECT repeat('x', 1000) FROM generate_series(1, {ROWS}) /* smart slow reader */"
            ))
            .bytes,
    )
    .await;
    // The server finishes (about 6 MB), qcp reads it all into its chunk and cannot pass it
    // on: the slow client reads nothing.
    wait_until(
        "the server has sent everything and qcp holds what the client did not read",
        WAIT,
        || async {
            backend_state(&admin, pid)
                .await
                .is_some_and(|(state, _)| state == "idle")
                && qcp.status_view().arena_in_use >= 1
        },
    )
    .await;
    assert_eq!(active(&qcp), 1, "A's bytes are not all written yet");

    let b = Wire::open(&qcp).await;
    let waiter = spawn_query(b, "SELECT pg_backend_pid()");
    wait_queued(&qcp, 1).await;
    assert_eq!(active(&qcp), 1);
    assert!(!waiter.is_finished());

    // Once A reads its result, B gets the backend.
    let result = a.until_ready().await;
    assert_eq!(rows(&result).len(), ROWS);
    assert_eq!(ready_status(&result), b'I');
    let (_b, answer) = finish(waiter).await;
    assert_only(&answer, &pid.to_string());
    wait_all_released(&qcp).await;
}

// ---------------------------------------------------------------------------------------
// Pipelining.
// ---------------------------------------------------------------------------------------

/// Scenario 1: two Queries in one write are answered in order; the backend is not given
/// back at the first ReadyForQuery(I), so a second client waits for the second one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smart_two_queries_in_one_write_release_after_the_second() {
    let qcp = Setup::smart().pool_size(1).start();
    let mut a = Wire::open(&qcp).await;
    let b = Wire::open(&qcp).await;
    let pid = a.backend_pid().await;

    a.send(
        &Batch::new()
            .query("SELECT 1")
            .query("SELECT pg_backend_pid() FROM pg_sleep(1)")
            .bytes,
    )
    .await;
    let first = a.until_ready().await;
    assert_eq!(tags(&first), "TDCZ");
    assert_eq!(first_column(&first), ["1"]);
    assert_eq!(ready_status(&first), b'I');

    // Still A's: the second query is outstanding.
    let waiter = spawn_query(b, "SELECT 'b'");
    wait_queued(&qcp, 1).await;
    assert_eq!(active(&qcp), 1);

    let second = a.until_ready().await;
    assert_only(&second, &pid.to_string());
    let (_b, answer) = finish(waiter).await;
    assert_only(&answer, "b");
    wait_all_released(&qcp).await;
}

/// `count` unnamed Parse/Bind/(Describe)/Execute/Sync batches in one write: `count`
/// ReadyForQuery in order; a second client queued after the first one is served only after
/// the last.
async fn pipelined_batches_release_after_the_last_sync(count: usize, sleep: &str, describe: bool) {
    let qcp = Setup::smart().pool_size(1).start();
    let mut a = Wire::open(&qcp).await;
    let b = Wire::open(&qcp).await;
    let pid = a.backend_pid().await;

    let sql = format!("SELECT $1::int FROM pg_sleep({sleep})");
    let mut batch = Batch::new();
    for n in 1..=count {
        let value = n.to_string();
        batch = batch.parse("", &sql, &[]).bind("", "", &[Some(&value)]);
        if describe {
            batch = batch.describe_portal("");
        }
        batch = batch.execute("", 0).sync();
    }
    a.send(&batch.bytes).await;
    let expected_tags = if describe { "12TDCZ" } else { "12DCZ" };

    let first = a.until_ready().await;
    assert_eq!(tags(&first), expected_tags);
    assert_eq!(first_column(&first), ["1"]);
    let waiter = spawn_query(b, "SELECT 'b'");
    wait_queued(&qcp, 1).await;
    for n in 2..=count {
        let group = a.until_ready().await;
        assert_eq!(tags(&group), expected_tags, "batch {n}");
        assert_eq!(first_column(&group), [n.to_string()], "batch {n}");
        assert_eq!(ready_status(&group), b'I');
        if n < count {
            assert!(
                !waiter.is_finished(),
                "B ran before batch {count} was answered"
            );
        }
    }
    let (_b, answer) = finish(waiter).await;
    assert_only(&answer, "b");
    wait_all_released(&qcp).await;
    assert_eq!(a.backend_pid().await, pid);
}

/// Scenario 2: three extended batches pipelined without waiting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smart_three_pipelined_extended_batches_release_after_the_third() {
    pipelined_batches_release_after_the_last_sync(3, "0.6", true).await;
}

/// A pipeline of many Syncs is given back only after the last one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smart_pipeline_of_twenty_syncs_releases_after_the_last() {
    pipelined_batches_release_after_the_last_sync(20, "0.06", false).await;
}

// ---------------------------------------------------------------------------------------
// Errors mid-pipeline.
// ---------------------------------------------------------------------------------------

/// Scenario 3: batch 1 fails at Bind while batches 2 and 3 are already sent: Error and
/// ReadyForQuery for batch 1, then the results of batches 2 and 3; the backend is given back
/// after batch 3 only, and the next client finds it clean.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smart_bind_error_mid_pipeline_skips_only_to_its_sync() {
    let qcp = Setup::smart().pool_size(1).start();
    let mut a = Wire::open(&qcp).await;
    let b = Wire::open(&qcp).await;
    let pid = a.backend_pid().await;

    a.send(
        &Batch::new()
            .extended("SELECT $1::int", &[Some("not-a-number")])
            .extended("SELECT $1::int + 1 FROM pg_sleep(1)", &[Some("41")])
            .extended("SELECT pg_backend_pid()", &[])
            .bytes,
    )
    .await;
    let first = a.until_ready().await;
    assert_eq!(tags(&first), "1EZ", "Parse ok, Bind fails: {first:?}");
    assert_eq!(error_codes(&first), ["22P02"]);
    assert_eq!(ready_status(&first), b'I');

    let waiter = spawn_query(b, "SELECT 'b'");
    wait_queued(&qcp, 1).await;
    let second = a.until_ready().await;
    assert_eq!(tags(&second), "12DCZ");
    assert_eq!(first_column(&second), ["42"]);
    let third = a.until_ready().await;
    assert_eq!(tags(&third), "12DCZ");
    assert_eq!(first_column(&third), [pid.to_string()]);

    let (mut b, answer) = finish(waiter).await;
    assert_only(&answer, "b");
    let clean = b
        .rows("SELECT pg_backend_pid(), now() = statement_timestamp(), pg_current_xact_id_if_assigned() IS NULL")
        .await;
    assert_eq!(
        clean,
        [[Some(pid.to_string()), Some("t".into()), Some("t".into())]]
    );
    wait_all_released(&qcp).await;
}

/// An error at Execute with more extended messages queued before the Sync: the server skips
/// them (no answer at all), answers the Sync, then runs the next batch. qcp must expect no
/// answer for the skipped messages, or it would never give the backend back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smart_execute_error_skips_the_rest_of_its_batch_like_the_server() {
    let qcp = Setup::smart().pool_size(1).start();
    let mut a = Wire::open(&qcp).await;
    let b = Wire::open(&qcp).await;
    let pid = a.backend_pid().await;

    a.send(
        &Batch::new()
            .parse(
                "",
                "SELECT 1 / g FROM generate_series($1::int, $1::int) g",
                &[],
            )
            .bind("", "", &[Some("0")])
            .execute("", 0)
            .parse("", "SELECT 'skipped'", &[])
            .bind("", "", &[])
            .describe_portal("")
            .execute("", 0)
            .close_portal("")
            .sync()
            .extended("SELECT 'after' FROM pg_sleep(1)", &[])
            .bytes,
    )
    .await;
    let first = a.until_ready().await;
    assert_eq!(tags(&first), "12EZ", "{first:?}");
    assert_eq!(error_codes(&first), ["22012"]);
    let waiter = spawn_query(b, "SELECT pg_backend_pid()");
    wait_queued(&qcp, 1).await;
    let second = a.until_ready().await;
    assert_eq!(tags(&second), "12DCZ");
    assert_eq!(first_column(&second), ["after"]);
    let (_b, answer) = finish(waiter).await;
    assert_only(&answer, &pid.to_string());
    wait_all_released(&qcp).await;
}

/// An error in one of several pipelined simple Queries aborts only that Query; the others
/// run, and the backend is given back after the last.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smart_query_error_mid_pipeline_aborts_only_that_query() {
    let qcp = Setup::smart().pool_size(1).start();
    let mut a = Wire::open(&qcp).await;
    let b = Wire::open(&qcp).await;
    let pid = a.backend_pid().await;

    a.send(
        &Batch::new()
            .query("SELECT 1/0")
            .query("SELECT 'two' FROM pg_sleep(1)")
            .query("SELECT 1; SELECT 1/0; SELECT 3")
            .query("SELECT pg_backend_pid()")
            .bytes,
    )
    .await;
    let first = a.until_ready().await;
    assert_eq!(tags(&first), "EZ");
    assert_eq!(error_codes(&first), ["22012"]);
    assert_eq!(ready_status(&first), b'I');
    let waiter = spawn_query(b, "SELECT 'b'");
    wait_queued(&qcp, 1).await;
    assert_only(&a.until_ready().await, "two");
    let third = a.until_ready().await;
    assert_eq!(
        tags(&third),
        "TDCEZ",
        "the error ends that Query's statements"
    );
    assert_eq!(ready_status(&third), b'I');
    assert_only(&a.until_ready().await, &pid.to_string());
    let (_b, answer) = finish(waiter).await;
    assert_only(&answer, "b");
    wait_all_released(&qcp).await;
}

/// Scenario 4: a failing Execute then Flush: the error arrives at once, without
/// ReadyForQuery; the client pauses 200 ms (the backend stays linked: another client waits),
/// sends more messages (skipped by the server, not by qcp) and then Sync: only
/// ReadyForQuery(I) comes, and the backend is given back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smart_error_then_flush_pause_then_sync() {
    let qcp = Setup::smart().pool_size(1).start();
    let mut a = Wire::open(&qcp).await;
    let b = Wire::open(&qcp).await;
    let pid = a.backend_pid().await;

    a.send(
        &Batch::new()
            .parse(
                "",
                "SELECT 1 / g FROM generate_series($1::int, $1::int) g",
                &[],
            )
            .bind("", "", &[Some("0")])
            .execute("", 0)
            .flush()
            .bytes,
    )
    .await;
    let answer = tokio::time::timeout(Duration::from_secs(5), a.until_tag(b'E'))
        .await
        .expect("the error is forwarded at the Flush, without waiting for a Sync");
    assert_eq!(tags(&answer), "12E");
    assert_eq!(error_codes(&answer), ["22012"]);

    let waiter = spawn_query(b, "SELECT 'b'");
    wait_queued(&qcp, 1).await;
    a.assert_silent(
        Duration::from_millis(200),
        "no ReadyForQuery before the Sync",
    )
    .await;
    assert_eq!(qcp.status_view().test_pool(), (1, 0, 1));

    a.send(
        &Batch::new()
            .parse("", "SELECT 'skipped by the server'", &[])
            .bind("", "", &[])
            .execute("", 0)
            .flush()
            .bytes,
    )
    .await;
    a.assert_silent(
        Duration::from_millis(200),
        "the server skips messages until the Sync",
    )
    .await;
    assert!(!waiter.is_finished());
    a.send(&Batch::new().sync().bytes).await;
    let ready = a.until_ready().await;
    assert_eq!(tags(&ready), "Z");
    assert_eq!(ready_status(&ready), b'I');

    let (_b, answer) = finish(waiter).await;
    assert_only(&answer, "b");
    wait_all_released(&qcp).await;
    assert_eq!(a.backend_pid().await, pid);
}

// ---------------------------------------------------------------------------------------
// Extended protocol without Sync.
// ---------------------------------------------------------------------------------------

/// Scenario 5: Parse/Describe/Flush, a 1 s pause, then Bind/Execute/Sync: the Flush's answers
/// come without ReadyForQuery, the whole sequence runs on one backend, and a second client's
/// query does not run on it in between (pool_size 1: it waits).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smart_flush_without_sync_keeps_the_backend() {
    let qcp = Setup::smart().pool_size(1).start();
    let admin = admin().await;
    let mut a = Wire::open_with(&qcp, &[("application_name", "smart-flush-keep-a")]).await;
    let b = Wire::open_with(&qcp, &[("application_name", "smart-flush-keep-b")]).await;

    a.send(
        &Batch::new()
            .parse(
                "",
                "SELECT $1::int + 1 AS v, pg_backend_pid() AS pid",
                &[23],
            )
            .describe_statement("")
            .flush()
            .bytes,
    )
    .await;
    let described = a.until_tag(b'T').await;
    assert_eq!(tags(&described), "1tT");
    let (pid, _) = backend_of_app(&admin, "smart-flush-keep-a")
        .await
        .expect("A holds a backend");
    // The Parse opened the implicit transaction.
    assert_backend_reaches(&admin, pid, MID_EXTENDED).await;

    let waiter = spawn_query(b, "SELECT 'b', pg_backend_pid()");
    wait_queued(&qcp, 1).await;
    a.assert_silent(Duration::from_secs(1), "no ReadyForQuery without a Sync")
        .await;
    // B's query did not run on A's backend in between.
    assert!(!waiter.is_finished());
    assert_eq!(
        backend_of_app(&admin, "smart-flush-keep-a")
            .await
            .map(|b| b.0),
        Some(pid)
    );
    assert_backend_reaches(&admin, pid, MID_EXTENDED).await;
    assert_eq!(backend_of_app(&admin, "smart-flush-keep-b").await, None);

    a.send(
        &Batch::new()
            .bind("", "", &[Some("41")])
            .execute("", 0)
            .sync()
            .bytes,
    )
    .await;
    let result = a.until_ready().await;
    assert_eq!(tags(&result), "2DCZ");
    assert_eq!(
        rows(&result),
        [[Some("42".to_owned()), Some(pid.to_string())]]
    );
    let (_b, answer) = finish(waiter).await;
    assert_eq!(
        rows(&answer),
        [[Some("b".to_owned()), Some(pid.to_string())]]
    );
    wait_all_released(&qcp).await;
}

/// Scenario 6: an extended INSERT then Flush, no Sync: the implicit transaction is open and
/// pins the backend; after the Sync the row is committed exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smart_insert_then_flush_commits_once_at_the_sync() {
    let table = "qcp_smart_flush_insert";
    let qcp = Setup::smart().pool_size(1).start();
    let admin = admin().await;
    admin
        .batch_execute(&format!(
            "DROP TABLE IF EXISTS {table}; CREATE TABLE {table} (x int); GRANT ALL ON {table} TO {}",
            SCRAM_USER.0
        ))
        .await
        .unwrap();
    let mut a = Wire::open_with(&qcp, &[("application_name", "smart-flush-insert")]).await;
    let b = Wire::open(&qcp).await;

    a.send(
        &Batch::new()
            .parse(
                "",
                &format!("INSERT INTO {table} VALUES ($1) RETURNING pg_backend_pid()"),
                &[],
            )
            .bind("", "", &[Some("7")])
            .execute("", 0)
            .flush()
            .bytes,
    )
    .await;
    let inserted = a.until_tag(b'C').await;
    assert_eq!(tags(&inserted), "12DC");
    assert_eq!(command_tags(&inserted), ["INSERT 0 1"]);
    let pid: i32 = first_column(&inserted)[0].parse().unwrap();
    assert_eq!(
        count_rows(&admin, table).await,
        0,
        "not committed before the Sync"
    );
    assert_backend_reaches(&admin, pid, MID_EXTENDED).await;

    let waiter = spawn_query(b, "SELECT 'b'");
    wait_queued(&qcp, 1).await;
    a.assert_silent(
        Duration::from_millis(200),
        "no ReadyForQuery without a Sync",
    )
    .await;
    assert!(!waiter.is_finished());

    a.send(&Batch::new().sync().bytes).await;
    let ready = a.until_ready().await;
    assert_eq!(tags(&ready), "Z");
    assert_eq!(ready_status(&ready), b'I');
    assert_eq!(count_rows(&admin, table).await, 1);
    let (_b, answer) = finish(waiter).await;
    assert_only(&answer, "b");
    wait_all_released(&qcp).await;
    assert_eq!(count_rows(&admin, table).await, 1, "committed exactly once");
    admin
        .batch_execute(&format!("DROP TABLE {table}"))
        .await
        .unwrap();
}

/// Rows in `table`, read straight from PostgreSQL.
async fn count_rows(admin: &tokio_postgres::Client, table: &str) -> i64 {
    admin
        .query_one(&format!("SELECT count(*) FROM {table}"), &[])
        .await
        .unwrap()
        .get(0)
}

/// Locks anyone holds on `table`.
async fn locks_on(admin: &tokio_postgres::Client, table: &str) -> i64 {
    admin
        .query_one(
            &format!("SELECT count(*) FROM pg_locks WHERE relation = '{table}'::regclass"),
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

/// Several Flush-only rounds before one Sync (what drivers that describe first do): every
/// round is answered at its Flush, all rounds run on the same backend inside one implicit
/// transaction, and another client waits until the Sync.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smart_flush_only_rounds_stay_on_one_backend_until_the_sync() {
    let qcp = Setup::smart().pool_size(1).start();
    let mut a = Wire::open(&qcp).await;
    let b = Wire::open(&qcp).await;
    let pid = a.backend_pid().await;

    let pid_sql = "SELECT pg_backend_pid(), txid_current()::text";
    a.send(
        &Batch::new()
            .parse("", pid_sql, &[])
            .describe_statement("")
            .flush()
            .bytes,
    )
    .await;
    assert_eq!(tags(&a.until_tag(b'T').await), "1tT");
    let waiter = spawn_query(b, "SELECT 'b'");
    wait_queued(&qcp, 1).await;
    let mut seen = Vec::new();
    for round in 0..3 {
        a.send(&Batch::new().bind("", "", &[]).execute("", 0).flush().bytes)
            .await;
        let answer = a.until_tag(b'C').await;
        assert_eq!(tags(&answer), "2DC", "round {round}");
        seen.push(rows(&answer)[0].clone());
        a.assert_silent(
            Duration::from_millis(100),
            "no ReadyForQuery without a Sync",
        )
        .await;
        assert!(!waiter.is_finished(), "round {round}: B ran in between");
    }
    seen.dedup();
    assert_eq!(
        seen,
        [[Some(pid.to_string()), seen[0][1].clone()]],
        "one backend, one implicit transaction"
    );
    a.send(&Batch::new().sync().bytes).await;
    let ready = a.until_ready().await;
    assert_eq!(tags(&ready), "Z");
    assert_eq!(ready_status(&ready), b'I');
    let (_b, answer) = finish(waiter).await;
    assert_only(&answer, "b");
    wait_all_released(&qcp).await;
}

/// A lone Flush gets nothing and holds nothing; a lone Sync gets exactly ReadyForQuery(I).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smart_lone_flush_and_sync_are_answered_like_postgresql() {
    let qcp = Setup::smart().pool_size(1).start();
    let mut a = Wire::open(&qcp).await;
    let mut b = Wire::open(&qcp).await;
    a.send(&Batch::new().flush().bytes).await;
    a.assert_silent(Duration::from_millis(200), "a Flush alone gets no answer")
        .await;
    wait_all_released(&qcp).await;
    assert_only(&b.query("SELECT 'b'").await, "b");
    a.send(&Batch::new().sync().sync().bytes).await;
    assert_eq!(tags(&a.until_ready().await), "Z");
    let second = a.until_ready().await;
    assert_eq!(tags(&second), "Z");
    assert_eq!(ready_status(&second), b'I');
    wait_all_released(&qcp).await;
    assert_only(&b.query("SELECT 'b again'").await, "b again");
}

// ---------------------------------------------------------------------------------------
// Explicit transactions.
// ---------------------------------------------------------------------------------------

/// Scenarios 7 and 8: BEGIN ... COMMIT pins the backend; an error inside (ReadyForQuery E)
/// keeps it pinned until the client ends the block, COMMIT of the failed block reports
/// ROLLBACK and gives the backend back. Same with BEGIN/COMMIT sent as extended batches.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smart_explicit_and_failed_transactions_pin_until_they_end() {
    let qcp = Setup::smart().pool_size(1).start();
    let mut a = Wire::open(&qcp).await;
    let mut b = Wire::open(&qcp).await;
    let pid = a.backend_pid().await;

    // A failed transaction.
    assert_eq!(ready_status(&a.query("BEGIN").await), b'T');
    let waiter = spawn_query(b, "SELECT 'b'");
    wait_queued(&qcp, 1).await;
    let failed = a.query("SELECT 1/0").await;
    assert_eq!(error_codes(&failed), ["22012"]);
    assert_eq!(ready_status(&failed), b'E');
    let refused = a.query("SELECT 1").await;
    assert_eq!(error_codes(&refused), ["25P02"]);
    assert_eq!(ready_status(&refused), b'E');
    assert!(!waiter.is_finished(), "B ran inside A's failed transaction");
    assert_eq!(qcp.status_view().test_pool(), (1, 0, 1));
    let commit = a.query("COMMIT").await;
    assert_eq!(command_tags(&commit), ["ROLLBACK"]);
    assert_eq!(ready_status(&commit), b'I');
    let (b_back, answer) = finish(waiter).await;
    b = b_back;
    assert_only(&answer, "b");
    wait_all_released(&qcp).await;

    // The same with extended batches, ended by ROLLBACK.
    a.send(&Batch::new().extended("BEGIN", &[]).bytes).await;
    let begin = a.until_ready().await;
    assert_eq!(tags(&begin), "12CZ");
    assert_eq!(ready_status(&begin), b'T');
    let waiter = spawn_query(b, "SELECT 'b again'");
    wait_queued(&qcp, 1).await;
    a.send(&Batch::new().extended("SELECT pg_backend_pid()", &[]).bytes)
        .await;
    let inside = a.until_ready().await;
    assert_eq!(first_column(&inside), [pid.to_string()]);
    assert_eq!(ready_status(&inside), b'T');
    assert!(!waiter.is_finished());
    a.send(&Batch::new().extended("ROLLBACK", &[]).bytes).await;
    let rollback = a.until_ready().await;
    assert_eq!(command_tags(&rollback), ["ROLLBACK"]);
    assert_eq!(ready_status(&rollback), b'I');
    let (_b, answer) = finish(waiter).await;
    assert_only(&answer, "b again");
    wait_all_released(&qcp).await;
}

// ---------------------------------------------------------------------------------------
// Clients that vanish.
// ---------------------------------------------------------------------------------------

/// Scenario 9: a client leaves after BEGIN; INSERT (by closing its socket, or with
/// Terminate): the insert is never visible and the next client (pool_size 1) finds a backend
/// at ReadyForQuery(I), outside any transaction.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smart_disconnect_mid_transaction_leaves_a_clean_backend() {
    let table = "qcp_smart_gone_midtx";
    let qcp = Setup::smart().pool_size(1).start();
    let admin = admin().await;
    admin
        .batch_execute(&format!(
            "DROP TABLE IF EXISTS {table}; CREATE TABLE {table} (x int); GRANT ALL ON {table} TO {}",
            SCRAM_USER.0
        ))
        .await
        .unwrap();
    for terminate in [false, true] {
        let mut a = Wire::open(&qcp).await;
        let began = a
            .query(&format!(
                "BEGIN; INSERT INTO {table} VALUES (1); SELECT pg_backend_pid()"
            ))
            .await;
        assert_eq!(ready_status(&began), b'T');
        let pid: i32 = first_column(&began)[0].parse().unwrap();
        if terminate {
            a.send(&Batch::new().terminate().bytes).await;
        }
        drop(a);

        let mut b = Wire::open(&qcp).await;
        let seen = b
            .query(&format!(
                "SELECT count(*) FROM {table} WHERE now() = statement_timestamp() AND pg_current_xact_id_if_assigned() IS NULL"
            ))
            .await;
        assert_only(&seen, "0");
        let other = b.backend_pid().await;
        if other == pid {
            assert_eq!(
                backend_state(&admin, pid).await.map(|s| s.0),
                Some("idle".to_owned()),
                "the reused backend is outside any transaction"
            );
        } else {
            wait_idle_or_gone(&admin, pid).await;
        }
        wait_all_released(&qcp).await;
    }
    let direct: i64 = admin
        .query_one(&format!("SELECT count(*) FROM {table}"), &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(direct, 0, "the uncommitted inserts never became visible");
    admin
        .batch_execute(&format!("DROP TABLE {table}"))
        .await
        .unwrap();
}

/// A client leaves mid-pipeline (batches and a Query still unanswered): the next client gets
/// exactly its own answers, never the rest of the pipeline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smart_disconnect_mid_pipeline_leaves_no_stale_answers() {
    let qcp = Setup::smart().pool_size(1).start();
    let admin = admin().await;
    let mut a = Wire::open_with(&qcp, &[("application_name", "smart-gone-pipeline")]).await;
    let mut batch = Batch::new();
    for n in 1..=3 {
        batch = batch.extended(
            "SELECT $1::text FROM pg_sleep(0.3)",
            &[Some(&format!("stale-{n}"))],
        );
    }
    a.send(
        &batch
            .query("SELECT 'stale-q', pg_sleep(0.3)")
            .parse("", "SELECT 'stale-unsynced'", &[])
            .bind("", "", &[])
            .execute("", 0)
            .flush()
            .bytes,
    )
    .await;
    let first = a.until_ready().await;
    assert_eq!(first_column(&first), ["stale-1"]);
    let (pid, _) = backend_of_app(&admin, "smart-gone-pipeline")
        .await
        .expect("A holds a backend");
    drop(a);

    let mut b = Wire::open(&qcp).await;
    for n in 0..5 {
        let value = format!("b-{n}");
        assert_only(&b.query(&format!("SELECT '{value}'")).await, &value);
    }
    b.send(&Batch::new().extended("SELECT 'b-extended'", &[]).bytes)
        .await;
    let extended = b.until_ready().await;
    assert_eq!(tags(&extended), "12DCZ");
    assert_eq!(first_column(&extended), ["b-extended"]);
    wait_idle_or_gone(&admin, pid).await;
    wait_all_released(&qcp).await;
}

/// Scenario 11: a client sends Parse (which opens the implicit transaction and locks the
/// table it reads) and leaves before Bind/Sync: the backend is not left in ClientRead
/// holding the lock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smart_disconnect_after_parse_leaves_no_lock() {
    let table = "qcp_smart_parse_lock";
    let qcp = Setup::smart().pool_size(1).start();
    let admin = admin().await;
    admin
        .batch_execute(&format!(
            "DROP TABLE IF EXISTS {table}; CREATE TABLE {table} (x int); GRANT ALL ON {table} TO {}",
            SCRAM_USER.0
        ))
        .await
        .unwrap();
    let mut a = Wire::open_with(&qcp, &[("application_name", "smart-parse-lock")]).await;
    a.send(
        &Batch::new()
            .parse("", &format!("SELECT * FROM {table}"), &[])
            .flush()
            .bytes,
    )
    .await;
    assert_eq!(tags(&a.until_tag(b'1').await), "1");
    let (pid, _) = backend_of_app(&admin, "smart-parse-lock")
        .await
        .expect("A holds a backend");
    assert_backend_reaches(&admin, pid, MID_EXTENDED).await;
    assert!(
        locks_on(&admin, table).await >= 1,
        "the Parse holds a lock on the table"
    );
    drop(a);

    wait_until("the abandoned Parse's lock is gone", WAIT, || async {
        locks_on(&admin, table).await == 0
    })
    .await;
    wait_idle_or_gone(&admin, pid).await;
    admin
        .batch_execute(&format!(
            "BEGIN; LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE NOWAIT; COMMIT"
        ))
        .await
        .expect("nobody holds a lock on the table");
    let mut b = Wire::open(&qcp).await;
    assert_only(&b.query("SELECT 'clean'").await, "clean");
    admin
        .batch_execute(&format!("DROP TABLE {table}"))
        .await
        .unwrap();
}

/// Scenario 10: a client drops its connection while a 1M-row result streams: no stale
/// DataRow reaches the next client, and the abandoned query does not keep running.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smart_disconnect_mid_result_sends_no_stale_rows() {
    const SQL: &str =
        "SELECT g, repeat('x', 100) FROM generate_series(1, 1000000) g /* smart mid-result */";
    let qcp = Setup::smart().pool_size(1).start();
    let admin = admin().await;
    let mut a = Wire::open_small_buffer(&qcp).await;
    let pid = a.backend_pid().await;
    a.send(&Batch::new().query(SQL).bytes).await;
    let mut seen = 0;
    while seen < 100 {
        if a.next().await.tag == b'D' {
            seen += 1;
        }
    }
    drop(a);

    let mut b = Wire::open(&qcp).await;
    for n in 0..5 {
        let value = format!("b-only-{n}");
        assert_only(&b.query(&format!("SELECT '{value}'")).await, &value);
    }
    wait_until("the abandoned query stops", WAIT, || async {
        admin
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE query = $1 AND state = 'active'",
                &[&SQL],
            )
            .await
            .unwrap()
            .get::<_, i64>(0)
            == 0
    })
    .await;
    wait_idle_or_gone(&admin, pid).await;
    wait_all_released(&qcp).await;
}
