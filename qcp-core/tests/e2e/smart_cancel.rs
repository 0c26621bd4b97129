//! Smart mode against the real PostgreSQL: cancel requests (see docs/protocol.md, "Cancel
//! requests").
//! A cancel reaches the client's running query and nothing else: not a query another client
//! runs later on the same backend, even when the cancel races the end of the query; a client
//! still waiting for a backend can be cancelled too.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::wire::*;
use crate::support::*;

fn assert_only(messages: &[Msg], value: &str) {
    assert_eq!(tags(messages), "TDCZ", "{messages:?}");
    assert_eq!(first_column(messages), [value]);
    assert_eq!(ready_status(messages), b'I');
}

/// Reads up to ReadyForQuery, failing the test if that takes longer than `limit`.
async fn ready_within(conn: &mut Wire, limit: Duration, what: &str) -> Vec<Msg> {
    tokio::time::timeout(limit, conn.until_ready())
        .await
        .unwrap_or_else(|_| panic!("{what}: no ReadyForQuery within {limit:?}"))
}

/// Scenario 23: a running query is cancelled with the client's key within a second, in the
/// simple and the extended protocol and inside a transaction; a wrong key cancels nothing.
/// The session goes on and the backend goes back to the pool.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smart_cancel_stops_the_running_query_within_a_second() {
    let qcp = Setup::smart().pool_size(1).start();
    let admin = admin().await;
    let mut a = Wire::open(&qcp).await;
    let pid = a.backend_pid().await;
    let key = a.key();

    // Simple protocol; a wrong key first.
    a.send(&Batch::new().query("SELECT pg_sleep(30)").bytes)
        .await;
    wait_running(&admin, pid, "PgSleep").await;
    let mut wrong = key.clone();
    wrong.1[0] ^= 0x5a;
    send_cancel(qcp.addr, &wrong).await;
    send_cancel(qcp.addr, &(key.0.wrapping_add(1), key.1.clone())).await;
    let (state, event) = backend_state(&admin, pid).await.unwrap();
    assert_eq!((state.as_str(), event.as_str()), ("active", "PgSleep"));
    let started = Instant::now();
    send_cancel(qcp.addr, &key).await;
    let cancelled = ready_within(&mut a, Duration::from_secs(1), "cancel").await;
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(tags(&cancelled), "TEZ");
    assert_eq!(error_codes(&cancelled), ["57014"]);
    assert_eq!(ready_status(&cancelled), b'I');
    wait_all_released(&qcp).await;

    // Extended protocol.
    a.send(&Batch::new().extended("SELECT pg_sleep(30)", &[]).bytes)
        .await;
    wait_running(&admin, pid, "PgSleep").await;
    send_cancel(qcp.addr, &key).await;
    let cancelled = ready_within(&mut a, Duration::from_secs(1), "extended cancel").await;
    assert_eq!(tags(&cancelled), "12EZ");
    assert_eq!(error_codes(&cancelled), ["57014"]);
    wait_all_released(&qcp).await;

    // Inside a transaction: the block fails and stays A's until ROLLBACK.
    assert_eq!(ready_status(&a.query("BEGIN").await), b'T');
    a.send(&Batch::new().query("SELECT pg_sleep(30)").bytes)
        .await;
    wait_running(&admin, pid, "PgSleep").await;
    send_cancel(qcp.addr, &key).await;
    let cancelled = ready_within(&mut a, Duration::from_secs(1), "cancel in a transaction").await;
    assert_eq!(error_codes(&cancelled), ["57014"]);
    assert_eq!(ready_status(&cancelled), b'E');
    assert_eq!(active(&qcp), 1);
    assert_eq!(ready_status(&a.query("ROLLBACK").await), b'I');
    assert_only(&a.query("SELECT 'after'").await, "after");
    wait_all_released(&qcp).await;
}

/// A cancel sent after the client's backend went back to the pool cancels nothing: client B,
/// now running pg_sleep on that backend, is not cancelled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smart_cancel_after_the_backend_went_back_cancels_nothing() {
    let qcp = Setup::smart().pool_size(1).start();
    let admin = admin().await;
    let mut a = Wire::open(&qcp).await;
    let mut b = Wire::open(&qcp).await;
    let pid = a.backend_pid().await;
    wait_all_released(&qcp).await;

    b.send(
        &Batch::new()
            .query("SELECT 'b survived' FROM pg_sleep(1.5)")
            .bytes,
    )
    .await;
    wait_running(&admin, pid, "PgSleep").await;
    send_cancel(qcp.addr, &a.key()).await;
    // qcp closed the cancel connection: whatever it did is done. B's query still runs.
    let (state, event) = backend_state(&admin, pid).await.unwrap();
    assert_eq!((state.as_str(), event.as_str()), ("active", "PgSleep"));
    assert_only(&b.until_ready().await, "b survived");
    assert_only(&a.query("SELECT 'a fine'").await, "a fine");
    wait_all_released(&qcp).await;
}

