//! Logging in through qcp, against the real test PostgreSQL: each client authentication
//! method qcp offers, each server authentication qcp answers, the errors for a wrong password,
//! an unknown user and an unknown database, SCRAM pass-through with only a SCRAM secret, and
//! greetings answered by qcp itself.

use std::time::Duration;

use qcp_codec::auth::Authentication;
use qcp_codec::{encode, BackendMessage, ProtocolVersion};
use tokio_postgres::error::{DbError, SqlState};

use crate::support::wire::*;
use crate::support::*;

/// Every test user with the password a client gives for it.
const USERS: [(&str, &str); 4] = [SCRAM_USER, MD5_USER, PLAIN_USER, (TRUST_USER, "unused")];

fn with_auth(setup: Setup, method: &'static str) -> Setup {
    Setup {
        auth_method: method,
        ..setup
    }
}

fn conninfo(qcp: &Qcp, user: &str, password: Option<&str>, database: &str) -> String {
    let mut s = format!(
        "host=127.0.0.1 port={} user={user} dbname={database} sslmode=disable connect_timeout=20",
        qcp.addr.port()
    );
    if let Some(password) = password {
        s.push_str(&format!(" password={password}"));
    }
    s
}

async fn login(
    qcp: &Qcp,
    user: &str,
    password: Option<&str>,
    database: &str,
) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    connect(&conninfo(qcp, user, password, database)).await
}

/// The ErrorResponse a failed login got (fails the test if the login worked or failed
/// without one).
async fn refused(qcp: &Qcp, user: &str, password: Option<&str>, database: &str) -> DbError {
    match login(qcp, user, password, database).await {
        Ok(_) => panic!("{user}/{database} logged in, expected a refusal"),
        Err(error) => error
            .as_db_error()
            .unwrap_or_else(|| panic!("{user}/{database}: no ErrorResponse: {error}"))
            .clone(),
    }
}

/// Logs in and checks the session runs as `user` on `database`.
async fn assert_logs_in(qcp: &Qcp, user: &str, password: Option<&str>, database: &str) {
    let client = login(qcp, user, password, database)
        .await
        .unwrap_or_else(|e| panic!("{user} logs in through qcp ({}): {e}", qcp.status()));
    let row = client
        .query_one("SELECT current_user::text, current_database()::text", &[])
        .await
        .unwrap_or_else(|e| panic!("{user} runs a query: {e}"));
    assert_eq!(row.get::<_, String>(0), user);
    assert_eq!(row.get::<_, String>(1), database);
}

fn assert_bad_password(error: &DbError, user: &str) {
    assert_eq!(error.severity(), "FATAL", "{error:?}");
    assert_eq!(error.code(), &SqlState::INVALID_PASSWORD, "{error:?}");
    assert_eq!(
        error.message(),
        format!("password authentication failed for user \"{user}\""),
    );
    assert_eq!(error.hint(), None, "{error:?}");
    assert_eq!(error.detail(), None, "{error:?}");
}

fn opened(qcp: &Qcp) -> u64 {
    status_count(&qcp.status(), "server_connections_opened")
}

// ---- each client method x each server method ------------------------------------------------

/// Clients prove their password with SCRAM; qcp logs in to the server with SCRAM (qcp_scram),
/// md5 (qcp_md5), cleartext (qcp_plain) or nothing (qcp_trust), as pg_hba asks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scram_clients_reach_servers_with_every_auth_kind() {
    let qcp = Setup::session().start();
    for (user, password) in USERS {
        assert_logs_in(&qcp, user, Some(password), DATABASE).await;
    }
    assert_eq!(opened(&qcp), 4, "one server login per user");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn md5_clients_reach_servers_with_every_auth_kind() {
    let qcp = with_auth(Setup::smart(), "md5").start();
    for (user, password) in USERS {
        assert_logs_in(&qcp, user, Some(password), DATABASE).await;
    }
    assert_eq!(opened(&qcp), 4);
}

