//! Smart mode against the real PostgreSQL: COPY FROM STDIN and TO STDOUT in both protocols,
//! successful and failed, and FunctionCall (see docs/protocol.md, "COPY" and "Requests and
//! their answers").
//! A client inside a COPY holds its backend; it is given back at the ReadyForQuery(I) that
//! ends it, and a second client of a one-connection pool is the witness.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::support::wire::*;
use crate::support::*;

/// Creates `table (x int, s text)` owned by the test user, straight on PostgreSQL.
async fn fresh_table(admin: &tokio_postgres::Client, table: &str) {
    admin
        .batch_execute(&format!(
            "DROP TABLE IF EXISTS {table}; CREATE TABLE {table} (x int, s text); \
             ALTER TABLE {table} OWNER TO {}",
            SCRAM_USER.0
        ))
        .await
        .unwrap();
}

async fn drop_table(admin: &tokio_postgres::Client, table: &str) {
    admin
        .batch_execute(&format!("DROP TABLE IF EXISTS {table}"))
        .await
        .unwrap();
}

/// The rows of `table` as "x:s", ordered.
async fn contents(admin: &tokio_postgres::Client, table: &str) -> Vec<String> {
    admin
        .query(
            &format!("SELECT x::text || ':' || coalesce(s, '') FROM {table} ORDER BY x, s"),
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

fn spawn_query(mut conn: Wire, sql: &'static str) -> tokio::task::JoinHandle<(Wire, Vec<Msg>)> {
    tokio::spawn(async move {
        let messages = conn.query(sql).await;
        (conn, messages)
    })
}

async fn finish<T>(task: tokio::task::JoinHandle<T>) -> T {
    tokio::time::timeout(WAIT, task)
        .await
        .expect("the waiting client is served")
        .expect("the waiting client's task")
}

fn assert_only(messages: &[Msg], value: &str) {
    assert_eq!(tags(messages), "TDCZ", "{messages:?}");
    assert_eq!(first_column(messages), [value]);
    assert_eq!(ready_status(messages), b'I');
}

// ---------------------------------------------------------------------------------------
// COPY FROM STDIN.
// ---------------------------------------------------------------------------------------

/// Scenario 12, simple protocol: the client holds the backend from the CopyInResponse to the
/// ReadyForQuery after its CopyDone; then the backend goes back. Also with the whole COPY in
/// one write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smart_copy_in_simple_holds_the_backend_until_it_ends() {
    let table = "qcp_smart_copy_in_simple";
    let qcp = Setup::smart().pool_size(1).start();
    let admin = admin().await;
    fresh_table(&admin, table).await;
    let mut a = Wire::open(&qcp).await;
    let b = Wire::open(&qcp).await;
    let pid = a.backend_pid().await;

    a.send(
        &Batch::new()
            .query(&format!("COPY {table} FROM STDIN"))
            .bytes,
    )
    .await;
    assert_eq!(tags(&a.until_tag(b'G').await), "G");
    let waiter = spawn_query(b, "SELECT 'b'");
    wait_queued(&qcp, 1).await;
    a.send(
        &Batch::new()
            .copy_data(b"1\tone\n")
            .copy_data(b"2\ttwo\n")
            .bytes,
    )
    .await;
    a.assert_silent(Duration::from_millis(200), "nothing answers CopyData")
        .await;
    assert!(!waiter.is_finished(), "B ran while A was inside a COPY");
    a.send(&Batch::new().copy_done().bytes).await;
    let done = a.until_ready().await;
    assert_eq!(tags(&done), "CZ");
    assert_eq!(command_tags(&done), ["COPY 2"]);
    assert_eq!(ready_status(&done), b'I');
    let (_b, answer) = finish(waiter).await;
    assert_only(&answer, "b");
    wait_all_released(&qcp).await;

    // The whole COPY in one write.
    a.send(
        &Batch::new()
            .query(&format!("COPY {table} FROM STDIN"))
            .copy_data(b"3\tthree\n4\tfour\n")
            .copy_done()
            .query("SELECT pg_backend_pid()")
            .bytes,
    )
    .await;
    let done = a.until_ready().await;
    assert_eq!(tags(&done), "GCZ");
    assert_eq!(command_tags(&done), ["COPY 2"]);
    assert_only(&a.until_ready().await, &pid.to_string());
    wait_all_released(&qcp).await;
    assert_eq!(
        contents(&admin, table).await,
        ["1:one", "2:two", "3:three", "4:four"]
    );
    drop_table(&admin, table).await;
}

/// Scenarios 12 and 14, extended protocol: with or without a Sync right after the Execute
/// (the server ignores Syncs during COPY FROM STDIN, so that one gets no ReadyForQuery); the
/// backend goes back only after the ReadyForQuery of the Sync that follows the CopyDone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smart_copy_in_extended_releases_after_the_sync_that_follows_copy_done() {
    let table = "qcp_smart_copy_in_ext";
    let qcp = Setup::smart().pool_size(1).start();
    let admin = admin().await;
    fresh_table(&admin, table).await;
    let mut a = Wire::open(&qcp).await;
    let mut b = Wire::open(&qcp).await;
    let copy = format!("COPY {table} FROM STDIN");

    for (round, early_sync) in [(1, false), (2, true)] {
        let mut start = Batch::new()
            .parse("", &copy, &[])
            .bind("", "", &[])
            .execute("", 0);
        if early_sync {
            start = start.sync();
        } else {
            start = start.flush();
        }
        a.send(&start.bytes).await;
        assert_eq!(tags(&a.until_tag(b'G').await), "12G", "round {round}");
        let waiter = spawn_query(b, "SELECT 'b'");
        wait_queued(&qcp, 1).await;
        let row = format!("{round}\tround {round}\n");
        // The Flush after the CopyDone makes the server send its CommandComplete (during the
        // COPY it would be ignored).
        a.send(
            &Batch::new()
                .copy_data(row.as_bytes())
                .copy_done()
                .flush()
                .bytes,
        )
        .await;
        let done = a.until_tag(b'C').await;
        assert_eq!(tags(&done), "C", "round {round}");
        assert_eq!(command_tags(&done), ["COPY 1"]);
        // CopyDone answered, but no Sync after it yet: still A's.
        a.assert_silent(
            Duration::from_millis(200),
            "no ReadyForQuery before the Sync after CopyDone",
        )
        .await;
        assert!(
            !waiter.is_finished(),
            "round {round}: B ran before A's Sync"
        );
        a.send(&Batch::new().sync().bytes).await;
        let ready = a.until_ready().await;
        assert_eq!(tags(&ready), "Z", "round {round}: one ReadyForQuery only");
        assert_eq!(ready_status(&ready), b'I');
        let (b_back, answer) = finish(waiter).await;
        b = b_back;
        assert_only(&answer, "b");
        wait_all_released(&qcp).await;
    }

    // Everything in one write, Sync right after the Execute and after the CopyDone.
    a.send(
        &Batch::new()
            .parse("", &copy, &[])
            .bind("", "", &[])
            .execute("", 0)
            .sync()
            .copy_data(b"3\tround 3\n")
            .copy_done()
            .sync()
            .extended("SELECT 'after'", &[])
            .bytes,
    )
    .await;
    let done = a.until_ready().await;
    assert_eq!(tags(&done), "12GCZ");
    let after = a.until_ready().await;
    assert_eq!(tags(&after), "12DCZ");
    assert_eq!(first_column(&after), ["after"]);
    wait_all_released(&qcp).await;
    assert_only(&b.query("SELECT 'still fine'").await, "still fine");
    assert_eq!(
        contents(&admin, table).await,
        ["1:round 1", "2:round 2", "3:round 3"]
    );
    drop_table(&admin, table).await;
}

