//! Named protocol-level prepared statements in Smart mode (issue #5; see docs/protocol.md,
//! "Prepared statement naming rules" and "Prepared statements under transaction pooling"),
//! against the real PostgreSQL at the byte level.
//!
//! A client's named statements must behave as if it had a server of its own: Parse, Bind,
//! Describe('S') and Close('S') work across transactions whichever backend the client gets,
//! in pipelines, with PostgreSQL's own in-band errors (42P05, 26000), and the client never
//! sees a reply to something qcp sent on its own (a ParseComplete of a statement qcp prepares
//! lazily, a CloseComplete of an eviction). qcp renames statements to `qcp_<n>` on the server
//! and shares one server statement between clients preparing the same text and types.
//!
//! Every scenario runs with pool_size 1 (other clients share the one backend) and pool_size 2
//! (another client holds one backend in an open transaction so that the client's next
//! transaction runs on the other one; `pg_backend_pid()` in the statements shows where).

use std::time::Duration;

use crate::support::wire::*;
use crate::support::*;

/// A statement name the client never prepared.
const UNKNOWN: &str = "qcp_test_never_prepared";

/// The rows of `messages` as text (NULL as "NULL").
fn texts(messages: &[Msg]) -> Vec<Vec<String>> {
    rows(messages)
        .into_iter()
        .map(|row| {
            row.into_iter()
                .map(|v| v.unwrap_or_else(|| "NULL".into()))
                .collect()
        })
        .collect()
}

/// The backend pid in the last column of the first row.
fn pid_of(messages: &[Msg]) -> i32 {
    let rows = texts(messages);
    rows.first()
        .and_then(|r| r.last())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no backend pid in {messages:?}"))
}

/// Asserts that `messages` are exactly `expected_tags`, with first column values `values`
/// and a final ReadyForQuery(I).
fn assert_answer(messages: &[Msg], expected_tags: &str, values: &[&str]) {
    assert_eq!(tags(messages), expected_tags, "{messages:?}");
    assert_eq!(first_column(messages), values, "{messages:?}");
    assert_eq!(ready_status(messages), b'I', "{messages:?}");
}

/// Asserts that `messages` are one ErrorResponse with `code` and `message`, then
/// ReadyForQuery with `status` (everything else up to the Sync skipped).
fn assert_error(messages: &[Msg], code: &str, message: &str, status: u8) {
    assert_eq!(tags(messages), "EZ", "{messages:?}");
    let error = only_error(messages);
    assert_eq!(
        (error.code.as_str(), error.message.as_str()),
        (code, message),
        "{error:?}"
    );
    assert_eq!(ready_status(messages), status);
}

fn already_exists(name: &str) -> String {
    format!("prepared statement \"{name}\" already exists")
}

fn does_not_exist(name: &str) -> String {
    format!("prepared statement \"{name}\" does not exist")
}

/// Parse(`name`, `sql`) + Bind(unnamed portal, text params) + Execute + Sync.
fn prepare_and_run(name: &str, sql: &str, params: &[Option<&str>]) -> Batch {
    Batch::new()
        .parse(name, sql, &[])
        .bind("", name, params)
        .execute("", 0)
        .sync()
}

/// Bind(unnamed portal, statement `name`) + Execute + Sync.
fn run(name: &str, params: &[Option<&str>]) -> Batch {
    Batch::new().bind("", name, params).execute("", 0).sync()
}

/// Asserts that `name` is one of qcp's internal names, `qcp_<n>` with n >= 1.
fn assert_internal_name(name: &str) {
    let n: u64 = name
        .strip_prefix("qcp_")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{name:?} is not a qcp_<n> name"));
    assert!(n >= 1, "{name:?}");
}

/// Names of the statements prepared on the backend `conn`'s next transaction runs on.
async fn server_statement_names(conn: &mut Wire) -> Vec<String> {
    conn.rows("SELECT name FROM pg_prepared_statements ORDER BY name")
        .await
        .into_iter()
        .map(|r| r[0].clone().expect("a name"))
        .collect()
}

// ---------------------------------------------------------------------------------------
// Moving a client from one backend to another.
// ---------------------------------------------------------------------------------------

/// Another client inside an open transaction on backend `pid`.
struct Hold {
    conn: Wire,
    pid: i32,
}

impl Hold {
    async fn release(mut self) {
        let answer = self.conn.query("COMMIT").await;
        assert_eq!(tags(&answer), "CZ", "{answer:?}");
        assert_eq!(ready_status(&answer), b'I');
    }
}

/// A new client that opened a transaction; returns it with its backend.
async fn begin(qcp: &Qcp) -> Hold {
    let mut conn = Wire::open(qcp).await;
    let answer = conn.query("BEGIN; SELECT pg_backend_pid()").await;
    assert_eq!(tags(&answer), "CTDCZ", "{answer:?}");
    assert_eq!(ready_status(&answer), b'T');
    let pid = first_column(&answer)[0].parse().expect("a pid");
    Hold { conn, pid }
}

/// pool_size 2, nobody holding a backend: another client holds a backend for which `wanted`
/// holds (at most two tries: the first holder takes one backend, the second the other).
async fn hold_where(qcp: &Qcp, wanted: impl Fn(i32) -> bool) -> Hold {
    wait_all_released(qcp).await;
    let first = begin(qcp).await;
    if wanted(first.pid) {
        return first;
    }
    let second = begin(qcp).await;
    assert!(
        wanted(second.pid),
        "neither backend of the pool ({} or {}) is the one wanted",
        first.pid,
        second.pid
    );
    first.release().await;
    second
}

