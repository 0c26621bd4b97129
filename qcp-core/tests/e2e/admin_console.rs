//! The admin console against real clients: psql and tokio-postgres connect to the virtual
//! database `qcp` (and `pgbouncer`), every SHOW answers with PgBouncer 1.25's columns, the
//! figures follow what clients do, and users outside `admin_users`/`stats_users` are refused.
//! Also `qcp-ctrl show` over the control socket.

use std::collections::HashMap;
use std::time::Duration;

use tokio_postgres::SimpleQueryMessage;

use crate::support::*;

const WAIT: Duration = Duration::from_secs(20);

/// The SHOW items that PgBouncer 1.25 has, with their columns, from the fixture written
/// from PgBouncer's source.
fn pgbouncer_columns() -> HashMap<String, Vec<String>> {
    let fixture = include_str!("../../src/admin/pgbouncer_1_25_columns.txt");
    fixture
        .lines()
        .filter_map(|line| {
            // `columns ITEM TYPES NAME,NAME,...`
            let mut words = line.strip_prefix("columns ")?.split_whitespace();
            let item = words.next()?.to_ascii_lowercase();
            let _types = words.next()?;
            let columns = words.next()?.split(',').map(str::to_owned).collect();
            Some((item, columns))
        })
        .collect()
}

fn setup() -> Setup {
    Setup::smart().pool_size(1).extra(&format!(
        "admin_users: [{}]\nstats_users: [{}]\n",
        SCRAM_USER.0, MD5_USER.0
    ))
}

async fn console(qcp: &Qcp, user: (&str, &str), database: &str) -> tokio_postgres::Client {
    connect(&qcp.conninfo(user.0, user.1, database))
        .await
        .unwrap_or_else(|e| panic!("{} logs in to the console: {e}", user.0))
}

/// The rows of a console command as column name -> value maps, and the column names.
async fn show(
    client: &tokio_postgres::Client,
    command: &str,
) -> (Vec<String>, Vec<HashMap<String, String>>) {
    let messages = client
        .simple_query(command)
        .await
        .unwrap_or_else(|e| panic!("{command}: {e}"));
    let mut columns = Vec::new();
    let mut rows = Vec::new();
    for message in messages {
        match message {
            SimpleQueryMessage::RowDescription(description) => {
                columns = description.iter().map(|c| c.name().to_owned()).collect();
            }
            SimpleQueryMessage::Row(row) => {
                let values = row
                    .columns()
                    .iter()
                    .enumerate()
                    .map(|(i, c)| (c.name().to_owned(), row.get(i).unwrap_or("").to_owned()))
                    .collect();
                rows.push(values);
            }
            _ => {}
        }
    }
    (columns, rows)
}

fn number(row: &HashMap<String, String>, column: &str) -> u64 {
    row.get(column)
        .unwrap_or_else(|| panic!("no column {column} in {row:?}"))
        .parse()
        .unwrap_or_else(|_| panic!("{column} is not a number in {row:?}"))
}

/// The row of SHOW POOLS (or STATS, keyed by database) for the test database.
async fn pool_row(admin: &tokio_postgres::Client, command: &str) -> HashMap<String, String> {
    let (_, rows) = show(admin, command).await;
    rows.into_iter()
        .find(|r| r.get("database").map(String::as_str) == Some(DATABASE))
        .unwrap_or_else(|| panic!("{command} has no row for {DATABASE}"))
}

