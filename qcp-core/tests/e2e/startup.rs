//! The start-up phase at the byte level, against the real test PostgreSQL: encryption
//! requests, protocol versions and `_pq_.` options, size limits, malformed messages and
//! cancel requests. Clients log in with `trust` so the bytes are exactly the start-up's.

use std::time::Duration;

use qcp_codec::{encode, ProtocolVersion};

use crate::support::wire::*;
use crate::support::*;

/// qcp in Session mode with `trust` (qcp still logs in to the server with the password).
fn trusting() -> Setup {
    Setup {
        auth_method: "trust",
        ..Setup::session()
    }
}

const LOGIN: [(&str, &str); 2] = [("user", SCRAM_USER.0), ("database", DATABASE)];

fn version(major: u16, minor: u16) -> ProtocolVersion {
    ProtocolVersion { major, minor }
}

fn ssl_request() -> Vec<u8> {
    let mut out = Vec::new();
    encode::ssl_request(&mut out);
    out
}

fn gss_enc_request() -> Vec<u8> {
    let mut out = Vec::new();
    encode::gss_enc_request(&mut out);
    out
}

/// Logs in (3.0, trust) and checks a query works.
async fn login_and_query(raw: &mut Wire) -> Greeting {
    raw.startup(ProtocolVersion::V3_0, &LOGIN).await;
    let greeting = raw.read_trust_login().await;
    assert_eq!(first_column(&raw.query("SELECT 40 + 2").await), ["42"]);
    greeting
}

/// Reads until qcp closes, and checks it sent nothing at all (as PostgreSQL, which only logs
/// a start-up packet it cannot even frame).
async fn assert_closed_without_a_reply(raw: &mut Wire) {
    let messages = raw.until_closed().await;
    assert!(messages.is_empty(), "expected no reply: {messages:?}");
}

/// Reads what qcp sends until it closes, and checks it is exactly one FATAL 08P01 and no
/// login. Returns the error's message.
async fn assert_protocol_violation(raw: &mut Wire) -> String {
    let messages = raw.until_closed().await;
    assert!(
        messages.iter().all(|m| m.tag != b'R' && m.tag != b'Z'),
        "no login may happen: {messages:?}"
    );
    let error = only_error(&messages);
    assert_eq!(error.severity, "FATAL", "{error:?}");
    assert_eq!(error.code, "08P01", "{error:?}");
    error.message
}

// ---- encryption requests ----------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssl_request_is_answered_n_then_a_normal_login() {
    let qcp = trusting().start();
    let mut raw = Wire::connect(qcp.addr).await;
    raw.send(&ssl_request()).await;
    assert_eq!(raw.read_byte().await, Some(b'N'));
    login_and_query(&mut raw).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gssenc_request_is_answered_n_then_ssl_then_a_normal_login() {
    let qcp = trusting().start();
    let mut raw = Wire::connect(qcp.addr).await;
    raw.send(&gss_enc_request()).await;
    assert_eq!(raw.read_byte().await, Some(b'N'));
    // libpq tries the other encryption next, then plaintext.
    raw.send(&ssl_request()).await;
    assert_eq!(raw.read_byte().await, Some(b'N'));
    login_and_query(&mut raw).await;
}