/// Scenario 13, simple protocol: the first row is bad, so the server fails the COPY (Error
/// and ReadyForQuery) while the client is still streaming. The client's late CopyData and
/// CopyDone reach no other backend (a second client's own COPY on the only backend gets
/// exactly its rows), create no phantom wait (the first client's next query runs), and the
/// second client still gets the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smart_copy_in_simple_failure_drops_the_late_copy_tail() {
    let table_a = "qcp_smart_copy_fail_a";
    let table_b = "qcp_smart_copy_fail_b";
    let qcp = Setup::smart().pool_size(1).start();
    let admin = admin().await;
    fresh_table(&admin, table_a).await;
    fresh_table(&admin, table_b).await;
    let mut a = Wire::open(&qcp).await;
    let mut b = Wire::open(&qcp).await;

    a.send(
        &Batch::new()
            .query(&format!("COPY {table_a} FROM STDIN"))
            .bytes,
    )
    .await;
    assert_eq!(tags(&a.until_tag(b'G').await), "G");
    a.send(&Batch::new().copy_data(b"not-a-number\tbad\n").bytes)
        .await;
    let failed = a.until_ready().await;
    assert_eq!(tags(&failed), "EZ");
    assert_eq!(error_codes(&failed), ["22P02"]);
    assert_eq!(ready_status(&failed), b'I');

    // B starts its own COPY on the only backend (at once, or once A's tail is done).
    let b_in_copy = Arc::new(AtomicBool::new(false));
    let (go_tx, go_rx) = tokio::sync::oneshot::channel::<()>();
    let b_task = {
        let b_in_copy = Arc::clone(&b_in_copy);
        tokio::spawn(async move {
            b.send(
                &Batch::new()
                    .query(&format!("COPY {table_b} FROM STDIN"))
                    .bytes,
            )
            .await;
            assert_eq!(tags(&b.until_tag(b'G').await), "G");
            b.send(&Batch::new().copy_data(b"1\tb1\n").bytes).await;
            b_in_copy.store(true, Ordering::SeqCst);
            let _ = go_rx.await;
            b.send(&Batch::new().copy_data(b"2\tb2\n").copy_done().bytes)
                .await;
            let done = b.until_ready().await;
            (b, done)
        })
    };
    wait_until(
        "B is in its COPY or waits for the backend",
        WAIT,
        || async { b_in_copy.load(Ordering::SeqCst) || qcp.status_view().test_pool().2 == 1 },
    )
    .await;

    // A's late tail, then a query.
    let mut tail = Batch::new();
    for n in 0..50 {
        tail = tail.copy_data(format!("{n}\tlate\n").as_bytes());
    }
    a.send(&tail.copy_done().query("SELECT 'a after'").bytes)
        .await;
    let a_task = tokio::spawn(async move {
        let answer = a.until_ready().await;
        (a, answer)
    });
    // B is in its COPY, and A's query either ran before (it went out with A's tail while A
    // still held the backend) or waits for the backend: either way qcp has dealt with A's
    // tail.
    wait_until("B copies and A's query is done or waits", WAIT, || async {
        b_in_copy.load(Ordering::SeqCst)
            && (a_task.is_finished() || qcp.status_view().test_pool().2 == 1)
    })
    .await;
    go_tx.send(()).unwrap();
    let (mut b, b_done) = finish(b_task).await;
    assert_eq!(tags(&b_done), "CZ", "{b_done:?}");
    assert_eq!(command_tags(&b_done), ["COPY 2"]);
    let (_a, a_answer) = finish(a_task).await;
    assert_only(&a_answer, "a after");
    assert_only(&b.query("SELECT 'b after'").await, "b after");
    wait_all_released(&qcp).await;
    assert_eq!(contents(&admin, table_a).await, Vec::<String>::new());
    assert_eq!(contents(&admin, table_b).await, ["1:b1", "2:b2"]);
    drop_table(&admin, table_a).await;
    drop_table(&admin, table_b).await;
}

