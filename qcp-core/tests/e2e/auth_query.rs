//! Credentials from the database (`auth_user`, `auth_query`): roles created after qcp started
//! log in through it; a changed password is seen and the old one stops working within the
//! TTL; expired roles, roles without LOGIN and unknown users are refused alike; the query's
//! server connection is pooled.

use std::time::Duration;

use crate::support::*;

const WAIT: Duration = Duration::from_secs(20);

fn superuser() -> (String, String) {
    (
        std::env::var("QCP_TEST_PG_SUPERUSER").expect("QCP_TEST_PG_SUPERUSER"),
        std::env::var("QCP_TEST_PG_SUPERPASS").expect("QCP_TEST_PG_SUPERPASS"),
    )
}

/// Smart mode with the superuser as `auth_user` (it may read pg_shadow) and `extra` YAML.
fn setup(extra: &str) -> Setup {
    let (name, password) = superuser();
    let mut setup = Setup::smart().extra(&format!("auth_user: {name}\n{extra}"));
    setup
        .users
        .push_str(&format!("  - name: {name}\n    password: {password}\n"));
    setup
}

/// A role of its own for one test (names are unique per run: tests share the cluster).
async fn role(tag: &str, options: &str) -> String {
    let name = format!("qcp_dyn_{tag}_{}", std::process::id());
    admin()
        .await
        .batch_execute(&format!(
            "DROP ROLE IF EXISTS {name}; CREATE ROLE {name} {options}"
        ))
        .await
        .unwrap_or_else(|e| panic!("create role {name}: {e}"));
    name
}

async fn change_password(role: &str, password: &str) {
    admin()
        .await
        .batch_execute(&format!("ALTER ROLE {role} PASSWORD '{password}'"))
        .await
        .expect("alter role");
}

async fn login(qcp: &Qcp, user: &str, password: &str) -> Result<String, String> {
    let client = connect(&qcp.conninfo(user, password, DATABASE))
        .await
        .map_err(|e| sqlstate_of(&e).unwrap_or_else(|| e.to_string()))?;
    let rows = client
        .simple_query("SELECT current_user")
        .await
        .map_err(|e| e.to_string())?;
    Ok(rows
        .iter()
        .find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(row) => row.get(0).map(str::to_owned),
            _ => None,
        })
        .unwrap_or_default())
}

#[tokio::test]
async fn roles_from_the_database_log_in_and_the_others_are_refused_alike() {
    let qcp = setup("").start();
    // Created after qcp started: not in qcp's users at all.
    let fresh = role("fresh", "LOGIN PASSWORD 'fresh-pass'").await;
    assert_eq!(login(&qcp, &fresh, "fresh-pass").await, Ok(fresh.clone()));
    assert_eq!(login(&qcp, &fresh, "wrong").await, Err("28P01".to_owned()));
    // Refused as a wrong password is, so names cannot be probed.
    let expired = role(
        "expired",
        "LOGIN PASSWORD 'expired-pass' VALID UNTIL '2001-01-01'",
    )
    .await;
    assert_eq!(
        login(&qcp, &expired, "expired-pass").await,
        Err("28P01".to_owned())
    );
    let nologin = role("nologin", "NOLOGIN PASSWORD 'nologin-pass'").await;
    assert_eq!(
        login(&qcp, &nologin, "nologin-pass").await,
        Err("28P01".to_owned())
    );
    assert_eq!(
        login(&qcp, "qcp_nobody_at_all", "x").await,
        Err("28P01".to_owned())
    );
    // An unknown user asking for a database that does not exist: refused like any unknown
    // user (PostgreSQL tells about the database only after a password exchange), and no
    // pool is left behind for that database.
    let error = connect(&qcp.conninfo("qcp_nobody_at_all", "x", "qcp_no_such_db"))
        .await
        .expect_err("refused");
    assert_eq!(sqlstate_of(&error).as_deref(), Some("28P01"), "{error}");
    assert!(
        !qcp.snapshot()
            .pools
            .iter()
            .any(|p| p.database == "qcp_no_such_db"),
        "no pool kept for a database that does not exist"
    );
    // The console's users are configured ones: no lookup for them.
    let error = connect(&qcp.conninfo(&fresh, "fresh-pass", "qcp"))
        .await
        .expect_err("not a console user");
    assert_eq!(sqlstate_of(&error).as_deref(), Some("28P01"), "{error}");
    // A name that would break a query spliced into the text is just a name.
    let mut config = tokio_postgres::Config::new();
    config
        .host("127.0.0.1")
        .port(qcp.addr.port())
        .user("x' OR '1'='1")
        .password("x")
        .dbname(DATABASE);
    let error = config
        .connect(tokio_postgres::NoTls)
        .await
        .err()
        .expect("refused");
    assert_eq!(sqlstate_of(&error).as_deref(), Some("28P01"), "{error}");
}