/// Bytes sent right behind an encryption request (in the same write, before qcp answered)
/// could pass for encrypted data (CVE-2021-23214 class): as PostgreSQL, qcp answers the
/// request, then refuses them in PostgreSQL's words, and no login happens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plaintext_right_after_an_encryption_request_is_refused() {
    let qcp = trusting().start();
    for (request, what) in [
        (ssl_request(), "SSL request"),
        (gss_enc_request(), "GSSAPI encryption request"),
    ] {
        let mut bytes = request.clone();
        encode::startup(&mut bytes, ProtocolVersion::V3_0, &LOGIN).unwrap();
        let mut raw = Wire::connect(qcp.addr).await;
        raw.send(&bytes).await;
        assert_eq!(raw.read_byte().await, Some(b'N'), "answered first");
        let messages = raw.until_closed().await;
        let error = only_error(&messages);
        assert_eq!(messages.len(), 1, "{messages:?}");
        assert_eq!(
            (error.severity.as_str(), error.code.as_str()),
            ("FATAL", "08P01")
        );
        assert_eq!(
            error.message,
            format!("received unencrypted data after {what}")
        );
        assert_eq!(
            error.detail.as_deref(),
            Some("This could be either a client-software bug or evidence of an attempted man-in-the-middle attack.")
        );
    }
    assert_eq!(status_count(&qcp.status(), "logins"), 0);
    assert_eq!(status_count(&qcp.status(), "server_connections_opened"), 0);
}

/// A request already answered `N` is, as PostgreSQL reads it, a start-up packet for protocol
/// 1234.5679 (or .5680): refused as unsupported. (The differential test cannot show this for
/// GSSENCRequest: the test PostgreSQL has GSSAPI and answers `G`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_encryption_request_asked_twice_is_an_unsupported_protocol() {
    let qcp = trusting().start();
    for (request, code) in [(ssl_request(), "5679"), (gss_enc_request(), "5680")] {
        let mut raw = Wire::connect(qcp.addr).await;
        raw.send(&request).await;
        assert_eq!(raw.read_byte().await, Some(b'N'));
        raw.send(&request).await;
        let messages = raw.until_closed().await;
        let error = only_error(&messages);
        assert_eq!(
            (error.severity.as_str(), error.code.as_str()),
            ("FATAL", "0A000")
        );
        assert_eq!(
            error.message,
            format!("unsupported frontend protocol 1234.{code}: server supports 3.0 to 3.2")
        );
    }
}

// ---- protocol versions --------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protocol_3_2_gets_a_32_byte_cancel_secret_and_3_0_a_4_byte_one() {
    let qcp = trusting().start();
    let mut raw = Wire::connect(qcp.addr).await;
    raw.startup(ProtocolVersion::V3_2, &LOGIN).await;
    let greeting = raw.read_trust_login().await;
    assert_eq!(greeting.negotiated, None, "3.2 needs no negotiation");
    assert_eq!(greeting.secret.len(), 32);
    assert!(greeting.pid > 0);
    assert_eq!(first_column(&raw.query("SELECT 'v32'").await), ["v32"]);

    let mut raw = Wire::connect(qcp.addr).await;
    let greeting = login_and_query(&mut raw).await;
    assert_eq!(greeting.negotiated, None);
    assert_eq!(greeting.secret.len(), 4);
}

/// PostgreSQL 19 libpq "greases" the handshake with 3.9999 and made-up `_pq_.` options: qcp
/// answers NegotiateProtocolVersion (3.2, the options it does not know) and carries on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn newer_minor_versions_and_unknown_options_are_negotiated() {
    let qcp = trusting().start();
    let mut raw = Wire::connect(qcp.addr).await;
    let mut params = LOGIN.to_vec();
    params.push(("_pq_.foo", "1"));
    raw.startup(version(3, 9999), &params).await;
    let greeting = raw.read_trust_login().await;
    assert_eq!(
        greeting.messages[0].tag, b'v',
        "NegotiateProtocolVersion comes first"
    );
    assert_eq!(
        greeting.negotiated,
        Some((ProtocolVersion::V3_2, vec!["_pq_.foo".to_owned()]))
    );
    assert_eq!(greeting.secret.len(), 32, "the session speaks 3.2");
    assert_eq!(
        first_column(&raw.query("SELECT 'greased'").await),
        ["greased"]
    );

    // 3.1 was never released: it goes down to 3.0.
    let mut raw = Wire::connect(qcp.addr).await;
    raw.startup(version(3, 1), &LOGIN).await;
    let greeting = raw.read_trust_login().await;
    assert_eq!(greeting.negotiated, Some((ProtocolVersion::V3_0, vec![])));
    assert_eq!(greeting.secret.len(), 4);

    // A supported version with unknown options lists just the options.
    let mut raw = Wire::connect(qcp.addr).await;
    let mut params = LOGIN.to_vec();
    params.extend([("_pq_.a", "x"), ("_pq_.b", "y")]);
    raw.startup(ProtocolVersion::V3_0, &params).await;
    let greeting = raw.read_trust_login().await;
    assert_eq!(
        greeting.negotiated,
        Some((
            ProtocolVersion::V3_0,
            vec!["_pq_.a".to_owned(), "_pq_.b".to_owned()]
        ))
    );
    assert_eq!(first_column(&raw.query("SELECT 1").await), ["1"]);
}