/// Scenario 13, extended protocol with a Sync right after the Execute: the bad row fails the
/// COPY (Error, no ReadyForQuery: the server skips to the next Sync, the early one having been
/// ignored inside the COPY); the client's late tail and its Sync get exactly one
/// ReadyForQuery, and the backend stays linked until then.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smart_copy_in_extended_failure_waits_for_the_sync() {
    let table = "qcp_smart_copy_fail_ext";
    let qcp = Setup::smart().pool_size(1).start();
    let admin = admin().await;
    fresh_table(&admin, table).await;
    let mut a = Wire::open(&qcp).await;
    let b = Wire::open(&qcp).await;
    let pid = a.backend_pid().await;

    a.send(
        &Batch::new()
            .parse("", &format!("COPY {table} FROM STDIN"), &[])
            .bind("", "", &[])
            .execute("", 0)
            .sync()
            .bytes,
    )
    .await;
    assert_eq!(tags(&a.until_tag(b'G').await), "12G");
    a.send(&Batch::new().copy_data(b"bad\tfirst\n").bytes).await;
    let failed = a.until_tag(b'E').await;
    assert_eq!(tags(&failed), "E");
    assert_eq!(error_codes(&failed), ["22P02"]);

    let waiter = spawn_query(b, "SELECT 'b'");
    wait_queued(&qcp, 1).await;
    let mut tail = Batch::new();
    for n in 0..20 {
        tail = tail.copy_data(format!("{n}\tlate\n").as_bytes());
    }
    a.send(&tail.copy_done().bytes).await;
    a.assert_silent(
        Duration::from_millis(200),
        "the server skips the tail until a Sync",
    )
    .await;
    assert!(!waiter.is_finished(), "B ran before A's Sync");
    a.send(&Batch::new().sync().bytes).await;
    let ready = a.until_ready().await;
    assert_eq!(tags(&ready), "Z");
    assert_eq!(ready_status(&ready), b'I');
    let (_b, answer) = finish(waiter).await;
    assert_only(&answer, "b");
    assert_only(&a.query("SELECT pg_backend_pid()").await, &pid.to_string());
    wait_all_released(&qcp).await;
    assert_eq!(contents(&admin, table).await, Vec::<String>::new());
    drop_table(&admin, table).await;
}