/// pool_size 1: another client takes the only backend for a transaction of its own, in which
/// it prepares and runs a statement of its own named `s1` (the name the tests use too).
async fn intrude(qcp: &Qcp) {
    let mut other = Wire::open(qcp).await;
    let answer = other
        .exchange(prepare_and_run("s1", "SELECT 'intruder'", &[]))
        .await;
    assert_answer(&answer, "12DCZ", &["intruder"]);
    other.send(&Batch::new().terminate().bytes).await;
}

/// Makes the client's next transaction run on a backend other than `pid` if the pool has
/// two (another client holds `pid`, release the returned hold afterwards); with one,
/// another client uses the backend in between.
async fn move_away(qcp: &Qcp, pool: u32, pid: i32) -> Option<Hold> {
    if pool == 1 {
        intrude(qcp).await;
        None
    } else {
        Some(hold_where(qcp, |p| p == pid).await)
    }
}

/// Makes the client's next transaction run on backend `pid` (pool_size 2: another client
/// holds the other backend).
async fn stay_on(qcp: &Qcp, pool: u32, pid: i32) -> Option<Hold> {
    if pool == 1 {
        None
    } else {
        Some(hold_where(qcp, |p| p != pid).await)
    }
}

async fn release(hold: Option<Hold>) {
    if let Some(hold) = hold {
        hold.release().await;
    }
}

// ---------------------------------------------------------------------------------------
// Scenario 17: prepared in one transaction, used in the next on another backend.
// ---------------------------------------------------------------------------------------

async fn statement_follows_the_client(pool: u32) {
    let qcp = Setup::smart().pool_size(pool).start();
    let mut a = Wire::open(&qcp).await;
    let sql = "SELECT $1::int * 10, pg_backend_pid()";

    let first = a.exchange(prepare_and_run("s1", sql, &[Some("4")])).await;
    assert_answer(&first, "12DCZ", &["40"]);
    let x = pid_of(&first);

    // Transaction 2 on another backend (pool 2) or after another client's (pool 1): qcp
    // prepares s1 there itself; its ParseComplete must not reach the client.
    let hold = move_away(&qcp, pool, x).await;
    let second = a.exchange(run("s1", &[Some("5")])).await;
    assert_answer(&second, "2DCZ", &["50"]);
    let y = pid_of(&second);
    if pool == 2 {
        assert_ne!(y, x, "transaction 2 ran on the other backend");
    }
    release(hold).await;

    // Transaction 3 back on the first backend (or after another client again): Describe('S')
    // then Bind.
    let hold = move_away(&qcp, pool, y).await;
    let third = a
        .exchange(
            Batch::new()
                .describe_statement("s1")
                .bind("", "s1", &[Some("6")])
                .execute("", 0)
                .sync(),
        )
        .await;
    assert_answer(&third, "tT2DCZ", &["60"]);
    assert_eq!(parameter_types(&third), [23], "$1 is an int4");
    assert_eq!(row_fields(&third), 2);
    if pool == 2 {
        assert_eq!(pid_of(&third), x);
    }
    release(hold).await;

    // Pipelined: three Syncs in one write, and an explicit transaction.
    let hold = move_away(&qcp, pool, x).await;
    a.send(
        &run("s1", &[Some("7")])
            .query("BEGIN")
            .bind("", "s1", &[Some("8")])
            .execute("", 0)
            .sync()
            .query("COMMIT")
            .bytes,
    )
    .await;
    assert_answer(&a.until_ready().await, "2DCZ", &["70"]);
    assert_eq!(tags(&a.until_ready().await), "CZ");
    let inside = a.until_ready().await;
    assert_eq!(tags(&inside), "2DCZ", "{inside:?}");
    assert_eq!(first_column(&inside), ["80"]);
    assert_eq!(ready_status(&inside), b'T');
    assert_eq!(tags(&a.until_ready().await), "CZ");
    release(hold).await;
    wait_all_released(&qcp).await;
}

with_pools_1_and_2!(
    smart_prepared_statement_follows_the_client_pool_1,
    smart_prepared_statement_follows_the_client_pool_2,
    statement_follows_the_client
);

// ---------------------------------------------------------------------------------------
// Scenario 18: two clients, one name, different SQL.
// ---------------------------------------------------------------------------------------

async fn same_name_different_sql(pool: u32) {
    let qcp = Setup::smart().pool_size(pool).start();
    let mut a = Wire::open(&qcp).await;
    let mut b = Wire::open(&qcp).await;
    let a_sql = "SELECT 'a:' || $1::text";
    let b_sql = "SELECT 'b:' || $1::text, 2";

    let answer = a.exchange(prepare_and_run("s1", a_sql, &[Some("0")])).await;
    assert_answer(&answer, "12DCZ", &["a:0"]);
    let answer = b.exchange(prepare_and_run("s1", b_sql, &[Some("0")])).await;
    assert_answer(&answer, "12DCZ", &["b:0"]);

    for round in 1..=3 {
        let value = round.to_string();
        let answer = a.exchange(run("s1", &[Some(&value)])).await;
        assert_answer(&answer, "2DCZ", &[format!("a:{round}").as_str()]);
        let answer = b
            .exchange(
                Batch::new()
                    .describe_statement("s1")
                    .bind("", "s1", &[Some(&value)])
                    .execute("", 0)
                    .sync(),
            )
            .await;
        assert_answer(&answer, "tT2DCZ", &[format!("b:{round}").as_str()]);
        assert_eq!(row_fields(&answer), 2, "b's own statement");
        assert_eq!(rows(&answer)[0].len(), 2);
    }

    if pool >= 2 {
        // Both inside a transaction at once: two backends, each client its own statement.
        let begin_a = a.query("BEGIN; SELECT pg_backend_pid()").await;
        let begin_b = b.query("BEGIN; SELECT pg_backend_pid()").await;
        assert_ne!(first_column(&begin_a), first_column(&begin_b));
        for _ in 0..2 {
            let answer = a.exchange(run("s1", &[Some("tx")])).await;
            assert_eq!(tags(&answer), "2DCZ", "{answer:?}");
            assert_eq!(first_column(&answer), ["a:tx"]);
            let answer = b.exchange(run("s1", &[Some("tx")])).await;
            assert_eq!(tags(&answer), "2DCZ", "{answer:?}");
            assert_eq!(texts(&answer), [["b:tx", "2"]]);
        }
        assert_eq!(tags(&a.query("COMMIT").await), "CZ");
        assert_eq!(tags(&b.query("COMMIT").await), "CZ");
    }
    wait_all_released(&qcp).await;
}

