//! Parameters in the server's spelling (see docs/protocol.md, "Parameter spellings"): a
//! client that asks for `client_encoding=utf8`, `UTF-8`, `unicode` or `euc-jp` (or
//! `DateStyle=iso`) is greeted with what PostgreSQL itself greets it with (`UTF8`, `EUC_JP`,
//! `ISO, MDY`), in Session and Smart mode; and spellings that mean the same value cost no
//! SET when their clients take turns on one backend. A relay between qcp and PostgreSQL
//! counts the `set_config` statements qcp sends.

use qcp_codec::backend::DataRow;

use crate::support::proxy::CountingProxy;
use crate::support::wire::*;
use crate::support::*;

/// The start-up values tried, in order (the first also opens the pool).
const ASKED: [(&str, &str); 9] = [
    ("client_encoding", "utf8"),
    ("client_encoding", "UTF-8"),
    ("client_encoding", "unicode"),
    ("client_encoding", "euc-jp"),
    ("client_encoding", "EUC_JP"),
    ("client_encoding", "UTF8"),
    ("client_encoding", "euc-jp"),
    ("DateStyle", "iso"),
    ("DateStyle", "German"),
];

/// What qcp's `sync_sql` sends for each parameter it sets.
const SET: &[u8] = b"pg_catalog.set_config(";

fn pg() -> std::net::SocketAddr {
    pg_addr().parse().expect("a host:port address")
}

/// Logs in straight to PostgreSQL as the SCRAM test user with `extra` start-up parameters.
async fn direct(extra: &[(&str, &str)]) -> Wire {
    let mut params = vec![("user", SCRAM_USER.0), ("database", DATABASE)];
    params.extend_from_slice(extra);
    Wire::login(pg(), SCRAM_USER.1, &params, None)
        .await
        .unwrap_or_else(|e| panic!("direct login failed: {e:?}"))
}

/// The ParameterStatus messages among `messages`, as (name, value).
fn statuses(messages: &[Msg]) -> Vec<(String, String)> {
    messages
        .iter()
        .filter(|m| m.tag == b'S')
        .map(|m| {
            let text = String::from_utf8_lossy(&m.body).into_owned();
            let mut parts = text.split('\0');
            let name = parts.next().unwrap_or_default().to_owned();
            (name, parts.next().unwrap_or_default().to_owned())
        })
        .collect()
}

/// `SHOW client_encoding` and the bytes of `chr(12354)` (HIRAGANA LETTER A) as the client
/// receives them, which shows the encoding really in force; checks no ParameterStatus came.
async fn encoding_seen(conn: &mut Wire) -> (String, Vec<u8>) {
    let messages = conn
        .query("SELECT current_setting('client_encoding'), chr(12354)")
        .await;
    assert_eq!(
        statuses(&messages),
        vec![],
        "no parameter changed for the client"
    );
    let row = messages.iter().find(|m| m.tag == b'D').expect("a row");
    let row = DataRow::decode(&row.body).expect("a DataRow");
    let values: Vec<Vec<u8>> = row
        .values()
        .map(|v| v.expect("not null").to_vec())
        .collect();
    (
        String::from_utf8_lossy(&values[0]).into_owned(),
        values[1].clone(),
    )
}

const HIRAGANA_A_UTF8: &[u8] = &[0xe3, 0x81, 0x82];
const HIRAGANA_A_EUC_JP: &[u8] = &[0xa4, 0xa2];

async fn leave(mut conn: Wire) {
    conn.send(&Batch::new().terminate().bytes).await;
    conn.until_closed().await;
}

/// Each start-up value is greeted as PostgreSQL greets it, the session has it, and nothing
/// corrects it later; in both modes, the pool's single backend shared by turns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_up_values_are_greeted_in_the_servers_spelling() {
    for setup in [Setup::session(), Setup::smart()] {
        let mode = setup.mode;
        let qcp = setup.pool_size(1).start();
        for (name, value) in ASKED {
            let expected = direct(&[(name, value)]).await.greeting_value(name);
            let mut conn = Wire::open_with(&qcp, &[(name, value)]).await;
            let what = format!("{mode} mode, {name}={value}");
            assert_eq!(conn.greeting_value(name), expected, "{what}");
            let answer = conn.query(&format!("SHOW {name}")).await;
            assert_eq!(first_column(&answer), vec![expected.clone()], "{what}");
            assert_eq!(statuses(&answer), vec![], "{what}: nothing to correct");
            leave(conn).await;
        }
    }
}

/// Smart mode, one backend: three clients spelling UTF8 three ways take turns without a
/// single SET (each spelling was learnt once, at its first login); a client in EUC_JP among
/// them gets its own encoding at each turn; no client ever hears a ParameterStatus, as none
/// would from its own server connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_spelling_one_encoding_differently_share_a_backend_without_a_set() {
    let proxy = CountingProxy::start(pg(), SET).await;
    let qcp = Setup {
        servers: Vec::new(),
        ..Setup::smart()
    }
    .extra(&format!(
        "  - address: {}\n    pool_size: 1\n    tls: {{mode: disable}}\n",
        proxy.addr
    ))
    .start();
    let mut utf8 = Vec::new();
    for spelling in ["utf8", "UTF-8", "unicode"] {
        utf8.push(Wire::open_with(&qcp, &[("client_encoding", spelling)]).await);
    }
    let learnt = proxy.seen();
    assert!(
        learnt <= 3,
        "at most one SET per spelling to learn: {learnt}"
    );
    // A spelling the pool knows costs nothing at login.
    let again = Wire::open_with(&qcp, &[("client_encoding", "unicode")]).await;
    assert_eq!(again.greeting_value("client_encoding"), "UTF8");
    assert_eq!(proxy.seen(), learnt);
    utf8.push(again);
    for _ in 0..3 {
        for conn in &mut utf8 {
            let seen = encoding_seen(conn).await;
            assert_eq!(seen, ("UTF8".to_owned(), HIRAGANA_A_UTF8.to_vec()));
        }
    }
    assert_eq!(
        proxy.seen(),
        learnt,
        "same value in another spelling: no SET"
    );

    let mut euc = Wire::open_with(&qcp, &[("client_encoding", "euc-jp")]).await;
    assert_eq!(euc.greeting_value("client_encoding"), "EUC_JP");
    for _ in 0..3 {
        let seen = encoding_seen(&mut euc).await;
        assert_eq!(seen, ("EUC_JP".to_owned(), HIRAGANA_A_EUC_JP.to_vec()));
        let seen = encoding_seen(&mut utf8[0]).await;
        assert_eq!(seen, ("UTF8".to_owned(), HIRAGANA_A_UTF8.to_vec()));
    }
}

