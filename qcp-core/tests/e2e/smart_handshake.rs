//! Smart mode against the real PostgreSQL: the handshake cases (see docs/protocol.md, from
//! "Start-up packets" to "The greeting", and "Errors qcp sends itself"), with clients sharing
//! a one-connection pool: protocol negotiation and 3.2 cancel keys, refused start-ups, login
//! errors, the pool wait timeout (FATAL 53300, never a ReadyForQuery the client did not ask
//! for), and backends terminated by the server.

use std::time::{Duration, Instant};

use qcp_codec::{encode, ProtocolVersion};

use crate::support::wire::*;
use crate::support::*;

/// Smart mode with `trust` (the bytes of the start-up are exactly the test's).
fn trusting_smart() -> Setup {
    Setup {
        auth_method: "trust",
        ..Setup::smart()
    }
}

const LOGIN: [(&str, &str); 2] = [("user", SCRAM_USER.0), ("database", DATABASE)];

/// Reads until qcp closes and checks it sent exactly one FATAL with `code` and nothing that
/// looks like a login or a ReadyForQuery.
async fn assert_fatal_then_closed(raw: &mut Wire, code: &str) -> ErrorFields {
    let messages = raw.until_closed().await;
    assert!(
        messages.iter().all(|m| m.tag == b'E'),
        "only the error may come: {messages:?}"
    );
    let error = only_error(&messages);
    assert_eq!(error.severity, "FATAL", "{error:?}");
    assert_eq!(error.code, code, "{error:?}");
    error
}

/// 3.9999 with an unknown `_pq_.` option gets NegotiateProtocolVersion then a normal login;
/// 3.2 and 3.0 clients share the one backend; the 3.2 client's 32-byte key cancels its query.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smart_negotiated_and_3_2_clients_share_the_backend_and_cancel() {
    let qcp = trusting_smart().pool_size(1).start();
    let admin = admin().await;

    let mut greased = Wire::connect(qcp.addr).await;
    let mut params = LOGIN.to_vec();
    params.push(("_pq_.foo", "1"));
    greased
        .startup(
            ProtocolVersion {
                major: 3,
                minor: 9999,
            },
            &params,
        )
        .await;
    let greeting = greased.read_trust_login().await;
    assert_eq!(greeting.messages[0].tag, b'v');
    assert_eq!(
        greeting.negotiated,
        Some((ProtocolVersion::V3_2, vec!["_pq_.foo".to_owned()]))
    );

    let mut v32 = Wire::connect(qcp.addr).await;
    v32.startup(ProtocolVersion::V3_2, &LOGIN).await;
    let key32 = v32.read_trust_login().await;
    assert_eq!(key32.secret.len(), 32);

    let mut v30 = Wire::connect(qcp.addr).await;
    v30.startup(ProtocolVersion::V3_0, &LOGIN).await;
    assert_eq!(v30.read_trust_login().await.secret.len(), 4);

    let mut pids = Vec::new();
    for raw in [&mut greased, &mut v32, &mut v30] {
        pids.push(first_column(&raw.query("SELECT pg_backend_pid()").await)[0].clone());
    }
    pids.push(first_column(&greased.query("SELECT pg_backend_pid()").await)[0].clone());
    pids.dedup();
    assert_eq!(pids.len(), 1, "one backend for all: {pids:?}");
    let pid: i32 = pids[0].parse().unwrap();

    v32.send_query("SELECT pg_sleep(30)").await;
    wait_running(&admin, pid, "PgSleep").await;
    send_cancel(qcp.addr, &key32.key()).await;
    let cancelled = tokio::time::timeout(Duration::from_secs(5), v32.until_ready())
        .await
        .expect("the 32-byte key cancelled the query");
    assert_eq!(only_error(&cancelled).code, "57014");
    assert_eq!(
        first_column(&v30.query("SELECT 'v30 after'").await),
        ["v30 after"]
    );
    wait_all_released(&qcp).await;
}

/// Plaintext bytes sent right behind an SSLRequest are refused (`N`, then FATAL 08P01, no
/// login); a start-up packet over 10004 bytes is closed without a reply; a message length
/// below 4 after login closes the client, and the one backend stays usable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smart_malformed_start_ups_and_messages_are_refused() {
    let qcp = trusting_smart().pool_size(1).start();

    let mut stuffed = Vec::new();
    encode::ssl_request(&mut stuffed);
    encode::startup(&mut stuffed, ProtocolVersion::V3_0, &LOGIN).unwrap();
    let mut raw = Wire::connect(qcp.addr).await;
    raw.send(&stuffed).await;
    assert_eq!(raw.read_byte().await, Some(b'N'), "answered first");
    let error = assert_fatal_then_closed(&mut raw, "08P01").await;
    assert!(error.message.contains("unencrypted"), "{error:?}");

    let long = "a".repeat(10_050);
    let mut params = LOGIN.to_vec();
    params.push(("application_name", &long));
    let mut raw = Wire::connect(qcp.addr).await;
    raw.startup(ProtocolVersion::V3_0, &params).await;
    assert_eq!(raw.until_closed().await, vec![], "no reply");
    assert_eq!(status_count(&qcp.status(), "logins"), 0);

    let mut raw = Wire::connect(qcp.addr).await;
    raw.startup(ProtocolVersion::V3_0, &LOGIN).await;
    raw.read_trust_login().await;
    assert_eq!(first_column(&raw.query("SELECT 1").await), ["1"]);
    raw.send(b"Q\0\0\0\x03").await;
    assert_fatal_then_closed(&mut raw, "08P01").await;

    let mut next = Wire::connect(qcp.addr).await;
    next.startup(ProtocolVersion::V3_0, &LOGIN).await;
    next.read_trust_login().await;
    assert_eq!(first_column(&next.query("SELECT 2").await), ["2"]);
    wait_all_released(&qcp).await;
}