#[tokio::test]
async fn every_show_answers_with_pgbouncer_columns_through_psql_and_tokio_postgres() {
    let qcp = setup().start();
    // A client of the test database, so that the pool tables have a row.
    let client = qcp.client().await;
    client.simple_query("SELECT 1").await.expect("query");
    let fixture = pgbouncer_columns();
    assert!(
        fixture.len() >= 14,
        "fixture lists the SHOW items: {fixture:?}"
    );
    for database in ["qcp", "pgbouncer"] {
        let admin = console(&qcp, SCRAM_USER, database).await;
        for (item, expected) in &fixture {
            let (columns, _) = show(&admin, &format!("SHOW {}", item.to_ascii_uppercase())).await;
            assert_eq!(
                &columns, expected,
                "SHOW {item} through database {database}"
            );
        }
        let (_, pools) = show(&admin, "show pools;").await;
        assert!(
            pools.iter().any(|r| r["database"] == DATABASE
                && r["user"] == SCRAM_USER.0
                && r["pool_mode"] == "transaction"),
            "SHOW POOLS lists the test pool in transaction mode: {pools:?}"
        );
    }
    // psql, as operators use it: every SHOW with PgBouncer's header line, qcp's own two,
    // and HELP as a notice.
    for (item, expected) in &fixture {
        let (ok, stdout, stderr) = psql(
            &qcp,
            &[("PGDATABASE", "qcp")],
            &["-A", "-F", "|", "-c", &format!("SHOW {item}")],
        )
        .await;
        assert!(ok, "psql SHOW {item}: {stderr}");
        let header = stdout.lines().next().unwrap_or_default();
        assert_eq!(header, expected.join("|"), "psql SHOW {item}");
        if item == "pools" {
            assert!(
                stdout.contains(&format!("{DATABASE}|{}|", SCRAM_USER.0)),
                "{stdout}"
            );
        }
    }
    for item in ["ARENA", "PREPARED_STATEMENTS"] {
        let (ok, _, stderr) = psql(
            &qcp,
            &[("PGDATABASE", "qcp")],
            &["-c", &format!("SHOW {item}")],
        )
        .await;
        assert!(ok, "psql SHOW {item}: {stderr}");
    }
    let (ok, _, stderr) = psql(&qcp, &[("PGDATABASE", "pgbouncer")], &["-c", "SHOW HELP"]).await;
    assert!(ok, "psql SHOW HELP: {stderr}");
    assert!(
        stderr.contains("SHOW") && stderr.contains("PAUSE"),
        "HELP is a notice: {stderr}"
    );
}

#[tokio::test]
async fn who_may_use_the_console() {
    let qcp = setup().start();
    // Not in admin_users or stats_users: refused as PostgreSQL refuses a user without CONNECT.
    let error = connect(&qcp.conninfo(PLAIN_USER.0, PLAIN_USER.1, "qcp"))
        .await
        .expect_err("an ordinary user is refused");
    assert_eq!(sqlstate_of(&error).as_deref(), Some("42501"), "{error}");
    let message = error
        .as_db_error()
        .map(|e| e.message().to_owned())
        .unwrap_or_default();
    assert_eq!(
        message, "permission denied for database \"qcp\"",
        "{error:?}"
    );
    // A wrong password is a wrong password, console or not.
    let error = connect(&qcp.conninfo(SCRAM_USER.0, "wrong", "pgbouncer"))
        .await
        .expect_err("a wrong password is refused");
    assert_eq!(sqlstate_of(&error).as_deref(), Some("28P01"), "{error}");
    // stats_users may look but not act.
    let stats = console(&qcp, MD5_USER, "qcp").await;
    show(&stats, "SHOW POOLS").await;
    let error = stats
        .simple_query("PAUSE")
        .await
        .expect_err("stats user cannot PAUSE");
    assert_eq!(sqlstate_of(&error).as_deref(), Some("42501"), "{error}");
    // admin_users may act: RELOAD reads the (unchanged) file again.
    let admin = console(&qcp, SCRAM_USER, "qcp").await;
    let answer = admin
        .simple_query("RELOAD")
        .await
        .expect("an admin may RELOAD");
    assert!(
        matches!(answer.last(), Some(SimpleQueryMessage::CommandComplete(_))),
        "{answer:?}"
    );
    let error = admin
        .simple_query("SUSPEND")
        .await
        .expect_err("SUSPEND is PgBouncer's online restart, not qcp's");
    assert_eq!(sqlstate_of(&error).as_deref(), Some("0A000"), "{error}");
    let error = admin
        .simple_query("SHOW NOTHING")
        .await
        .expect_err("an unknown item");
    assert_eq!(sqlstate_of(&error).as_deref(), Some("42704"), "{error}");
    let error = admin
        .simple_query("FROB")
        .await
        .expect_err("an unknown command");
    assert_eq!(sqlstate_of(&error).as_deref(), Some("42601"), "{error}");
    // The session goes on after errors, and the extended protocol is refused in band.
    show(&admin, "SHOW VERSION").await;
    let error = admin
        .query("SHOW POOLS", &[])
        .await
        .expect_err("extended protocol");
    assert_eq!(sqlstate_of(&error).as_deref(), Some("0A000"), "{error}");
    show(&admin, "SHOW STATE").await;
    // The errors qcp sent are counted by SQLSTATE.
    let errors: HashMap<String, u64> = qcp.snapshot().errors.into_iter().collect();
    for code in ["42501", "28P01", "0A000", "42601", "42704"] {
        assert!(
            errors.get(code).copied().unwrap_or(0) >= 1,
            "{code} counted: {errors:?}"
        );
    }
}