/// With `trust` qcp asks no password (tokio-postgres without a password fails if asked for
/// one) and still logs in to the servers with the configured ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trust_clients_log_in_without_a_password() {
    let qcp = with_auth(Setup::session(), "trust").start();
    for (user, _) in USERS {
        assert_logs_in(&qcp, user, None, DATABASE).await;
    }
    // A wrong password is not even looked at.
    assert_logs_in(&qcp, SCRAM_USER.0, Some("wrong"), OTHER_DATABASE).await;
}

/// The client side of each method, seen byte by byte: SCRAM asks R(10) with only
/// SCRAM-SHA-256, md5 asks R(5) with a salt, trust answers R(0) at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_method_sends_its_own_authentication_request() {
    for (method, expected) in [("scram-sha-256", 10), ("md5", 5), ("trust", 0)] {
        let qcp = with_auth(Setup::session(), method).start();
        let mut raw = Wire::connect(qcp.addr).await;
        raw.startup(
            ProtocolVersion::V3_0,
            &[("user", SCRAM_USER.0), ("database", DATABASE)],
        )
        .await;
        let first = raw.next().await;
        let code = match first.decode() {
            BackendMessage::Authentication(Authentication::Ok) => 0,
            BackendMessage::Authentication(Authentication::Md5Password { .. }) => 5,
            BackendMessage::Authentication(Authentication::Sasl(mechanisms)) => {
                let names: Vec<&[u8]> = mechanisms.iter().collect();
                assert_eq!(names, [b"SCRAM-SHA-256"], "no -PLUS without TLS");
                10
            }
            other => panic!("{method}: unexpected first message {other:?}"),
        };
        assert_eq!(code, expected, "{method}");
    }
}

// ---- failures ---------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_is_fatal_28p01() {
    for method in ["scram-sha-256", "md5"] {
        let qcp = with_auth(Setup::session(), method).start();
        for (user, _) in USERS {
            let error = refused(&qcp, user, Some("not-the-password"), DATABASE).await;
            assert_bad_password(&error, user);
        }
        assert_eq!(opened(&qcp), 0, "{method}: no server was asked");
        // The right password still works afterwards.
        assert_logs_in(&qcp, SCRAM_USER.0, Some(SCRAM_USER.1), DATABASE).await;
    }
}

/// An unknown user gets exactly the error a wrong password gets: nothing tells which users
/// exist.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_user_is_told_the_same_as_a_wrong_password() {
    for method in ["scram-sha-256", "md5"] {
        let qcp = with_auth(Setup::session(), method).start();
        let unknown = refused(&qcp, "qcp_nobody", Some("whatever"), DATABASE).await;
        assert_bad_password(&unknown, "qcp_nobody");
        let known = refused(&qcp, SCRAM_USER.0, Some("whatever"), DATABASE).await;
        assert_eq!(
            (
                unknown.severity(),
                unknown.code(),
                unknown.hint(),
                unknown.detail()
            ),
            (known.severity(), known.code(), known.hint(), known.detail()),
            "{method}"
        );
        assert_eq!(
            unknown.message().replace("qcp_nobody", "X"),
            known.message().replace(SCRAM_USER.0, "X")
        );
        assert_eq!(opened(&qcp), 0);
    }
}

/// Runs a SCRAM exchange by hand as `user` with `password` and returns the iteration count
/// and salt of the server-first message and the error that ended it.
async fn scram_attempt(qcp: &Qcp, user: &str, password: &str) -> (String, String, ErrorFields) {
    use postgres_protocol::authentication::sasl::{ChannelBinding, ScramSha256};
    let mut raw = Wire::connect(qcp.addr).await;
    raw.startup(
        ProtocolVersion::V3_0,
        &[("user", user), ("database", DATABASE)],
    )
    .await;
    let msg = raw.next().await;
    assert!(
        matches!(
            msg.decode(),
            BackendMessage::Authentication(Authentication::Sasl(_))
        ),
        "{user}: {msg:?}"
    );
    let mut scram = ScramSha256::new(password.as_bytes(), ChannelBinding::unsupported());
    let mut out = Vec::new();
    encode::sasl_initial_response(&mut out, "SCRAM-SHA-256", Some(scram.message())).unwrap();
    raw.send(&out).await;
    let msg = raw.next().await;
    let BackendMessage::Authentication(Authentication::SaslContinue(server_first)) = msg.decode()
    else {
        panic!("{user}: expected SASLContinue, got {msg:?}");
    };
    let server_first = String::from_utf8(server_first.to_vec()).unwrap();
    let field = |name: &str| {
        server_first
            .split(',')
            .find_map(|f| f.strip_prefix(name))
            .unwrap_or_else(|| panic!("no {name} in {server_first}"))
            .to_owned()
    };
    let (iterations, salt) = (field("i="), field("s="));
    scram.update(server_first.as_bytes()).unwrap();
    out.clear();
    encode::sasl_response(&mut out, scram.message()).unwrap();
    raw.send(&out).await;
    let rest = raw.until_closed().await;
    assert!(
        rest.iter().all(|m| m.tag != b'R'),
        "{user}: a failed proof must not get SASLFinal or AuthenticationOk: {rest:?}"
    );
    (iterations, salt, only_error(&rest))
}