#[tokio::test]
async fn a_changed_password_is_seen_and_the_old_one_stops_working_within_the_ttl() {
    let qcp = setup("auth_cache_ttl: 1s\n").start();
    let name = role("changed", "LOGIN PASSWORD 'first-pass'").await;
    assert_eq!(login(&qcp, &name, "first-pass").await, Ok(name.clone()));
    change_password(&name, "second-pass").await;
    // The kept secret fails the new password once (that attempt's SCRAM proof was made for
    // the old secret's salt); the failure asks the database again, and the next attempt is
    // checked against the new secret.
    let first = login(&qcp, &name, "second-pass").await;
    let second = login(&qcp, &name, "second-pass").await;
    assert!(
        first.is_ok() || second.is_ok(),
        "the new password works by the second attempt: {first:?} {second:?}"
    );
    assert_eq!(second, Ok(name.clone()));
    // The old password: refused now the new secret is kept (and at the latest once the TTL
    // is over).
    wait_until("the old password is refused", WAIT, || async {
        login(&qcp, &name, "first-pass").await == Err("28P01".to_owned())
    })
    .await;
}

#[tokio::test]
async fn the_old_password_stops_working_once_the_ttl_is_over() {
    let qcp = setup("auth_cache_ttl: 1s\n").start();
    let name = role("ttl", "LOGIN PASSWORD 'first-pass'").await;
    assert_eq!(login(&qcp, &name, "first-pass").await, Ok(name.clone()));
    change_password(&name, "second-pass").await;
    // Nobody fails a login meanwhile: only the TTL ends the kept secret.
    let started = std::time::Instant::now();
    wait_until("the old password is refused", WAIT, || async {
        login(&qcp, &name, "first-pass").await == Err("28P01".to_owned())
    })
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "within the 1 s TTL (plus the logins' own time): {:?}",
        started.elapsed()
    );
    assert_eq!(login(&qcp, &name, "second-pass").await, Ok(name));
}

#[tokio::test]
async fn the_auth_query_runs_on_a_pooled_connection() {
    // No cache: every login asks the database.
    let qcp = setup("auth_cache_ttl: 0\n").start();
    let name = role("pooled", "LOGIN PASSWORD 'pooled-pass'").await;
    for _ in 0..10 {
        assert_eq!(login(&qcp, &name, "pooled-pass").await, Ok(name.clone()));
    }
    let (superuser, _) = superuser();
    let snapshot = qcp.snapshot();
    let auth_pool = snapshot
        .pools
        .iter()
        .find(|p| p.database == DATABASE && p.user == superuser)
        .expect("the auth_user's pool");
    let opened = auth_pool
        .totals
        .get(qcp_core::stats::Counter::ServerConnects);
    assert_eq!(opened, 1, "ten lookups, one connection");
}

#[tokio::test]
async fn answers_are_kept_for_the_ttl_and_a_failed_login_asks_again() {
    // The default TTL, 60 s: longer than this test.
    let qcp = setup("").start();
    let name = role("kept", "LOGIN PASSWORD 'first-pass'").await;
    assert_eq!(login(&qcp, &name, "first-pass").await, Ok(name.clone()));
    change_password(&name, "second-pass").await;
    // The kept secret still lets the old password in: nothing asked the database again.
    assert_eq!(login(&qcp, &name, "first-pass").await, Ok(name.clone()));
    // A failed login asks again...
    assert_eq!(login(&qcp, &name, "wrong").await, Err("28P01".to_owned()));
    // ...so the old password stops working and the new one works.
    assert_eq!(
        login(&qcp, &name, "first-pass").await,
        Err("28P01".to_owned())
    );
    assert_eq!(login(&qcp, &name, "second-pass").await, Ok(name));
}