/// CopyFail from the client, in both protocols: the server answers 57014; simple protocol
/// ends with ReadyForQuery(I) and the backend goes back; extended waits for the Sync.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smart_copy_fail_from_the_client_in_both_protocols() {
    let table = "qcp_smart_copy_fail_client";
    let qcp = Setup::smart().pool_size(1).start();
    let admin = admin().await;
    fresh_table(&admin, table).await;
    let mut a = Wire::open(&qcp).await;
    let mut b = Wire::open(&qcp).await;
    let copy = format!("COPY {table} FROM STDIN");

    a.send(&Batch::new().query(&copy).bytes).await;
    assert_eq!(tags(&a.until_tag(b'G').await), "G");
    a.send(
        &Batch::new()
            .copy_data(b"1\tone\n")
            .copy_fail("the client gave up")
            .bytes,
    )
    .await;
    let failed = a.until_ready().await;
    assert_eq!(tags(&failed), "EZ");
    assert_eq!(error_codes(&failed), ["57014"]);
    assert_eq!(ready_status(&failed), b'I');
    wait_all_released(&qcp).await;
    let pid = b.backend_pid().await;

    a.send(
        &Batch::new()
            .parse("", &copy, &[])
            .bind("", "", &[])
            .execute("", 0)
            .flush()
            .bytes,
    )
    .await;
    assert_eq!(tags(&a.until_tag(b'G').await), "12G");
    a.send(
        &Batch::new()
            .copy_data(b"2\ttwo\n")
            .copy_fail("the client gave up again")
            .bytes,
    )
    .await;
    let failed = a.until_tag(b'E').await;
    assert_eq!(error_codes(&failed), ["57014"]);
    let waiter = spawn_query(b, "SELECT 'b'");
    wait_queued(&qcp, 1).await;
    a.assert_silent(
        Duration::from_millis(200),
        "no ReadyForQuery before the Sync",
    )
    .await;
    a.send(&Batch::new().sync().bytes).await;
    let ready = a.until_ready().await;
    assert_eq!(tags(&ready), "Z");
    let (_b, answer) = finish(waiter).await;
    assert_only(&answer, "b");
    assert_eq!(a.backend_pid().await, pid);
    wait_all_released(&qcp).await;
    assert_eq!(contents(&admin, table).await, Vec::<String>::new());
    drop_table(&admin, table).await;
}