with_pools_1_and_2!(
    smart_prepared_same_name_different_sql_pool_1,
    smart_prepared_same_name_different_sql_pool_2,
    same_name_different_sql
);

// ---------------------------------------------------------------------------------------
// Scenario 19: Close then Parse again; Parse of a name in use.
// ---------------------------------------------------------------------------------------

async fn close_and_reparse(pool: u32) {
    let qcp = Setup::smart().pool_size(pool).start();
    let mut a = Wire::open(&qcp).await;

    let first = a
        .exchange(prepare_and_run("s1", "SELECT 1, pg_backend_pid()", &[]))
        .await;
    assert_answer(&first, "12DCZ", &["1"]);
    let x = pid_of(&first);

    // Close and Parse with new SQL in one pipeline.
    let hold = move_away(&qcp, pool, x).await;
    let second = a
        .exchange(
            Batch::new()
                .close_statement("s1")
                .parse("s1", "SELECT 2, pg_backend_pid()", &[])
                .bind("", "s1", &[])
                .execute("", 0)
                .sync(),
        )
        .await;
    assert_answer(&second, "312DCZ", &["2"]);
    let y = pid_of(&second);
    release(hold).await;

    // Parse s1 again without Close, back where it was first prepared: 42P05, the rest of the
    // batch skipped; the next batch (same write) runs the statement s1 still is.
    let hold = move_away(&qcp, pool, y).await;
    a.send(
        &Batch::new()
            .parse("s1", "SELECT 3, pg_backend_pid()", &[])
            .bind("", "s1", &[])
            .describe_portal("")
            .execute("", 0)
            .close_statement("s1")
            .sync()
            .bind("", "s1", &[])
            .execute("", 0)
            .sync()
            .bytes,
    )
    .await;
    assert_error(&a.until_ready().await, "42P05", &already_exists("s1"), b'I');
    assert_answer(&a.until_ready().await, "2DCZ", &["2"]);
    release(hold).await;

    // The session goes on.
    assert_eq!(a.value("SELECT 'next'").await, "next");
    let again = a.exchange(run("s1", &[])).await;
    assert_answer(&again, "2DCZ", &["2"]);
    wait_all_released(&qcp).await;
}

with_pools_1_and_2!(
    smart_prepared_close_then_parse_and_duplicate_parse_pool_1,
    smart_prepared_close_then_parse_and_duplicate_parse_pool_2,
    close_and_reparse
);

// ---------------------------------------------------------------------------------------
// Scenario 20: the per-backend cache limit.
// ---------------------------------------------------------------------------------------