/// With a password to ask for, NegotiateProtocolVersion still comes before the SASL request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn negotiation_comes_before_authentication() {
    let qcp = Setup::session().start();
    let mut raw = Wire::connect(qcp.addr).await;
    let mut params = LOGIN.to_vec();
    params.push(("_pq_.foo", "1"));
    raw.startup(version(3, 9999), &params).await;
    assert_eq!(raw.next().await.tag, b'v');
    let auth = raw.next().await;
    assert_eq!(auth.tag, b'R');
    assert!(matches!(
        auth.decode(),
        qcp_codec::BackendMessage::Authentication(qcp_codec::auth::Authentication::Sasl(_))
    ));
}

// ---- limits and malformed messages ------------------------------------------------------------

/// PostgreSQL's MAX_STARTUP_PACKET_LENGTH, 10000 bytes, counts what follows the length word:
/// a 10 004-byte packet logs in, a longer one is closed without a reply (PostgreSQL only logs
/// "invalid length of startup packet"), as soon as its length is in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn startup_packet_over_10004_bytes_is_closed_without_a_reply() {
    let qcp = trusting().start();
    let with_filler = |filler: &str| {
        let mut params = LOGIN.to_vec();
        params.push(("qcp.filler", filler));
        let mut packet = Vec::new();
        encode::startup(&mut packet, ProtocolVersion::V3_0, &params).unwrap();
        packet
    };
    let filler = "b".repeat(10_004 - with_filler("").len());
    let packet = with_filler(&filler);
    assert_eq!(packet.len(), 10_004);
    let mut raw = Wire::connect(qcp.addr).await;
    raw.send(&packet).await;
    raw.read_trust_login().await;
    assert_eq!(
        first_column(
            &raw.query("SELECT length(current_setting('qcp.filler'))")
                .await
        ),
        [filler.len().to_string()]
    );

    let mut raw = Wire::connect(qcp.addr).await;
    raw.send(&with_filler(&format!("{filler}b"))).await;
    assert_closed_without_a_reply(&mut raw).await;

    // Refused as soon as the length is in, without waiting for the rest.
    let mut raw = Wire::connect(qcp.addr).await;
    raw.send(&20_000u32.to_be_bytes()).await;
    assert_closed_without_a_reply(&mut raw).await;
    assert_eq!(status_count(&qcp.status(), "logins"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn startup_packet_shorter_than_8_bytes_is_closed_without_a_reply() {
    let qcp = trusting().start();
    let mut raw = Wire::connect(qcp.addr).await;
    raw.send(&[0, 0, 0, 4, 0, 3, 0, 0]).await;
    assert_closed_without_a_reply(&mut raw).await;
}

/// A length below 4 cannot be a message: the stream is out of sync, so FATAL and close, both
/// before the client has a server connection and while it holds one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_length_below_4_after_login_is_fatal_08p01() {
    for setup in [
        trusting(),
        Setup {
            mode: "Smart",
            ..trusting()
        },
    ] {
        let qcp = setup.pool_size(1).start();
        // Nothing linked yet.
        let mut raw = Wire::connect(qcp.addr).await;
        raw.startup(ProtocolVersion::V3_0, &LOGIN).await;
        raw.read_trust_login().await;
        raw.send(b"Q\0\0\0\x02").await;
        assert_protocol_violation(&mut raw).await;

        // After a query (Session mode: linked; Smart: linked again by the next message).
        let mut raw = Wire::connect(qcp.addr).await;
        login_and_query(&mut raw).await;
        raw.send(b"S\0\0\0\x00").await;
        assert_protocol_violation(&mut raw).await;

        // The pool's only server connection is still usable by the next client.
        let mut raw = Wire::connect(qcp.addr).await;
        login_and_query(&mut raw).await;
    }
}

// ---- cancel requests --------------------------------------------------------------------------

fn cancel_request(pid: i32, secret: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    encode::cancel_request(&mut out, pid, secret).unwrap();
    out
}

/// Sends a CancelRequest on a new connection: qcp answers nothing and closes it.
async fn send_cancel(qcp: &Qcp, pid: i32, secret: &[u8]) {
    let mut raw = Wire::connect(qcp.addr).await;
    raw.send(&cancel_request(pid, secret)).await;
    assert_eq!(
        raw.read_byte().await,
        None,
        "a cancel request gets no answer"
    );
}

/// Sends `sql` (which must be unique to the test) and waits until the server runs it.
async fn start_query(raw: &mut Wire, sql: &str) {
    raw.send_query(sql).await;
    let admin = connect(&superuser_conninfo(&pg_addr())).await.unwrap();
    wait_until(
        "the query runs on the server",
        Duration::from_secs(20),
        || {
            let admin = &admin;
            async move {
                admin
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity WHERE query = $1 AND state = 'active'",
                    &[&sql],
                )
                .await
                .unwrap()
                .get::<_, i64>(0)
                == 1
            }
        },
    )
    .await;
}