/// The unknown user's SCRAM exchange looks like a real one: same iteration count, a salt of
/// the same size that does not change between attempts, and the failure comes only after the
/// proof.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_user_gets_a_convincing_scram_exchange() {
    use base64::Engine;
    let qcp = Setup::session().start();
    let (known_i, known_salt, known_error) =
        scram_attempt(&qcp, SCRAM_USER.0, "wrong-password").await;
    let (mock_i, mock_salt, mock_error) = scram_attempt(&qcp, "qcp_nobody", "anything").await;
    let (_, mock_salt_again, _) = scram_attempt(&qcp, "qcp_nobody", "other").await;
    assert_eq!(mock_i, known_i);
    let decode = |s: &str| base64::engine::general_purpose::STANDARD.decode(s).unwrap();
    assert_eq!(decode(&mock_salt).len(), decode(&known_salt).len());
    assert_eq!(
        mock_salt, mock_salt_again,
        "a random salt per attempt would give it away"
    );
    assert_eq!(known_error.code, "28P01");
    assert_eq!(mock_error.code, "28P01");
    assert_eq!(
        mock_error.message,
        "password authentication failed for user \"qcp_nobody\""
    );
    assert_eq!((mock_error.hint, mock_error.detail), (None, None));
}

/// qcp serves every database, so the server decides: 3D000 as PostgreSQL says it, but only to
/// a client that authenticated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_database_on_the_server_is_3d000_after_authentication() {
    let qcp = Setup::session().start();
    let error = refused(&qcp, SCRAM_USER.0, Some(SCRAM_USER.1), "qcp_no_such_db").await;
    assert_eq!(error.severity(), "FATAL");
    assert_eq!(error.code(), &SqlState::INVALID_CATALOG_NAME, "{error:?}");
    assert_eq!(
        error.message(),
        "database \"qcp_no_such_db\" does not exist"
    );
    // Without the right password the database is never looked at.
    let error = refused(&qcp, SCRAM_USER.0, Some("wrong"), "qcp_no_such_db").await;
    assert_bad_password(&error, SCRAM_USER.0);
    let error = refused(&qcp, "qcp_nobody", Some("wrong"), "qcp_no_such_db").await;
    assert_bad_password(&error, "qcp_nobody");
    // The failed server login left qcp working, and left no pool behind for the
    // database that does not exist (clients cannot grow the pool list at will).
    assert_eq!(status_count(&qcp.status(), "pools"), 0);
    assert_logs_in(&qcp, SCRAM_USER.0, Some(SCRAM_USER.1), DATABASE).await;
    assert_eq!(status_count(&qcp.status(), "pools"), 1);
}