async fn cache_limit(pool: u32) {
    let qcp = Setup::smart()
        .pool_size(pool)
        .extra("limits:\n  max_prepared_statements: 2\n")
        .start();
    let mut a = Wire::open(&qcp).await;
    let s1 = "SELECT 10 / g FROM generate_series($1::int, $1::int) g";
    let answer = a.exchange(prepare_and_run("s1", s1, &[Some("1")])).await;
    assert_answer(&answer, "12DCZ", &["10"]);
    let answer = a.exchange(prepare_and_run("s2", "SELECT 'two'", &[])).await;
    assert_answer(&answer, "12DCZ", &["two"]);
    let answer = a
        .exchange(prepare_and_run("s3", "SELECT 'three'", &[]))
        .await;
    assert_answer(&answer, "12DCZ", &["three"]);

    // s1 was evicted: reused, it is prepared again, and the client sees only its Bind's
    // replies.
    let answer = a.exchange(run("s1", &[Some("2")])).await;
    assert_answer(&answer, "2DCZ", &["5"]);

    // Evictions inside one pipeline.
    let answer = a
        .exchange(
            Batch::new()
                .bind("", "s3", &[])
                .execute("", 0)
                .bind("", "s2", &[])
                .execute("", 0)
                .bind("", "s1", &[Some("10")])
                .execute("", 0)
                .bind("", "s2", &[])
                .execute("", 0)
                .describe_statement("s3")
                .sync(),
        )
        .await;
    assert_answer(&answer, "2DC2DC2DC2DCtTZ", &["three", "two", "1", "two"]);
    let names = server_statement_names(&mut a).await;
    assert!(
        names.len() <= 2,
        "at most 2 statements on a backend: {names:?}"
    );
    names.iter().for_each(|n| assert_internal_name(n));

    // A pipeline aborted midway: the first Execute fails, so the server skips whatever qcp
    // put before the later Binds (Parse of an evicted statement, an eviction's Close). The
    // next batch, in the same write, uses every statement again.
    a.send(
        &Batch::new()
            .bind("", "s1", &[Some("0")])
            .execute("", 0)
            .bind("", "s2", &[])
            .execute("", 0)
            .bind("", "s3", &[])
            .execute("", 0)
            .sync()
            .bind("", "s2", &[])
            .execute("", 0)
            .bind("", "s3", &[])
            .execute("", 0)
            .bind("", "s1", &[Some("5")])
            .execute("", 0)
            .sync()
            .bytes,
    )
    .await;
    let aborted = a.until_ready().await;
    assert_eq!(tags(&aborted), "2EZ", "{aborted:?}");
    assert_eq!(error_codes(&aborted), ["22012"]);
    assert_answer(&a.until_ready().await, "2DC2DC2DCZ", &["two", "three", "2"]);

    // A Parse skipped after an error was never made: the name does not exist.
    a.send(
        &Batch::new()
            .bind("", "s2", &[])
            .execute("", 0)
            .bind("", "s1", &[Some("0")])
            .execute("", 0)
            .parse("s4", "SELECT 'four'", &[])
            .bind("", "s4", &[])
            .execute("", 0)
            .sync()
            .bind("", "s4", &[])
            .execute("", 0)
            .sync()
            .bytes,
    )
    .await;
    let aborted = a.until_ready().await;
    assert_eq!(tags(&aborted), "2DC2EZ", "{aborted:?}");
    assert_eq!(error_codes(&aborted), ["22012"]);
    assert_error(&a.until_ready().await, "26000", &does_not_exist("s4"), b'I');
    let answer = a
        .exchange(prepare_and_run("s4", "SELECT 'four'", &[]))
        .await;
    assert_answer(&answer, "12DCZ", &["four"]);
    for (name, value) in [("s1", "10"), ("s2", "two"), ("s3", "three"), ("s4", "four")] {
        let answer = a
            .exchange(run(name, &[Some("1")][..usize::from(name == "s1")]))
            .await;
        assert_answer(&answer, "2DCZ", &[value]);
    }
    let names = server_statement_names(&mut a).await;
    assert!(
        names.len() <= 2,
        "at most 2 statements on a backend: {names:?}"
    );
    wait_all_released(&qcp).await;
}

with_pools_1_and_2!(
    smart_prepared_cache_limit_evicts_invisibly_pool_1,
    smart_prepared_cache_limit_evicts_invisibly_pool_2,
    cache_limit
);

// ---------------------------------------------------------------------------------------
// Scenario 21: DEALLOCATE and DISCARD ALL.
// ---------------------------------------------------------------------------------------