// ---------------------------------------------------------------------------------------
// COPY TO STDOUT.
// ---------------------------------------------------------------------------------------

/// COPY TO STDOUT in both protocols: every row, CopyDone, CommandComplete, ReadyForQuery;
/// the backend goes back after the ReadyForQuery.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smart_copy_out_in_both_protocols() {
    let qcp = Setup::smart().pool_size(1).start();
    let mut a = Wire::open(&qcp).await;
    let mut b = Wire::open(&qcp).await;
    let copy = "COPY (SELECT g FROM generate_series(1, 1000) g) TO STDOUT";

    let check = |messages: &[Msg]| {
        let data: Vec<&Msg> = messages.iter().filter(|m| m.tag == b'd').collect();
        assert_eq!(data.len(), 1000);
        assert_eq!(data[0].body, b"1\n");
        assert_eq!(data[999].body, b"1000\n");
        assert_eq!(command_tags(messages), ["COPY 1000"]);
        assert_eq!(ready_status(messages), b'I');
    };
    let simple = a.query(copy).await;
    assert!(tags(&simple).starts_with('H'));
    assert!(tags(&simple).ends_with("cCZ"));
    check(&simple);
    wait_all_released(&qcp).await;
    let pid = b.backend_pid().await;

    a.send(
        &Batch::new()
            .extended(copy, &[])
            .extended("SELECT pg_backend_pid()", &[])
            .bytes,
    )
    .await;
    let extended = a.until_ready().await;
    assert!(tags(&extended).starts_with("12H"));
    assert!(tags(&extended).ends_with("cCZ"));
    check(&extended);
    let after = a.until_ready().await;
    assert_eq!(first_column(&after), [pid.to_string()]);
    wait_all_released(&qcp).await;
}

/// The number after `key` in the `arena:` status line.
fn arena_number(status: &str, key: &str) -> u64 {
    let line = status
        .lines()
        .find(|l| l.starts_with("arena: "))
        .expect("an arena line");
    let at = line.find(key).expect("key in the arena line") + key.len();
    line[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap()
}

/// Scenario 15: COPY TO STDOUT of about 100 MB to a slow reader: qcp holds a bounded amount
/// (the server waits to write), the client gets every byte, and the backend goes back after
/// the ReadyForQuery.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smart_copy_out_100mb_to_a_slow_reader_uses_bounded_memory() {
    const ROWS: usize = 100_000;
    let qcp = Setup::smart().pool_size(1).start();
    let admin = admin().await;
    let mut a = Wire::open_small_buffer(&qcp).await;
    let pid = a.backend_pid().await;
    wait_all_released(&qcp).await;

    a.send(
        &Batch::new()
            .query(&format!(
                "COPY (SELECT repeat('x', 1000) FROM generate_series(1, {ROWS})) TO STDOUT"
            ))
            .bytes,
    )
    .await;
    assert_eq!(a.next().await.tag, b'H');
    // The client reads nothing more: the server must end up waiting to write.
    wait_running(&admin, pid, "ClientWrite").await;
    let status = qcp.status();
    let in_use = arena_number(&status, "in use ");
    assert!(in_use <= 2, "qcp buffers a bounded amount: {status}");

    let mut bytes = 0usize;
    let mut rows_seen = 0usize;
    let rest = loop {
        let msg = a.next().await;
        match msg.tag {
            b'd' => {
                rows_seen += 1;
                bytes += msg.body.len();
            }
            b'c' => break a.until_ready().await,
            other => panic!("unexpected {:?} in the COPY data", other as char),
        }
    };
    assert_eq!(rows_seen, ROWS);
    assert_eq!(bytes, ROWS * 1001);
    assert_eq!(tags(&rest), "CZ");
    assert_eq!(command_tags(&rest), [format!("COPY {ROWS}")]);
    let status = qcp.status();
    assert!(
        arena_number(&status, "peak ") <= 4,
        "peak arena use stays small: {status}"
    );
    wait_all_released(&qcp).await;
}