/// No configured server serves the database: qcp itself answers 3D000, again only after
/// authentication, for every client method.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_no_server_serves_is_3d000_after_authentication() {
    for method in ["scram-sha-256", "md5"] {
        let qcp = with_auth(Setup::session(), method).start_edited(|yaml| {
            yaml.replace(
                "    pool_size: 4\n",
                &format!("    pool_size: 4\n    databases: [{DATABASE}]\n"),
            )
        });
        let error = refused(&qcp, SCRAM_USER.0, Some(SCRAM_USER.1), OTHER_DATABASE).await;
        assert_eq!(error.severity(), "FATAL");
        assert_eq!(error.code(), &SqlState::INVALID_CATALOG_NAME, "{error:?}");
        assert_eq!(
            error.message(),
            format!("database \"{OTHER_DATABASE}\" does not exist")
        );
        let error = refused(&qcp, SCRAM_USER.0, Some("wrong"), OTHER_DATABASE).await;
        assert_bad_password(&error, SCRAM_USER.0);
        let error = refused(&qcp, "qcp_nobody", Some("wrong"), OTHER_DATABASE).await;
        assert_bad_password(&error, "qcp_nobody");
        assert_eq!(opened(&qcp), 0);
        assert_logs_in(&qcp, SCRAM_USER.0, Some(SCRAM_USER.1), DATABASE).await;
    }
    // With trust there is no authentication to wait for.
    let qcp = with_auth(Setup::session(), "trust").start_edited(|yaml| {
        yaml.replace(
            "    pool_size: 4\n",
            &format!("    pool_size: 4\n    databases: [{DATABASE}]\n"),
        )
    });
    let error = refused(&qcp, SCRAM_USER.0, None, OTHER_DATABASE).await;
    assert_eq!(error.code(), &SqlState::INVALID_CATALOG_NAME, "{error:?}");
}

// ---- stored secrets instead of passwords ------------------------------------------------------

fn users_yaml(entries: &[(&str, &str)]) -> String {
    let mut yaml = String::from("users:\n");
    for (name, password) in entries {
        yaml.push_str(&format!("  - name: {name}\n    password: \"{password}\"\n"));
    }
    yaml
}

/// Only the SCRAM secret from pg_authid is configured: qcp checks the client's SCRAM proof
/// with it and logs in to the server by pass-through (reusing the ClientKey the proof
/// revealed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scram_secret_only_logs_in_by_pass_through() {
    let secret = stored_secret(SCRAM_USER.0).await;
    assert!(secret.starts_with("SCRAM-SHA-256$"), "{secret}");
    for method in ["scram-sha-256", "md5"] {
        let setup = Setup {
            users: users_yaml(&[(SCRAM_USER.0, &secret)]),
            ..with_auth(Setup::smart(), method)
        };
        let qcp = setup.start();
        // A wrong password fails before any server login.
        let error = refused(&qcp, SCRAM_USER.0, Some("wrong"), DATABASE).await;
        assert_bad_password(&error, SCRAM_USER.0);
        assert_eq!(opened(&qcp), 0);
        // md5 with a SCRAM-only secret switches to SCRAM, as PostgreSQL does.
        assert_logs_in(&qcp, SCRAM_USER.0, Some(SCRAM_USER.1), DATABASE).await;
        assert_eq!(
            opened(&qcp),
            1,
            "{method}: the server login used pass-through"
        );
        // A new pool (another database) needs a new server login: it works too.
        assert_logs_in(&qcp, SCRAM_USER.0, Some(SCRAM_USER.1), OTHER_DATABASE).await;
        assert_eq!(opened(&qcp), 2);
    }
}

/// Only the md5 hash from pg_authid is configured: the client's md5 answer is checked against
/// it and qcp answers the server's md5 challenge with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn md5_hash_only_logs_in_to_an_md5_server() {
    let hash = stored_secret(MD5_USER.0).await;
    assert!(hash.starts_with("md5"), "{hash}");
    let setup = Setup {
        users: users_yaml(&[(MD5_USER.0, &hash)]),
        ..with_auth(Setup::session(), "md5")
    };
    let qcp = setup.start();
    let error = refused(&qcp, MD5_USER.0, Some("wrong"), DATABASE).await;
    assert_bad_password(&error, MD5_USER.0);
    assert_logs_in(&qcp, MD5_USER.0, Some(MD5_USER.1), DATABASE).await;
    assert_eq!(opened(&qcp), 1);
}

// ---- greetings --------------------------------------------------------------------------------