/// A 3.2 client cancels with its 32-byte key: the query stops with 57014 and the session
/// goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_with_the_32_byte_key_cancels() {
    let qcp = trusting().start();
    let mut raw = Wire::connect(qcp.addr).await;
    raw.startup(ProtocolVersion::V3_2, &LOGIN).await;
    let greeting = raw.read_trust_login().await;
    assert_eq!(greeting.secret.len(), 32);
    start_query(
        &mut raw,
        "SELECT pg_sleep(60) /* startup.rs cancel right */",
    )
    .await;
    send_cancel(&qcp, greeting.pid, &greeting.secret).await;
    let messages = tokio::time::timeout(Duration::from_secs(10), raw.until_ready())
        .await
        .expect("the cancel took effect");
    let error = only_error(&messages);
    assert_eq!(error.code, "57014", "{error:?}");
    assert_eq!(first_column(&raw.query("SELECT 'after'").await), ["after"]);
}

/// A wrong key (wrong secret, or another pid) gets the connection closed and cancels nothing:
/// the query runs to its end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_with_a_wrong_key_cancels_nothing() {
    let qcp = trusting().start();
    let mut raw = Wire::connect(qcp.addr).await;
    raw.startup(ProtocolVersion::V3_2, &LOGIN).await;
    let greeting = raw.read_trust_login().await;
    let sql = "SELECT 'slept' FROM pg_sleep(2) /* startup.rs cancel wrong */";
    start_query(&mut raw, sql).await;
    let mut wrong = greeting.secret.clone();
    wrong[31] ^= 1;
    send_cancel(&qcp, greeting.pid, &wrong).await;
    send_cancel(&qcp, greeting.pid, &greeting.secret[..4]).await;
    send_cancel(&qcp, greeting.pid.wrapping_add(1), &greeting.secret).await;
    // qcp closed each cancel connection after acting on it (a matching key is forwarded
    // before the close), so a cancel would already have reached the server.
    let messages = raw.until_ready().await;
    assert!(
        messages.iter().all(|m| m.tag != b'E'),
        "the query was cancelled: {messages:?}"
    );
    assert_eq!(first_column(&messages), ["slept"]);
}