// ---------------------------------------------------------------------------------------
// FunctionCall.
// ---------------------------------------------------------------------------------------

/// Scenario 16: FunctionCall (the libpq fast path) gets FunctionCallResponse and
/// ReadyForQuery and gives the backend back; an error in one ends with ReadyForQuery too;
/// lo_open inside a transaction keeps the backend until COMMIT.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smart_function_call_is_answered_and_released() {
    let qcp = Setup::smart().pool_size(1).start();
    let mut a = Wire::open(&qcp).await;
    let b = Wire::open(&qcp).await;
    let oid = |name: &str| format!("SELECT '{name}'::regproc::oid");
    let int4pl: u32 = a.value(&oid("int4pl")).await.parse().unwrap();
    let int4div: u32 = a.value(&oid("int4div")).await.parse().unwrap();
    let lo_create: u32 = a
        .value("SELECT 'lo_create(oid)'::regprocedure::oid")
        .await
        .parse()
        .unwrap();
    let lo_open: u32 = a.value(&oid("lo_open")).await.parse().unwrap();
    let pid = a.backend_pid().await;
    wait_all_released(&qcp).await;

    let sum = {
        a.send(
            &Batch::new()
                .function_call(int4pl, &[Some("40"), Some("2")])
                .bytes,
        )
        .await;
        a.until_ready().await
    };
    assert_eq!(tags(&sum), "VZ");
    assert_eq!(function_result(&sum).as_deref(), Some("42"));
    assert_eq!(ready_status(&sum), b'I');
    wait_all_released(&qcp).await;

    // An error, pipelined with a Query: the error ends only the FunctionCall.
    a.send(
        &Batch::new()
            .function_call(int4div, &[Some("1"), Some("0")])
            .query("SELECT 'next'")
            .bytes,
    )
    .await;
    let failed = a.until_ready().await;
    assert_eq!(tags(&failed), "EZ");
    assert_eq!(error_codes(&failed), ["22012"]);
    assert_only(&a.until_ready().await, "next");
    wait_all_released(&qcp).await;

    // Large objects need a transaction: the backend stays A's until COMMIT.
    assert_eq!(ready_status(&a.query("BEGIN").await), b'T');
    a.send(&Batch::new().function_call(lo_create, &[Some("0")]).bytes)
        .await;
    let created = a.until_ready().await;
    assert_eq!(tags(&created), "VZ");
    assert_eq!(ready_status(&created), b'T');
    let lo = function_result(&created).expect("an oid");
    let waiter = spawn_query(b, "SELECT 'b'");
    wait_queued(&qcp, 1).await;
    a.send(
        &Batch::new()
            .function_call(lo_open, &[Some(&lo), Some("393216")])
            .bytes,
    )
    .await;
    let opened = a.until_ready().await;
    assert_eq!(tags(&opened), "VZ");
    assert_eq!(
        function_result(&opened).as_deref(),
        Some("0"),
        "first descriptor"
    );
    assert_eq!(ready_status(&opened), b'T');
    assert!(!waiter.is_finished());
    let inside = a.query("SELECT pg_backend_pid()").await;
    assert_eq!(first_column(&inside), [pid.to_string()]);
    assert_eq!(ready_status(&a.query("COMMIT").await), b'I');
    let (_b, answer) = finish(waiter).await;
    assert_only(&answer, "b");
    let unlinked = a.rows(&format!("SELECT lo_unlink({lo})")).await;
    assert_eq!(unlinked, [[Some("1".to_owned())]]);
    wait_all_released(&qcp).await;
}