/// Session mode, one backend: clients with different spellings of UTF8 come and go; once
/// each spelling is known, their turns cost no SET.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_clients_spelling_one_encoding_differently_reuse_the_backend_without_a_set() {
    let proxy = CountingProxy::start(pg(), SET).await;
    let qcp = Setup {
        servers: Vec::new(),
        ..Setup::session()
    }
    .extra(&format!(
        "  - address: {}\n    pool_size: 1\n    tls: {{mode: disable}}\n",
        proxy.addr
    ))
    .start();
    let mut learnt = None;
    for round in 0..3 {
        for spelling in ["utf8", "UTF-8", "unicode", "UTF8"] {
            let mut conn = Wire::open_with(&qcp, &[("client_encoding", spelling)]).await;
            assert_eq!(conn.greeting_value("client_encoding"), "UTF8");
            let seen = encoding_seen(&mut conn).await;
            assert_eq!(seen, ("UTF8".to_owned(), HIRAGANA_A_UTF8.to_vec()));
            leave(conn).await;
        }
        match learnt {
            None => learnt = Some(proxy.seen()),
            Some(learnt) => assert_eq!(proxy.seen(), learnt, "round {round}: no SET"),
        }
    }
}

/// Smart mode: a client's own SET client_encoding is reported to it as PostgreSQL reports it
/// and follows it across turns on the one backend; once it is back to UTF8 (in another
/// spelling than its neighbour's start-up `utf8`), their turns cost no SET.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_client_encoding_in_smart_mode_is_spelled_by_the_server() {
    let proxy = CountingProxy::start(pg(), SET).await;
    let qcp = Setup {
        servers: Vec::new(),
        ..Setup::smart()
    }
    .extra(&format!(
        "  - address: {}\n    pool_size: 1\n    tls: {{mode: disable}}\n",
        proxy.addr
    ))
    .start();
    let mut straight = direct(&[("client_encoding", "euc-jp")]).await;
    let mut a = Wire::open_with(&qcp, &[("client_encoding", "euc-jp")]).await;
    let mut b = Wire::open_with(&qcp, &[("client_encoding", "utf8")]).await;
    for (sql, expected) in [
        ("SET client_encoding = 'unicode'", "UTF8"),
        ("SET client_encoding = 'euc-jp'", "EUC_JP"),
        ("SET client_encoding = 'UTF-8'", "UTF8"),
    ] {
        let direct = statuses(&straight.query(sql).await);
        let through = statuses(&a.query(sql).await);
        assert_eq!(through, direct, "{sql}");
        assert_eq!(
            through,
            [("client_encoding".to_owned(), expected.to_owned())]
        );
        for _ in 0..2 {
            let seen = encoding_seen(&mut b).await;
            assert_eq!(seen, ("UTF8".to_owned(), HIRAGANA_A_UTF8.to_vec()));
            let seen = encoding_seen(&mut a).await;
            let bytes = if expected == "UTF8" {
                HIRAGANA_A_UTF8
            } else {
                HIRAGANA_A_EUC_JP
            };
            assert_eq!(seen, (expected.to_owned(), bytes.to_vec()), "after {sql}");
        }
    }
    let before = proxy.seen();
    for _ in 0..3 {
        for conn in [&mut a, &mut b] {
            let seen = encoding_seen(conn).await;
            assert_eq!(seen, ("UTF8".to_owned(), HIRAGANA_A_UTF8.to_vec()));
        }
    }
    assert_eq!(proxy.seen(), before, "both in UTF8: no SET");
}

/// A start-up value the server refuses refuses the login, FATAL and in the server's words,
/// as PostgreSQL refuses it at start-up; the pool goes on serving others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_up_value_the_server_refuses_refuses_the_login_as_postgresql_does() {
    let params = [
        ("user", SCRAM_USER.0),
        ("database", DATABASE),
        ("client_encoding", "no-such-encoding"),
    ];
    let expected = Wire::login(pg(), SCRAM_USER.1, &params, None)
        .await
        .err()
        .expect("PostgreSQL refuses the encoding");
    assert_eq!(expected.severity, "FATAL");
    for setup in [Setup::session(), Setup::smart()] {
        let mode = setup.mode;
        let qcp = setup.pool_size(1).start();
        let got = Wire::login(qcp.addr, SCRAM_USER.1, &params, None)
            .await
            .err()
            .expect("qcp refuses the encoding");
        assert_eq!(got, expected, "{mode} mode");
        let mut conn = Wire::open_with(&qcp, &[("client_encoding", "unicode")]).await;
        assert_eq!(encoding_seen(&mut conn).await.0, "UTF8");
    }
}