/// A client still waiting for a server connection (pool_size 1, the other client inside a
/// transaction) is cancelled: it gets 57014 and ReadyForQuery instead of waiting, leaves the
/// queue, and its session goes on afterwards. Both with a raw simple Query and with
/// tokio-postgres (extended protocol).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smart_cancel_of_a_client_waiting_for_a_backend_answers_57014() {
    let qcp = Setup::smart()
        .pool_size(1)
        .extra("timeouts:\n  query_wait: 30s\n")
        .start();
    let mut holder = Wire::open(&qcp).await;
    let mut waiter = Wire::open(&qcp).await;
    assert_eq!(ready_status(&holder.query("BEGIN").await), b'T');

    // Raw simple Query.
    waiter
        .send(&Batch::new().query("SELECT 'never run'").bytes)
        .await;
    wait_queued(&qcp, 1).await;
    let started = Instant::now();
    send_cancel(qcp.addr, &waiter.key()).await;
    let answer = ready_within(&mut waiter, Duration::from_secs(5), "queued cancel").await;
    assert!(started.elapsed() < Duration::from_secs(5));
    let errors = errors(&answer);
    assert_eq!(errors.len(), 1, "{answer:?}");
    assert_eq!(errors[0].code, "57014");
    assert_eq!(errors[0].severity, "ERROR", "the session goes on");
    assert_eq!(rows(&answer), Vec::<Vec<Option<String>>>::new());
    assert_eq!(ready_status(&answer), b'I');
    wait_queued(&qcp, 0).await;

    // Raw extended batch.
    waiter
        .send(
            &Batch::new()
                .extended("SELECT 'never run either'", &[])
                .bytes,
        )
        .await;
    wait_queued(&qcp, 1).await;
    send_cancel(qcp.addr, &waiter.key()).await;
    let answer = ready_within(
        &mut waiter,
        Duration::from_secs(5),
        "queued extended cancel",
    )
    .await;
    assert_eq!(error_codes(&answer), ["57014"]);
    assert_eq!(rows(&answer), Vec::<Vec<Option<String>>>::new());
    assert_eq!(ready_status(&answer), b'I');
    wait_queued(&qcp, 0).await;

    // tokio-postgres.
    let client = qcp.client().await;
    let token = client.cancel_token();
    let task = tokio::spawn(async move {
        let outcome = client
            .query_one("SELECT 1::int4", &[])
            .await
            .map(|r| r.get::<_, i32>(0));
        (client, outcome)
    });
    wait_queued(&qcp, 1).await;
    token
        .cancel_query(tokio_postgres::NoTls)
        .await
        .expect("send cancel");
    let (client, outcome) = tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("the cancelled client is answered")
        .unwrap();
    let error = outcome.expect_err("cancelled");
    assert_eq!(sqlstate_of(&error).as_deref(), Some("57014"), "{error}");
    wait_queued(&qcp, 0).await;

    // Everyone carries on once the holder commits.
    assert_eq!(ready_status(&holder.query("COMMIT").await), b'I');
    assert_only(&waiter.query("SELECT 'waiter again'").await, "waiter again");
    let value: i32 = client
        .query_one("SELECT 2::int4", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(value, 2);
    wait_all_released(&qcp).await;
}

/// A backend with a cancel in flight is not handed to another client until the cancel is
/// done. 20 rounds on one backend: A runs pg_sleep(0.05) and cancels it in a burst around the
/// moment it ends; B's pg_sleep(0.3), queued behind A, runs on the same backend right after
/// and must never be the one cancelled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smart_cancel_racing_the_end_of_a_query_never_hits_the_next_client() {
    let qcp = Setup::smart().pool_size(1).start();
    let mut a = Wire::open(&qcp).await;
    let mut b = Wire::open(&qcp).await;
    let pid = a.backend_pid().await;
    let key = a.key();
    let mut a_cancelled = 0;
    for round in 0..20 {
        let stop = Arc::new(AtomicBool::new(false));
        a.send(&Batch::new().query("SELECT pg_sleep(0.05)").bytes)
            .await;
        b.send(
            &Batch::new()
                .query("SELECT pg_backend_pid() FROM pg_sleep(0.3)")
                .bytes,
        )
        .await;
        let burst = {
            let stop = Arc::clone(&stop);
            let key = key.clone();
            let addr = qcp.addr;
            // Start a little before A's query ends (varying per round) and keep cancelling
            // until just after it ended.
            let lead = Duration::from_millis(30 + (round % 5) * 4);
            tokio::spawn(async move {
                tokio::time::sleep(lead).await;
                let mut sent = 0;
                while !stop.load(Ordering::SeqCst) {
                    send_cancel(addr, &key).await;
                    sent += 1;
                }
                sent
            })
        };
        let a_answer = a.until_ready().await;
        // Deliberate: the burst goes on for a moment after A's answer.
        tokio::time::sleep(Duration::from_millis(15)).await;
        stop.store(true, Ordering::SeqCst);
        let sent = burst.await.unwrap();
        assert!(sent > 0, "round {round}: no cancel was sent");
        match error_codes(&a_answer).as_slice() {
            [] => {}
            [code] if code == "57014" => a_cancelled += 1,
            other => panic!("round {round}: A got {other:?}"),
        }
        let b_answer = b.until_ready().await;
        assert_eq!(
            error_codes(&b_answer),
            Vec::<String>::new(),
            "round {round}: A's cancel hit B's query"
        );
        assert_only(&b_answer, &pid.to_string());
        wait_all_released(&qcp).await;
    }
    // The bursts did reach A's queries now and then: they were aimed right.
    assert!(a_cancelled > 0, "no round cancelled A's own query");
}