#[tokio::test]
async fn a_waiting_client_shows_in_pools_and_clients_and_leaves_them() {
    let qcp = setup().start();
    let admin = console(&qcp, SCRAM_USER, "qcp").await;
    // pool_size 1: one client holds the only connection in a transaction...
    let holder = qcp.client().await;
    holder.simple_query("BEGIN; SELECT 1").await.expect("begin");
    // ...so the next one waits.
    let waiter = qcp.client().await;
    let waiting =
        tokio::spawn(async move { waiter.simple_query("SELECT 2").await.map(|_| waiter) });
    wait_until("SHOW POOLS shows the waiting client", WAIT, || async {
        let row = pool_row(&admin, "SHOW POOLS").await;
        number(&row, "cl_waiting") == 1 && number(&row, "maxwait_us") + number(&row, "maxwait") > 0
    })
    .await;
    let seen = pool_row(&admin, "SHOW POOLS").await;
    assert_eq!(number(&seen, "sv_active"), 1, "{seen:?}");
    assert_eq!(number(&seen, "cl_active"), 1, "the holder: {seen:?}");
    let (_, clients) = show(&admin, "SHOW CLIENTS").await;
    let of_db: Vec<_> = clients
        .iter()
        .filter(|c| c["database"] == DATABASE)
        .collect();
    assert_eq!(of_db.len(), 2, "{clients:?}");
    assert!(of_db.iter().any(|c| c["state"] == "waiting"), "{clients:?}");
    assert!(
        of_db
            .iter()
            .any(|c| c["state"] == "active" && !c["link"].is_empty()),
        "{clients:?}"
    );
    let (_, servers) = show(&admin, "SHOW SERVERS").await;
    let linked = servers
        .iter()
        .find(|s| s["state"] == "active")
        .unwrap_or_else(|| panic!("an active server: {servers:?}"));
    let holder_pid = backends_of(&crate::support::admin().await, SCRAM_USER.0).await;
    assert!(
        holder_pid.contains(&linked["remote_pid"].parse::<i32>().unwrap()),
        "remote_pid is the backend's pid: {linked:?} {holder_pid:?}"
    );
    holder.simple_query("COMMIT").await.expect("commit");
    waiting
        .await
        .expect("join")
        .expect("the waiter gets its turn");
    wait_until("nobody waits any more", WAIT, || async {
        let row = pool_row(&admin, "SHOW POOLS").await;
        number(&row, "cl_waiting") == 0
            && number(&row, "maxwait") == 0
            && number(&row, "maxwait_us") == 0
    })
    .await;
}