/// A 3.0 client (tokio-postgres) cancels through qcp with the 4-byte key qcp gave it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_with_the_4_byte_key_of_protocol_3_0_cancels() {
    let qcp = Setup::session().start();
    let client = qcp.client().await;
    let token = client.cancel_token();
    let sql = "SELECT pg_sleep(60) /* startup.rs cancel 3.0 */";
    let running = tokio::spawn(async move {
        let outcome = client.simple_query(sql).await.map(drop);
        (client, outcome)
    });
    let admin = connect(&superuser_conninfo(&pg_addr())).await.unwrap();
    wait_until(
        "the query runs on the server",
        Duration::from_secs(20),
        || {
            let admin = &admin;
            async move {
                admin
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity WHERE query = $1 AND state = 'active'",
                    &[&sql],
                )
                .await
                .unwrap()
                .get::<_, i64>(0)
                == 1
            }
        },
    )
    .await;
    token
        .cancel_query(tokio_postgres::NoTls)
        .await
        .expect("cancel request sent");
    let (client, outcome) = tokio::time::timeout(Duration::from_secs(10), running)
        .await
        .expect("the cancel took effect")
        .unwrap();
    let error = outcome.expect_err("cancelled");
    assert_eq!(
        error.code(),
        Some(&tokio_postgres::error::SqlState::QUERY_CANCELED)
    );
    assert_eq!(
        client
            .query_one("SELECT 1", &[])
            .await
            .unwrap()
            .get::<_, i32>(0),
        1
    );
}

/// A password message whose length is below 4 breaks the stream during authentication too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_password_message_is_fatal_08p01() {
    let qcp = Setup::session().start();
    let mut raw = Wire::connect(qcp.addr).await;
    raw.startup(ProtocolVersion::V3_0, &LOGIN).await;
    assert_eq!(raw.next().await.tag, b'R');
    raw.send(b"p\0\0\0\x01").await;
    assert_protocol_violation(&mut raw).await;

    // Another message type where the password belongs.
    let mut raw = Wire::connect(qcp.addr).await;
    raw.startup(ProtocolVersion::V3_0, &LOGIN).await;
    assert_eq!(raw.next().await.tag, b'R');
    raw.send_query("SELECT 1").await;
    assert_protocol_violation(&mut raw).await;
}

/// The greeting carries the client's own start-up values, and the session has them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn greeting_reports_the_clients_startup_parameters() {
    let qcp = trusting().start();
    // Prime the pool's cached greeting with another client first.
    let mut other = Wire::connect(qcp.addr).await;
    login_and_query(&mut other).await;

    let mut raw = Wire::connect(qcp.addr).await;
    let mut params = LOGIN.to_vec();
    params.push(("application_name", "qcp-startup-test"));
    raw.startup(ProtocolVersion::V3_0, &params).await;
    let greeting = raw.read_trust_login().await;
    let app = greeting
        .params
        .iter()
        .find(|(name, _)| name == "application_name")
        .map(|(_, value)| value.as_str());
    assert_eq!(app, Some("qcp-startup-test"));
    assert_eq!(
        first_column(&raw.query("SHOW application_name").await),
        ["qcp-startup-test"]
    );
}

/// A client that stops in the middle of its start-up packet is closed once
/// timeouts.client_login is over, without a word (as PostgreSQL at its
/// authentication_timeout).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_not_finished_in_time_is_closed() {
    let qcp = trusting().extra("timeouts:\n  client_login: 1s\n").start();
    let mut packet = Vec::new();
    encode::startup(&mut packet, ProtocolVersion::V3_0, &LOGIN).unwrap();
    let mut raw = Wire::connect(qcp.addr).await;
    let started = std::time::Instant::now();
    raw.send(&packet[..packet.len() - 3]).await;
    assert_closed_without_a_reply(&mut raw).await;
    assert!(started.elapsed() >= Duration::from_millis(900));
    assert_eq!(status_count(&qcp.status(), "logins"), 0);
}