/// The first login of a pool opens a server connection to learn the server's parameters;
/// later logins are greeted by qcp from that cache and open nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn later_logins_are_greeted_without_a_server_connection() {
    let qcp = with_auth(Setup::session(), "trust").start();
    let mut first = Wire::connect(qcp.addr).await;
    first
        .startup(
            ProtocolVersion::V3_0,
            &[("user", SCRAM_USER.0), ("database", DATABASE)],
        )
        .await;
    let first_greeting = first.read_trust_login().await;
    assert_eq!(opened(&qcp), 1, "the first login learnt the parameters");
    // Session mode: the first client takes that connection and keeps it.
    assert_eq!(first_column(&first.query("SELECT 1").await), ["1"]);
    assert_eq!(
        opened(&qcp),
        1,
        "the greeting's connection served the first query"
    );

    let mut second = Wire::connect(qcp.addr).await;
    second
        .startup(
            ProtocolVersion::V3_0,
            &[("user", SCRAM_USER.0), ("database", DATABASE)],
        )
        .await;
    let second_greeting = second.read_trust_login().await;
    assert_eq!(
        opened(&qcp),
        1,
        "the second login opened no server connection"
    );
    assert_eq!(first_greeting.params, second_greeting.params);
    let names: Vec<&str> = second_greeting
        .params
        .iter()
        .map(|(n, _)| n.as_str())
        .collect();
    for name in [
        "server_version",
        "server_encoding",
        "client_encoding",
        "DateStyle",
    ] {
        assert!(names.contains(&name), "{name} missing from {names:?}");
    }
    assert_ne!(first_greeting.pid, second_greeting.pid);
    // Its first query does need a server connection of its own (the other one is taken).
    assert_eq!(first_column(&second.query("SELECT 2").await), ["2"]);
    assert_eq!(opened(&qcp), 2);
}

/// The same through tokio-postgres: five logins, one server connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_logins_share_one_greeting() {
    let qcp = Setup::smart().pool_size(1).start();
    let mut clients = Vec::new();
    for _ in 0..5 {
        clients.push(qcp.client().await);
    }
    assert_eq!(opened(&qcp), 1);
    // qcp counts a login once the greeting is written, which the client may see first.
    wait_until(
        "five logins are counted",
        Duration::from_secs(10),
        || async { status_count(&qcp.status(), "logins") == 5 },
    )
    .await;
    for (i, client) in clients.iter().enumerate() {
        let row = client
            .query_one("SELECT $1::int", &[&(i as i32)])
            .await
            .unwrap();
        assert_eq!(row.get::<_, i32>(0), i as i32);
    }
    assert_eq!(
        opened(&qcp),
        1,
        "Smart mode, pool_size 1: one server connection in all"
    );
}

/// Which authentication request `user` gets first.
async fn first_auth_request(qcp: &Qcp, user: &str) -> u32 {
    let mut raw = Wire::connect(qcp.addr).await;
    raw.startup(
        ProtocolVersion::V3_0,
        &[("user", user), ("database", DATABASE)],
    )
    .await;
    match raw.next().await.decode() {
        BackendMessage::Authentication(Authentication::Md5Password { .. }) => 5,
        BackendMessage::Authentication(Authentication::Sasl(_)) => 10,
        other => panic!("{user}: unexpected first message {other:?}"),
    }
}

/// With `md5`, users configured with only a SCRAM secret are asked for SCRAM (as PostgreSQL
/// does). An unknown user must not stand out by getting the other request: it gets the one
/// most configured users get.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn md5_method_does_not_reveal_users_by_their_challenge() {
    let secret = stored_secret(SCRAM_USER.0).await;
    let scram_only = Setup {
        users: users_yaml(&[(SCRAM_USER.0, &secret)]),
        ..with_auth(Setup::session(), "md5")
    }
    .start();
    assert_eq!(first_auth_request(&scram_only, SCRAM_USER.0).await, 10);
    assert_eq!(first_auth_request(&scram_only, "qcp_nobody").await, 10);
    let error = refused(&scram_only, "qcp_nobody", Some("x"), DATABASE).await;
    assert_bad_password(&error, "qcp_nobody");

    let plain = with_auth(Setup::session(), "md5").start();
    assert_eq!(first_auth_request(&plain, SCRAM_USER.0).await, 5);
    assert_eq!(first_auth_request(&plain, "qcp_nobody").await, 5);
}