#[tokio::test]
async fn stats_count_what_clients_did() {
    let qcp = setup().extra("stats_period: 200ms\n").start();
    let client = qcp.client().await;
    for _ in 0..10 {
        client.simple_query("SELECT 1").await.expect("select");
    }
    // One transaction of three queries.
    for sql in ["BEGIN", "SELECT 2", "COMMIT"] {
        client.simple_query(sql).await.expect("transaction");
    }
    let admin = console(&qcp, SCRAM_USER, "qcp").await;
    wait_until("SHOW STATS counts 13 queries", WAIT, || async {
        number(&pool_row(&admin, "SHOW STATS").await, "total_query_count") == 13
    })
    .await;
    let stats = pool_row(&admin, "SHOW STATS").await;
    assert_eq!(number(&stats, "total_xact_count"), 11, "{stats:?}");
    assert_eq!(
        number(&stats, "total_server_assignment_count"),
        11,
        "Smart mode links per transaction: {stats:?}"
    );
    assert!(number(&stats, "total_received") > 13 * 5, "{stats:?}");
    assert!(number(&stats, "total_sent") > 13 * 5, "{stats:?}");
    assert!(number(&stats, "total_query_time") > 0, "{stats:?}");
    assert!(
        number(&stats, "total_xact_time") >= number(&stats, "total_query_time") / 2,
        "{stats:?}"
    );
    // The averages cover a whole period: they show once one has passed with traffic in it.
    for _ in 0..5 {
        client.simple_query("SELECT 3").await.expect("select");
    }
    wait_until("SHOW STATS_AVERAGES has a rate", WAIT, || async {
        let row = pool_row(&admin, "SHOW STATS_AVERAGES").await;
        number(&row, "xact_count") > 0
    })
    .await;
    let (_, totals) = show(&admin, "SHOW TOTALS").await;
    let total_xacts = totals
        .iter()
        .find(|r| r["name"] == "total_xact_count")
        .map(|r| number(r, "value"))
        .expect("SHOW TOTALS has total_xact_count");
    assert_eq!(total_xacts, 16, "{totals:?}");
}

#[tokio::test]
async fn qcp_ctrl_show_prints_the_tables_in_human_units() {
    let qcp = setup().start();
    let client = qcp.client().await;
    client.simple_query("SELECT 1").await.expect("select");
    let ask = |command: &str| qcp.control(command);
    let pools = ask("show pools");
    assert!(
        pools
            .lines()
            .next()
            .unwrap_or_default()
            .contains("cl_waiting"),
        "{pools}"
    );
    assert!(
        pools.contains(DATABASE) && pools.contains(SCRAM_USER.0),
        "{pools}"
    );
    let stats = ask("show stats");
    assert!(stats.contains("total_received"), "{stats}");
    assert!(
        stats.contains(" B") || stats.contains("KiB"),
        "bytes in human units: {stats}"
    );
    let clients = ask("show clients");
    assert!(clients.contains(DATABASE), "{clients}");
    let servers = ask("show servers");
    assert!(
        servers.contains("idle") || servers.contains("active"),
        "{servers}"
    );
    let error = ask("show nothing");
    assert!(error.starts_with("error:"), "{error}");
}

#[tokio::test]
async fn a_console_session_does_not_hold_up_a_shutdown() {
    // A grace period far longer than the test may take: only the console's own exit can end
    // the shutdown early.
    let mut qcp = setup().extra("timeouts:\n  shutdown: 120s\n").start();
    let admin = console(&qcp, SCRAM_USER, "qcp").await;
    show(&admin, "SHOW STATE").await;
    let started = std::time::Instant::now();
    let stopped = tokio::task::spawn_blocking(move || {
        qcp.stop();
        started.elapsed()
    });
    let took = stopped.await.expect("join");
    assert!(took < Duration::from_secs(30), "shutdown took {took:?}");
    let error = admin
        .simple_query("SHOW STATE")
        .await
        .expect_err("the console was closed");
    assert!(admin.is_closed(), "{error}");
}