/// A wrong password is FATAL 28P01; an unknown database is 3D000, and only after a
/// successful authentication (a wrong password for it is still 28P01).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smart_login_errors_use_postgresql_sqlstates() {
    let qcp = Setup::smart().pool_size(1).start();
    let refused = |conninfo: String| async move {
        let Err(error) = connect(&conninfo).await else {
            panic!("the login is refused");
        };
        let db = error.as_db_error().expect("a server error").clone();
        (db.severity().to_owned(), db.code().code().to_owned())
    };
    assert_eq!(
        refused(qcp.conninfo(SCRAM_USER.0, "wrong", DATABASE)).await,
        ("FATAL".to_owned(), "28P01".to_owned())
    );
    assert_eq!(
        refused(qcp.conninfo(SCRAM_USER.0, "wrong", "qcp_smart_no_such_db")).await,
        ("FATAL".to_owned(), "28P01".to_owned()),
        "authentication comes before the database check"
    );
    assert_eq!(
        refused(qcp.conninfo(SCRAM_USER.0, SCRAM_USER.1, "qcp_smart_no_such_db")).await,
        ("FATAL".to_owned(), "3D000".to_owned())
    );
    // The pool is fine afterwards.
    let client = qcp.client().await;
    assert_eq!(
        client
            .query_one("SELECT 5", &[])
            .await
            .unwrap()
            .get::<_, i32>(0),
        5
    );
}

/// The pool stays exhausted past `query_wait`: the waiting client gets FATAL 53300 and is
/// closed, with no ReadyForQuery (nor any other answer) before it, whether it sent a simple
/// Query or an extended sequence without its Sync yet.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smart_pool_wait_timeout_is_fatal_53300_without_ready_for_query() {
    let qcp = Setup::smart()
        .pool_size(1)
        .extra("timeouts:\n  query_wait: 1s\n")
        .start();
    let mut holder = Wire::open(&qcp).await;
    assert_eq!(ready_status(&holder.query("BEGIN").await), b'T');

    let check = |messages: Vec<Msg>, waited: Duration| {
        assert_eq!(tags(&messages), "E", "only the FATAL: {messages:?}");
        let error = messages[0].error();
        assert_eq!(
            (error.severity.as_str(), error.code.as_str()),
            ("FATAL", "53300"),
            "{error:?}"
        );
        assert!(
            waited >= Duration::from_millis(900) && waited < Duration::from_secs(5),
            "waited {waited:?}"
        );
    };

    let mut extended = Wire::open(&qcp).await;
    let started = Instant::now();
    extended
        .send(
            &Batch::new()
                .parse("", "SELECT 1", &[])
                .bind("", "", &[])
                .describe_portal("")
                .execute("", 0)
                .flush()
                .bytes,
        )
        .await;
    let messages = extended.until_closed().await;
    check(messages, started.elapsed());

    let mut simple = Wire::open(&qcp).await;
    let started = Instant::now();
    simple.send_query("SELECT 1").await;
    let messages = simple.until_closed().await;
    check(messages, started.elapsed());

    // The holder was never disturbed.
    assert_eq!(ready_status(&holder.query("SELECT 1").await), b'T');
    assert_eq!(ready_status(&holder.query("COMMIT").await), b'I');
    wait_all_released(&qcp).await;
}

/// A backend terminated while idle in the pool is replaced without the client noticing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smart_backend_killed_while_idle_in_the_pool_is_replaced() {
    let qcp = Setup::smart().pool_size(1).start();
    let admin = admin().await;
    let mut a = Wire::open(&qcp).await;
    let mut pid = a.backend_pid().await;
    for _ in 0..2 {
        wait_all_released(&qcp).await;
        let killed: bool = admin
            .query_one("SELECT pg_terminate_backend($1)", &[&pid])
            .await
            .unwrap()
            .get(0);
        assert!(killed);
        wait_until("the terminated backend is gone", WAIT, || async {
            backend_state(&admin, pid).await.is_none()
        })
        .await;
        let answer = a.query("SELECT pg_backend_pid()").await;
        assert_eq!(
            tags(&answer),
            "TDCZ",
            "no error reaches the client: {answer:?}"
        );
        let fresh: i32 = first_column(&answer)[0].parse().unwrap();
        assert_ne!(fresh, pid);
        pid = fresh;
    }
    wait_all_released(&qcp).await;
}

/// A backend terminated while the client is inside a transaction on it: the client gets the
/// server's FATAL and is closed; the next client gets a fresh backend.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smart_backend_killed_mid_transaction_closes_the_client_with_the_fatal() {
    let qcp = Setup::smart().pool_size(1).start();
    let admin = admin().await;
    let mut a = Wire::open(&qcp).await;
    let began = a.query("BEGIN; SELECT pg_backend_pid()").await;
    assert_eq!(ready_status(&began), b'T');
    let pid: i32 = first_column(&began)[0].parse().unwrap();
    let killed: bool = admin
        .query_one("SELECT pg_terminate_backend($1)", &[&pid])
        .await
        .unwrap()
        .get(0);
    assert!(killed);
    let messages = a.until_closed().await;
    let errors = errors(&messages);
    assert_eq!(errors.len(), 1, "{messages:?}");
    assert_eq!(
        (errors[0].severity.as_str(), errors[0].code.as_str()),
        ("FATAL", "57P01")
    );
    assert!(!messages.iter().any(|m| m.tag == b'Z'));

    let mut b = Wire::open(&qcp).await;
    let fresh = b.backend_pid().await;
    assert_ne!(fresh, pid);
    wait_all_released(&qcp).await;
}