/// The client prepares s1 and s2, runs `command` (on the other backend with pool 2), then
/// s1 (and s2 unless only s1 was deallocated) no longer exists; a new Parse of s1 works.
async fn deallocation_forgets(pool: u32, command: &str, tag: &str, only_s1: bool) {
    let qcp = Setup::smart().pool_size(pool).start();
    let mut a = Wire::open(&qcp).await;
    let answer = a
        .exchange(prepare_and_run("s1", "SELECT 'old', pg_backend_pid()", &[]))
        .await;
    assert_answer(&answer, "12DCZ", &["old"]);
    let x = pid_of(&answer);
    let answer = a
        .exchange(prepare_and_run("s2", "SELECT 'kept'", &[]))
        .await;
    assert_answer(&answer, "12DCZ", &["kept"]);

    let hold = move_away(&qcp, pool, x).await;
    let done = a.query(command).await;
    assert_eq!(tags(&done), "CZ", "{command}: {done:?}");
    assert_eq!(command_tags(&done), [tag]);
    release(hold).await;

    let hold = move_away(&qcp, pool, x).await;
    assert_error(
        &a.exchange(run("s1", &[])).await,
        "26000",
        &does_not_exist("s1"),
        b'I',
    );
    assert_error(
        &a.exchange(Batch::new().describe_statement("s1").sync())
            .await,
        "26000",
        &does_not_exist("s1"),
        b'I',
    );
    let s2 = a.exchange(run("s2", &[])).await;
    if only_s1 {
        assert_answer(&s2, "2DCZ", &["kept"]);
    } else {
        assert_error(&s2, "26000", &does_not_exist("s2"), b'I');
    }
    let answer = a
        .exchange(prepare_and_run("s1", "SELECT 'new', pg_backend_pid()", &[]))
        .await;
    assert_answer(&answer, "12DCZ", &["new"]);
    release(hold).await;
    let hold = move_away(&qcp, pool, pid_of(&answer)).await;
    assert_answer(&a.exchange(run("s1", &[])).await, "2DCZ", &["new"]);
    release(hold).await;
    wait_all_released(&qcp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smart_prepared_deallocate_all_forgets_pool_1() {
    deallocation_forgets(1, "DEALLOCATE ALL", "DEALLOCATE ALL", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smart_prepared_deallocate_all_forgets_pool_2() {
    deallocation_forgets(2, "DEALLOCATE ALL", "DEALLOCATE ALL", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smart_prepared_discard_all_forgets_pool_1() {
    deallocation_forgets(1, "DISCARD ALL", "DISCARD ALL", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smart_prepared_discard_all_forgets_pool_2() {
    deallocation_forgets(2, "DISCARD ALL", "DISCARD ALL", false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smart_prepared_deallocate_name_forgets_pool_1() {
    deallocation_forgets(1, "DEALLOCATE s1", "DEALLOCATE", true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smart_prepared_deallocate_name_forgets_pool_2() {
    deallocation_forgets(2, "DEALLOCATE s1", "DEALLOCATE", true).await;
}

/// Another client's DEALLOCATE ALL / DISCARD ALL / DEALLOCATE s1 on the same backend takes
/// nothing away from the first client.
async fn others_deallocation_leaves_statements(pool: u32) {
    let qcp = Setup::smart().pool_size(pool).start();
    let mut a = Wire::open(&qcp).await;
    let answer = a
        .exchange(prepare_and_run(
            "s1",
            "SELECT 'mine', pg_backend_pid()",
            &[],
        ))
        .await;
    assert_answer(&answer, "12DCZ", &["mine"]);
    let x = pid_of(&answer);

    for command in ["DEALLOCATE ALL", "DISCARD ALL", "DEALLOCATE s1"] {
        // The other client runs on x, then the first client too.
        let hold = stay_on(&qcp, pool, x).await;
        let mut b = Wire::open(&qcp).await;
        let pid = b.backend_pid().await;
        assert_eq!(pid, x, "the other client runs on the first one's backend");
        let done = b.query(command).await;
        if command == "DEALLOCATE s1" {
            // The other client has no s1 of its own.
            assert_error(&done, "26000", &does_not_exist("s1"), b'I');
        } else {
            assert_eq!(tags(&done), "CZ", "{command}: {done:?}");
        }
        let answer = a.exchange(run("s1", &[])).await;
        assert_answer(&answer, "2DCZ", &["mine"]);
        assert_eq!(pid_of(&answer), x);
        release(hold).await;
    }
    wait_all_released(&qcp).await;
}

with_pools_1_and_2!(
    smart_prepared_others_deallocate_leaves_statements_alone_pool_1,
    smart_prepared_others_deallocate_leaves_statements_alone_pool_2,
    others_deallocation_leaves_statements
);

// ---------------------------------------------------------------------------------------
// Scenario 22: schema change under a shared statement.
// ---------------------------------------------------------------------------------------

/// Runs `batch` after a schema change: either its answer is already the new result, or it
/// fails with 0A000 once and the same batch then succeeds. Returns whether it failed once.
async fn succeeds_at_most_second_time(conn: &mut Wire, batch: Batch, ok_tags: &str) -> bool {
    let first = conn.exchange(batch.clone()).await;
    let failed = tags(&first) != ok_tags;
    let answer = if failed {
        assert_eq!(error_codes(&first), ["0A000"], "{first:?}");
        conn.exchange(batch).await
    } else {
        first
    };
    assert_eq!(tags(&answer), ok_tags, "{answer:?}");
    assert_eq!(texts(&answer), [["1", "5"]]);
    failed
}

async fn schema_change(pool: u32) {
    let table = format!("qcp_smart_prepared_alter_{pool}");
    let admin = admin().await;
    admin
        .batch_execute(&format!(
            "DROP TABLE IF EXISTS {table}; CREATE TABLE {table} (x int); \
             INSERT INTO {table} VALUES (1); GRANT ALL ON {table} TO {}",
            SCRAM_USER.0
        ))
        .await
        .unwrap();
    let qcp = Setup::smart().pool_size(pool).start();
    let mut a = Wire::open(&qcp).await;
    let mut b = Wire::open(&qcp).await;
    let sql = format!("SELECT * FROM {table}");

    // Both clients prepare the same text (one shared server statement); with pool 2 inside
    // two transactions at once, so that both backends have it.
    if pool >= 2 {
        assert_eq!(tags(&a.query("BEGIN").await), "CZ");
        assert_eq!(tags(&b.query("BEGIN").await), "CZ");
    }
    for (conn, name) in [(&mut a, "s1"), (&mut b, "other")] {
        let answer = conn.exchange(prepare_and_run(name, &sql, &[])).await;
        assert_eq!(tags(&answer), "12DCZ", "{answer:?}");
        assert_eq!(texts(&answer), [["1"]]);
    }
    if pool >= 2 {
        assert_eq!(tags(&a.query("COMMIT").await), "CZ");
        assert_eq!(tags(&b.query("COMMIT").await), "CZ");
    }
    wait_all_released(&qcp).await;

    admin
        .batch_execute(&format!("ALTER TABLE {table} ADD COLUMN y int DEFAULT 5"))
        .await
        .unwrap();

    // The first Bind meets the old plan: PostgreSQL's 0A000; the retry succeeds.
    let first = a.exchange(run("s1", &[])).await;
    assert_eq!(tags(&first), "EZ", "{first:?}");
    let error = only_error(&first);
    assert_eq!(
        (error.code.as_str(), error.message.as_str()),
        ("0A000", "cached plan must not change result type")
    );
    let retry = a.exchange(run("s1", &[])).await;
    assert_eq!(tags(&retry), "2DCZ", "{retry:?}");
    assert_eq!(texts(&retry), [["1", "5"]]);

    // The other client sharing the statement: on the backend where qcp already saw the
    // error (pool 1) it succeeds at once; with two backends it may meet the old plan once.
    let failed = succeeds_at_most_second_time(&mut b, run("other", &[]), "2DCZ").await;
    if pool == 1 {
        assert!(!failed, "qcp already knows the old statement is stale");
    }
    // Re-preparing works too.
    let answer = b
        .exchange(
            Batch::new()
                .close_statement("other")
                .parse("other", &sql, &[])
                .bind("", "other", &[])
                .execute("", 0)
                .sync(),
        )
        .await;
    assert_eq!(tags(&answer), "312DCZ", "{answer:?}");
    assert_eq!(texts(&answer), [["1", "5"]]);
    for _ in 0..3 {
        let answer = a.exchange(run("s1", &[])).await;
        assert_eq!(tags(&answer), "2DCZ", "{answer:?}");
        assert_eq!(texts(&answer), [["1", "5"]]);
    }
    wait_all_released(&qcp).await;
    drop(qcp);
    admin
        .batch_execute(&format!("DROP TABLE {table}"))
        .await
        .unwrap();
}

with_pools_1_and_2!(
    smart_prepared_schema_change_fails_once_then_retry_succeeds_pool_1,
    smart_prepared_schema_change_fails_once_then_retry_succeeds_pool_2,
    schema_change
);

// ---------------------------------------------------------------------------------------
// Sharing, transactions, sizes, errors.
// ---------------------------------------------------------------------------------------

/// Clients preparing the same text with the same parameter types share one server
/// statement, named qcp_<n>; other parameter types make another.
async fn same_text_shared(pool: u32) {
    let qcp = Setup::smart().pool_size(pool).start();
    let mut a = Wire::open(&qcp).await;
    let mut b = Wire::open(&qcp).await;
    let sql = "SELECT $1::int + 1000 /* qcp shared statement */";
    let check = "SELECT name, parameter_types::text FROM pg_prepared_statements \
                 WHERE statement = 'SELECT $1::int + 1000 /* qcp shared statement */' \
                 ORDER BY parameter_types::text";

    let mut answer = a
        .exchange(
            Batch::new()
                .parse("a1", sql, &[23])
                .bind("", "a1", &[Some("1")])
                .execute("", 0)
                .sync(),
        )
        .await;
    assert_answer(&answer, "12DCZ", &["1001"]);
    answer = b
        .exchange(
            Batch::new()
                .parse("b9", sql, &[23])
                .bind("", "b9", &[Some("2")])
                .execute("", 0)
                .sync(),
        )
        .await;
    assert_answer(&answer, "12DCZ", &["1002"]);
    answer = a
        .exchange(
            Batch::new()
                .parse("a2", sql, &[20])
                .bind("", "a2", &[Some("3")])
                .execute("", 0)
                .sync(),
        )
        .await;
    assert_answer(&answer, "12DCZ", &["1003"]);

    // Pool 2: both clients in a transaction at once (two backends), each using its
    // statements there.
    if pool >= 2 {
        assert_eq!(tags(&a.query("BEGIN").await), "CZ");
        assert_eq!(tags(&b.query("BEGIN").await), "CZ");
        answer = b.exchange(run("b9", &[Some("4")])).await;
        assert_eq!(first_column(&answer), ["1004"], "{answer:?}");
    }
    for (name, value) in [("a1", "5"), ("a2", "6")] {
        answer = a.exchange(run(name, &[Some(value)])).await;
        assert_eq!(tags(&answer), "2DCZ", "{answer:?}");
        assert_eq!(first_column(&answer), [format!("100{value}")]);
    }
    let on_a = texts(&a.query(check).await);
    assert_eq!(
        on_a.len(),
        2,
        "one statement per type on a's backend: {on_a:?}"
    );
    assert_eq!(
        (on_a[0][1].as_str(), on_a[1][1].as_str()),
        ("{bigint}", "{integer}")
    );
    assert_ne!(on_a[0][0], on_a[1][0]);
    on_a.iter().for_each(|r| assert_internal_name(&r[0]));
    if pool >= 2 {
        let on_b = texts(&b.query(check).await);
        assert!(
            on_b.iter().any(|r| r[1] == "{integer}"),
            "b's backend has the int4 statement: {on_b:?}"
        );
        assert_eq!(
            on_b.iter().filter(|r| r[1] == "{integer}").count(),
            1,
            "one shared int4 statement on b's backend: {on_b:?}"
        );
        on_b.iter().for_each(|r| assert_internal_name(&r[0]));
        assert_eq!(tags(&a.query("COMMIT").await), "CZ");
        assert_eq!(tags(&b.query("COMMIT").await), "CZ");
    }
    wait_all_released(&qcp).await;
}

with_pools_1_and_2!(
    smart_prepared_same_text_is_one_server_statement_pool_1,
    smart_prepared_same_text_is_one_server_statement_pool_2,
    same_text_shared
);

/// Prepared statements are not transactional: a Parse inside a rolled-back transaction
/// still exists; a Parse refused in an aborted transaction does not.
async fn not_transactional(pool: u32) {
    let qcp = Setup::smart().pool_size(pool).start();
    let mut a = Wire::open(&qcp).await;
    let mut b = Wire::open(&qcp).await;
    let sql = "SELECT 'kept', pg_backend_pid() /* qcp rolled back parse */";

    assert_eq!(ready_status(&a.query("BEGIN").await), b'T');
    let answer = a.exchange(prepare_and_run("t1", sql, &[])).await;
    assert_eq!(tags(&answer), "12DCZ", "{answer:?}");
    assert_eq!(ready_status(&answer), b'T');
    let x = pid_of(&answer);
    let rolled_back = a.query("ROLLBACK").await;
    assert_eq!(command_tags(&rolled_back), ["ROLLBACK"]);
    assert_eq!(ready_status(&rolled_back), b'I');

    // On the same backend: the statement is there; another client preparing the same text
    // shares it (qcp must not prepare it again there).
    let hold = stay_on(&qcp, pool, x).await;
    let answer = a.exchange(run("t1", &[])).await;
    assert_answer(&answer, "2DCZ", &["kept"]);
    assert_eq!(pid_of(&answer), x);
    let answer = b.exchange(prepare_and_run("b1", sql, &[])).await;
    assert_answer(&answer, "12DCZ", &["kept"]);
    assert_eq!(pid_of(&answer), x);
    release(hold).await;

    // A Parse in an aborted transaction fails (25P02) and prepares nothing.
    let aborted = a.query("BEGIN; SELECT 1/0").await;
    assert_eq!(error_codes(&aborted), ["22012"]);
    assert_eq!(ready_status(&aborted), b'E');
    let refused = a
        .exchange(
            Batch::new()
                .parse("t2", "SELECT 'never' /* qcp aborted */", &[])
                .sync(),
        )
        .await;
    assert_eq!(tags(&refused), "EZ", "{refused:?}");
    assert_eq!(error_codes(&refused), ["25P02"]);
    assert_eq!(ready_status(&refused), b'E');
    assert_eq!(ready_status(&a.query("ROLLBACK").await), b'I');
    assert_error(
        &a.exchange(run("t2", &[])).await,
        "26000",
        &does_not_exist("t2"),
        b'I',
    );
    let answer = a
        .exchange(prepare_and_run("t2", "SELECT 'now' /* qcp aborted */", &[]))
        .await;
    assert_answer(&answer, "12DCZ", &["now"]);
    assert_answer(&a.exchange(run("t1", &[])).await, "2DCZ", &["kept"]);
    wait_all_released(&qcp).await;
}

with_pools_1_and_2!(
    smart_prepared_statements_are_not_transactional_pool_1,
    smart_prepared_statements_are_not_transactional_pool_2,
    not_transactional
);

/// A Parse (1 MB of query text) and a Bind (a 1 MB parameter) far larger than qcp's 16 KB
/// arena chunk, prepared, run, and prepared again by qcp on another backend.
async fn larger_than_a_chunk(pool: u32) {
    const SIZE: usize = 1 << 20;
    let setup = Setup {
        arena: "arena:\n  chunk_size: 16KB\n  chunks_count: 512\n".into(),
        ..Setup::smart().pool_size(pool)
    };
    let qcp = setup.start();
    let mut a = Wire::open(&qcp).await;
    let mut b = Wire::open(&qcp).await;
    let big_sql = format!("SELECT length('{}'), pg_backend_pid()", "x".repeat(SIZE));
    let big_value = "y".repeat(SIZE);
    let len_sql = "SELECT length($1::text), pg_backend_pid()";
    let size = SIZE.to_string();

    let answer = a.exchange(prepare_and_run("big", &big_sql, &[])).await;
    assert_answer(&answer, "12DCZ", &[&size]);
    let x = pid_of(&answer);
    let answer = a
        .exchange(prepare_and_run("len", len_sql, &[Some(&big_value)]))
        .await;
    assert_answer(&answer, "12DCZ", &[&size]);

    let hold = move_away(&qcp, pool, x).await;
    let answer = a.exchange(run("big", &[])).await;
    assert_answer(&answer, "2DCZ", &[&size]);
    let answer = a.exchange(run("len", &[Some(&big_value)])).await;
    assert_answer(&answer, "2DCZ", &[&size]);
    // Another client sharing the big statement.
    let answer = b.exchange(prepare_and_run("also_big", &big_sql, &[])).await;
    assert_answer(&answer, "12DCZ", &[&size]);
    release(hold).await;
    let answer = b.exchange(run("also_big", &[])).await;
    assert_answer(&answer, "2DCZ", &[&size]);
    wait_all_released(&qcp).await;
}

with_pools_1_and_2!(
    smart_prepared_parse_and_bind_larger_than_a_chunk_pool_1,
    smart_prepared_parse_and_bind_larger_than_a_chunk_pool_2,
    larger_than_a_chunk
);

/// Bind, Describe or Close of a name the client never prepared: PostgreSQL's answers (26000
/// and the rest of the batch skipped; CloseComplete). Unnamed statements and named portals
/// pass through and prepare nothing on the server.
async fn unknown_names_and_unnamed(pool: u32) {
    let qcp = Setup::smart().pool_size(pool).start();
    let mut a = Wire::open(&qcp).await;

    let closed = a
        .exchange(
            Batch::new()
                .close_statement(UNKNOWN)
                .close_portal("no_such_portal")
                .parse("s1", "SELECT 'after close'", &[])
                .bind("", "s1", &[])
                .execute("", 0)
                .sync(),
        )
        .await;
    assert_answer(&closed, "3312DCZ", &["after close"]);
    assert_error(
        &a.exchange(
            Batch::new()
                .bind("", UNKNOWN, &[])
                .execute("", 0)
                .parse("", "SELECT 'skipped'", &[])
                .bind("", "", &[])
                .execute("", 0)
                .sync(),
        )
        .await,
        "26000",
        &does_not_exist(UNKNOWN),
        b'I',
    );
    assert_error(
        &a.exchange(
            Batch::new()
                .describe_statement(UNKNOWN)
                .bind("", "s1", &[])
                .execute("", 0)
                .sync(),
        )
        .await,
        "26000",
        &does_not_exist(UNKNOWN),
        b'I',
    );

    // Unnamed statement, named portal, partial Executes.
    let unnamed = a
        .exchange(
            Batch::new()
                .parse("", "SELECT g FROM generate_series(1, 3) g", &[])
                .bind("p1", "", &[])
                .execute("p1", 2)
                .execute("p1", 0)
                .close_portal("p1")
                .sync(),
        )
        .await;
    assert_answer(&unnamed, "12DDsDC3Z", &["1", "2", "3"]);
    // Unnamed, then used again in the next batch on the same connection (pool 1: one backend).
    if pool == 1 {
        let answer = a
            .exchange(Batch::new().parse("", "SELECT 'unnamed'", &[]).sync())
            .await;
        assert_eq!(tags(&answer), "1Z");
        assert_answer(&a.exchange(run("", &[])).await, "2DCZ", &["unnamed"]);
    }
    let names = server_statement_names(&mut a).await;
    assert!(
        names.len() <= 1,
        "only s1 may be prepared on the server: {names:?}"
    );
    names.iter().for_each(|n| assert_internal_name(n));
    assert_answer(&a.exchange(run("s1", &[])).await, "2DCZ", &["after close"]);
    wait_all_released(&qcp).await;
}

with_pools_1_and_2!(
    smart_prepared_unknown_names_and_unnamed_statements_pool_1,
    smart_prepared_unknown_names_and_unnamed_statements_pool_2,
    unknown_names_and_unnamed
);

/// Session mode passes statement names through untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_prepared_statement_names_pass_through() {
    let qcp = Setup::session().pool_size(1).start();
    let mut a = Wire::open(&qcp).await;
    let answer = a
        .exchange(prepare_and_run("sess_s1", "SELECT 'session'", &[]))
        .await;
    assert_answer(&answer, "12DCZ", &["session"]);
    let on_server = a
        .rows("SELECT name, statement FROM pg_prepared_statements")
        .await;
    assert_eq!(
        on_server,
        [[
            Some("sess_s1".to_owned()),
            Some("SELECT 'session'".to_owned())
        ]]
    );
    assert_error(
        &a.exchange(prepare_and_run("sess_s1", "SELECT 2", &[]))
            .await,
        "42P05",
        &already_exists("sess_s1"),
        b'I',
    );
    let deallocated = a.query("DEALLOCATE sess_s1").await;
    assert_eq!(command_tags(&deallocated), ["DEALLOCATE"]);
    assert_error(
        &a.exchange(run("sess_s1", &[])).await,
        "26000",
        &does_not_exist("sess_s1"),
        b'I',
    );
}

// ---------------------------------------------------------------------------------------
// A real driver: tokio-postgres names every statement it prepares.
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smart_prepared_tokio_postgres_many_clients_pool_2() {
    const TASKS: i32 = 20;
    const ITERATIONS: i32 = 30;
    let qcp = Setup::smart().pool_size(2).start();
    let mut tasks = Vec::new();
    for task in 0..TASKS {
        let client = qcp.client().await;
        tasks.push(tokio::spawn(async move {
            // One statement kept for the whole run, one per iteration (texts shared between
            // tasks), and now and then a transaction.
            let own = client
                .prepare(&format!("SELECT $1::int * 2, {task}"))
                .await
                .expect("prepare the task's own statement");
            for i in 0..ITERATIONS {
                let k = (task + i) % 4 * 100;
                let each = client
                    .prepare(&format!("SELECT $1::int + {k}"))
                    .await
                    .expect("prepare");
                let row = client.query_one(&each, &[&i]).await.expect("query");
                assert_eq!(row.get::<_, i32>(0), i + k, "task {task}, iteration {i}");
                let row = client.query_one(&own, &[&i]).await.expect("query own");
                assert_eq!((row.get::<_, i32>(0), row.get::<_, i32>(1)), (2 * i, task));
                if i % 10 == 0 {
                    client.batch_execute("BEGIN").await.expect("BEGIN");
                    let row = client.query_one(&each, &[&i]).await.expect("query in tx");
                    assert_eq!(row.get::<_, i32>(0), i + k);
                    // The backend holds only qcp's names (tokio-postgres's are s0, s1, ...).
                    let names: Vec<String> = client
                        .query("SELECT name FROM pg_prepared_statements", &[])
                        .await
                        .expect("read pg_prepared_statements")
                        .iter()
                        .map(|r| r.get(0))
                        .collect();
                    assert!(!names.is_empty(), "the statement just used is there");
                    names.iter().for_each(|n| assert_internal_name(n));
                    client.batch_execute("COMMIT").await.expect("COMMIT");
                }
            }
        }));
    }
    for task in tasks {
        tokio::time::timeout(Duration::from_secs(120), task)
            .await
            .expect("the clients finish within 120 s")
            .expect("a client task failed");
    }
    wait_all_released(&qcp).await;
}

/// A Bind whose statement name does not even fit in an arena chunk cannot be rewritten: the
/// client gets a FATAL protocol error that says why, and other clients go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smart_prepared_statement_name_larger_than_a_chunk_is_refused_clearly() {
    let setup = Setup {
        arena: "arena:\n  chunk_size: 16KB\n  chunks_count: 512\n".into(),
        ..Setup::smart().pool_size(1)
    };
    let qcp = setup.start();
    let mut a = Wire::open(&qcp).await;
    let mut b = Wire::open(&qcp).await;
    let name = "n".repeat(20 * 1024);
    a.send(&Batch::new().bind("", &name, &[]).sync().bytes)
        .await;
    let answer = a.until_closed().await;
    let errors = errors(&answer);
    assert_eq!(errors.len(), 1, "{answer:?}");
    assert_eq!(errors[0].severity, "FATAL");
    assert_eq!(errors[0].code, "08P01");
    assert!(
        errors[0].message.contains("statement name is too long"),
        "{:?}",
        errors[0]
    );
    assert_eq!(b.value("SELECT 'still here'").await, "still here");
    wait_all_released(&qcp).await;
}
